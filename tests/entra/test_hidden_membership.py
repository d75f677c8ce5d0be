"""Groups with hidden membership (issue 19 item 12).

A group whose ``visibility`` is ``HiddenMembership`` shows its members only to apps holding
Member.Read.Hidden. Graph does not refuse the others: it answers 200 with the members left out
(microsoftgraph/microsoft-graph-docs issues #12552, #10109, #12285), an empty listing that looks
complete. The connector must say the group's members are unknown, never report them absent.

The tenant is built here, its truth (every membership) with it.
"""

from __future__ import annotations

import pytest
from support.entra_data import CLIENT_ID, ROLES, SECRET, TENANT, oid, session_for

from accessaudit.connectors.entra.collect import collect
from accessaudit.graphemu import Tenant

HIDDEN_ROLE = "Member.Read.Hidden"
REASON = "hidden membership: grant Member.Read.Hidden to read its members"
EVENTUAL = {"ConsistencyLevel": "eventual"}

USERS = ("wmp-ann", "wmp-bob", "wmp-cat", "warks-guest")
#: group -> (visibility, members); the covert group is nested in the parent group
GROUPS = {
    "WMP-Open": ("Public", ["wmp-ann", "wmp-bob"]),
    "WMP-Covert": ("HiddenMembership", ["wmp-cat", "warks-guest"]),
    "WMP-Parent": ("Private", ["WMP-Covert", "wmp-ann"]),
}
#: every membership of the tenant, as (group id, member id)
TRUTH = sorted((oid(g), oid(m)) for g, (_, members) in GROUPS.items() for m in members)
COVERT = oid("WMP-Covert")


@pytest.fixture
def hidden_tenant(emu):
    t = Tenant(tenant_id=TENANT, domain="alliance.onmicrosoft.com")
    for name in USERS:
        guest = name.startswith("warks")
        t.add_user(
            id=oid(name),
            displayName=name,
            userPrincipalName=(
                f"{name}_warks.police.uk#EXT#@alliance.onmicrosoft.com"
                if guest
                else f"{name}@alliance.onmicrosoft.com"
            ),
            mailNickname=name,
            userType="Guest" if guest else "Member",
            mail=f"{name}@warks.police.uk" if guest else None,
        )
    for name, (visibility, _) in GROUPS.items():
        t.add_group(id=oid(name), displayName=name, visibility=visibility)
    for name, (_, members) in GROUPS.items():
        for member in members:
            t.add_member(oid(name), oid(member))
    return emu.add_tenant(t)


def memberships(result):
    table = result.tables["memberships"]
    return sorted(table.select("group_id", "member_id").iter_rows())


def test_without_member_read_hidden_the_hidden_group_is_incomplete_not_empty(
    emu, make_cfg, hidden_tenant
):
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=ROLES)

    result = collect(make_cfg(sign_in_activity=False))

    units = {u.name: u for u in result.units}
    assert not result.complete
    assert [n for n, u in units.items() if not u.complete] == ["members", f"members:{COVERT}"]
    assert units[f"members:{COVERT}"].detail == REASON
    assert units["members"].detail == "1 group(s) incomplete, see members:<group id>"
    # no membership invented for the hidden group, the other groups' exactly as planted
    assert memberships(result) == [e for e in TRUTH if e[0] != COVERT]
    # the group itself is kept: it exists
    groups = result.tables["groups"]
    assert sorted(groups["name"].to_list()) == sorted(GROUPS)
    assert units["groups"].complete and units["owners"].complete


def test_with_member_read_hidden_the_membership_equals_the_truth(emu, make_cfg, hidden_tenant):
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=[*ROLES, HIDDEN_ROLE])

    result = collect(make_cfg(sign_in_activity=False))

    assert result.complete, [u for u in result.units if not u.complete]
    assert memberships(result) == TRUTH
    covert = result.tables["memberships"].filter(group_id=COVERT)
    assert sorted(covert["member_id"].to_list()) == sorted([oid("wmp-cat"), oid("warks-guest")])


def test_emulator_leaves_hidden_membership_out_silently(emu, pki, hidden_tenant):
    graph = emu.graph_url
    blind = session_for(emu, pki, ROLES)

    r = blind.get(f"{graph}/groups/{COVERT}/members?$select=id")
    assert (r.status_code, r.json()["value"]) == (200, [])
    assert "@odata.nextLink" not in r.json()
    r = blind.get(f"{graph}/groups/{COVERT}/members/microsoft.graph.user?$select=id")
    assert (r.status_code, r.json()["value"]) == (200, [])
    r = blind.get(f"{graph}/groups/{COVERT}/members/$count", headers=EVENTUAL)
    assert (r.status_code, r.text) == (200, "0")
    # the nested hidden group is listed as a member of its parent, its members are not
    r = blind.get(f"{graph}/groups/{oid('WMP-Parent')}/transitiveMembers?$select=id")
    assert sorted(m["id"] for m in r.json()["value"]) == sorted([COVERT, oid("wmp-ann")])
    # the guest's memberOf leaves the hidden group out; owners are not hidden
    for relation in ("memberOf", "transitiveMemberOf"):
        r = blind.get(f"{graph}/users/{oid('warks-guest')}/{relation}")
        assert (r.status_code, r.json()["value"]) == (200, [])
    batch = blind.post(
        f"{graph}/$batch",
        json={"requests": [{"id": "1", "method": "GET", "url": f"/groups/{COVERT}/members"}]},
    ).json()["responses"]
    assert (batch[0]["status"], batch[0]["body"]["value"]) == (200, [])
    emu.api.tidy_delta()
    entries = blind.get(f"{graph}/groups/delta?$select=displayName,members").json()["value"]
    links = {e["id"]: sorted(m["id"] for m in e.get("members@delta", [])) for e in entries}
    assert links[COVERT] == []
    assert links[oid("WMP-Open")] == sorted([oid("wmp-ann"), oid("wmp-bob")])

    seeing = session_for(emu, pki, [*ROLES, HIDDEN_ROLE])
    r = seeing.get(f"{graph}/groups/{COVERT}/members?$select=id")
    assert sorted(m["id"] for m in r.json()["value"]) == sorted(
        [oid("wmp-cat"), oid("warks-guest")]
    )
    r = seeing.get(f"{graph}/users/{oid('warks-guest')}/transitiveMemberOf")
    assert sorted(g["id"] for g in r.json()["value"]) == sorted([COVERT, oid("WMP-Parent")])
    entries = seeing.get(f"{graph}/groups/delta?$select=displayName,members").json()["value"]
    links = {e["id"]: sorted(m["id"] for m in e.get("members@delta", [])) for e in entries}
    assert links[COVERT] == sorted([oid("wmp-cat"), oid("warks-guest")])


def test_groups_delta_round_marks_a_newly_hidden_group_incomplete(emu, make_cfg, hidden_tenant):
    """A group hidden after the first run arrives in the next delta round with its visibility:
    its members unit is incomplete, its previous members are kept (not reported removed)."""
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=ROLES)
    hidden_tenant.update(COVERT, visibility="Public")
    cfg = make_cfg(sign_in_activity=False, use_delta=True)
    first = collect(cfg)
    assert first.complete and memberships(first) == TRUTH

    hidden_tenant.update(COVERT, visibility="HiddenMembership")
    second = collect(cfg, state=first.state, previous=first.tables)

    units = {u.name: u for u in second.units}
    assert units["groups"].detail.startswith("delta: ")
    assert [n for n, u in units.items() if not u.complete] == ["members", f"members:{COVERT}"]
    assert units[f"members:{COVERT}"].detail == REASON
    assert memberships(second) == TRUTH
