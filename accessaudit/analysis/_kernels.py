"""Compiled loops of the nested expansion (numba): dense id codes and the per-account merge.

These are the only per-row loops of the expansion, so they are compiled (``nogil``: the two
halves of the accounts run on two threads). Each function works on integer arrays only; the
string side (hashing ids, checking the codes, Categorical output) stays in polars
(:mod:`accessaudit.analysis.expand`). ``cache=True`` keeps the machine code under
``__pycache__`` (or numba's per-user cache when the package folder is read-only, or
``NUMBA_CACHE_DIR``), so a new process loads it instead of compiling again (a few seconds, once
per installation); with no writable place at all, each process compiles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


def _compile(f: F, **options: Any) -> F:
    try:
        return cast(F, numba.njit(cache=True, nogil=True, **options)(f))
    except RuntimeError:  # no writable cache location (read-only install and home, e.g. under
        # systemd's ProtectSystem=strict): compile in every process instead, ~3 s, not a crash.
        return cast(F, numba.njit(nogil=True, **options)(f))


def _jit(f: F) -> F:
    return _compile(f)


def _inline(f: F) -> F:
    """A step of a compiled loop, inlined into its caller by numba (in its IR, before LLVM):
    no call per edge or per account, measured as fast as the loop written in one function."""
    return _compile(f, inline="always")


EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: bucket = top bits, slot = low bits

# Count of trailing zeros through a de Bruijn sequence (numba has no ctz intrinsic).
_DEBRUIJN = 0x03F79D71B4CB0A89
CTZ_TABLE = np.zeros(64, dtype=np.int64)
for _i in range(64):
    CTZ_TABLE[(((1 << _i) * _DEBRUIJN) & 0xFFFFFFFFFFFFFFFF) >> 58] = _i


@_jit
def dense_codes(keys: np.ndarray, partition_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes 0..n-1 of 64-bit keys (equal keys, equal codes) and, per code, the first row
    holding it.

    The keys are first bucketed by the top ``partition_bits`` of a multiplicative hash (a
    stable counting sort of the row numbers), then each bucket gets its own small
    open-addressing table: a table that fits the CPU cache instead of one of the size of all
    distinct keys (1M accounts: ~25 MB, a cache miss per row). Codes are given bucket by
    bucket; rows are visited in order within a bucket, so the first row seen is the first."""
    n = keys.size
    parts = 1 << partition_bits
    shift = np.uint64(64 - partition_bits)
    ptr = np.zeros(parts + 1, np.int64)
    for i in range(n):
        ptr[np.int64((keys[i] * _GOLDEN) >> shift) + 1] += 1
    biggest = np.int64(0)
    for p in range(parts):
        biggest = max(biggest, ptr[p + 1])
        ptr[p + 1] += ptr[p]
    fill = ptr[:-1].copy()
    rows = np.empty(n, np.uint32)  # the caller keeps n below 2**32
    for i in range(n):
        q = np.int64((keys[i] * _GOLDEN) >> shift)
        rows[fill[q]] = i
        fill[q] += 1
    cap = 2
    while cap < 2 * biggest:
        cap *= 2
    table = np.empty(cap, np.uint64)
    slot_code = np.full(cap, -1, np.int64)
    codes = np.empty(n, np.uint32)
    first = np.empty(n, np.int64)
    given = 0
    for p in range(parts):
        size = ptr[p + 1] - ptr[p]
        if size == 0:
            continue
        c = 2
        while c < 2 * size:
            c *= 2
        mask = np.int64(c - 1)
        slot_code[:c] = -1
        for j in range(ptr[p], ptr[p + 1]):
            i = int(rows[j])
            k = keys[i]
            s = np.int64(k * _GOLDEN) & mask
            while True:
                code = slot_code[s]
                if code < 0:
                    table[s] = k
                    slot_code[s] = given
                    first[given] = i
                    codes[i] = given
                    given += 1
                    break
                if table[s] == k:
                    codes[i] = code
                    break
                s = (s + 1) & mask
    return codes, first[:given]


@_jit
def bucket_ptr(keys: np.ndarray, n: int) -> np.ndarray:
    """CSR row pointers of ``keys`` in 0..n-1: row k is ``ptr[k]:ptr[k + 1]``."""
    ptr = np.zeros(n + 1, np.int64)
    for k in keys:
        ptr[k + 1] += 1
    for i in range(n):
        ptr[i + 1] += ptr[i]
    return ptr


