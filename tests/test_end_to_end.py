"""The demo's findings equal the generator's planted ground truth, exactly.

The truth is recorded by the generator as it plants each case; the findings come from
attribution, expansion and the rule catalogue. Precision and recall must both be 100%, with and
without the sample's Entra tenant, on several seeds and sizes. No finding may touch an access
the generator planted as legitimate (:mod:`accessaudit.sample.legit`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from support.fixtures import NOW
from support.truth import assert_matches_truth

from accessaudit.cli import main
from accessaudit.config.settings import Settings
from accessaudit.engine.rulefile import Rule
from accessaudit.pipeline.analyse import Analysis, analyse
from accessaudit.pipeline.demo import prepare_demo
from accessaudit.pipeline.run import run_audit
from accessaudit.sample.builder import Sample
from accessaudit.sample.directory import generate
from accessaudit.sample.legit import LEGIT_KEYS
from accessaudit.sample.truth import TRUTH_KEYS
from accessaudit.store.runs import RunStore, read_table


def touched_legitimate(findings: pl.DataFrame, legit: pl.DataFrame) -> pl.DataFrame:
    """The legitimate rows some finding touches, with that finding's rule.

    A finding touches a row when it carries every non-null key of the row (sample_legit). A
    reach through nesting (``via_group_id``, when findings have it) is legitimate when the
    account's direct membership of the via group is, and so is the path from it to the group.
    """
    cols = [*LEGIT_KEYS, *(["via_group_id"] if "via_group_id" in findings.columns else [])]
    got = findings.select("rule_id", *cols)
    pattern = pl.concat_str(
        [pl.col(c).is_not_null().cast(pl.Int8).cast(pl.String) for c in LEGIT_KEYS]
    )
    out = []
    for (bits,), rows in legit.with_columns(_keys=pattern).group_by("_keys"):
        on = [c for c, bit in zip(LEGIT_KEYS, str(bits), strict=True) if bit == "1"]
        out.append(rows.drop("_keys").join(got.select("rule_id", *on), on=on))
    if "via_group_id" in cols:
        plain = pl.col("resource_id").is_null() & pl.col("member_group_id").is_null()
        direct = legit.filter(plain & pl.col("account_id").is_not_null() & (pl.col("depth") == 0))
        paths = legit.filter(
            pl.col("account_id").is_null() & pl.col("member_group_id").is_not_null()
        )
        reach = (
            got.filter(pl.col("via_group_id") != pl.col("group_id"))
            .join(
                direct.select("account_id", via_group_id="group_id"),
                on=["account_id", "via_group_id"],
            )
            .join(
                paths.select("kind", "depth", "reason", "group_id", via_group_id="member_group_id"),
                on=["via_group_id", "group_id"],
            )
        )
        out.append(reach)
    return pl.concat([o.select(*legit.columns, "rule_id") for o in out])


def assert_touches_no_legitimate(findings: pl.DataFrame, legit: pl.DataFrame) -> None:
    """Precision on the planted legitimate set: none of its rows is touched by a finding."""
    touched = touched_legitimate(findings, legit)
    kinds = set(legit["kind"])
    assert {"own-force-staff", "same-force-nesting", "shared-group", "cycle"} <= kinds
    assert touched.height == 0, (
        f"{touched.height} of {legit.height} legitimate rows touched by a finding "
        f"(precision on the legitimate set {1 - touched.height / legit.height:.4f}, "
        f"want 1.0000): {touched.head(10)}"
    )


def test_default_sample_findings_equal_truth(sample: Sample, analysis: Analysis) -> None:
    assert_matches_truth(analysis.findings, sample.truth)
    assert_touches_no_legitimate(analysis.findings, sample.legitimate)
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
def test_other_seeds_and_sizes(
    seed: int, accounts: int, entra: bool, settings: Settings, rules: list[Rule]
) -> None:
    s = generate(seed=seed, accounts=accounts, now=NOW, entra=entra)
    a = analyse(s.combined(), settings, rules, as_of=NOW)
    assert_matches_truth(a.findings, s.truth)
    assert_touches_no_legitimate(a.findings, s.legitimate)
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


@pytest.mark.parametrize("seed", [7, 11])
def test_planted_truth_and_legitimate_rows_never_meet(seed: int) -> None:
    """The generator's own two lists are disjoint, or the checks against them prove nothing."""
    s = generate(seed=seed, accounts=3000, now=NOW, apps=True, entra=True)
    assert touched_legitimate(s.truth, s.legitimate).height == 0
    legit = s.legitimate
    assert legit.select(LEGIT_KEYS).null_count().sum_horizontal().item() < legit.height * 5
    assert legit.filter(pl.all_horizontal(pl.col(LEGIT_KEYS).is_null())).height == 0
    # every part of the estate contributes: directory, separation, tenant, applications
    assert {
        "own-force-staff", "own-force-resource-member", "own-force-admin", "own-force-member",
        "same-force-nesting", "privileged-nesting", "cycle", "shared-group", "primary-group",
        "service-account", "own-force-group-owner", "own-force-sid-history",
        "entra-team-member", "entra-team-owner", "entra-admin-unit-member", "entra-own-admin",
        "entra-own-role", "entra-own-app-role", "entra-guest-own-force", "entra-guest-idle",
        "entra-app-owner", "app-own-force",
    } == set(legit["kind"])  # fmt: skip
    # ... and it is the same directory part with or without the tenant and the applications
    alone = generate(seed=seed, accounts=3000, now=NOW).legitimate
    tenant_or_app = pl.col("kind").str.starts_with("entra-") | pl.col("kind").str.starts_with(
        "app-"
    )
    assert alone.equals(legit.filter(~tenant_or_app))


