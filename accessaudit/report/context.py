"""Pure: one run's tables -> the plain dict the report templates see.

``build_context`` is the only thing the HTML templates (and the page script, through embedded
JSON) ever see: a tree of ``str``, ``int``, ``bool``, ``None``, ``list`` and ``dict``. It reads no
files, no clock and no environment, so re-rendering an archived run gives the same bytes.

Two shapes of the same rows (:mod:`accessaudit.report.rows`): ``first_page`` (one dict per row,
every name resolved) for the server-rendered table, and ``data`` (compact column lists, names by
index into one shared ``objects`` table, :mod:`accessaudit.report.objects`) for the page script.
Directory text is made visible on the way (:mod:`accessaudit.report.display`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import polars as pl

from accessaudit.hidden import visible
from accessaudit.model import Org
from accessaudit.report.control import control_section
from accessaudit.report.datapaths import data_section
from accessaudit.report.display import (
    NO_ORG,
    SEVERITIES,
    org_classes,
    severity_class,
    severity_rank,
)
from accessaudit.report.evidence import RunRule, run_rules
from accessaudit.report.history import OPEN_DEFINITION, unknown_rows
from accessaudit.report.objects import OBJECT_COLUMNS, ORG, Objects
from accessaudit.report.pack import pack_section
from accessaudit.report.pictures import (
    NO_RESOURCE,
    actions_by_force,
    force_matrix,
    rule_results,
    sparklines,
)
from accessaudit.report.provenance import dormancy_unknown, files, run_info, sources
from accessaudit.report.rows import (
    ACTION_COLUMNS,
    FINDING_COLUMNS,
    A,
    F,
    action_rows,
    action_view,
    finding_rows,
    finding_view,
    first_actions,
    path_map,
    top_actions,
    with_system,
)
from accessaudit.report.verdict import human_span, human_time, verdict
from accessaudit.report.views import change_map, gone_ids, gone_rows, views_context

__all__ = [
    "ACTION_COLUMNS",
    "FINDING_COLUMNS",
    "OBJECT_COLUMNS",
    "SEVERITIES",
    "ReportInput",
    "RuleLike",
    "build_context",
    "visible",
]

#: Rows rendered by the server (and shown per page by the script).
DEFAULT_PAGE_SIZE: Final = 100
#: Open findings listed under "top items" in the officers' summary.
TOP_ITEMS: Final = 10


class RuleLike(Protocol):
    """Anything with a rule's documentation attributes (a loaded rule, a
    :class:`~accessaudit.report.evidence.RuleDoc`)."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def rationale(self) -> str: ...
    @property
    def remediation(self) -> str: ...
    @property
    def action(self) -> str: ...


@dataclass(frozen=True, kw_only=True, eq=False)
class ReportInput:
    """What a report is built from: the run's tables, its records and how to present them.

    ``generated`` defaults to the manifest's ``finished`` time (no clock is read, so a
    re-render is byte-identical); ``marking`` is the protective marking printed at the top and
    bottom of the page ("" for none); ``org_names`` maps org ids to display names for the
    legend; ``page_size`` rows are server-rendered and shown per page by the script;
    ``history`` is the run's ``findings_history`` (change since the last run) and ``trend``
    the officers' trend (:func:`accessaudit.report.trend.trend_context`).

    ``rule_snapshot`` is the run's ``rules.json``: when given, the rule texts shown are the
    run's and ``rules`` (the current catalogue) is only compared with them; ``register`` is its
    ``exceptions.json``; ``exports_href`` / ``exports_dir``: see
    :func:`accessaudit.report.views.views_context`.
    """

    manifest: Mapping[str, Any]
    findings: pl.DataFrame
    actions: pl.DataFrame
    accounts: pl.DataFrame
    groups: pl.DataFrame
    paths: pl.DataFrame
    rules: Sequence[RuleLike]
    title: str
    generated: str | None = None
    marking: str = "OFFICIAL-SENSITIVE"
    org_names: Mapping[str, str] | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    history: pl.DataFrame | None = None
    trend: Mapping[str, Any] | None = None
    rule_snapshot: Mapping[str, Any] | None = None
    register: Mapping[str, Any] | None = None
    exports_href: str | None = ""
    exports_dir: str = ""
    #: attribution coverage by signal, per kind (:mod:`accessaudit.analysis.survey`)
    coverage: Mapping[str, Any] | None = None
    #: the run's ``attribution.json``: evidence is shown with the value and pattern matched
    attribution: Mapping[str, Any] | None = None
    #: the identity team's tracking status per action id (:mod:`accessaudit.report.tracking`)
    tracked: Mapping[str, str] | None = None


