"""Pure: one run's tables -> the plain dict the report templates see.

``build_context`` is the only thing the HTML templates (and the page script, through embedded
JSON) ever see: a tree of ``str``, ``int``, ``bool``, ``list`` and ``dict``. It reads no files,
no clock and no environment, so re-rendering an archived run gives the same bytes.

Directory text is hostile. Escaping for HTML is the template's job (jinja2 autoescape); this
module makes *invisible* text visible: bidi overrides, zero-width and other format or control
characters in directory-derived strings are replaced by a visible ``[U+202E]`` marker and the
row is flagged, so a name cannot reorder the text around it or hide part of a command
("Trojan Source", CVE-2021-42574).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import polars as pl

from accessaudit.model import SEVERITY_RANK, Org, Severity

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

# Control (Cc), format (Cf: bidi embeddings/overrides/isolates, zero-width, BOM, soft hyphen,
# interlinear annotations), filler and line/paragraph separator characters.
_HIDDEN_REST: Final = (
    r"\x0b-\x1f\x7f-\x9f\u00ad\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f"
    r"\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
)
_HIDDEN: Final = re.compile(rf"[\x00-\x0a{_HIDDEN_REST}]")
#: the same without tab and newline, for multi-line commands
_HIDDEN_KEEP_LINES: Final = re.compile(rf"[\x00-\x08{_HIDDEN_REST}]")


class RuleLike(Protocol):
    """Anything with a rule's documentation attributes (a loaded rule, a :class:`RuleDoc`)."""

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


@dataclass(frozen=True)
class RuleDoc:
    """A rule's documentation as the report shows it (appendix, finding evidence)."""

    id: str
    title: str
    severity: str
    rationale: str
    remediation: str
    action: str


def _marker(match: re.Match[str]) -> str:
    return f"[U+{ord(match.group()):04X}]"


