"""Full collections through the emulator with the real msal: exact tables, paging, guests."""

from __future__ import annotations

import math
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal
from support.entra_data import CLIENT_ID, SECRET, SOURCE, TENANT, canonical, oid

from accessaudit.connectors.entra.collect import collect
from accessaudit.graphemu import Fault, Tenant, tenant_from_sample

UNITS = [
    "users",
    "sign-in-activity",
    "groups",
    "members",
    "owners",
    "role-definitions",
    "role-assignments",
    "role-eligibility",
    "service-principals",
    "app-role-assignments",
    "service-principal-owners",
    "administrative-units",
    "administrative-unit-members",
]


def assert_tables(collected: dict[str, pl.DataFrame], expected: dict[str, pl.DataFrame]) -> None:
    for name in ("accounts", "groups", "memberships", "grants"):
        assert_frame_equal(canonical(collected, name), canonical(expected, name))


def test_full_collection_equals_served_tables(cfg, small_tables):
    result = collect(cfg)

    assert result.source == SOURCE
    assert result.kind == "entra"
    assert [u.name for u in result.units] == UNITS
    assert result.complete, [u for u in result.units if not u.complete]
    assert_tables(result.tables, small_tables)
    counts = {u.name: u.count for u in result.units}
    assert counts["users"] == 1205
    assert counts["members"] == 1210
    assert counts["role-assignments"] == 4
    assert counts["role-eligibility"] == 1
    assert counts["app-role-assignments"] == 2
    assert counts["service-principal-owners"] == 3  # Niche RMS: 1, Pronto: 2
    owners = next(u for u in result.units if u.name == "service-principal-owners")
    assert owners.detail == "2 service principal(s): no @odata.nextLink after 2 page(s) in total"
    assert counts["administrative-units"] == 1
    assert counts["administrative-unit-members"] == 3
    assert set(result.state) == {
        "delta_fields",
        "users_delta_link",
        "users_delta_obtained",
        "groups_delta_link",
        "groups_delta_obtained",
    }


def test_group_over_999_members_is_read_over_two_pages(emu, cfg, small_tables):
    result = collect(cfg)

    bulk = result.tables["memberships"].filter(pl.col("group_id") == oid("All-Bulk"))
    assert bulk.height == 1200
    items = [
        r for r in emu.requests("batch-item") if f"/groups/{oid('All-Bulk')}/members" in r.target
    ]
    assert len(items) == 2
    assert "$skiptoken=" in items[1].target
    assert_frame_equal(
        canonical(result.tables, "memberships"), canonical(small_tables, "memberships")
    )


def test_many_pages_follow_every_next_link(emu, make_cfg, tenant, small_tables):
    result = collect(make_cfg(page_size=50))

    pages = math.ceil(1205 / 50)
    users = [r for r in emu.requests("graph") if r.target.startswith("/v1.0/users?")]
    assert len(users) == pages
    assert all("$top=50" in r.target for r in users)
    assert all("$skiptoken=" in r.target for r in users[1:])
    unit = next(u for u in result.units if u.name == "users")
    assert unit.detail == f"no @odata.nextLink after {pages} page(s)"
    member_items = [r for r in emu.requests("batch-item") if "/members" in r.target]
    # five small groups, one big one, one administrative unit
    assert len(member_items) == 5 + math.ceil(1200 / 50) + 1
    assert_tables(result.tables, small_tables)


def test_guests_identified_by_any_signal_not_user_type_alone(emu, make_cfg):
    t = emu.add_tenant(Tenant(TENANT))
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET)
    signals: dict[str, dict[str, Any]] = {
        "member": {"userType": "Member"},
        "ext-upn-member": {
            "userType": "Member",
            "userPrincipalName": "x_fabrikam.com#EXT#@t.onmicrosoft.com",
        },
        "invited": {"userType": None, "creationType": "Invitation"},
        "pending": {"userType": "Member", "externalUserState": "PendingAcceptance"},
        "issuer": {
            "userType": "Member",
            "identities": [{"signInType": "federated", "issuer": "ExternalAzureAD"}],
        },
        "typed-guest": {"userType": "Guest"},
        "local": {
            "userType": "Member",
            "identities": [{"signInType": "userPrincipalName", "issuer": "t.onmicrosoft.com"}],
        },
    }
    for name, props in signals.items():
        props.setdefault("userPrincipalName", f"{name}@t.onmicrosoft.com")
        t.add_user(id=oid(name), displayName=name, **props)

    result = collect(make_cfg())

    kinds = dict(result.tables["accounts"].select("upn", "kind").iter_rows())
    assert {upn.split("@")[0]: kind for upn, kind in kinds.items()} == {
        "member": "user",
        "x_fabrikam.com#EXT#": "guest",
        "invited": "guest",
        "pending": "guest",
        "issuer": "guest",
        "typed-guest": "guest",
        "local": "user",
    }


