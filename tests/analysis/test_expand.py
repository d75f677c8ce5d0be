"""Group closure and effective memberships: depth, shortest paths, cycles, primary groups."""

from __future__ import annotations

import polars as pl

from accessaudit.analysis.expand import effective_memberships, finding_paths, group_closure
from accessaudit.model import EFFECTIVE_SCHEMA, GROUP_CLOSURE_SCHEMA, MEMBERSHIPS_SCHEMA


def edges(*rows: tuple[str, str, str] | tuple[str, str, str, str]) -> pl.DataFrame:
    """(group, member, kind[, via]) rows -> memberships."""
    return pl.DataFrame(
        [
            {
                "source": "t",
                "group_id": r[0],
                "member_id": r[1],
                "member_kind": r[2],
                "via": r[3] if len(r) > 3 else "member",
            }
            for r in rows
        ],
        schema=MEMBERSHIPS_SCHEMA,
    )


def closure_dict(df: pl.DataFrame) -> dict[tuple[str, str], tuple[int, list[str]]]:
    return {
        (g, a): (d, p)
        for g, a, d, p in df.select("group_id", "ancestor_id", "depth", "path").iter_rows()
    }


def test_chain_and_depths() -> None:
    m = edges(("b", "a", "group"), ("c", "b", "group"), ("d", "c", "group"))
    c = group_closure(m)
    assert c.schema == GROUP_CLOSURE_SCHEMA
    assert closure_dict(c) == {
        ("a", "b"): (1, ["a", "b"]),
        ("a", "c"): (2, ["a", "b", "c"]),
        ("a", "d"): (3, ["a", "b", "c", "d"]),
        ("b", "c"): (1, ["b", "c"]),
        ("b", "d"): (2, ["b", "c", "d"]),
        ("c", "d"): (1, ["c", "d"]),
    }


def test_cycle_terminates_and_excludes_self() -> None:
    m = edges(("b", "a", "group"), ("c", "b", "group"), ("a", "c", "group"), ("a", "a", "group"))
    got = {(g, a): d for (g, a), (d, _) in closure_dict(group_closure(m)).items()}
    assert got == {
        ("a", "b"): 1,
        ("a", "c"): 2,
        ("b", "c"): 1,
        ("b", "a"): 2,
        ("c", "a"): 1,
        ("c", "b"): 2,
    }


def test_diamond_keeps_one_shortest_path() -> None:
    # a -> b -> d, a -> c -> d, and a long way a -> x -> y -> d
    m = edges(
        ("b", "a", "group"),
        ("c", "a", "group"),
        ("d", "b", "group"),
        ("d", "c", "group"),
        ("x", "a", "group"),
        ("y", "x", "group"),
        ("d", "y", "group"),
    )
    c = closure_dict(group_closure(m))
    assert c[("a", "d")] == (2, ["a", "b", "d"])  # deterministic: b before c


def test_effective_memberships_direct_nested_and_primary() -> None:
    m = edges(
        ("g1", "u1", "account"),
        ("g2", "g1", "group"),
        ("g3", "g2", "group"),
        ("g2", "u1", "account"),  # also direct in g2: depth 0 wins
        ("du", "u2", "account", "primaryGroupID"),
        ("g3", "du", "group"),
        ("fsp", "S-1-5-21-1-2-3-1104", "foreign"),
    )
    e = effective_memberships(m, group_closure(m))
    assert e.schema == EFFECTIVE_SCHEMA
    rows = {
        (r["account_id"], r["group_id"]): (r["depth"], r["via_group_id"], r["via"])
        for r in e.iter_rows(named=True)
    }
    assert rows == {
        ("u1", "g1"): (0, "g1", "member"),
        ("u1", "g2"): (0, "g2", "member"),
        ("u1", "g3"): (1, "g2", "member"),
        ("u2", "du"): (0, "du", "primaryGroupID"),
        ("u2", "g3"): (1, "du", "primaryGroupID"),
    }


def test_finding_paths_hop_by_hop() -> None:
    m = edges(("g2", "g1", "group"), ("g3", "g2", "group"))
    c = group_closure(m)
    findings = pl.DataFrame(
        {
            "finding_key": ["direct", "nested", "nesting", "review"],
            "account_id": ["u", "u", None, "u"],
            "group_id": ["g1", "g3", "g2", None],
            "via_group_id": ["g1", "g1", None, None],
            "member_group_id": [None, None, "g1", None],
        }
    )
    got = dict(finding_paths(findings, c).iter_rows())
    assert got == {
        "direct": ["u", "g1"],
        "nested": ["u", "g1", "g2", "g3"],
        "nesting": ["g1", "g2"],
    }
