"""Write a run's outputs: tables, rule and register snapshots, exports, report, then the manifest.

Everything is written into the run's temporary folder and the manifest last, so a run is either
whole under its final name or absent (see :mod:`accessaudit.store.runs`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import polars as pl

from accessaudit.analysis.survey import attribution_coverage
from accessaudit.config.settings import (
    Settings,
    settings_hash,
)
from accessaudit.engine.rulefile import catalogue_hash
from accessaudit.engine.snapshot import (
    attribution_snapshot,
    load_snapshot,
    register_manifest,
    register_snapshot,
    rules_snapshot,
    to_bytes,
    without_personal,
)
from accessaudit.model import (
    COLLECTED_SCHEMAS,
    Severity,
    SourceCollection,
)
from accessaudit.pipeline.analyse import Analysis, pseudonymised, rule_overrides
from accessaudit.pipeline.progress import Progress, noop
from accessaudit.pipeline.result import RunResult
from accessaudit.remediation.planfile import with_batches
from accessaudit.report import tracking, worklist
from accessaudit.report.context import ReportInput, build_context
from accessaudit.report.exports import write_csv, write_json
from accessaudit.report.history import (
    HISTORY_TABLE,
    change_counts,
    history_for_run,
    open_frame,
    with_history,
)
from accessaudit.report.html import exports_href, render_html
from accessaudit.report.pack import PACK_NAME, pack_path, render_pack
from accessaudit.report.pseudonymise import from_settings as pseudonymiser
from accessaudit.report.trend import TrendPoint, stored_points, trend_context, trend_frame
from accessaudit.store.runs import (
    ATTRIBUTION_FILE,
    EXCEPTIONS_FILE,
    MANIFEST,
    RULES_FILE,
    RunInfo,
    RunStore,
    RunWriter,
    sha256_file,
)
from accessaudit.version import tool_version


def _source_entry(name: str, c: SourceCollection) -> dict[str, Any]:
    return {
        "name": name,
        "source": c.source,
        "kind": c.kind,
        "started": c.started.isoformat(),
        "finished": c.finished.isoformat(),
        "complete": c.complete,
        "counts": {
            **{t: c.table(t).height for t in COLLECTED_SCHEMAS},
            # who holds something in the source: an application export's users (matched to a
            # directory account or not), a share's or a mailbox's trustees
            "principals": pl.concat(
                [
                    c.table("memberships").get_column("member_id"),
                    c.table("grants").get_column("principal_id"),
                ]
            ).n_unique(),
        },
        "units": [
            {"name": u.name, "complete": u.complete, "detail": u.detail, "count": u.count}
            for u in c.units
        ],
        "state": dict(c.state),
        # what the source records beyond completeness, e.g. "last_logon": without it dormancy
        # is unknown (no dormancy finding, no disable action), yet the source is complete
        "signals": {
            name: {"recorded": s.recorded, "detail": s.detail} for name, s in c.signals.items()
        },
    }


def summarise(
    findings: pl.DataFrame, actions: pl.DataFrame, history: pl.DataFrame | None = None
) -> dict[str, Any]:
    """The manifest's ``summary``: what ``runs`` lists and the trend is drawn from.

    ``open`` (and its breakdowns) counts by :func:`~accessaudit.report.history.open_frame`: the
    run's findings not accepted, plus the history's unknown keys (``open_unknown`` of them).
    """
    by_sev = dict(findings.group_by("severity").len().iter_rows())
    by_rule = dict(findings.group_by("rule_id").len().sort("rule_id").iter_rows())
    is_open = pl.col("status") == "open"
    opened = open_frame(findings, history)
    open_sev = dict(opened.group_by("severity").len().iter_rows())
    acc_sev = dict(findings.filter(~is_open).group_by("severity").len().iter_rows())
    open_rule = dict(opened.group_by("rule_id").len().sort("rule_id").iter_rows())
    acc_rule = dict(findings.filter(~is_open).group_by("rule_id").len().sort("rule_id").iter_rows())
    n_accepted = int(findings.filter(~is_open).height)
    return {
        "findings": findings.height,
        "open": opened.height,
        "open_unknown": int(opened["unknown"].sum()),
        "accepted": n_accepted,
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
    tracked: pl.DataFrame | None = None,
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
    attribution = load_snapshot(run_dir, ATTRIBUTION_FILE)
    if settings.report.pseudonymise or "pseudonymised" in manifest:
        attribution = without_personal(attribution)
    out = out or run_dir / "report.html"
    href = exports_href(run_dir, out) if link_exports else None
    ctx = build_context(
        ReportInput(
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
            attribution=attribution,
            tracked=_statuses(tracked),
            register=register,
            exports_href=href,
            exports_dir="" if href is not None or not link_exports else str(run_dir.resolve()),
            coverage=attribution_coverage(
                analysis.accounts,
                analysis.groups,
                analysis.memberships,
                analysis.grants,
                analysis.closure,
            ),
        )
    )
    pack = pack_path(out)
    ctx["pack_href"] = quote(pack.name)
    render_html(ctx, out)
    render_pack(ctx, pack)
    return out


def _statuses(tracked: pl.DataFrame | None) -> dict[str, str] | None:
    """Action id -> the team's status (the ones with a status only); None without tracking."""
    if tracked is None or tracked.is_empty():
        return None
    rows = tracked.filter(pl.col("status").str.strip_chars().fill_null("") != "")
    return dict(rows.select("action_id", "status").iter_rows()) or None


