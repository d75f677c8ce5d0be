"""What ``apply`` executes: a plan's actions as single directory changes, and which stay manual.

Executed (one write, or a fixed set of writes, on one object, each read again before it):

- ``remove-member`` / ``unnest-group``: a group's member (AD ``member``; Graph ``members/$ref``);
- ``remove-memberships``: expanded into one ``remove-member`` per edge the plan recorded
  (``target.strip``, the same edges the what-if removed), each journalled on its own as
  ``<action id>#<group id>``;
- ``remove-owner``: AD ``managedBy`` (that value only, so a new owner set since is left alone);
  Graph ``DELETE /groups/{id}/owners/{id}/$ref``, or for an enterprise application (the plan's
  ``target.service_principal``) ``DELETE /servicePrincipals/{id}/owners/{id}/$ref``;
- ``remove-role-assignment``: Graph ``DELETE /roleManagement/directory/roleAssignments/{id}``,
  every active assignment of the principal, role and scope; their ids are looked up when read;
- ``remove-app-role-assignment``: Graph ``DELETE /servicePrincipals/{id}/appRoleAssignedTo/{id}``,
  every assignment of the principal on the application (its app roles recorded for the undo);
- ``remove-sid-history``: AD delete of the one ``sIDHistory`` value. **Irreversible**: LDAP can
  remove sIDHistory but never add it back (that needs ``DsAddSidHistory`` / ADMT), so it runs
  only with ``allow_irreversible`` and its undo is a comment saying so;
- ``clear-manager``: AD ``manager`` (that value only: the manager the plan saw); Graph
  ``DELETE /users/{id}/manager/$ref`` when the plan records the manager (another one now is
  drift);
- ``remove-member`` of an AD account's *primary group*: the account joins the target primary
  group (Domain Users, or ``target.primary_sid`` when the plan names one), ``primaryGroupID``
  is set to it, read again, then the old group's edge is removed
  (:mod:`~accessaudit.remediation.apply.ldap_primary`);
- ``split-group`` of an AD group (``target.split``: the new group's name, OU, scope, movers,
  parents and the other force's parents to leave): create the movers' group, add them, nest it
  into its same-force parents, verify by reading it again, then take the movers out of the
  mixed group and the mixed group out of the other force's parents, each step journalled
  before it is written (:mod:`~accessaudit.remediation.apply.ldap_split`);

Left to a person (``manual``, with the reason):

- ``remove-role-assignment`` of a PIM *eligibility*: removal is an ``adminRemove``
  roleEligibilityScheduleRequest, asynchronous and subject to the tenant's PIM policy (approval,
  justification); the emulator has no writable eligibility endpoint to prove it against;
- ``split-group`` of a cloud group (apply splits AD groups), or of a plan that records no
  ``target.split`` (one older than this apply) or no mover;
- ``remove-guest``: it deletes a person's account; apply never deletes people;
- ``delete-group``: it deletes an object (and its SID) that cannot be restored by a write;
- ``remove-member`` / ``unnest-group`` of a cloud group the plan saw as dynamic (its
  ``membershipRule`` must change) or as an Exchange group (mail-enabled, not Microsoft 365):
  Graph cannot remove their members, and the plan's command says what to do instead (a group
  that became one since the plan is refused when it is read);
- ``clear-manager`` without a recorded manager: the Entra connector does not collect managers,
  so a plan made from Entra alone has none to check the directory against;
- decisions (``review-attribution``, ``decide-shared-account``, ``resolve-dual-identity``,
  ``review-exception``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from accessaudit.model import ActionKind, Via

A = ActionKind
MEMBERSHIP = frozenset({A.REMOVE_MEMBER.value, A.UNNEST_GROUP.value})
EXECUTABLE = frozenset(
    {
        *MEMBERSHIP,
        A.REMOVE_MEMBERSHIPS.value,
        A.REMOVE_OWNER.value,
        A.REMOVE_ROLE_ASSIGNMENT.value,
        A.REMOVE_APP_ROLE_ASSIGNMENT.value,
        A.REMOVE_SID_HISTORY.value,
        A.CLEAR_MANAGER.value,
        A.SPLIT_GROUP.value,
    }
)
#: Kinds whose write cannot be undone by the same protocol.
IRREVERSIBLE = frozenset({A.REMOVE_SID_HISTORY.value})
IRREVERSIBLE_NOTE = (
    "NOT reversible by LDAP: sIDHistory can be removed but only added back by DsAddSidHistory "
    "(ADMT)"
)
#: Why an action is left to a person (the CLI prints it).
MANUAL = {
    A.REMOVE_GUEST.value: "remove-guest deletes a person's account: apply never deletes people",
    A.DELETE_GROUP.value: "delete-group deletes an object a write cannot restore: by hand",
    A.REVIEW_ATTRIBUTION.value: "a decision: which force owns the object",
    A.DECIDE_SHARED_ACCOUNT.value: "a decision: split, re-home or retire the account",
    A.RESOLVE_DUAL_IDENTITY.value: "a decision: which of the two accounts stays",
    A.REVIEW_EXCEPTION.value: "a decision: renew or remove the exception",
    A.REMOVE_ACE.value: "remove-ace: apply does not rewrite security descriptors: run its command",
    A.CHANGE_OWNER.value: "change-owner: apply does not rewrite security descriptors: run its "
    "command",
}
ELIGIBLE_SUFFIX = " (eligible)"
#: Why a cloud group's member is not removed through Graph: the plan's command and apply's
#: refusal say the same (commands._cloud_membership).
DYNAMIC_REASON = "dynamic group: change its membership rule"
EXCHANGE_REASON = "mail-enabled group: change it in Exchange"


@dataclass(frozen=True)
class Change:
    """One write (or fixed set of writes) on one object."""

    action_id: str
    kind: str
    system: str  # "ad" or "cloud"
    group_id: str | None  # the group / application / scope (administrative unit) changed
    member_id: str | None  # the member, owner, role holder or account
    group_sid: str | None
    member_dn: str | None
    group_dn: str | None
    via: str | None
    resource_id: str | None = None  # role definition / service principal / SID
    right: str | None = None  # "Role @ scope"
    manager_id: str | None = None  # clear-manager: the manager the plan saw
    service_principal: bool = False  # remove-owner: group_id is an enterprise application
    primary_sid: str | None = None  # a primary-group move: the plan's target (None: Domain Users)
    split: dict[str, Any] | None = None  # split-group: the plan's target.split

    @property
    def writes(self) -> int:
        """The directory writes the change makes, as the blast-radius cap counts them: a
        split's every edge (and its new group), a primary-group move's three."""
        if self.split is not None:
            s = self.split
            return 1 + 2 * len(s["members"]) + len(s["parents"]) + len(s["unnest"])
        return 3 if self.via == Via.PRIMARY_GROUP.value else 1

    def removals(self) -> list[tuple[str, int]]:
        """(group, members it loses) for the per-group cap: a split takes its movers out of
        the mixed group and the mixed group out of each of the other force's parents."""
        if self.split is not None and self.group_id:
            return [(self.group_id, len(self.split["members"])),
                    *((p, 1) for p in self.split["unnest"])]  # fmt: skip
        if self.kind in MEMBERSHIP and self.group_id:
            return [(self.group_id, 1)]
        return []

    @classmethod
    def of(cls, action: dict[str, Any]) -> Change:
        t = action.get("target") or {}
        return cls(
            action["action_id"],
            action["kind"],
            action["system"],
            action.get("group_id"),
            action.get("member_id"),
            t.get("group_sid"),
            t.get("member_dn"),
            t.get("group_dn"),
            t.get("via"),
            action.get("resource_id"),
            action.get("right"),
            t.get("manager_id"),
            bool(t.get("service_principal")),
            t.get("primary_sid"),
            t.get("split") if action["kind"] == A.SPLIT_GROUP.value else None,
        )

    @property
    def scope(self) -> str:
        """A role assignment's directoryScopeId ("/" or "/administrativeUnits/{id}")."""
        right = (self.right or "").removesuffix(ELIGIBLE_SUFFIX)
        return right.rpartition(" @ ")[2].strip() if " @ " in right else "/"


