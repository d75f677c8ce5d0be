"""The sample's new domains (sample.plants_foreign): findings equal the truth planted with them,
and the shared domain's own tables are the same with or without them."""

from __future__ import annotations

import polars as pl
import pytest
from support.fixtures import NOW
from support.truth import assert_matches_truth

from accessaudit.config.settings import Settings
from accessaudit.engine.rulefile import Rule
from accessaudit.pipeline.analyse import analyse
from accessaudit.sample.directory import generate
from accessaudit.sample.plants_foreign import NEW_DOMAIN_SIDS, WARKS_LEGACY_FOREST_SID

FOREIGN_PLANTS = (
    "new-domain-fsp", "new-domain-group-fsp", "alliance-account",
    "sid-history-of-alliance-account", "legacy-forest-fsp", "authenticated-users",
    "shared-trusts-new-warks-unfiltered", "new-warks-trusts-shared-quarantined",
)  # fmt: skip


@pytest.mark.parametrize(("seed", "accounts", "entra"), [(7, 6000, False), (5, 300, True)])
def test_new_domains_findings_equal_truth(
    seed: int, accounts: int, entra: bool, settings: Settings, rules: list[Rule]
) -> None:
    s = generate(seed=seed, accounts=accounts, now=NOW, entra=entra, domains=True)
    a = analyse(s.combined(), settings, rules, as_of=NOW)
    assert_matches_truth(a.findings, s.truth)
    planted = s.truth.filter(pl.col("plant").is_in(FOREIGN_PLANTS))
    assert dict(planted.group_by("rule_id").len().iter_rows()) == {
        # per force: its new account by FSP, its alliance account and the account migrated
        # from it (sIDHistory)
        "cross-org-direct-member": 6,
        # per force: those three and the new group's two members, to the groups above theirs
        "cross-org-nested-access": 14,
        "cross-org-group-nesting": 2,  # each force's new group, nested through its FSP
        "cross-org-foreign-principal": 2,  # the legacy forest's principal, and one level up
        "well-known-principal-member": 1,
        "cross-org-trust": 1,
        "cross-org-trust-sid-filtering-off": 1,
    }
    # the resolved edges are there, by how they were resolved
    via = a.memberships.group_by("via").len()
    assert dict(
        via.filter(pl.col("via").is_in(["foreign-principal", "sIDHistory"])).iter_rows()
    ) == {
        "foreign-principal": 4,  # an account and a group per force
        "sIDHistory": 2,  # each migrated account in its former account's group
    }
    foreign = a.extra["foreign_principals"]
    orgs = dict(zip(foreign["sid"], foreign["org"], strict=True))
    assert orgs[f"{WARKS_LEGACY_FOREST_SID}-1105"] == "warks"
    assert orgs["S-1-5-11"] == "unattributed"
    # every new-domain object is attributed by its domain SID (and its UPN suffix or prefix)
    new = a.accounts.filter(pl.col("source").str.starts_with("ad:new."))
    assert new.height == 8
    assert all(any(e.startswith("domain_sid:") for e in ev) for ev in new["org_evidence"].to_list())
    assert set(new.filter(pl.col("sid").str.starts_with(NEW_DOMAIN_SIDS["warks"]))["org"]) == {
        "warks"
    }


def test_the_shared_domain_is_the_same_with_or_without_the_new_domains() -> None:
    plain = generate(seed=5, accounts=900, now=NOW)
    with_domains = generate(seed=5, accounts=900, now=NOW, domains=True)
    for name in plain.tables:
        assert plain.tables[name].equals(with_domains.tables[name]), name
    assert not plain.domains
    assert set(with_domains.domains) == {"accounts", "groups", "memberships", "trusts"}
    cols = list(plain.truth.columns)
    extra = with_domains.truth.join(plain.truth, on=cols, how="anti", nulls_equal=True)
    assert set(extra["plant"]) == set(FOREIGN_PLANTS)
