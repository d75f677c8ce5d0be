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

import itertools
import os
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor

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
    group, then ``via``. Rows come sorted by (account, group). Everything runs on integer
    codes given in lexical order (so comparing codes compares ids); see :func:`expand_codes`.
    The ids come back as Categorical columns: at 1M accounts the table has ~70M rows, and as
    strings each id column would take 1.1 GB where the codes take 280 MB. Join it on
    Categorical keys (cast the small side's ids), or cast it back to String after a filter.
    """
    # The Categorical columns are held until the result exists: polars frees a categorical
    # mapping (and so the meaning of its physical ids) once no column refers to it.
    direct = (
        memberships.lazy()
        .filter(pl.col("member_kind") == MemberKind.ACCOUNT.value)
        .select(pl.col("member_id", "group_id", "via").cast(_CAT))
        .collect()
    )
    up = closure.select(pl.col("group_id", "ancestor_id").cast(_CAT))
    a_phys, g_phys, v_phys = (
        direct.get_column(c).to_physical().to_numpy() for c in ("member_id", "group_id", "via")
    )
    cg, canc = (up.get_column(c).to_physical().to_numpy() for c in ("group_id", "ancestor_id"))
    accounts = _Lexical(a_phys)
    groups = _Lexical(g_phys, cg, canc)
    vias = _Lexical(v_phys)
    best = expand_codes(
        accounts.code(a_phys),
        groups.code(g_phys),
        vias.code(v_phys),
        groups.code(cg),
        groups.code(canc),
        closure.get_column("depth").cast(pl.UInt32).to_numpy(),
        n_accounts=accounts.size,
        n_groups=groups.size,
        n_vias=vias.size,
        decode={
            "a": accounts.physical,
            "g": groups.physical,
            "vg": groups.physical,
            "v": vias.physical,
        },
    )
    del a_phys, g_phys, v_phys, cg, canc
    out = pl.DataFrame(best).select(
        account_id=pl.col("a").cat.to(_CAT),
        group_id=pl.col("g").cat.to(_CAT),
        depth=pl.col("d"),
        via_group_id=pl.col("vg").cat.to(_CAT),
        via=pl.col("v").cat.to(_CAT),
    )
    del direct, up
    return out.cast(dict(EFFECTIVE_SCHEMA))  # type: ignore[arg-type]


_CAT = pl.Categorical()


class _Lexical:
    """Lexical codes of Categorical physical ids: ``code(physical)`` is the id's rank among the
    distinct ids seen (so comparing codes compares strings), ``physical[code]`` goes back.

    One pass marks the ids present and only the distinct strings are sorted (1M accounts, not
    the 10M edges that name them)."""

    def __init__(self, *physical: np.ndarray) -> None:
        top = max((int(p.max()) + 1 for p in physical if p.size), default=0)
        seen = np.zeros(top, dtype=bool)
        for p in physical:
            seen[p] = True
        present = np.flatnonzero(seen).astype(np.uint32)
        del seen
        strings = pl.Series(present).to_frame("p").select(pl.col("p").cat.to(_CAT).cast(pl.String))
        order = strings.to_series().arg_sort().to_numpy()
        self.physical = present[order]
        self.size = int(present.size)
        self._rank = np.zeros(top, dtype=np.uint32)
        self._rank[self.physical] = np.arange(self.size, dtype=np.uint32)

    def code(self, physical: np.ndarray) -> np.ndarray:
        codes: np.ndarray = self._rank[physical]
        return codes


def _bits(n: int) -> int:
    return max(1, (max(n, 1) - 1).bit_length())


#: Candidates per chunk of :func:`expand_codes` (whole accounts): 8 MB of UInt64, below glibc's
#: mmap threshold, so the temporaries reuse memory instead of page-faulting fresh pages.
CHUNK = 1 << 20


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
) -> dict[str, np.ndarray]:
    """The winner per (account, group) from direct edges and the closure, all as codes.

    Direct edges ``(a, g, v)`` and closure rows ``(group, ancestor, depth)``; returns UInt32
    arrays ``a`` (account), ``g`` (group reached), ``vg`` (direct group), ``v`` and Int32 ``d``
    (depth), sorted by (account, group); ``decode`` maps the codes of a column to other values
    on the way out (each chunk's, while it is in cache). Each candidate (a direct edge times
    its group's row in the closure, the group itself at depth 0 included) is one UInt64:
    account | group | depth | direct group | via from high to low bits, so that the smallest
    word of an (account, group) key is the winner. The edges are sorted by account and
    expanded in chunks of whole accounts (a CSR gather of each edge's closure rows); each chunk
    is sorted on its own (no key spans two chunks) and its first word per key kept: no global
    sort and no hash table, and beyond the result the memory is one chunk's.
    """
    ab, gb, db, vb = (
        _bits(n) for n in (n_accounts, n_groups, int(closure_depth.max(initial=0)) + 1, n_vias)
    )
    if ab + 2 * gb + db + vb > 64:  # too many ids for one 64-bit word: the same order on columns
        best = _best_columns(a, g, v, closure_group, closure_ancestor, closure_depth, n_groups)
        return {k: (decode[k][x] if decode and k in decode else x) for k, x in best.items()}
    if not a.size:
        return {
            c: np.empty(0, np.int32 if c == "d" else np.uint32) for c in ("a", "g", "d", "vg", "v")
        }
    u64 = np.uint64
    low = db + gb + vb  # bits below the (account, group) key
    # The closure as CSR rows per group, each group itself first at depth 0.
    up_g = np.concatenate([np.arange(n_groups, dtype=np.uint32), closure_group])
    order = np.argsort(up_g, kind="stable")
    up = (
        np.concatenate([np.arange(n_groups, dtype=u64), closure_ancestor.astype(u64)])[order]
        << u64(low)
    ) | (
        np.concatenate([np.zeros(n_groups, u64), closure_depth.astype(u64)])[order] << u64(gb + vb)
    )
    del order
    count = np.bincount(up_g, minlength=n_groups).astype(np.int64)
    del up_g
    start = np.cumsum(count) - count
    # Direct edges as account | direct group | via, sorted (so by account).
    base = (a.astype(u64) << u64(gb + low)) | (g.astype(u64) << u64(vb)) | v.astype(u64)
    base = pl.Series(base).sort().to_numpy()
    eg = ((base >> u64(vb)) & u64((1 << gb) - 1)).astype(np.int64)
    n = count[eg]
    ends = np.cumsum(n)
    offset = ends - n  # each edge's first candidate
    total = int(ends[-1])
    # Chunk cuts at account boundaries, about CHUNK candidates apart.
    acc = base >> u64(gb + low)
    first_edge = np.r_[np.flatnonzero(np.r_[True, acc[1:] != acc[:-1]]), base.size]
    del acc
    targets = np.arange(CHUNK, total, CHUNK)
    cuts = first_edge[np.searchsorted(np.r_[offset, total][first_edge], targets)]
    bounds = np.unique(np.r_[0, cuts, base.size])
    fields = {"a": (gb + low, ab), "g": (low, gb), "d": (gb + vb, db), "vg": (vb, gb), "v": (0, vb)}
    types = {c: np.int32 if c == "d" else np.uint32 for c in fields}
    step = np.arange(int(np.diff(offset[bounds[:-1]], append=total).max()), dtype=np.int64)
    first = (start[eg] - offset).astype(np.int64)  # + candidate number = row of ``up``
    del eg

    def chunk(lo: int, hi: int) -> dict[str, np.ndarray]:
        nn = n[lo:hi]
        size = int(ends[hi - 1] - offset[lo])
        at = np.repeat(first[lo:hi] + offset[lo], nn)
        at += step[:size]
        cand = np.repeat(base[lo:hi], nn)
        cand |= up[at]
        del at
        cand = pl.Series(cand).sort().to_numpy()
        key = cand >> u64(low)
        keep = np.empty(cand.size, dtype=bool)
        keep[:1] = True
        np.not_equal(key[1:], key[:-1], out=keep[1:])
        win = cand[keep]
        del cand, key, keep
        got = {}
        for c, (shift, width) in fields.items():
            x = ((win >> u64(shift)) & u64((1 << width) - 1)).astype(types[c])
            got[c] = decode[c][x] if decode and c in decode else x
        return got

    # Outputs sized for every candidate; only the kept prefix is ever touched. Chunks run on
    # a small pool (numpy and polars release the GIL), at most two ahead of the one written.
    out = {c: np.empty(total, t) for c, t in types.items()}
    kept = 0
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        pending: deque[Future[dict[str, np.ndarray]]] = deque()
        spans = iter(itertools.pairwise(bounds.tolist()))
        for lo, hi in itertools.islice(spans, 3):
            pending.append(pool.submit(chunk, lo, hi))
        while pending:
            got = pending.popleft().result()
            for lo, hi in itertools.islice(spans, 1):
                pending.append(pool.submit(chunk, lo, hi))
            m = got["a"].size
            for c, x in got.items():
                out[c][kept : kept + m] = x
            kept += m
    return {c: x[:kept] for c, x in out.items()}


def _best_columns(
    a: np.ndarray,
    g: np.ndarray,
    v: np.ndarray,
    closure_group: np.ndarray,
    closure_ancestor: np.ndarray,
    closure_depth: np.ndarray,
    n_groups: int,
) -> dict[str, np.ndarray]:
    ident = np.arange(n_groups, dtype=np.uint32)
    up = pl.DataFrame(
        {
            "g": np.concatenate([ident, closure_group.astype(np.uint32)]),
            "anc": np.concatenate([ident, closure_ancestor.astype(np.uint32)]),
            "depth": np.concatenate(
                [np.zeros(n_groups, np.uint32), closure_depth.astype(np.uint32)]
            ),
        }
    )
    best = (
        pl.DataFrame({"a": a, "g": g, "v": v})
        .cast(pl.UInt32)
        .lazy()
        .join(up.lazy(), on="g")
        .select("a", g="anc", d="depth", vg="g", v="v")
        .sort("a", "g", "d", "vg", "v")
        .unique(["a", "g"], keep="first", maintain_order=True)
        .collect()
    )
    return {
        c: best.get_column(c).cast(pl.Int32 if c == "d" else pl.UInt32).to_numpy()
        for c in best.columns
    }


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
