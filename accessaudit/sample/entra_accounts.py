"""The accounts of the sample's Entra tenant: synced copies, a break-glass admin and guests.

* every member of staff and admin of the directory, synced from AD: same SID, DN and username,
  a new id; no description, manager or sIDHistory (Graph does not give them), never marked
  privileged by AD (the tenant's roles decide);
* a cloud-only break-glass administrator of West Mercia, which hosts the tenant;
* Warwickshire people invited back as B2B guests (:data:`~accessaudit.sample.entra.GUESTS`:
  ``#EXT#`` UPN, home mail, ``company`` Warwickshire); the seventh
  has never signed in since its invitation 400 days ago: dormant, because the tenant records
  sign-ins (Entra ID P1, read with signInActivity), so a missing one is "never", not "unknown".

The guests' ``home_domain`` is their mail's domain, as the connector reads it. Drawn last
(:func:`outside_accounts`): two more Warwickshire guests whose only signal is their home domain
(no mail, no company): one in its ``#EXT#`` UPN, one (its UPN renamed) only in its federated
identity's issuer; and Warwickshire's automation service principal (kind ``service``, attributed
by its name).

No truth rows of their own: the plants of :mod:`accessaudit.sample.entra_cross` and
:mod:`accessaudit.sample.entra_own` give these accounts their access.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import numpy as np
import polars as pl

from accessaudit.model import AccountKind
from accessaudit.sample.builder import FORCES, guids
from accessaudit.sample.entra import ENTRA_SOURCE, GUESTS, TENANT_DOMAIN, TENANT_ID, uuids


@dataclass(frozen=True)
class TenantAccounts:
    """The tenant's accounts, as the plants need them."""

    synced: pl.DataFrame  # the AD accounts' copies
    cloud: pl.DataFrame  # the break-glass admin and the guests
    ad_ids: pl.Series  # the AD id of each synced copy, in the order of ``synced``
    break_glass: str
    guests: list[str]  # the guests' ids, in the order of GUESTS


def tenant_accounts(
    gen: np.random.Generator,
    people: pl.DataFrame,
    admins: pl.DataFrame,
    accounts: pl.DataFrame,
    now: datetime,
) -> TenantAccounts:
    """The synced copies of ``people`` and ``admins`` (rows of ``accounts``), the break-glass
    admin and the guests."""
    synced_ids = pl.concat([people["account_id"], admins["account_id"]])
    src = accounts.filter(pl.col("account_id").is_in(synced_ids.implode()))
    copy_ids = guids(gen, src.height)
    synced = src.with_columns(
        source=pl.lit(ENTRA_SOURCE),
        account_id=copy_ids,
        description=pl.lit(None, pl.String),
        manager_id=pl.lit(None, pl.String),
        sid_history=pl.lit([], pl.List(pl.String)),
        privileged=pl.lit(False),
    )
    bg_id, *guest_ids = uuids(gen, 1 + len(GUESTS))
    return TenantAccounts(
        synced, _cloud_accounts(bg_id, guest_ids, now), src["account_id"], bg_id, guest_ids
    )


def _guest_sign_in(i: int, now: datetime) -> datetime | None:
    """The ``i``-th guest's last sign-in: the seventh never (the tenant records sign-ins, so it
    is dormant since its invitation 400 days ago); the others lately."""
    return None if i == 6 else now - timedelta(days=2 + i)


def _cloud_accounts(bg_id: str, guest_ids: list[str], now: datetime) -> pl.DataFrame:
    """The break-glass admin and the guests, cloud-only accounts."""
    wmp, warks = FORCES
    locals_ = [
        f"{f.lower()}.{ln.lower()}.g{i}".replace("ë", "e") for i, (f, ln) in enumerate(GUESTS)
    ]
    guests = pl.DataFrame(
        {
            "account_id": guest_ids,
            "username": [f"{lp}_warwickshire.police.uk#EXT#" for lp in locals_],
            "upn": [f"{lp}_warwickshire.police.uk#EXT#@{TENANT_DOMAIN}" for lp in locals_],
            "display_name": [f"{f} {ln} (Warwickshire)" for f, ln in GUESTS],
            "mail": [f"{lp}@{warks.mail_domain}" for lp in locals_],
            "company": [warks.name] * len(GUESTS),
            "home_domain": [warks.mail_domain] * len(GUESTS),
            "kind": [AccountKind.GUEST.value] * len(GUESTS),
            "last_logon": [_guest_sign_in(i, now) for i in range(len(GUESTS))],
        }
    )
    cloud_only = pl.DataFrame(
        {
            "account_id": [bg_id],
            "username": ["bg-admin01"],
            "upn": [f"bg-admin01@{TENANT_DOMAIN}"],
            "display_name": ["Break-glass administrator 01"],
            "company": [wmp.name],
            "kind": [AccountKind.USER.value],
            "last_logon": [now - timedelta(days=10)],
        }
    )
    return pl.concat([cloud_only, guests], how="diagonal").with_columns(
        source=pl.lit(ENTRA_SOURCE),
        enabled=pl.lit(True),
        created=pl.lit(now - timedelta(days=400)),
        pwd_last_set=pl.lit(now - timedelta(days=60)),
        sid_history=pl.lit([], pl.List(pl.String)),
        privileged=pl.lit(False),
    )


@dataclass(frozen=True)
class OutsideAccounts:
    """Principals attributed only by what Graph says of their home: their rows and ids."""

    rows: pl.DataFrame
    guest_upn: str  # home domain only in the #EXT# UPN
    guest_issuer: str  # home domain only in the federated identity's issuer
    automation: str  # Warwickshire's service principal


#: Warwickshire's automation service principal (its name carries the force's prefix).
AUTOMATION: Final = "WARKS-Automation-Sync"


def outside_accounts(gen: np.random.Generator, now: datetime) -> OutsideAccounts:
    """Two Warwickshire guests without mail or company, and Warwickshire's automation service
    principal (one draw of three ids)."""
    warks = FORCES[1]
    upn_id, issuer_id, sp_id = uuids(gen, 3)
    home = warks.mail_domain
    guests = pl.DataFrame(
        {
            "account_id": [upn_id, issuer_id],
            "username": [f"alys.morgan_{home}#EXT#", "rhys.bevan"],
            "upn": [f"alys.morgan_{home}#EXT#@{TENANT_DOMAIN}", f"rhys.bevan@{TENANT_DOMAIN}"],
            "display_name": ["Alys Morgan", "Rhys Bevan"],
            "home_domain": [home, home],
            "kind": [AccountKind.GUEST.value] * 2,
            "last_logon": [now - timedelta(days=4), now - timedelta(days=9)],
            "created": [now - timedelta(days=200)] * 2,
            "pwd_last_set": [now - timedelta(days=60)] * 2,
        }
    )
    # Graph gives a service principal no UPN, mail, sign-in or creation time
    automation = pl.DataFrame(
        {
            "account_id": [sp_id],
            "username": [AUTOMATION],
            "display_name": [AUTOMATION],
            "kind": [AccountKind.SERVICE.value],
            "app_tenant": [TENANT_ID],
        }
    )
    rows = pl.concat([guests, automation], how="diagonal").with_columns(
        source=pl.lit(ENTRA_SOURCE),
        enabled=pl.lit(True),
        sid_history=pl.lit([], pl.List(pl.String)),
        privileged=pl.lit(False),
    )
    return OutsideAccounts(rows, upn_id, issuer_id, sp_id)
