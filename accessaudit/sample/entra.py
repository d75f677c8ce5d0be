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
  owners), an
  all-staff group of West Mercia (over 999 members from about 1,800 accounts: more than one page
  of members) and a dynamic group (``membership_rule``);
* **grants**: directory roles ("<role> @ <directoryScopeId>[ (eligible)]", role id = template
  id), app-role assignments ("<app>: <role>") and ownership ("owner"); ``privileged`` marks the
  holders of roles Microsoft labels privileged.

Planted, with the truth rows each must cause: Warwickshire guests in West Mercia teams, on its
application and holding a tenant role (``cross-org-direct-member``, ``cross-org-app-role``,
``cross-org-directory-role``, ``cross-org-guest``; a dormant one also ``inactive-cross-org-
access``); Warwickshire admins with a tenant-wide role, PIM-eligible Global Administrator and in
West Mercia's role-assignable group (``cross-org-privileged-access``); Warwickshire's helpdesk
group holding a tenant-wide role; a West Mercia user administrator scoped to Warwickshire's
administrative unit, and a helpdesk administrator scoped to a West Mercia unit that holds a
Warwickshire account; app roles across the line (a person and a whole team); a West Mercia team
co-owned by a Warwickshire officer and West Mercia's enterprise application owned (service
principal owner) by another (``cross-org-group-owner``); a West Mercia dynamic group whose rule
sweeps in a Warwickshire officer (``cross-org-direct-member``, fixed by changing the rule).
Everything else is legitimate, the applications' owners of their own force included.
"""

from __future__ import annotations

from datetime import datetime, timedelta
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
from accessaudit.sample.builder import FORCES, Builder, guids

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
}
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


def _uuid(gen: np.random.Generator, n: int) -> list[str]:
    raw = gen.bytes(16 * n).hex()
    return [
        f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        for h in (raw[i * 32 : (i + 1) * 32] for i in range(n))
    ]


class _Tenant:
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
        gid = _uuid(self.gen, 1)[0]
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
        self.edges.append(
            pl.DataFrame({"member_id": list(ids)}, schema={"member_id": pl.String}).with_columns(
                group_id=pl.lit(self.ids[group])
            )
        )

    def owner(self, group: str, owner_id: str) -> None:
        row = next(g for g in self.groups if g["name"] == group)
        row["owners"] = sorted({*row["owners"], owner_id})
        self.grants.append((owner_id, row["group_id"], ResourceKind.OWNERSHIP.value, "owner"))

    def role(self, principal: str, role: str, scope: str = "/", *, eligible: bool = False) -> str:
        right = f"{role} @ {scope}" + (" (eligible)" if eligible else "")
        self.grants.append((principal, ROLES[role], ResourceKind.DIRECTORY_ROLE.value, right))
        return right

    def app_role(self, principal: str, app: str, role: str) -> str:
        right = f"{app}: {role}"
        self.grants.append((principal, self.ids[app], ResourceKind.APP_ROLE.value, right))
        return right


def plant_entra(
    b: Builder,
    people: pl.DataFrame,
    admins: pl.DataFrame,
    accounts: pl.DataFrame,
    *,
    gen: np.random.Generator,
    now: datetime,
) -> dict[str, pl.DataFrame]:
    """The tenant's canonical tables; its truth rows are recorded on ``b`` as they are planted."""
    wmp, warks = FORCES
    t = _Tenant(gen)
    active = pl.col("inactive_u") >= 0.08

    # --- users synced from AD (same SID), the break-glass admin, guests -----------------------
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

    def copies(ad_ids: pl.Series | list[str]) -> list[str]:
        """The Entra ids of the synced copies of a few planted AD accounts."""
        ids = pl.Series(list(ad_ids), dtype=pl.String)
        return ids.replace_strict(src["account_id"], copy_ids).to_list()

    bg_id, *guest_ids = _uuid(gen, 1 + len(GUESTS))
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
            "last_logon": [now - timedelta(days=300 if i == 6 else 2 + i) for i in range(8)],
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
    extra = pl.concat([cloud_only, guests], how="diagonal").with_columns(
        source=pl.lit(ENTRA_SOURCE),
        enabled=pl.lit(True),
        created=pl.lit(now - timedelta(days=400)),
        pwd_last_set=pl.lit(now - timedelta(days=60)),
        sid_history=pl.lit([], pl.List(pl.String)),
        privileged=pl.lit(False),
    )
    g = dict(enumerate(guest_ids))

    # --- groups ----------------------------------------------------------------------------
    teams = {
        "wmp": ["WMP-TEAM-Firearms", "WMP-TEAM-Custody", "WMP-TEAM-Intelligence"],
        "warks": ["WARKS-TEAM-Safeguarding", "WARKS-TEAM-Roads"],
    }
    staff = {
        f.id: people.filter((pl.col("org") == f.id) & ~pl.col("mover") & active)["account_id"]
        for f in FORCES
    }

    def some(org: str, n: int) -> pl.Series:
        pool = staff[org]
        chosen: pl.Series = pool[
            gen.choice(pool.len(), size=min(n, pool.len()), replace=False).tolist()
        ]
        return chosen

    taken: set[str] = set()

    def pick(org: str, n: int) -> pl.Series:
        """``n`` active staff of ``org`` for a plant, distinct from every other plant here."""
        pool = staff[org].filter(~staff[org].is_in(taken))
        chosen: pl.Series = pool[gen.choice(pool.len(), size=n, replace=False).tolist()]
        taken.update(chosen.to_list())
        return chosen

    def allow(kind: str, reason: str, **cols: Any) -> None:
        """Legitimate rows (sample_legit): columns of equal length, or scalars."""
        n = max((len(v) for v in cols.values() if isinstance(v, list)), default=1)
        rows = {k: v if isinstance(v, list) else [v] * n for k, v in cols.items()}
        b.allow_ids(kind, reason, pl.DataFrame(rows, schema=dict.fromkeys(rows, pl.String)))

    for f in FORCES:
        for name in teams[f.id]:
            t.group(name, GroupKind.M365.value, description=f"{f.name} team")
            members = copies(some(f.id, 8))
            t.members(name, members)
            t.owner(name, members[0])
            why = f"{f.name} staff in their own force's team"
            allow("entra-team-member", why, account_id=members, group_id=t.ids[name])
            allow("entra-team-owner", why, account_id=members[0], group_id=t.ids[name])
    ra_wmp = "WMP-RA-Tenant-Admins"
    ra_warks = "WARKS-RA-Helpdesk"
    t.group(ra_wmp, GroupKind.SECURITY.value, privileged=True, description="Role-assignable")
    t.group(ra_warks, GroupKind.SECURITY.value, privileged=True, description="Role-assignable")
    au = {f.id: f"{f.prefix}AU-Staff" for f in FORCES}
    for f in FORCES:
        t.group(au[f.id], GroupKind.ADMIN_UNIT.value, description=f"{f.name} staff")
        au_members = copies(some(f.id, 10))
        t.members(au[f.id], au_members)
        why = f"{f.name} staff in their own force's administrative unit"
        allow("entra-admin-unit-member", why, account_id=au_members, group_id=t.ids[au[f.id]])
    niche, athena = "WMP-Niche-Mobile", "WARKS-Athena-Portal"
    t.group(niche, GroupKind.APP_ROLE.value, description="Enterprise application")
    t.group(athena, GroupKind.APP_ROLE.value, description="Enterprise application")

    # --- legitimate rights -----------------------------------------------------------------
    wmp_admins = copies(admins.filter(pl.col("org") == "wmp")["account_id"])
    warks_admins = copies(admins.filter(pl.col("org") == "warks")["account_id"])
    t.members(ra_wmp, wmp_admins)
    why = "West Mercia admins in the tenant it hosts"
    allow("entra-own-admin", why, account_id=wmp_admins, group_id=t.ids[ra_wmp])
    ga = ROLES["Global Administrator"]
    for principal in [*wmp_admins[:3], bg_id]:
        allow(
            "entra-own-role",
            why,
            account_id=principal,
            resource_id=ga,
            right=t.role(principal, "Global Administrator"),
        )
    right = t.role(t.ids[ra_wmp], "Global Administrator")
    allow("entra-own-role", why, member_group_id=t.ids[ra_wmp], resource_id=ga, right=right)
    # its other West Mercia members hold the role through the group (a Warwickshire one is
    # planted below); the first three hold it directly too
    allow("entra-own-role", why, account_id=wmp_admins[3:], resource_id=ga, right=right)
    helpdesk = copies(some("warks", 4))
    t.members(ra_warks, helpdesk)
    why = "Warwickshire staff in their own force's role-assignable group"
    allow("entra-own-admin", why, account_id=helpdesk, group_id=t.ids[ra_warks])
    own_ua = copies(some("warks", 1))[0]
    scope = t.ids[au["warks"]]
    right = t.role(own_ua, "User Administrator", f"/administrativeUnits/{scope}")
    why = "a Warwickshire user administrator scoped to Warwickshire's own unit"
    ua_role = ROLES["User Administrator"]
    allow(
        "entra-own-role", why, account_id=own_ua, group_id=scope, resource_id=ua_role, right=right
    )
    for app, org, roles in (
        (niche, "wmp", ("Investigator", "Supervisor")),
        (athena, "warks", ("Case Officer", "Reader")),
    ):
        for i, person in enumerate(copies(some(org, 6))):
            right = t.app_role(person, app, roles[i % 2])
            app_id = t.ids[app]
            why = "an app role of the person's own force's application"
            allow(
                "entra-own-app-role",
                why,
                account_id=person,
                group_id=app_id,
                resource_id=app_id,
                right=right,
            )
    right = t.app_role(t.ids["WARKS-TEAM-Roads"], athena, "default access")
    allow(
        "entra-own-app-role",
        "a Warwickshire team on Warwickshire's application",
        member_group_id=t.ids["WARKS-TEAM-Roads"],
        group_id=t.ids[athena],
        resource_id=t.ids[athena],
        right=right,
    )
    t.members("WARKS-TEAM-Safeguarding", [g[5]])  # a guest in its own force's team
    why = "a Warwickshire guest in its own force's team"
    allow("entra-guest-own-force", why, account_id=g[5], group_id=t.ids["WARKS-TEAM-Safeguarding"])
    allow("entra-guest-own-force", why, account_id=g[5])  # and nothing else: no finding at all
    allow(
        "entra-guest-idle", "a Warwickshire guest with no access: nothing to find", account_id=g[7]
    )

    # --- plants ------------------------------------------------------------------------------
    def truth(rule: str, plant: str, **cols: Any) -> None:
        b.plant_ids(rule, plant, pl.DataFrame({k: [v] for k, v in cols.items()}))

    # guests of Warwickshire in West Mercia's teams, app and tenant
    team_of = {0: "WMP-TEAM-Firearms", 1: "WMP-TEAM-Firearms", 2: "WMP-TEAM-Custody"}
    team_of[6] = "WMP-TEAM-Intelligence"  # the dormant one
    for i, team in team_of.items():
        t.members(team, [g[i]])
        truth(
            "cross-org-direct-member", "entra-guest", account_id=g[i], group_id=t.ids[team], depth=0
        )
    right = t.app_role(g[3], niche, "Investigator")
    truth(
        "cross-org-app-role",
        "entra-guest",
        account_id=g[3],
        group_id=t.ids[niche],
        resource_id=t.ids[niche],
        right=right,
    )
    right = t.role(g[4], "Security Reader")
    truth(
        "cross-org-directory-role",
        "entra-guest",
        account_id=g[4],
        resource_id=ROLES["Security Reader"],
        right=right,
    )
    for i in (0, 1, 2, 3, 4, 6):
        truth("cross-org-guest", "entra-guest", account_id=g[i])
    # Warwickshire admins: a tenant-wide role, an eligibility, West Mercia's admin group
    right = t.role(warks_admins[0], "Privileged Role Administrator")
    truth(
        "cross-org-directory-role",
        "entra-admin",
        account_id=warks_admins[0],
        resource_id=ROLES["Privileged Role Administrator"],
        right=right,
    )
    right = t.role(warks_admins[1], "Global Administrator", eligible=True)
    truth(
        "cross-org-directory-role",
        "entra-pim",
        account_id=warks_admins[1],
        resource_id=ROLES["Global Administrator"],
        right=right,
    )
    t.members(ra_wmp, [warks_admins[1]])
    truth(
        "cross-org-privileged-access",
        "entra-admin",
        account_id=warks_admins[1],
        group_id=t.ids[ra_wmp],
        depth=0,
    )
    # Warwickshire's helpdesk group holds a tenant-wide role; its members reach it too
    right = t.role(t.ids[ra_warks], "Helpdesk Administrator")
    truth(
        "cross-org-directory-role",
        "entra-helpdesk-group",
        member_group_id=t.ids[ra_warks],
        resource_id=ROLES["Helpdesk Administrator"],
        right=right,
    )
    b.reach.append(pl.Series(helpdesk, dtype=pl.String))
    # ... and, privileged in West Mercia's tenant, its attribution conflicts (name: Warwickshire;
    # the "privileged_groups" matcher: the hosting force)
    truth("conflicting-attribution", "entra-helpdesk-group", group_id=t.ids[ra_warks])
    # administrative-unit scopes: the other force's unit, and a unit holding its account
    ua, hd = copies(pick("wmp", 2))
    right = t.role(ua, "User Administrator", f"/administrativeUnits/{t.ids[au['warks']]}")
    truth(
        "cross-org-directory-role",
        "entra-au",
        account_id=ua,
        group_id=t.ids[au["warks"]],
        resource_id=ROLES["User Administrator"],
        right=right,
    )
    stray = copies(pick("warks", 1))
    t.members(au["wmp"], stray)
    right = t.role(hd, "Helpdesk Administrator", f"/administrativeUnits/{t.ids[au['wmp']]}")
    truth(
        "cross-org-directory-role",
        "entra-au-holding-other",
        account_id=hd,
        group_id=t.ids[au["wmp"]],
        resource_id=ROLES["Helpdesk Administrator"],
        right=right,
    )
    # app roles across the line: two Warwickshire officers on Niche, one West Mercia on Athena,
    # and a whole West Mercia team on Athena
    for org, app, role in (
        ("warks", niche, "Investigator"),
        ("warks", niche, "Supervisor"),
        ("wmp", athena, "Reader"),
    ):
        person = copies(pick(org, 1))[0]
        right = t.app_role(person, app, role)
        truth(
            "cross-org-app-role",
            f"entra-app-{org}",
            account_id=person,
            group_id=t.ids[app],
            resource_id=t.ids[app],
            right=right,
        )
    team = "WMP-TEAM-Intelligence"
    right = t.app_role(t.ids[team], athena, "Reader")
    truth(
        "cross-org-app-role",
        "entra-app-team",
        member_group_id=t.ids[team],
        group_id=t.ids[athena],
        resource_id=t.ids[athena],
        right=right,
    )
    team_members = pl.concat(e for e in t.edges if e["group_id"][0] == t.ids[team])["member_id"]
    b.reach.append(team_members.filter(~team_members.is_in(guest_ids)))
    # a West Mercia team co-owned by a Warwickshire officer
    intruder = copies(pick("warks", 1))[0]
    t.owner("WMP-TEAM-Firearms", intruder)
    truth(
        "cross-org-group-owner",
        "entra-owner",
        account_id=intruder,
        group_id=t.ids["WMP-TEAM-Firearms"],
    )
    # a West Mercia dynamic group whose rule (department only, no force) sweeps in a
    # Warwickshire officer: the fix is the rule, not a member removal
    dynamic = "WMP-DYN-Response"
    t.group(
        dynamic,
        GroupKind.SECURITY.value,
        description="Response officers (dynamic)",
        rule='(user.department -eq "Response") -and (user.accountEnabled -eq true)',
    )
    swept = copies(pick("warks", 1))[0]
    responders = copies(pick("wmp", 6))
    t.members(dynamic, [*responders, swept])
    why = f"{wmp.name} staff in their own force's dynamic group"
    allow("entra-team-member", why, account_id=responders, group_id=t.ids[dynamic])
    truth(
        "cross-org-direct-member",
        "entra-dynamic",
        account_id=swept,
        group_id=t.ids[dynamic],
        depth=0,
    )

    # legitimate: every active West Mercia officer (over 999 members from ~1,800 accounts,
    # so its members come over more than one page of $top=999)
    t.group("WMP-All-Staff", GroupKind.SECURITY.value, description=f"All {wmp.name} staff")
    everyone = copies(staff["wmp"])
    t.members("WMP-All-Staff", everyone)
    why = f"{wmp.name} staff in their own force's all-staff group"
    allow("entra-team-member", why, account_id=everyone, group_id=t.ids["WMP-All-Staff"])

    # owners of the enterprise applications (serviceprincipal-list-owners): an owner can add
    # credentials to the application and act as it. Each force's application has an owner of
    # its own (legitimate); a Warwickshire officer still owns West Mercia's Niche application.
    for app, org in ((niche, "wmp"), (athena, "warks")):
        owner = copies(pick(org, 1))[0]
        t.owner(app, owner)
        why = "an owner of the person's own force's application"
        allow("entra-app-owner", why, account_id=owner, group_id=t.ids[app])
    app_intruder = copies(pick("warks", 1))[0]
    t.owner(niche, app_intruder)
    truth(
        "cross-org-group-owner",
        "entra-app-owner",
        account_id=app_intruder,
        group_id=t.ids[niche],
    )

    return _tables(t, synced, extra)


def _tables(t: _Tenant, synced: pl.DataFrame, extra: pl.DataFrame) -> dict[str, pl.DataFrame]:
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
    # marks them (all of ROLES are).
    holders = grants.filter(pl.col("resource_kind") == ResourceKind.DIRECTORY_ROLE.value)[
        "principal_id"
    ].implode()
    accounts = conform(pl.concat([synced, extra], how="diagonal_relaxed"), ACCOUNTS_SCHEMA)
    accounts = accounts.with_columns(privileged=pl.col("account_id").is_in(holders))
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
            .otherwise(pl.lit(MemberKind.ACCOUNT.value)),
            via=pl.lit(Via.GRAPH.value),
        ),
        MEMBERSHIPS_SCHEMA,
    )
    return {"accounts": accounts, "groups": groups, "memberships": memberships, "grants": grants}
