"""A role scoped to an administrative unit reaches every member object of the unit: a host-force
Groups Administrator scoped to a unit that holds the other force's group can change that group's
members, so it is cross-force control, although the unit and its accounts are the host's; so is
a role scoped to a unit holding the other force's service principal.

A tenant built here (as Graph objects) is served by the emulator and collected by the real
connector; the expected findings are computed below by plain loops over what was built (each
object's force, each unit's members, each scoped assignment)."""

from __future__ import annotations

import polars as pl
from support.entra_data import CLIENT_ID, ROLES, SECRET, TENANT, oid
from support.fixtures import NOW

from accessaudit.config.settings import Settings
from accessaudit.connectors.entra.collect import collect
from accessaudit.graphemu import GraphEmulator, Tenant
from accessaudit.pipeline.analyse import analyse
from accessaudit.pipeline.collect import combine

DOMAIN = "alliance.onmicrosoft.com"
FORCES = {"wmp": "wm.example", "warks": "wk.example"}
HOST = "wmp"
GROUPS_ADMIN = "fdd7a751-b60b-444a-984c-02652fe8fa1c"  # Groups Administrator (built-in)
APP_ADMIN = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"  # Application Administrator (built-in)
RULE = "cross-org-directory-role"

USERS = {"w1": "wmp", "w2": "wmp", "w3": "wmp", "w4": "wmp", "k1": "warks"}
#: service principals (attributed by their name's prefix)
SERVICE_PRINCIPALS = {"WARKS-Sync": "warks", "WMP-Sync": "wmp"}
#: group -> (its force, its direct members)
GROUPS = {"WMP-Team": ("wmp", ["w3"]), "WARKS-Team": ("warks", ["k1"])}
DEVICES = ("laptop",)  # a device is attributed to no one
#: administrative unit (named by its force's prefix) -> its direct members
UNITS = {
    "WMP-AU-Mixed": ["w3", "WMP-Team", "WARKS-Team", "laptop"],
    "WMP-AU-Own": ["w3", "WMP-Team", "laptop", "WMP-Sync"],
    "WMP-AU-Apps": ["w3", "WARKS-Sync"],
}
#: (principal, role, unit) of each assignment scoped to a unit
SCOPED = [
    ("w1", GROUPS_ADMIN, "WMP-AU-Mixed"),
    ("w2", GROUPS_ADMIN, "WMP-AU-Own"),
    ("w4", APP_ADMIN, "WMP-AU-Apps"),
]


def force(name: str) -> str | None:
    if name in USERS:
        return USERS[name]
    if name in GROUPS:
        return GROUPS[name][0]
    if name in SERVICE_PRINCIPALS:
        return SERVICE_PRINCIPALS[name]
    if name in UNITS:
        return next(f for f in FORCES if name.startswith(f"{f.upper()}-"))
    return None  # a device


def settings(cfg: object) -> Settings:
    orgs = [
        {"id": f, "name": f, "match": {"upn_suffix": [f"@{d}"], "name_prefix": [f"{f.upper()}-"]}}
        for f, d in FORCES.items()
    ]
    return Settings.model_validate({"organisations": orgs, "sources": [cfg]})


def build(emu: GraphEmulator) -> Tenant:
    t = emu.add_tenant(Tenant(TENANT, domain=DOMAIN))
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=(*ROLES, "Device.Read.All"))
    for name, f in USERS.items():
        t.add_user(id=oid(name), userPrincipalName=f"{name}@{FORCES[f]}", displayName=name)
    for name, (_, members) in GROUPS.items():
        t.add_group(id=oid(name), displayName=name)
        for m in members:
            t.add_member(oid(name), oid(m))
    for name in DEVICES:
        t.add_device(id=oid(name), displayName=name)
    for name in SERVICE_PRINCIPALS:
        t.add_service_principal(name, id=oid(name))
    for name, members in UNITS.items():
        t.add_administrative_unit(id=oid(name), displayName=name)
        for m in members:
            t.add_au_member(oid(name), oid(m))
    for principal, role, unit in SCOPED:
        t.assign_role(oid(principal), role, f"/administrativeUnits/{oid(unit)}")
    return t


def truth() -> dict[tuple[str, str], list[str]]:
    """(principal, unit) -> the unit's member objects (or the unit itself) of another force."""
    out = {}
    for principal, _, unit in SCOPED:
        mine = force(principal)
        reached = [unit] if force(unit) != mine else []
        reached += [m for m in UNITS[unit] if force(m) is not None and force(m) != mine]
        if reached:
            out[(oid(principal), oid(unit))] = reached
    return out


def test_unit_holding_the_other_forces_group_is_cross_force_control(emu, make_cfg, rules):
    build(emu)
    cfg = make_cfg(host=HOST)

    result = collect(cfg)
    analysis = analyse(combine([("entra", result)]), settings(cfg), rules, as_of=NOW)

    assert result.complete, [u for u in result.units if not u.complete]
    # the connector keeps every member of a unit: groups as groups, the device as foreign
    kinds = dict(
        result.tables["memberships"]
        .filter(pl.col("group_id") == oid("WMP-AU-Mixed"))
        .select("member_id", "member_kind")
        .iter_rows()
    )
    assert kinds == {
        oid("w3"): "account",
        oid("WMP-Team"): "group",
        oid("WARKS-Team"): "group",
        oid("laptop"): "foreign",
    }
    apps = result.tables["memberships"].filter(pl.col("group_id") == oid("WMP-AU-Apps"))
    assert dict(apps.select("member_id", "member_kind").iter_rows())[oid("WARKS-Sync")] == (
        "account"  # a service principal: an account of kind service
    )
    expected = truth()
    # the mixed unit and the one holding the other force's service principal; the host's own
    # unit (its accounts, group, service principal and a device) reaches no one else
    assert len(expected) == 2
    found = analysis.findings.filter(pl.col("rule_id") == RULE)
    assert set(found.select("account_id", "group_id").iter_rows()) == set(expected)
    details = dict(found.select("account_id", "detail").iter_rows())
    [reached] = expected[(oid("w1"), oid("WMP-AU-Mixed"))]
    assert details[oid("w1")] == (
        f"Groups Administrator @ administrative-unit WMP-AU-Mixed reaches {force(reached)} "
        f"group {reached}"
    )
    [reached] = expected[(oid("w4"), oid("WMP-AU-Apps"))]
    assert details[oid("w4")] == (
        f"Application Administrator @ administrative-unit WMP-AU-Apps reaches {force(reached)} "
        f"account {reached}"
    )
    orgs = set(found.select("principal_org", "resource_org").iter_rows())
    assert orgs == {("wmp", "warks")}
