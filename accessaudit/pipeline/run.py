"""collect -> analyse -> evaluate -> plan -> write: what ``run`` and ``demo`` call.

Only :func:`collect_sources` talks to directories and only :func:`write_run` writes files; the
analysis in between is a pure function of the collected tables (:func:`analyse`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import polars as pl

from accessaudit.analysis.attribution import attribute_accounts, attribute_groups
from accessaudit.analysis.correlate import correlate
from accessaudit.analysis.expand import effective_memberships, finding_paths, group_closure
from accessaudit.config.settings import (
    CsvSource,
    EntraSource,
    LdapSource,
    SampleSource,
    Settings,
    settings_hash,
)
from accessaudit.engine.evaluate import build_views, evaluate
from accessaudit.engine.exceptions import Register, apply_exceptions, load_configured
from accessaudit.engine.rulefile import Rule, catalogue_hash, load_rules
from accessaudit.engine.snapshot import (
    load_snapshot,
    register_manifest,
    register_snapshot,
    rules_snapshot,
    to_bytes,
)
from accessaudit.errors import IncompleteCollection
from accessaudit.model import (
    COLLECTED_SCHEMAS,
    SEVERITY_RANK,
    CollectionUnit,
    Severity,
    SourceCollection,
)
from accessaudit.pipeline.rulecheck import check_queries
from accessaudit.remediation.plan import plan_actions
from accessaudit.report.context import build_context
from accessaudit.report.exports import write_csv, write_json
from accessaudit.report.history import HISTORY_TABLE, change_counts, history_for_run, with_history
from accessaudit.report.html import exports_href, render_html
from accessaudit.report.pseudonymise import from_settings as pseudonymiser
from accessaudit.report.trend import TrendPoint, stored_points, trend_context, trend_frame
from accessaudit.store.retention import prune_runs
from accessaudit.store.runs import (
    EXCEPTIONS_FILE,
    MANIFEST,
    RULES_FILE,
    RunInfo,
    RunStore,
    read_table,
    sha256_file,
)

Progress = Callable[[str], None]
#: ``counts(source_name, unit, objects_so_far)`` while a source is collected: per unit (e.g.
#: accounts, groups, rows), non-decreasing, the last call of a unit giving its final count.
Counts = Callable[[str, str, int], None]
UnitCounts = Callable[[str, int], None]


def tool_version() -> str:
    try:
        return version("accessaudit")
    except PackageNotFoundError:  # running from a checkout without installing
        return "0.0.0+checkout"


def _noop(_: str) -> None:
    return None


def _no_counts(_source: str, _unit: str, _n: int) -> None:
    return None


# --- collect ---------------------------------------------------------------------------------


def _sample_collection(
    src: SampleSource, now: datetime, counts: UnitCounts | None = None
) -> SourceCollection:
    from accessaudit.sample.directory import generate

    started = datetime.now(UTC)
    entra = src.part == "entra"
    sample = generate(seed=src.seed, accounts=src.accounts, now=now, entra=entra)
    tables = sample.entra if entra else sample.tables
    units = [
        CollectionUnit(name, True, f"generated from seed {src.seed}", df.height)
        for name, df in tables.items()
    ]
    for unit in units:  # generated in one step: each table's size once, at the end
        if counts:
            counts(unit.name, unit.count)
    source = str(tables["accounts"]["source"][0]) if entra else sample.source
    return SourceCollection(source, "sample", started, datetime.now(UTC), dict(tables), units)


def _previous_state(previous: RunInfo | None, name: str) -> dict[str, str] | None:
    if previous is None:
        return None
    for s in previous.manifest.get("sources", []):
        if s.get("name") == name and s.get("complete"):
            state = s.get("state") or {}
            return {str(k): str(v) for k, v in state.items()}
    return None


def _previous_tables(previous: RunInfo | None, source: str) -> dict[str, pl.DataFrame] | None:
    if previous is None:
        return None
    out = {}
    for name in COLLECTED_SCHEMAS:
        df = read_table(previous, name)
        # a run stored before a column was added lacks it: the connector conforms the tables
        names = [c for c in COLLECTED_SCHEMAS[name].names() if c in df.columns]
        out[name] = df.filter(pl.col("source") == source).select(names)
    return out


def collect_one(
    src: SampleSource | LdapSource | EntraSource | CsvSource,
    *,
    now: datetime,
    previous: RunInfo | None = None,
    counts: UnitCounts | None = None,
) -> SourceCollection:
    """Collect one configured source. An incomplete collection is returned, marked incomplete.

    ``counts(unit, objects_so_far)`` reports progress: LDAP after every page, Entra as each
    unit completes, CSV every 10,000 rows, the sample once per table."""
    try:
        if isinstance(src, SampleSource):
            return _sample_collection(src, now, counts)
        if isinstance(src, LdapSource):
            from accessaudit.connectors.ldap import collect as ldap

            return ldap.collect(src, now=now, progress=counts)
        if isinstance(src, EntraSource):
            from accessaudit.connectors.entra import collect as entra

            state = _previous_state(previous, src.name)
            prev_tables = _previous_tables(previous, f"entra:{src.tenant_id}") if state else None
            return entra.collect(src, state=state, previous=prev_tables, now=now, progress=counts)
        from accessaudit.connectors import csvfile

        return csvfile.collect(src, now=now, progress=counts)
    except IncompleteCollection as exc:
        if isinstance(exc.collection, SourceCollection):
            return exc.collection
        raise


def collect_sources(
    settings: Settings,
    *,
    now: datetime,
    previous: RunInfo | None = None,
    progress: Progress = _noop,
    counts: Counts = _no_counts,
) -> list[tuple[str, SourceCollection]]:
    """Every configured source, then CSV users correlated with the directory accounts.

    ``progress(stage)`` names each step; ``counts(source_name, unit, objects_so_far)`` reports
    the objects collected so far (see :func:`collect_one`)."""
    collected: list[tuple[str, SourceCollection]] = []
    for src in settings.sources:
        progress(f"collecting {src.name} ({src.kind})")
        unit_counts = functools.partial(counts, src.name)
        collected.append(
            (src.name, collect_one(src, now=now, previous=previous, counts=unit_counts))
        )
    directory = [c.table("accounts") for _, c in collected if c.kind != "csv"]
    if directory:
        dir_accounts = pl.concat(directory)
        by_name = {s.name: s for s in settings.sources}
        for i, (name, c) in enumerate(collected):
            src = by_name[name]
            if isinstance(src, CsvSource):
                progress(f"correlating {name} on {src.correlate_on}")
                collected[i] = (name, correlate(c, dir_accounts, src.correlate_on)[0])
    return collected


# --- analyse ---------------------------------------------------------------------------------


@dataclass
class Analysis:
    """Everything derived from one snapshot: the stage outputs a run stores."""

    accounts: pl.DataFrame
    groups: pl.DataFrame
    memberships: pl.DataFrame
    grants: pl.DataFrame
    closure: pl.DataFrame
    effective: pl.DataFrame
    findings: pl.DataFrame
    actions: pl.DataFrame
    paths: pl.DataFrame
    rules: list[Rule] = field(default_factory=list)
    exceptions: Register | None = None  # the exceptions register the findings were marked with

    def tables(self) -> dict[str, pl.DataFrame]:
        return {
            "accounts": self.accounts,
            "groups": self.groups,
            "memberships": self.memberships,
            "grants": self.grants,
            "group_closure": self.closure,
            "effective_memberships": self.effective,
            "findings": self.findings,
            "actions": self.actions,
            "finding_paths": self.paths,
        }


def rule_overrides(settings: Settings, rules: list[Rule]) -> dict[str, dict[str, Any]]:
    """Config overrides of rule settings: audit.dormant_days, then audit.rule_settings."""
    out: dict[str, dict[str, Any]] = {}
    for r in rules:
        o: dict[str, Any] = {}
        if "dormant_days" in r.settings:
            o["dormant_days"] = settings.audit.dormant_days
        o.update(settings.audit.rule_settings.get(r.id, {}))
        out[r.id] = o
    return out


def analyse(
    tables: Mapping[str, pl.DataFrame],
    settings: Settings,
    rules: list[Rule],
    *,
    as_of: datetime,
    progress: Progress = _noop,
    exceptions: Register | None = None,
) -> Analysis:
    """Attribute, expand, evaluate every rule, mark exceptions and plan the actions.

    Pure, but for reading the configured exceptions register when ``exceptions`` is not given.
    """
    progress("attributing accounts and groups")
    accounts = attribute_accounts(tables["accounts"], settings)
    groups = attribute_groups(tables["groups"], accounts, settings)
    memberships = tables["memberships"]
    progress("expanding nested memberships")
    closure = group_closure(memberships)
    effective = effective_memberships(memberships, closure)
    progress(f"evaluating {len(rules)} rules")
    views = build_views(
        accounts,
        groups,
        memberships,
        tables["grants"],
        closure=closure,
        effective=effective,
        as_of=as_of,
    )
    findings = evaluate(rules, views, rule_overrides(settings, rules)).with_columns(
        status=pl.lit("open")
    )
    if exceptions is None:
        exceptions = load_configured(settings, [r.id for r in rules])
    findings = apply_exceptions(findings, exceptions, as_of=as_of, accounts=accounts, groups=groups)
    progress("planning remediation")
    paths = finding_paths(findings, closure)
    actions = plan_actions(
        findings,
        accounts=accounts,
        groups=groups,
        memberships=memberships,
        paths=paths,
        organisations=settings.organisations,
    )
    return Analysis(
        accounts,
        groups,
        memberships,
        tables["grants"],
        closure,
        effective,
        findings,
        actions,
        paths,
        rules,
        exceptions,
    )


def combine(collections: list[tuple[str, SourceCollection]]) -> dict[str, pl.DataFrame]:
    """One table per canonical name across all sources."""
    return {
        name: pl.concat([c.table(name) for _, c in collections], how="vertical")
        for name in COLLECTED_SCHEMAS
    }


# --- write -----------------------------------------------------------------------------------


@dataclass
class RunResult:
    run: RunInfo
    analysis: Analysis
    report: Path | None
    pruned: list[str] = field(default_factory=list)  # runs deleted by retention afterwards

    @property
    def complete(self) -> bool:
        return self.run.complete

    def open_at_or_above(self, severity: Severity) -> int:
        f = self.analysis.findings.filter(pl.col("status") == "open")
        worse = [s.value for s, r in SEVERITY_RANK.items() if r >= SEVERITY_RANK[severity]]
        return int(f.filter(pl.col("severity").is_in(worse)).height)


def _source_entry(name: str, c: SourceCollection) -> dict[str, Any]:
    return {
        "name": name,
        "source": c.source,
        "kind": c.kind,
        "started": c.started.isoformat(),
        "finished": c.finished.isoformat(),
        "complete": c.complete,
        "counts": {t: c.table(t).height for t in COLLECTED_SCHEMAS},
        "units": [
            {"name": u.name, "complete": u.complete, "detail": u.detail, "count": u.count}
            for u in c.units
        ],
        "state": dict(c.state),
    }


def summarise(
    findings: pl.DataFrame, actions: pl.DataFrame, history: pl.DataFrame | None = None
) -> dict[str, Any]:
    """The manifest's ``summary``: what ``runs`` lists and the trend is drawn from."""
    by_sev = dict(findings.group_by("severity").len().iter_rows())
    by_rule = dict(findings.group_by("rule_id").len().sort("rule_id").iter_rows())
    is_open = pl.col("status") == "open"
    open_sev = dict(findings.filter(is_open).group_by("severity").len().iter_rows())
    acc_sev = dict(findings.filter(~is_open).group_by("severity").len().iter_rows())
    open_rule = dict(findings.filter(is_open).group_by("rule_id").len().sort("rule_id").iter_rows())
    acc_rule = dict(findings.filter(~is_open).group_by("rule_id").len().sort("rule_id").iter_rows())
    n_open = int(findings.filter(is_open).height)
    return {
        "findings": findings.height,
        "open": n_open,
        "accepted": findings.height - n_open,
        "by_severity": {s.value: int(by_sev.get(s.value, 0)) for s in Severity},
        "by_rule": {k: int(v) for k, v in by_rule.items()},
        "open_by_severity": {s.value: int(open_sev.get(s.value, 0)) for s in Severity},
        "accepted_by_severity": {s.value: int(acc_sev.get(s.value, 0)) for s in Severity},
        "open_by_rule": {k: int(v) for k, v in open_rule.items()},
        "accepted_by_rule": {k: int(v) for k, v in acc_rule.items()},
        "changes": change_counts(history),
        "actions": actions.height,
    }


