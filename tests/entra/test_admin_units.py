"""Administrative units and enterprise applications: served as Graph serves them, collected into
groups rows (kind ``administrative-unit`` / ``app-role``), incomplete when they cannot be read."""

from __future__ import annotations

import polars as pl
import pytest
from support.entra_data import AU_ID, CLIENT_ID, ROLES, SECRET, TENANT, oid, session_for

from accessaudit.connectors.entra.collect import collect
from accessaudit.graphemu import READ_ROLES, Fault, Tenant, tenant_from_tables


def units(result):
    return {u.name: u for u in result.units}


@pytest.fixture
def unit_graph(emu, pki):
    t = emu.add_tenant(Tenant(TENANT))
    user = t.add_user(id=oid("u"), userPrincipalName="u@t", displayName="u")
    group = t.add_group(id=oid("g"), displayName="g")
    t.add_member(group, user)
    au = t.add_administrative_unit(id=oid("au"), displayName="AU", description="unit")
    for member in (user, group, t.add_device(id=oid("d"), displayName="laptop")):
        t.add_au_member(au, member)
    return emu, t, session_for(emu, pki, [*ROLES, "Device.Read.All"])


def test_emulator_serves_units_and_their_typed_members(unit_graph):
    emu, _, s = unit_graph
    listing = s.get(f"{emu.graph_url}/directory/administrativeUnits?$select=id,displayName").json()
    context = f"{emu.graph_url}/$metadata#directory/administrativeUnits(id,displayName)"
    assert listing == {"@odata.context": context, "value": [{"id": oid("au"), "displayName": "AU"}]}
    for path in (
        f"/directory/administrativeUnits/{oid('au')}",
        f"/administrativeUnits/{oid('au')}",
    ):
        members = s.get(f"{emu.graph_url}{path}/members").json()["value"]
        assert [(m["@odata.type"], m["id"]) for m in members] == [
            ("#microsoft.graph.user", oid("u")),
            ("#microsoft.graph.group", oid("g")),
            ("#microsoft.graph.device", oid("d")),
        ]
    cast = s.get(f"{emu.graph_url}/administrativeUnits/{oid('au')}/members/microsoft.graph.user")
    assert [m["id"] for m in cast.json()["value"]] == [oid("u")]
    # a unit is not a group, and a group's members are not members of the group's unit
    r = s.get(f"{emu.graph_url}/groups/{oid('au')}")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "Request_ResourceNotFound")
    direct = s.get(f"{emu.graph_url}/users/{oid('u')}/memberOf").json()["value"]
    assert sorted(m["@odata.type"] for m in direct) == [
        "#microsoft.graph.administrativeUnit",
        "#microsoft.graph.group",
    ]


def test_emulator_needs_administrative_unit_read_all(emu, pki):
    emu.add_tenant(Tenant(TENANT)).add_administrative_unit(displayName="AU")
    s = session_for(emu, pki, [r for r in READ_ROLES if r != "AdministrativeUnit.Read.All"])
    r = s.get(f"{emu.graph_url}/directory/administrativeUnits")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "Authorization_RequestDenied")


def test_units_and_applications_are_groups_rows(cfg):
    result = collect(cfg)

    groups = result.tables["groups"].filter(
        pl.col("kind").is_in(["app-role", "administrative-unit"])
    )
    cols = ("group_id", "name", "kind", "scope", "mastered", "sid", "owners")
    assert sorted(groups.select(cols).rows()) == sorted(
        [
            (AU_ID, "WMP-AU-Response", "administrative-unit", "cloud", "cloud", None, []),
            (oid("sp-niche"), "Niche RMS", "app-role", "cloud", "cloud", None, [oid("awilliams")]),
            # owners only, no app-role assignment: a user and another service principal
            (
                oid("sp-pronto"),
                "Pronto",
                "app-role",
                "cloud",
                "cloud",
                None,
                sorted([oid("cwarks"), oid("sp-niche")]),
            ),
        ]
    )
    edges = result.tables["memberships"].filter(group_id=AU_ID)
    assert sorted(edges.select("member_id", "member_kind").rows()) == sorted(
        [(oid("ddisabled"), "account"), (oid("bcloud"), "account"), (oid("WMP-Cloud"), "group")]
    )


def test_application_without_assignments_is_no_groups_row(emu, make_cfg, tenant):
    tenant.add_service_principal("Unused", ["Reader"], id=oid("sp-unused"))

    result = collect(make_cfg())

    assert oid("sp-unused") not in result.tables["groups"]["group_id"].to_list()


def test_missing_permission_marks_units_incomplete_without_asking(emu, make_cfg, tenant):
    roles = [r for r in ROLES if r != "AdministrativeUnit.Read.All"]
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=roles)

    result = collect(make_cfg())

    got = units(result)
    reason = "the token lacks AdministrativeUnit.Read.All (grant it and admin consent)"
    assert got["administrative-units"].detail == reason
    assert got["administrative-unit-members"].detail == reason
    assert [n for n, u in got.items() if not u.complete] == [
        "administrative-units",
        "administrative-unit-members",
    ]
    assert not [r for r in emu.requests("wire") if "administrativeUnits" in r.target]
    assert AU_ID not in result.tables["groups"]["group_id"].to_list()


def test_hidden_unit_needs_member_read_hidden(emu, make_cfg, tenant):
    tenant.objects[AU_ID]["visibility"] = "HiddenMembership"

    blocked = collect(make_cfg())
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=[*ROLES, "Member.Read.Hidden"])
    allowed = collect(make_cfg())

    detail = units(blocked)[f"administrative-unit-members:{AU_ID}"].detail
    assert detail.startswith("HTTP 403 Authorization_RequestDenied")
    assert detail.endswith("; the unit hides its membership: grant Member.Read.Hidden")
    assert not blocked.complete
    assert AU_ID in blocked.tables["groups"]["group_id"].to_list()  # the unit, without members
    assert allowed.complete
    assert allowed.tables["memberships"].filter(group_id=AU_ID).height == 3


def test_limited_information_unit_member_makes_the_unit_incomplete(emu, make_cfg, tenant):
    tenant.add_au_member(AU_ID, tenant.add_device(id=oid("laptop"), displayName="laptop"))

    result = collect(make_cfg())

    assert units(result)[f"administrative-unit-members:{AU_ID}"].detail == (
        "1 member(s) returned with limited information (device): grant Device.Read.All"
    )
    edge = result.tables["memberships"].filter(member_id=oid("laptop"))
    assert edge.select("group_id", "member_kind").rows() == [(AU_ID, "foreign")]


def test_unit_deleted_after_listing_is_dropped(emu, make_cfg, tenant):
    emu.faults.add(
        Fault(match=f"/administrativeUnits/{AU_ID}/", status=404, code="Request_ResourceNotFound")
    )

    result = collect(make_cfg())

    assert result.complete
    assert AU_ID not in result.tables["groups"]["group_id"].to_list()
    assert result.tables["memberships"].filter(group_id=AU_ID).height == 0


def test_tables_with_members_of_an_application_are_refused(small_tables):
    bad = small_tables["memberships"].head(1).with_columns(group_id=pl.lit(oid("sp-niche")))
    with pytest.raises(ValueError, match="app-role assignment"):
        tenant_from_tables(
            small_tables["accounts"],
            small_tables["groups"],
            pl.concat([small_tables["memberships"], bad]),
            small_tables["grants"],
        )
