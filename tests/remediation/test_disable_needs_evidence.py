"""The plan disables an account only on evidence that it is unused: an enabled account whose
source records sign-ins (``activity_tracked``). A site rule planning ``remove-memberships`` for
an account of a source without sign-ins, or a run stored before the column, strips its
memberships and disables nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from accessaudit.analysis.expand import finding_paths, group_closure
from accessaudit.engine.evaluate import evaluate
from accessaudit.engine.rulefile import Example, Rule, load_rule
from accessaudit.pipeline.rulecheck import example_tables, views_of
from accessaudit.remediation.plan import plan_actions

NOW = datetime(2026, 1, 1, tzinfo=UTC)

#: A site rule: every cross-force member of the leavers' source loses its access.
SITE_RULE = '''
id = "site-leavers"
version = "1.0"
title = "Leavers keep cross-force access"
severity = "medium"
action = "remove-memberships"
rationale = "test"
remediation = "test"
key = ["account_id"]
query = """
SELECT account_id, MIN(account_org) AS principal_org, 'leaver' AS detail
FROM rights WHERE cross GROUP BY account_id
"""

[[examples]]
name = "a cross-force member"
accounts = [{ id = "a", org = "wmp" }]
groups = [{ id = "g", org = "warks" }]
memberships = [["g", "a"]]
expect = [["a"]]

[[examples]]
name = "a same-force member"
accounts = [{ id = "a", org = "wmp" }]
groups = [{ id = "g", org = "wmp" }]
memberships = [["g", "a"]]
expect = []
'''

ACCOUNTS: list[dict[str, Any]] = [
    # enabled, recently active, in a source that records sign-ins: no evidence it is unused,
    # but the site rule plans its removal: stripped, and (being tracked) disabled as dormant
    {"id": "tracked", "org": "wmp", "source": "entra:t", "days_inactive": 2},
    # enabled, in a source without sign-ins: stripped, never disabled
    {"id": "untracked", "org": "wmp", "source": "entra:t", "activity_tracked": False},
    # disabled already: stripped, nothing to disable
    {"id": "off", "org": "wmp", "source": "entra:t", "enabled": False, "activity_tracked": False},
]
GROUPS: list[dict[str, Any]] = [
    {"id": "team", "org": "warks", "mastered": "cloud", "source": "entra:t"}
]


@pytest.fixture
def site_rule(tmp_path: Path) -> Rule:
    path = tmp_path / "site-leavers.toml"
    path.write_text(SITE_RULE)
    return load_rule(path)


def planned(rules: list[Rule], *, drop_column: bool = False) -> dict[str, dict[str, Any]]:
    """member id -> its remove-memberships action; ``drop_column``: the accounts as a run stored
    before ``activity_tracked`` has them."""
    members = [["team", a["id"]] for a in ACCOUNTS]
    t = example_tables(Example("t", ACCOUNTS, GROUPS, members, [], [], {}), NOW)
    findings = evaluate(rules, views_of(t, NOW))
    accounts = t["accounts"].drop("activity_tracked") if drop_column else t["accounts"]
    actions = plan_actions(
        findings,
        accounts=accounts,
        groups=t["groups"],
        memberships=t["memberships"],
        paths=finding_paths(findings, group_closure(t["memberships"])),
    )
    strips = actions.filter(pl.col("kind") == "remove-memberships")
    return {r["member_id"]: r for r in strips.iter_rows(named=True)}


def disables(action: dict[str, Any]) -> bool:
    return "AccountEnabled:$false" in action["powershell"] or "accountEnabled" in (
        action["graph"] or ""
    )


def test_only_an_account_whose_sign_ins_are_recorded_is_disabled(
    rules: list[Rule], site_rule: Rule
) -> None:
    by_member = planned([*rules, site_rule])

    assert set(by_member) == {"tracked", "untracked", "off"}
    assert {m for m, a in by_member.items() if disables(a)} == {"tracked"}
    untracked = by_member["untracked"]
    assert untracked["powershell"] == (
        "foreach ($g in 'team') { Remove-MgGroupMemberByRef -GroupId $g "
        "-DirectoryObjectId 'untracked' }"
    )
    assert untracked["graph"] == "DELETE /groups/team/members/untracked/$ref"
    assert untracked["summary"].startswith("Remove account untracked from 1 group(s)")
    assert by_member["off"]["summary"].startswith("Remove disabled account off")
    assert by_member["tracked"]["summary"].endswith("and disable it")


def test_a_run_stored_before_the_column_disables_nobody(rules: list[Rule], site_rule: Rule) -> None:
    by_member = planned([*rules, site_rule], drop_column=True)

    assert set(by_member) == {"tracked", "untracked", "off"}
    assert not any(disables(a) for a in by_member.values())
