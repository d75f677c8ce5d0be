"""Nested membership: the small group closure first, then effective account memberships.

Directories give direct edges only (we never ask the server to expand: AD's in-chain rule is
slow, OpenLDAP has none, and Entra's transitiveMembers hides the path). We expand ourselves:

1. ``group_closure``: every (group, ancestor) pair with the depth and the shortest nesting path,
   by breadth-first search over group->group edges, one polars join per level. A pair is added
   once, at its shortest depth, so cycles end (a group is never its own ancestor) and diamonds
   keep one shortest path. The table is small (groups x ancestors).
2. ``effective_memberships``: every direct account edge expanded through its group's closure
   row, keeping per (account, group) the smallest depth and the direct group it is reached
   through. No path per pair: at 1M accounts there are ~70M pairs; a finding's path is derived
   from the closure (:func:`finding_paths`). Ids are coded by hash (every code checked against
   its string) and the per-account merge is compiled (``_kernels.py``, numba): this is the
   largest table of a run (benchmarks/README.md, "Nested expansion").
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl

from accessaudit.analysis._kernels import (
    CTZ_TABLE,
    bucket,
    bucket_ptr,
    candidates_before,
    dense_codes,
    expand_accounts,
)
from accessaudit.model import EFFECTIVE_SCHEMA, GROUP_CLOSURE_SCHEMA, VIA_ENUM, MemberKind, Via


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
    group, then ``via``. Rows come sorted by (account, group). Ids become dense integer codes
    in lexical order (:class:`_Codes`), the compiled merge (:func:`expand_codes`) does the rest.
    The ids come back as Categorical columns: at 1M accounts the table has ~70M rows, and as
    strings each id column would take 1.1 GB where the codes take 280 MB. Join it on
    Categorical keys (cast the small side's ids), or cast it back to String after a filter.

    A membership through a login its application has disabled (``via`` ``csv-disabled``) gives
    no access and is left out; the rules see it in the ``rights`` view.
    """
    direct = (
        memberships.lazy()
        .filter(pl.col("member_kind") == MemberKind.ACCOUNT.value)
        .filter(pl.col("via") != Via.CSV_DISABLED.value)
        .select(pl.col("member_id", "group_id", "via").cast(pl.String))
        .drop_nulls()
        .collect()
    )
    unknown = set(direct.get_column("via").unique().to_list()) - set(VIA_ENUM.categories)
    if unknown:
        raise ValueError(
            f"memberships: unknown via {sorted(unknown)!r} "
            f"(known: {', '.join(VIA_ENUM.categories.to_list())})"
        )
    up = closure.select(pl.col("group_id", "ancestor_id").cast(pl.String), "depth")
    try:
        return _effective(direct, up, exact=False)
    except _HashCollision:  # two ids with one 64-bit hash: code them exactly (slower)
        return _effective(direct, up, exact=True)


class _HashCollision(Exception):
    """Two different ids got the same 64-bit hash (checked after coding, never assumed)."""


_CAT = pl.Categorical()


