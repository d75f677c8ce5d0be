"""The issue's loop through Microsoft Graph: the sample's tenant served by the emulator (real msal,
real HTTPS), audited with the sample's AD -> plan -> apply the cloud actions (group members and
owners, owners of enterprise applications, directory-role and app-role assignments) with a
separate write app -> audit again -> every planned finding of a change made is gone, no
same-force access lost -> apply again: zero writes -> undo: members, owners, role and app-role
assignments exactly as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from accessaudit.config.sources import EntraSource
from accessaudit.engine.rulefile import load_rules
from accessaudit.graphemu import READ_ROLES, GraphEmulator, Tenant, TestPKI, tenant_from_sample
from accessaudit.pipeline.demo import demo_settings
from accessaudit.pipeline.planning import plan_run
from accessaudit.pipeline.result import RunResult
from accessaudit.pipeline.run import run_audit
from accessaudit.remediation.apply.changes import DYNAMIC_REASON
from accessaudit.remediation.apply.execute import (
    KILL_ENV,
    apply_plan,
    paths_for,
    plan_changes,
    undo_plan,
)
from accessaudit.remediation.apply.graph import GraphDirectory
from accessaudit.remediation.planfile import save_plan
from accessaudit.sample.directory import generate
from accessaudit.sample.entra import TENANT_DOMAIN, TENANT_ID
from accessaudit.sample.entra_messy import hidden_membership

HERE = Path(__file__).resolve().parent
READ_APP = "0a0b0c0d-9999-4222-8333-444455556666"
WRITE_APP = "0a0b0c0d-1111-4222-8333-444455556666"
SECRET = "loop-app.secret_0123456789"
WRITE_ROLES = (
    "User.Read.All",
    "Application.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "RoleManagement.ReadWrite.Directory",
    "AppRoleAssignment.ReadWrite.All",
    # owners of enterprise applications: removed with Application.ReadWrite.All, added back
    # (the undo) with Directory.Read.All as well (serviceprincipal-post-owners)
    "Application.ReadWrite.All",
    "Directory.Read.All",
)


def _entra(emu: GraphEmulator, pki: TestPKI, folder: Path, client_id: str) -> dict[str, Any]:
    secret = folder / f"{client_id}.secret"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    return {
        "kind": "entra",
        "name": "alliance-entra",
        "host": "wmp",
        "tenant_id": TENANT_ID,
        "client_id": client_id,
        "authority_host": emu.base_url,
        "graph_url": emu.graph_url,
        "client_secret_file": str(secret),
        "ca_file": str(pki.ca_file),
        "retry_backoff": 0.02,
        "time_budget": 60.0,
        "timeout": 10.0,
        "sign_in_activity": True,
    }


def _audit(data: Path, entra: dict[str, Any], now: Any) -> RunResult:
    s = demo_settings(data, accounts=300, seed=7, entra=True)
    sources = [
        src if src.kind != "sample" or src.name != "alliance-entra" else None for src in s.sources
    ]
    s = s.model_copy(
        update={
            "sources": [x for x in sources if x is not None] + [EntraSource(**entra)],
            "report": s.report.model_copy(update={"formats": ["json"]}),
        }
    )
    return run_audit(s, now=now)


def _state(t: Tenant) -> dict[str, set[tuple[str, ...]]]:
    """What the apply may change, by immutable ids (assignment ids excluded: re-created)."""
    return {
        "members": {(g, m) for g, ms in t.members.items() for m in ms},
        # of groups and of service principals (enterprise applications)
        "owners": {(g, o) for g, os_ in [*t.owners.items(), *t.sp_owners.items()] for o in os_},
        "roles": {
            (a["principalId"], a["roleDefinitionId"], a["directoryScopeId"])
            for a in t.role_assignments.values()
        },
        "app_roles": {
            (a["principalId"], a["resourceId"], a["appRoleId"])
            for a in t.app_role_assignments.values()
        },
    }


def _same_force(r: RunResult) -> set[tuple[str, str]]:
    a = r.analysis
    acc = a.accounts.select("account_id", a_org="org")
    grp = a.groups.select("group_id", g_org="org")
    df = (
        a.effective.select(pl.col("account_id", "group_id").cast(pl.String))
        .join(acc, on="account_id")
        .join(grp, on="group_id")
        .filter((pl.col("a_org") == pl.col("g_org")) & pl.col("a_org").is_in(["wmp", "warks"]))
    )
    return set(df.select("account_id", "group_id").iter_rows())


def _setup(
    emu: GraphEmulator, pki: TestPKI, folder: Path
) -> tuple[Any, Tenant, dict[str, Any], Path, dict[str, Any]]:
    """The sample tenant served, audited with the read app, planned; (first run, tenant, plan,
    plan path, read source)."""
    sample = generate(seed=7, accounts=300, entra=True)
    served = sample.entra
    hidden = hidden_membership(served)
    tenant = emu.add_tenant(
        tenant_from_sample(
            served, tenant_id=TENANT_ID, domain=TENANT_DOMAIN, hidden_membership=hidden
        )
    )
    # the sample's operations group has an org contact as a member: + OrgContact.Read.All; its
    # hidden-membership group: + Member.Read.Hidden
    roles = (*READ_ROLES, "OrgContact.Read.All", "Member.Read.Hidden")
    emu.register_app(TENANT_ID, READ_APP, secret=SECRET, roles=roles)
    emu.register_app(TENANT_ID, WRITE_APP, secret=SECRET, roles=WRITE_ROLES)
    read = _entra(emu, pki, folder, READ_APP)
    first = _audit(folder / "data", read, sample.now)
    assert first.complete
    settings = demo_settings(folder / "data", accounts=300, seed=7, entra=True)
    doc = plan_run(first.run, settings, load_rules())
    return first, tenant, doc, save_plan(doc, folder / "plan.json"), read


def test_graph_loop_on_the_sample_tenant(
    graph_emu: GraphEmulator, graph_pki: TestPKI, tmp_path: Path
) -> None:
    first, tenant, doc, path, read = _setup(graph_emu, graph_pki, tmp_path)
    now = datetime.fromisoformat(str(first.run.manifest["started"]))
    assert doc["what_if"]["valid"]
    cloud = [a for a in doc["actions"] if a["system"] == "cloud"]
    assert Counter(a["kind"] for a in cloud) == {
        "remove-guest": 8,
        # + a Groups Administrator of a unit holding a WARKS team, + a guest's own directory
        # role (removed on its own, not left to the guest's deletion)
        "remove-role-assignment": 7,
        "remove-app-role-assignment": 4,
        "remove-owner": 2,  # a team's and an application's (its service principal's) owner
        "remove-member": 3,  # + Warwickshire's service principal from a West Mercia team
        "review-attribution": 1,
    }
    ids = [a["action_id"] for a in cloud]
    before = _state(tenant)
    d = GraphDirectory.open(EntraSource(**_entra(graph_emu, graph_pki, tmp_path, WRITE_APP)))

    def apply(**kw: Any) -> Any:
        return apply_plan(doc, path, {"cloud": d}, only_ids=ids, rate=0, **kw)

    dry = apply()
    assert graph_emu.writes.log == []
    states = {o.action_id: (o.state, o.reason) for o in dry.outcomes}
    manual = Counter(a.split("|")[0] for a, (st, _) in states.items() if st == "manual")
    assert manual == {
        "remove-guest": 8,
        "remove-role-assignment": 1,
        "review-attribution": 1,
        "remove-member": 1,
    }
    assert any(r.startswith("PIM eligibility") for _, r in states.values())
    # the member of the dynamic group: its rule must change, as the plan's command says
    [(dynamic, rule)] = [
        (a, r) for a, (st, r) in states.items() if st == "manual" and a.startswith("remove-member|")
    ]
    [planned] = [a for a in cloud if a["action_id"] == dynamic]
    assert rule == f"{DYNAMIC_REASON}: {planned['target']['membership_rule']}"
    assert planned["powershell"].startswith(f"# {DYNAMIC_REASON} so that it no longer matches")
    # the other cloud member removal is from a role-assignable group: refused by design
    [(refused, reason)] = [(a, r) for a, (st, r) in states.items() if st == "refused"]
    assert refused.startswith("remove-member|") and reason.startswith("role-assignable group")
    todo = [a for a, (st, _) in states.items() if st == "dry-run"]
    assert Counter(a.split("|")[0] for a in todo) == {
        "remove-role-assignment": 6,
        "remove-app-role-assignment": 4,
        "remove-owner": 2,
        "remove-member": 1,  # the service principal: DELETE .../members/{id}/$ref as for a user
    }

    done = apply(execute=True)
    assert done.counts() == {"done": 13, "manual": 11, "refused": 1}
    assert done.writes == 13 and Counter(m for m, _ in graph_emu.writes.log) == {"DELETE": 13}
    undo = json.loads((tmp_path / "plan.undo.graph.json").read_text())["requests"]
    assert Counter(r["url"].split("/")[1] for r in undo) == {
        "roleManagement": 6,
        "servicePrincipals": 5,  # 4 app-role assignments and the application's owner
        "groups": 2,  # a team's owner, the service principal's membership
    }
    assert sum(r["url"].endswith("/owners/$ref") for r in undo) == 2
    assert all(r["method"] == "POST" for r in undo)
    after = _state(tenant)
    changes = {c.action_id: c for c in plan_changes(cloud)[0]}
    by_kind = lambda k: {changes[a] for a in todo if changes[a].kind == k}  # noqa: E731
    assert before["members"] - after["members"] == {
        (c.group_id, c.member_id) for c in by_kind("remove-member")
    }
    assert before["owners"] - after["owners"] == {
        (c.group_id, c.member_id) for c in by_kind("remove-owner")
    }
    assert before["roles"] - after["roles"] == {
        (c.member_id, c.resource_id, c.scope) for c in by_kind("remove-role-assignment")
    }
    gone_apps = {(p, r) for p, r, _ in before["app_roles"] - after["app_roles"]}
    assert gone_apps == {
        (c.member_id, c.resource_id) for c in by_kind("remove-app-role-assignment")
    }
    for k in before:
        assert after[k] <= before[k]  # nothing added

    second = _audit(tmp_path / "data", read, now)
    resolved = {k for a in cloud if a["action_id"] in todo for k in a["finding_keys"]}
    assert resolved and resolved.isdisjoint(set(second.analysis.findings["finding_key"]))
    assert _same_force(second) == _same_force(first)

    n = len(graph_emu.writes.log)
    again = apply(execute=True)
    assert again.writes == 0 and len(graph_emu.writes.log) == n
    assert again.count("already") == 13

    undone = undo_plan(doc, path, {"cloud": d})
    assert undone.count("undone") == 13 and undone.writes == done.writes
    assert _state(tenant) == before
    third = _audit(tmp_path / "data", read, now)
    assert set(third.analysis.findings["finding_key"]) == set(
        first.analysis.findings["finding_key"]
    )


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def test_graph_crash_after_k_then_resume_exactly_once(
    graph_emu: GraphEmulator, graph_pki: TestPKI, tmp_path: Path
) -> None:
    """SIGKILL after the k-th Graph write (an app-role assignment's DELETE), before its
    ``done``: the resumed apply re-reads it (gone: done) and makes every other change once."""
    _, tenant, doc, path, _ = _setup(graph_emu, graph_pki, tmp_path)
    ids = [a["action_id"] for a in doc["actions"] if a["system"] == "cloud"]
    before = _state(tenant)
    entra = _entra(graph_emu, graph_pki, tmp_path, WRITE_APP)
    d = GraphDirectory.open(EntraSource(**entra))
    dry = apply_plan(doc, path, {"cloud": d}, only_ids=ids, rate=0)
    order = [o.action_id for o in dry.outcomes if o.state == "dry-run"]
    k = next(i for i, a in enumerate(order, 1) if a.startswith("remove-app-role-assignment"))
    assert 1 < k < len(order) == 13
    child = subprocess.run(
        [sys.executable, str(HERE / "apply_child.py"), str(path), json.dumps(entra), "--cloud",
         *ids],
        env={**os.environ, KILL_ENV: str(k), "NO_PROXY": "127.0.0.1,localhost"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert child.returncode == -9, child.stderr
    journal = [json.loads(x) for x in paths_for(path)[0].read_text().splitlines()]
    assert Counter(r["state"] for r in journal) == {"intent": k, "done": k - 1}
    assert journal[-1]["action_id"] == order[k - 1]
    landed = len(graph_emu.writes.log)

    resumed = apply_plan(doc, path, {"cloud": d}, only_ids=ids, execute=True, rate=0)
    assert resumed.writes == len(order) - k
    assert sorted(o.action_id for o in resumed.outcomes if o.state in ("done", "already")) == (
        sorted(order)
    )
    lines = paths_for(path)[0].read_text().splitlines()
    done = Counter(r["action_id"] for r in map(json.loads, lines) if r["state"] == "done")
    assert set(done) == set(order) and set(done.values()) == {1}
    assert len(graph_emu.writes.log) == landed + resumed.writes  # each DELETE once: 13 in all
    assert len(graph_emu.writes.log) == 13
    after = _state(tenant)
    assert len(before["roles"] - after["roles"]) == 6  # with the guest's own role
    assert len(before["owners"] - after["owners"]) == 2  # a team's and an application's
    assert {(p, r) for p, r, _ in before["app_roles"] - after["app_roles"]} == {
        (a["member_id"], a["resource_id"]) for a in doc["actions"]
        if a["kind"] == "remove-app-role-assignment"
    }  # fmt: skip
