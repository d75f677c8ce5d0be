"""The demo's findings equal the generator's planted ground truth, exactly.

The truth is recorded by the generator as it plants each case; the findings come from
attribution, expansion and the rule catalogue. Precision and recall must both be 100%.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from accessaudit_fixtures import NOW, TRUTH_KEYS

from accessaudit.pipeline import Analysis, analyse, prepare_demo, run_audit
from accessaudit.sample import Sample, generate
from accessaudit.store import read_table


def assert_matches_truth(findings: pl.DataFrame, truth: pl.DataFrame) -> None:
    got = findings.select(TRUTH_KEYS)
    want = truth.select(TRUTH_KEYS)
    missed = want.join(got, on=TRUTH_KEYS, how="anti", nulls_equal=True)
    extra = got.join(want, on=TRUTH_KEYS, how="anti", nulls_equal=True)
    assert missed.height == 0, f"planted but not found: {missed.head(10)}"
    assert extra.height == 0, f"found but not planted: {extra.head(10)}"
    assert got.height == want.height


def test_default_sample_findings_equal_truth(sample: Sample, analysis: Analysis) -> None:
    assert_matches_truth(analysis.findings, sample.truth)
    # depth of every access finding is the planted one
    depth = analysis.findings.join(
        sample.truth, on=TRUTH_KEYS, nulls_equal=True, suffix="_truth"
    ).filter(pl.col("depth_truth").is_not_null())
    assert (depth["depth"] == depth["depth_truth"]).all()


@pytest.mark.parametrize(("seed", "accounts"), [(11, 6000), (23, 1500), (5, 300)])
def test_other_seeds_and_sizes(seed: int, accounts: int, settings, rules) -> None:
    s = generate(seed=seed, accounts=accounts, now=NOW)
    a = analyse(s.tables, settings, rules, as_of=NOW)
    assert_matches_truth(a.findings, s.truth)


def test_expected_counts_of_default_sample(analysis: Analysis) -> None:
    by_rule = dict(analysis.findings.group_by("rule_id").len().iter_rows())
    assert by_rule == {
        "conflicting-attribution": 30,
        "cross-org-direct-member": 125,
        "cross-org-group-nesting": 3,
        "cross-org-nested-access": 1377,
        "cross-org-privileged-access": 246,
        "inactive-cross-org-access": 65,
        "mixed-group": 2,
        "unattributed-with-access": 14,
    }


def test_finding_keys_are_stable_across_runs(sample: Sample, settings, rules) -> None:
    again = analyse(sample.tables, settings, rules, as_of=NOW)
    later = analyse(sample.tables, settings, rules, as_of=NOW.replace(day=2))
    assert again.findings["finding_key"].to_list() == later.findings["finding_key"].to_list()
    assert again.findings["finding_key"].n_unique() == again.findings.height


def test_run_writes_a_complete_run_that_reads_back(tmp_path: Path) -> None:
    """The demo as `accessaudit demo` runs it: directory plus two application CSV exports."""
    settings = prepare_demo(tmp_path / "demo", accounts=1200, seed=9)
    result = run_audit(settings, now=NOW)
    assert result.complete
    truth = generate(seed=9, accounts=1200, now=NOW, apps=True).truth
    assert truth.filter(pl.col("plant").str.starts_with("app-")).height == 12
    assert_matches_truth(read_table(result.run, "findings"), truth)
    assert result.report is not None and result.report.is_file()
    m = result.run.manifest
    assert m["summary"]["findings"] == truth.height
    assert m["sources"][0]["counts"]["accounts"] == 1200
    assert [(s["name"], s["kind"], s["complete"]) for s in m["sources"]] == [
        ("alliance", "sample", True),
        ("niche", "csv", True),
        ("athena", "csv", True),
    ]
    units = {u["name"]: u["detail"] for u in m["sources"][1]["units"]}
    assert units["correlation"] == "42 matched, 2 unmatched, 0 ambiguous on username"
    assert {
        "accounts.parquet",
        "findings.parquet",
        "actions.parquet",
        "report.html",
        "findings.csv",
        "actions.csv",
        "findings.json",
        "actions.xlsx",
    } <= set(m["files"])
