"""Where a finding's path crosses into the other organisation, and the edges a split removes.

The planner puts an access's action at its crossing edge (:func:`crossing_edges`); a split
takes the split group out of the other force's parents its findings cross into
(:func:`split_unnests`), and the what-if removes exactly those edges.
"""

from __future__ import annotations

import polars as pl

from accessaudit.model import SPECIAL_ORGS, ActionKind

A = ActionKind
#: Rule actions of an access through a membership: the planner cuts it at its crossing edge.
ACCESS_ACTIONS = [A.REMOVE_MEMBER.value, A.UNNEST_GROUP.value]


def crossing_edges(
    findings: pl.DataFrame, paths: pl.DataFrame, groups: pl.DataFrame
) -> pl.DataFrame:
    """For each account finding with a path: the edge where the path leaves the account's org.

    ``paths`` is the run's ``finding_paths`` table (``finding_key``, ``path``: object ids hop by
    hop), as the pipeline derived it from the group closure; rows of other findings are ignored.

    Returns ``finding_key``, ``cross_group`` (first group of another real organisation on the
    path), ``cross_member`` (the node before it: the account or a group), ``hop`` (1 = the
    account's own membership).
    """
    acc = findings.filter(
        pl.col("action").is_in(ACCESS_ACTIONS)
        & pl.col("account_id").is_not_null()
        & pl.col("group_id").is_not_null()
        & pl.col("member_group_id").is_null()
    )
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


def split_unnests(
    actions: pl.DataFrame,
    findings: pl.DataFrame,
    paths: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
) -> pl.DataFrame:
    """``action_id, group_id, member_id``: the edges (parent, split group) a split removes.

    Where a finding a split resolves crosses from the split group into a group of another
    force (the nesting finding itself, or a nested access whose crossing edge leaves the split
    group), the split takes the group out of that parent: moving the other force's members out
    leaves the group single-force, and still nested across. Shared by the commands and the
    what-if, so both remove the same edges.
    """
    split_keys = (
        actions.filter(pl.col("kind") == A.SPLIT_GROUP.value)
        .select("action_id", split_id="group_id", finding_key="finding_keys")
        .explode("finding_key")
    )
    f = findings.join(split_keys, on="finding_key")
    nested = f.filter(pl.col("member_group_id") == pl.col("split_id")).select(
        "action_id", "group_id", member_id="split_id"
    )
    crossing = (
        crossing_edges(f, paths, groups)
        .join(f.select("finding_key", "action_id", "split_id"), on="finding_key")
        .filter(pl.col("cross_member") == pl.col("split_id"))
        .select("action_id", group_id="cross_group", member_id="split_id")
    )
    direct = memberships.select("group_id", "member_id").unique()
    return (
        pl.concat([nested, crossing])
        .unique()
        .join(direct, on=["group_id", "member_id"], how="semi")
        .sort("action_id", "group_id")
    )
