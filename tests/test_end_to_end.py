"""The demo's findings equal the generator's planted ground truth, exactly.

The truth is recorded by the generator as it plants each case; the findings come from
attribution, expansion and the rule catalogue. Precision and recall must both be 100%, with and
without the sample's Entra tenant, on several seeds and sizes.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from accessaudit_fixtures import NOW

from accessaudit.pipeline import Analysis, analyse, prepare_demo, run_audit
from accessaudit.sample import TRUTH_KEYS, Sample, generate
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


@pytest.mark.parametrize(
    ("seed", "accounts", "entra"),
    [(11, 6000, False), (23, 1500, False), (5, 300, False), (11, 6000, True), (23, 1500, True),
     (5, 300, True), (3, 200, True)],
)  # fmt: skip
def test_other_seeds_and_sizes(seed: int, accounts: int, entra: bool, settings, rules) -> None:
    s = generate(seed=seed, accounts=accounts, now=NOW, entra=entra)
    a = analyse(s.combined(), settings, rules, as_of=NOW)
    assert_matches_truth(a.findings, s.truth)
    # the directory alone still gives exactly its own part of the truth
    if entra:
        tenant = set(s.entra["accounts"]["account_id"]) | set(s.entra["groups"]["group_id"])
        ids = ["account_id", "group_id", "member_group_id"]
        own = s.truth.filter(
            ~pl.any_horizontal(pl.col(c).is_in(list(tenant)).fill_null(False) for c in ids)
            & ~pl.col("rule_id").is_in(["cross-org-directory-role", "cross-org-guest"])
        )
        alone = generate(seed=seed, accounts=accounts, now=NOW)
        assert alone.truth.select(TRUTH_KEYS).equals(own.select(TRUTH_KEYS))


def test_expected_counts_of_default_sample(analysis: Analysis) -> None:
    by_rule = dict(analysis.findings.group_by("rule_id").len().iter_rows())
    assert by_rule == {
        "conflicting-attribution": 34,
        "cross-org-direct-member": 125,
        "cross-org-group-nesting": 4,
        "cross-org-group-owner": 2,
        "cross-org-nested-access": 1377,
        "cross-org-privileged-access": 246,
        "cross-org-sid-history": 3,
        "dual-identity": 2,
        "empty-cross-org-group": 1,
        "inactive-cross-org-access": 65,
        "manager-in-other-org": 4,
        "mixed-group": 2,
        "shared-account-both-forces": 15,
        "unattributed-with-access": 14,
    }


def test_expected_counts_with_the_entra_tenant(settings, rules) -> None:
    s = generate(seed=7, accounts=6000, now=NOW, entra=True)
    a = analyse(s.combined(), settings, rules, as_of=NOW)
    by_rule = dict(a.findings.group_by("rule_id").len().iter_rows())
    assert {k: v for k, v in by_rule.items() if k.startswith("cross-org-")} == {
        "cross-org-app-role": 5,  # 3 people and 1 team across the line, 1 guest
        "cross-org-direct-member": 129,  # + 4 guests in West Mercia teams
        "cross-org-directory-role": 6,  # tenant-wide, PIM eligible, group, 2 AU scopes, guest
        "cross-org-group-nesting": 4,
        "cross-org-group-owner": 3,  # + a Warwickshire co-owner of a West Mercia team
        "cross-org-guest": 6,
        "cross-org-nested-access": 1377,
        "cross-org-privileged-access": 247,  # + West Mercia's role-assignable admin group
        "cross-org-sid-history": 3,
    }
    assert by_rule["inactive-cross-org-access"] == 66  # + the dormant guest
    kinds = set(a.actions["kind"])
    assert {"remove-role-assignment", "remove-app-role-assignment", "remove-guest"} <= kinds


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
    truth = generate(seed=9, accounts=1200, now=NOW, apps=True, entra=True).truth
    assert truth.filter(pl.col("plant").str.starts_with("app-")).height == 12
    assert truth.filter(pl.col("plant").str.starts_with("entra-")).height == 24
    assert_matches_truth(read_table(result.run, "findings"), truth)
    assert result.report is not None and result.report.is_file()
    m = result.run.manifest
    assert m["summary"]["findings"] == truth.height
    assert m["sources"][0]["counts"]["accounts"] == 1200
    assert [(s["name"], s["kind"], s["complete"], s["source"][:6]) for s in m["sources"]] == [
        ("alliance", "sample", True, "ad:all"),
        ("alliance-entra", "sample", True, "entra:"),
        ("niche", "csv", True, "csv:ni"),
        ("athena", "csv", True, "csv:at"),
    ]
    assert m["exceptions"] is None
    # CSV users are matched to the AD account, not to its Entra synced copy as well
    units = {u["name"]: u["detail"] for u in m["sources"][2]["units"]}
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