def render_report(
    run_dir: Path,
    manifest: Mapping[str, Any],
    analysis: Analysis,
    settings: Settings,
    out: Path | None = None,
    *,
    history: pl.DataFrame | None = None,
    trend: list[TrendPoint] | None = None,
    register: Mapping[str, Any] | None = None,
    link_exports: bool = True,
) -> Path:
    """Render the HTML report of a run from its tables (used by ``run``, ``report``, ``demo``).

    ``history`` defaults to the run's stored ``findings_history``, ``trend`` to the stored
    summaries of the runs up to this one (``run_dir`` lies in ``<data_dir>/runs``), ``register``
    to the run's ``exceptions.json``; the rules shown are the run's ``rules.json`` (the
    current ``analysis.rules`` only to say whether the catalogue changed since). The export
    links are relative to where the report is written; ``link_exports=False`` names the
    exports without linking them (a pseudonymised report of a run whose exports are raw).
    """
    if history is None and (run_dir / f"{HISTORY_TABLE}.parquet").is_file():
        history = pl.read_parquet(run_dir / f"{HISTORY_TABLE}.parquet")
    if trend is None:
        trend = stored_points(run_dir.parent.parent, manifest)
    if register is None:
        register = load_snapshot(run_dir, EXCEPTIONS_FILE)
    out = out or run_dir / "report.html"
    href = exports_href(run_dir, out) if link_exports else None
    ctx = build_context(
        manifest=manifest,
        findings=analysis.findings,
        actions=analysis.actions,
        accounts=analysis.accounts,
        groups=analysis.groups,
        paths=analysis.paths,
        rules=analysis.rules,
        title=settings.report.title,
        org_names={o.id: o.name for o in settings.organisations},
        history=history,
        trend=trend_context(trend, settings.report.target_date),
        rule_snapshot=load_snapshot(run_dir, RULES_FILE),
        register=register,
        exports_href=href,
        exports_dir="" if href is not None or not link_exports else str(run_dir.resolve()),
    )
    return render_html(ctx, out)


