"""The hardening suites' servers: a Samba domain with boundary data and the Graph emulator
serving the sample tenant. (The fixtures are registered by ``tests/hardening/conftest.py``; the
command line and the scenario checks are in :mod:`support.hardening_cli`.)

Servers (started here, never skipped: a missing one fails naming the Debian package):

* ``boundary_template``: a Samba AD domain controller provisioned once per session with what the
  fault scenarios need: 5,000 accounts split between the two forces, groups of exactly 1,499 /
  1,500 / 1,501 / 5,000 members (read by range retrieval), foreign security principals whose
  SIDs no trust resolves, well-known SIDs as members, ``accountExpires`` sentinels, and a bind
  account whose password is the secret canary. Tests run copies of it (``boundary_dc``).
* ``emu``: the Graph emulator serving the embedded sample's Entra tenant.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from accessaudit.config.sources import LdapSource
from accessaudit.graphemu import READ_ROLES, GraphEmulator, tenant_from_sample
from accessaudit.loopback_ca import Pki, make_pki
from accessaudit.sample.directory import generate
from accessaudit.sample.entra import TENANT_ID
from accessaudit.sample.entra_messy import hidden_membership
from support.hardening_cli import (
    CANARY_PASSWORD,
    CANARY_SECRET,
    PASSWORD_ENV,
    SECRET_ENV,
    toml_table,
)
from support.loopback import without_proxies
from support.servers import ServerUnavailable
from support.servers.load_ad import admin_connection
from support.servers.samba import ADDRESSES, SambaDC, free_address, provision

BASE_DN = "DC=alliance,DC=local"
DOMAIN_SID = "S-1-5-21-1000000001-2000000002-3000000077"

# --- the boundary domain -----------------------------------------------------------------------

BULK = 5000
#: group name -> number of members; members are bulk accounts 2000.. (wrapping), so each
#: group mixes both forces (accounts 0-2499 are West Mercia, 2500-4999 Warwickshire).
BOUNDARY_GROUPS = {
    "WMP-Bound-1499": 1499,
    "WMP-Bound-1500": 1500,
    "WMP-Bound-1501": 1501,
    "WMP-Bound-5000": 5000,
}
FIRST_MEMBER = 2000
#: SIDs of a forest whose trust was removed: nothing resolves them.
UNRESOLVABLE = (
    "S-1-5-21-1111111111-2222222222-3333333333-1234",
    "S-1-5-21-1111111111-2222222222-3333333333-5678",
)
#: Well-known SIDs as members (Authenticated Users, Enterprise Domain Controllers, Everyone).
WELL_KNOWN = ("S-1-5-11", "S-1-5-9", "S-1-1-0")
#: accountExpires values (username -> value): 0 and 0x7FFFFFFFFFFFFFFF mean never; the others
#: are far-future values seen in real directories; "x-expired" expired in 2022.
EXPIRES = {
    "x-never-zero": 0,
    "x-never-max": 0x7FFF_FFFF_FFFF_FFFF,
    "x-odd-max": 9_223_372_032_559_808_511,  # 0x7FFFFFFEFFFFFFFF: year 30828
    "x-year-9999": 2_650_467_743_990_000_000,  # 9999-12-31 23:59:59 UTC
    "x-expired": 133_000_000_000_000_000,  # 2022-06-18
}
WMP_OU = f"OU=West Mercia,{BASE_DN}"
WARKS_OU = f"OU=Warwickshire,{BASE_DN}"


def bulk_name(i: int) -> str:
    return f"b{i:05d}"


def bulk_dn(i: int) -> str:
    return f"CN={bulk_name(i)},{WMP_OU if i < BULK // 2 else WARKS_OU}"


def members_of(size: int) -> list[int]:
    return [(FIRST_MEMBER + k) % BULK for k in range(size)]


@dataclass
class BoundaryDC:
    dc: SambaDC

    @property
    def pki(self) -> Pki:
        return self.dc.pki

    def source_toml(self, server: str | None = None, **overrides: object) -> str:
        values: dict[str, object] = {
            "kind": "ldap",
            "name": "alliance.local",
            "host": "wmp",
            "servers": [server or self.dc.ldaps_url],
            "base_dn": BASE_DN,
            "bind_dn": "auditor@alliance.local",
            "password_env": PASSWORD_ENV,
            "ca_file": str(self.pki.ca_file),
            "connect_timeout": 5.0,
            "receive_timeout": 20.0,
            "page_size": 1000,
        }
        values.update(overrides)
        return toml_table("sources", values)

    def source(self, **overrides: object) -> LdapSource:
        os.environ[PASSWORD_ENV] = CANARY_PASSWORD
        values: dict[str, object] = {
            "kind": "ldap",
            "name": "alliance.local",
            "servers": [self.dc.ldaps_url],
            "base_dn": BASE_DN,
            "bind_dn": "auditor@alliance.local",
            "password_env": PASSWORD_ENV,
            "ca_file": self.pki.ca_file,
            "connect_timeout": 5,
            "receive_timeout": 20,
        }
        values.update(overrides)
        return LdapSource.model_validate(values)


def _seed_boundary(dc: SambaDC) -> None:
    conn = admin_connection(dc)
    try:
        for ou in (WMP_OU, WARKS_OU):
            conn.add(ou, "organizationalUnit")
        for i in range(BULK):
            company = "West Mercia Police" if i < BULK // 2 else "Warwickshire Police"
            conn.add(
                bulk_dn(i),
                "user",
                {"sAMAccountName": bulk_name(i), "company": company, "userAccountControl": "512"},
            )
        for name, size in BOUNDARY_GROUPS.items():
            conn.add(
                f"CN={name},{WMP_OU}",
                "group",
                {
                    "sAMAccountName": name,
                    "groupType": str(-0x80000000 + 0x2),  # global security group
                    "member": [bulk_dn(i) for i in members_of(size)],
                },
            )
        # domain-local groups may hold foreign and well-known principals (as FSP objects);
        # provisioning made some well-known ones already: those are named by their DN
        conn.search(f"CN=ForeignSecurityPrincipals,{BASE_DN}", "(objectClass=*)", attributes=["cn"])
        existing = {str(e["dn"]).split(",")[0][3:] for e in conn.response}

        def member(sid: str) -> str:
            fsp = f"CN={sid},CN=ForeignSecurityPrincipals,{BASE_DN}"
            return fsp if sid in existing else f"<SID={sid}>"

        for name, sids in (
            ("WMP-Foreign", UNRESOLVABLE),
            ("WARKS-Foreign", UNRESOLVABLE[:1]),
            ("WMP-WellKnown", WELL_KNOWN),
        ):
            ou = WARKS_OU if name.startswith("WARKS") else WMP_OU
            conn.add(
                f"CN={name},{ou}",
                "group",
                {
                    "sAMAccountName": name,
                    "groupType": str(-0x80000000 + 0x4),
                    "member": [member(sid) for sid in sids],
                },
            )
        for name, value in EXPIRES.items():
            conn.add(
                f"CN={name},{WMP_OU}",
                "user",
                {
                    "sAMAccountName": name,
                    "company": "West Mercia Police",
                    "userAccountControl": "512",
                    "accountExpires": str(value),
                },
            )
        pwd = f'"{CANARY_PASSWORD}"'.encode("utf-16-le")
        conn.add(
            f"CN=auditor,CN=Users,{BASE_DN}",
            "user",
            {"sAMAccountName": "auditor", "unicodePwd": pwd, "userAccountControl": "512"},
        )
    finally:
        conn.unbind()


@pytest.fixture(scope="session")
def hpki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("hpki"), ips=ADDRESSES, dns=("dc1.alliance.local",))


@pytest.fixture(scope="session")
def boundary_template(tmp_path_factory: pytest.TempPathFactory, hpki: Pki) -> Iterator[BoundaryDC]:
    """The boundary domain, provisioned and seeded once, stopped (copied, never run)."""
    folder = tmp_path_factory.mktemp("boundary") / "template"
    try:
        dc = provision(folder, hpki, free_address(), domain_sid=DOMAIN_SID)
    except ServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    dc.start()
    try:
        _seed_boundary(dc)
    finally:
        dc.stop()
    yield BoundaryDC(dc)
    shutil.rmtree(folder, ignore_errors=True)


def running(template: BoundaryDC, folder: Path) -> BoundaryDC:
    dc = template.dc.copy(folder, free_address())
    dc.start()
    return BoundaryDC(dc)


@pytest.fixture(scope="session")
def boundary_ro(
    boundary_template: BoundaryDC, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BoundaryDC]:
    """A running copy shared by tests that only read."""
    seeded = running(boundary_template, tmp_path_factory.mktemp("boundary-ro") / "dc")
    yield seeded
    seeded.dc.stop()


@pytest.fixture
def boundary_dc(boundary_template: BoundaryDC, tmp_path: Path) -> Iterator[BoundaryDC]:
    """A private running copy for a test that stops the server."""
    seeded = running(boundary_template, tmp_path / "dc")
    yield seeded
    seeded.dc.stop()


# --- the Graph emulator with the sample's tenant -----------------------------------------------

CLIENT_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
ENTRA_ACCOUNTS = 300


@pytest.fixture(scope="session")
def entra_tables() -> dict[str, pl.DataFrame]:
    """The embedded sample's Entra tenant (300 accounts, seed 7), as canonical tables."""
    return dict(generate(seed=7, accounts=ENTRA_ACCOUNTS, entra=True).entra)


