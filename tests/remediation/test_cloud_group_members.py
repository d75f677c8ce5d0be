"""Removing a cross-force member from a cloud group: Graph's ``$ref`` DELETE only for assigned
memberships; a dynamic group's rule, or Exchange for a mail-enabled group that is not Microsoft
365 — in the plan's command and in what ``apply`` does with it alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
from support.plan_docs import plan_doc

from accessaudit.analysis.expand import effective_memberships, finding_paths, group_closure
from accessaudit.engine.evaluate import build_views, evaluate
from accessaudit.engine.rulefile import Example, Rule
from accessaudit.pipeline.rulecheck import example_tables
from accessaudit.remediation.apply.changes import DYNAMIC_REASON, EXCHANGE_REASON
from accessaudit.remediation.apply.execute import plan_changes
from accessaudit.remediation.plan import plan_actions

NOW = datetime(2026, 1, 1, tzinfo=UTC)
RULE = '(user.department -eq "Response") -and (user.mail -ne "x\u202e\'")'
#: group id -> (kind, membership_rule, mail_enabled); every one West Mercia's, cloud-only
GROUPS: dict[str, tuple[str, str | None, bool | None]] = {
    "assigned": ("security", None, False),
    "dynamic": ("security", RULE, False),
    "team": ("m365", None, True),  # Microsoft 365: mail-enabled, and changed through Graph
    "dynamic-team": ("m365", RULE, True),
    "list": ("distribution", None, True),
    "mail-security": ("security", None, True),
    "unknown": ("security", None, None),  # a source that does not know: Graph as before
}


def _plan(rules: list[Rule]) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Each group with three West Mercia members and one Warwickshire officer, ``x``."""
    accounts = [{"id": f"w{i}", "org": "wmp"} for i in range(3)] + [{"id": "x", "org": "warks"}]
    groups = [
        {"id": g, "org": "wmp", "mastered": "cloud", "source": "entra:t", "kind": kind}
        for g, (kind, _, _) in GROUPS.items()
    ]
    members = [[g, m] for g in GROUPS for m in ("w0", "w1", "w2", "x")]
    t = example_tables(Example("t", accounts, groups, members, [], [], {}), NOW)
    t["groups"] = t["groups"].with_columns(
        membership_rule=pl.col("group_id").replace_strict(
            {g: v[1] for g, v in GROUPS.items()}, return_dtype=pl.String
        ),
        mail_enabled=pl.col("group_id").replace_strict(
            {g: v[2] for g, v in GROUPS.items()}, return_dtype=pl.Boolean
        ),
    )
    closure = group_closure(t["memberships"])
    effective = effective_memberships(t["memberships"], closure)
    views = build_views(
        t["accounts"],
        t["groups"],
        t["memberships"],
        t["grants"],
        closure=closure,
        effective=effective,
        as_of=NOW,
    )
    findings = evaluate(rules, views)
    actions = plan_actions(
        findings,
        accounts=t["accounts"],
        groups=t["groups"],
        memberships=t["memberships"],
        paths=finding_paths(findings, closure),
    )
    doc = plan_doc(actions, t, NOW, findings)  # its what-if is not what this test is about
    return actions, doc


