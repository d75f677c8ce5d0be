"""The sample's Entra ID tenant: the shared cloud directory both forces still sign in to.

Shaped exactly as :mod:`accessaudit.connectors.entra.tables` maps Graph objects, so the Graph
emulator can serve it (source ``entra:<tenant-id>``):

* **users**: every member of staff and admin synced from AD (``sid`` = onPremisesSecurityIdentifier,
  ``dn`` = onPremisesDistinguishedName, ``username`` = onPremisesSamAccountName; no description,
  manager or sIDHistory: Graph does not give them), a cloud-only break-glass admin, and
  Warwickshire people invited back as B2B guests (``kind`` guest, ``#EXT#`` UPN, home mail);
* **groups**, all cloud-only (``mastered`` "cloud", ``scope`` "cloud"): Microsoft 365 teams, one
  role-assignable admin group per force, an administrative unit per force (kind
  ``administrative-unit``, its members as memberships) and an enterprise application per force
  (kind ``app-role``: the service principal, attributed by its name like any group, with its
  owners), an all-staff group of West Mercia (over 999 members from about 1,800 accounts: more
  than one page of members) and a dynamic group (``membership_rule``);
* **grants**: directory roles ("<role> @ <directoryScopeId>[ (eligible)]", role id = template
  id), app-role assignments ("<app>: <role>") and ownership ("owner"); ``privileged`` marks the
  holders of roles Microsoft labels privileged.

This module holds the tenant's constants and names, :class:`Tenant` (its rows as they are
built), :class:`Planter` (what the plants share: picks of staff, truth and legitimate rows) and
:func:`tenant_tables`. The accounts are built by :mod:`accessaudit.sample.entra_accounts`, the
legitimate groups and rights by :mod:`accessaudit.sample.entra_own`, the cross-force plants by
:mod:`accessaudit.sample.entra_cross`, all in order by
:func:`accessaudit.sample.entra_tenant.plant_entra`.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import polars as pl

from accessaudit.model import (
    ACCOUNTS_SCHEMA,
    GRANTS_SCHEMA,
    GROUPS_SCHEMA,
    MEMBERSHIPS_SCHEMA,
    AccountKind,
    GroupKind,
    MemberKind,
    ResourceKind,
    Via,
    conform,
)
from accessaudit.sample.builder import FORCES, Builder

TENANT_ID: Final = "5f1c2b7e-8d4a-4c3e-9a61-2b7d0e9c4f18"
ENTRA_SOURCE: Final = f"entra:{TENANT_ID}"
TENANT_DOMAIN: Final = "alliancepolice.onmicrosoft.com"

#: Built-in role template ids (learn.microsoft.com/entra/identity/role-based-access-control/
#: permissions-reference); for built-in roles the role definition id is the template id.
ROLES: Final = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "Helpdesk Administrator": "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Security Reader": "5d6b6bb7-de71-4623-b4af-96380a352509",
    "Groups Administrator": "fdd7a751-b60b-444a-984c-02652fe8fa1c",
    "Directory Readers": "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
}
#: The roles of :data:`ROLES` Microsoft does not label privileged (permissions-reference).
UNPRIVILEGED_ROLES: Final = frozenset({ROLES["Groups Administrator"], ROLES["Directory Readers"]})
#: Warwickshire people invited back after the split (first, last).
GUESTS: Final = (
    ("Ffion", "Lloyd"),
    ("Tomasz", "Nowak"),
    ("Priya", "Singh"),
    ("Gareth", "Prys"),
    ("Mei", "Chen"),
    ("Aoife", "Walker"),
    ("Callum", "Hughes"),
    ("Zoë", "Parry"),
)
#: Each force's Microsoft 365 teams.
TEAMS: Final = {
    "wmp": ("WMP-TEAM-Firearms", "WMP-TEAM-Custody", "WMP-TEAM-Intelligence"),
    "warks": ("WARKS-TEAM-Safeguarding", "WARKS-TEAM-Roads"),
}
#: The role-assignable groups: West Mercia's tenant admins, Warwickshire's helpdesk.
RA_WMP: Final = "WMP-RA-Tenant-Admins"
RA_WARKS: Final = "WARKS-RA-Helpdesk"
#: Each force's administrative unit.
ADMIN_UNITS: Final = {f.id: f"{f.prefix}AU-Staff" for f in FORCES}
#: The enterprise applications (service principals) of West Mercia and Warwickshire.
NICHE: Final = "WMP-Niche-Mobile"
ATHENA: Final = "WARKS-Athena-Portal"


def uuids(gen: np.random.Generator, n: int) -> list[str]:
    """``n`` random ids in canonical form (one draw of ``16 * n`` bytes)."""
    raw = gen.bytes(16 * n).hex()
    return [
        f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        for h in (raw[i * 32 : (i + 1) * 32] for i in range(n))
    ]


class Tenant:
    """Collects the tenant's groups, edges and grants with their ids."""

    def __init__(self, gen: np.random.Generator) -> None:
        self.gen = gen
        self.groups: list[dict[str, Any]] = []
        self.ids: dict[str, str] = {}
        self.edges: list[pl.DataFrame] = []
        self.grants: list[tuple[str, str, str, str]] = []

    def group(
        self,
        name: str,
        kind: str,
        *,
        privileged: bool = False,
        description: str | None = None,
        rule: str | None = None,
    ) -> str:
        """A cloud group (``rule``: a dynamic group's membershipRule); application and unit
        rows carry no Graph group properties (null), as the connector maps them."""
        gid = uuids(self.gen, 1)[0]
        sid = None
        graph_group = kind not in (GroupKind.APP_ROLE.value, GroupKind.ADMIN_UNIT.value)
        if kind in (GroupKind.SECURITY.value, GroupKind.M365.value):
            # a cloud group's securityIdentifier (S-1-12-1-...: four 32-bit parts of its id)
            parts = self.gen.integers(0, 2**32, size=4)
            sid = "S-1-12-1-" + "-".join(str(int(p)) for p in parts)
        self.groups.append(
            {
                "source": ENTRA_SOURCE,
                "group_id": gid,
                "sid": sid,
                "name": name,
                "description": description,
                "scope": "cloud",
                "kind": kind,
                "privileged": privileged,
                "owners": [],
                "mastered": "cloud",
                "membership_rule": rule,
                "role_assignable": privileged if graph_group else None,
                "mail_enabled": kind == GroupKind.M365.value if graph_group else None,
            }
        )
        self.ids[name] = gid
        return gid

    def members(self, group: str, ids: pl.Series | list[str]) -> None:
        """Members (accounts or groups, by id) of ``group``."""
        self.edges.append(
            pl.DataFrame({"member_id": list(ids)}, schema={"member_id": pl.String}).with_columns(
                group_id=pl.lit(self.ids[group])
            )
        )

    def owner(self, group: str, owner_id: str) -> None:
        """An owner of ``group`` (or of an application's service principal)."""
        row = next(g for g in self.groups if g["name"] == group)
        row["owners"] = sorted({*row["owners"], owner_id})
        self.grants.append((owner_id, row["group_id"], ResourceKind.OWNERSHIP.value, "owner"))

    def role(self, principal: str, role: str, scope: str = "/", *, eligible: bool = False) -> str:
        """A directory role of ``principal`` at ``scope``; return the grant's right."""
        right = f"{role} @ {scope}" + (" (eligible)" if eligible else "")
        self.grants.append((principal, ROLES[role], ResourceKind.DIRECTORY_ROLE.value, right))
        return right

    def app_role(self, principal: str, app: str, role: str) -> str:
        """An app role of ``app`` assigned to ``principal``; return the grant's right."""
        right = f"{app}: {role}"
        self.grants.append((principal, self.ids[app], ResourceKind.APP_ROLE.value, right))
        return right


