"""Guarded apply through Microsoft Graph against the emulator (real msal, real HTTPS): removals
of cloud-only group members, re-apply without writes, undo, and the groups Graph must not touch
(on-premises synced, dynamic), and a write app without GroupMember.ReadWrite.All."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from support.entra_data import TENANT, oid, small

from accessaudit.config.sources import EntraSource
from accessaudit.errors import AuditError
from accessaudit.graphemu import READ_ROLES, GraphEmulator, TestPKI, tenant_from_sample
from accessaudit.remediation.apply.execute import apply_plan, undo_plan
from accessaudit.remediation.apply.graph import GraphDirectory
from accessaudit.remediation.planfile import FORMAT, plan_hash, save_plan

WRITE_APP = "0a0b0c0d-1111-4222-8333-444455556666"
READ_APP = "0a0b0c0d-9999-4222-8333-444455556666"
SECRET = "write-app.secret_0123456789"


def _action(group: str, member: str) -> dict[str, Any]:
    return {
        "action_id": f"remove-member|{oid(group)}|{oid(member)}||",
        "kind": "remove-member",
        "system": "cloud",
        "group_id": oid(group),
        "member_id": oid(member),
        "finding_keys": [],
        "target": {"group_sid": None, "via": "graph"},
    }


def _plan(folder: Path, name: str, actions: list[dict[str, Any]]) -> tuple[dict[str, Any], Path]:
    doc: dict[str, Any] = {"format": FORMAT, "run_id": "test", "actions": actions}
    doc["sha256"] = plan_hash(doc)
    return doc, save_plan(doc, folder / name)


def _directory(emu: GraphEmulator, pki: TestPKI, folder: Path, client_id: str) -> GraphDirectory:
    secret = folder / f"{client_id}.secret"
    secret.write_text(SECRET)
    cfg = EntraSource(
        name="entra",
        kind="entra",
        tenant_id=TENANT,
        client_id=client_id,
        authority_host=emu.base_url,
        graph_url=emu.graph_url,
        client_secret_file=secret,
        ca_file=pki.ca_file,
        retry_backoff=0.02,
        max_retries=1,
        time_budget=30.0,
        timeout=10.0,
        allow_write_permissions=True,
    )
    return GraphDirectory.open(cfg)


def test_graph_apply_noop_undo_and_refusals(
    graph_emu: GraphEmulator, graph_pki: TestPKI, tmp_path: Path
) -> None:
    t = small()
    tenant = graph_emu.add_tenant(tenant_from_sample(t, tenant_id=TENANT))
    graph_emu.register_app(
        TENANT, WRITE_APP, secret=SECRET, roles=("GroupMember.ReadWrite.All", "User.Read.All")
    )
    graph_emu.register_app(TENANT, READ_APP, secret=SECRET, roles=READ_ROLES)
    tenant.update(oid("All-Bulk"), groupTypes=["DynamicMembership"])
    before = {g: set(m) for g, m in tenant.members.items()}
    d = _directory(graph_emu, graph_pki, tmp_path, WRITE_APP)
    doc, path = _plan(
        tmp_path,
        "plan.json",
        [
            _action("WMP-Cloud", "bcloud"),
            _action("Shared-Team", "cwarks"),
            _action("WMP-RES-1", "awilliams"),  # synced from AD: change it in AD
            _action("All-Bulk", "bulk0000"),  # dynamic
            _action("Newsletter", "ddisabled"),  # a distribution list: Exchange
            _action("Role-Admins", "awilliams"),  # role-assignable
        ],
    )

    dry = apply_plan(doc, path, {"cloud": d}, rate=0)
    assert graph_emu.writes.log == []
    assert Counter(o.state for o in dry.outcomes) == {"dry-run": 2, "refused": 4}
    reasons = [o.reason.split(":")[0] for o in dry.outcomes if o.state == "refused"]
    assert reasons == [
        "group synced from on-premises AD",
        "dynamic group",
        "mail-enabled group",
        "role-assignable group",
    ]

    done = apply_plan(doc, path, {"cloud": d}, execute=True, rate=0)
    assert done.writes == 2 and len(graph_emu.writes.log) == 2
    assert oid("bcloud") not in tenant.members[oid("WMP-Cloud")]
    assert oid("cwarks") not in tenant.members[oid("Shared-Team")]
    assert (tmp_path / "plan.undo.graph.json").read_text().count("members/$ref") == 2

    again = apply_plan(doc, path, {"cloud": d}, execute=True, rate=0)
    assert again.writes == 0 and len(graph_emu.writes.log) == 2

    undone = undo_plan(doc, path, {"cloud": d})
    assert undone.writes == 2
    assert {g: set(m) for g, m in tenant.members.items()} == before

    # a write app without a write permission: the DELETE is refused (403), one failure line
    ro = _directory(graph_emu, graph_pki, tmp_path, READ_APP)
    doc2, path2 = _plan(tmp_path, "plan2.json", [_action("WMP-Cloud", "bcloud")])
    r = apply_plan(doc2, path2, {"cloud": ro}, execute=True, rate=0)
    [o] = r.outcomes
    assert o.state == "failed" and "GroupMember.ReadWrite.All" in o.reason
    assert {g: set(m) for g, m in tenant.members.items()} == before


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


WRITE_ALL = (
    "User.ReadWrite.All",
    "Application.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "RoleManagement.ReadWrite.Directory",
    "AppRoleAssignment.ReadWrite.All",
)
MEMBERS_ONLY = ("User.Read.All", "Application.Read.All", "GroupMember.ReadWrite.All",
                "RoleManagement.Read.Directory")  # fmt: skip
ALL_APP = "0a0b0c0d-2222-4222-8333-444455556666"


def _right(aid: str, kind: str, member: str, **kw: Any) -> dict[str, Any]:
    return {"action_id": aid, "kind": kind, "system": "cloud", "member_id": oid(member),
            "finding_keys": [], "target": {}, **kw}  # fmt: skip


def _tenant_state(t: Any) -> tuple[Any, ...]:
    return (
        {g: sorted(o) for g, o in t.owners.items()},
        sorted((a["principalId"], a["roleDefinitionId"], a["directoryScopeId"])
               for a in t.role_assignments.values()),
        sorted((a["principalId"], a["resourceId"], a["appRoleId"])
               for a in t.app_role_assignments.values()),
    )  # fmt: skip


def test_graph_owners_roles_and_app_roles(
    graph_emu: GraphEmulator, graph_pki: TestPKI, tmp_path: Path
) -> None:
    from support.entra_data import AU, GLOBAL_ADMIN, HELPDESK_ADMIN, USER_ADMIN

    from accessaudit.transport.graph_http import GraphFailure

    t = small()
    tenant = graph_emu.add_tenant(tenant_from_sample(t, tenant_id=TENANT))
    graph_emu.register_app(TENANT, ALL_APP, secret=SECRET, roles=WRITE_ALL)
    graph_emu.register_app(TENANT, WRITE_APP, secret=SECRET, roles=MEMBERS_ONLY)
    before = _tenant_state(tenant)
    d = _directory(graph_emu, graph_pki, tmp_path, ALL_APP)
    sp = oid("sp-niche")
    actions = [
        _right("own", "remove-owner", "cwarks", group_id=oid("Shared-Team")),
        _right("last", "remove-owner", "bcloud", group_id=oid("WMP-Cloud")),
        _right("ga", "remove-role-assignment", "cwarks", resource_id=GLOBAL_ADMIN,
               right="Global Administrator @ /"),
        _right("au", "remove-role-assignment", "awilliams", resource_id=HELPDESK_ADMIN,
               right=f"Helpdesk Administrator @ {AU}"),
        _right("pim", "remove-role-assignment", "bcloud", resource_id=USER_ADMIN,
               right="User Administrator @ / (eligible)"),
        _right("none", "remove-role-assignment", "ddisabled", resource_id=GLOBAL_ADMIN,
               right="Global Administrator @ /"),
        _right("app", "remove-app-role-assignment", "awilliams", group_id=sp, resource_id=sp),
    ]  # fmt: skip
    doc, path = _plan(tmp_path, "rights.json", actions)

    dry = apply_plan(doc, path, {"cloud": d}, rate=0)
    assert [(o.action_id, o.state, o.reason.split(":")[0]) for o in dry.outcomes] == [
        ("pim", "manual", "PIM eligibility"),
        ("last", "refused", "the group's last owner"),
        ("none", "noop", "already absent"),
        ("own", "dry-run", "would remove-owner"),
        ("ga", "dry-run", "would remove-role-assignment (1 assignment(s))"),
        ("au", "dry-run", "would remove-role-assignment (1 assignment(s))"),
        ("app", "dry-run", "would remove-app-role-assignment (1 assignment(s))"),
    ]
    assert graph_emu.writes.log == []

    done = apply_plan(doc, path, {"cloud": d}, execute=True, rate=0)
    assert done.writes == 4 and [m for m, _ in graph_emu.writes.log] == ["DELETE"] * 4
    assert tenant.owners[oid("Shared-Team")] == [oid("awilliams")]
    held = {(a["principalId"], a["directoryScopeId"]) for a in tenant.role_assignments.values()}
    assert (oid("cwarks"), "/") not in held and (oid("awilliams"), AU) not in held
    assert not [a for a in tenant.app_role_assignments.values()
                if a["principalId"] == oid("awilliams")]  # fmt: skip
    undo = json.loads((tmp_path / "rights.undo.graph.json").read_text())["requests"]
    assert [(r["method"], r["url"].rsplit("/", 1)[-1]) for r in undo] == [
        ("POST", "$ref"), ("POST", "roleAssignments"), ("POST", "roleAssignments"),
        ("POST", "appRoleAssignedTo")]  # fmt: skip
    expected = {"principalId": oid("awilliams"), "roleDefinitionId": HELPDESK_ADMIN}
    assert undo[2]["body"] == {**expected, "directoryScopeId": AU}
    journal = [json.loads(x) for x in (tmp_path / "rights.journal.jsonl").read_text().splitlines()]
    [app_prior] = [j["prior"] for j in journal if j["action_id"] == "app" and "prior" in j]
    assert len(app_prior["assignments"]) == len(app_prior["appRoleIds"]) == 1

    assert apply_plan(doc, path, {"cloud": d}, execute=True, rate=0).writes == 0
    u = undo_plan(doc, path, {"cloud": d})
    assert u.writes == 4 and _tenant_state(tenant) == before

    # a write app with member rights only: each refused by Graph (403), one line with the hint
    ro = _directory(graph_emu, graph_pki, tmp_path, WRITE_APP)
    doc2, path2 = _plan(tmp_path, "ro.json", [actions[0], actions[2], actions[6]])
    r = apply_plan(doc2, path2, {"cloud": ro}, execute=True, rate=0)
    assert [o.state for o in r.outcomes] == ["failed"] * 3
    hints = ["Group.ReadWrite.All", "RoleManagement.ReadWrite.Directory",
             "AppRoleAssignment.ReadWrite.All"]  # fmt: skip
    assert all(
        h in o.reason and "HTTP 403" in o.reason for h, o in zip(hints, r.outcomes, strict=True)
    )
    assert _tenant_state(tenant) == before

    # the emulator's write endpoints answer as documented
    send = d.client.send
    url = d.client.url
    body = {"principalId": oid("ddisabled"), "roleDefinitionId": GLOBAL_ADMIN,
            "directoryScopeId": "/"}  # fmt: skip
    created = send("POST", url("/roleManagement/directory/roleAssignments"), body=body)
    assert {k: created[k] for k in body} == body and created["id"]
    for method, target, payload, status in [
        ("POST", "/roleManagement/directory/roleAssignments", body, 409),  # a duplicate
        ("DELETE", "/roleManagement/directory/roleAssignments/nope", None, 404),
        ("POST", f"/servicePrincipals/{sp}/appRoleAssignedTo",
         {"principalId": oid("bcloud"), "resourceId": sp, "appRoleId": str(oid("x"))}, 400),
        ("POST", f"/servicePrincipals/{sp}/appRoleAssignedTo",
         {"principalId": oid("bcloud"), "resourceId": oid("WMP-Cloud"), "appRoleId": "0"}, 400),
        ("DELETE", f"/servicePrincipals/{sp}/appRoleAssignedTo/nope", None, 404),
        ("POST", f"/groups/{oid('Shared-Team')}/owners/$ref",
         {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{oid('cwarks')}"}, 400),
        ("DELETE", f"/groups/{oid('WMP-Cloud')}/owners/{oid('bcloud')}/$ref", None, 400),
    ]:  # fmt: skip
        with pytest.raises(GraphFailure) as err:
            send(method, url(target), body=payload)
        assert err.value.status == status, (method, target)
    send("DELETE", url(f"/roleManagement/directory/roleAssignments/{created['id']}"))
    assert _tenant_state(tenant) == before


def test_graph_managers(graph_emu: GraphEmulator, graph_pki: TestPKI, tmp_path: Path) -> None:
    """clear-manager through Graph: the planned manager removed and put back by the undo; another
    manager now is drift; a synced account's manager is AD's; no recorded manager: manual."""
    t = small()
    tenant = graph_emu.add_tenant(tenant_from_sample(t, tenant_id=TENANT))
    graph_emu.register_app(TENANT, ALL_APP, secret=SECRET, roles=WRITE_ALL)
    graph_emu.register_app(TENANT, WRITE_APP, secret=SECRET, roles=MEMBERS_ONLY)
    boss = oid("cwarks")
    tenant.managers |= {oid("bcloud"): boss, oid("ddisabled"): boss, oid("awilliams"): boss}
    before = dict(tenant.managers)

    def clear(aid: str, user: str, manager: str | None) -> dict[str, Any]:
        return _right(aid, "clear-manager", user, target={"manager_id": manager})

    actions = [
        clear("cloud", "bcloud", boss),
        clear("moved", "ddisabled", oid("bcloud")),  # the plan saw another manager
        clear("synced", "awilliams", boss),
        clear("unknown", "bcloud", None),
    ]
    doc, path = _plan(tmp_path, "managers.json", actions)
    d = _directory(graph_emu, graph_pki, tmp_path, ALL_APP)
    r = apply_plan(doc, path, {"cloud": d}, execute=True, rate=0)
    assert [(o.action_id, o.state, o.reason) for o in r.outcomes] == [
        ("unknown", "manual", "clear-manager: the plan records no manager to remove (Entra "
         "managers are not collected): by hand"),
        ("moved", "drift", f"the manager is now {boss}, not the planned one"),
        ("synced", "refused", "account synced from on-premises AD: change it in AD"),
        ("cloud", "done", ""),
    ]  # fmt: skip
    assert graph_emu.writes.log == [("DELETE", f"/v1.0/users/{oid('bcloud')}/manager/$ref")]
    assert oid("bcloud") not in tenant.managers
    [undo] = json.loads((tmp_path / "managers.undo.graph.json").read_text())["requests"]
    assert (undo["method"], undo["body"]) == (
        "PUT", {"@odata.id": f"https://graph.microsoft.com/v1.0/users/{boss}"})  # fmt: skip
    assert apply_plan(doc, path, {"cloud": d}, execute=True, rate=0).writes == 0
    assert undo_plan(doc, path, {"cloud": d}).writes == 1 and tenant.managers == before
    # without User.ReadWrite.All: Graph's 403, the hint names the permission
    ro = _directory(graph_emu, graph_pki, tmp_path, WRITE_APP)
    doc2, path2 = _plan(tmp_path, "managers2.json", actions[:1])
    [o] = apply_plan(doc2, path2, {"cloud": ro}, execute=True, rate=0).outcomes
    assert o.state == "failed" and "HTTP 403" in o.reason and "User.ReadWrite.All" in o.reason
    assert tenant.managers == before


def test_graph_drift_of_rights(
    graph_emu: GraphEmulator, graph_pki: TestPKI, tmp_path: Path
) -> None:
    """Read again before each write: a role holder deleted since the plan is drift; an app-role
    assignment or an owner someone else already removed is a no-op; nothing is written."""
    from support.entra_data import GLOBAL_ADMIN

    t = small()
    tenant = graph_emu.add_tenant(tenant_from_sample(t, tenant_id=TENANT))
    graph_emu.register_app(TENANT, ALL_APP, secret=SECRET, roles=WRITE_ALL)
    sp = oid("sp-niche")
    actions = [
        _right("ga", "remove-role-assignment", "cwarks", resource_id=GLOBAL_ADMIN,
               right="Global Administrator @ /"),
        _right("app", "remove-app-role-assignment", "awilliams", group_id=sp, resource_id=sp),
        _right("own", "remove-owner", "cwarks", group_id=oid("Shared-Team")),
        _right("gone", "remove-owner", "cwarks", group_id=oid("WMP-Cloud-Gone")),
    ]  # fmt: skip
    doc, path = _plan(tmp_path, "drift.json", actions)
    tenant.delete(oid("cwarks"))  # the role holder and owner left since the plan
    for key in [k for k, a in tenant.app_role_assignments.items()
                if a["principalId"] == oid("awilliams")]:  # fmt: skip
        del tenant.app_role_assignments[key]
    d = _directory(graph_emu, graph_pki, tmp_path, ALL_APP)
    r = apply_plan(doc, path, {"cloud": d}, execute=True, rate=0)
    assert [(o.action_id, o.state, o.reason) for o in r.outcomes] == [
        ("ga", "drift", "member no longer exists"),
        ("app", "noop", "already absent"),
        ("own", "drift", "member no longer exists"),
        ("gone", "drift", "group no longer exists"),
    ]
    assert r.writes == 0 and graph_emu.writes.log == []


SP_OWNER_WRITE = ("User.Read.All", "Application.ReadWrite.All", "Directory.Read.All")


def test_graph_service_principal_owners(
    graph_emu: GraphEmulator, graph_pki: TestPKI, tmp_path: Path
) -> None:
    """remove-owner of an enterprise application: DELETE /servicePrincipals/{id}/owners/{id}/$ref
    (its last owner too: Graph does not refuse it), read again before the write (an owner gone
    since is a no-op, an application gone is drift), undone by POST .../owners/$ref; without
    Application.ReadWrite.All the DELETE is refused, without Directory.Read.All the undo's POST."""
    niche, pronto = oid("sp-niche"), oid("sp-pronto")
    tenant = graph_emu.add_tenant(tenant_from_sample(small(), tenant_id=TENANT))
    graph_emu.register_app(TENANT, ALL_APP, secret=SECRET, roles=SP_OWNER_WRITE)
    graph_emu.register_app(TENANT, WRITE_APP, secret=SECRET, roles=WRITE_ALL)  # no app writes
    graph_emu.register_app(
        TENANT, READ_APP, secret=SECRET, roles=("User.Read.All", "Application.ReadWrite.All")
    )
    before = {sp: list(o) for sp, o in tenant.sp_owners.items()}
    assert before == {niche: [oid("awilliams")], pronto: [oid("cwarks"), niche]}
    sp = {"service_principal": True}
    actions = [
        _right("sp-own", "remove-owner", "cwarks", group_id=pronto, target=sp),
        _right("sp-last", "remove-owner", "awilliams", group_id=niche, target=sp),
        _right("sp-absent", "remove-owner", "bcloud", group_id=pronto, target=sp),
        _right("sp-gone", "remove-owner", "cwarks", group_id=oid("sp-gone"), target=sp),
    ]
    doc, path = _plan(tmp_path, "sp.json", actions)
    d = _directory(graph_emu, graph_pki, tmp_path, ALL_APP)

    dry = apply_plan(doc, path, {"cloud": d}, rate=0)
    assert [(o.action_id, o.state, o.reason) for o in dry.outcomes] == [
        ("sp-absent", "noop", "already absent"),
        ("sp-gone", "drift", "group no longer exists"),
        ("sp-own", "dry-run", "would remove-owner"),
        ("sp-last", "dry-run", "would remove-owner"),
    ]
    assert graph_emu.writes.log == []

    done = apply_plan(doc, path, {"cloud": d}, execute=True, rate=0)
    assert done.writes == 2
    assert graph_emu.writes.log == [
        ("DELETE", f"/v1.0/servicePrincipals/{pronto}/owners/{oid('cwarks')}/$ref"),
        ("DELETE", f"/v1.0/servicePrincipals/{niche}/owners/{oid('awilliams')}/$ref"),
    ]
    assert tenant.sp_owners == {niche: [], pronto: [niche]}
    assert tenant.owners[oid("Shared-Team")] == sorted([oid("cwarks"), oid("awilliams")])
    undo = json.loads((tmp_path / "sp.undo.graph.json").read_text())["requests"]
    assert [(r["method"], r["url"], r["body"]) for r in undo] == [
        ("POST", f"/servicePrincipals/{pronto}/owners/$ref",
         {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{oid('cwarks')}"}),
        ("POST", f"/servicePrincipals/{niche}/owners/$ref",
         {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{oid('awilliams')}"}),
    ]  # fmt: skip
    assert apply_plan(doc, path, {"cloud": d}, execute=True, rate=0).writes == 0

    # an undo by an app without Directory.Read.All: Graph refuses the POST (403), nothing added
    ro = _directory(graph_emu, graph_pki, tmp_path, READ_APP)
    with pytest.raises(AuditError, match="HTTP 403") as err:
        undo_plan(doc, path, {"cloud": ro})
    assert "Application.ReadWrite.All and Directory.Read.All" in err.value.hint
    assert tenant.sp_owners == {niche: [], pronto: [niche]}

    u = undo_plan(doc, path, {"cloud": d})
    assert u.writes == 2
    assert {s: sorted(o) for s, o in tenant.sp_owners.items()} == {
        s: sorted(o) for s, o in before.items()
    }

    # a write app with group and role rights but no Application.ReadWrite.All: Graph's 403
    no_app = _directory(graph_emu, graph_pki, tmp_path, WRITE_APP)
    doc2, path2 = _plan(tmp_path, "sp2.json", actions[:1])
    [o] = apply_plan(doc2, path2, {"cloud": no_app}, execute=True, rate=0).outcomes
    assert o.state == "failed" and "HTTP 403" in o.reason
    assert "Application.ReadWrite.All" in o.reason
    assert sorted(tenant.sp_owners[pronto]) == sorted(before[pronto])
