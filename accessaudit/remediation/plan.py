"""Findings -> the concrete actions that resolve them, each with its impact.

Where a nested path crosses from one organisation into the other, the action is placed at that
crossing edge: un-nest the group (one change for every member behind it) rather than remove each
member. When the group at the crossing is *mixed* (used by both forces, so cutting it would take
legitimate access away), the action is to split that group instead. Each action lists the
findings it resolves; actions are ordered by severity, then by how many findings they resolve.
Everything is polars joins over the findings and the closure: no per-finding Python.
"""

from __future__ import annotations

import polars as pl

from ..analysis.expand import finding_paths
from ..model import ACTIONS_SCHEMA, SEVERITY_RANK, SPECIAL_ORGS, ActionKind, MemberKind, Severity
from .commands import render_commands

_ACCESS_ACTIONS = [ActionKind.REMOVE_MEMBER.value, ActionKind.UNNEST_GROUP.value]


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
        pl.col("account_id").is_not_null()
        & pl.col("group_id").is_not_null()
        & pl.col("member_group_id").is_null()
    )
    paths = finding_paths(acc, closure)
    g_org = groups.select(node="group_id", node_org="org")
    exploded = (
        paths.join(acc.select("finding_key", "principal_org"), on="finding_key")
        .with_columns(prev=pl.col("path").list.shift(1))
        .explode("path", "prev")
        .with_columns(hop=pl.int_range(pl.len()).over("finding_key"))
        .rename({"path": "node"})
        .filter(pl.col("hop") >= 1)
        .join(g_org, on="node", how="left")
        .filter(
            ~pl.col("node_org").is_in(list(SPECIAL_ORGS))
            & pl.col("node_org").is_not_null()
            & (pl.col("node_org") != pl.col("principal_org"))
        )
        .sort("finding_key", "hop")
        .unique("finding_key", keep="first", maintain_order=True)
    )
    return exploded.select("finding_key", cross_group="node", cross_member="prev", hop="hop")


def mixed_groups(findings: pl.DataFrame) -> pl.DataFrame:
    """Groups the mixed-group rule fired on (one column: ``group_id``)."""
    return findings.filter(pl.col("rule_id") == "mixed-group").select("group_id").unique()


def plan_actions(
    findings: pl.DataFrame,
    *,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
    closure: pl.DataFrame,
) -> pl.DataFrame:
    """One row per action (ACTIONS_SCHEMA), with the findings it resolves."""
    if findings.is_empty():
        return pl.DataFrame(schema=ACTIONS_SCHEMA)
    mixed = mixed_groups(findings).get_column("group_id").to_list()
    edges = crossing_edges(findings, closure, groups)
    f = findings.join(edges, on="finding_key", how="left")

    is_access = pl.col("action").is_in(_ACCESS_ACTIONS) & pl.col("account_id").is_not_null()
    is_nesting = pl.col("action").is_in(_ACCESS_ACTIONS) & pl.col("member_group_id").is_not_null()
    # Target of the change (group) and what is removed from it (member).
    cross_group = pl.coalesce("cross_group", "group_id")
    cross_member = pl.coalesce("cross_member", "account_id")
    access_kind = (
        pl.when(pl.col("hop").fill_null(1) <= 1)
        .then(pl.lit(ActionKind.REMOVE_MEMBER.value))
        .otherwise(pl.lit(ActionKind.UNNEST_GROUP.value))
    )
    planned = f.with_columns(
        kind=pl.when(is_access)
        .then(access_kind)
        .when(is_nesting)
        .then(pl.lit(ActionKind.UNNEST_GROUP.value))
        .otherwise(pl.col("action")),
        t_group=pl.when(is_access)
        .then(cross_group)
        .when(pl.col("action") == ActionKind.REMOVE_MEMBERSHIPS.value)
        .then(pl.lit(None, pl.String))
        .otherwise(pl.col("group_id")),
        t_member=pl.when(is_access)
        .then(cross_member)
        .when(is_nesting)
        .then(pl.col("member_group_id"))
        .otherwise(pl.col("account_id")),
    )
    # A mixed group at the crossing is split rather than stripped.
    split_target = (
        pl.when((pl.col("kind") == ActionKind.REMOVE_MEMBER.value) & pl.col("t_group").is_in(mixed))
        .then(pl.col("t_group"))
        .when((pl.col("kind") == ActionKind.UNNEST_GROUP.value) & pl.col("t_member").is_in(mixed))
        .then(pl.col("t_member"))
    )
    planned = (
        planned.with_columns(_split=split_target)
        .with_columns(
            kind=pl.when(pl.col("_split").is_not_null())
            .then(pl.lit(ActionKind.SPLIT_GROUP.value))
            .otherwise(pl.col("kind")),
            t_group=pl.coalesce("_split", "t_group"),
            t_member=pl.when(pl.col("_split").is_not_null())
            .then(pl.lit(None, pl.String))
            .otherwise(pl.col("t_member")),
        )
        .with_columns(
            t_group=pl.when(pl.col("kind") == ActionKind.REVIEW_ATTRIBUTION.value)
            .then(pl.col("group_id"))
            .otherwise(pl.col("t_group")),
            t_member=pl.when(pl.col("kind") == ActionKind.REVIEW_ATTRIBUTION.value)
            .then(pl.col("account_id"))
            .when(pl.col("kind") == ActionKind.SPLIT_GROUP.value)
            .then(pl.lit(None, pl.String))
            .otherwise(pl.col("t_member")),
        )
    )
    actions = (
        planned.with_columns(
            action_id=pl.concat_str(
                [pl.col("kind"), pl.col("t_group").fill_null(""), pl.col("t_member").fill_null("")],
                separator="|",
            ),
            _rank=_rank_expr("severity"),
        )
        .group_by("action_id", "kind", "t_group", "t_member")
        .agg(
            _rank=pl.col("_rank").max(),
            finding_keys=pl.col("finding_key").sort(),
            resolves=pl.len().cast(pl.Int64),
        )
        .with_columns(
            severity=pl.col("_rank").replace_strict(
                {r: s.value for s, r in SEVERITY_RANK.items()}, default=Severity.INFO.value
            )
        )
        .rename({"t_group": "group_id", "t_member": "member_id"})
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
    return out.with_columns(
        member_kind=pl.when(pl.col("_is_acc"))
        .then(pl.lit(MemberKind.ACCOUNT.value))
        .when(pl.col("_grp_member_org").is_not_null())
        .then(pl.lit(MemberKind.GROUP.value)),
        owning_org=pl.coalesce("_grp_org", "_acc_org", "_grp_member_org"),
    ).drop("_acc_org", "_is_acc", "_grp_member_org", "_grp_org")
