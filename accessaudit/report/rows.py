"""The findings' and actions' rows, in the two shapes the report uses.

Compact rows (lists in :data:`FINDING_COLUMNS` / :data:`ACTION_COLUMNS` order, objects by index
into :class:`~accessaudit.report.objects.Objects`) for the page script's embedded JSON, and one
dict per row with every name resolved for the server-rendered first page.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

import polars as pl

from accessaudit.model import ActionKind
from accessaudit.report.display import (
    NO_ORG,
    NONE,
    org_label,
    raw,
    severity_class,
    severity_rank,
    visible_column,
)
from accessaudit.report.objects import CONFLICT, EVIDENCE, ID, KIND, NAME, ORG, SECONDARY, Objects

#: Columns of the JSON the page script reads (one list per row, in this order). ``group``,
#: ``member``, ``principal``, ``resource`` and ``path`` hold indexes into ``objects``.
ACTION_COLUMNS: Final = (
    *("action_id", "kind", "severity", "owning_org", "group", "member", "member_kind"),
    *("resolves", "summary", "powershell", "hidden", "system", "apply"),
    *("group_actions", "group_resolves"),
)
FINDING_COLUMNS: Final = (
    *("finding_key", "rule_id", "severity", "status", "principal", "principal_org"),
    *("resource", "resource_org", "path", "path_partial", "depth", "detail", "hidden"),
    *("change", "first_seen"),  # history: new / persisting / regressed, first-seen date
)
#: Column name -> index in a compact row.
F: Final = {c: i for i, c in enumerate(FINDING_COLUMNS)}
A: Final = {c: i for i, c in enumerate(ACTION_COLUMNS)}


def path_map(paths: pl.DataFrame) -> dict[str, list[str]]:
    """Finding key -> the recorded nesting path (object ids) of the finding."""
    out: dict[str, list[str]] = {}
    if {"finding_key", "path"} <= set(paths.columns):
        for key, hops in zip(raw(paths, "finding_key"), raw(paths, "path"), strict=True):
            if key is not None and hops:
                out[key] = [h for h in hops if h is not None]
    return out


def with_system(actions: pl.DataFrame, groups: pl.DataFrame) -> pl.DataFrame:
    """``actions`` + system: the planner's system of record where it gave one, else the changed
    group's ``mastered``."""
    if not ({"group_id", "mastered"} <= set(groups.columns) and "group_id" in actions.columns):
        return actions
    planned = [pl.col("system")] if "system" in actions.columns else []
    return (
        actions.join(
            groups.select("group_id", _mastered="mastered").unique("group_id", keep="first"),
            on="group_id",
            how="left",
            maintain_order="left",
        )
        .with_columns(system=pl.coalesce(*planned, pl.col("_mastered")))
        .drop("_mastered")
    )


def finding_rows(
    findings: pl.DataFrame,
    paths: Mapping[str, list[str]],
    objs: Objects,
    change: Mapping[str, tuple[str, str]] | None = None,
) -> list[list[Any]]:
    """Compact rows (:data:`FINDING_COLUMNS`): open first, worst first."""
    key, key_h = visible_column(findings, "finding_key")
    rule, _ = visible_column(findings, "rule_id")
    severity, _ = visible_column(findings, "severity")
    status, _ = visible_column(findings, "status")
    detail, detail_h = visible_column(findings, "detail")
    raw_key = raw(findings, "finding_key")
    account, group = raw(findings, "account_id"), raw(findings, "group_id")
    member_group, via = raw(findings, "member_group_id"), raw(findings, "via_group_id")
    depth = raw(findings, "depth")
    principal_org, resource_org = raw(findings, "principal_org"), raw(findings, "resource_org")
    action, resource, right = (
        raw(findings, "action"),
        raw(findings, "resource_id"),
        raw(findings, "right"),
    )
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
        p, r = _refs(
            objs, action[i], principal_id, group[i], resource[i], right[i],
            principal_org[i], resource_org[i],
        )  # fmt: skip
        path = [objs.ref(h) for h in hops]
        refs = [x for x in (p, r, *path) if x is not None]
        rows.append(
            [
                key[i],
                rule[i],
                severity[i],
                status[i] or "open",
                p,
                org_label(principal_org[i]),
                r,
                # a finding about one object (an attribution review) reaches no resource
                org_label(resource_org[i]) if group[i] or resource_org[i] else "",
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
            f[F["status"]] != "open",
            -severity_rank(f[F["severity"]]),
            f[F["rule_id"]],
            objs.name(f[F["principal"]]).casefold(),
            f[F["finding_key"]],
        )
    )
    return rows


