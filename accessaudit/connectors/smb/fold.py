"""NTFS entries of a walked share to folder resources and folded grants.

Rights: each entry's mask is mapped ([MS-DTYP] 2.4.3 file generic mapping) and named by what
it lets its holder do, the way Windows' basic permissions group them:

* ``full control``: FILE_ALL_ACCESS (0x1F01FF), or WRITE_DAC / WRITE_OWNER (either lets the
  holder give itself full control);
* ``modify``: any write, append, delete, delete-child or attribute/EA write bit;
* ``read``: list/read data, read attributes or EAs, traverse/execute;
* ``other``: anything else (SYNCHRONIZE or READ_CONTROL alone).

Folding: an entry on a folder that repeats one of its parent's container-inheritable entries
(same trustee, allow/deny and mapped mask; flagged INHERITED, or a flag-for-flag copy, which is
how Samba stores children of a folder whose DACL is not auto-inherited) is not reported again:
it is counted in the ``reach`` of the entry where it is *set*. An entry is set where the
parent does not carry it, where the parent is unreadable, or below a protected DACL (inheritance
blocked: removing it at the parent would not remove it there). ``reach`` is the number of
walked folders the entry applies to (inherit-only entries do not apply where they sit). One
pass per depth level, each a polars join; no per-entry Python.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from accessaudit.transport.secdesc import (
    CONTAINER_INHERIT,
    FILE_MAPPING,
    INHERIT_ONLY,
    INHERITED,
    WRITE_DAC,
    WRITE_OWNER,
)

FULL: Final = 0x1F01FF
MODIFY_BITS: Final = 0x2 | 0x4 | 0x10 | 0x40 | 0x100 | 0x10000
READ_BITS: Final = 0x1 | 0x8 | 0x20 | 0x80
RIGHTS: Final = ("full control", "modify", "read", "other")


def right_of(mask: pl.Expr) -> pl.Expr:
    """The right a (mapped) file access mask gives, by name."""
    return (
        pl.when(((mask & FULL) == FULL) | ((mask & (WRITE_DAC | WRITE_OWNER)) != 0))
        .then(pl.lit("full control"))
        .when((mask & MODIFY_BITS) != 0)
        .then(pl.lit("modify"))
        .when((mask & READ_BITS) != 0)
        .then(pl.lit("read"))
        .otherwise(pl.lit("other"))
    )


_KEY: Final = ["trustee", "deny", "mapped"]


def _inherit_origin(level: pl.DataFrame, previous: pl.DataFrame) -> pl.DataFrame:
    """``level`` (one depth's entries) with ``origin``: the node where an entry is set. An entry
    that repeats a container-inheritable entry of its parent (the same trustee, deny and rights,
    flagged inherited or with the same flags) comes from where the parent's does; a protected
    node's entries, and new ones, are set here."""
    carriers = (
        previous.filter(pl.col("ci"))
        .select(
            "trustee",
            "deny",
            "mapped",
            parent="i",
            _origin="origin",
            _pflags=pl.col("flags") & ~INHERITED,
        )
        .unique(["parent", *_KEY], keep="first")
    )
    return (
        level.join(carriers, on=["parent", *_KEY], how="left")
        .with_columns(
            origin=pl.when(
                pl.col("_origin").is_not_null()
                & ~pl.col("protected").fill_null(False)
                & (pl.col("flagged") | ((pl.col("flags") & ~INHERITED) == pl.col("_pflags")))
            )
            .then(pl.col("_origin"))
            .otherwise(pl.col("i"))
        )
        .drop("_origin", "_pflags")
    )


def fold(nodes: pl.DataFrame, aces: pl.DataFrame) -> pl.DataFrame:
    """One row per entry where it is set: ``i`` (the node), trustee, deny, right, inherited
    (flagged INHERITED there: set above what was walked or readable), reach.

    ``nodes``: ``i``, ``parent``, ``depth``, ``readable``, ``protected``; ``aces``: the DACL rows
    of :func:`accessaudit.transport.secdesc.parse_many` (``i``, ``seq``, ``allow``, ``deny``,
    ``flags``, ``mask``, ``trustee``)."""
    rows = (
        aces.filter(pl.col("allow") | pl.col("deny"))
        .join(nodes.select("i", "parent", "depth", "protected"), on="i")
        .with_columns(
            mapped=FILE_MAPPING.expr(pl.col("mask")),
            applies=(pl.col("flags") & INHERIT_ONLY) == 0,
            ci=(pl.col("flags") & CONTAINER_INHERIT) != 0,
            flagged=(pl.col("flags") & INHERITED) != 0,
        )
        .with_columns(origin=pl.lit(None, pl.UInt32))
    )
    levels = sorted(set(rows["depth"].to_list()))
    done: list[pl.DataFrame] = []
    previous: pl.DataFrame | None = None
    for depth in levels:
        level = rows.filter(pl.col("depth") == depth)
        if previous is not None and level.height:
            level = _inherit_origin(level, previous)
        else:
            level = level.with_columns(origin=pl.col("i"))
        done.append(level)
        previous = level
    if not done:
        return pl.DataFrame(
            schema={"i": pl.UInt32, "trustee": pl.String, "deny": pl.Boolean,
                    "right": pl.String, "inherited": pl.Boolean, "reach": pl.Int64}
        )  # fmt: skip
    every = pl.concat(done)
    reach = (
        every.filter(pl.col("applies"))
        .group_by("origin", *_KEY)
        .agg(reach=pl.col("i").n_unique().cast(pl.Int64))
    )
    set_here = every.filter(pl.col("origin") == pl.col("i")).join(
        reach, on=["origin", *_KEY], how="left"
    )
    return (
        set_here.select(
            "i",
            "trustee",
            "deny",
            right=right_of(pl.col("mapped")),
            inherited="flagged",
            reach=pl.col("reach").fill_null(0),
        )
        .group_by("i", "trustee", "deny", "right")
        .agg(inherited=pl.col("inherited").all(), reach=pl.col("reach").max())
        .sort("i", "trustee", "deny", "right")
    )
