"""The sample's Entra tenant through the emulator: read with signInActivity its planted dormant
accounts (a guest invited 400 days ago who never signed in) are found and disabled by the plan;
read without it, none of its accounts is dormant and none is disabled, its disabled ones are
still found. The truth is the sample's planted truth (``sample.truth``), split by plain code."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from support.entra_data import serve_sample
from support.fixtures import NOW

from accessaudit.connectors.entra.collect import collect
from accessaudit.model import LAST_LOGON, SourceCollection
from accessaudit.pipeline.analyse import analyse
from accessaudit.pipeline.collect import combine
from accessaudit.pipeline.demo import demo_settings
from accessaudit.sample.directory import generate
from accessaudit.sample.entra import ENTRA_SOURCE, TENANT_ID

RULE = "inactive-cross-org-access"
ACCOUNTS = 900


@pytest.mark.parametrize("sign_in", [True, False])
def test_sample_tenant_dormancy_only_with_sign_ins(emu, make_cfg, rules, tmp_path, sign_in):
    sample = generate(seed=7, accounts=ACCOUNTS, now=NOW, entra=True)
    served = sample.entra
    serve_sample(emu, served)

    result = collect(make_cfg(tenant_id=TENANT_ID, sign_in_activity=sign_in))
    now = datetime.now(UTC)
    directory = SourceCollection(sample.source, "sample", now, now, dict(sample.tables))
    tables = combine([("alliance", directory), ("alliance-entra", result)])
    settings = demo_settings(tmp_path, accounts=ACCOUNTS, seed=7, entra=True)
    analysis = analyse(tables, settings, rules, as_of=NOW)

    assert result.complete
    assert result.signals[LAST_LOGON].recorded is sign_in
    # the truth: the planted inactive accounts of the tenant, disabled or (enabled) dormant
    enabled = dict(served["accounts"].select("account_id", "enabled").iter_rows())
    planted = [a for a in sample.truth.filter(rule_id=RULE)["account_id"] if a in enabled]
    disabled = {a for a in planted if not enabled[a]}
    dormant = {a for a in planted if enabled[a]}
    assert len(dormant) == 1  # the guest who never signed in
    expected = disabled | dormant if sign_in else disabled
    found = analysis.findings.filter(
        (pl.col("rule_id") == RULE) & pl.col("account_id").is_in(list(enabled))
    )
    assert set(found["account_id"]) == expected
    # the plan disables in the tenant only accounts it knows are dormant (the guest is deleted
    # instead: its remove-guest action resolves its dormancy too), and each finding is planned
    disables = analysis.actions.filter(
        pl.col("powershell").str.contains("Update-MgUser", literal=True)
    )
    assert set(disables["member_id"]) <= (dormant if sign_in else set())
    planned = set(analysis.actions.explode("finding_keys")["finding_keys"])
    assert set(found["finding_key"]) <= planned
    # and the rest of the sample's truth is untouched by the signal
    others = analysis.findings.filter(pl.col("rule_id") != RULE)
    truth = sample.truth.filter(pl.col("rule_id") != RULE)
    assert others.height == truth.height
    assert ENTRA_SOURCE in set(result.tables["accounts"]["source"])
