"""Small hand-built canonical datasets for the Entra connector tests (exact expected tables)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msal
import polars as pl
import requests

from accessaudit.graphemu import READ_ROLES
from accessaudit.model import (
    ACCOUNTS_SCHEMA,
    GRANTS_SCHEMA,
    GROUPS_SCHEMA,
    MEMBERSHIPS_SCHEMA,
    conform,
)

TENANT = "7c1b2a90-5d3e-4f6a-8b9c-0d1e2f3a4b5c"
CLIENT_ID = "3f4e5d6c-7b8a-4c9d-8e0f-a1b2c3d4e5f6"
SECRET = "Qw8~emulator.secret-value_0123456789"
#: The documented permission set plus OrgContact.Read.All: the small dataset has a contact member.
ROLES = (*READ_ROLES, "OrgContact.Read.All")
#: The sample tenant's read app: + Member.Read.Hidden (its hidden-membership group,
#: ``sample.entra_messy.plant_hidden``).
SAMPLE_ROLES = (*ROLES, "Member.Read.Hidden")
SOURCE = f"entra:{TENANT}"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
PRIV_ROLE_ADMIN = "e8611ab8-c189-46e8-94e1-60213ab1f814"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
HELPDESK_ADMIN = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
DIRECTORY_READERS = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"
AU_ID = "5a1d0c44-0f8e-4a8e-9d0e-1c2b3a4d5e6f"
AU = f"/administrativeUnits/{AU_ID}"


def session_for(emu: Any, pki: Any, roles: Iterable[str] = ROLES) -> requests.Session:
    """A requests session holding an app-only token from the emulator, got through msal."""
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=roles)
    s = requests.Session()
    s.verify = str(pki.ca_file)
    s.trust_env = False
    app = msal.ConfidentialClientApplication(
        CLIENT_ID,
        authority=emu.authority(TENANT),
        client_credential=SECRET,
        instance_discovery=False,
        http_client=s,
    )
    token = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    s.headers["Authorization"] = f"Bearer {token['access_token']}"
    return s


def oid(name: str) -> str:
    """A stable object id per name."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.accessaudit.test"))


def when(days: int) -> datetime:
    return datetime(2026, 10, 1, tzinfo=UTC) - timedelta(days=days)


def _account(name: str, **over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "source": SOURCE,
        "account_id": oid(name),
        "sid": None,
        "username": name,
        "upn": f"{name}@westmercia.police.uk",
        "display_name": name.title(),
        "mail": f"{name}@westmercia.police.uk",
        "employee_id": None,
        "company": "West Mercia Police",
        "department": "Response",
        "description": None,
        "dn": None,
        "kind": "user",
        "enabled": True,
        "last_logon": when(3),
        "activity_tracked": True,  # collected with signInActivity (the tests' default)
        "pwd_last_set": when(40),
        "created": when(900),
        "manager_id": None,
        "sid_history": [],
        "privileged": False,
    }
    row.update(over)
    return row