@dataclass(frozen=True)
class Live:
    """What the directory holds now, read just before a change.

    ``group_exists``: the object changed (group, application, account); ``member_exists``: the
    principal removed from it; ``is_member``: the value to remove is there now; ``prior``: what
    the write removes, as the undo needs it (an old ``managedBy``, assignment ids and roles);
    ``drift``: the object no longer matches the plan (another manager than the one planned);
    ``refusal``: the directory would refuse the write (a group's last owner in Entra).
    """

    group_exists: bool
    member_exists: bool
    is_member: bool
    group_sid: str | None = None
    primary: bool = False  # the group is the member's primary group
    synced: bool = False  # Graph: onPremisesSyncEnabled
    dynamic: bool = False  # Graph: DynamicMembership
    mail_enabled: bool = False  # Graph: a distribution / mail-enabled security group (Exchange)
    role_assignable: bool = False  # Graph: isAssignableToRole (needs a directory-role write)
    size: int | None = None  # direct members of the group now (membership changes)
    sizes: dict[str, int] = field(default_factory=dict)  # a split: each group it removes from
    primary_move: bool = False  # the directory moves the primary group first (AD)
    prior: dict[str, Any] = field(default_factory=dict)
    drift: str = ""
    refusal: str = ""


class StepLog(Protocol):
    """Where a change of several writes reports its steps: ``before`` each write (journalled
    with what it is about to do), ``after`` it."""

    def before(self, name: str, detail: dict[str, Any] | None = None) -> None: ...

    def after(self) -> None: ...


