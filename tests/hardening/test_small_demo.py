"""The demo at the documented minimum (200 accounts) and just above it, with other seeds: it
runs, and its findings are exactly the planted truth (every plant still finds its people)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from support.fixtures import NOW
from support.truth import assert_matches_truth

from accessaudit.pipeline.demo import prepare_demo
from accessaudit.pipeline.run import run_audit
from accessaudit.sample import people
from accessaudit.sample.directory import generate
from accessaudit.sample.people import MIN_WARKS_STAFF
from accessaudit.store.runs import read_table


@pytest.mark.parametrize(("accounts", "seed"), [(200, 7), (201, 7), (220, 7), (200, 2)])
def test_demo_at_the_smallest_sizes(tmp_path: Path, accounts: int, seed: int) -> None:
    settings = prepare_demo(tmp_path / "demo", accounts=accounts, seed=seed)
    result = run_audit(settings, now=NOW)
    assert result.complete
    planted = generate(seed=seed, accounts=accounts, now=NOW, apps=True, entra=True, domains=True)
    assert planted.tables["accounts"].height == accounts
    assert_matches_truth(read_table(result.run, "findings"), planted.truth)
    warks = planted.tables["accounts"].filter(
        pl.col("dn").str.contains("OU=Warwickshire", literal=True).fill_null(False)
    )
    assert warks.height >= MIN_WARKS_STAFF


def test_larger_samples_are_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    """The floor uses no random draw: a sample with enough Warwickshire staff of its own is
    exactly what it was without the floor."""
    with_floor = generate(seed=7, accounts=1000, now=NOW)
    monkeypatch.setattr(people, "MIN_WARKS_STAFF", 0)
    without = generate(seed=7, accounts=1000, now=NOW)
    for name, table in with_floor.tables.items():
        assert table.equals(without.tables[name]), name
    assert with_floor.truth.equals(without.truth)
