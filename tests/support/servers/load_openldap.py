"""Write a canonical dataset into slapd as inetOrgPerson / groupOfNames; return dataset -> ids.

Generic LDAP has no SIDs, primary groups or foreign principals: primary-group edges become plain
``member`` values and foreign members are left out (:func:`expected` gives what a collection
must return). The account kind goes into ``employeeType`` (mapped back by the source's
``attribute_map``). ``groupOfNames`` requires a member, so an empty group holds the suffix DN as a
placeholder, which resolves to no collected object.
"""

from __future__ import annotations

import ssl
import time
from collections import defaultdict

import ldap3
import polars as pl

from accessaudit.model import MEMBERSHIPS_SCHEMA
from support.servers.ids import IdMap
from support.servers.load_ad import rdn_value, split_dn
from support.servers.slapd import (
    AUDITOR_DN,
    AUDITOR_PASSWORD,
    ROOT_DN,
    ROOT_PASSWORD,
    SUFFIX,
    Slapd,
)


def root_connection(server: Slapd) -> ldap3.Connection:
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(server.pki.ca_file))
    srv = ldap3.Server(
        server.host, port=server.ldaps_port, use_ssl=True, tls=tls, get_info=ldap3.NONE
    )
    return ldap3.Connection(srv, ROOT_DN, ROOT_PASSWORD, auto_bind=True, raise_exceptions=True)


def to_ldap_dn(dn: str) -> str:
    """The dataset's AD DN under slapd's suffix (same components, lower-case base)."""
    if dn.lower().endswith(SUFFIX):
        return dn[: -len(SUFFIX)] + SUFFIX
    return dn


def load(server: Slapd, tables: dict[str, pl.DataFrame]) -> IdMap:
    t0 = time.monotonic()
    conn = root_connection(server)
    conn.add(SUFFIX, ["dcObject", "organization"], {"dc": "alliance", "o": "Alliance"})
    conn.add(
        AUDITOR_DN,
        ["organizationalRole", "simpleSecurityObject"],
        {"userPassword": AUDITOR_PASSWORD},
    )
    accounts, groups = tables["accounts"], tables["groups"]
    parents: set[str] = set()
    for dn in [*accounts["dn"], *groups["dn"]]:
        parent = split_dn(to_ldap_dn(dn))[1]
        while parent and parent.lower() != SUFFIX:
            parents.add(parent)
            parent = split_dn(parent)[1]
    for parent in sorted(parents, key=lambda p: p.count(",")):
        value = rdn_value(parent)
        if parent.upper().startswith("OU="):
            conn.add(parent, "organizationalUnit", {"ou": value})
        else:
            conn.add(parent, "organizationalRole", {"cn": value})
    dn_of: dict[str, str] = {}
    for row in accounts.iter_rows(named=True):
        dn = to_ldap_dn(row["dn"])
        cn = rdn_value(dn)
        attrs: dict[str, object] = {
            "cn": cn,
            "sn": cn,
            "uid": row["username"],
            "employeeType": row["kind"],
        }
        for col, attr in (
            ("display_name", "displayName"),
            ("mail", "mail"),
            ("employee_id", "employeeNumber"),
            ("company", "o"),
            ("department", "departmentNumber"),
            ("description", "description"),
        ):
            if row[col] is not None:
                attrs[attr] = row[col]
        conn.add(dn, "inetOrgPerson", attrs)
        dn_of[row["account_id"]] = dn
    for row in groups.iter_rows(named=True):
        dn = to_ldap_dn(row["dn"])
        attrs = {"cn": rdn_value(dn), "member": [SUFFIX]}
        if row["description"] is not None:
            attrs["description"] = row["description"]
        conn.add(dn, "groupOfNames", attrs)
        dn_of[row["group_id"]] = dn
    todo: dict[str, list[str]] = defaultdict(list)
    for row in (
        tables["memberships"].filter(pl.col("member_kind") != "foreign").iter_rows(named=True)
    ):
        todo[row["group_id"]].append(dn_of[row["member_id"]])
    for gid, dns in todo.items():
        values = sorted(set(dns))
        for i in range(0, len(values), 1000):
            conn.modify(dn_of[gid], {"member": [(ldap3.MODIFY_ADD, values[i : i + 1000])]})
        conn.modify(dn_of[gid], {"member": [(ldap3.MODIFY_DELETE, [SUFFIX])]})
    for row in accounts.filter(pl.col("manager_id").is_not_null()).iter_rows(named=True):
        conn.modify(
            dn_of[row["account_id"]],
            {"manager": [(ldap3.MODIFY_REPLACE, [dn_of[row["manager_id"]]])]},
        )
    for row in groups.filter(pl.col("managed_by").is_not_null()).iter_rows(named=True):
        conn.modify(
            dn_of[row["group_id"]], {"owner": [(ldap3.MODIFY_REPLACE, [dn_of[row["managed_by"]]])]}
        )
    idmap = IdMap()
    for dataset_id, dn in dn_of.items():  # by the DN we wrote: slapd re-escapes DNs it returns
        conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["entryUUID"])
        idmap.ids[dataset_id] = conn.response[0]["raw_attributes"]["entryUUID"][0].decode().lower()
    conn.unbind()
    idmap.timings["total"] = time.monotonic() - t0
    return idmap


def expected(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """What a generic-LDAP collection can return for ``tables``: no foreign members, every edge
    via ``member`` (primary groups included), duplicates removed."""
    mem = (
        tables["memberships"]
        .filter(pl.col("member_kind") != "foreign")
        .with_columns(via=pl.lit("member"))
        .unique(["group_id", "member_id"])
    )
    return {**tables, "memberships": mem.select(MEMBERSHIPS_SCHEMA.names())}
