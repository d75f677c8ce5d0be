"""``apply --preview``: what an apply of a saved plan would do, from the plan alone.

No configuration, no credentials and no directory: every change the plan's actions expand to,
the write it would make, and the guards that stand before it, as far as the plan can tell (a
protected group by SID, an irreversible kind, the blast-radius cap; an AD primary-group edge is
written as its move to the target primary group, a split as its steps). The
guards that need the directory as it is now (drift, a value already absent, a synced or dynamic
group, the share of a group's members) are named as checks apply will make when it runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from accessaudit.model import ActionKind, Via, is_privileged_sid
from accessaudit.remediation.apply.changes import IRREVERSIBLE, MEMBERSHIP, Change
from accessaudit.remediation.apply.execute import plan_changes

A = ActionKind

#: The checks apply makes on every change when it runs, whatever the plan says.
LIVE_CHECKS = "re-read before the write: drift skipped, already absent a no-op"


@dataclass(frozen=True)
class PreviewLine:
    """One change (or one action left to a person) as apply would treat it."""

    action_id: str
    state: str  # "write" | "refused" | "manual"
    system: str
    write: str  # what would be written, or why it is left to a person
    guards: tuple[str, ...]


@dataclass(frozen=True)
class Preview:
    lines: list[PreviewLine]
    writes: int  # changes that would be written
    max_changes: int
    over_cap: bool  # the writes exceed the blast-radius cap: apply would refuse

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for line in self.lines:
            out[line.state] = out.get(line.state, 0) + 1
        return out


def _object(dn: str | None, object_id: str | None) -> str:
    return dn or object_id or "?"


def _write(c: Change) -> str:
    """The write a change makes, in the directory's own terms."""
    group = _object(c.group_dn, c.group_id)
    member = _object(c.member_dn, c.member_id)
    if c.split is not None:
        return _split_write(c, group)
    if c.system == "ad" and c.kind in MEMBERSHIP and c.via == Via.PRIMARY_GROUP.value:
        target = c.primary_sid or "Domain Users (<domain SID>-513)"
        return (
            f"AD: add {member} to {target}, set its primaryGroupID to it, read it again, "
            f"then delete member {member} from {group}"
        )
    if c.system == "ad":
        writes = {
            A.REMOVE_MEMBER.value: f"AD: delete member {member} from {group}",
            A.UNNEST_GROUP.value: f"AD: delete member {member} from {group}",
            A.REMOVE_OWNER.value: f"AD: delete managedBy {member} of {group}",
            A.REMOVE_SID_HISTORY.value: f"AD: delete sIDHistory {c.resource_id} of {member}",
            A.CLEAR_MANAGER.value: f"AD: delete manager {c.manager_id} of {member}",
        }
    else:
        writes = {
            A.REMOVE_MEMBER.value: f"Graph: DELETE /groups/{c.group_id}/members/{c.member_id}/$ref",
            A.UNNEST_GROUP.value: f"Graph: DELETE /groups/{c.group_id}/members/{c.member_id}/$ref",
            A.REMOVE_OWNER.value: (
                f"Graph: DELETE /{'servicePrincipals' if c.service_principal else 'groups'}/"
                f"{c.group_id}/owners/{c.member_id}/$ref"
            ),
            A.REMOVE_ROLE_ASSIGNMENT.value: (
                f"Graph: DELETE every roleAssignment of {c.member_id} for role {c.resource_id} "
                f"at {c.scope}"
            ),
            A.REMOVE_APP_ROLE_ASSIGNMENT.value: (
                f"Graph: DELETE every appRoleAssignedTo of {c.member_id} on {c.resource_id}"
            ),
            A.CLEAR_MANAGER.value: f"Graph: DELETE /users/{c.member_id}/manager/$ref",
        }
    return writes.get(c.kind, f"{c.kind} on {group}")


def _split_write(c: Change, group: str) -> str:
    s = c.split or {}
    where = s.get("ou") or "CN=Users of the domain"
    return (
        f"AD: create group {s.get('name')} in {where}, add {len(s.get('members', []))} "
        f"member(s), nest it into {len(s.get('parents', []))} group(s), read it again, then "
        f"delete those members from {group} and {group} from {len(s.get('unnest', []))} "
        f"group(s) of the other force; each step journalled ({c.writes} writes)"
    )


def _guards(c: Change, allow_protected: set[str]) -> tuple[str | None, tuple[str, ...]]:
    """Why apply would refuse the change whatever the directory holds (None: it would not),
    and the guards that apply to it."""
    guards = [LIVE_CHECKS]
    refused = None
    if is_privileged_sid(c.group_sid):
        if {c.group_id, c.group_sid} & allow_protected:
            guards.append(f"protected group {c.group_sid}: allowed by --allow-protected")
        else:
            refused = f"protected group {c.group_sid} (name it with --allow-protected)"
    if c.kind in MEMBERSHIP and c.via == Via.PRIMARY_GROUP.value:
        if c.system == "ad":
            guards.append("primary group: refused where AD would refuse the target group")
        else:
            refused = refused or "the member's primary group (change primaryGroupID first)"
    if c.kind in IRREVERSIBLE:
        guards.append("irreversible: runs only with --allow-irreversible; no undo by LDAP")
    if c.removals():
        guards.append("counts toward apply.max_group_fraction of its group")
    if c.split is not None:
        guards.append("drift if another group holds the new name; refused if its OU is missing")
    if c.system == "cloud":
        guards.append("refused if the group is synced, dynamic, mail-enabled or role-assignable")
    return refused, tuple(guards)


def preview_plan(
    doc: dict[str, Any],
    *,
    only_ids: Iterable[str] = (),
    allow_protected: Iterable[str] = (),
    max_changes: int = 50,
) -> Preview:
    """What ``apply`` would do with the plan ``doc``, from the plan alone."""
    changes, manual = plan_changes(doc["actions"], only_ids)
    allowed = set(allow_protected)
    system = {a["action_id"]: str(a.get("system") or "") for a in doc["actions"]}
    lines = [
        PreviewLine(m.action_id, "manual", system.get(m.action_id, ""), m.reason, ())
        for m in manual
    ]
    writes = 0
    for c in changes:
        refused, guards = _guards(c, allowed)
        if refused:
            lines.append(PreviewLine(c.action_id, "refused", c.system, refused, guards))
        else:
            writes += c.writes
            lines.append(PreviewLine(c.action_id, "write", c.system, _write(c), guards))
    order = {"write": 0, "refused": 1, "manual": 2}
    lines.sort(key=lambda ln: (order[ln.state], ln.action_id))
    return Preview(lines, writes, max_changes, writes > max_changes)