class Planter:
    """What the tenant's plants share: the tenant being built (``t``), the builder recording their
    truth and legitimate rows (``b``), the Entra ids of synced AD accounts and the active staff
    (never movers) of each force they pick from, all drawing from the tenant's generator."""

    def __init__(
        self, b: Builder, t: Tenant, people: pl.DataFrame, ad_ids: pl.Series, entra_ids: pl.Series
    ) -> None:
        self.b = b
        self.t = t
        self.gen = t.gen
        self._ad_ids = ad_ids
        self._entra_ids = entra_ids
        active = pl.col("inactive_u") >= 0.08
        self.staff = {
            f.id: people.filter((pl.col("org") == f.id) & ~pl.col("mover") & active)["account_id"]
            for f in FORCES
        }
        self.taken: set[str] = set()

    def copies(self, ad_ids: pl.Series | list[str]) -> list[str]:
        """The Entra ids of the synced copies of a few planted AD accounts."""
        ids = pl.Series(list(ad_ids), dtype=pl.String)
        return ids.replace_strict(self._ad_ids, self._entra_ids).to_list()

    def some(self, org: str, n: int) -> pl.Series:
        """``n`` active staff of ``org`` (all, if fewer) for a legitimate case: any of them."""
        pool = self.staff[org]
        chosen: pl.Series = pool[
            self.gen.choice(pool.len(), size=min(n, pool.len()), replace=False).tolist()
        ]
        return chosen

    def pick(self, org: str, n: int) -> pl.Series:
        """``n`` active staff of ``org`` for a plant, distinct from every other plant here."""
        pool = self.staff[org].filter(~self.staff[org].is_in(self.taken))
        chosen: pl.Series = pool[self.gen.choice(pool.len(), size=n, replace=False).tolist()]
        self.taken.update(chosen.to_list())
        return chosen

    def allow(self, kind: str, reason: str, **cols: Any) -> None:
        """Legitimate rows (:mod:`accessaudit.sample.legit`) by ids: columns of equal length, or
        scalars."""
        n = max((len(v) for v in cols.values() if isinstance(v, list)), default=1)
        rows = {k: v if isinstance(v, list) else [v] * n for k, v in cols.items()}
        self.b.allow_ids(kind, reason, pl.DataFrame(rows, schema=dict.fromkeys(rows, pl.String)))

    def truth(self, rule: str, plant: str, **cols: Any) -> None:
        """One truth row by ids."""
        self.b.plant_ids(rule, plant, pl.DataFrame({k: [v] for k, v in cols.items()}))