class _Codes:
    """Dense integer codes of the strings of one or more columns sharing an id space.

    Each value's key is its 64-bit polars hash (seeded per run: fast, parallel) or, with
    ``exact``, its Categorical physical id (no collision possible, several times slower); the
    keys of all columns get dense codes together (:func:`dense_codes`). :meth:`check` then
    compares every value with the first value that got its code, so a hash collision is
    detected (:class:`_HashCollision`), never silently merging two ids. :meth:`lexical` gives
    each code's rank among the distinct strings and, per rank, the Categorical physical id:
    only the distinct strings (1M accounts, not the 10M edges naming them) are sorted and cast.
    """

    def __init__(self, *columns: pl.Series, exact: bool) -> None:
        if sum(c.len() for c in columns) >= 2**32:
            raise ValueError("more than 2**32 ids in one expansion")
        self.seed = int.from_bytes(os.urandom(8), "little") >> 1
        if exact:
            # Every column is cast before any physical id is read: polars gives a freed
            # mapping's physical ids out again, so one cast at a time could reuse them.
            hold = [c.cast(_CAT) for c in columns]
            keys = [c.to_physical().cast(pl.UInt64).to_numpy() for c in hold]
        else:
            keys = [self._hash(c) for c in columns]
        codes, first = dense_codes(np.concatenate(keys), _PARTITION_BITS)
        self.size = int(first.size)
        self.distinct = pl.concat(columns, rechunk=False).gather(first)
        self.columns = columns
        self.codes = np.split(codes, np.cumsum([c.len() for c in columns])[:-1])

    def _hash(self, values: pl.Series) -> np.ndarray:
        keys: np.ndarray = values.hash(self.seed).to_numpy()
        return keys

    def check(self, pool: ThreadPoolExecutor) -> None:
        """Raise :class:`_HashCollision` unless every value equals its code's first value."""
        distinct = self.distinct

        def same(values: pl.Series, codes: np.ndarray) -> bool:
            return bool((values == distinct.gather(codes)).all())

        halves = [
            (values.slice(lo, hi - lo), codes[lo:hi])
            for values, codes in zip(self.columns, self.codes, strict=True)
            for lo, hi in itertools.pairwise([0, values.len() // 2, values.len()])
        ]
        if not all(pool.map(lambda half: same(*half), halves)):
            raise _HashCollision

    def lexical(self) -> tuple[np.ndarray, np.ndarray, pl.Series]:
        """(rank of each code, Categorical physical id of each rank, the Categorical column).

        Hold the column until the physical ids are turned back into a Categorical column:
        polars frees a categorical mapping (and the meaning of its physical ids) once no
        column refers to it."""
        order = self.distinct.arg_sort().to_numpy()
        rank = np.empty(self.size, np.uint32)
        rank[order] = np.arange(self.size, dtype=np.uint32)
        categorical = self.distinct.cast(_CAT)
        physical = categorical.to_physical().to_numpy()[order].astype(np.uint32)
        return rank, physical, categorical


#: Buckets of :func:`dense_codes`: 256 tables of ~8,000 slots for 1M distinct ids.
_PARTITION_BITS = 8


def _effective(direct: pl.DataFrame, up: pl.DataFrame, *, exact: bool) -> pl.DataFrame:
    accounts = _Codes(direct.get_column("member_id"), exact=exact)
    groups = _Codes(
        direct.get_column("group_id"),
        up.get_column("group_id"),
        up.get_column("ancestor_id"),
        exact=exact,
    )
    with ThreadPoolExecutor(max_workers=_threads()) as pool:
        for codes in (accounts, groups):
            codes.check(pool)
    (a,), (g, cg, ca) = accounts.codes, groups.codes
    a_rank, a_phys, a_keep = accounts.lexical()
    g_rank, g_phys, g_keep = groups.lexical()
    # via: the Enum's own codes (checked above), ranked lexically for the tie-break.
    v = direct.get_column("via").cast(VIA_ENUM).to_physical().to_numpy()
    v_phys = VIA_ENUM.categories.arg_sort().to_numpy().astype(np.uint8)
    v_rank = np.empty(v_phys.size, np.uint8)
    v_rank[v_phys] = np.arange(v_phys.size, dtype=np.uint8)
    parts = expand_codes(
        a_rank[a],
        g_rank[g],
        v_rank[v],
        g_rank[cg],
        g_rank[ca],
        up.get_column("depth").cast(pl.UInt32).to_numpy(),
        n_accounts=accounts.size,
        n_groups=groups.size,
        n_vias=v_phys.size,
        decode={"a": a_phys, "g": g_phys, "v": v_phys},
    )
    frames = [
        pl.DataFrame(
            {
                "account_id": pl.Series(part["a"]).cat.to(_CAT, strict=False),
                "group_id": pl.Series(part["g"]).cat.to(_CAT, strict=False),
                "depth": part["d"],
                "via_group_id": pl.Series(part["vg"]).cat.to(_CAT, strict=False),
                "via": pl.Series(part["v"]).cat.to(VIA_ENUM, strict=False),
            }
        )
        for part in parts
    ]
    out = pl.concat(frames, rechunk=False) if frames else pl.DataFrame(schema=EFFECTIVE_SCHEMA)
    del a_keep, g_keep  # only now: the result holds the mappings
    return out.cast(dict(EFFECTIVE_SCHEMA))  # type: ignore[arg-type]


def _threads() -> int:
    """One thread per core, at most two: the merge was measured on two cores (2.5 s on one,
    1.2-1.5 s on two, warm memory); more threads are untested."""
    return min(2, os.cpu_count() or 1)


def _bits(n: int) -> int:
    return max(1, (max(n, 1) - 1).bit_length())


def _key_bits(n_groups: int, n_vias: int, closure_depth: np.ndarray) -> tuple[int, int]:
    """Bits of a group and of a via code in the kernel's 64-bit sort key (depth, group, via);
    ValueError when they do not fit."""
    group_bits, via_bits = _bits(n_groups), _bits(n_vias)
    depth_bits = _bits(int(closure_depth.max(initial=0)) + 1)
    if closure_depth.size and int(closure_depth.max()) > np.iinfo(np.int16).max:
        # Unreachable in practice: such a chain's closure alone has over 500M rows.
        raise ValueError(f"groups nested {int(closure_depth.max())} levels deep (at most 32767)")
    if depth_bits + group_bits + via_bits > 64:
        raise ValueError(f"{n_groups} groups nested {depth_bits} bits deep do not fit 64 bits")
    return group_bits, via_bits


def _closure_by_group(
    n_groups: int,
    closure_group: np.ndarray,
    closure_ancestor: np.ndarray,
    closure_depth: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The closure bucketed by group, the group itself at depth 0 included: each group's row
    range (:func:`bucket_ptr`) and its ancestors and depths."""
    ident = np.arange(n_groups, dtype=np.uint32)
    up_group = np.concatenate([ident, closure_group.astype(np.uint32, copy=False)])
    up_ptr = bucket_ptr(up_group, n_groups)
    up_ancestor = bucket(
        up_group, up_ptr, np.concatenate([ident, closure_ancestor]).astype(np.uint32)
    )
    up_depth = bucket(
        up_group,
        up_ptr,
        np.concatenate([np.zeros(n_groups, np.uint32), closure_depth]).astype(np.uint32),
    )
    return up_ptr, up_ancestor, up_depth


def expand_codes(
    a: np.ndarray,
    g: np.ndarray,
    v: np.ndarray,
    closure_group: np.ndarray,
    closure_ancestor: np.ndarray,
    closure_depth: np.ndarray,
    *,
    n_accounts: int,
    n_groups: int,
    n_vias: int,
    decode: Mapping[str, np.ndarray] | None = None,
    threads: int | None = None,
) -> list[dict[str, np.ndarray]]:
    """The winner per (account, group) from direct edges and the closure, all as codes.

    Direct edges ``(a, g, v)`` and closure rows ``(group, ancestor, depth)``, codes in lexical
    order. Returns parts (consecutive account ranges, one per thread) of UInt32 arrays ``a``
    (account), ``g`` (group reached), ``vg`` (direct group), ``v`` (UInt8 up to 256 vias) and
    Int16 ``d`` (depth),
    sorted by (account, group); ``decode`` maps the codes of ``a``, ``g`` (and ``vg``) and
    ``v`` to the values written. The edges and the closure are bucketed (counting sorts) by
    account and by group, then :func:`expand_accounts` merges each account's closure rows.
    """
    decode = decode or {}
    group_bits, via_bits = _key_bits(n_groups, n_vias, closure_depth)
    a = a.astype(np.uint32, copy=False)
    edge_ptr = bucket_ptr(a, n_accounts)
    edge_group = bucket(a, edge_ptr, g.astype(np.uint32, copy=False))
    via_type = np.uint8 if n_vias <= 256 else np.uint32  # one byte per row for a few vias
    edge_via = bucket(a, edge_ptr, v.astype(via_type, copy=False))
    up_ptr, up_ancestor, up_depth = _closure_by_group(
        n_groups, closure_group, closure_ancestor, closure_depth
    )
    ident = np.arange(n_groups, dtype=np.uint32)
    # Candidates per account (an upper bound of its rows), to split the accounts evenly.
    reach = candidates_before(edge_ptr, edge_group, up_ptr)
    total = int(reach[-1])
    workers = max(1, min(threads or _threads(), n_accounts or 1))
    cuts = np.searchsorted(reach, [total * i // workers for i in range(1, workers)])
    bounds = [0, *(int(c) for c in cuts), n_accounts]
    ident_a = decode.get("a", np.arange(n_accounts, dtype=np.uint32))
    ident_g = decode.get("g", ident)
    ident_v = decode.get("v", np.arange(n_vias, dtype=via_type)).astype(via_type, copy=False)

    def part(lo: int, hi: int) -> dict[str, np.ndarray]:
        size = int(reach[hi] - reach[lo])
        out: dict[str, np.ndarray] = {
            "a": np.empty(size, np.uint32),
            "g": np.empty(size, np.uint32),
            "d": np.empty(size, np.int16),
            "vg": np.empty(size, np.uint32),
            "v": np.empty(size, via_type),
        }
        rows = expand_accounts(
            lo, hi, edge_ptr, edge_group, edge_via, up_ptr, up_ancestor, up_depth,
            group_bits, via_bits, ident_a, ident_g, ident_v, CTZ_TABLE,
            out["a"], out["g"], out["d"], out["vg"], out["v"],
        )  # fmt: skip
        return {c: x[:rows] for c, x in out.items()}

    spans = [(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]
    if len(spans) <= 1:
        return [part(lo, hi) for lo, hi in spans]
    with ThreadPoolExecutor(max_workers=len(spans)) as pool:
        return list(pool.map(lambda span: part(*span), spans))


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