def test_commands_and_apply_agree_on_each_kind_of_cloud_group(rules: list[Rule]) -> None:
    actions, doc = _plan(rules)

    removals = actions.filter(pl.col("kind") == "remove-member")
    assert sorted(removals["group_id"]) == sorted(GROUPS)
    assert set(removals["member_id"]) == {"x"} and set(removals["system"]) == {"cloud"}
    ps = dict(removals.select("group_id", "powershell").iter_rows())
    graph = dict(removals.select("group_id", "graph").iter_rows())
    for g in ("assigned", "team", "unknown"):
        assert ps[g] == f"Remove-MgGroupMemberByRef -GroupId '{g}' -DirectoryObjectId 'x'"
        assert graph[g] == f"DELETE /groups/{g}/members/x/$ref"
    # dynamic: change the rule, shown (made safe for a one-line comment); no $ref DELETE
    shown = RULE.replace("\u202e", " ")
    for g in ("dynamic", "dynamic-team"):
        assert ps[g] == (
            "# dynamic group: change its membership rule so that it no longer matches x (a "
            f"member of a dynamic group cannot be removed): Update-MgGroup -GroupId '{g}' "
            f"-MembershipRule '<new rule>'; current rule: {shown}"
        )
        assert graph[g] == (
            f'PATCH /groups/{g} {{"membershipRule": "<a rule that no longer matches x>"}}'
            f"  # current rule: {shown}"
        )
        assert "$ref" not in ps[g] + graph[g] and "\u202e" not in ps[g] + graph[g]
    # mail-enabled, not Microsoft 365: Exchange Online, objects found by their Entra id
    for g in ("list", "mail-security"):
        assert ps[g] == (
            f"$g = Get-Recipient -Filter \"ExternalDirectoryObjectId -eq '{g}'\"; "
            "$m = Get-Recipient -Filter \"ExternalDirectoryObjectId -eq 'x'\"; "
            "Remove-DistributionGroupMember -Identity $g.Identity -Member $m.Identity "
            "-BypassSecurityGroupManagerCheck -Confirm:$false  # Exchange Online"
        )
        assert (
            graph[g]
            == "# mail-enabled group: change it in Exchange: Graph cannot change its members"
        )

    # apply: the same groups are left to a person, with the same reason; the others run
    planned = {a["group_id"]: a for a in doc["actions"] if a["kind"] == "remove-member"}
    assert planned["dynamic"]["target"]["membership_rule"] == RULE
    assert planned["list"]["target"]["exchange"] is True
    assert "membership_rule" not in planned["assigned"]["target"]
    assert "exchange" not in planned["team"]["target"]
    changes, manual = plan_changes(planned.values())
    assert sorted(str(c.group_id) for c in changes) == ["assigned", "team", "unknown"]
    reasons = {
        planned_id: o.reason
        for o in manual
        for planned_id, a in planned.items()
        if a["action_id"] == o.action_id
    }
    assert reasons == {
        "dynamic": f"{DYNAMIC_REASON}: {RULE}",
        "dynamic-team": f"{DYNAMIC_REASON}: {RULE}",
        "list": EXCHANGE_REASON,
        "mail-security": EXCHANGE_REASON,
    }


def test_a_disabled_accounts_dynamic_group_is_not_stripped_by_ref(rules: list[Rule]) -> None:
    """A disabled Warwickshire officer, ``x``, still in a West Mercia assigned group and a
    dynamic one: no action removes ``x`` from the dynamic group by ``$ref`` (Graph refuses it;
    the rule decides), and the inactive-account finding goes to the action that changes it."""
    source = "entra:t"
    accounts: list[dict[str, Any]] = [
        {"id": f"w{i}", "org": "wmp", "source": source} for i in range(3)
    ]
    accounts.append({"id": "x", "org": "warks", "source": source, "enabled": False})
    groups = [
        {"id": g, "org": "wmp", "mastered": "cloud", "source": source, "kind": "security"}
        for g in ("assigned", "dynamic")
    ]
    members = [[g, m] for g in ("assigned", "dynamic") for m in ("w0", "w1", "w2", "x")]
    t = example_tables(Example("t", accounts, groups, members, [], [], {}), NOW)
    t["groups"] = t["groups"].with_columns(
        membership_rule=pl.when(pl.col("group_id") == "dynamic").then(pl.lit(RULE))
    )
    closure = group_closure(t["memberships"])
    views = build_views(
        t["accounts"], t["groups"], t["memberships"], t["grants"], closure=closure,
        effective=effective_memberships(t["memberships"], closure), as_of=NOW,
    )  # fmt: skip
    findings = evaluate(rules, views)
    [inactive] = findings.filter(pl.col("rule_id") == "inactive-cross-org-access")["finding_key"]
    actions = plan_actions(
        findings,
        accounts=t["accounts"],
        groups=t["groups"],
        memberships=t["memberships"],
        paths=finding_paths(findings, closure),
    )
    graph = "\n".join(actions["graph"].drop_nulls())
    assert "DELETE /groups/dynamic/members/x/$ref" not in graph
    assert "DELETE /groups/assigned/members/x/$ref" in graph
    [owner] = actions.filter(pl.col("finding_keys").list.contains(inactive)).to_dicts()
    assert owner["kind"] == "remove-member" and owner["group_id"] == "dynamic"
    assert owner["graph"].startswith("PATCH /groups/dynamic ")