def write_run(
    store: RunStore,
    analysis: Analysis,
    collections: list[tuple[str, SourceCollection]],
    settings: Settings,
    *,
    started: datetime,
    progress: Progress = noop,
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
        register = _write_snapshots(writer, analysis, settings, started)
        manifest = _manifest(analysis, settings, sources, history, register, started)
        trend = stored_points(store.data_dir, {"run_id": writer.run_id, **manifest})
        shown = _shown(analysis, history, manifest, register, settings, progress)
        # the team's tracking columns name people (owners, notes): not in pseudonymised outputs
        tracked = None if settings.report.pseudonymise else tracking.load(store.data_dir)
        _write_exports(writer, shown, trend, settings.report.formats, tracked)
        if "html" in settings.report.formats:
            progress("rendering the HTML report and the evidence pack")
            _write_report(writer, shown, settings, previous, trend, tracked)
        run = writer.commit(manifest)
    except BaseException:
        writer.abort()
        raise
    report = run.path / "report.html" if "html" in settings.report.formats else None
    return RunResult(run, analysis, report)


def _write_snapshots(
    writer: RunWriter, analysis: Analysis, settings: Settings, started: datetime
) -> dict[str, Any] | None:
    """The rules and the register as run, for the evidence view and any later re-render; the
    register's snapshot (None without a register)."""
    overrides = rule_overrides(settings, analysis.rules)
    writer.write_bytes(RULES_FILE, to_bytes(rules_snapshot(analysis.rules, overrides)))
    attribution = attribution_snapshot(settings.organisations, settings.attribution.precedence)
    writer.write_bytes(ATTRIBUTION_FILE, to_bytes(attribution))
    if analysis.exceptions is None:
        return None
    register = register_snapshot(analysis.exceptions, analysis.findings, as_of=started)
    writer.write_bytes(EXCEPTIONS_FILE, to_bytes(register))
    return register


def _manifest(
    analysis: Analysis,
    settings: Settings,
    sources: list[dict[str, Any]],
    history: pl.DataFrame,
    register: dict[str, Any] | None,
    started: datetime,
) -> dict[str, Any]:
    return {
        "tool_version": tool_version(),
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "config_hash": settings_hash(settings),
        # what retention may delete after this run: `verify` checks pruned-runs.jsonl against it
        "retention": {
            "keep_runs": settings.audit.keep_runs,
            "keep_days": settings.audit.keep_days,
        },
        "rules_hash": catalogue_hash(analysis.rules),
        "rules": {r.id: {"version": r.version, "sha256": r.sha256} for r in analysis.rules},
        "exceptions": register_manifest(register),
        "complete": all(s["complete"] for s in sources),
        "sources": sources,
        "summary": summarise(analysis.findings, analysis.actions, history),
    }


@dataclass(frozen=True)
class _Shown:
    """What the outputs show: the run's tables, or pseudonymised copies when asked."""

    analysis: Analysis
    history: pl.DataFrame
    manifest: dict[str, Any]
    register: dict[str, Any] | None


def _shown(
    analysis: Analysis,
    history: pl.DataFrame,
    manifest: dict[str, Any],
    register: dict[str, Any] | None,
    settings: Settings,
    progress: Progress,
) -> _Shown:
    """The outputs' view of the run; pseudonymising records its key id in ``manifest`` (the
    stored tables stay raw)."""
    if not settings.report.pseudonymise:
        return _Shown(analysis, history, dict(manifest), register)
    progress("pseudonymising the report and exports")
    pseudo = pseudonymiser(settings)
    shown = _Shown(
        pseudonymised(analysis, pseudo),
        pseudo.frame(history),
        pseudo.manifest(manifest),
        pseudo.register(register) if register is not None else None,
    )
    manifest["pseudonymised"] = {"key_id": pseudo.key_id}
    return shown


def _write_exports(
    writer: RunWriter,
    shown: _Shown,
    trend: list[TrendPoint],
    formats: Sequence[str],
    tracked: pl.DataFrame | None = None,
) -> None:
    """findings/actions/history/trend as CSV, findings and actions as JSON, actions as XLSX
    (one sheet per owning force, then the finding keys), each as the configuration's formats
    ask: names beside ids, actions in worklist order with the team's tracking columns."""
    names = worklist.object_names(shown.analysis.accounts, shown.analysis.groups)
    findings_out = worklist.findings_sheet(
        with_history(shown.analysis.findings, shown.history), names
    )
    actions = worklist.actions_sheet(with_batches(shown.analysis.actions), names, tracked)
    if "csv" in formats:
        write_csv(findings_out, writer.tmp / "findings.csv")
        write_csv(actions, writer.tmp / "actions.csv")
        write_csv(shown.history, writer.tmp / "history.csv")
        write_csv(trend_frame(trend), writer.tmp / "trend.csv")
        for name in ("findings.csv", "actions.csv", "history.csv", "trend.csv"):
            writer.add_file(name)
    if "json" in formats:
        write_json(
            {"findings": findings_out.to_dicts(), "actions": actions.to_dicts()},
            writer.tmp / "findings.json",
        )
        writer.add_file("findings.json")
    if "xlsx" in formats:
        from accessaudit.report.exports import write_xlsx  # xlsxwriter only when asked

        sheets = worklist.split_sheets(actions)
        sheets["finding keys"] = worklist.finding_keys_sheet(actions)
        write_xlsx(sheets, writer.tmp / "actions.xlsx")
        writer.add_file("actions.xlsx")


def _write_report(
    writer: RunWriter,
    shown: _Shown,
    settings: Settings,
    previous: RunInfo | None,
    trend: list[TrendPoint],
    tracked: pl.DataFrame | None = None,
) -> None:
    draft = {
        "run_id": writer.run_id,
        **shown.manifest,
        "previous_run": previous.run_id if previous else None,
        # what commit() records (the same run: the lock is held)
        "previous_manifest_sha256": (sha256_file(previous.path / MANIFEST) if previous else None),
        "files": dict(writer.files),
    }
    render_report(
        writer.tmp,
        draft,
        shown.analysis,
        settings,
        writer.tmp / "report.html",
        history=shown.history,
        trend=trend,
        register=shown.register,
        tracked=tracked,
    )
    writer.add_file("report.html")
    writer.add_file(PACK_NAME)