def small(bulk: int = 1200) -> dict[str, pl.DataFrame]:
    """Every shape the connector maps, plus a group of ``bulk`` members (> 999: two pages).

    Privileged flags and every derived column are what the connector computes, so collected
    tables must equal these exactly.
    """
    dom = "S-1-5-21-1111111111-2222222222-3333333333"
    accounts = [
        _account(
            "awilliams",
            sid=f"{dom}-1101",
            dn="CN=A Williams,OU=West Mercia,DC=alliance,DC=local",
            employee_id="1000101",
            privileged=True,  # Helpdesk Administrator scoped to an administrative unit
        ),
        _account("bcloud", company=None, last_logon=None, privileged=True),  # eligible User Admin
        _account(
            "cwarks",
            sid=f"{dom}-1102",
            dn="CN=C Warks,OU=Warwickshire,DC=alliance,DC=local",
            upn="cwarks@warwickshire.police.uk",
            mail="cwarks@warwickshire.police.uk",
            company="Warwickshire Police",
            privileged=True,  # Global Administrator
        ),
        _account(
            "jdoe_contoso.com#EXT#",
            upn="jdoe_contoso.com#EXT#@alliance.onmicrosoft.com",
            mail="jdoe@contoso.com",
            company="Contoso",
            kind="guest",
            username="jdoe_contoso.com#EXT#",
            home_domain="contoso.com",
        ),
        _account(
            "ddisabled", enabled=False, last_logon=when(400), display_name="<b>Ddis'abled\u202e"
        ),
    ]
    accounts += [_account(f"bulk{n:04d}", department="Bulk", last_logon=None) for n in range(bulk)]
    # Niche RMS's service principal owns Pronto's: a principal, so an account too (Graph gives
    # a service principal no UPN, mail, company, sign-in or creation time)
    accounts.append(
        {
            **dict.fromkeys(("upn", "mail", "company", "department", "created"), None),
            **dict.fromkeys(("last_logon", "pwd_last_set"), None),
            "source": SOURCE,
            "account_id": oid("sp-niche"),
            "username": "Niche RMS",
            "display_name": "Niche RMS",
            "description": "Niche RMS description",
            "kind": "service",
            "enabled": True,
            "sid_history": [],
            "privileged": False,
            "app_tenant": TENANT,
        }
    )
    acc = conform(pl.DataFrame(accounts, schema=ACCOUNTS_SCHEMA), ACCOUNTS_SCHEMA)

    def group(name: str, **over: object) -> dict[str, object]:
        row: dict[str, object] = {
            "source": SOURCE,
            "group_id": oid(name),
            "sid": None,
            "name": name,
            "dn": None,
            "description": f"{name} description",
            "scope": "cloud",
            "kind": "security",
            "managed_by": None,
            "privileged": False,
            "owners": [],
            "mastered": "cloud",
            "membership_rule": None,
            "role_assignable": False,
            "mail_enabled": over.get("kind") in ("m365", "distribution"),
        }
        row.update(over)
        return row

    #: not Graph groups: the connector knows none of these Graph group properties for them
    unknown = {"membership_rule": None, "role_assignable": None, "mail_enabled": None}
    groups = [
        group("WMP-RES-1", sid=f"{dom}-2101", scope=None, mastered="ad"),
        group("WMP-Cloud", sid="S-1-12-1-1-2-3-4", owners=[oid("bcloud")]),
        group("Shared-Team", kind="m365", owners=sorted([oid("cwarks"), oid("awilliams")])),
        group("Role-Admins", privileged=True, role_assignable=True),
        group("All-Bulk", membership_rule='(user.department -eq "Bulk")'),  # dynamic
        group("Newsletter", kind="distribution", description=None),
        # not Graph groups: the enterprise application holding app-role assignments (owned by
        # awilliams), one with owners only (a user and another service principal) and the
        # administrative unit scoping awilliams' Helpdesk Administrator role
        group(
            "Niche RMS",
            group_id=oid("sp-niche"),
            kind="app-role",
            owners=[oid("awilliams")],
            **unknown,
        ),
        group(
            "Pronto",
            group_id=oid("sp-pronto"),
            kind="app-role",
            owners=sorted([oid("cwarks"), oid("sp-niche")]),
            **unknown,
        ),
        group("WMP-AU-Response", group_id=AU_ID, kind="administrative-unit", **unknown),
    ]
    grp = conform(pl.DataFrame(groups, schema=GROUPS_SCHEMA), GROUPS_SCHEMA)

    def edge(g: str, m: str, kind: str = "account") -> dict[str, str]:
        return {
            "source": SOURCE,
            "group_id": oid(g),
            "member_id": oid(m),
            "member_kind": kind,
            "via": "graph",
        }

    edges = [
        edge("WMP-RES-1", "awilliams"),
        edge("WMP-RES-1", "cwarks"),
        edge("WMP-RES-1", "WMP-Cloud", "group"),
        edge("WMP-Cloud", "bcloud"),
        edge("WMP-Cloud", "jdoe_contoso.com#EXT#"),
        edge("WMP-Cloud", "contact-1", "foreign"),
        edge("Shared-Team", "cwarks"),
        edge("Shared-Team", "jdoe_contoso.com#EXT#"),
        edge("Role-Admins", "awilliams"),
        edge("Newsletter", "ddisabled"),
        {**edge("WMP-AU-Response", "ddisabled"), "group_id": AU_ID},
        {**edge("WMP-AU-Response", "bcloud"), "group_id": AU_ID},
        {**edge("WMP-AU-Response", "WMP-Cloud", "group"), "group_id": AU_ID},
    ]
    edges += [edge("All-Bulk", f"bulk{n:04d}") for n in range(bulk)]
    mem = conform(pl.DataFrame(edges, schema=MEMBERSHIPS_SCHEMA), MEMBERSHIPS_SCHEMA)

    def grant(principal: str, resource: str, kind: str, right: str) -> dict[str, str]:
        return {
            "source": SOURCE,
            "principal_id": principal,
            "resource_id": resource,
            "resource_kind": kind,
            "right": right,
        }

    grants = [
        grant(oid("cwarks"), GLOBAL_ADMIN, "directory-role", "Global Administrator @ /"),
        grant(oid("bcloud"), USER_ADMIN, "directory-role", "User Administrator @ / (eligible)"),
        grant(
            oid("Role-Admins"),
            PRIV_ROLE_ADMIN,
            "directory-role",
            "Privileged Role Administrator @ /",
        ),
        grant(oid("awilliams"), HELPDESK_ADMIN, "directory-role", f"Helpdesk Administrator @ {AU}"),
        grant(oid("ddisabled"), DIRECTORY_READERS, "directory-role", "Directory Readers @ /"),
        grant(oid("awilliams"), oid("sp-niche"), "app-role", "Niche RMS: Investigator"),
        grant(oid("WMP-Cloud"), oid("sp-niche"), "app-role", "Niche RMS: default access"),
        grant(oid("bcloud"), oid("WMP-Cloud"), "ownership", "owner"),
        grant(oid("cwarks"), oid("Shared-Team"), "ownership", "owner"),
        grant(oid("awilliams"), oid("Shared-Team"), "ownership", "owner"),
        grant(oid("awilliams"), oid("sp-niche"), "ownership", "owner"),
        grant(oid("cwarks"), oid("sp-pronto"), "ownership", "owner"),
        grant(oid("sp-niche"), oid("sp-pronto"), "ownership", "owner"),
    ]
    gra = conform(pl.DataFrame(grants, schema=GRANTS_SCHEMA), GRANTS_SCHEMA)
    return {"accounts": acc, "groups": grp, "memberships": mem, "grants": gra}


