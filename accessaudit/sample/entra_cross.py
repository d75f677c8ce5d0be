"""Cross-force plants of the sample's Entra tenant, each recording the truth rows it must cause.

* :func:`plant_outsiders`: two Warwickshire guests attributed only by their home domain (one in
  its ``#EXT#`` UPN, one in its identity's issuer) in West Mercia teams
  (``cross-org-direct-member``, ``cross-org-guest``), and Warwickshire's automation service
  principal in a West Mercia team (``cross-org-direct-member``) and, legitimately, in its own;
* :func:`plant_guests`: Warwickshire guests in West Mercia teams, on its application and holding
  a tenant role (``cross-org-direct-member``, ``cross-org-app-role``,
  ``cross-org-directory-role``, ``cross-org-guest``; the dormant one also
  ``inactive-cross-org-access``, derived by :mod:`accessaudit.sample.truth`);
* :func:`plant_admins`: Warwickshire admins with a tenant-wide role, PIM-eligible Global
  Administrator (``cross-org-directory-role``) and in West Mercia's role-assignable group
  (``cross-org-privileged-access``);
* :func:`plant_helpdesk_group`: Warwickshire's helpdesk group holding a tenant-wide role
  (``cross-org-directory-role``; its members reach it too), its attribution conflicting
  (``conflicting-attribution``: named Warwickshire, privileged in the tenant West Mercia hosts);
* :func:`plant_unit_scopes`: a West Mercia user administrator scoped to Warwickshire's
  administrative unit, and a helpdesk administrator scoped to a West Mercia unit that holds a
  Warwickshire account (``cross-org-directory-role``);
* :func:`plant_app_roles`: app roles across the line, of people and of a whole West Mercia team
  (``cross-org-app-role``);
* :func:`plant_team_owner` and :func:`plant_app_owner`: a West Mercia team co-owned by a
  Warwickshire officer, and West Mercia's enterprise application owned (service principal
  owner) by another (``cross-org-group-owner``);
* :func:`plant_dynamic_group`: a West Mercia dynamic group whose rule sweeps in a Warwickshire
  officer (``cross-org-direct-member``, fixed by changing the rule, not a member removal); its
  West Mercia members are legitimate;
* :func:`plant_unit_group`: a West Mercia administrative unit holding West Mercia teams and a
  Warwickshire team, with a West Mercia Groups Administrator scoped to it
  (``cross-org-directory-role``: the role can change the Warwickshire team's members).

Everything else in the tenant is legitimate (:mod:`accessaudit.sample.entra_own`).
"""

from __future__ import annotations

import polars as pl

from accessaudit.model import GroupKind
from accessaudit.sample.builder import FORCES
from accessaudit.sample.entra import ADMIN_UNITS, ATHENA, NICHE, RA_WARKS, RA_WMP, ROLES, Planter
from accessaudit.sample.entra_accounts import OutsideAccounts

#: West Mercia's dynamic group.
DYNAMIC = "WMP-DYN-Response"


def plant_guests(p: Planter, guests: list[str]) -> None:
    """Guests of Warwickshire in West Mercia's teams, on its application and in its tenant."""
    t, g = p.t, guests
    team_of = {0: "WMP-TEAM-Firearms", 1: "WMP-TEAM-Firearms", 2: "WMP-TEAM-Custody"}
    team_of[6] = "WMP-TEAM-Intelligence"  # the dormant one
    for i, team in team_of.items():
        t.members(team, [g[i]])
        p.truth(
            "cross-org-direct-member", "entra-guest", account_id=g[i], group_id=t.ids[team], depth=0
        )
    right = t.app_role(g[3], NICHE, "Investigator")
    p.truth(
        "cross-org-app-role",
        "entra-guest",
        account_id=g[3],
        group_id=t.ids[NICHE],
        resource_id=t.ids[NICHE],
        right=right,
    )
    right = t.role(g[4], "Security Reader")
    p.truth(
        "cross-org-directory-role",
        "entra-guest",
        account_id=g[4],
        resource_id=ROLES["Security Reader"],
        right=right,
    )
    for i in (0, 1, 2, 3, 4, 6):
        p.truth("cross-org-guest", "entra-guest", account_id=g[i])


