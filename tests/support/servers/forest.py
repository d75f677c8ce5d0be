"""Two Samba AD domains side by side (two realms on two loopback addresses), seeded with objects
of each other: foreign security principals by SID, sIDHistory and trustedDomain objects.

``samba-tool domain trust create`` needs the DCs' LSA RPC services (our DCs run ``ldap cldap
kdc`` only, and Samba 4.17's own SMB server fails session setup here): the trusts are written as
``trustedDomain`` objects under CN=System with ``ldbadd`` on sam.ldb, as the trust tool would
leave them; sIDHistory with ``ldbmodify`` (LDAP refuses both). Foreign principals are made the
way AD makes them: a ``member: <SID=...>`` value over LDAP, which Samba turns into a
``CN=<SID>,CN=ForeignSecurityPrincipals`` object.
"""

from __future__ import annotations

import ssl
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import ldap3

from accessaudit.loopback_ca import Pki
from accessaudit.transport.sid import sid_to_str
from support.servers.load_ad import BIND_PASSWORD
from support.servers.samba import ADMIN_PASSWORD, SambaDC, provision


@dataclass(frozen=True)
class Realm:
    realm: str  # DNS name, e.g. "alliance.local"
    netbios: str
    domain_sid: str

    @property
    def base_dn(self) -> str:
        return ",".join(f"DC={p}" for p in self.realm.split("."))


@dataclass
class Seeded:
    """A seeded, stopped domain: its directory, and the SIDs and GUIDs of what was created."""

    dc: SambaDC
    realm: Realm
    sids: dict[str, str] = field(default_factory=dict)  # name -> objectSid
    ids: dict[str, str] = field(default_factory=dict)  # name -> objectGUID


ALLIANCE = Realm("alliance.local", "ALLIANCE", "S-1-5-21-1000000001-2000000002-3000000003")
NEW_WARKS = Realm("newwarks.local", "NEWWARKS", "S-1-5-21-1100000011-2100000012-3100000013")
#: A domain of Warwickshire nobody collects (listed by the domain_sid matcher), one of nobody's
#: (neither collected nor listed), and one whose only SID is in an account's sIDHistory.
WARKS_OTHER = "S-1-5-21-1200000021-2200000022-3200000023"
NOBODY = "S-1-5-21-1300000031-2300000032-3300000033"
MIGRATED = "S-1-5-21-1400000041-2400000042-3400000043"
AUTHENTICATED_USERS = "S-1-5-11"


@dataclass
class Forest:
    shared: Seeded
    new: Seeded


def provision_realm(folder: Path, pki: Pki, address: str, realm: Realm) -> SambaDC:
    return provision(
        folder,
        pki,
        address,
        domain_sid=realm.domain_sid,
        realm=realm.realm.upper(),
        domain=realm.netbios,
    )


def admin(dc: SambaDC, realm: Realm) -> ldap3.Connection:
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(dc.pki.ca_file))
    server = ldap3.Server(dc.address, port=636, use_ssl=True, tls=tls, get_info=ldap3.NONE)
    return ldap3.Connection(
        server,
        f"Administrator@{realm.realm}",
        ADMIN_PASSWORD,
        auto_bind=True,
        raise_exceptions=True,
        receive_timeout=60,
    )


def add_ou(conn: ldap3.Connection, realm: Realm, name: str) -> str:
    dn = f"OU={name},{realm.base_dn}"
    conn.add(dn, "organizationalUnit")
    return dn


def add_user(conn: ldap3.Connection, ou: str, name: str, password: str | None = None) -> str:
    dn = f"CN={name},{ou}"
    attrs: dict[str, object] = {"sAMAccountName": name, "userAccountControl": "544"}
    if password:
        attrs["unicodePwd"] = f'"{password}"'.encode("utf-16-le")
        attrs["userAccountControl"] = "512"
    conn.add(dn, "user", attrs)
    return dn


def add_group(conn: ldap3.Connection, ou: str, name: str) -> str:
    dn = f"CN={name},{ou}"
    conn.add(dn, "group", {"sAMAccountName": name, "groupType": str(-2147483646)})  # global
    return dn


def add_members(conn: ldap3.Connection, group_dn: str, members: list[str]) -> None:
    """Members by DN, or by ``<SID=...>`` (a foreign principal: Samba creates its FSP)."""
    conn.modify(group_dn, {"member": [(ldap3.MODIFY_ADD, members)]})


def read_ids(
    conn: ldap3.Connection, realm: Realm, names: list[str]
) -> tuple[dict[str, str], dict[str, str]]:
    sids: dict[str, str] = {}
    ids: dict[str, str] = {}
    for name in names:
        conn.search(
            realm.base_dn,
            f"(sAMAccountName={name})",
            attributes=["objectSid", "objectGUID"],
        )
        raw = conn.response[0]["raw_attributes"]
        sids[name] = sid_to_str(raw["objectSid"][0])
        ids[name] = str(uuid.UUID(bytes_le=raw["objectGUID"][0]))
    return sids, ids


def add_sid_history(dc: SambaDC, dn: str, sids: list[str]) -> None:
    lines = "".join(f"sIDHistory: {s}\n" for s in sids)
    dc.ldbmodify(f"dn: {dn}\nchangetype: modify\nadd: sIDHistory\n{lines}", 1)


def add_trust(
    dc: SambaDC, realm: Realm, partner: Realm, *, direction: int, attributes: int
) -> None:
    """A trustedDomain object for ``partner`` in ``realm`` (trustType 2: uplevel AD)."""
    ldif = (
        f"dn: CN={partner.realm},CN=System,{realm.base_dn}\n"
        "objectClass: trustedDomain\n"
        f"trustPartner: {partner.realm}\n"
        f"flatName: {partner.netbios}\n"
        f"securityIdentifier: {partner.domain_sid}\n"
        f"trustDirection: {direction}\n"
        "trustType: 2\n"
        f"trustAttributes: {attributes}\n"
    )
    dc._ldb("ldbadd", ldif)


def add_auditor(conn: ldap3.Connection, realm: Realm) -> str:
    """An ordinary domain user to collect with; returns its UPN."""
    add_user(conn, f"CN=Users,{realm.base_dn}", "auditor", BIND_PASSWORD)
    return f"auditor@{realm.realm}"