def tenant_tables(t: Tenant, synced: pl.DataFrame, extra: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The tenant's canonical tables: the ``synced`` and ``extra`` accounts and what ``t``
    collected, with the holders of directory roles marked privileged."""
    grants = conform(
        pl.DataFrame(
            t.grants,
            schema=dict.fromkeys(
                ("principal_id", "resource_id", "resource_kind", "right"), pl.String
            ),
            orient="row",
        )
        .unique()
        .with_columns(source=pl.lit(ENTRA_SOURCE))
        .sort("resource_kind", "resource_id", "principal_id", "right"),
        GRANTS_SCHEMA,
    )
    # Holders (or eligible holders) of the roles Microsoft labels privileged, as the connector
    # marks them (all of ROLES but UNPRIVILEGED_ROLES are).
    holders = grants.filter(
        (pl.col("resource_kind") == ResourceKind.DIRECTORY_ROLE.value)
        & ~pl.col("resource_id").is_in(list(UNPRIVILEGED_ROLES))
    )["principal_id"].implode()
    accounts = conform(pl.concat([synced, extra], how="diagonal_relaxed"), ACCOUNTS_SCHEMA)
    accounts = accounts.with_columns(
        privileged=pl.col("account_id").is_in(holders),
        # the tenant has Entra ID P1 and is read with signInActivity: its users' sign-ins are
        # known; service principals are no users, Graph gives them none (null, as collected)
        activity_tracked=pl.when(pl.col("kind") != AccountKind.SERVICE.value).then(True),
    )
    groups = conform(pl.DataFrame(t.groups), GROUPS_SCHEMA).with_columns(
        privileged=pl.col("privileged") | pl.col("group_id").is_in(holders)
    )
    memberships = conform(
        pl.concat(t.edges)
        .unique(["group_id", "member_id"], keep="first", maintain_order=True)
        .with_columns(
            source=pl.lit(ENTRA_SOURCE),
            member_kind=pl.when(pl.col("member_id").is_in(groups["group_id"].implode()))
            .then(pl.lit(MemberKind.GROUP.value))
            .when(pl.col("member_id").is_in(accounts["account_id"].implode()))
            .then(pl.lit(MemberKind.ACCOUNT.value))
            .otherwise(pl.lit(MemberKind.FOREIGN.value)),  # an org contact
            via=pl.lit(Via.GRAPH.value),
        ),
        MEMBERSHIPS_SCHEMA,
    )
    return {"accounts": accounts, "groups": groups, "memberships": memberships, "grants": grants}
