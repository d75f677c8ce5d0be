"""Guarded apply through Microsoft Graph against the emulator (real msal, real HTTPS): removals
of cloud-only group members, re-apply without writes, undo, and the groups Graph must not touch
(on-premises synced, dynamic), and a write app without GroupMember.ReadWrite.All."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from entra_data import TENANT, oid, small
from graphemu import READ_ROLES, GraphEmulator, TestPKI, tenant_from_tables

from accessaudit.config import EntraSource
from accessaudit.remediation.apply import apply_plan, undo_plan
from accessaudit.remediation.apply_graph import GraphDirectory
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
    tenant = graph_emu.add_tenant(
        tenant_from_tables(
            t["accounts"], t["groups"], t["memberships"], t["grants"], tenant_id=TENANT
        )
    )
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