def _refs(
    objs: Objects,
    action: str | None,
    principal_id: str | None,
    group_id: str | None,
    resource_id: str | None,
    right: str | None,
    principal_org: str | None,
    resource_org: str | None,
) -> tuple[int | None, int | None]:
    """The principal and the resource a finding row shows (indexes into ``objs``)."""
    p, r = objs.ref(principal_id), objs.ref(group_id)
    if action == ActionKind.REVIEW_EXCEPTION.value and p is None and r is None:
        return _register_refs(objs, resource_id, right, principal_org, resource_org)
    if action in _TRUST_ACTIONS and p is None and r is None:
        return _trust_refs(objs, right, principal_org, resource_org)
    if r is None and right:
        # a right that is not a group (a directory role and its scope, an app role, an ACE on
        # an object, a folder, a mailbox): named in the resource column, not "—"
        r = objs.labelled(
            f"right\0{resource_id}\0{right}",
            str(right),
            "right",
            org_label(resource_org) if resource_org else NO_ORG,
        )
    return p, r


def _register_refs(
    objs: Objects,
    exception_id: str | None,
    rule_id: str | None,
    principal_org: str | None,
    resource_org: str | None,
) -> tuple[int, int]:
    """A finding of the exceptions register itself (expired or stale exception): its principal
    is the exception, what it reaches is the exception's rule, each with the force of the
    findings it covers (one pair; the finding's detail names every pair)."""
    ex = exception_id or "?"
    rule = rule_id or "?"
    return (
        objs.labelled(f"exception\0{ex}", f"exception {ex}", "exception", principal_org or NO_ORG),
        objs.labelled(f"rule\0{rule}", f"rule {rule}", "rule", resource_org or NO_ORG),
    )


_TRUST_ACTIONS = (ActionKind.QUARANTINE_TRUST.value, ActionKind.REMOVE_TRUST.value)


def _trust_refs(
    objs: Objects, trust: str | None, principal_org: str | None, resource_org: str | None
) -> tuple[int, int]:
    """A trust finding (``right``: "<domain> -> <partner>"): its principal is the partner
    domain let in, what it reaches is the domain trusting it."""
    domain, _, partner = (trust or "? -> ?").partition(" -> ")
    return (
        objs.labelled(f"domain\0{partner}", partner, "domain", principal_org or NO_ORG),
        objs.labelled(f"domain\0{domain}", domain, "domain", resource_org or NO_ORG),
    )


def action_rows(actions: pl.DataFrame, objs: Objects) -> list[list[Any]]:
    """Compact rows (:data:`ACTION_COLUMNS`): by changed group, worst first (``_by_group``)."""
    action_id, _ = visible_column(actions, "action_id")
    kind, _ = visible_column(actions, "kind")
    severity, _ = visible_column(actions, "severity")
    member_kind, _ = visible_column(actions, "member_kind")
    summary, summary_h = visible_column(actions, "summary")
    powershell, powershell_h = visible_column(actions, "powershell", keep_lines=True)
    owning = raw(actions, "owning_org")
    system = raw(actions, "system")  # the changed group's system of record (ad / cloud / app)
    # why apply leaves it to a person ("" where apply executes it, or a run stored before)
    apply, apply_h = visible_column(actions, "apply")
    group, member = raw(actions, "group_id"), raw(actions, "member_id")
    resolves = raw(actions, "resolves")
    rows: list[list[Any]] = []
    for i in range(actions.height):
        g, m = objs.ref(group[i]), objs.ref(member[i])
        hidden = (
            summary_h[i]
            or powershell_h[i]
            or apply_h[i]
            or any(objs.hidden[x] for x in (g, m) if x is not None)
        )
        rows.append(
            [
                action_id[i],
                kind[i],
                severity[i],
                org_label(owning[i]),
                g,
                m,
                member_kind[i] or ("" if m is None else objs.rows[m][KIND]),
                int(resolves[i] or 0),
                summary[i],
                powershell[i],
                hidden,
                system[i] or "",
                apply[i],
            ]
        )
    return _by_group(rows, objs)