# --- Rules and summary ----------------------------------------------------------------------------


def _rule_docs(rules: Sequence[RuleLike], findings: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Rule id -> documentation; rules seen only in findings get their finding's title."""
    docs: dict[str, dict[str, Any]] = {}
    for r in sorted(rules, key=lambda r: (-severity_rank(r.severity), r.id)):
        docs[r.id] = {
            "id": r.id,
            "title": r.title,
            "severity": r.severity,
            "sev_class": severity_class(r.severity),
            "rationale": r.rationale,
            "remediation": r.remediation,
            "action": r.action,
        }
    cols = [c for c in ("rule_id", "title", "severity", "action") if c in findings.columns]
    if "rule_id" in cols:
        seen = findings.select(cols).unique(subset="rule_id", keep="first", maintain_order=True)
        for row in seen.iter_rows(named=True):
            rid = visible(row["rule_id"])
            if rid not in docs:
                docs[rid] = {
                    "id": rid,
                    "title": visible(row.get("title")) or rid,
                    "severity": visible(row.get("severity")),
                    "sev_class": severity_class(row.get("severity")),
                    "rationale": "",
                    "remediation": "",
                    "action": visible(row.get("action")),
                }
    return docs


#: The documentation of a rule seen only in the history's unknown findings.
_NO_DOC: Final[dict[str, Any]] = {"severity": "", "sev_class": severity_class(None)}


def _summary(
    finding_rows: Sequence[Sequence[Any]],
    action_rows: Sequence[Sequence[Any]],
    docs: Mapping[str, Mapping[str, Any]],
    unknown: pl.DataFrame,
    pictures: Mapping[str, Any],
) -> dict[str, Any]:
    """Counts of the summary; open ones by the one definition: this run's findings not
    accepted, plus ``unknown`` (the history's keys absent but not proven gone). The counts by
    force and by owning force are read off ``pictures`` (:func:`_pictures`), not counted again."""
    open_rows = [f for f in finding_rows if f[F["status"]] == "open"]
    accepted_rows = [f for f in finding_rows if f[F["status"]] != "open"]
    unknown_sev = [visible(v) for v in unknown.get_column("severity").to_list()]
    unknown_rule = [visible(v) for v in unknown.get_column("rule_id").to_list()]
    open_sev = Counter(f[F["severity"]] for f in open_rows) + Counter(unknown_sev)
    acc_sev = Counter(f[F["severity"]] for f in accepted_rows)
    extra = sorted((set(open_sev) | set(acc_sev)) - set(SEVERITIES))
    open_rule = Counter(f[F["rule_id"]] for f in open_rows) + Counter(unknown_rule)
    acc_rule = Counter(f[F["rule_id"]] for f in accepted_rows)
    docs = {**{r: _NO_DOC | {"title": r} for r in unknown_rule}, **docs}
    by_rule = [
        {
            "rule_id": rid,
            "title": docs[rid]["title"],
            "severity": docs[rid]["severity"],
            "sev_class": docs[rid]["sev_class"],
            "open": open_rule[rid],
            "accepted": acc_rule[rid],
        }
        for rid in set(open_rule) | set(acc_rule)
    ]
    by_rule.sort(key=lambda r: (-severity_rank(r["severity"]), -r["open"], r["rule_id"]))
    matrix, chart = pictures["matrix"], pictures["actions_chart"]
    force = [
        (p, "" if r == NO_RESOURCE else r, cell["n"])
        for p, row in zip(matrix["rows"], matrix["cells"], strict=True)
        for r, cell in zip(matrix["cols"], row, strict=True)
        if cell["n"]
    ]
    forces = sorted(chart["forces"], key=lambda f: f["org"])
    return {
        "findings_total": len(finding_rows),
        "open_total": len(open_rows) + unknown.height,
        "open_unknown": unknown.height,
        "open_definition": OPEN_DEFINITION,
        "accepted_total": len(accepted_rows),
        "by_severity": [
            {
                "severity": s,
                "sev_class": severity_class(s),
                "open": open_sev[s],
                "accepted": acc_sev[s],
            }
            for s in (*SEVERITIES, *extra)
        ],
        "by_rule": by_rule,
        "by_force": [
            {"principal_org": p, "resource_org": r, "open": n}
            for p, r, n in sorted(force, key=lambda t: (-t[2], t[0], t[1]))
        ],
        "actions_total": len(action_rows),
        "actions_resolves": sum(f["resolves"] for f in forces),
        "actions_by_org": [
            {"org": f["org"], "actions": f["total"], "resolves": f["resolves"]} for f in forces
        ],
        "groups_total": len({(a[A["owning_org"]], a[A["group"]]) for a in action_rows}),
    }


# --- Sections -------------------------------------------------------------------------------------


def _referenced_ids(
    inp: ReportInput, paths: Mapping[str, list[str]], gone: pl.DataFrame
) -> set[str]:
    """Every account and group id the findings, actions, paths and resolved findings name."""
    ids: set[str] = set()
    for df, columns in (
        (inp.findings, ("account_id", "group_id", "member_group_id", "via_group_id")),
        (inp.actions, ("group_id", "member_id")),
    ):
        for c in columns:
            if c in df.columns:
                ids.update(df.get_column(c).drop_nulls().unique().to_list())
    for hops in paths.values():
        ids.update(hops)
    ids.update(gone_ids(gone))
    return ids


def _orgs(
    org_names: Mapping[str, str] | None,
    objs: Objects,
    f_rows: Sequence[Sequence[Any]],
    a_rows: Sequence[Sequence[Any]],
) -> dict[str, Any]:
    """The legend: every organisation shown, its display name and chip class."""
    orgs = {row[ORG] for row in objs.rows} | set(org_names or {})
    orgs |= {f[F["principal_org"]] for f in f_rows}
    orgs |= {f[F["resource_org"]] for f in f_rows if f[F["resource_org"]]}
    orgs |= {a[A["owning_org"]] for a in a_rows}
    org_class = org_classes(orgs)
    names = dict(org_names or {})
    return {
        "orgs": [
            {"id": o, "name": visible(names.get(o, "")), "cls": org_class[o]} for o in sorted(orgs)
        ],
        "org_class": org_class,
    }


def _rules(docs: Mapping[str, Mapping[str, Any]], results: Mapping[str, Any]) -> dict[str, Any]:
    """The rules appendix (each rule with its open findings and result, from
    :func:`~accessaudit.report.pictures.rule_results`) and the texts the page script shows."""
    return {
        "rules": list(results["rules"]),
        "rule_docs": {
            rid: {"title": d["title"], "rationale": d["rationale"], "remediation": d["remediation"]}
            for rid, d in docs.items()
        },
    }


def _views(
    inp: ReportInput,
    f_rows: list[list[Any]],
    objs: Objects,
    docs: Mapping[str, Mapping[str, Any]],
    gone: pl.DataFrame,
    as_run: list[RunRule] | None,
) -> dict[str, Any]:
    """The officers', reviewers' and identity team's views (:func:`views_context`)."""
    return views_context(
        manifest=inp.manifest,
        findings=inp.findings,
        history=inp.history,
        gone=gone,
        trend=inp.trend,
        finding_rows=f_rows,
        columns=F,
        view=lambda f: finding_view(f, objs, docs),
        name=lambda i: objs.name(objs.ref(i)),
        sev_class=severity_class,
        text=visible,
        run_rules=as_run,
        current_rules=inp.rules,
        register=inp.register,
        exports_href=inp.exports_href,
        exports_dir=inp.exports_dir,
    )


def build_context(inp: ReportInput) -> dict[str, Any]:
    """Everything the report shows, as plain data."""
    paths = path_map(inp.paths)
    gone = gone_rows(inp.history)
    objs = Objects(inp.accounts, inp.groups, _referenced_ids(inp, paths, gone), inp.attribution)
    f_rows = finding_rows(inp.findings, paths, objs, change_map(inp.history))
    a_rows = action_rows(with_system(inp.actions, inp.groups), objs)
    as_run = run_rules(inp.rule_snapshot)
    docs = _rule_docs(inp.rules if as_run is None else as_run, inp.findings)
    page = max(1, int(inp.page_size))
    open_count = sum(1 for f in f_rows if f[F["status"]] == "open")
    srcs = sources(inp.manifest)
    complete = inp.manifest.get("complete") is True and all(s["complete"] for s in srcs)
    run = run_info(inp.manifest, inp.generated)
    pictures = _pictures(inp, f_rows, a_rows, objs, docs)
    return {
        "title": visible(inp.title),
        "marking": visible(inp.marking),
        "run": {
            **run,
            "generated_human": human_time(run["generated"]),
            "window_human": human_span(run["started"], run["finished"]),
        },
        "verdict": verdict(f_rows, objs, inp.org_names, complete=complete),
        "complete": complete,
        "incomplete_sources": [s for s in srcs if not s["complete"]],
        "dormancy_unknown": dormancy_unknown(srcs),
        "sources": srcs,
        "files": files(inp.manifest),
        "severities": list(SEVERITIES),
        **_orgs(inp.org_names, objs, f_rows, a_rows),
        "summary": {
            **_summary(f_rows, a_rows, docs, unknown_rows(inp.history), pictures),
            # rows are sorted open first, worst first
            "top": [finding_view(f, objs, docs) for f in f_rows[: min(TOP_ITEMS, open_count)]],
        },
        "worklist": {
            "total": len(a_rows),
            # left to a person: apply cannot execute them (why: each row's ``apply``)
            "manual": sum(1 for a in a_rows if a[A["apply"]]),
            "page_size": page,
            "first_page": first_actions(a_rows, objs, page),
            # the officer's top 10: the actions that matter most (worst, then most resolved)
            "top": [action_view(a, objs, False) for a in top_actions(a_rows, TOP_ITEMS)],
            "data": {"columns": list(ACTION_COLUMNS), "rows": a_rows},
        },
        "findings": {
            "total": len(f_rows),
            "page_size": page,
            "first_page": [finding_view(f, objs, docs) for f in f_rows[:page]],
            "data": {"columns": list(FINDING_COLUMNS), "rows": f_rows},
        },
        # the same list the views' names below may still add placeholder objects to
        "objects": {"columns": list(OBJECT_COLUMNS), "rows": objs.rows},
        **_rules(docs, pictures["results"]),
        "systems": sorted({a[A["system"]] for a in a_rows if a[A["system"]]}),
        **_views(inp, f_rows, objs, docs, gone, as_run),
        "coverage": dict(inp.coverage or {}),
        "control": control_section(f_rows, a_rows, objs, docs),
        "data_paths": data_section(f_rows, a_rows, objs, docs),
        **pictures,
    }


def _pictures(
    inp: ReportInput,
    f_rows: list[list[Any]],
    a_rows: list[list[Any]],
    objs: Objects,
    docs: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The pictures (:mod:`.pictures`), every rule's result and the evidence pack's samples."""
    orgs = [*(inp.org_names or {}), Org.SHARED.value, NO_ORG]
    return {
        "matrix": force_matrix(f_rows, orgs, [o for o in orgs if o not in (Org.SHARED, NO_ORG)]),
        "actions_chart": actions_by_force(a_rows, inp.tracked),
        "results": rule_results(docs, f_rows),
        "pack": pack_section(f_rows, docs, lambda f: finding_view(f, objs, docs)),
        "attribution": dict(inp.attribution or {}),
        "sparks": sparklines((inp.trend or {}).get("by_rule") or {}),
    }