def visible(value: object, *, keep_lines: bool = False) -> str:
    """``value`` as display text: ``None`` -> ``""``; hidden characters -> ``[U+XXXX]``.

    ``keep_lines`` keeps tab and newline (multi-line commands).
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    pattern = _HIDDEN_KEEP_LINES if keep_lines else _HIDDEN
    return pattern.sub(_marker, text) if pattern.search(text) else text


def has_hidden(*values: object, keep_lines: bool = False) -> bool:
    """True if any of ``values`` contains a character :func:`visible` would replace."""
    pattern = _HIDDEN_KEEP_LINES if keep_lines else _HIDDEN
    return any(isinstance(v, str) and pattern.search(v) is not None for v in values)


def severity_rank(severity: str | None) -> int:
    """Higher is worse; unknown severities sort below ``info``."""
    return _RANK.get(severity or "", -1)


def severity_class(severity: str | None) -> str:
    """A CSS class for a severity chip, from a fixed set (never built from data)."""
    return f"sev-{severity}" if severity in _RANK else "sev-unknown"


def _org(value: str | None) -> str:
    return value if value else NO_ORG


def _org_classes(orgs: Iterable[str]) -> dict[str, str]:
    """Org id -> chip class: the first real organisations get distinct colours."""
    classes: dict[str, str] = {}
    real = sorted(o for o in set(orgs) if o not in (Org.SHARED.value, NO_ORG))
    for i, org in enumerate(real):
        classes[org] = f"org-{i}" if i < 4 else "org-other"
    classes[Org.SHARED.value] = "org-shared"
    classes[NO_ORG] = "org-none"
    return classes


# --- Name resolution ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Obj:
    kind: str  # "account" | "group" | "unknown"
    id: str
    name: str
    secondary: str
    org: str
    evidence: list[str]
    conflict: bool


def _strs(df: pl.DataFrame, column: str) -> list[Any]:
    return df.get_column(column).to_list() if column in df.columns else [None] * df.height


def _lookup(accounts: pl.DataFrame, groups: pl.DataFrame, ids: set[str]) -> dict[str, _Obj]:
    """Resolve only the ids the report needs (accounts can be a million rows)."""
    wanted = sorted(ids)
    out: dict[str, _Obj] = {}
    if "group_id" in groups.columns:
        g = groups.filter(pl.col("group_id").is_in(wanted))
        for gid, name, org, ev, conflict in zip(
            _strs(g, "group_id"),
            _strs(g, "name"),
            _strs(g, "org"),
            _strs(g, "org_evidence"),
            _strs(g, "org_conflict"),
            strict=True,
        ):
            out[gid] = _Obj(
                "group",
                gid,
                name or gid,
                "",
                _org(org),
                [visible(e) for e in ev or []],
                bool(conflict),
            )
    if "account_id" in accounts.columns:
        a = accounts.filter(pl.col("account_id").is_in(wanted))
        for aid, display, user, org, ev, conflict in zip(
            _strs(a, "account_id"),
            _strs(a, "display_name"),
            _strs(a, "username"),
            _strs(a, "org"),
            _strs(a, "org_evidence"),
            _strs(a, "org_conflict"),
            strict=True,
        ):
            name = display or user or aid
            secondary = user if user and user != name else ""
            out[aid] = _Obj(
                "account",
                aid,
                name,
                secondary,
                _org(org),
                [visible(e) for e in ev or []],
                bool(conflict),
            )
    return out


def _unknown(obj_id: str | None) -> _Obj:
    return _Obj("unknown", obj_id or "", obj_id or NONE, "", NO_ORG, [], False)


# --- Sections ----------------------------------------------------------------------------------


def _run(manifest: Mapping[str, Any], generated: str | None) -> dict[str, Any]:
    finished = str(manifest.get("finished") or "")
    return {
        "run_id": visible(manifest.get("run_id")),
        "tool_version": visible(manifest.get("tool_version")),
        "started": visible(manifest.get("started")),
        "finished": visible(finished),
        "generated": visible(generated if generated is not None else finished),
        "config_hash": visible(manifest.get("config_hash")),
        "rules_hash": visible(manifest.get("rules_hash")),
    }


_COUNT_ORDER: Final = ("accounts", "groups", "memberships", "grants")


def _sources(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for src in manifest.get("sources") or []:
        counts = dict(src.get("counts") or {})
        names = [n for n in _COUNT_ORDER if n in counts] + sorted(
            n for n in counts if n not in _COUNT_ORDER
        )
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
                "counts": [{"name": n, "value": int(counts[n] or 0)} for n in names],
                "units": units,
                "incomplete_units": [u for u in units if not u["complete"]],
            }
        )
    return out


def _files(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    files = manifest.get("files") or {}
    return [
        {
            "name": visible(name),
            "sha256": visible(meta.get("sha256")),
            "bytes": int(meta.get("bytes") or 0),
            "rows": int(meta["rows"]) if meta.get("rows") is not None else None,
        }
        for name, meta in sorted(files.items())
    ]


def _rule_docs(
    rules: Sequence[RuleLike], findings_rows: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
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
    for f in findings_rows:
        if f["rule_id"] not in docs:
            docs[f["rule_id"]] = {
                "id": f["rule_id"],
                "title": f["title"],
                "severity": f["severity"],
                "sev_class": severity_class(f["severity"]),
                "rationale": "",
                "remediation": "",
                "action": f["action"],
            }
    return docs


def _path_hops(ids: Sequence[str], names: Mapping[str, _Obj]) -> list[dict[str, str]]:
    hops = []
    for obj_id in ids:
        obj = names.get(obj_id) or _unknown(obj_id)
        hops.append(
            {"id": visible(obj.id), "name": visible(obj.name), "org": obj.org, "kind": obj.kind}
        )
    return hops


def _finding_rows(
    findings: pl.DataFrame, paths: Mapping[str, list[str]], names: Mapping[str, _Obj]
) -> list[dict[str, Any]]:
    cols = {c: _strs(findings, c) for c in findings.columns}
    status = cols.get("status") or ["open"] * findings.height
    rows: list[dict[str, Any]] = []
    for i in range(findings.height):
        key = cols["finding_key"][i]
        account_id = cols["account_id"][i]
        group_id = cols["group_id"][i]
        member_group_id = cols["member_group_id"][i]
        via = cols["via_group_id"][i]
        depth = cols["depth"][i]
        principal_id = account_id or member_group_id
        principal = names.get(principal_id or "") or _unknown(principal_id)
        resource = names.get(group_id or "") or _unknown(group_id)
        if key in paths:
            hop_ids, partial = paths[key], False
        elif principal_id and group_id:
            # no recorded path: show what the finding itself names (direct: complete)
            hop_ids = [principal_id] + ([via] if via and via != group_id else []) + [group_id]
            # an account at depth d has d + 2 hops, a nested group at depth d has d + 1
            needed = (depth or 0) + (2 if account_id else 1)
            partial = len(hop_ids) < needed
        else:
            hop_ids, partial = [], False
        raw = [
            principal.name,
            principal.secondary,
            resource.name,
            cols["detail"][i],
            *(names.get(h, _unknown(h)).name for h in hop_ids),
        ]
        rows.append(
            {
                "finding_key": visible(key),
                "rule_id": visible(cols["rule_id"][i]),
                "severity": visible(cols["severity"][i]),
                "sev_class": severity_class(cols["severity"][i]),
                "status": visible(status[i] or "open"),
                "title": visible(cols["title"][i]),
                "action": visible(cols["action"][i]),
                "principal_kind": principal.kind if principal_id else "",
                "principal_id": visible(principal_id),
                "principal_name": visible(principal.name) if principal_id else NONE,
                "principal_secondary": visible(principal.secondary),
                "principal_org": _org(cols["principal_org"][i]),
                "principal_evidence": principal.evidence,
                "principal_conflict": principal.conflict,
                "resource_id": visible(group_id),
                "resource_name": visible(resource.name) if group_id else NONE,
                # a finding about one object (e.g. attribution review) reaches no resource
                "resource_org": _org(cols["resource_org"][i])
                if group_id or cols["resource_org"][i]
                else "",
                "resource_evidence": resource.evidence,
                "resource_conflict": resource.conflict,
                "path": _path_hops(hop_ids, names),
                "path_partial": partial,
                "depth": -1 if depth is None else int(depth),
                "detail": visible(cols["detail"][i]),
                "hidden": has_hidden(*raw),
            }
        )
    rows.sort(
        key=lambda r: (
            r["status"] != "open",
            -severity_rank(r["severity"]),
            r["rule_id"],
            r["principal_name"].casefold(),
            r["finding_key"],
        )
    )
    return rows


def _action_rows(actions: pl.DataFrame, names: Mapping[str, _Obj]) -> list[dict[str, Any]]:
    cols = {c: _strs(actions, c) for c in actions.columns}
    rows: list[dict[str, Any]] = []
    for i in range(actions.height):
        group_id = cols["group_id"][i]
        member_id = cols["member_id"][i]
        group = names.get(group_id or "") or _unknown(group_id)
        member = names.get(member_id or "") or _unknown(member_id)
        powershell = cols["powershell"][i]
        rows.append(
            {
                "action_id": visible(cols["action_id"][i]),
                "kind": visible(cols["kind"][i]),
                "severity": visible(cols["severity"][i]),
                "sev_class": severity_class(cols["severity"][i]),
                "owning_org": _org(cols["owning_org"][i]),
                "group_id": visible(group_id),
                "group_name": visible(group.name) if group_id else NONE,
                "member_id": visible(member_id),
                "member_name": visible(member.name) if member_id else NONE,
                "member_kind": visible(cols["member_kind"][i] or member.kind),
                "member_org": member.org if member_id else "",
                "resolves": int(cols["resolves"][i] or 0),
                "summary": visible(cols["summary"][i]),
                "powershell": visible(powershell, keep_lines=True),
                "hidden": has_hidden(group.name, member.name, cols["summary"][i])
                or has_hidden(powershell, keep_lines=True),
            }
        )
    # grouped by owning force, then by group; worst and most useful first within a group
    rows.sort(
        key=lambda r: (
            r["owning_org"],
            r["group_name"].casefold(),
            r["group_id"],
            -severity_rank(r["severity"]),
            -r["resolves"],
            r["action_id"],
        )
    )
    sizes = Counter((r["owning_org"], r["group_id"]) for r in rows)
    impact: Counter[tuple[str, str]] = Counter()
    for r in rows:
        impact[(r["owning_org"], r["group_id"])] += r["resolves"]
    previous: tuple[str, str] | None = None
    for r in rows:
        current: tuple[str, str] = (r["owning_org"], r["group_id"])
        r["group_start"] = current != previous
        r["group_actions"] = sizes[current]
        r["group_resolves"] = impact[current]
        previous = current
    return rows


#: Columns of the JSON the page script reads (one list per row, in this order).
ACTION_COLUMNS: Final = (
    "action_id",
    "kind",
    "severity",
    "owning_org",
    "group_id",
    "group_name",
    "member_id",
    "member_name",
    "member_kind",
    "member_org",
    "resolves",
    "summary",
    "powershell",
    "hidden",
    "group_actions",
    "group_resolves",
)
FINDING_COLUMNS: Final = (
    "finding_key",
    "rule_id",
    "severity",
    "status",
    "principal_kind",
    "principal_id",
    "principal_name",
    "principal_secondary",
    "principal_org",
    "principal_evidence",
    "principal_conflict",
    "resource_id",
    "resource_name",
    "resource_org",
    "resource_evidence",
    "resource_conflict",
    "path",
    "path_partial",
    "depth",
    "detail",
    "hidden",
)


def _table_data(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dict[str, Any]:
    return {"columns": list(columns), "rows": [[r[c] for c in columns] for r in rows]}


def _summary(
    findings_rows: Sequence[Mapping[str, Any]],
    action_rows: Sequence[Mapping[str, Any]],
    docs: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    open_rows = [f for f in findings_rows if f["status"] == "open"]
    accepted_rows = [f for f in findings_rows if f["status"] != "open"]
    open_sev = Counter(f["severity"] for f in open_rows)
    acc_sev = Counter(f["severity"] for f in accepted_rows)
    severities = list(SEVERITIES) + sorted(
        (set(open_sev) | set(acc_sev)) - set(SEVERITIES), key=str
    )
    open_rule = Counter(f["rule_id"] for f in open_rows)
    acc_rule = Counter(f["rule_id"] for f in accepted_rows)
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
    force = Counter((f["principal_org"], f["resource_org"]) for f in open_rows)
    by_force = [
        {"principal_org": p, "resource_org": r, "open": n}
        for (p, r), n in sorted(force.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    org_actions = Counter(a["owning_org"] for a in action_rows)
    org_resolves: Counter[str] = Counter()
    for a in action_rows:
        org_resolves[a["owning_org"]] += a["resolves"]
    return {
        "findings_total": len(findings_rows),
        "open_total": len(open_rows),
        "accepted_total": len(accepted_rows),
        "by_severity": [
            {
                "severity": s,
                "sev_class": severity_class(s),
                "open": open_sev[s],
                "accepted": acc_sev[s],
            }
            for s in severities
        ],
        "by_rule": by_rule,
        "by_force": by_force,
        "actions_total": len(action_rows),
        "actions_resolves": sum(a["resolves"] for a in action_rows),
        "actions_by_org": [
            {"org": o, "actions": org_actions[o], "resolves": org_resolves[o]}
            for o in sorted(org_actions)
        ],
        "groups_total": len({(a["owning_org"], a["group_id"]) for a in action_rows}),
        # findings are already sorted open first, worst first
        "top": list(open_rows[:TOP_ITEMS]),
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
) -> dict[str, Any]:
    """Everything the report shows, as plain data.

    ``generated`` defaults to the manifest's ``finished`` time (no clock is read, so a
    re-render is byte-identical); ``marking`` is the protective marking printed at the top and
    bottom of every page ("" for none); ``org_names`` maps org ids to display names for the
    legend; ``page_size`` rows are server-rendered and shown per page by the script.
    """
    path_map: dict[str, list[str]] = {}
    if paths.height and {"finding_key", "path"} <= set(paths.columns):
        for key, hops in zip(_strs(paths, "finding_key"), _strs(paths, "path"), strict=True):
            if key is not None and hops:
                path_map[key] = [h for h in hops if h is not None]
    ids: set[str] = set()
    for df, columns in (
        (findings, ("account_id", "group_id", "member_group_id", "via_group_id")),
        (actions, ("group_id", "member_id")),
    ):
        for c in columns:
            ids.update(v for v in _strs(df, c) if v)
    for hops in path_map.values():
        ids.update(hops)
    names = _lookup(accounts, groups, ids)

    finding_rows = _finding_rows(findings, path_map, names)
    action_rows = _action_rows(actions, names)
    docs = _rule_docs(rules, finding_rows)
    for f in finding_rows:
        f["rule_title"] = docs[f["rule_id"]]["title"]
        f["rationale"] = docs[f["rule_id"]]["rationale"]

    sources = _sources(manifest)
    complete = manifest.get("complete") is True and all(s["complete"] for s in sources)
    orgs = (
        {f["principal_org"] for f in finding_rows}
        | {f["resource_org"] for f in finding_rows if f["resource_org"]}
        | {a["owning_org"] for a in action_rows}
        | {a["member_org"] for a in action_rows if a["member_org"]}
        | {h["org"] for f in finding_rows for h in f["path"]}
        | set(org_names or {})
    )
    org_class = _org_classes(orgs)
    names_map = dict(org_names or {})
    rule_counts = Counter(f["rule_id"] for f in finding_rows if f["status"] == "open")
    page = max(1, int(page_size))
    return {
        "title": visible(title),
        "marking": visible(marking),
        "run": _run(manifest, generated),
        "complete": complete,
        "incomplete_sources": [s for s in sources if not s["complete"]],
        "sources": sources,
        "files": _files(manifest),
        "severities": list(SEVERITIES),
        "orgs": [
            {"id": o, "name": visible(names_map.get(o, "")), "cls": org_class[o]}
            for o in sorted(orgs)
        ],
        "org_class": org_class,
        "summary": _summary(finding_rows, action_rows, docs),
        "worklist": {
            "total": len(action_rows),
            "page_size": page,
            "first_page": action_rows[:page],
            "data": _table_data(action_rows, ACTION_COLUMNS),
        },
        "findings": {
            "total": len(finding_rows),
            "page_size": page,
            "first_page": finding_rows[:page],
            "data": _table_data(finding_rows, FINDING_COLUMNS),
        },
        "rules": [dict(d, open=rule_counts[rid]) for rid, d in docs.items()],
        "rule_docs": {
            rid: {"title": d["title"], "rationale": d["rationale"], "remediation": d["remediation"]}
            for rid, d in docs.items()
        },
    }