class NoSteps:
    """Steps reported nowhere (a directory used outside an apply run)."""

    def before(self, name: str, detail: dict[str, Any] | None = None) -> None:
        return None

    def after(self) -> None:
        return None


def manual_reason(action: dict[str, Any]) -> str | None:
    """Why an action is not executed (None: it is)."""
    kind = action["kind"]
    if kind in MANUAL:
        return MANUAL[kind]
    if kind not in EXECUTABLE:
        return f"{kind}: by hand"
    if action.get("system") not in ("ad", "cloud"):
        return f"{kind} in {action.get('system')}: changed in that system, by hand"
    check = _MANUAL_WHEN.get(kind)
    return check(action, action.get("target") or {}) if check else None


def _role_assignment(action: dict[str, Any], target: dict[str, Any]) -> str | None:
    if str(action.get("right") or "").endswith(ELIGIBLE_SUFFIX):
        return (
            "PIM eligibility: an adminRemove roleEligibilityScheduleRequest, asynchronous and "
            "subject to PIM policy: by hand"
        )
    if action["system"] != "cloud":
        return "directory roles are Entra's: by hand"
    return None


def _app_role_assignment(action: dict[str, Any], target: dict[str, Any]) -> str | None:
    return "app roles outside Entra: by hand" if action["system"] != "cloud" else None


def _sid_history(action: dict[str, Any], target: dict[str, Any]) -> str | None:
    return "sIDHistory is AD's: by hand" if action["system"] != "ad" else None


def _membership(action: dict[str, Any], target: dict[str, Any]) -> str | None:
    if action["system"] != "cloud":
        return None
    # what the plan saw; apply reads the group again before any write (Live)
    if target.get("membership_rule") is not None:
        return f"{DYNAMIC_REASON}: {target['membership_rule']}"
    if target.get("exchange"):
        return EXCHANGE_REASON
    return None


def _manager(action: dict[str, Any], target: dict[str, Any]) -> str | None:
    if target.get("manager_id"):
        return None
    return (
        "clear-manager: the plan records no manager to remove (Entra managers are not "
        "collected): by hand"
    )


def _split(action: dict[str, Any], target: dict[str, Any]) -> str | None:
    if action["system"] != "ad":
        return "split of a cloud group: by hand, from the plan's member lists (apply splits AD)"
    split = target.get("split")
    if split is None:
        return "split-group without a recorded new group (a plan older than this apply): by hand"
    if not split.get("members"):
        return "split-group: no member of the other force to move"
    return None


def _memberships(action: dict[str, Any], target: dict[str, Any]) -> str | None:
    strip = target.get("strip")
    if strip is None:
        return "remove-memberships without recorded edges (a plan older than this apply): by hand"
    if not strip:
        return "remove-memberships: no direct membership of the account's own directory to strip"
    return None


#: Per executable kind: why an action of it is left to a person (None: it is executed), from
#: the action and its ``target``.
_MANUAL_WHEN: dict[str, Callable[[dict[str, Any], dict[str, Any]], str | None]] = {
    A.REMOVE_ROLE_ASSIGNMENT.value: _role_assignment,
    A.REMOVE_APP_ROLE_ASSIGNMENT.value: _app_role_assignment,
    A.REMOVE_SID_HISTORY.value: _sid_history,
    A.REMOVE_MEMBER.value: _membership,
    A.UNNEST_GROUP.value: _membership,
    A.CLEAR_MANAGER.value: _manager,
    A.REMOVE_MEMBERSHIPS.value: _memberships,
    A.SPLIT_GROUP.value: _split,
}


def expand(action: dict[str, Any]) -> list[Change]:
    """An executable action as its changes: ``remove-memberships`` as one per edge."""
    if action["kind"] != A.REMOVE_MEMBERSHIPS.value:
        return [Change.of(action)]
    t = action.get("target") or {}
    return [
        Change(
            f"{action['action_id']}#{edge['group_id']}",
            A.REMOVE_MEMBER.value,
            action["system"],
            edge["group_id"],
            action["member_id"],
            edge.get("group_sid"),
            t.get("member_dn"),
            edge.get("group_dn"),
            edge.get("via"),
        )
        for edge in t["strip"]
    ]
