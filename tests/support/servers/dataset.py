"""A small hand-made canonical dataset that exercises every hard case of directory collection.

Shaped like ``accessaudit.sample.directory`` (same tables, same DN base ``DC=alliance,DC=local``),
but small enough to seed in seconds: OUs per force, a hostile name with ``*()\\``, nested groups
(and a cycle), a group of 1,501 members, a non-default primary group, a foreign security principal,
sIDHistory, a manager, a managed group, a disabled account, a computer and a service account;
account state: a password that never expires, one that must be set (pwdLastSet 0), an account
with a password of its own (the loader's others have none: PASSWD_NOTREQD), an expiry date in
the future and one in the past (the account is then disabled).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from accessaudit.model import (
    ACCOUNTS_SCHEMA,
    GRANTS_SCHEMA,
    GROUPS_SCHEMA,
    MEMBERSHIPS_SCHEMA,
    conform,
    empty,
)

BASE_DN = "DC=alliance,DC=local"
SOURCE = "ad:alliance.local"
DOMAIN_SID = "S-1-5-21-1000000001-2000000002-3000000003"
FOREIGN_SID = "S-1-5-21-1111111111-2222222222-3333333333-1234"
OLD_SID = "S-1-5-21-900000009-800000008-700000007-4321"
HOSTILE_CN = "Evil *()\\ User"  # filter metacharacters; no NUL (AD refuses NUL in strings)
BIG = 1501
NOW = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass
class Dataset:
    tables: dict[str, pl.DataFrame]
    domain_sid: str
    now: datetime


def _dn_escape(value: str) -> str:
    out = value.replace("\\", "\\\\")
    for ch in (",", "+", '"', "<", ">", ";", "="):
        out = out.replace(ch, "\\" + ch)
    return out


def _id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"accessaudit-test:{name}"))


def small() -> Dataset:
    """The dataset; ids are deterministic (uuid5 of the name)."""
    rid = iter(range(2000, 100000))
    accounts: list[dict[str, object]] = []
    groups: list[dict[str, object]] = []
    edges: list[tuple[str, str, str, str]] = []

    def account(
        username: str, parent: str, *, cn: str | None = None, kind: str = "user", **extra: object
    ) -> str:
        aid = _id("a:" + username)
        row: dict[str, object] = {
            "source": SOURCE,
            "account_id": aid,
            "sid": f"{DOMAIN_SID}-{next(rid)}",
            "username": username,
            "upn": None if kind == "computer" else f"{username}@alliance.local",
            "display_name": cn or username,
            "dn": f"CN={_dn_escape(cn or username.rstrip('$'))},{parent}",
            "kind": kind,
            "enabled": True,
            "last_logon": NOW - timedelta(days=3),
            "pwd_last_set": NOW - timedelta(days=20, microseconds=7),
            "created": NOW,
            "sid_history": [],
            "privileged": False,
        }
        row.update(extra)
        accounts.append(row)
        return aid

    def group(
        name: str, parent: str, *, sid: str | None = None, scope: str = "global", **extra: object
    ) -> str:
        gid = _id("g:" + name)
        row: dict[str, object] = {
            "source": SOURCE,
            "group_id": gid,
            "sid": sid or f"{DOMAIN_SID}-{next(rid)}",
            "name": name,
            "dn": f"CN={_dn_escape(name)},{parent}",
            "scope": scope,
            "kind": "security",
            "privileged": False,
            "owners": [],
            "mastered": "ad",
        }
        row.update(extra)
        groups.append(row)
        return gid

    force_a = f"OU=Force A,{BASE_DN}"
    force_b = f"OU=Force B,{BASE_DN}"
    users_a, users_b = f"OU=Users,{force_a}", f"OU=Users,{force_b}"
    groups_a = f"OU=Groups,{force_a}"
    bulk = f"OU=Bulk,{force_b}"
    users_cn = f"CN=Users,{BASE_DN}"

    domain_users = group("Domain Users", users_cn, sid=f"{DOMAIN_SID}-513")
    domain_computers = group("Domain Computers", users_cn, sid=f"{DOMAIN_SID}-515")
    domain_admins = group("Domain Admins", users_cn, sid=f"{DOMAIN_SID}-512", privileged=True)
    administrators = group(
        "Administrators",
        f"CN=Builtin,{BASE_DN}",
        sid="S-1-5-32-544",
        scope="builtin",
        privileged=True,
    )
    big = group("GB-All-Staff", f"OU=Groups,{force_b}", scope="universal")
    nested1 = group("GA-Nested-1", groups_a, description="level 1")
    nested2 = group("GA-Nested-2", groups_a, scope="universal", description="level 2")
    hostile_group = group("Finance (UK) *\\ Team", groups_a, description="*)(objectClass=*)")
    primary = group("GA-Primary", groups_a)
    dist = group("GA-Newsletter", groups_a, kind="distribution", scope="universal")
    cyc_a = group("GA-Cycle-A", groups_a)
    cyc_b = group("GA-Cycle-B", groups_a)

    bob = account(
        "bob",
        users_a,
        cn="Bob Baker",
        mail="bob@a.example",
        company="Force A",
        password_not_required=False,  # the loader gives him a password
        pwd_last_set=NOW - timedelta(days=30),
        account_expires=NOW + timedelta(days=365),
    )
    alice = account(
        "alice",
        users_a,
        cn="Alice Ash",
        mail="alice@a.example",
        company="Force A",
        department="CID",
        employee_id="1000001",
        manager_id=bob,
        password_never_expires=True,
    )
    hostile = account(
        "evil1",
        users_a,
        cn=HOSTILE_CN,
        description="<script>window.__xss=1</script>",
        company="Force A",
    )
    disabled = account("carol", users_a, cn="Carol Gone", enabled=False, last_logon=None)
    migrated = account("dave", users_b, cn="Dave Moved", sid_history=[OLD_SID], company="Force B")
    # pwdLastSet 0: must set a password at next logon, so the password counts as expired
    admin = account("adm-erin", users_a, cn="Erin Admin", privileged=True, pwd_last_set=None)
    expired = account(
        "hank", users_b, cn="Hank Left", company="Force B", account_expires=NOW - timedelta(days=2),
        enabled=False,  # accountExpires has passed: disabled although userAccountControl is not
    )  # fmt: skip
    pg_user = account("frank", users_b, cn="Frank Primary", company="Force B")
    svc = account("svc-backup", f"OU=Service,{force_a}", kind="service", description="backup")
    pc = account("PC0001$", f"OU=Computers,{force_a}", kind="computer")
    managed = group("GA-Managed", groups_a, managed_by=bob, owners=[bob])
    edges.append((managed, svc, "account", "member"))
    bulk_ids = [account(f"bulk{i:04d}", bulk, company="Force B") for i in range(BIG - 1)]

    for g in (nested1, hostile_group, cyc_a):
        edges.append((g, alice, "account", "member"))
    edges.append((hostile_group, hostile, "account", "member"))
    edges.append((nested1, FOREIGN_SID, "foreign", "member"))
    edges.append((nested2, nested1, "group", "member"))
    edges.append((administrators, domain_admins, "group", "member"))
    edges.append((domain_admins, admin, "account", "member"))
    edges.append((dist, bob, "account", "member"))
    edges.append((cyc_b, cyc_a, "group", "member"))
    edges.append((cyc_a, cyc_b, "group", "member"))
    edges.append((nested2, migrated, "account", "member"))
    edges.append((big, migrated, "account", "member"))
    edges.extend((big, b, "account", "member") for b in bulk_ids)
    for a in (bob, alice, hostile, disabled, migrated, admin, expired, svc, *bulk_ids):
        edges.append((domain_users, a, "account", "primaryGroupID"))
    edges.append((primary, pg_user, "account", "primaryGroupID"))
    edges.append((domain_computers, pc, "account", "primaryGroupID"))

    acc = pl.DataFrame(accounts, infer_schema_length=None)
    grp = pl.DataFrame(groups, infer_schema_length=None)
    mem = pl.DataFrame(
        edges, schema=["group_id", "member_id", "member_kind", "via"], orient="row"
    ).with_columns(source=pl.lit(SOURCE))
    tables = {
        "accounts": conform(acc, ACCOUNTS_SCHEMA),
        "groups": conform(grp, GROUPS_SCHEMA),
        "memberships": conform(mem, MEMBERSHIPS_SCHEMA),
        "grants": empty(GRANTS_SCHEMA),
    }
    return Dataset(tables=tables, domain_sid=DOMAIN_SID, now=NOW)
