"""The legitimate side of the sample's Entra tenant: each force's own groups and rights.

Recorded as legitimate rows (:mod:`accessaudit.sample.legit`) as they are built, never as truth:

* :func:`own_groups`: each force's teams with their own members and an owner
  (``entra-team-member``, ``entra-team-owner``), the role-assignable groups, each force's
  administrative unit with its own staff (``entra-admin-unit-member``) and the two enterprise
  applications;
* :func:`own_rights`: West Mercia's admins in its role-assignable group and holding Global
  Administrator (directly and through the group) with the break-glass admin
  (``entra-own-admin``, ``entra-own-role``), Warwickshire's helpdesk in its own role-assignable
  group, a Warwickshire user administrator scoped to its own unit, app roles of each force's own
  application (a team's included: ``entra-own-app-role``), a guest in its own force's team and an
  idle guest (``entra-guest-own-force``, ``entra-guest-idle``);
* :func:`own_all_staff`: every active West Mercia officer in its all-staff group (over 999
  members, so they come over more than one page of ``$top=999``);
* :func:`own_app_owners`: an owner of each force's own application (``entra-app-owner``).
"""

from __future__ import annotations

from accessaudit.model import GroupKind
from accessaudit.sample.builder import FORCES
from accessaudit.sample.entra import (
    ADMIN_UNITS,
    ATHENA,
    NICHE,
    RA_WARKS,
    RA_WMP,
    ROLES,
    TEAMS,
    Planter,
)

#: West Mercia's all-staff group in the tenant.
ALL_STAFF = "WMP-All-Staff"


def own_groups(p: Planter) -> None:
    """Teams, role-assignable groups, administrative units and applications, with their own
    force's members."""
    t = p.t
    for f in FORCES:
        for name in TEAMS[f.id]:
            t.group(name, GroupKind.M365.value, description=f"{f.name} team")
            members = p.copies(p.some(f.id, 8))
            t.members(name, members)
            t.owner(name, members[0])
            why = f"{f.name} staff in their own force's team"
            p.allow("entra-team-member", why, account_id=members, group_id=t.ids[name])
            p.allow("entra-team-owner", why, account_id=members[0], group_id=t.ids[name])
    t.group(RA_WMP, GroupKind.SECURITY.value, privileged=True, description="Role-assignable")
    t.group(RA_WARKS, GroupKind.SECURITY.value, privileged=True, description="Role-assignable")
    for f in FORCES:
        unit = ADMIN_UNITS[f.id]
        t.group(unit, GroupKind.ADMIN_UNIT.value, description=f"{f.name} staff")
        unit_members = p.copies(p.some(f.id, 10))
        t.members(unit, unit_members)
        why = f"{f.name} staff in their own force's administrative unit"
        p.allow("entra-admin-unit-member", why, account_id=unit_members, group_id=t.ids[unit])
    t.group(NICHE, GroupKind.APP_ROLE.value, description="Enterprise application")
    t.group(ATHENA, GroupKind.APP_ROLE.value, description="Enterprise application")


def own_rights(p: Planter, wmp_admins: list[str], break_glass: str, guests: list[str]) -> list[str]:
    """Each force's own roles, app roles and guests; return Warwickshire's helpdesk (the members
    of its role-assignable group)."""
    t = p.t
    t.members(RA_WMP, wmp_admins)
    why = "West Mercia admins in the tenant it hosts"
    p.allow("entra-own-admin", why, account_id=wmp_admins, group_id=t.ids[RA_WMP])
    ga = ROLES["Global Administrator"]
    for principal in [*wmp_admins[:3], break_glass]:
        right = t.role(principal, "Global Administrator")
        p.allow("entra-own-role", why, account_id=principal, resource_id=ga, right=right)
    right = t.role(t.ids[RA_WMP], "Global Administrator")
    p.allow("entra-own-role", why, member_group_id=t.ids[RA_WMP], resource_id=ga, right=right)
    # its other West Mercia members hold the role through the group (a Warwickshire one is
    # planted by entra_cross); the first three hold it directly too
    p.allow("entra-own-role", why, account_id=wmp_admins[3:], resource_id=ga, right=right)
    helpdesk = p.copies(p.some("warks", 4))
    t.members(RA_WARKS, helpdesk)
    why = "Warwickshire staff in their own force's role-assignable group"
    p.allow("entra-own-admin", why, account_id=helpdesk, group_id=t.ids[RA_WARKS])
    own_ua = p.copies(p.some("warks", 1))[0]
    scope = t.ids[ADMIN_UNITS["warks"]]
    right = t.role(own_ua, "User Administrator", f"/administrativeUnits/{scope}")
    why = "a Warwickshire user administrator scoped to Warwickshire's own unit"
    ua_role = ROLES["User Administrator"]
    p.allow(
        "entra-own-role", why, account_id=own_ua, group_id=scope, resource_id=ua_role, right=right
    )
    _own_app_roles(p)
    team = t.ids["WARKS-TEAM-Safeguarding"]
    t.members("WARKS-TEAM-Safeguarding", [guests[5]])  # a guest in its own force's team
    why = "a Warwickshire guest in its own force's team"
    p.allow("entra-guest-own-force", why, account_id=guests[5], group_id=team)
    p.allow("entra-guest-own-force", why, account_id=guests[5])  # and nothing else: no finding
    why = "a Warwickshire guest with no access: nothing to find"
    p.allow("entra-guest-idle", why, account_id=guests[7])
    return helpdesk


def _own_app_roles(p: Planter) -> None:
    """Six people of each force on its own application, and a Warwickshire team on Athena."""
    t = p.t
    for app, org, roles in (
        (NICHE, "wmp", ("Investigator", "Supervisor")),
        (ATHENA, "warks", ("Case Officer", "Reader")),
    ):
        for i, person in enumerate(p.copies(p.some(org, 6))):
            right = t.app_role(person, app, roles[i % 2])
            app_id = t.ids[app]
            why = "an app role of the person's own force's application"
            p.allow(
                "entra-own-app-role",
                why,
                account_id=person,
                group_id=app_id,
                resource_id=app_id,
                right=right,
            )
    right = t.app_role(t.ids["WARKS-TEAM-Roads"], ATHENA, "default access")
    p.allow(
        "entra-own-app-role",
        "a Warwickshire team on Warwickshire's application",
        member_group_id=t.ids["WARKS-TEAM-Roads"],
        group_id=t.ids[ATHENA],
        resource_id=t.ids[ATHENA],
        right=right,
    )


def own_all_staff(p: Planter) -> None:
    """Every active West Mercia officer in its all-staff group."""
    wmp = FORCES[0]
    p.t.group(ALL_STAFF, GroupKind.SECURITY.value, description=f"All {wmp.name} staff")
    everyone = p.copies(p.staff["wmp"])
    p.t.members(ALL_STAFF, everyone)
    why = f"{wmp.name} staff in their own force's all-staff group"
    p.allow("entra-team-member", why, account_id=everyone, group_id=p.t.ids[ALL_STAFF])


def own_app_owners(p: Planter) -> None:
    """An owner of each force's own application (serviceprincipal-list-owners: an owner can add
    credentials to the application and act as it)."""
    for app, org in ((NICHE, "wmp"), (ATHENA, "warks")):
        owner = p.copies(p.pick(org, 1))[0]
        p.t.owner(app, owner)
        why = "an owner of the person's own force's application"
        p.allow("entra-app-owner", why, account_id=owner, group_id=p.t.ids[app])
