"""Planner actions for rights, identities and exceptions: one action per finding, the smallest
one (a guest's deletion, an empty group's deletion), routed to the system of record, with
commands that name objects by id and cannot be redirected by hostile text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
from support.plan_docs import plan_doc

from accessaudit.analysis.expand import finding_paths, group_closure
from accessaudit.engine.evaluate import evaluate
from accessaudit.engine.rulefile import Example, Rule
from accessaudit.pipeline.rulecheck import example_tables, views_of
from accessaudit.remediation.plan import plan_actions

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HOST = {"id": "da", "org": "wmp", "privileged": True}  # West Mercia hosts the tenant


def plan(
    rules: list[Rule],
    accounts: list[dict[str, Any]],
    groups: list[dict[str, Any]],
    memberships: list[list[str]] | None = None,
    grants: list[list[str]] | None = None,
    hosts: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    t = example_tables(Example("t", accounts, groups, memberships or [], grants or [], [], {}), NOW)
    closure = group_closure(t["memberships"])
    findings = evaluate(rules, views_of(t, NOW, hosts))
    actions = plan_actions(
        findings,
        accounts=t["accounts"],
        groups=t["groups"],
        memberships=t["memberships"],
        paths=finding_paths(findings, closure),
    )
    return findings, actions


def one(actions: pl.DataFrame, kind: str) -> dict[str, Any]:
    [row] = actions.filter(pl.col("kind") == kind).iter_rows(named=True)
    return row


def assert_one_action_per_finding(findings: pl.DataFrame, actions: pl.DataFrame) -> None:
    keys = actions.explode("finding_keys")["finding_keys"]
    assert keys.n_unique() == keys.len() == findings.height
    assert actions["powershell"].null_count() == 0


def test_a_guest_of_the_other_force_is_deleted_with_its_access_but_its_role_goes_first(
    rules: list[Rule],
) -> None:
    """Deleting a person is a decision (apply leaves it to a person); the directory role, the
    critical part, is removed on its own so it never waits for that decision."""
    findings, actions = plan(
        rules,
        [{"id": "g1", "org": "warks", "kind": "guest", "source": "entra:t"}],
        [HOST, {"id": "team", "org": "wmp", "mastered": "cloud"},
         {"id": "app", "org": "wmp", "kind": "app-role", "mastered": "cloud"}],
        [["team", "g1"]],
        [["g1", "app", "app-role", "Niche: User"],
         ["g1", "sr", "directory-role", "Security Reader @ /"]],
        hosts=pl.DataFrame({"source": ["entra:t", "example"], "host_org": ["wmp", "wmp"]}),
    )  # fmt: skip
    assert sorted(findings["rule_id"]) == [
        "cross-org-app-role", "cross-org-direct-member", "cross-org-directory-role",
        "cross-org-guest",
    ]  # fmt: skip
    assert actions.select("kind", "member_id", "resolves", "system", "owning_org").rows() == [
        ("remove-role-assignment", "g1", 1, "cloud", "wmp"),
        ("remove-guest", "g1", 3, "cloud", "wmp"),
    ]
    role = one(actions, "remove-role-assignment")
    assert role["severity"] == "critical" and role["right"] == "Security Reader @ /"
    row = one(actions, "remove-guest")
    assert row["powershell"] == "Remove-MgUser -UserId 'g1'"
    assert row["graph"] == "DELETE /users/g1"
    assert_one_action_per_finding(findings, actions)


def test_an_empty_group_linking_the_forces_is_deleted(rules: list[Rule]) -> None:
    findings, actions = plan(
        rules,
        [{"id": "k1", "org": "warks"}],
        [{"id": "old", "org": "wmp", "managed_by": "k1", "owners": ["k1"]},
         {"id": "kres", "org": "warks"}, {"id": "kteam", "org": "warks", "mastered": "cloud"}],
        [["kres", "old"], ["kteam", "k1"]],
    )  # fmt: skip
    assert sorted(findings["rule_id"]) == [
        "cross-org-group-nesting", "cross-org-group-owner", "empty-cross-org-group",
    ]  # fmt: skip
    row = one(actions, "delete-group")
    assert (row["group_id"], row["resolves"], row["system"]) == ("old", 3, "ad")
    assert row["powershell"] == "Remove-ADGroup -Identity 'old' -Confirm:$false"
    assert row["graph"] is None
    assert actions.height == 1


def test_directory_roles_assignments_and_eligibility(rules: list[Rule]) -> None:
    findings, actions = plan(
        rules,
        [{"id": "k1", "org": "warks"}, {"id": "w1", "org": "wmp"}],
        [HOST, {"id": "au", "org": "warks", "kind": "administrative-unit", "name": "WARKS-AU"}],
        [],
        [["k1", "ga-id", "directory-role", "Global Administrator @ /"],
         ["k1", "ga-id", "directory-role", "Global Administrator @ / (eligible)"],
         ["w1", "ua-id", "directory-role", "User Administrator @ /administrativeUnits/au"]],
    )  # fmt: skip
    rows = {
        (r["member_id"], r["right"]): r
        for r in actions.filter(pl.col("kind") == "remove-role-assignment").iter_rows(named=True)
    }
    assert len(rows) == 3 and set(actions["severity"]) == {"critical"}
    active = rows[("k1", "Global Administrator @ /")]
    assert active["powershell"] == (
        "Get-MgRoleManagementDirectoryRoleAssignment -Filter \"principalId eq 'k1' and "
        "roleDefinitionId eq 'ga-id' and directoryScopeId eq '/'\" | ForEach-Object { "
        "Remove-MgRoleManagementDirectoryRoleAssignment -UnifiedRoleAssignmentId $_.Id }"
    )
    assert active["graph"].splitlines() == [
        "GET /roleManagement/directory/roleAssignments?$filter=principalId eq 'k1' and "
        "roleDefinitionId eq 'ga-id' and directoryScopeId eq '/'",
        "DELETE /roleManagement/directory/roleAssignments/{id of each}",
    ]
    assert active["summary"] == "Remove Global Administrator (tenant-wide) from k1"
    eligible = rows[("k1", "Global Administrator @ / (eligible)")]
    assert eligible["powershell"].startswith(
        "New-MgRoleManagementDirectoryRoleEligibilityScheduleRequest -BodyParameter @{ "
        "action = 'adminRemove'; principalId = 'k1'; roleDefinitionId = 'ga-id'; "
        "directoryScopeId = '/';"
    )
    assert eligible["graph"].startswith(
        'POST /roleManagement/directory/roleEligibilityScheduleRequests {"action":"adminRemove",'
        '"principalId":"k1","roleDefinitionId":"ga-id","directoryScopeId":"/"'
    )
    scoped = rows[("w1", "User Administrator @ /administrativeUnits/au")]
    assert scoped["summary"] == "Remove User Administrator scoped to WARKS-AU from w1"
    assert (scoped["group_id"], scoped["owning_org"], scoped["system"]) == ("au", "warks", "cloud")
    assert_one_action_per_finding(findings, actions)


def test_hostile_ids_cannot_escape_filters_or_bodies(rules: list[Rule]) -> None:
    evil = "k1' or true or principalId eq '\"; Remove-MgUser x; $(calc)"
    _, actions = plan(
        rules,
        [{"id": evil, "org": "warks"}],
        [HOST],
        [],
        [[evil, "ga-id", "directory-role", "Global Administrator @ /"]],
    )
    row = one(actions, "remove-role-assignment")
    assert "principalId eq 'k1ortrueorprincipalIdeqRemove-MgUserxcalc'" in row["powershell"]
    assert row["powershell"].count('"') == 2 and "$(" not in row["powershell"]


def test_app_roles_owners_sid_history_and_managers(rules: list[Rule]) -> None:
    findings, actions = plan(
        rules,
        [
            {"id": "k1", "org": "warks", "source": "entra:t"},
            {"id": "w1", "org": "wmp", "sid": "S-1-5-21-1-2-3-1001", "manager_id": "k2"},
            {"id": "k2", "org": "warks", "sid": "S-1-5-21-1-2-3-1002",
             "sid_history": ["S-1-5-21-1-2-3-1001"]},
        ],
        [
            {"id": "app", "org": "wmp", "kind": "app-role", "mastered": "cloud", "name": "Niche"},
            {"id": "team", "org": "wmp", "mastered": "cloud", "owners": ["k1"]},
            {"id": "res", "org": "wmp", "managed_by": "k2", "owners": ["k2"]},
        ],
        [["team", "w1"], ["res", "w1"]],
        [["k1", "app", "app-role", "Niche: Investigator"],
         ["k1", "app", "app-role", "Niche: Supervisor"]],
    )  # fmt: skip
    app = one(actions, "remove-app-role-assignment")
    assert (app["member_id"], app["resource_id"], app["resolves"]) == ("k1", "app", 2)
    assert app["summary"] == "Remove k1 from application Niche (Investigator, Supervisor)"
    assert app["powershell"].startswith(
        "Get-MgServicePrincipalAppRoleAssignedTo -ServicePrincipalId 'app' -All | "
        "Where-Object PrincipalId -eq 'k1' | ForEach-Object"
    )
    owners = {
        r["group_id"]: r
        for r in actions.filter(pl.col("kind") == "remove-owner").iter_rows(named=True)
    }
    assert owners["team"]["powershell"] == (
        "Remove-MgGroupOwnerByRef -GroupId 'team' -DirectoryObjectId 'k1'"
    )
    assert owners["team"]["graph"] == "DELETE /groups/team/owners/k1/$ref"
    assert owners["res"]["powershell"] == "Set-ADGroup -Identity 'res' -Clear managedBy"
    assert (owners["res"]["system"], owners["team"]["system"]) == ("ad", "cloud")
    # the text says what the command does (it clears managedBy; it sets no new owner)
    assert owners["res"]["summary"] == (
        "Clear managedBy of res (k2); if it needs a manager, set one of its own force"
    )
    assert owners["team"]["summary"] == (
        "Remove k1 as owner of team (Graph refuses to remove a group's last owner: add one of "
        "its own force first)"
    )
    assert one(actions, "clear-manager")["summary"] == (
        "Clear the manager of w1 (the other force's); if needed, set one of wmp"
    )
    sid = one(actions, "remove-sid-history")
    assert sid["powershell"] == (
        "Set-ADUser -Identity 'k2' -Remove @{sIDHistory='S-1-5-21-1-2-3-1001'}"
    )
    assert one(actions, "clear-manager")["powershell"] == (
        "Set-ADUser -Identity 'w1' -Clear manager"
    )
    dual = one(actions, "resolve-dual-identity")
    assert (dual["member_id"], dual["resource_id"]) == ("k2", "w1")
    assert dual["powershell"].startswith("Get-ADUser -Identity 'k2' -Properties")
    assert_one_action_per_finding(findings, actions)


def test_shared_account_and_inactive_cloud_account(rules: list[Rule]) -> None:
    findings, actions = plan(
        rules,
        [
            {"id": "svc", "org": "shared", "kind": "service"},
            {"id": "k1", "org": "warks", "source": "entra:t", "days_inactive": 400},
        ],
        [
            {"id": "wres", "org": "wmp"},
            {"id": "kres", "org": "warks"},
            {"id": "team", "org": "wmp", "mastered": "cloud", "source": "entra:t"},
        ],
        [["wres", "svc"], ["kres", "svc"], ["team", "k1"]],
    )
    shared = one(actions, "decide-shared-account")
    assert shared["powershell"] == (
        "Get-ADPrincipalGroupMembership -Identity 'svc' | Select-Object Name,ObjectGUID"
        "  # decide with both forces: split, re-home or retire"
    )
    strip = one(actions, "remove-memberships")
    assert strip["system"] == "cloud"
    assert strip["powershell"] == (
        "foreach ($g in 'team') { Remove-MgGroupMemberByRef -GroupId $g -DirectoryObjectId 'k1' }"
        "; Update-MgUser -UserId 'k1' -AccountEnabled:$false"
    )
    assert strip["graph"].splitlines() == [
        "DELETE /groups/team/members/k1/$ref",
        'PATCH /users/k1 {"accountEnabled": false}',
    ]
    member = one(actions, "remove-member")
    assert member["graph"] == "DELETE /groups/team/members/k1/$ref"
    assert_one_action_per_finding(findings, actions)


def test_only_open_findings_are_planned(rules: list[Rule]) -> None:
    findings, _ = plan(rules, [{"id": "k1", "org": "warks"}], [{"id": "g", "org": "wmp"}],
                       [["g", "k1"]])  # fmt: skip
    t = example_tables(Example("t", [], [], [], [], [], {}), NOW)
    marked = findings.with_columns(status=pl.lit("accepted"))
    empty = plan_actions(
        marked,
        accounts=t["accounts"],
        groups=t["groups"],
        memberships=t["memberships"],
        paths=finding_paths(marked, group_closure(t["memberships"])),
    )
    assert empty.is_empty()


def test_an_owner_of_the_other_forces_application(rules: list[Rule]) -> None:
    """An owner of an enterprise application (its service principal) can add credentials and
    act as it: the other force's owner is removed through /servicePrincipals, not /groups; an
    owner of the application's own force is left alone; the saved plan tells apply it is a
    service principal."""
    from accessaudit.remediation.apply.changes import Change

    accounts = [{"id": "k1", "org": "warks", "source": "entra:t"},
                {"id": "w1", "org": "wmp", "source": "entra:t"}]  # fmt: skip
    groups = [
        {"id": "app", "org": "wmp", "kind": "app-role", "mastered": "cloud", "name": "Niche",
         "owners": ["k1", "w1"]},
        {"id": "team", "org": "wmp", "mastered": "cloud", "owners": ["k1", "w1"]},
    ]  # fmt: skip
    grants = [["k1", "app", "ownership", "owner"], ["w1", "app", "ownership", "owner"]]
    members = [["team", "w1"]]  # an empty team would be deleted; an application never is
    findings, actions = plan(rules, accounts, groups, members, grants)

    assert sorted(findings.select("rule_id", "account_id", "group_id").rows()) == [
        ("cross-org-group-owner", "k1", "app"),
        ("cross-org-group-owner", "k1", "team"),
    ]
    owners = {
        r["group_id"]: r
        for r in actions.filter(pl.col("kind") == "remove-owner").iter_rows(named=True)
    }
    assert sorted(owners) == ["app", "team"]
    app = owners["app"]
    assert (app["member_id"], app["system"], app["resolves"]) == ("k1", "cloud", 1)
    assert app["graph"] == "DELETE /servicePrincipals/app/owners/k1/$ref"
    assert app["powershell"] == (
        "Remove-MgServicePrincipalOwnerByRef -ServicePrincipalId 'app' -DirectoryObjectId 'k1'"
    )
    assert app["summary"] == (
        "Remove k1 as owner of application Niche (an owner can add credentials to it and act as it)"
    )
    assert owners["team"]["graph"] == "DELETE /groups/team/owners/k1/$ref"
    assert_one_action_per_finding(findings, actions)

    t = example_tables(Example("t", accounts, groups, members, grants, [], {}), NOW)
    doc = plan_doc(actions, t, NOW)
    by_group = {a["group_id"]: a for a in doc["actions"]}
    assert by_group["app"]["target"]["service_principal"] is True
    assert "service_principal" not in by_group["team"]["target"]
    assert Change.of(by_group["app"]).service_principal
    assert not Change.of(by_group["team"]).service_principal


def test_an_inactive_accounts_disabled_application_login_is_removed_in_the_application(
    rules: list[Rule],
) -> None:
    """A login the application has disabled gives no access today, so no finding of its own;
    the inactive-access finding's action says to remove the role in the application (a
    re-enabled login would get it back), and it is counted among what the account leaves."""
    findings, actions = plan(
        rules,
        [{"id": "k1", "org": "warks", "enabled": False}],
        [{"id": "role", "org": "wmp", "name": "Custody Officer", "source": "csv:niche",
          "mastered": "app"}],
        [["role", "k1", "disabled"]],
    )  # fmt: skip
    assert sorted(findings["rule_id"]) == ["inactive-cross-org-access"]
    row = one(actions, "remove-memberships")
    assert row["summary"] == (
        "Remove disabled account k1 from 1 group(s) and application role(s) of the other force"
    )
    assert row["powershell"] == (
        "# In application csv:niche: remove role Custody Officer from user k1 (its login is "
        "disabled; a re-enabled login would get it back)"
    )
    assert_one_action_per_finding(findings, actions)