def test_sign_in_activity_takes_latest_and_ignores_placeholder_values(emu, make_cfg):
    t = emu.add_tenant(Tenant(TENANT))
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET)
    t.add_user(
        id=oid("a"),
        userPrincipalName="a@t",
        signInActivity={
            "lastSignInDateTime": "2026-01-02T03:04:05Z",
            "lastNonInteractiveSignInDateTime": "2026-02-03T04:05:06.789Z",
            "lastSuccessfulSignInDateTime": "",
        },
    )
    t.add_user(
        id=oid("b"),
        userPrincipalName="b@t",
        signInActivity={
            "lastSignInDateTime": "0001-01-01T00:00:00Z",
            "lastNonInteractiveSignInDateTime": None,
            "lastSuccessfulSignInDateTime": "",
        },
    )
    t.add_user(id=oid("c"), userPrincipalName="c@t")  # never signed in: property absent

    result = collect(make_cfg())

    logons = dict(result.tables["accounts"].select("upn", "last_logon").iter_rows())
    assert str(logons["a@t"]) == "2026-02-03 04:05:06.789000+00:00"
    assert logons["b@t"] is None
    assert logons["c@t"] is None


def test_sign_in_activity_not_requested_leaves_last_logon_empty(emu, make_cfg, tenant):
    result = collect(make_cfg(sign_in_activity=False))

    assert "sign-in-activity" not in [u.name for u in result.units]
    assert result.tables["accounts"]["last_logon"].null_count() == 1206  # + a service principal
    assert all("signInActivity" not in r.target for r in emu.requests("graph"))


def test_tenant_without_p1_collects_users_and_marks_sign_in_incomplete(make_cfg, tenant):
    tenant.premium = False

    result = collect(make_cfg())

    units = {u.name: u for u in result.units}
    assert units["users"].complete
    assert units["users"].count == 1205
    assert not units["sign-in-activity"].complete
    assert (
        "Authentication_RequestFromNonPremiumTenantOrB2CTenant" in units["sign-in-activity"].detail
    )
    assert result.tables["accounts"]["last_logon"].null_count() == 1206  # + a service principal
    assert not result.complete


def test_tenant_without_p2_has_no_eligibility_and_is_complete(make_cfg, tenant, small_tables):
    tenant.p2 = False

    result = collect(make_cfg())

    unit = next(u for u in result.units if u.name == "role-eligibility")
    assert unit.complete
    assert unit.detail == "tenant has no Entra ID P2: PIM eligibility does not exist"
    assert result.complete
    rights = result.tables["grants"]["right"].to_list()
    assert "User Administrator @ / (eligible)" not in rights


def test_group_deleted_after_listing_is_dropped(emu, make_cfg, tenant, small_tables):
    gone = oid("Newsletter")
    # gone for every request after the listing: its members, owners and the confirming read
    emu.faults.add(
        Fault(match=f"/groups/{gone}", status=404, code="Request_ResourceNotFound", times=None)
    )

    result = collect(make_cfg())

    assert result.complete
    assert gone not in result.tables["groups"]["group_id"].to_list()
    assert gone not in result.tables["memberships"]["group_id"].to_list()
    unit = next(u for u in result.units if u.name == "members")
    assert unit.detail.endswith("; 1 group(s) deleted during collection dropped")


def test_sample_tenant_collects_to_the_same_ids_and_counts(emu, make_cfg):
    from accessaudit.sample.directory import generate

    sample = generate()
    # A tenant has no foreign security principals: the AD sample's FSP members (users of a
    # retired domain, kept by SID) have no object in Graph, so they are not served.
    tables = {
        **sample.tables,
        "memberships": sample.tables["memberships"].filter(pl.col("member_kind") != "foreign"),
    }
    assert sample.tables["memberships"].height - tables["memberships"].height == 2
    emu.add_tenant(tenant_from_sample(tables, tenant_id=TENANT))
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET)

    result = collect(make_cfg())

    assert result.complete
    got, want = result.tables, tables
    assert sorted(got["accounts"]["account_id"]) == sorted(want["accounts"]["account_id"])
    assert sorted(got["groups"]["group_id"]) == sorted(want["groups"]["group_id"])
    edges = ["group_id", "member_id", "member_kind"]
    assert_frame_equal(
        got["memberships"].select(edges).sort(edges),
        want["memberships"].select(edges).unique().sort(edges),
    )
    sizes = want["memberships"].unique(["group_id", "member_id"]).group_by("group_id").len()
    assert (sizes["len"] > 999).any()  # groups above one page are in the comparison
    same = ["account_id", "sid", "username", "upn", "display_name", "mail", "employee_id"]
    same += ["company", "department", "dn", "enabled", "pwd_last_set", "created", "last_logon"]
    assert_frame_equal(
        got["accounts"].select(same).sort("account_id"),
        want["accounts"].select(same).sort("account_id"),
    )
    # the directory's data paths (folders, shares, mailboxes, Azure scopes) are not Graph's:
    # a tenant serves none of them, so none come back
    entra_kinds = ["directory-role", "app-role", "ownership"]
    want_grants = want["grants"].filter(pl.col("resource_kind").is_in(entra_kinds))
    assert sample.tables["grants"].height - want_grants.height == 16
    assert got["grants"].height == want_grants.height