def plant_admins(p: Planter, warks_admins: list[str]) -> None:
    """Warwickshire admins: a tenant-wide role, an eligibility, West Mercia's admin group."""
    t = p.t
    right = t.role(warks_admins[0], "Privileged Role Administrator")
    p.truth(
        "cross-org-directory-role",
        "entra-admin",
        account_id=warks_admins[0],
        resource_id=ROLES["Privileged Role Administrator"],
        right=right,
    )
    right = t.role(warks_admins[1], "Global Administrator", eligible=True)
    p.truth(
        "cross-org-directory-role",
        "entra-pim",
        account_id=warks_admins[1],
        resource_id=ROLES["Global Administrator"],
        right=right,
    )
    t.members(RA_WMP, [warks_admins[1]])
    p.truth(
        "cross-org-privileged-access",
        "entra-admin",
        account_id=warks_admins[1],
        group_id=t.ids[RA_WMP],
        depth=0,
    )


def plant_helpdesk_group(p: Planter, helpdesk: list[str]) -> None:
    """Warwickshire's helpdesk group (with members ``helpdesk``) holding a tenant-wide role."""
    right = p.t.role(p.t.ids[RA_WARKS], "Helpdesk Administrator")
    p.truth(
        "cross-org-directory-role",
        "entra-helpdesk-group",
        member_group_id=p.t.ids[RA_WARKS],
        resource_id=ROLES["Helpdesk Administrator"],
        right=right,
    )
    p.b.reach.append(pl.Series(helpdesk, dtype=pl.String))
    # ... and, privileged in West Mercia's tenant, its attribution conflicts (name: Warwickshire;
    # the "privileged_groups" matcher: the hosting force)
    p.truth("conflicting-attribution", "entra-helpdesk-group", group_id=p.t.ids[RA_WARKS])


def plant_unit_scopes(p: Planter) -> None:
    """Administrative-unit scopes: the other force's unit, and a unit holding its account."""
    t = p.t
    ua, hd = p.copies(p.pick("wmp", 2))
    warks_unit, wmp_unit = t.ids[ADMIN_UNITS["warks"]], t.ids[ADMIN_UNITS["wmp"]]
    right = t.role(ua, "User Administrator", f"/administrativeUnits/{warks_unit}")
    p.truth(
        "cross-org-directory-role",
        "entra-au",
        account_id=ua,
        group_id=warks_unit,
        resource_id=ROLES["User Administrator"],
        right=right,
    )
    stray = p.copies(p.pick("warks", 1))
    t.members(ADMIN_UNITS["wmp"], stray)
    right = t.role(hd, "Helpdesk Administrator", f"/administrativeUnits/{wmp_unit}")
    p.truth(
        "cross-org-directory-role",
        "entra-au-holding-other",
        account_id=hd,
        group_id=wmp_unit,
        resource_id=ROLES["Helpdesk Administrator"],
        right=right,
    )


def plant_app_roles(p: Planter, guests: list[str]) -> None:
    """Two Warwickshire officers on Niche, one West Mercia officer on Athena, and a whole West
    Mercia team on Athena (its members, guests aside, reach the role too)."""
    t = p.t
    for org, app, role in (
        ("warks", NICHE, "Investigator"),
        ("warks", NICHE, "Supervisor"),
        ("wmp", ATHENA, "Reader"),
    ):
        person = p.copies(p.pick(org, 1))[0]
        right = t.app_role(person, app, role)
        p.truth(
            "cross-org-app-role",
            f"entra-app-{org}",
            account_id=person,
            group_id=t.ids[app],
            resource_id=t.ids[app],
            right=right,
        )
    team = "WMP-TEAM-Intelligence"
    right = t.app_role(t.ids[team], ATHENA, "Reader")
    p.truth(
        "cross-org-app-role",
        "entra-app-team",
        member_group_id=t.ids[team],
        group_id=t.ids[ATHENA],
        resource_id=t.ids[ATHENA],
        right=right,
    )
    team_members = pl.concat(e for e in t.edges if e["group_id"][0] == t.ids[team])["member_id"]
    p.b.reach.append(team_members.filter(~team_members.is_in(guests)))


