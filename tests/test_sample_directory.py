"""The sample directory: deterministic, sized as asked, and holding every case it claims."""

from __future__ import annotations

import polars as pl
import pytest
from accessaudit_fixtures import NOW

from accessaudit.model import ACCOUNTS_SCHEMA, GROUPS_SCHEMA, MEMBERSHIPS_SCHEMA, Via
from accessaudit.sample import HOSTILE, Sample, generate


def test_same_seed_same_directory() -> None:
    a, b = generate(seed=3, accounts=800, now=NOW), generate(seed=3, accounts=800, now=NOW)
    for name in a.tables:
        assert a.tables[name].equals(b.tables[name]), name
    assert a.truth.equals(b.truth)


def test_other_seed_other_ids() -> None:
    a, b = generate(seed=3, accounts=800, now=NOW), generate(seed=4, accounts=800, now=NOW)
    assert set(a.tables["accounts"]["account_id"]).isdisjoint(b.tables["accounts"]["account_id"])


@pytest.mark.parametrize("n", [200, 1000, 6000, 25_000])
def test_size_and_schemas(n: int) -> None:
    s = generate(seed=1, accounts=n, now=NOW)
    assert s.tables["accounts"].height == n
    assert s.tables["accounts"].schema == ACCOUNTS_SCHEMA
    assert s.tables["groups"].schema == GROUPS_SCHEMA
    assert s.tables["memberships"].schema == MEMBERSHIPS_SCHEMA
    assert s.tables["accounts"]["account_id"].n_unique() == n
    assert s.tables["accounts"]["sid"].n_unique() == n
    assert s.tables["groups"]["sid"].n_unique() == s.tables["groups"].height


def test_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 200"):
        generate(accounts=199)


def test_realistic_cases_are_present(sample: Sample) -> None:
    acc, grp, mem = (sample.tables[n] for n in ("accounts", "groups", "memberships"))
    wmp = acc.filter(pl.col("upn").str.ends_with("@westmercia.police.uk")).height
    warks = acc.filter(pl.col("upn").str.ends_with("@warwickshire.police.uk")).height
    assert 0.6 < wmp / (wmp + warks) < 0.72  # West Mercia about two thirds
    sizes = mem.group_by("group_id").len()
    assert sizes["len"].max() > 1500  # a group beyond AD's MaxValRange
    rids = grp.select(pl.col("sid").str.extract(r"-(\d+)$").cast(pl.Int64))["sid"].to_list()
    assert {512, 518, 519, 520, 544, 548, 549, 550, 551} <= set(rids)
    assert mem.filter(pl.col("via") == Via.PRIMARY_GROUP.value).height >= acc.height - 2
    names = set(acc["display_name"].to_list())
    assert any("Siân" in n or "Llywelyn" in n for n in names)  # Welsh names
    assert any("'" in n for n in names)  # apostrophes
    assert set(HOSTILE) <= set(acc["description"].drop_nulls().to_list())
    assert {"service", "computer", "user"} <= set(acc["kind"].to_list())
    assert not acc["enabled"].all()


def test_nesting_cycle_is_present(sample: Sample) -> None:
    grp, mem = sample.tables["groups"], sample.tables["memberships"]
    ids = dict(zip(grp["name"], grp["group_id"], strict=True))
    edges = set(
        mem.filter(pl.col("member_kind") == "group").select("member_id", "group_id").iter_rows()
    )
    a, b, c = ids["WMP-CYC-A"], ids["WMP-CYC-B"], ids["WMP-CYC-C"]
    assert {(a, b), (b, c), (c, a)} <= edges


def test_truth_covers_every_rule(sample: Sample, rules: list) -> None:
    assert set(sample.truth["rule_id"]) == {r.id for r in rules}