def _by_group(rows: list[list[Any]], objs: Objects) -> list[list[Any]]:
    """``rows`` grouped by changed group, the groups whose actions matter most first (worst
    severity, then most findings resolved), actions within a group likewise; each row + its
    group's action count and findings resolved. The order of the exports (severity, then
    findings resolved) at the level a team works: a force's name never puts its medium
    actions above another force's critical one."""
    sizes: Counter[tuple[str, int | None]] = Counter()
    impact: Counter[tuple[str, int | None]] = Counter()
    worst: dict[tuple[str, int | None], int] = {}
    for a in rows:
        key = (a[A["owning_org"]], a[A["group"]])
        sizes[key] += 1
        impact[key] += a[A["resolves"]]
        worst[key] = max(worst.get(key, -1), severity_rank(a[A["severity"]]))
    rows.sort(
        key=lambda a: (
            -worst[(a[A["owning_org"]], a[A["group"]])],
            -impact[(a[A["owning_org"]], a[A["group"]])],
            a[A["owning_org"]],
            objs.name(a[A["group"]]).casefold(),
            -1 if a[A["group"]] is None else a[A["group"]],
            -severity_rank(a[A["severity"]]),
            -a[A["resolves"]],
            a[A["action_id"]],
        )
    )
    for a in rows:
        group_key = (a[A["owning_org"]], a[A["group"]])
        a.extend([sizes[group_key], impact[group_key]])
    return rows


def finding_view(
    f: Sequence[Any], objs: Objects, docs: Mapping[str, Mapping[str, Any]]
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
        view[f"{role}_kind"] = obj[KIND] if obj else ""
        view[f"{role}_id"] = obj[ID] if obj else ""
        view[f"{role}_name"] = obj[NAME] if obj else NONE
        view[f"{role}_secondary"] = obj[SECONDARY] if obj else ""
        view[f"{role}_evidence"] = obj[EVIDENCE] if obj else []
        view[f"{role}_conflict"] = obj[CONFLICT] if obj else False
    view.update(
        sev_class=severity_class(row["severity"]),
        path=[
            {
                "id": objs.rows[h][ID],
                "name": objs.rows[h][NAME],
                "org": objs.rows[h][ORG],
                "kind": objs.rows[h][KIND],
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


def action_view(a: Sequence[Any], objs: Objects, group_start: bool) -> dict[str, Any]:
    """One action with every name resolved (server-rendered rows)."""
    row = dict(zip(ACTION_COLUMNS, a, strict=True))
    group, member = row.pop("group"), row.pop("member")
    return {
        **row,
        "sev_class": severity_class(row["severity"]),
        "group_id": "" if group is None else objs.rows[group][ID],
        "group_name": objs.name(group),
        "member_id": "" if member is None else objs.rows[member][ID],
        "member_name": objs.name(member),
        "member_org": "" if member is None else objs.rows[member][ORG],
        "group_start": group_start,
    }


def top_actions(action_rows: Sequence[Sequence[Any]], n: int) -> list[Sequence[Any]]:
    """The ``n`` actions that matter most: worst severity, then most findings resolved."""
    return heapq.nsmallest(
        n,
        action_rows,
        key=lambda a: (-severity_rank(a[A["severity"]]), -a[A["resolves"]], a[A["action_id"]]),
    )


def first_actions(
    action_rows: Sequence[Sequence[Any]], objs: Objects, page: int
) -> list[dict[str, Any]]:
    """The first page of actions, each marking whether it starts a new (force, group)."""
    out = []
    for i, a in enumerate(action_rows[:page]):
        group_key = (a[A["owning_org"]], a[A["group"]])
        prev = action_rows[i - 1] if i else None
        start = prev is None or (prev[A["owning_org"]], prev[A["group"]]) != group_key
        out.append(action_view(a, objs, start))
    return out
