"""$batch: exact round trips for a known dataset, with and without batching."""

from __future__ import annotations

import math

import pytest
from support.entra_data import CLIENT_ID, ROLES, SECRET, TENANT, oid

from accessaudit.connectors.entra.collect import collect
from accessaudit.graphemu import GraphEmulator, Tenant

#: users/delta latest, users, groups/delta latest, groups, roleDefinitions, roleAssignments,
#: roleEligibilityScheduleInstances, servicePrincipals, administrativeUnits: one page each for
#: these datasets.
LISTINGS = 9


def build(emu: GraphEmulator, groups: int, members: int = 2, service_principals: int = 2) -> Tenant:
    t = emu.add_tenant(Tenant(TENANT))
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=ROLES)
    users = [
        t.add_user(id=oid(f"u{n}"), userPrincipalName=f"u{n}@t", displayName=f"u{n}")
        for n in range(max(members, 3))
    ]
    for g in range(groups):
        gid = t.add_group(id=oid(f"g{g}"), displayName=f"g{g}")
        for u in users[:members]:
            t.add_member(gid, u)
        t.add_owner(gid, users[-1])
    for s in range(service_principals):
        sp = t.add_service_principal(f"app{s}", ["Reader"], id=oid(f"sp{s}"))
        t.assign_app_role(users[0], sp, t.objects[sp]["appRoles"][0]["id"])
        if s == 0:
            t.add_sp_owner(sp, users[1])
    return t


@pytest.mark.parametrize(("batch_size", "round_trips"), [(20, LISTINGS + 4), (1, LISTINGS + 64)])
def test_batch_packs_members_owners_and_app_roles(emu, make_cfg, batch_size, round_trips):
    build(emu, groups=30)

    result = collect(make_cfg(batch_size=batch_size))

    assert result.complete
    assert result.tables["memberships"].height == 60
    # 30 group ownerships + 2 app-role assignments + 1 service-principal ownership
    assert result.tables["grants"].height == 33
    # 30 members + 30 owners + 2 appRoleAssignedTo + 2 service-principal owners listings of one
    # page each = 64 requests
    assert emu.graph_round_trips() == round_trips
    batches = len(emu.requests("batch"))
    assert batches == (math.ceil(64 / 20) if batch_size == 20 else 0)
    assert len(emu.requests("batch-item")) == (64 if batch_size == 20 else 0)
    owners = [r.target for r in emu.requests("batch-item") if "/servicePrincipals/" in r.target]
    assert sorted(t for t in owners if "/owners" in t) == (
        sorted(f"/servicePrincipals/{oid(f'sp{s}')}/owners?$select=id&$top=999" for s in (0, 1))
        if batch_size == 20
        else []
    )


def test_pages_of_one_big_group_follow_each_other(emu, make_cfg):
    build(emu, groups=1, members=2500, service_principals=0)

    result = collect(make_cfg())

    assert result.tables["memberships"].height == 2500
    # batch 1: members page 1 + owners; batch 2: members page 2; batch 3: members page 3
    assert len(emu.requests("batch")) == 3
    # + users pages 2-5: with signInActivity selected Graph pages 500 users at most
    assert emu.graph_round_trips() == LISTINGS + 3 + 4