SORT_KEYS = {
    "accounts": ["account_id"],
    "groups": ["group_id"],
    "memberships": ["group_id", "member_id"],
    "grants": ["resource_kind", "resource_id", "principal_id", "right"],
}


def canonical(tables: dict[str, pl.DataFrame], name: str) -> pl.DataFrame:
    return tables[name].sort(SORT_KEYS[name])


def serve_sample(emu: Any, tables: Mapping[str, pl.DataFrame]) -> Any:
    """The sample tenant ``tables`` served by ``emu`` (its hidden-membership group hidden) to
    the read app with :data:`SAMPLE_ROLES` (contacts and hidden membership need
    OrgContact.Read.All and Member.Read.Hidden); the emulator's tenant."""
    from accessaudit.graphemu import tenant_from_sample
    from accessaudit.sample.entra import TENANT_DOMAIN, TENANT_ID
    from accessaudit.sample.entra_messy import hidden_membership

    tenant = emu.add_tenant(
        tenant_from_sample(
            dict(tables),
            tenant_id=TENANT_ID,
            domain=TENANT_DOMAIN,
            hidden_membership=hidden_membership(tables),
        )
    )
    emu.register_app(TENANT_ID, CLIENT_ID, secret=SECRET, roles=SAMPLE_ROLES)
    return tenant