@_jit
def bucket(keys: np.ndarray, ptr: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` placed in the CSR rows of their ``keys`` (a stable counting sort)."""
    fill = ptr[:-1].copy()
    out = np.empty_like(values)
    for i in range(keys.size):
        k = keys[i]
        out[fill[k]] = values[i]
        fill[k] += 1
    return out


@_jit
def candidates_before(
    edge_ptr: np.ndarray, edge_group: np.ndarray, up_ptr: np.ndarray
) -> np.ndarray:
    """Per account, the candidates (closure rows of its direct groups) of all accounts before
    it; the last entry is the total. An upper bound of the rows each account range writes."""
    n = edge_ptr.size - 1
    out = np.empty(n + 1, np.int64)
    total = 0
    for a in range(n):
        out[a] = total
        for e in range(edge_ptr[a], edge_ptr[a + 1]):
            g = edge_group[e]
            total += up_ptr[g + 1] - up_ptr[g]
    out[n] = total
    return out


@_jit
def _ctz(x: np.uint64, table: np.ndarray) -> np.int64:
    return np.int64(table[((x & (~x + np.uint64(1))) * np.uint64(_DEBRUIJN)) >> np.uint64(58)])


@_jit
def expand_accounts(
    lo: int,
    hi: int,
    edge_ptr: np.ndarray,
    edge_group: np.ndarray,
    edge_via: np.ndarray,
    up_ptr: np.ndarray,
    up_ancestor: np.ndarray,
    up_depth: np.ndarray,
    group_bits: int,
    via_bits: int,
    decode_account: np.ndarray,
    decode_group: np.ndarray,
    decode_via: np.ndarray,
    ctz_table: np.ndarray,
    out_account: np.ndarray,
    out_group: np.ndarray,
    out_depth: np.ndarray,
    out_via_group: np.ndarray,
    out_via: np.ndarray,
) -> int:
    """Effective memberships of accounts ``lo``..``hi - 1``; returns the rows written.

    Account ``a``'s direct edges are ``edge_ptr[a]:edge_ptr[a + 1]`` (direct group and via
    codes); group ``g``'s closure row is ``up_ptr[g]:up_ptr[g + 1]`` (ancestor, depth), itself
    at depth 0 included. Per account, each candidate (ancestor reached through a direct edge)
    is one word depth | direct group | via, so the smallest word per ancestor is the winner
    (shortest depth, then the lexically smallest direct group, then via). The ancestors
    reached are marked in a three-level bitset, read back in group order: rows come out
    sorted by (account, group) without a sort. Codes are lexical ranks; ``decode_*`` maps them
    to the values written (Categorical physical ids)."""
    n_groups = up_ptr.size - 1
    best = np.full(n_groups, EMPTY)
    n0 = (n_groups + 63) >> 6
    n1 = (n0 + 63) >> 6
    l0 = np.zeros(n0, np.uint64)
    l1 = np.zeros(n1, np.uint64)
    l2 = np.zeros((n1 + 63) >> 6, np.uint64)
    shift_d = np.uint64(group_bits + via_bits)
    shift_g = np.uint64(via_bits)
    p = 0
    for a in range(lo, hi):
        for e in range(edge_ptr[a], edge_ptr[a + 1]):
            g = edge_group[e]
            base = (np.uint64(g) << shift_g) | np.uint64(edge_via[e])
            _merge(up_ancestor, up_depth, up_ptr[g], up_ptr[g + 1], base, shift_d, best, l0, l1, l2)
        p = _emit(
            decode_account[a], p, best, l0, l1, l2, group_bits, via_bits,
            decode_group, decode_via, ctz_table,
            out_account, out_group, out_depth, out_via_group, out_via,
        )  # fmt: skip
    return p


@_inline
def _merge(
    up_ancestor: np.ndarray,
    up_depth: np.ndarray,
    start: int,
    end: int,
    base: np.uint64,
    shift_d: np.uint64,
    best: np.ndarray,
    l0: np.ndarray,
    l1: np.ndarray,
    l2: np.ndarray,
) -> None:
    """The candidates of closure rows ``start:end`` (one direct edge, ``base`` = its direct
    group | via): the smaller word per ancestor kept in ``best``, the ancestor marked."""
    one = np.uint64(1)
    for r in range(start, end):
        x: np.int64 = np.int64(up_ancestor[r])
        w = (np.uint64(up_depth[r]) << shift_d) | base
        if w < best[x]:
            best[x] = w
            i0 = x >> 6
            l0[i0] |= one << np.uint64(x & 63)
            i1 = i0 >> 6
            l1[i1] |= one << np.uint64(i0 & 63)
            l2[i1 >> 6] |= one << np.uint64(i1 & 63)


@_inline
def _emit(
    account: Any,
    p: int,
    best: np.ndarray,
    l0: np.ndarray,
    l1: np.ndarray,
    l2: np.ndarray,
    group_bits: int,
    via_bits: int,
    decode_group: np.ndarray,
    decode_via: np.ndarray,
    ctz_table: np.ndarray,
    out_account: np.ndarray,
    out_group: np.ndarray,
    out_depth: np.ndarray,
    out_via_group: np.ndarray,
    out_via: np.ndarray,
) -> int:
    """One account's rows from row ``p`` on: its marked ancestors in group order, each with its
    winning word decoded; the bitset and ``best`` are cleared on the way. Returns the next row."""
    one = np.uint64(1)
    shift_d = np.uint64(group_bits + via_bits)
    shift_g = np.uint64(via_bits)
    mask_g = np.uint64((1 << group_bits) - 1)
    mask_v = np.uint64((1 << via_bits) - 1)
    for j2 in range(l2.size):
        m2 = l2[j2]
        l2[j2] = 0
        while m2:
            i1 = (j2 << 6) + _ctz(m2, ctz_table)
            m2 &= m2 - one
            m1 = l1[i1]
            l1[i1] = 0
            while m1:
                i0 = (i1 << 6) + _ctz(m1, ctz_table)
                m1 &= m1 - one
                m0 = l0[i0]
                l0[i0] = 0
                while m0:
                    x = (i0 << 6) + _ctz(m0, ctz_table)
                    m0 &= m0 - one
                    w = best[x]
                    best[x] = EMPTY
                    out_account[p] = account
                    out_group[p] = decode_group[x]
                    out_depth[p] = np.int16(w >> shift_d)
                    out_via_group[p] = decode_group[np.int64((w >> shift_g) & mask_g)]
                    out_via[p] = decode_via[np.int64(w & mask_v)]
                    p += 1
    return p
