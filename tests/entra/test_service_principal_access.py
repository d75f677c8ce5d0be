"""Service principals as principals: members and owners of groups, holders of app roles,
attributed by name prefix, owners or their application's tenant, and seen by every access rule.

A tenant built here (as Graph objects) is served by the emulator and collected by the real
connector; the expected findings are computed below by plain loops over what was built (each
principal's force, the direct memberships expanded through the nestings, the owners, the app
roles)."""

from __future__ import annotations

import polars as pl
import pytest
from support.entra_data import CLIENT_ID, ROLES, SECRET, TENANT, oid
from support.fixtures import NOW

from accessaudit.config.settings import Settings
from accessaudit.connectors.entra.collect import collect
from accessaudit.graphemu import GraphEmulator, Tenant
from accessaudit.pipeline.analyse import Analysis, analyse
from accessaudit.pipeline.collect import combine

DOMAIN = "alliance.onmicrosoft.com"
#: Warwickshire's own tenant since the split (its applications' appOwnerOrganizationId).
WARKS_TENANT = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
FORCES = {"wmp": "wm.example", "warks": "wk.example"}

#: principal -> its force (None: no signal says)
USERS = {"w1": "wmp", "k1": "warks"}
SERVICE_PRINCIPALS = {
    "WARKS-Sync": "warks",  # by name prefix; only a member of West Mercia's team
    "WARKS-Own": "warks",  # in its own force's team only
    "Deploy bot": "warks",  # owned by k1; owns a West Mercia group
    "Partner connector": "warks",  # registered in Warwickshire's tenant
    "Legacy connector": None,  # no signal: an application (w1 holds its role) and a member
}
#: group -> (its force, direct members); WMP-Team is nested in WMP-All
GROUPS = {
    "WMP-Team": ("wmp", ["w1", "WARKS-Sync", "Partner connector", "laptop", "contact"]),
    "WMP-All": ("wmp", ["WMP-Team"]),
    "WMP-Owned": ("wmp", ["w1"]),
    "WMP-Lonely": ("wmp", ["Legacy connector"]),
    "WARKS-Team": ("warks", ["k1", "WARKS-Own"]),
}
#: group or application -> its owners
OWNERS = {"WMP-Owned": ["w1", "Deploy bot"], "Deploy bot": ["k1"]}
#: (principal, application, role)
APP_ROLES = [("WARKS-Sync", "WMP-Portal", "Reader"), ("w1", "Legacy connector", "User")]
APPS = {"WMP-Portal": "wmp", "Legacy connector": None}


def org_settings() -> Settings:
    orgs = [
        {
            "id": org,
            "name": org,
            "match": {
                "upn_suffix": [f"@{domain}"],
                "name_prefix": [f"{org.upper()}-"],
                **({"sources": [f"entra:{WARKS_TENANT}"]} if org == "warks" else {}),
            },
        }
        for org, domain in FORCES.items()
    ]
    return Settings.model_validate(
        {"organisations": orgs, "sources": [{"kind": "sample", "name": "s"}]}
    )


def build(emu: GraphEmulator) -> Tenant:
    t = emu.add_tenant(Tenant(TENANT, domain=DOMAIN))
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=(*ROLES, "Device.Read.All"))
    for name, org in USERS.items():
        t.add_user(id=oid(name), userPrincipalName=f"{name}@{FORCES[org]}", displayName=name)
    for name in SERVICE_PRINCIPALS:
        tenant = WARKS_TENANT if name == "Partner connector" else TENANT
        roles = [r for p, app, r in APP_ROLES if app == name]
        t.add_service_principal(name, roles, id=oid(name), appOwnerOrganizationId=tenant)
    t.add_service_principal("WMP-Portal", ["Reader"], id=oid("WMP-Portal"))
    t.add_device(id=oid("laptop"), displayName="laptop")
    t.add_contact(id=oid("contact"), displayName="contact")
    for name in GROUPS:
        t.add_group(id=oid(name), displayName=name)
    for name, (_, members) in GROUPS.items():
        for member in members:
            t.add_member(oid(name), oid(member))
    for name, owners in OWNERS.items():
        for owner in owners:
            if name in GROUPS:
                t.add_owner(oid(name), oid(owner))
            else:
                t.add_sp_owner(oid(name), oid(owner))
    for principal, app, role in APP_ROLES:
        [role_id] = [r["id"] for r in t.objects[oid(app)]["appRoles"] if r["value"] == role]
        t.assign_app_role(oid(principal), oid(app), role_id)
    return t


