"""Findings -> the concrete actions that resolve them, each with its impact.

Where a nested path crosses from one organisation into the other, the action is placed at that
crossing edge: un-nest the group (one change for every member behind it) rather than remove each
member. When the group at the crossing is *mixed* (used by both forces, so cutting it would take
legitimate access away), the action is to split that group instead. The smallest action wins in
two more places: every access of a guest of the other force goes with the guest (one deletion),
and every link of an empty group to the other force (its nesting, owner, roles) goes with the
group. Each action lists the findings it resolves; actions are ordered by severity, then by how
many findings they resolve. Only *open* findings are planned: an accepted one (an exception of
the register) is left alone. Everything is polars joins over the findings and the closure: no
per-finding Python.
"""

from __future__ import annotations

import polars as pl

from ..analysis.expand import finding_paths
from ..model import ACTIONS_SCHEMA, SEVERITY_RANK, SPECIAL_ORGS, ActionKind, MemberKind, Severity
from .commands import render_commands

A = ActionKind
_ACCESS_ACTIONS = [A.REMOVE_MEMBER.value, A.UNNEST_GROUP.value]
#: Actions on one of an account's rights, which deleting the account (a guest) also resolves.
_GUEST_ROUTED = [
    A.REMOVE_MEMBER.value,
    A.REMOVE_MEMBERSHIPS.value,
    A.REMOVE_OWNER.value,
    A.REMOVE_ROLE_ASSIGNMENT.value,
    A.REMOVE_APP_ROLE_ASSIGNMENT.value,
]
#: Actions on a group's link to the other organisation, which deleting the (empty) group resolves.
_EMPTY_ROUTED = [
    A.UNNEST_GROUP.value,
    A.REMOVE_OWNER.value,
    A.REMOVE_ROLE_ASSIGNMENT.value,
    A.REMOVE_APP_ROLE_ASSIGNMENT.value,
]


def _rank_expr(col: str) -> pl.Expr:
    return pl.col(col).replace_strict({s.value: r for s, r in SEVERITY_RANK.items()}, default=0)


def crossing_edges(
    findings: pl.DataFrame, closure: pl.DataFrame, groups: pl.DataFrame
) -> pl.DataFrame:
    """For each account finding with a path: the edge where the path leaves the account's org.

    Returns ``finding_key``, ``cross_group`` (first group of another real organisation on the
    path), ``cross_member`` (the node before it: the account or a group), ``hop`` (1 = the
    account's own membership).
    """
    acc = findings.filter(
        pl.col("action").is_in(_ACCESS_ACTIONS)
        & pl.col("account_id").is_not_null()
        & pl.col("group_id").is_not_null()
        & pl.col("member_group_id").is_null()
    )
    paths = finding_paths(acc, closure)
    g_org = groups.select(node="group_id", node_org="org")
    # Each hop's number comes with it through the explode (no window over the finding keys);
    # the exploded rows keep each path's order, so the first kept row per finding is its
    # smallest hop, and only the ~1 row per finding left is sorted.
    exploded = (
        paths.join(acc.select("finding_key", "principal_org"), on="finding_key")
        .with_columns(
            prev=pl.col("path").list.shift(1),
            hop=pl.int_ranges(pl.col("path").list.len(), dtype=pl.Int64),
        )
        .explode("path", "prev", "hop")
        .rename({"path": "node"})
        .filter(pl.col("hop") >= 1)
        .join(g_org, on="node", how="left", maintain_order="left")
        .filter(
            ~pl.col("node_org").is_in(list(SPECIAL_ORGS))
            & pl.col("node_org").is_not_null()
            & (pl.col("node_org") != pl.col("principal_org"))
        )
        .unique("finding_key", keep="first", maintain_order=True)
        .sort("finding_key")
    )
    return exploded.select("finding_key", cross_group="node", cross_member="prev", hop="hop")


def _flagged(findings: pl.DataFrame, rule: str, column: str) -> list[str]:
    """Ids in ``column`` of the findings of ``rule`` (mixed groups, empty groups, guests)."""
    return findings.filter(pl.col("rule_id") == rule)[column].drop_nulls().unique().to_list()


def mixed_groups(findings: pl.DataFrame) -> pl.DataFrame:
    """Groups the mixed-group rule fired on (one column: ``group_id``)."""
    return findings.filter(pl.col("rule_id") == "mixed-group").select("group_id").unique()


