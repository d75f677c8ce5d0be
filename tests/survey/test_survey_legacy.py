"""The legacy sample: its draws leave the default sample alone, its cases are recorded, and the
survey's proposals take a configuration of OU matchers only to >= 99% of the accounts holding
access attributed, with none attributed against the generator's truth."""

from __future__ import annotations

import tomllib
from typing import Any

import polars as pl
import pytest
from support.fixtures import NOW

from accessaudit.analysis.attribution import attribute_accounts
from accessaudit.config.settings import Settings, parse_settings
from accessaudit.config.survey import fragment
from accessaudit.pipeline.survey import survey_document
from accessaudit.sample import legacy as lg
from accessaudit.sample.builder import Sample
from accessaudit.sample.directory import generate

SEED, N = 11, 3000


@pytest.fixture(scope="module")
def samples() -> tuple[Sample, Sample]:
    return generate(seed=SEED, accounts=N, now=NOW), generate(
        seed=SEED, accounts=N, now=NOW, legacy=True
    )


def ou_only(sample: Sample, extra: dict[str, Any] | None = None) -> Settings:
    orgs = []
    for o in sample.config["organisations"]:
        match = {"ou": o["match"]["ou"]}
        if o["match"].get("privileged_groups"):
            match["privileged_groups"] = True
        orgs.append({"id": o["id"], "name": o["name"], "match": match})
    data = {"organisations": orgs, "sources": [{"kind": "sample", "name": "s", "host": "wmp"}]}
    return parse_settings({**data, **(extra or {})}, "", "legacy.toml")


def test_legacy_leaves_the_default_draws_alone(samples: tuple[Sample, Sample]) -> None:
    plain, old = samples
    assert old.tables["groups"].equals(plain.tables["groups"])
    assert old.tables["grants"].equals(plain.tables["grants"])
    assert old.truth.equals(plain.truth)
    base = plain.tables["memberships"]
    assert old.tables["memberships"].head(base.height).equals(base)
    accounts = old.tables["accounts"].head(plain.tables["accounts"].height)
    assert accounts["account_id"].equals(plain.tables["accounts"]["account_id"])
    rewritten = old.legacy["account_id"] if old.legacy is not None else pl.Series([])
    untouched = ~pl.col("account_id").is_in(rewritten.implode())
    assert accounts.filter(untouched).equals(plain.tables["accounts"].filter(untouched))
    # the plain sample's attribution truth is the legacy one less its new service accounts
    assert plain.attribution is not None and old.attribution is not None
    assert old.attribution.head(plain.attribution.height).equals(plain.attribution)


def test_every_case_is_planted_and_recorded(samples: tuple[Sample, Sample]) -> None:
    _, old = samples
    assert old.legacy is not None
    accounts = old.tables["accounts"]
    cases = {c: set(ids) for c, ids in old.legacy.group_by("case").agg("account_id").iter_rows()}
    assert set(cases) == {"cn-users", "renamed-ou", "old-upn-suffix", "old-employee-id",
                          "misspelt-company", "no-signal-service"}  # fmt: skip

    def rows(case: str) -> pl.DataFrame:
        return accounts.filter(pl.col("account_id").is_in(sorted(cases[case])))

    assert rows("cn-users")["dn"].str.ends_with(",CN=Users,DC=alliance,DC=local").all()
    assert rows("renamed-ou")["dn"].str.ends_with("," + lg.RENAMED_OU).all()
    assert rows("old-upn-suffix")["upn"].str.ends_with("@warwickshire.police.uk").all()
    assert rows("old-employee-id")["employee_id"].str.contains(r"^(WM|WK)\d{5}$").all()
    assert (rows("misspelt-company")["company"] == lg.MISSPELT).all()
    services = rows("no-signal-service")
    assert services.height == max(4, N // 1500)
    assert (
        services.select("upn", "mail", "company", "employee_id").null_count().row(0)
        == (services.height,) * 4
    )
    truth = old.attribution
    assert truth is not None and truth["account_id"].n_unique() == accounts.height


def test_proposals_reach_99_percent_with_no_misattribution(samples: tuple[Sample, Sample]) -> None:
    _, old = samples
    settings = ou_only(old)
    doc, proposals = survey_document(settings, old.tables)
    before = doc["accounts"]["totals"]
    assert before["unattributed_with_access"] > 0.05 * before["with_access"]  # a real start
    # the proposals, as the user gets them: TOML appended and loaded back as [[matchers]]
    text = fragment([(p.added(), []) for p in proposals], "proposals")
    applied = ou_only(old, {"matchers": tomllib.loads(text)["matchers"]})
    after = attribute_accounts(old.tables["accounts"], applied, old.tables["grants"])
    holds = pl.DataFrame({"account_id": old.tables["accounts"]["account_id"]}).with_columns(
        holds=pl.col("account_id").is_in(
            old.tables["memberships"]
            .filter(pl.col("via") != "primaryGroupID")["member_id"]
            .implode()
        )
    )
    truth = old.attribution
    assert truth is not None and old.legacy is not None
    judged = (
        after.select("account_id", "org")
        .join(holds, on="account_id")
        .join(truth, on="account_id", suffix="_true")
    )
    with_access = judged.filter("holds")
    attributed = with_access.filter(pl.col("org") != "unattributed")
    assert attributed.height / with_access.height >= 0.99
    wrong = judged.filter(
        (pl.col("org") != "unattributed")
        & ~((pl.col("org") == pl.col("org_true")) | (pl.col("org") == pl.col("alt_org"))).fill_null(
            False
        )
    )
    assert wrong.height == 0
    # what is left is what no signal can place: the contractors and the signal-less services
    left = with_access.filter(pl.col("org") == "unattributed")["account_id"].to_list()
    names = old.tables["accounts"].filter(pl.col("account_id").is_in(left))["username"]
    assert names.str.contains(r"^(temp\.contractor|svc_legacyapp)").all()
    # the document's own figure after the proposals agrees
    assert doc["accounts"]["after_proposals"]["unattributed_with_access"] == len(left)
    # every proposal states the objects it moves
    assert all(p.moves == len(p.moved) for p in proposals)
    assert {i for p in proposals for i in p.moved} >= set(
        old.legacy.filter(pl.col("case") == "renamed-ou")["account_id"]
    )
