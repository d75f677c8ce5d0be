"""The accounts of the sample's Entra tenant: synced copies, a break-glass admin and guests.

* every member of staff and admin of the directory, synced from AD: same SID, DN and username,
  a new id; no description, manager or sIDHistory (Graph does not give them), never marked
  privileged by AD (the tenant's roles decide);
* a cloud-only break-glass administrator of West Mercia, which hosts the tenant;
* Warwickshire people invited back as B2B guests (:data:`~accessaudit.sample.entra.GUESTS`:
  ``#EXT#`` UPN, home mail, ``company`` Warwickshire); the seventh has never signed in since
  its invitation 400 days ago: dormant, because the tenant records sign-ins (Entra ID P1, read
  with signInActivity), so a missing one is "never", not "unknown".

No truth rows of their own: the plants of :mod:`accessaudit.sample.entra_cross` and
:mod:`accessaudit.sample.entra_own` give these accounts their access.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from accessaudit.model import AccountKind
from accessaudit.sample.builder import FORCES, guids
from accessaudit.sample.entra import ENTRA_SOURCE, GUESTS, TENANT_DOMAIN, uuids


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
