"""The untidy corners of the sample's Entra tenant, planted last (after every other draw).

Real tenants are messier than a list of teams; Graph serves (group-list-members: "A group can
have users, organizational contacts, devices, service principals and other groups as members")
and the connector must map each kind (``connectors/entra/tables.member_kind``):

* **nested groups, two levels deep**: ``WMP-Operations`` holds ``WMP-Ops-Command``, which holds
  the ``WMP-Ops-Duty`` team of five West Mercia officers (memberships of kind ``group``; no
  existing team is nested: those hold planted Warwickshire guests, whose reach would grow);
* **an organisational contact as a member**: a partner agency's duty desk (kind ``foreign``: no
  accounts row, attributed to no one), served by the emulator as an ``orgContact``;
* **one more role definition**: Directory Readers (a built-in role Microsoft does not label
  privileged), held by the groups' owner at the tenant scope.

All of it stays inside West Mercia, so none of it is a finding: the nested groups and their
members are West Mercia's own (legitimate rows ``entra-team-member`` / ``entra-team-owner``),
the contact is no account, and Directory Readers is no privileged role. Devices as members are
not planted: the canonical tables have no column that would tell a device from a contact (see
the closing note of issue 19).

:func:`plant_hidden` (called after :func:`plant_messy`) adds a West Mercia group with hidden
membership (``visibility`` HiddenMembership) holding a Warwickshire guest: a real
``cross-org-direct-member`` finding that an app without Member.Read.Hidden is not shown (Graph
answers 200 with the members left out). The canonical groups table has no ``visibility``: the
emulator is told which groups hide their members (:func:`hidden_membership`, passed to
``tenant_from_sample(..., hidden_membership=...)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import polars as pl

from accessaudit.model import GroupKind
from accessaudit.sample.entra import Planter, uuids

OPERATIONS: Final = "WMP-Operations"
COMMAND: Final = "WMP-Ops-Command"
DUTY: Final = "WMP-Ops-Duty"

#: West Mercia's group with hidden membership.
HIDDEN: Final = "WMP-Covert-Liaison"

#: The role definition no other plant uses (in ROLES and UNPRIVILEGED_ROLES).
READERS: Final = "Directory Readers"


def plant_messy(p: Planter) -> None:
    """Nested groups, a contact as a member and one more role (no truth rows: all legitimate)."""
    t = p.t
    for name, what in ((OPERATIONS, "operations"), (COMMAND, "operations command")):
        t.group(name, GroupKind.SECURITY.value, description=f"West Mercia {what}")
    t.group(DUTY, GroupKind.M365.value, description="West Mercia duty officers")
    [contact] = uuids(p.gen, 1)
    duty = p.copies(p.some("wmp", 5))
    t.members(DUTY, duty)
    t.members(COMMAND, [t.ids[DUTY]])
    t.members(OPERATIONS, [t.ids[COMMAND], contact])
    for name in (OPERATIONS, COMMAND, DUTY):
        t.owner(name, duty[0])
    t.role(duty[0], READERS)
    why = "West Mercia staff in West Mercia's own nested operations groups"
    p.allow("entra-team-member", why, account_id=duty, group_id=t.ids[DUTY])
    p.allow("entra-team-owner", why, account_id=duty[0], group_id=t.ids[DUTY])


def plant_hidden(p: Planter, guests: list[str]) -> None:
    """West Mercia's hidden-membership group: three West Mercia officers (legitimate) and a
    Warwickshire guest (``cross-org-direct-member``; the guest is already a ``cross-org-guest``
    of :func:`accessaudit.sample.entra_cross.plant_guests`)."""
    t = p.t
    gid = t.group(HIDDEN, GroupKind.SECURITY.value, description="West Mercia covert liaison")
    officers = p.copies(p.some("wmp", 3))
    guest = guests[1]
    t.members(HIDDEN, [*officers, guest])
    t.owner(HIDDEN, officers[0])
    why = "West Mercia staff in West Mercia's own hidden-membership group"
    p.allow("entra-team-member", why, account_id=officers, group_id=gid)
    p.allow("entra-team-owner", why, account_id=officers[0], group_id=gid)
    p.truth("cross-org-direct-member", "entra-hidden", account_id=guest, group_id=gid, depth=0)


def hidden_membership(tables: Mapping[str, pl.DataFrame]) -> list[str]:
    """The ids of the sample tenant's groups with hidden membership (none in a tenant built
    without :func:`plant_hidden`)."""
    groups = tables["groups"]
    return groups.filter(pl.col("name") == HIDDEN).get_column("group_id").to_list()