def write_run(
    store: RunStore,
    analysis: Analysis,
    collections: list[tuple[str, SourceCollection]],
    settings: Settings,
    *,
    started: datetime,
    progress: Progress = _noop,
) -> RunResult:
    """Write tables, exports, the report and finally the manifest; atomically."""
    writer = store.begin(started)
    try:
        progress(f"writing run {writer.run_id}")
        for name, df in analysis.tables().items():
            writer.write_table(name, df)
        sources = [_source_entry(n, c) for n, c in collections]
        previous = store.latest()
        history = history_for_run(
            previous,
            analysis.findings,
            analysis.accounts,
            analysis.groups,
            {
                "run_id": writer.run_id,
                "started": started.isoformat(),
                "complete": all(s["complete"] for s in sources),
                "sources": sources,
            },
        )
        writer.write_table(HISTORY_TABLE, history)
        # the rules and the register as run, for the evidence view and any later re-render
        overrides = rule_overrides(settings, analysis.rules)
        writer.write_bytes(RULES_FILE, to_bytes(rules_snapshot(analysis.rules, overrides)))
        register = None
        if analysis.exceptions is not None:
            register = register_snapshot(analysis.exceptions, analysis.findings, as_of=started)
            writer.write_bytes(EXCEPTIONS_FILE, to_bytes(register))
        manifest: dict[str, Any] = {
            "tool_version": tool_version(),
            "started": started.isoformat(),
            "finished": datetime.now(UTC).isoformat(),
            "config_hash": settings_hash(settings),
            "rules_hash": catalogue_hash(analysis.rules),
            "rules": {r.id: {"version": r.version, "sha256": r.sha256} for r in analysis.rules},
            "exceptions": register_manifest(register),
            "complete": all(s["complete"] for s in sources),
            "sources": sources,
            "summary": summarise(analysis.findings, analysis.actions, history),
        }
        trend = stored_points(store.data_dir, {"run_id": writer.run_id, **manifest})
        # What the outputs show: pseudonymised copies when asked (the tables above stay raw).
        shown, shown_history, shown_manifest = analysis, history, dict(manifest)
        shown_register = register
        if settings.report.pseudonymise:
            progress("pseudonymising the report and exports")
            pseudo = pseudonymiser(settings)
            shown, shown_history = pseudo.analysis(analysis), pseudo.frame(history)
            shown_manifest = pseudo.manifest(manifest)
            shown_register = pseudo.register(register) if register is not None else None
            manifest["pseudonymised"] = {"key_id": pseudo.key_id}
        findings_out = with_history(shown.findings, shown_history)
        if "csv" in settings.report.formats:
            write_csv(findings_out, writer.tmp / "findings.csv")
            write_csv(shown.actions, writer.tmp / "actions.csv")
            write_csv(shown_history, writer.tmp / "history.csv")
            write_csv(trend_frame(trend), writer.tmp / "trend.csv")
            for name in ("findings.csv", "actions.csv", "history.csv", "trend.csv"):
                writer.add_file(name)
        if "json" in settings.report.formats:
            write_json(
                {"findings": findings_out.to_dicts(), "actions": shown.actions.to_dicts()},
                writer.tmp / "findings.json",
            )
            writer.add_file("findings.json")
        if "xlsx" in settings.report.formats:
            from accessaudit.report.exports import write_xlsx

            sheets = {
                f"actions-{org}": shown.actions.filter(pl.col("owning_org") == org)
                for org in sorted(set(shown.actions["owning_org"].drop_nulls().to_list()))
            }
            write_xlsx(sheets or {"actions": shown.actions}, writer.tmp / "actions.xlsx")
            writer.add_file("actions.xlsx")
        report = None
        if "html" in settings.report.formats:
            progress("rendering the HTML report")
            draft = {
                "run_id": writer.run_id,
                **shown_manifest,
                "previous_run": previous.run_id if previous else None,
                # what commit() records (the same run: the lock is held)
                "previous_manifest_sha256": (
                    sha256_file(previous.path / MANIFEST) if previous else None
                ),
                "files": dict(writer.files),
            }
            render_report(
                writer.tmp,
                draft,
                shown,
                settings,
                writer.tmp / "report.html",
                history=shown_history,
                trend=trend,
                register=shown_register,
            )
            writer.add_file("report.html")
        run = writer.commit(manifest)
    except BaseException:
        writer.abort()
        raise
    if report is None and "html" in settings.report.formats:
        report = run.path / "report.html"
    return RunResult(run, analysis, report)


