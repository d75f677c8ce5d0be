"""Control actions on the demo: one per holder and object, its command naming the object by GUID
and the trustee by SID, and the what-if resolving every control finding."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from accessaudit.engine.rulefile import load_rules
from accessaudit.pipeline.demo import prepare_demo
from accessaudit.pipeline.planning import plan_run
from accessaudit.pipeline.run import run_audit
from accessaudit.sample.directory import generate

CONTROL_RULES = (
    "cross-org-control-account", "cross-org-control-group", "cross-org-control-container",
    "cross-org-control-gpo", "dcsync-outside-admins", "cross-org-object-owner",
)  # fmt: skip
NOW = datetime(2026, 11, 26, tzinfo=UTC)


def test_control_actions_commands_and_what_if(tmp_path: Path) -> None:
    settings = prepare_demo(tmp_path, accounts=600, seed=2)
    result = run_audit(settings, now=NOW)
    findings = result.analysis.findings.filter(pl.col("rule_id").is_in(CONTROL_RULES))
    truth = generate(seed=2, accounts=600, now=NOW).truth
    assert findings.height == truth.filter(pl.col("rule_id").is_in(CONTROL_RULES)).height == 7
    actions = result.analysis.actions.filter(pl.col("kind").is_in(["remove-ace", "change-owner"]))
    assert sorted(actions["kind"].to_list()) == ["change-owner", *["remove-ace"] * 6]
    accounts, groups = result.analysis.accounts, result.analysis.groups
    sids = dict(zip(accounts["account_id"], accounts["sid"], strict=True))
    sids |= dict(zip(groups["group_id"], groups["sid"], strict=True))
    for a in actions.iter_rows(named=True):
        assert a["system"] == "ad" and a["resolves"] == 1
        ps = a["powershell"]
        assert f"Get-ADObject -Identity '{a['resource_id']}'" in ps
        assert f"'{sids[a['member_id']]}'" in ps and ps.endswith(("$acl", "$acl }"))
        if a["kind"] == "remove-ace":
            assert "RemoveAccessRuleSpecific" in ps and "GetAccessRules($true, $false" in ps
        else:
            assert "SetOwner($da)" in ps and "-512" in ps
    plan = plan_run(result.run, settings, load_rules())
    what_if = plan["what_if"]
    assert not [k for k in what_if["remaining_keys"] if k.split("|")[0] in CONTROL_RULES]
    assert what_if["new_keys"] == []
