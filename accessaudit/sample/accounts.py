"""The sample's accounts that are not members of staff: admins, contractors, services, computers.

* **admins** (``adm-<force><n>``, in each force's ``OU=Admins``): six of West Mercia, which
  hosts the domain, and two of Warwickshire; the plants put them in the built-in groups
  (:func:`accessaudit.sample.plants_access.plant_privileged`);
* **unattributed contractors** (``temp.contractor<n>`` in ``CN=Users``): no signal names a force
  (:func:`accessaudit.sample.plants_attribution.plant_unattributed`);
* **shared service accounts** (``svc-...`` in the shared-services OU): members of both forces'
  resource groups (:func:`accessaudit.sample.plants_attribution.plant_service_accounts`);
* **computers** (``<prefix>PC<n>$`` in each force's ``OU=Computers``), the forces in turn.

Each kind has its own RID range; the accounts draw their ids, and a recent sign-in, from the
generator's random generator.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from accessaudit.model import ACCOUNTS_SCHEMA, AccountKind
from accessaudit.sample.builder import DOMAIN, FORCES, SHARED_OU, SOURCE, USERS_CN, guids


def _simple_accounts(
    rng: np.random.Generator,
    rows: dict[str, list[Any]],
    domain_sid: str,
    now: datetime,
    rid_base: int,
) -> pl.DataFrame:
    """Account rows from ``rows`` (columns of equal length), with ids, SIDs from ``rid_base``,
    a sign-in in the last 20 days and the other account columns null."""
    n = len(rows["username"])
    df = pl.DataFrame(rows).with_columns(
        source=pl.lit(SOURCE),
        account_id=guids(rng, n),
        sid=pl.concat_str(
            [pl.lit(domain_sid + "-"), (pl.int_range(pl.len()) + rid_base).cast(pl.String)]
        ),
        last_logon=pl.lit(now) - pl.duration(days=pl.lit(pl.Series(rng.integers(0, 20, n)))),
        pwd_last_set=pl.lit(now - timedelta(days=100)),
        created=pl.lit(now - timedelta(days=1000)),
        manager_id=pl.lit(None, pl.String),
        sid_history=pl.lit([], pl.List(pl.String)),
    )
    for col in ACCOUNTS_SCHEMA.names():
        if col not in df.columns:
            df = df.with_columns(pl.lit(None, ACCOUNTS_SCHEMA[col]).alias(col))
    return df


def admin_accounts(
    rng: np.random.Generator, n: dict[str, int], domain_sid: str, now: datetime
) -> pl.DataFrame:
    """``n[force]`` admins of each force (``org`` says which)."""
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "org",
            "username",
            "upn",
            "display_name",
            "mail",
            "employee_id",
            "company",
            "dn",
            "kind",
            "enabled",
            "privileged",
            "department",
        )
    }
    for f in FORCES:
        for i in range(n[f.id]):
            user = f"adm-{f.id}{i:02d}"
            rows["org"].append(f.id)
            rows["username"].append(user)
            rows["upn"].append(user + f.upn_suffix)
            rows["display_name"].append(f"Admin {f.prefix}{i:02d}")
            rows["mail"].append(None)
            rows["employee_id"].append(str(f.employee_base + 900_000 + i))
            rows["company"].append(f.name)
            rows["dn"].append(f"CN={user},OU=Admins,{f.ou}")
            rows["kind"].append(AccountKind.USER.value)
            rows["enabled"].append(True)
            rows["privileged"].append(True)
            rows["department"].append("ICT")
    return _simple_accounts(rng, rows, domain_sid, now, 3_000_000)


def unattributed_accounts(
    rng: np.random.Generator, n: int, domain_sid: str, now: datetime
) -> pl.DataFrame:
    """``n`` contractors with no signal of a force."""
    users = [f"temp.contractor{i}" for i in range(n)]
    rows: dict[str, list[Any]] = {
        "username": users,
        "upn": [f"{u}@{DOMAIN}" for u in users],
        "display_name": [f"Contractor {i}" for i in range(n)],
        "dn": [f"CN={u},{USERS_CN}" for u in users],
        "kind": [AccountKind.USER.value] * n,
        "enabled": [True] * n,
        "privileged": [False] * n,
    }
    return _simple_accounts(rng, rows, domain_sid, now, 3_100_000)


def service_accounts(
    rng: np.random.Generator, n: int, domain_sid: str, now: datetime
) -> pl.DataFrame:
    """``n`` shared service accounts in the shared-services OU."""
    names = ["backup", "sql", "print", "scan", "av", "sccm", "wsus", "mdm", "itsm", "cctv"]
    users = [f"svc-{names[i % len(names)]}{i:02d}" for i in range(n)]
    rows: dict[str, list[Any]] = {
        "username": users,
        "upn": [f"{u}@{DOMAIN}" for u in users],
        "display_name": [f"Service {u}" for u in users],
        "description": ["Shared service account, hosted by West Mercia"] * n,
        "dn": [f"CN={u},OU=Service Accounts,{SHARED_OU}" for u in users],
        "kind": [AccountKind.SERVICE.value] * n,
        "enabled": [True] * n,
        "privileged": [False] * n,
    }
    return _simple_accounts(rng, rows, domain_sid, now, 3_200_000)


def computer_accounts(
    rng: np.random.Generator, n: int, domain_sid: str, now: datetime
) -> pl.DataFrame:
    """``n`` computers, the forces in turn."""
    forces = list(itertools.islice(itertools.cycle(FORCES), n))
    users = [f"{f.prefix}PC{i:05d}$" for i, f in enumerate(forces)]
    rows: dict[str, list[Any]] = {
        "username": users,
        "display_name": [u.rstrip("$") for u in users],
        "dn": [
            f"CN={u.rstrip('$')},OU=Computers,{f.ou}" for u, f in zip(users, forces, strict=True)
        ],
        "kind": [AccountKind.COMPUTER.value] * n,
        "enabled": [True] * n,
        "privileged": [False] * n,
    }
    return _simple_accounts(rng, rows, domain_sid, now, 4_000_000)
