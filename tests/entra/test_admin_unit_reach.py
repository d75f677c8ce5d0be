"""A role scoped to an administrative unit reaches every member object of the unit: a host-force
Groups Administrator scoped to a unit that holds the other force's group can change that group's
members, so it is cross-force control, although the unit and its accounts are the host's.

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
RULE = "cross-org-directory-role"

USERS = {"w1": "wmp", "w2": "wmp", "w3": "wmp", "k1": "warks"}
#: group -> (its force, its direct members)
GROUPS = {"WMP-Team": ("wmp", ["w3"]), "WARKS-Team": ("warks", ["k1"])}
DEVICES = ("laptop",)  # a device is attributed to no one
#: administrative unit (named by its force's prefix) -> its direct members
UNITS = {
    "WMP-AU-Mixed": ["w3", "WMP-Team", "WARKS-Team", "laptop"],
    "WMP-AU-Own": ["w3", "WMP-Team", "laptop"],
}
#: (principal, unit) of each Groups Administrator assignment scoped to a unit
SCOPED = [("w1", "WMP-AU-Mixed"), ("w2", "WMP-AU-Own")]


def force(name: str) -> str | None:
    if name in USERS:
        return USERS[name]
    if name in GROUPS:
        return GROUPS[name][0]
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
    for name, members in UNITS.items():
        t.add_administrative_unit(id=oid(name), displayName=name)
        for m in members:
            t.add_au_member(oid(name), oid(m))
    for principal, unit in SCOPED:
        t.assign_role(oid(principal), GROUPS_ADMIN, f"/administrativeUnits/{oid(unit)}")
    return t


def truth() -> dict[tuple[str, str], list[str]]:
    """(principal, unit) -> the unit's member objects (or the unit itself) of another force."""
    out = {}
    for principal, unit in SCOPED:
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
    expected = truth()
    assert len(expected) == 1  # the mixed unit only; the host's own unit reaches no one else
    found = analysis.findings.filter(pl.col("rule_id") == RULE)
    assert set(found.select("account_id", "group_id").iter_rows()) == set(expected)
    [(_, unit)] = expected
    [reached] = expected[(oid("w1"), unit)]
    [detail] = found["detail"].to_list()
    assert detail == (
        f"Groups Administrator @ administrative-unit WMP-AU-Mixed reaches {force(reached)} "
        f"group {reached}"
    )
    [finding] = found.iter_rows(named=True)
    assert (finding["principal_org"], finding["resource_org"]) == ("wmp", "warks")