def _targets(
    f: pl.DataFrame, mixed: list[str], empty: list[str], guests: list[str]
) -> pl.DataFrame:
    """Per finding: the action ``kind`` and its targets ``t_group``, ``t_member``,
    ``t_resource``, ``t_right``."""
    action = pl.col("action")
    is_access = action.is_in(_ACCESS_ACTIONS) & pl.col("account_id").is_not_null()
    is_nesting = action.is_in(_ACCESS_ACTIONS) & pl.col("member_group_id").is_not_null()
    principal = pl.coalesce("account_id", "member_group_id")
    access_kind = (
        pl.when(pl.col("hop").fill_null(1) <= 1)
        .then(pl.lit(A.REMOVE_MEMBER.value))
        .otherwise(pl.lit(A.UNNEST_GROUP.value))
    )
    null = pl.lit(None, pl.String)
    planned = f.with_columns(
        kind=pl.when(is_access)
        .then(access_kind)
        .when(is_nesting)
        .then(pl.lit(A.UNNEST_GROUP.value))
        .otherwise(action),
        t_group=pl.when(is_access)
        .then(pl.coalesce("cross_group", "group_id"))
        .when(action.is_in([A.REMOVE_MEMBERSHIPS.value, A.REMOVE_GUEST.value]))
        .then(null)
        .otherwise(pl.col("group_id")),
        t_member=pl.when(is_access)
        .then(pl.coalesce("cross_member", "account_id"))
        .when(is_nesting)
        .then(pl.col("member_group_id"))
        .when(action == A.DELETE_GROUP.value)
        .then(null)
        .otherwise(principal),
        t_resource=pl.when(
            action.is_in(
                [
                    A.REMOVE_ROLE_ASSIGNMENT.value,
                    A.REMOVE_APP_ROLE_ASSIGNMENT.value,
                    A.REMOVE_SID_HISTORY.value,
                    A.RESOLVE_DUAL_IDENTITY.value,
                    A.REVIEW_EXCEPTION.value,
                ]
            )
        )
        .then(pl.col("resource_id"))
        .otherwise(null),
        # an app role assignment is removed per (principal, application): all of its roles there
        t_right=pl.when(action.is_in([A.REMOVE_ROLE_ASSIGNMENT.value, A.REMOVE_SID_HISTORY.value]))
        .then(pl.col("right"))
        .otherwise(null),
    )
    # A mixed group at the crossing is split rather than stripped.
    split_target = (
        pl.when((pl.col("kind") == A.REMOVE_MEMBER.value) & pl.col("t_group").is_in(mixed))
        .then(pl.col("t_group"))
        .when((pl.col("kind") == A.UNNEST_GROUP.value) & pl.col("t_member").is_in(mixed))
        .then(pl.col("t_member"))
    )
    planned = planned.with_columns(_split=split_target).with_columns(
        kind=pl.when(pl.col("_split").is_not_null())
        .then(pl.lit(A.SPLIT_GROUP.value))
        .otherwise(pl.col("kind")),
        t_group=pl.coalesce("_split", "t_group"),
        t_member=pl.when(pl.col("_split").is_not_null()).then(null).otherwise(pl.col("t_member")),
    )
    # An empty group that only links the forces is deleted, with every one of its links.
    empty_target = (
        pl.when(
            pl.col("kind").is_in(_EMPTY_ROUTED)
            & pl.col("member_group_id").is_in(empty)
            & pl.col("account_id").is_null()
        )
        .then(pl.col("member_group_id"))
        .when((pl.col("kind") == A.REMOVE_OWNER.value) & pl.col("group_id").is_in(empty))
        .then(pl.col("group_id"))
    )
    # A guest of the other force is deleted, with every one of its own rights.
    guest_target = pl.when(
        pl.col("kind").is_in(_GUEST_ROUTED)
        & pl.col("account_id").is_in(guests)
        & (pl.col("t_member") == pl.col("account_id")).fill_null(True)
    ).then(pl.col("account_id"))
    planned = planned.with_columns(_empty=empty_target, _guest=guest_target).with_columns(
        kind=pl.when(pl.col("_empty").is_not_null())
        .then(pl.lit(A.DELETE_GROUP.value))
        .when(pl.col("_guest").is_not_null())
        .then(pl.lit(A.REMOVE_GUEST.value))
        .otherwise(pl.col("kind")),
        t_group=pl.when(pl.col("_empty").is_not_null())
        .then(pl.col("_empty"))
        .when(pl.col("_guest").is_not_null())
        .then(null)
        .otherwise(pl.col("t_group")),
        t_member=pl.when(pl.col("_empty").is_not_null())
        .then(null)
        .otherwise(pl.coalesce("_guest", "t_member")),
        t_resource=pl.when(pl.col("_empty").is_not_null() | pl.col("_guest").is_not_null())
        .then(null)
        .otherwise(pl.col("t_resource")),
        t_right=pl.when(pl.col("_empty").is_not_null() | pl.col("_guest").is_not_null())
        .then(null)
        .otherwise(pl.col("t_right")),
    )
    return planned.with_columns(
        t_group=pl.when(pl.col("kind") == A.REVIEW_ATTRIBUTION.value)
        .then(pl.col("group_id"))
        .otherwise(pl.col("t_group")),
        t_member=pl.when(pl.col("kind") == A.REVIEW_ATTRIBUTION.value)
        .then(pl.col("account_id"))
        .when(pl.col("kind") == A.SPLIT_GROUP.value)
        .then(null)
        .otherwise(pl.col("t_member")),
    )


