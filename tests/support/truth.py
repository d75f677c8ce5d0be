"""Findings compared with the generator's planted ground truth: precision and recall 100%."""

from __future__ import annotations

import polars as pl

from accessaudit.sample.truth import TRUTH_KEYS


def assert_matches_truth(findings: pl.DataFrame, truth: pl.DataFrame) -> None:
    """Every planted case is found and nothing else is (same keys, same number of rows)."""
    got = findings.select(TRUTH_KEYS)
    want = truth.select(TRUTH_KEYS)
    missed = want.join(got, on=TRUTH_KEYS, how="anti", nulls_equal=True)
    extra = got.join(want, on=TRUTH_KEYS, how="anti", nulls_equal=True)
    assert missed.height == 0, f"planted but not found: {missed.head(10)}"
    assert extra.height == 0, f"found but not planted: {extra.head(10)}"
    assert got.height == want.height
