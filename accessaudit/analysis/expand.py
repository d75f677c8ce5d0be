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

import numpy as np
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
    group, then ``via``. Everything runs on integer codes given in lexical order (so comparing
    codes compares ids): the direct edges are joined once onto the closure plus each group
    itself at depth 0, every candidate row becomes one UInt64 (account, group, depth, direct
    group, via) whose order is the tie-break, and one sort of that column leaves the winner
    first per (account, group). Strings come back only at the end, by gathering.
    """
    direct = (
        memberships.lazy()
        .filter(pl.col("member_kind") == MemberKind.ACCOUNT.value)
        .select(account_id=pl.col("member_id"), group_id=pl.col("group_id"), via=pl.col("via"))
        .collect()
    )
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
    codes = pl.DataFrame(
        {
            "a": _codes(direct.get_column("account_id"), accounts),
            "g": _codes(direct.get_column("group_id"), groups),
            "v": _codes(direct.get_column("via"), vias),
        }
    )
    del direct
    up = pl.concat(
        [
            pl.DataFrame({"g": _codes(groups, groups)}).with_columns(
                anc=pl.col("g"), depth=pl.lit(0, pl.UInt32)
            ),
            pl.DataFrame(
                {
                    "g": _codes(closure.get_column("group_id"), groups),
                    "anc": _codes(closure.get_column("ancestor_id"), groups),
                    "depth": closure.get_column("depth").cast(pl.UInt32),
                }
            ),
        ]
    )
    max_depth = int(up.get_column("depth").max() or 0)  # type: ignore[arg-type]
    ab, gb, db, vb = (_bits(n) for n in (accounts.len(), groups.len(), max_depth + 1, vias.len()))
    if ab + 2 * gb + db + vb <= 64:
        best = _best_packed(codes, up, gb, db, vb)
    else:  # too many ids for one 64-bit word: the same order on four columns
        best = _best_columns(codes, up)
    del codes, up
    # Back to strings one column at a time, each code column dropped once gathered: at 70M
    # pairs the string views are 1.1 GB a column, the codes 280 MB.
    out: dict[str, pl.Series] = {}
    for name, code, dictionary in (
        ("account_id", "a", accounts),
        ("group_id", "g", groups),
        ("depth", "d", None),
        ("via_group_id", "vg", groups),
        ("via", "v", vias),
    ):
        col = best.get_column(code)
        best = best.drop(code)
        out[name] = col.cast(pl.Int32) if dictionary is None else dictionary.gather(col)
        del col
    return pl.DataFrame(out, schema=EFFECTIVE_SCHEMA)


def _codes(values: pl.Series, dictionary: pl.Series) -> pl.Series:
    """Each value's position in the sorted, unique ``dictionary`` (UInt32)."""
    return values.cast(pl.Enum(dictionary)).to_physical().cast(pl.UInt32)


def _bits(n: int) -> int:
    return max(1, (max(n, 1) - 1).bit_length())


def _best_packed(codes: pl.DataFrame, up: pl.DataFrame, gb: int, db: int, vb: int) -> pl.DataFrame:
    """One UInt64 per candidate: account | group | depth | direct group | via (high to low).

    Sorting that one column puts each (account, group)'s winner first. The bit fields are
    taken apart with numpy's shifts (polars has none; 64-bit division is several times slower).
    """
    low = db + gb + vb  # bits below the (account, group) key

    def at(col: str, shift: int) -> pl.Expr:
        return pl.col(col).cast(pl.UInt64) * pl.lit(1 << shift, pl.UInt64)

    packed = (
        codes.lazy()
        .join(up.lazy(), on="g")
        .select(
            p=at("a", gb + low) + at("anc", low) + at("depth", gb + vb) + at("g", vb) + at("v", 0)
        )
        .collect(engine="streaming")
        .get_column("p")
        .sort()
        .to_numpy()
    )
    key = packed >> np.uint64(low)
    first = np.empty(key.size, dtype=bool)
    first[:1] = True
    np.not_equal(key[1:], key[:-1], out=first[1:])
    del key
    p = packed[first]
    del packed, first

    def field(shift: int, width: int) -> np.ndarray:
        return ((p >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.uint32)

    return pl.DataFrame(
        {
            "a": (p >> np.uint64(gb + low)).astype(np.uint32),
            "g": field(low, gb),
            "d": field(gb + vb, db),
            "vg": field(vb, gb),
            "v": field(0, vb),
        }
    )


def _best_columns(codes: pl.DataFrame, up: pl.DataFrame) -> pl.DataFrame:
    return (
        codes.lazy()
        .join(up.lazy(), on="g")
        .select("a", g="anc", d="depth", vg="g", v="v")
        .sort("a", "g", "d", "vg", "v")
        .unique(["a", "g"], keep="first", maintain_order=True)
        .collect()
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
