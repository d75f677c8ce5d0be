"""Pure: one run's tables -> the plain dict the report templates see.

``build_context`` is the only thing the HTML templates (and the page script, through embedded
JSON) ever see: a tree of ``str``, ``int``, ``bool``, ``None``, ``list`` and ``dict``. It reads no
files, no clock and no environment, so re-rendering an archived run gives the same bytes.

Two shapes of the same rows: ``first_page`` (one dict per row, every name resolved) for the
server-rendered table, and ``data`` (compact column lists, names by index into one shared
``objects`` table) for the page script, so 100,000 findings through the same two groups do not
repeat those groups' names and evidence 100,000 times.

Directory text is hostile. Escaping for HTML is the template's job (jinja2 autoescape); this
module makes *invisible* text visible: bidi overrides, zero-width and other format or control
characters in directory-derived strings become a visible ``[U+202E]`` marker and the row is
flagged, so a name cannot reorder the text around it or hide part of a command
("Trojan Source", CVE-2021-42574).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

import polars as pl

from accessaudit import hidden
from accessaudit.hidden import visible
from accessaudit.model import SEVERITY_RANK, Org, Severity
from accessaudit.report.evidence import run_rules
from accessaudit.report.views import change_map, gone_ids, gone_rows, views_context

#: Severities, worst first.
SEVERITIES: Final[tuple[str, ...]] = tuple(
    s.value for s in sorted(Severity, key=lambda s: SEVERITY_RANK[s], reverse=True)
)
_RANK: Final[Mapping[str, int]] = {s.value: SEVERITY_RANK[s] for s in Severity}

#: Rows rendered by the server (and shown per page by the script).
DEFAULT_PAGE_SIZE: Final = 100
#: Open findings listed under "top items" in the officers' summary.
TOP_ITEMS: Final = 10
#: Shown for a missing value.
NONE: Final = "—"
#: Label for a missing organisation.
NO_ORG: Final = Org.UNATTRIBUTED.value


#: Columns of the JSON the page script reads (one list per row, in this order). ``group``,
#: ``member``, ``principal``, ``resource`` and ``path`` hold indexes into ``objects``.
OBJECT_COLUMNS: Final = ("id", "name", "secondary", "kind", "org", "evidence", "conflict")
ACTION_COLUMNS: Final = (
    *("action_id", "kind", "severity", "owning_org", "group", "member", "member_kind"),
    *("resolves", "summary", "powershell", "hidden", "system", "group_actions", "group_resolves"),
)
FINDING_COLUMNS: Final = (
    *("finding_key", "rule_id", "severity", "status", "principal", "principal_org"),
    *("resource", "resource_org", "path", "path_partial", "depth", "detail", "hidden"),
    *("change", "first_seen"),  # history: new / persisting / regressed, first-seen date
)
_F = {c: i for i, c in enumerate(FINDING_COLUMNS)}
_A = {c: i for i, c in enumerate(ACTION_COLUMNS)}
_ID, _NAME, _SECONDARY, _KIND, _ORG, _EVIDENCE, _CONFLICT = range(len(OBJECT_COLUMNS))


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


# --- Text ----------------------------------------------------------------------------------------


def _visible_column(
    df: pl.DataFrame, column: str, *, keep_lines: bool = False
) -> tuple[list[str], list[bool]]:
    """A column as display text, plus which rows had hidden characters (vectorised scan)."""
    if column not in df.columns:
        return [""] * df.height, [False] * df.height
    series = df.get_column(column).cast(pl.String)
    pattern = hidden.HIDDEN_KEEP_LINES_PATTERN if keep_lines else hidden.HIDDEN_PATTERN
    mask = series.str.contains(pattern).fill_null(False)
    values: list[str] = series.fill_null("").to_list()
    for i in mask.arg_true().to_list():
        values[i] = visible(values[i], keep_lines=keep_lines)
    return values, mask.to_list()


def _raw(df: pl.DataFrame, column: str) -> list[Any]:
    return df.get_column(column).to_list() if column in df.columns else [None] * df.height


def severity_rank(severity: str | None) -> int:
    """Higher is worse; unknown severities sort below ``info``."""
    return _RANK.get(severity or "", -1)


def severity_class(severity: str | None) -> str:
    """A CSS class for a severity chip, from a fixed set (never built from data)."""
    return f"sev-{severity}" if severity in _RANK else "sev-unknown"


def _org(value: str | None) -> str:
    return value if value else NO_ORG


def _org_classes(orgs: set[str]) -> dict[str, str]:
    """Org id -> chip class: the first real organisations get distinct colours."""
    real = sorted(o for o in orgs if o not in (Org.SHARED.value, NO_ORG))
    classes = {org: f"org-{i}" if i < 4 else "org-other" for i, org in enumerate(real)}
    classes[Org.SHARED.value] = "org-shared"
    classes[NO_ORG] = "org-none"
    return classes


def _non_empty(column: str) -> pl.Expr:
    return pl.when(pl.col(column) != "").then(pl.col(column))


# --- Objects: every account and group the report names, once ------------------------------------


class _Objects:
    """Accounts and groups the report refers to, as rows of :data:`OBJECT_COLUMNS`."""

    def __init__(self, accounts: pl.DataFrame, groups: pl.DataFrame, ids: set[str]) -> None:
        self.rows: list[list[Any]] = []
        self.hidden: list[bool] = []
        self.index: dict[str, int] = {}
        wanted = sorted(ids)
        if "group_id" in groups.columns:
            g = groups.filter(pl.col("group_id").is_in(wanted))
            g = g.with_columns(pl.coalesce(_non_empty("name"), "group_id").alias("_name"))
            self._add(g, "group", "group_id", None)
        if "account_id" in accounts.columns:
            a = accounts.filter(pl.col("account_id").is_in(wanted))
            cols = [c for c in ("display_name", "username") if c in a.columns]
            names = [_non_empty(c) for c in cols]
            a = a.with_columns(pl.coalesce(*names, "account_id").alias("_name"))
            self._add(a, "account", "account_id", "username" if "username" in a.columns else None)

    def _add(self, df: pl.DataFrame, kind: str, id_col: str, secondary_col: str | None) -> None:
        ids = _raw(df, id_col)
        names, names_h = _visible_column(df, "_name")
        if secondary_col:
            df = df.with_columns(
                pl.when(pl.col(secondary_col) != pl.col("_name"))
                .then(pl.col(secondary_col))
                .alias("_secondary")
            )
        secondary, secondary_h = _visible_column(df, "_secondary")
        orgs = _raw(df, "org")
        evidence = _raw(df, "org_evidence")
        conflict = _raw(df, "org_conflict")
        for i, obj_id in enumerate(ids):
            if obj_id in self.index:
                continue
            self.index[obj_id] = len(self.rows)
            self.rows.append(
                [
                    visible(obj_id),
                    names[i],
                    secondary[i],
                    kind,
                    _org(orgs[i]),
                    [visible(e) for e in evidence[i] or []],
                    bool(conflict[i]),
                ]
            )
            self.hidden.append(names_h[i] or secondary_h[i])

    def ref(self, obj_id: str | None) -> int | None:
        """Index of ``obj_id`` (an unknown id gets a placeholder object); None for None."""
        if not obj_id:
            return None
        found = self.index.get(obj_id)
        if found is None:
            found = self.index[obj_id] = len(self.rows)
            shown = visible(obj_id)
            self.rows.append([shown, shown, "", "unknown", NO_ORG, [], False])
            self.hidden.append(shown != obj_id)
        return found

    def name(self, ref: int | None) -> str:
        return NONE if ref is None else str(self.rows[ref][_NAME])


# --- Findings and actions -------------------------------------------------------------------------


def _finding_rows(
    findings: pl.DataFrame,
    paths: Mapping[str, list[str]],
    objs: _Objects,
    change: Mapping[str, tuple[str, str]] | None = None,
) -> list[list[Any]]:
    """Compact rows (:data:`FINDING_COLUMNS`): open first, worst first."""
    key, key_h = _visible_column(findings, "finding_key")
    rule, _ = _visible_column(findings, "rule_id")
    severity, _ = _visible_column(findings, "severity")
    status, _ = _visible_column(findings, "status")
    detail, detail_h = _visible_column(findings, "detail")
    raw_key = _raw(findings, "finding_key")
    account, group = _raw(findings, "account_id"), _raw(findings, "group_id")
    member_group, via = _raw(findings, "member_group_id"), _raw(findings, "via_group_id")
    depth = _raw(findings, "depth")
    principal_org, resource_org = _raw(findings, "principal_org"), _raw(findings, "resource_org")
    rows: list[list[Any]] = []
    for i in range(findings.height):
        principal_id = account[i] or member_group[i]
        hops = paths.get(raw_key[i])
        partial = False
        if hops is None:
            if principal_id and group[i]:
                # no recorded path: show what the finding itself names
                hops = [
                    principal_id,
                    *([via[i]] if via[i] and via[i] != group[i] else []),
                    group[i],
                ]
                # an account at depth d has d + 2 hops, a nested group at depth d has d + 1
                partial = len(hops) < (depth[i] or 0) + (2 if account[i] else 1)
            else:
                hops = []
        p, r = objs.ref(principal_id), objs.ref(group[i])
        path = [objs.ref(h) for h in hops]
        refs = [x for x in (p, r, *path) if x is not None]
        rows.append(
            [
                key[i],
                rule[i],
                severity[i],
                status[i] or "open",
                p,
                _org(principal_org[i]),
                r,
                # a finding about one object (an attribution review) reaches no resource
                _org(resource_org[i]) if group[i] or resource_org[i] else "",
                path,
                partial,
                -1 if depth[i] is None else int(depth[i]),
                detail[i],
                key_h[i] or detail_h[i] or any(objs.hidden[x] for x in refs),
                *(change or {}).get(raw_key[i], ("", "")),
            ]
        )
    rows.sort(
        key=lambda f: (
            f[_F["status"]] != "open",
            -severity_rank(f[_F["severity"]]),
            f[_F["rule_id"]],
            objs.name(f[_F["principal"]]).casefold(),
            f[_F["finding_key"]],
        )
    )
    return rows


def _action_rows(actions: pl.DataFrame, objs: _Objects) -> list[list[Any]]:
    """Compact rows (:data:`ACTION_COLUMNS`): by owning force, then group, worst first."""
    action_id, _ = _visible_column(actions, "action_id")
    kind, _ = _visible_column(actions, "kind")
    severity, _ = _visible_column(actions, "severity")
    member_kind, _ = _visible_column(actions, "member_kind")
    summary, summary_h = _visible_column(actions, "summary")
    powershell, powershell_h = _visible_column(actions, "powershell", keep_lines=True)
    owning = _raw(actions, "owning_org")
    system = _raw(actions, "system")  # the changed group's system of record (ad / cloud / app)
    group, member = _raw(actions, "group_id"), _raw(actions, "member_id")
    resolves = _raw(actions, "resolves")
    rows: list[list[Any]] = []
    for i in range(actions.height):
        g, m = objs.ref(group[i]), objs.ref(member[i])
        hidden = (
            summary_h[i] or powershell_h[i] or any(objs.hidden[x] for x in (g, m) if x is not None)
        )
        rows.append(
            [
                action_id[i],
                kind[i],
                severity[i],
                _org(owning[i]),
                g,
                m,
                member_kind[i] or ("" if m is None else objs.rows[m][_KIND]),
                int(resolves[i] or 0),
                summary[i],
                powershell[i],
                hidden,
                system[i] or "",
            ]
        )
    sizes: Counter[tuple[str, int | None]] = Counter()
    impact: Counter[tuple[str, int | None]] = Counter()
    worst: dict[tuple[str, int | None], int] = {}
    for a in rows:
        key = (a[_A["owning_org"]], a[_A["group"]])
        sizes[key] += 1
        impact[key] += a[_A["resolves"]]
        worst[key] = max(worst.get(key, -1), severity_rank(a[_A["severity"]]))
    # Real forces first, objects nobody owns last; within a force the groups whose actions
    # matter most (worst severity, then most findings resolved) come first.
    last = {Org.UNATTRIBUTED.value, NO_ORG}
    rows.sort(
        key=lambda a: (
            a[_A["owning_org"]] in last,
            a[_A["owning_org"]],
            -worst[(a[_A["owning_org"]], a[_A["group"]])],
            -impact[(a[_A["owning_org"]], a[_A["group"]])],
            objs.name(a[_A["group"]]).casefold(),
            -1 if a[_A["group"]] is None else a[_A["group"]],
            -severity_rank(a[_A["severity"]]),
            -a[_A["resolves"]],
            a[_A["action_id"]],
        )
    )
    for a in rows:
        group_key = (a[_A["owning_org"]], a[_A["group"]])
        a.extend([sizes[group_key], impact[group_key]])
    return rows


def _finding_view(
    f: Sequence[Any], objs: _Objects, docs: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """One finding with every name resolved (server-rendered rows)."""
    row = dict(zip(FINDING_COLUMNS, f, strict=True))
    doc = docs[row["rule_id"]]
    view: dict[str, Any] = {
        k: row[k]
        for k in ("finding_key", "rule_id", "severity", "status", "principal_org", "resource_org")
    }
    for role in ("principal", "resource"):
        ref = row[role]
        obj = objs.rows[ref] if ref is not None else None
        view[f"{role}_kind"] = obj[_KIND] if obj else ""
        view[f"{role}_id"] = obj[_ID] if obj else ""
        view[f"{role}_name"] = obj[_NAME] if obj else NONE
        view[f"{role}_secondary"] = obj[_SECONDARY] if obj else ""
        view[f"{role}_evidence"] = obj[_EVIDENCE] if obj else []
        view[f"{role}_conflict"] = obj[_CONFLICT] if obj else False
    view.update(
        sev_class=severity_class(row["severity"]),
        path=[
            {
                "id": objs.rows[h][_ID],
                "name": objs.rows[h][_NAME],
                "org": objs.rows[h][_ORG],
                "kind": objs.rows[h][_KIND],
            }
            for h in row["path"]
        ],
        path_partial=row["path_partial"],
        depth=row["depth"],
        detail=row["detail"],
        hidden=row["hidden"],
        rule_title=doc["title"],
        rationale=doc["rationale"],
        change=row["change"],
        first_seen=row["first_seen"],
    )
    return view


def _action_view(a: Sequence[Any], objs: _Objects, group_start: bool) -> dict[str, Any]:
    """One action with every name resolved (server-rendered rows)."""
    row = dict(zip(ACTION_COLUMNS, a, strict=True))
    group, member = row.pop("group"), row.pop("member")
    return {
        **row,
        "sev_class": severity_class(row["severity"]),
        "group_id": "" if group is None else objs.rows[group][_ID],
        "group_name": objs.name(group),
        "member_id": "" if member is None else objs.rows[member][_ID],
        "member_name": objs.name(member),
        "member_org": "" if member is None else objs.rows[member][_ORG],
        "group_start": group_start,
    }


# --- Manifest -----------------------------------------------------------------------------------

_COUNT_ORDER: Final = ("accounts", "groups", "memberships", "grants")


def _run(manifest: Mapping[str, Any], generated: str | None) -> dict[str, Any]:
    finished = manifest.get("finished")
    return {
        "run_id": visible(manifest.get("run_id")),
        "tool_version": visible(manifest.get("tool_version")),
        "started": visible(manifest.get("started")),
        "finished": visible(finished),
        "generated": visible(generated if generated is not None else finished),
        "config_hash": visible(manifest.get("config_hash")),
        "rules_hash": visible(manifest.get("rules_hash")),
    }


def _sources(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for src in manifest.get("sources") or []:
        counts = dict(src.get("counts") or {})
        names = [n for n in _COUNT_ORDER if n in counts]
        names += sorted(n for n in counts if n not in _COUNT_ORDER)
        units = [
            {
                "name": visible(u.get("name")),
                "complete": u.get("complete") is True,
                "detail": visible(u.get("detail")),
                "count": int(u.get("count") or 0),
            }
            for u in src.get("units") or []
        ]
        out.append(
            {
                "name": visible(src.get("name")),
                "source": visible(src.get("source")),
                "kind": visible(src.get("kind")),
                "started": visible(src.get("started")),
                "finished": visible(src.get("finished")),
                # complete only with proof: the source says so and no unit says otherwise
                "complete": src.get("complete") is True and all(u["complete"] for u in units),
                "counts": [{"name": visible(n), "value": int(counts[n] or 0)} for n in names],
                "units": units,
                "incomplete_units": [u for u in units if not u["complete"]],
            }
        )
    return out


def _files(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": visible(name),
            "sha256": visible(meta.get("sha256")),
            "bytes": int(meta.get("bytes") or 0),
            "rows": None if meta.get("rows") is None else int(meta["rows"]),
        }
        for name, meta in sorted((manifest.get("files") or {}).items())
    ]


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


def _summary(
    finding_rows: Sequence[Sequence[Any]],
    action_rows: Sequence[Sequence[Any]],
    docs: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    open_rows = [f for f in finding_rows if f[_F["status"]] == "open"]
    accepted_rows = [f for f in finding_rows if f[_F["status"]] != "open"]
    open_sev = Counter(f[_F["severity"]] for f in open_rows)
    acc_sev = Counter(f[_F["severity"]] for f in accepted_rows)
    extra = sorted((set(open_sev) | set(acc_sev)) - set(SEVERITIES))
    open_rule = Counter(f[_F["rule_id"]] for f in open_rows)
    acc_rule = Counter(f[_F["rule_id"]] for f in accepted_rows)
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
    force = Counter((f[_F["principal_org"]], f[_F["resource_org"]]) for f in open_rows)
    org_actions: Counter[str] = Counter()
    org_resolves: Counter[str] = Counter()
    for a in action_rows:
        org_actions[a[_A["owning_org"]]] += 1
        org_resolves[a[_A["owning_org"]]] += a[_A["resolves"]]
    return {
        "findings_total": len(finding_rows),
        "open_total": len(open_rows),
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
            for (p, r), n in sorted(force.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "actions_total": len(action_rows),
        "actions_resolves": sum(org_resolves.values()),
        "actions_by_org": [
            {"org": o, "actions": org_actions[o], "resolves": org_resolves[o]}
            for o in sorted(org_actions)
        ],
        "groups_total": len({(a[_A["owning_org"]], a[_A["group"]]) for a in action_rows}),
    }


def build_context(
    *,
    manifest: Mapping[str, Any],
    findings: pl.DataFrame,
    actions: pl.DataFrame,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    paths: pl.DataFrame,
    rules: Sequence[RuleLike],
    title: str,
    generated: str | None = None,
    marking: str = "OFFICIAL-SENSITIVE",
    org_names: Mapping[str, str] | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    history: pl.DataFrame | None = None,
    trend: Mapping[str, Any] | None = None,
    rule_snapshot: Mapping[str, Any] | None = None,
    register: Mapping[str, Any] | None = None,
    exports_href: str | None = "",
    exports_dir: str = "",
) -> dict[str, Any]:
    """Everything the report shows, as plain data.

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
    path_map: dict[str, list[str]] = {}
    if {"finding_key", "path"} <= set(paths.columns):
        for key, hops in zip(_raw(paths, "finding_key"), _raw(paths, "path"), strict=True):
            if key is not None and hops:
                path_map[key] = [h for h in hops if h is not None]
    ids: set[str] = set()
    for df, columns in (
        (findings, ("account_id", "group_id", "member_group_id", "via_group_id")),
        (actions, ("group_id", "member_id")),
    ):
        for c in columns:
            if c in df.columns:
                ids.update(df.get_column(c).drop_nulls().unique().to_list())
    for hops in path_map.values():
        ids.update(hops)
    gone = gone_rows(history)
    ids.update(gone_ids(gone))
    objs = _Objects(accounts, groups, ids)

    if {"group_id", "mastered"} <= set(groups.columns) and "group_id" in actions.columns:
        # the planner's system of record where it gave one, else the changed group's
        planned = [pl.col("system")] if "system" in actions.columns else []
        actions = (
            actions.join(
                groups.select("group_id", _mastered="mastered").unique("group_id", keep="first"),
                on="group_id",
                how="left",
                maintain_order="left",
            )
            .with_columns(system=pl.coalesce(*planned, pl.col("_mastered")))
            .drop("_mastered")
        )
    finding_rows = _finding_rows(findings, path_map, objs, change_map(history))
    action_rows = _action_rows(actions, objs)
    as_run = run_rules(rule_snapshot)
    docs = _rule_docs(rules if as_run is None else as_run, findings)
    page = max(1, int(page_size))
    open_count = sum(1 for f in finding_rows if f[_F["status"]] == "open")

    sources = _sources(manifest)
    orgs = {row[_ORG] for row in objs.rows} | set(org_names or {})
    orgs |= {f[_F["principal_org"]] for f in finding_rows}
    orgs |= {f[_F["resource_org"]] for f in finding_rows if f[_F["resource_org"]]}
    orgs |= {a[_A["owning_org"]] for a in action_rows}
    org_class = _org_classes(orgs)
    names = dict(org_names or {})
    rule_open = Counter(f[_F["rule_id"]] for f in finding_rows if f[_F["status"]] == "open")
    first_actions = []
    for i, a in enumerate(action_rows[:page]):
        group_key = (a[_A["owning_org"]], a[_A["group"]])
        prev = action_rows[i - 1] if i else None
        start = prev is None or (prev[_A["owning_org"]], prev[_A["group"]]) != group_key
        first_actions.append(_action_view(a, objs, start))
    return {
        "title": visible(title),
        "marking": visible(marking),
        "run": _run(manifest, generated),
        "complete": manifest.get("complete") is True and all(s["complete"] for s in sources),
        "incomplete_sources": [s for s in sources if not s["complete"]],
        "sources": sources,
        "files": _files(manifest),
        "severities": list(SEVERITIES),
        "orgs": [
            {"id": o, "name": visible(names.get(o, "")), "cls": org_class[o]} for o in sorted(orgs)
        ],
        "org_class": org_class,
        "summary": {
            **_summary(finding_rows, action_rows, docs),
            # rows are sorted open first, worst first
            "top": [
                _finding_view(f, objs, docs) for f in finding_rows[: min(TOP_ITEMS, open_count)]
            ],
        },
        "worklist": {
            "total": len(action_rows),
            "page_size": page,
            "first_page": first_actions,
            "data": {"columns": list(ACTION_COLUMNS), "rows": action_rows},
        },
        "findings": {
            "total": len(finding_rows),
            "page_size": page,
            "first_page": [_finding_view(f, objs, docs) for f in finding_rows[:page]],
            "data": {"columns": list(FINDING_COLUMNS), "rows": finding_rows},
        },
        "objects": {"columns": list(OBJECT_COLUMNS), "rows": objs.rows},
        "rules": [dict(d, open=rule_open[rid]) for rid, d in docs.items()],
        "rule_docs": {
            rid: {"title": d["title"], "rationale": d["rationale"], "remediation": d["remediation"]}
            for rid, d in docs.items()
        },
        "systems": sorted({a[_A["system"]] for a in action_rows if a[_A["system"]]}),
        **views_context(
            manifest=manifest,
            findings=findings,
            history=history,
            gone=gone,
            trend=trend,
            finding_rows=finding_rows,
            columns=_F,
            view=lambda f: _finding_view(f, objs, docs),
            name=lambda i: objs.name(objs.ref(i)),
            sev_class=severity_class,
            text=visible,
            run_rules=as_run,
            current_rules=rules,
            register=register,
            exports_href=exports_href,
            exports_dir=exports_dir,
        ),
    }
