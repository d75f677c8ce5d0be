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
the contact is no account, and Directory Readers is no privileged role. Devices as members and
a group with hidden membership are not planted: the canonical tables have no column that would
tell a device from a contact, or carry a group's visibility (see the closing note of issue 19).
"""

from __future__ import annotations

from typing import Final

from accessaudit.model import GroupKind
from accessaudit.sample.entra import Planter, uuids

OPERATIONS: Final = "WMP-Operations"
COMMAND: Final = "WMP-Ops-Command"
DUTY: Final = "WMP-Ops-Duty"

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