def expected() -> dict[str, set[tuple[str, ...]]]:
    """Each rule's finding keys, by plain loops over what :func:`build` made."""
    home = {**USERS, **SERVICE_PRINCIPALS}
    org = {g: o for g, (o, _) in GROUPS.items()} | APPS
    parents = {m: g for g, (_, members) in GROUPS.items() for m in members if m in GROUPS}
    direct: set[tuple[str, ...]] = set()
    nested: set[tuple[str, ...]] = set()
    for group, (_, members) in GROUPS.items():
        for member in (m for m in members if m in home):
            reached: str | None = group
            depth = 0
            while reached is not None:
                if home[member] and org[reached] and home[member] != org[reached]:
                    (direct if depth == 0 else nested).add((oid(member), oid(reached)))
                reached, depth = parents.get(reached), depth + 1
    owners: set[tuple[str, ...]] = {
        (oid(owner), oid(thing))
        for thing, ids in OWNERS.items()
        for owner in ids
        if home[owner] and org.get(thing, home.get(thing)) not in (None, home[owner])
    }
    apps: set[tuple[str, ...]] = {
        (oid(p), oid(app))
        for p, app, _ in APP_ROLES
        if home[p] and APPS[app] and home[p] != APPS[app]
    }
    principals = {m for _, ms in GROUPS.values() for m in ms} | {p for p, _, _ in APP_ROLES}
    unclaimed: set[tuple[str, ...]] = {
        (oid(p),) for p in SERVICE_PRINCIPALS if home[p] is None and p in principals
    }
    return {
        "cross-org-direct-member": direct,
        "cross-org-nested-access": nested,
        "cross-org-group-owner": owners,
        "cross-org-app-role": apps,
        "unattributed-with-access": unclaimed,
        "cross-org-guest": set(),
        "conflicting-attribution": set(),
    }


KEYS = {
    "cross-org-direct-member": ["account_id", "group_id"],
    "cross-org-nested-access": ["account_id", "group_id"],
    "cross-org-group-owner": ["account_id", "group_id"],
    "cross-org-app-role": ["account_id", "resource_id"],
    "unattributed-with-access": ["account_id"],
    "cross-org-guest": ["account_id"],
    "conflicting-attribution": ["account_id"],
}


@pytest.fixture
def analysis(emu, make_cfg, rules) -> Analysis:
    build(emu)
    result = collect(make_cfg())
    assert result.complete, [u for u in result.units if not u.complete]
    return analyse(combine([("entra", result)]), org_settings(), rules, as_of=NOW)


def test_service_principals_get_exactly_the_expected_findings(analysis):
    want = expected()
    assert all(want[r] for r in KEYS if r not in ("cross-org-guest", "conflicting-attribution"))
    for rule, keys in KEYS.items():
        got = analysis.findings.filter(pl.col("rule_id") == rule)
        assert set(got.select(keys).iter_rows()) == want[rule], rule
    # the unclaimed application that is also a principal is reported once, as the account
    assert analysis.findings.filter(pl.col("group_id") == oid("Legacy connector")).height == 0


def test_service_principals_are_accounts_attributed_like_principals(analysis):
    accounts = analysis.accounts.filter(pl.col("kind") == "service")
    assert sorted(accounts["account_id"]) == sorted(oid(n) for n in SERVICE_PRINCIPALS)
    orgs = dict(accounts.select("account_id", "org").iter_rows())
    assert orgs == {oid(n): o or "unattributed" for n, o in SERVICE_PRINCIPALS.items()}
    evidence = dict(accounts.select("account_id", "org_evidence").iter_rows())
    assert evidence[oid("WARKS-Sync")] == ["name_prefix:warks"]
    assert evidence[oid("Deploy bot")] == ["owner:warks"]
    assert evidence[oid("Partner connector")] == ["sources:warks (its application's tenant)"]
    # an application that is a principal too has one organisation
    apps = analysis.groups.filter(pl.col("kind") == "app-role")
    assert dict(apps.select("group_id", "org").iter_rows()) == {
        oid("Deploy bot"): "warks",
        oid("Legacy connector"): "unattributed",
        oid("WMP-Portal"): "wmp",
    }


def test_devices_and_contacts_stay_foreign_members(analysis):
    kinds = dict(
        analysis.memberships.filter(pl.col("group_id") == oid("WMP-Team"))
        .select("member_id", "member_kind")
        .iter_rows()
    )
    assert kinds == {
        oid("w1"): "account",
        oid("WARKS-Sync"): "account",
        oid("Partner connector"): "account",
        oid("laptop"): "foreign",
        oid("contact"): "foreign",
    }
    ids = set(analysis.accounts["account_id"])
    assert oid("laptop") not in ids and oid("contact") not in ids
    named = analysis.findings.filter(pl.col("account_id").is_in([oid("laptop"), oid("contact")]))
    assert named.height == 0
