"""The compiled expansion against a plain polars reference, on random graphs.

``effective_memberships`` codes ids by hash, checks the codes, and merges each account's
closure rows in compiled code (``analysis/_kernels.py``). The reference below is the
definition written the slow, obvious way: every direct edge joined onto every closure row of
its group (the group itself at depth 0), sorted by (account, group, depth, direct group, via)
and the first row per (account, group) kept. Both must give the same rows in the same order.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from accessaudit.analysis import expand
from accessaudit.analysis._kernels import dense_codes
from accessaudit.analysis.expand import effective_memberships, expand_codes, group_closure
from accessaudit.model import EFFECTIVE_SCHEMA, MEMBERSHIPS_SCHEMA


def reference(memberships: pl.DataFrame, closure: pl.DataFrame) -> pl.DataFrame:
    direct = memberships.filter(pl.col("member_kind") == "account").select(
        a="member_id", g="group_id", v="via"
    )
    groups = pl.concat([direct.get_column("g"), closure.get_column("group_id")]).unique()
    up = pl.concat(
        [
            pl.DataFrame({"g": groups, "anc": groups, "d": pl.Series([0] * groups.len())}),
            closure.select(g="group_id", anc="ancestor_id", d="depth"),
        ],
        how="vertical_relaxed",
    )
    return (
        direct.join(up, on="g")
        .select(
            account_id="a",
            group_id="anc",
            depth=pl.col("d").cast(pl.Int16),
            via_group_id="g",
            via="v",
        )
        .sort("account_id", "group_id", "depth", "via_group_id", "via")
        .unique(["account_id", "group_id"], keep="first", maintain_order=True)
    )


def as_strings(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col(pl.Categorical, pl.Enum).cast(pl.String))


# Ids that sort differently as bytes, with shared prefixes, Unicode and filter metacharacters.
IDS = ["a", "A", "a1", "a10", "a2", "é", "e\u0301", "Zoë", "*)(uid=*", "S-1-5-21-1-2-3-1104", "ñ"]
VIAS = ["member", "primaryGroupID", "graph", "csv", "range"]


@st.composite
def graphs(draw: st.DrawFn) -> pl.DataFrame:
    accounts = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=6, unique=True))
    groups = [
        "g" + x for x in draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=8, unique=True))
    ]
    direct = draw(
        st.lists(
            st.tuples(st.sampled_from(groups), st.sampled_from(accounts), st.sampled_from(VIAS)),
            max_size=30,
        )
    )  # duplicates and the same edge with two vias included
    nest = draw(st.lists(st.tuples(st.sampled_from(groups), st.sampled_from(groups)), max_size=20))
    rows = [
        {"group_id": g, "member_id": a, "member_kind": "account", "via": v} for g, a, v in direct
    ]
    rows += [
        {"group_id": p, "member_id": c, "member_kind": "group", "via": "member"} for p, c in nest
    ]
    return pl.DataFrame(
        [{"source": "t", **r} for r in rows], schema=MEMBERSHIPS_SCHEMA, orient="row"
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_same_rows_as_the_reference(memberships: pl.DataFrame) -> None:
    closure = group_closure(memberships)
    got = effective_memberships(memberships, closure)
    assert got.schema == EFFECTIVE_SCHEMA
    assert_frame_equal(as_strings(got), reference(memberships, closure))


def big_graph(seed: int) -> pl.DataFrame:
    """~3,000 accounts, 300 groups with nesting chains and cycles, ragged ids: enough rows that
    the accounts are split over two threads and the hash tables grow several times."""
    rng = np.random.default_rng(seed)
    n_acc, n_grp = 3000, 300
    acc = [f"u{i}" if i % 3 else f"user-{i:05d}@force.example" for i in range(n_acc)]
    grp = [f"G{i}" if i % 2 else f"grp-{i * 7919 % 1000}" for i in range(n_grp)]
    a = rng.integers(0, n_acc, 20000)
    g = rng.integers(0, n_grp, 20000)
    v = rng.choice(VIAS, 20000, p=[0.8, 0.05, 0.05, 0.05, 0.05])
    child = rng.integers(0, n_grp, 600)
    parent = np.where(rng.random(600) < 0.7, child // 2, rng.integers(0, n_grp, 600))
    direct = pl.DataFrame(
        {
            "source": "t",
            "group_id": [grp[i] for i in g],
            "member_id": [acc[i] for i in a],
            "member_kind": "account",
            "via": v,
        }
    )
    nest = pl.DataFrame(
        {
            "source": "t",
            "group_id": [grp[i] for i in parent],
            "member_id": [grp[i] for i in child],
            "member_kind": "group",
            "via": "member",
        }
    )
    return pl.concat([direct, nest]).cast(dict(MEMBERSHIPS_SCHEMA))  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_large_random_graph_same_as_reference(seed: int) -> None:
    m = big_graph(seed)
    closure = group_closure(m)
    got = effective_memberships(m, closure)
    assert got.height > 50_000
    assert_frame_equal(as_strings(got), reference(m, closure))


def test_a_hash_collision_is_detected_and_coded_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every id hashed to one value: the check sees different strings under one code and the
    expansion codes the ids exactly instead (no two accounts merged)."""
    m = big_graph(4)
    closure = group_closure(m)
    hashed: list[int] = []

    def colliding(self: expand._Codes, values: pl.Series) -> np.ndarray:
        hashed.append(values.len())
        return np.zeros(values.len(), np.uint64)

    monkeypatch.setattr(expand._Codes, "_hash", colliding)
    got = effective_memberships(m, closure)
    assert hashed  # the hashed attempt ran (and was refused by the check)
    assert_frame_equal(as_strings(got), reference(m, closure))


