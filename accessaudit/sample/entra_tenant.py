"""The sample's Entra tenant, built in the order of its random draws: :func:`plant_entra`.

The tenant's shape and constants are in :mod:`accessaudit.sample.entra`; its accounts in
:mod:`accessaudit.sample.entra_accounts`; its legitimate groups and rights in
:mod:`accessaudit.sample.entra_own`; its cross-force plants, with the truth rows each records, in
:mod:`accessaudit.sample.entra_cross`. It draws from its own random generator, so the directory
is the same with or without it.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from accessaudit.sample.builder import Builder
from accessaudit.sample.entra import Planter, Tenant, tenant_tables
from accessaudit.sample.entra_accounts import outside_accounts, tenant_accounts
from accessaudit.sample.entra_cross import (
    plant_admins,
    plant_app_owner,
    plant_app_roles,
    plant_dynamic_group,
    plant_guests,
    plant_helpdesk_group,
    plant_outsiders,
    plant_team_owner,
    plant_unit_group,
    plant_unit_scopes,
)
from accessaudit.sample.entra_messy import plant_hidden, plant_messy
from accessaudit.sample.entra_own import own_all_staff, own_app_owners, own_groups, own_rights


def plant_entra(
    b: Builder,
    people: pl.DataFrame,
    admins: pl.DataFrame,
    accounts: pl.DataFrame,
    *,
    gen: np.random.Generator,
    now: datetime,
) -> dict[str, pl.DataFrame]:
    """The tenant's canonical tables; its truth rows are recorded on ``b`` as they are planted.

    ``accounts`` are the directory's accounts, of which ``people`` and ``admins`` are synced.
    """
    users = tenant_accounts(gen, people, admins, accounts, now)
    p = Planter(b, Tenant(gen), people, users.ad_ids, users.synced["account_id"])
    own_groups(p)
    wmp_admins = p.copies(admins.filter(pl.col("org") == "wmp")["account_id"])
    warks_admins = p.copies(admins.filter(pl.col("org") == "warks")["account_id"])
    helpdesk = own_rights(p, wmp_admins, users.break_glass, users.guests)
    plant_guests(p, users.guests)
    plant_admins(p, warks_admins)
    plant_helpdesk_group(p, helpdesk)
    plant_unit_scopes(p)
    plant_app_roles(p, users.guests)
    plant_team_owner(p)
    plant_dynamic_group(p)
    own_all_staff(p)
    own_app_owners(p)
    plant_app_owner(p)
    outside = outside_accounts(gen, now)
    plant_outsiders(p, outside)
    plant_unit_group(p)
    plant_messy(p)  # every draw before it stays as it was
    plant_hidden(p, users.guests)  # last
    cloud = pl.concat([users.cloud, outside.rows], how="diagonal_relaxed")
    return tenant_tables(p.t, users.synced, cloud)