def test_the_legitimate_check_sees_every_kind_of_touch(sample: Sample) -> None:
    """A finding shaped like any legitimate row is caught, and so is a reach through a legitimate
    membership and a legitimate nesting path (else the precision checks above prove nothing)."""
    legit = sample.legitimate
    pattern = pl.concat_str(
        [pl.col(c).is_not_null().cast(pl.Int8).cast(pl.String) for c in LEGIT_KEYS]
    )
    one_per_shape = legit.with_columns(_p=pattern).unique("_p", keep="first").drop("_p")
    assert one_per_shape.height >= 4  # membership, nesting path, group alone, grant
    fake = one_per_shape.select(*LEGIT_KEYS).with_columns(
        rule_id=pl.lit("cross-org-direct-member"), via_group_id=pl.lit(None, pl.String)
    )
    assert touched_legitimate(fake, legit).height >= fake.height
    # West Mercia CID staff reaching a resource group their department is nested in
    ids = dict(
        zip(sample.tables["groups"]["name"], sample.tables["groups"]["group_id"], strict=True)
    )
    path = legit.filter(
        (pl.col("member_group_id") == ids["WMP-DEPT-CID"]) & pl.col("account_id").is_null()
    )
    member = legit.filter(
        (pl.col("group_id") == ids["WMP-DEPT-CID"]) & (pl.col("kind") == "own-force-staff")
    )["account_id"][0]
    reach = path.select(
        rule_id=pl.lit("cross-org-nested-access"),
        account_id=pl.lit(member),
        group_id="group_id",
        member_group_id=pl.lit(None, pl.String),
        resource_id=pl.lit(None, pl.String),
        right=pl.lit(None, pl.String),
        via_group_id="member_group_id",
    )
    assert reach.height >= 2
    assert touched_legitimate(reach, legit).height == reach.height


def test_expected_counts_of_default_sample(analysis: Analysis) -> None:
    by_rule = dict(analysis.findings.group_by("rule_id").len().iter_rows())
    assert by_rule == {
        "conflicting-attribution": 34,
        "cross-org-direct-member": 125,
        "cross-org-group-nesting": 4,
        "cross-org-group-owner": 2,
        # data paths (plants_data): a deep folder, a read, a shared mailbox's FullAccess, a
        # calendar, an Owner and a Reader in Azure
        "cross-org-share-access": 1,
        "cross-org-share-read": 1,
        "cross-org-mailbox-access": 1,
        "cross-org-mailbox-read": 1,
        "cross-org-azure-role": 1,
        "cross-org-azure-reader": 1,
        # control paths (plants_control): an OU delegation and AdminSDHolder, an account, a
        # group, a GPO, an owner, DCSync
        "cross-org-control-container": 2,
        "cross-org-control-account": 1,
        "cross-org-control-group": 1,
        "cross-org-control-gpo": 1,
        "cross-org-object-owner": 1,
        "dcsync-outside-admins": 1,
        "cross-org-nested-access": 1377,
        "cross-org-privileged-access": 246,
        "cross-org-sid-history": 3,
        "dual-identity": 2,
        "empty-cross-org-group": 1,
        "foreign-principal-unresolved": 4,  # 2 retired-domain FSPs, each in a nested group
        "inactive-cross-org-access": 65,
        "manager-in-other-org": 4,
        "mixed-group": 2,
        "shared-account-both-forces": 15,
        "unattributed-with-access": 14,
    }