def run_audit(
    settings: Settings,
    *,
    now: datetime | None = None,
    progress: Progress = _noop,
    counts: Counts = _no_counts,
) -> RunResult:
    """The whole job: lock, collect, analyse, write. Raises AuditError subclasses.

    ``progress`` and ``counts`` are told the stages and the objects collected so far (the
    command line shows them as progress bars)."""
    started = now or datetime.now(UTC)
    rules = load_rules(settings.audit.rules_dirs)
    check_queries(rules, rule_overrides(settings, rules))  # fail before touching a server
    register = load_configured(settings, [r.id for r in rules])  # ... and so does the register
    store = RunStore(settings.audit.data_dir)
    with store.lock():
        store.prepare()
        previous = store.latest()
        collections = collect_sources(
            settings, now=started, previous=previous, progress=progress, counts=counts
        )
        analysis = analyse(
            combine(collections),
            settings,
            rules,
            as_of=started,
            progress=progress,
            exceptions=register,
        )
        result = write_run(
            store, analysis, collections, settings, started=started, progress=progress
        )
        if settings.audit.keep_runs is not None or settings.audit.keep_days is not None:
            progress("applying retention")
            result.pruned = prune_runs(
                store,
                keep_runs=settings.audit.keep_runs,
                keep_days=settings.audit.keep_days,
                now=started,
            )
        return result


