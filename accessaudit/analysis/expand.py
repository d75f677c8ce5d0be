"""Nested membership: the small group closure first, then effective account memberships.

Directories give direct edges only (we never ask the server to expand: AD's in-chain rule is
slow, OpenLDAP has none, and Entra's transitiveMembers hides the path). We expand ourselves:

1. ``group_closure``: every (group, ancestor) pair with the depth and the shortest nesting path,
   by breadth-first search over group->group edges, one polars join per level. A pair is added
   once, at its shortest depth, so cycles end (a group is never its own ancestor) and diamonds
   keep one shortest path. The table is small (groups x ancestors).
2. ``effective_memberships``: direct account edges joined onto the closure, keeping per
   (account, group) the smallest depth and the direct group it is reached through. No path per
   pair: at 1M accounts there are ~70M pairs; a finding's path is derived from the closure
   (:func:`finding_paths`).
"""

from __future__ import annotations

import polars as pl

from ..model import EFFECTIVE_SCHEMA, GROUP_CLOSURE_SCHEMA, MemberKind


def group_closure(memberships: pl.DataFrame) -> pl.DataFrame:
    """Transitive group->ancestor pairs with shortest depth and path (GROUP_CLOSURE_SCHEMA)."""
    edges = (
        memberships.lazy()
        .filter(pl.col("member_kind") == MemberKind.GROUP.value)
        .filter(pl.col("member_id") != pl.col("group_id"))
        .select(child=pl.col("member_id"), parent=pl.col("group_id"))
        .unique()
        .collect()
    )
    frontier = edges.select(
        group_id=pl.col("child"),
        ancestor_id=pl.col("parent"),
        depth=pl.lit(1, pl.Int32),
        path=pl.concat_list([pl.col("child"), pl.col("parent")]),
    ).sort("group_id", "ancestor_id")
    found = [frontier]
    seen = frontier.select("group_id", "ancestor_id")
    while frontier.height:
        step = (
            frontier.join(edges, left_on="ancestor_id", right_on="child")
            .filter(pl.col("parent") != pl.col("group_id"))
            .select(
                "group_id",
                ancestor_id=pl.col("parent"),
                depth=pl.col("depth") + 1,
                path=pl.col("path").list.concat(pl.concat_list(pl.col("parent"))),
            )
            .join(seen, on=["group_id", "ancestor_id"], how="anti")
        )
        # One shortest path per pair, chosen deterministically.
        step = (
            step.with_columns(_k=pl.col("path").list.join("\x1f"))
            .sort("group_id", "ancestor_id", "_k")
            .unique(["group_id", "ancestor_id"], keep="first", maintain_order=True)
            .drop("_k")
        )
        if not step.height:
            break
        found.append(step)
        seen = pl.concat([seen, step.select("group_id", "ancestor_id")])
        frontier = step
    return pl.concat(found).cast(dict(GROUP_CLOSURE_SCHEMA))  # type: ignore[arg-type]


def effective_memberships(memberships: pl.DataFrame, closure: pl.DataFrame) -> pl.DataFrame:
    """Every group each account reaches, directly (depth 0) or nested (EFFECTIVE_SCHEMA).

    Per (account, group) the smallest depth wins; ties go to the lexically smallest direct
    group, then ``via``. The de-duplication runs on integer codes (one UInt64 key per pair),
    not on strings: sorting ids as text was most of this stage's time and memory.
    """
    direct = (
        memberships.lazy()
        .filter(pl.col("member_kind") == MemberKind.ACCOUNT.value)
        .select(account_id=pl.col("member_id"), group_id=pl.col("group_id"), via=pl.col("via"))
        .collect()
    )
    # Codes in lexical order, so comparing codes compares ids (deterministic tie-breaks).
    accounts = direct.get_column("account_id").unique().sort()
    groups = (
        pl.concat(
            [
                direct.get_column("group_id"),
                closure.get_column("group_id"),
                closure.get_column("ancestor_id"),
            ]
        )
        .unique()
        .sort()
    )
    vias = direct.get_column("via").unique().sort()
    a_code = pl.DataFrame({"account_id": accounts}).with_row_index("a")
    g_code = pl.DataFrame({"group_id": groups}).with_row_index("g")
    v_code = pl.DataFrame({"via": vias}).with_row_index("v")
    d = (
        direct.lazy()
        .join(a_code.lazy(), on="account_id")
        .join(g_code.lazy(), on="group_id")
        .join(v_code.lazy(), on="via")
        .select("a", "g", "v", d=pl.lit(0, pl.Int32), vg=pl.col("g"))
    )
    c = (
        closure.lazy()
        .join(g_code.lazy(), on="group_id")
        .join(g_code.lazy().rename({"group_id": "ancestor_id", "g": "anc"}), on="ancestor_id")
        .select("g", "anc", pl.col("depth").cast(pl.Int32))
    )
    nested = d.join(c, on="g").select(
        "a", g=pl.col("anc"), v=pl.col("v"), d=pl.col("depth"), vg=pl.col("g")
    )
    best = (
        pl.concat([d, nested])
        .with_columns(key=pl.col("a").cast(pl.UInt64) * (1 << 32) + pl.col("g").cast(pl.UInt64))
        .sort("key", "d", "vg", "v")
        .unique("key", keep="first", maintain_order=True)
        .collect()
    )
    return pl.DataFrame(
        {
            "account_id": accounts.gather(best.get_column("a")),
            "group_id": groups.gather(best.get_column("g")),
            "depth": best.get_column("d"),
            "via_group_id": groups.gather(best.get_column("vg")),
            "via": vias.gather(best.get_column("v")),
        },
        schema=EFFECTIVE_SCHEMA,
    )


def finding_paths(findings: pl.DataFrame, closure: pl.DataFrame) -> pl.DataFrame:
    """Hop-by-hop path of each finding as object ids: ``finding_key``, ``path``.

    Account findings: account, its direct group, then the closure's shortest path up to the
    finding's group. Group-nesting findings: child group, parent group. Others: no row.
    """
    acc = findings.filter(pl.col("account_id").is_not_null() & pl.col("group_id").is_not_null())
    direct = acc.filter(
        pl.col("via_group_id").is_null() | (pl.col("via_group_id") == pl.col("group_id"))
    ).select(
        "finding_key",
        path=pl.concat_list([pl.col("account_id"), pl.col("group_id")]),
    )
    nested = (
        acc.filter(
            pl.col("via_group_id").is_not_null() & (pl.col("via_group_id") != pl.col("group_id"))
        )
        .join(
            closure.select(
                pl.col("group_id").alias("via_group_id"),
                pl.col("ancestor_id").alias("group_id"),
                pl.col("path").alias("_p"),
            ),
            on=["via_group_id", "group_id"],
            how="left",
        )
        .select(
            "finding_key",
            path=pl.concat_list([pl.col("account_id")]).list.concat(
                pl.col("_p").fill_null(pl.concat_list([pl.col("via_group_id"), pl.col("group_id")]))
            ),
        )
    )
    groups = findings.filter(
        pl.col("member_group_id").is_not_null() & pl.col("group_id").is_not_null()
    ).select(
        "finding_key",
        path=pl.concat_list([pl.col("member_group_id"), pl.col("group_id")]),
    )
    return pl.concat([direct, nested, groups])
