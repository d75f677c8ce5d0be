"""What-if on hand-built tables: exact remaining findings and collateral."""

from __future__ import annotations

import polars as pl

from accessaudit.analysis.expand import effective_memberships, finding_paths, group_closure
from accessaudit.model import ACCOUNTS_SCHEMA, GRANTS_SCHEMA, GROUPS_SCHEMA, MEMBERSHIPS_SCHEMA
from accessaudit.remediation.whatif import apply_actions, split_group_id, what_if

ACC = {"a1": "a", "a2": "a", "b1": "b", "b2": "b"}
GRP = {"GA": "a", "GA2": "a", "GB": "b", "GM": "a", "GB2": "b"}
#: GA2 -> GB (cross nesting: a1 reaches GB); b1 in GA (cross member); GM mixed (a2 + b2) and
#: nested in GB2 (b's): splitting GM must keep b2's access to GB2.
EDGES = [("GA2", "a1"), ("GB", "GA2"), ("GA", "a1"), ("GA", "b1"), ("GM", "a2"), ("GM", "b2"),
         ("GB2", "GM"), ("GA", "a2")]  # fmt: skip


def _tables() -> dict[str, pl.DataFrame]:
    acc = pl.DataFrame(
        {"source": "ad:x", "account_id": list(ACC), "org": list(ACC.values())}
    ).with_columns(
        [
            pl.lit(None, t).alias(n)
            for n, t in ACCOUNTS_SCHEMA.items()
            if n not in ("source", "account_id")
        ]
    )
    acc = acc.with_columns(org=pl.Series(list(ACC.values())))
    grp = (
        pl.DataFrame({"source": "ad:x", "group_id": list(GRP)})
        .with_columns(
            [
                pl.lit(None, t).alias(n)
                for n, t in GROUPS_SCHEMA.items()
                if n not in ("source", "group_id")
            ]
        )
        .with_columns(org=pl.Series(list(GRP.values())), owners=pl.lit([], pl.List(pl.String)))
    )
    mem = pl.DataFrame(
        {
            "source": "ad:x",
            "group_id": [g for g, _ in EDGES],
            "member_id": [m for _, m in EDGES],
            "member_kind": ["group" if m in GRP else "account" for _, m in EDGES],
            "via": "member",
        },
        schema=MEMBERSHIPS_SCHEMA,
    )
    closure = group_closure(mem)
    eff = effective_memberships(mem, closure)
    grants = pl.DataFrame(schema=GRANTS_SCHEMA)
    t = {"accounts": acc, "groups": grp, "memberships": mem, "grants": grants,
         "group_closure": closure, "effective_memberships": eff}  # fmt: skip
    t["findings"] = _cross(acc, grp, eff)
    t["finding_paths"] = finding_paths(t["findings"], closure)
    return t


def _cross(acc: pl.DataFrame, grp: pl.DataFrame, eff: pl.DataFrame) -> pl.DataFrame:
    """The stand-in rule: one finding per account reaching a group of the other org."""
    ids = pl.col("account_id", "group_id", "via_group_id").cast(pl.String)  # Categorical
    return (
        eff.with_columns(ids)
        .join(acc.select("account_id", a_org="org"), on="account_id")
        .join(grp.select("group_id", g_org="org"), on="group_id")
        .filter(pl.col("a_org") != pl.col("g_org"))
        .select(
            finding_key=pl.concat_str([pl.lit("x|"), "account_id", pl.lit("|"), "group_id"]),
            account_id="account_id",
            group_id="group_id",
            member_group_id=pl.lit(None, pl.String),
            via_group_id="via_group_id",
            action=pl.lit("unnest-group"),
            principal_org="a_org",
        )
        .unique()
    )


def _reevaluate(
    acc: pl.DataFrame, grp: pl.DataFrame, mem: pl.DataFrame, grants: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    eff = effective_memberships(mem, group_closure(mem))
    return _cross(acc, grp, eff), eff


def _actions(rows: list[tuple[str, str | None, str | None, list[str]]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "action_id": [f"{k}|{g}|{m}" for k, g, m, _ in rows],
            "kind": [k for k, _, _, _ in rows],
            "group_id": [g for _, g, _, _ in rows],
            "member_id": [m for _, _, m, _ in rows],
            "resource_id": [None] * len(rows),
            "right": [None] * len(rows),
            "finding_keys": [f for _, _, _, f in rows],
        },
        schema_overrides={
            "group_id": pl.String,
            "member_id": pl.String,
            "resource_id": pl.String,
            "right": pl.String,
            "finding_keys": pl.List(pl.String),
        },
    )


def _pairs(df: pl.DataFrame) -> set[tuple[str, str]]:
    return set(df.select("account_id", "group_id").iter_rows())


def test_findings_before() -> None:
    keys = set(_tables()["findings"]["finding_key"])
    assert keys == {"x|a1|GB", "x|b1|GA", "x|a2|GB2", "x|b2|GM"}


def test_valid_plan_no_collateral() -> None:
    t = _tables()
    actions = _actions(
        [
            ("unnest-group", "GB", "GA2", ["x|a1|GB"]),
            ("remove-member", "GA", "b1", ["x|b1|GA"]),
            ("split-group", "GM", None, ["x|b2|GM"]),
            ("unnest-group", "GB2", "GM", ["x|a2|GB2"]),
        ]
    )
    w = what_if(t, actions, _reevaluate)
    assert w.valid and w.remaining == [] and w.new == []
    assert w.planned == 4 and w.collateral.height == 0 and w.per_action == {}
    after = apply_actions(t, actions)
    new = split_group_id("GM", "b")
    assert new in set(after["groups"]["group_id"])
    edges = set(after["memberships"].select("group_id", "member_id").iter_rows())
    # b2 moved to the new group, which keeps GM's parent of b's org (GB2); a2 left in GM
    assert {(new, "b2"), ("GB2", new), ("GM", "a2")} <= edges
    assert (
        ("GM", "b2") not in edges
        and ("GB2", "GM") not in edges
        and ("GB", "GA2") not in edges
        and ("GA", "b1") not in edges
    )


def test_collateral_and_remaining_exact() -> None:
    t = _tables()
    # Removing a1 from GA2 resolves a1 -> GB but also takes a1's same-force access to GA2;
    # remove-member a2 from GA takes a same-force access and resolves nothing it claimed.
    actions = _actions(
        [
            ("remove-member", "GA2", "a1", ["x|a1|GB"]),
            ("remove-member", "GA", "a2", ["x|b1|GA"]),
        ]
    )
    w = what_if(t, actions, _reevaluate)
    assert not w.valid and w.remaining == ["x|b1|GA"]
    assert _pairs(w.collateral) == {("a1", "GA2"), ("a2", "GA")}
    assert w.per_action == {"remove-member|GA2|a1": 1, "remove-member|GA|a2": 1}
    d = w.to_dict()
    assert d["remaining"] == 1 and d["collateral"] == 2
    assert d["collateral_pairs"][0] == {
        "account_id": "a1", "group_id": "GA2", "org": "a", "action_ids": ["remove-member|GA2|a1"]
    }  # fmt: skip


def test_decisions_not_simulated() -> None:
    t = _tables()
    actions = _actions([("review-attribution", None, "a1", ["x|a1|GB"])])
    w = what_if(t, actions, _reevaluate)
    assert w.planned == 0 and w.decisions == 1 and w.valid