def load_analysis(run: RunInfo, rules: list[Rule]) -> Analysis:
    """Re-read a stored run's tables (for re-rendering its report)."""
    t = {name: read_table(run, name) for name in (
        "accounts", "groups", "memberships", "grants", "group_closure", "effective_memberships",
        "findings", "actions", "finding_paths")}  # fmt: skip
    return Analysis(
        t["accounts"], t["groups"], t["memberships"], t["grants"], t["group_closure"],
        t["effective_memberships"], t["findings"], t["actions"], t["finding_paths"], rules,
    )  # fmt: skip


def demo_settings(
    out: Path,
    *,
    accounts: int = 6000,
    seed: int = 7,
    apps: dict[str, Path] | None = None,
    entra: bool = False,
) -> Settings:
    """Settings for ``accessaudit demo``: the embedded sample (its Entra tenant, its
    application exports)."""
    from accessaudit.sample.apps import app_sources
    from accessaudit.sample.directory import sample_settings_dict

    sample = {"kind": "sample", "seed": seed, "accounts": accounts}
    tenant = [{**sample, "name": "alliance-entra", "part": "entra"}] if entra else []
    return Settings.model_validate(
        {
            **sample_settings_dict(),
            "audit": {"data_dir": str(out)},
            "sources": [
                {**sample, "name": "alliance"},
                *tenant,
                *app_sources(apps or {}),
            ],
            "report": {
                "title": "Access separation audit - West Mercia / Warwickshire (synthetic demo)",
                "formats": ["html", "csv", "json", "xlsx"],
            },
        }
    )