def plant_team_owner(p: Planter) -> None:
    """A West Mercia team co-owned by a Warwickshire officer."""
    intruder = p.copies(p.pick("warks", 1))[0]
    p.t.owner("WMP-TEAM-Firearms", intruder)
    p.truth(
        "cross-org-group-owner",
        "entra-owner",
        account_id=intruder,
        group_id=p.t.ids["WMP-TEAM-Firearms"],
    )


def plant_dynamic_group(p: Planter) -> None:
    """A West Mercia dynamic group whose rule (department only, no force) sweeps in a
    Warwickshire officer."""
    p.t.group(
        DYNAMIC,
        GroupKind.SECURITY.value,
        description="Response officers (dynamic)",
        rule='(user.department -eq "Response") -and (user.accountEnabled -eq true)',
    )
    swept = p.copies(p.pick("warks", 1))[0]
    responders = p.copies(p.pick("wmp", 6))
    p.t.members(DYNAMIC, [*responders, swept])
    why = f"{FORCES[0].name} staff in their own force's dynamic group"
    p.allow("entra-team-member", why, account_id=responders, group_id=p.t.ids[DYNAMIC])
    p.truth(
        "cross-org-direct-member",
        "entra-dynamic",
        account_id=swept,
        group_id=p.t.ids[DYNAMIC],
        depth=0,
    )


def plant_app_owner(p: Planter) -> None:
    """A Warwickshire officer still owning West Mercia's Niche application."""
    intruder = p.copies(p.pick("warks", 1))[0]
    p.t.owner(NICHE, intruder)
    p.truth(
        "cross-org-group-owner",
        "entra-app-owner",
        account_id=intruder,
        group_id=p.t.ids[NICHE],
    )


def plant_outsiders(p: Planter, outside: OutsideAccounts) -> None:
    """Warwickshire principals only their home says are Warwickshire's, in West Mercia teams:
    a guest with no mail (its home domain in its ``#EXT#`` UPN), one whose home domain is only
    in its identity's issuer, and the automation service principal (also in its own team)."""
    t = p.t
    # two teams, so that neither holds five Warwickshire members (a mixed group)
    plants = (
        ("entra-guest-ext-upn", outside.guest_upn, "WMP-TEAM-Custody"),
        ("entra-guest-issuer", outside.guest_issuer, "WMP-TEAM-Firearms"),
        ("entra-service-principal", outside.automation, "WMP-TEAM-Custody"),
    )
    for plant, principal, team in plants:
        t.members(team, [principal])
        p.truth(
            "cross-org-direct-member", plant, account_id=principal, group_id=t.ids[team], depth=0
        )
        if principal != outside.automation:
            p.truth("cross-org-guest", plant, account_id=principal)
    own = "WARKS-TEAM-Safeguarding"
    t.members(own, [outside.automation])
    why = "Warwickshire's automation service principal in its own force's team"
    p.allow("entra-team-member", why, account_id=outside.automation, group_id=t.ids[own])


#: West Mercia's administrative unit of teams; it also holds a Warwickshire team.
TEAMS_UNIT = "WMP-AU-Teams"


def plant_unit_group(p: Planter) -> None:
    """A West Mercia administrative unit of teams that also holds a Warwickshire team, and a West
    Mercia Groups Administrator scoped to it: the unit and its other members are West Mercia's,
    yet the role can change the Warwickshire team's members (``cross-org-directory-role``)."""
    t = p.t
    t.group(TEAMS_UNIT, GroupKind.ADMIN_UNIT.value, description="West Mercia teams")
    teams = ["WMP-TEAM-Firearms", "WMP-TEAM-Custody", "WARKS-TEAM-Roads"]
    t.members(TEAMS_UNIT, [t.ids[team] for team in teams])
    admin = p.copies(p.pick("wmp", 1))[0]
    unit = t.ids[TEAMS_UNIT]
    right = t.role(admin, "Groups Administrator", f"/administrativeUnits/{unit}")
    p.truth(
        "cross-org-directory-role",
        "entra-au-group",
        account_id=admin,
        group_id=unit,
        resource_id=ROLES["Groups Administrator"],
        right=right,
    )