def test_expected_counts_with_the_entra_tenant(settings: Settings, rules: list[Rule]) -> None:
    s = generate(seed=7, accounts=6000, now=NOW, entra=True)
    a = analyse(s.combined(), settings, rules, as_of=NOW)
    by_rule = dict(a.findings.group_by("rule_id").len().iter_rows())
    assert {k: v for k, v in by_rule.items() if k.startswith("cross-org-")} == {
        "cross-org-app-role": 5,  # 3 people and 1 team across the line, 1 guest
        # + 4 guests in teams, 1 swept in by a dynamic rule, 2 guests known only by their home
        # domain, a Warwickshire service principal in a West Mercia team and a guest in West
        # Mercia's hidden-membership group
        "cross-org-direct-member": 134,
        # tenant-wide, PIM eligible, group, 3 AU scopes (+ a unit holding a Warwickshire team),
        # guest
        "cross-org-directory-role": 7,
        "cross-org-group-nesting": 4,
        # + a Warwickshire co-owner of a West Mercia team and a Warwickshire owner of West
        # Mercia's enterprise application (a service principal's owner)
        "cross-org-group-owner": 4,
        "cross-org-guest": 8,  # 2 of them attributed only by their home domain
        **{f"cross-org-{k}": 1 for k in ("share-access", "share-read", "mailbox-access")},
        **{f"cross-org-{k}": 1 for k in ("mailbox-read", "azure-role", "azure-reader")},
        **{f"cross-org-{k}": 1 for k in ("control-account", "control-group", "control-gpo")},
        "cross-org-control-container": 2,
        "cross-org-object-owner": 1,
        "cross-org-nested-access": 1377,
        "cross-org-privileged-access": 247,  # + West Mercia's role-assignable admin group
        "cross-org-sid-history": 3,
    }
    assert by_rule["inactive-cross-org-access"] == 66  # + the dormant guest
    kinds = set(a.actions["kind"])
    assert {"remove-role-assignment", "remove-app-role-assignment", "remove-guest"} <= kinds


def test_finding_keys_are_stable_across_runs(
    sample: Sample, settings: Settings, rules: list[Rule]
) -> None:
    again = analyse(sample.tables, settings, rules, as_of=NOW)
    later = analyse(sample.tables, settings, rules, as_of=NOW.replace(day=2))
    assert again.findings["finding_key"].to_list() == later.findings["finding_key"].to_list()
    assert again.findings["finding_key"].n_unique() == again.findings.height


def test_run_writes_a_complete_run_that_reads_back(tmp_path: Path) -> None:
    """The demo as `accessaudit demo` runs it: directory plus two application CSV exports."""
    settings = prepare_demo(tmp_path / "demo", accounts=1200, seed=9)
    result = run_audit(settings, now=NOW)
    assert result.complete
    planted = generate(seed=9, accounts=1200, now=NOW, apps=True, entra=True, domains=True)
    truth = planted.truth
    assert truth.filter(pl.col("plant").str.starts_with("app-")).height == 12
    # + 1: the Warwickshire guest in West Mercia's hidden-membership group (entra-hidden)
    assert truth.filter(pl.col("plant").str.starts_with("entra-")).height == 33
    assert_matches_truth(read_table(result.run, "findings"), truth)
    assert_touches_no_legitimate(read_table(result.run, "findings"), planted.legitimate)
    assert result.report is not None and result.report.is_file()
    m = result.run.manifest
    assert m["summary"]["findings"] == truth.height
    assert m["sources"][0]["counts"]["accounts"] == 1210  # + the new domains' 8 and 2 alliance
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


def test_the_demo_as_shipped_finds_exactly_the_planted_truth(tmp_path: Path) -> None:
    """`accessaudit demo` with its defaults (seed 7, 6,000 accounts; the directory, its Entra
    tenant and the two application exports): precision and recall 100%, and no finding on a
    planted legitimate access."""
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    run = RunStore(out).latest()
    assert run is not None
    m = run.manifest
    assert [(s["name"], s["kind"]) for s in m["sources"]] == [
        ("alliance", "sample"),
        ("alliance-entra", "sample"),
        ("niche", "csv"),
        ("athena", "csv"),
    ]
    # 6,000 in the shared domain, 4 in each force's new domain, 2 alliance accounts they add
    assert m["sources"][0]["counts"]["accounts"] == 6010
    assert {u["detail"] for u in m["sources"][0]["units"]} == {"generated from seed 7"}
    # the same estate, generated as of the run's own clock (dormancy is relative to it)
    planted = generate(
        seed=7,
        accounts=6000,
        now=datetime.fromisoformat(m["started"]),
        apps=True,
        entra=True,
        domains=True,
    )
    # 2 x (4 strays + 2 ghosts), but one stray is exported "No" (a disabled login: no direct
    # access; inactive-cross-org-access reports it)
    assert planted.truth.filter(pl.col("plant").str.starts_with("app-")).height == 11
    assert planted.truth.filter(pl.col("plant").str.starts_with("entra-")).height > 20
    findings = read_table(run, "findings")
    assert_matches_truth(findings, planted.truth)
    assert_touches_no_legitimate(findings, planted.legitimate)
    assert m["summary"]["findings"] == planted.truth.height