def prepare_demo(out: Path, *, accounts: int = 6000, seed: int = 7) -> Settings:
    """Write the sample's application exports under ``out/exports`` and return the settings
    (the directory, its Entra tenant and the two applications)."""
    from accessaudit.sample.apps import write_app_exports
    from accessaudit.sample.directory import generate

    sample = generate(seed=seed, accounts=accounts, apps=True)
    paths = write_app_exports(sample, out / "exports")
    return demo_settings(out, accounts=accounts, seed=seed, apps=paths, entra=True)


def plan_run(run: RunInfo, settings: Settings, rules: list[Rule]) -> dict[str, Any]:
    """The saved-plan document of a stored run: its actions with the what-if of all of them
    (the plan applied to the run's snapshot, expanded and evaluated again with the same rules
    and the same attribution)."""
    from accessaudit.remediation.planfile import build_plan
    from accessaudit.remediation.whatif import what_if

    names = ("accounts", "groups", "memberships", "grants", "group_closure",
             "effective_memberships", "findings", "actions", "finding_paths")  # fmt: skip
    t = {name: read_table(run, name) for name in names}
    as_of = datetime.fromisoformat(str(run.manifest["started"]))
    overrides = rule_overrides(settings, rules)

    def reevaluate(
        accounts: pl.DataFrame,
        groups: pl.DataFrame,
        memberships: pl.DataFrame,
        grants: pl.DataFrame,
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        closure = group_closure(memberships)
        effective = effective_memberships(memberships, closure)
        views = build_views(
            accounts, groups, memberships, grants, closure=closure, effective=effective, as_of=as_of
        )
        return evaluate(rules, views, overrides), effective

    result = what_if(t, t["actions"], reevaluate)
    return build_plan(
        run.run_id,
        sha256_file(run.path / MANIFEST),
        t["actions"],
        accounts=t["accounts"],
        groups=t["groups"],
        memberships=t["memberships"],
        whatif=result,
        as_of=as_of,
        findings=t["findings"],
    )