def serve_sample_tenant(
    emulator: GraphEmulator, tables: Mapping[str, pl.DataFrame]
) -> GraphEmulator:
    """``emulator`` (started) serving the sample tenant to the read app whose client secret is
    the canary."""
    hidden = hidden_membership(tables)
    emulator.add_tenant(tenant_from_sample(tables, tenant_id=TENANT_ID, hidden_membership=hidden))
    roles = [*READ_ROLES, "OrgContact.Read.All", "Member.Read.Hidden"]
    emulator.register_app(TENANT_ID, CLIENT_ID, secret=CANARY_SECRET, roles=roles)
    return emulator


@pytest.fixture
def emu(hpki: Pki, entra_tables: dict[str, pl.DataFrame]) -> Iterator[GraphEmulator]:
    """A Graph emulator (loopback HTTPS) serving the sample tenant to an app whose client
    secret is the canary; proxies from the environment are not used for loopback."""
    emulator = serve_sample_tenant(GraphEmulator(hpki).start(), entra_tables)
    try:
        yield emulator
    finally:
        emulator.stop()
    assert not emulator.errors, emulator.errors[0]


def entra_source_toml(emulator: GraphEmulator, **overrides: object) -> str:
    values: dict[str, object] = {
        "kind": "entra",
        "name": "alliance-tenant",
        "host": "wmp",
        "tenant_id": TENANT_ID,
        "client_id": CLIENT_ID,
        "authority_host": emulator.base_url,
        "graph_url": emulator.graph_url,
        "client_secret_env": SECRET_ENV,
        "ca_file": str(emulator.pki.ca_file),
        "retry_backoff": 0.02,
        "max_retries": 3,
        "time_budget": 60.0,
        "timeout": 10.0,
        "page_size": 100,
    }
    values.update(overrides)
    return toml_table("sources", {k: v for k, v in values.items() if v is not None})


@pytest.fixture(autouse=True)
def _loopback_without_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    without_proxies(monkeypatch)