def test_check_raises_on_two_strings_under_one_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(expand._Codes, "_hash", lambda self, v: np.zeros(v.len(), np.uint64))
    codes = expand._Codes(pl.Series(["x", "x", "y"]), exact=False)
    assert codes.size == 1
    with ThreadPoolExecutor(2) as pool, pytest.raises(expand._HashCollision):
        codes.check(pool)
    exact = expand._Codes(pl.Series(["x", "x", "y"]), pl.Series(["y", "z"]), exact=True)
    assert exact.size == 3
    assert [exact.distinct.gather(c).to_list() for c in exact.codes] == [
        ["x", "x", "y"],
        ["y", "z"],
    ]
    with ThreadPoolExecutor(2) as pool:
        exact.check(pool)


def test_dense_codes_equal_keys_equal_codes_and_first_rows() -> None:
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 2**63, 5000, dtype=np.uint64)
    stream = np.concatenate([keys, keys[::-1], keys[:100], np.zeros(3, np.uint64)])
    codes, first = dense_codes(stream, 3)  # 8 buckets
    assert first.size == 5001 and sorted(set(codes.tolist())) == list(range(5001))
    # Equal keys <-> equal codes, and first[c] is the first row holding code c.
    _, expected_first = np.unique(stream, return_index=True)
    by_key = {int(k): int(c) for k, c in zip(stream, codes, strict=True)}
    assert len(by_key) == 5001 and len(set(by_key.values())) == 5001
    assert sorted(first.tolist()) == sorted(expected_first.tolist())
    assert all(stream[first[c]] == k for k, c in list(by_key.items())[:500])
    empty_codes, empty_first = dense_codes(np.zeros(0, np.uint64), 8)
    assert empty_codes.size == 0 and empty_first.size == 0


def test_threads_split_accounts_into_parts_with_the_same_rows() -> None:
    rng = np.random.default_rng(6)
    a = rng.integers(0, 500, 4000).astype(np.uint32)
    g = rng.integers(0, 60, 4000).astype(np.uint32)
    v = rng.integers(0, 3, 4000).astype(np.uint32)
    cg = rng.integers(0, 60, 200).astype(np.uint32)
    ca = rng.integers(0, 60, 200).astype(np.uint32)
    keep = cg != ca
    cg, ca = cg[keep], ca[keep]
    cd = rng.integers(1, 5, cg.size).astype(np.uint32)
    one = expand_codes(a, g, v, cg, ca, cd, threads=1, n_accounts=500, n_groups=60, n_vias=3)
    two = expand_codes(a, g, v, cg, ca, cd, threads=2, n_accounts=500, n_groups=60, n_vias=3)
    assert len(one) == 1 and len(two) == 2
    for col in ("a", "g", "d", "vg", "v"):
        assert np.array_equal(one[0][col], np.concatenate([p[col] for p in two]))
    assert two[0]["a"].max() < two[1]["a"].min()  # consecutive account ranges


def test_no_accounts_gives_an_empty_table_with_the_schema() -> None:
    m = pl.DataFrame(
        [
            {
                "source": "t",
                "group_id": "g2",
                "member_id": "g1",
                "member_kind": "group",
                "via": "member",
            }
        ],
        schema=MEMBERSHIPS_SCHEMA,
        orient="row",
    )
    got = effective_memberships(m, group_closure(m))
    assert got.height == 0 and got.schema == EFFECTIVE_SCHEMA


def test_an_unknown_via_is_a_clear_error() -> None:
    m = pl.DataFrame(
        [{"source": "t", "group_id": "g", "member_id": "u", "member_kind": "account", "via": "x"}],
        schema=MEMBERSHIPS_SCHEMA,
        orient="row",
    )
    with pytest.raises(ValueError, match=r"memberships: unknown via \['x'\] \(known: member, "):
        effective_memberships(m, group_closure(m))


def test_a_kernel_without_a_cache_location_still_compiles() -> None:
    """numba refuses ``cache=True`` where it has nowhere to write (here: a function with no
    source file; on a server: a read-only install and home). The kernel is then compiled
    without a cache instead of failing at import."""
    from accessaudit.analysis._kernels import _jit

    space: dict[str, Any] = {}  # exec's namespace
    exec("def twice(x):\n    return 2 * x\n", space)  # noqa: S102 - source-less on purpose
    with pytest.raises(RuntimeError, match="cannot cache"):
        numba.njit(cache=True)(space["twice"])(1)
    assert _jit(space["twice"])(21) == 42