def plan_actions(
    findings: pl.DataFrame,
    *,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
    closure: pl.DataFrame,
) -> pl.DataFrame:
    """One row per action (ACTIONS_SCHEMA), with the open findings it resolves."""
    if "status" in findings.columns:
        findings = findings.filter(pl.col("status") == "open")
    if findings.is_empty():
        return pl.DataFrame(schema=ACTIONS_SCHEMA)
    mixed = mixed_groups(findings).get_column("group_id").to_list()
    empty = _flagged(findings, "empty-cross-org-group", "group_id")
    guests = _flagged(findings, "cross-org-guest", "account_id")
    edges = crossing_edges(findings, closure, groups)
    planned = _targets(findings.join(edges, on="finding_key", how="left"), mixed, empty, guests)
    keys = ["kind", "t_group", "t_member", "t_resource", "t_right"]
    actions = (
        planned.with_columns(
            action_id=pl.concat_str([pl.col(k).fill_null("") for k in keys], separator="|"),
            _rank=_rank_expr("severity"),
        )
        .group_by("action_id", *keys)
        .agg(
            _rank=pl.col("_rank").max(),
            finding_keys=pl.col("finding_key").sort(),
            resolves=pl.len().cast(pl.Int64),
            _res_org=pl.col("resource_org").drop_nulls().min(),
            _rights=pl.col("right").drop_nulls().unique().sort(),
        )
        .with_columns(
            severity=pl.col("_rank").replace_strict(
                {r: s.value for s, r in SEVERITY_RANK.items()}, default=Severity.INFO.value
            )
        )
        .rename(
            {
                "t_group": "group_id",
                "t_member": "member_id",
                "t_resource": "resource_id",
                "t_right": "right",
            }
        )
    )
    actions = _member_kind_and_owner(actions, accounts, groups)
    actions = render_commands(
        actions,
        accounts=accounts,
        groups=groups,
        memberships=memberships,
        findings=planned,
    )
    return (
        actions.sort(["_rank", "resolves", "action_id"], descending=[True, True, False])
        .select(ACTIONS_SCHEMA.names())
        .cast(dict(ACTIONS_SCHEMA))  # type: ignore[arg-type]
    )


def _member_kind_and_owner(
    actions: pl.DataFrame, accounts: pl.DataFrame, groups: pl.DataFrame
) -> pl.DataFrame:
    """``member_kind`` of what is removed; ``owning_org``: the organisation owning the changed
    object (the group; for a removed right, the force whose role or app it is; else the
    account)."""
    acc = accounts.select(member_id="account_id", _acc_org="org", _is_acc=pl.lit(True)).unique(
        "member_id"
    )
    grp_member = groups.select(member_id="group_id", _grp_member_org="org").unique("member_id")
    grp = groups.select("group_id", _grp_org="org").unique("group_id")
    out = (
        actions.join(acc, on="member_id", how="left")
        .join(grp_member, on="member_id", how="left")
        .join(grp, on="group_id", how="left")
    )
    rights = [
        A.REMOVE_ROLE_ASSIGNMENT.value,
        A.REMOVE_APP_ROLE_ASSIGNMENT.value,
        A.REMOVE_GUEST.value,
    ]
    return out.with_columns(
        member_kind=pl.when(pl.col("_is_acc"))
        .then(pl.lit(MemberKind.ACCOUNT.value))
        .when(pl.col("_grp_member_org").is_not_null())
        .then(pl.lit(MemberKind.GROUP.value)),
        owning_org=pl.when(pl.col("kind").is_in(rights))
        .then(pl.coalesce("_res_org", "_grp_org", "_acc_org", "_grp_member_org"))
        .otherwise(pl.coalesce("_grp_org", "_acc_org", "_grp_member_org", "_res_org")),
    ).drop("_acc_org", "_is_acc", "_grp_member_org", "_grp_org")
