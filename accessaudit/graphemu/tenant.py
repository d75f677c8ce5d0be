"""The emulator's directory: objects, links, role and app-role assignments, change tracking.

Objects are stored as Microsoft Graph property dicts (camelCase, as the API returns them). Every
mutation bumps :attr:`Tenant.version` and is recorded, so ``/users/delta`` and ``/groups/delta``
can answer "what changed since version N" exactly as Graph documents it (changed objects in full,
``@removed`` tombstones, ``members@delta`` / ``owners@delta`` with per-link ``@removed``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from accessaudit.graphemu.schema import BUILTIN_ROLES


def iso(value: datetime | None) -> str | None:
    """Graph's DateTimeOffset format: UTC with a trailing Z."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Link:
    version: int
    relation: str  # "members" | "owners"
    group_id: str
    target_id: str
    target_type: str
    added: bool


@dataclass
class Tenant:
    """One Entra tenant's directory as the emulator serves it."""

    tenant_id: str
    domain: str = "alliance.onmicrosoft.com"
    premium: bool = True  # Entra ID P1: signInActivity
    p2: bool = True  # Entra ID P2: PIM eligibility
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> props
    types: dict[str, str] = field(default_factory=dict)  # id -> "user" | "group" | ...
    members: dict[str, list[str]] = field(default_factory=dict)
    owners: dict[str, list[str]] = field(default_factory=dict)
    #: servicePrincipal id -> owners (users or service principals: serviceprincipal-post-owners).
    #: Kept apart from group owners: ``/groups/delta`` never reports them.
    sp_owners: dict[str, list[str]] = field(default_factory=dict)
    #: administrativeUnit id -> direct members (users, groups, devices; AUs do not nest)
    au_members: dict[str, list[str]] = field(default_factory=dict)
    role_definitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    role_assignments: dict[str, dict[str, Any]] = field(default_factory=dict)
    role_eligibilities: dict[str, dict[str, Any]] = field(default_factory=dict)
    app_role_assignments: dict[str, dict[str, Any]] = field(default_factory=dict)
    managers: dict[str, str] = field(default_factory=dict)  # user id -> manager's id
    version: int = 0
    changed: dict[str, int] = field(default_factory=dict)  # id -> version of last change
    #: id -> property -> version of its last change ("*": the object's creation), so that delta
    #: returns an object only when a property it tracks ($select) changed (delta-query-overview)
    changed_props: dict[str, dict[str, int]] = field(default_factory=dict)
    removed: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # id -> (v, reason, t)
    links: list[Link] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        for role_id, name in BUILTIN_ROLES:
            self.role_definitions.setdefault(
                role_id,
                {
                    "id": role_id,
                    "displayName": name,
                    "description": name,
                    "isBuiltIn": True,
                    "isEnabled": True,
                    "templateId": role_id,
                    "resourceScopes": ["/"],
                    "version": "1",
                },
            )

    # --- reading ------------------------------------------------------------------------------

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [o for i, o in self.objects.items() if self.types[i] == kind]

    def type_of(self, object_id: str) -> str | None:
        return self.types.get(object_id)

    def by_id_or_upn(self, kind: str, key: str) -> dict[str, Any] | None:
        obj = self.objects.get(key)
        if obj is not None and self.types[key] == kind:
            return obj
        if kind == "user":
            low = key.lower()
            for o in self.of_type("user"):
                if (o.get("userPrincipalName") or "").lower() == low:
                    return o
        return None

    def transitive_members(self, group_id: str, opaque: Set[str] = frozenset()) -> list[str]:
        """Flat, de-duplicated, cycle-safe nested members (the group itself excluded); the
        members of ``opaque`` groups (hidden from the caller) are not listed."""
        seen: dict[str, None] = {}
        stack = list(reversed(self.members.get(group_id, [])))
        while stack:
            m = stack.pop()
            if m in seen or m == group_id:
                continue
            seen[m] = None
            if self.types.get(m) == "group" and m not in opaque:
                stack.extend(reversed(self.members.get(m, [])))
        return list(seen)

    # --- mutations (each one bumps the version and is visible to delta) -----------------------

    def _bump(self) -> int:
        self.version += 1
        return self.version

    def _add(self, kind: str, props: dict[str, Any], *, track: bool) -> str:
        with self.lock:
            object_id: str = props.setdefault("id", new_id())
            self.objects[object_id] = props
            self.types[object_id] = kind
            self.removed.pop(object_id, None)
            if kind == "group":
                self.members.setdefault(object_id, [])
                self.owners.setdefault(object_id, [])
            elif kind == "servicePrincipal":
                self.sp_owners.setdefault(object_id, [])
            self.changed_props.pop(object_id, None)
            if track:
                self.changed[object_id] = self._bump()
                self.changed_props[object_id] = {"*": self.version}
            return object_id

    def add_user(self, track: bool = True, **props: Any) -> str:
        props.setdefault("createdDateTime", iso(datetime.now(UTC)))
        props.setdefault("accountEnabled", True)
        props.setdefault("businessPhones", [])
        return self._add("user", props, track=track)

    def add_group(self, track: bool = True, **props: Any) -> str:
        props.setdefault("groupTypes", [])
        props.setdefault("securityEnabled", True)
        props.setdefault("mailEnabled", False)
        props.setdefault("isAssignableToRole", False)
        props.setdefault("createdDateTime", iso(datetime.now(UTC)))
        return self._add("group", props, track=track)

    def add_contact(self, track: bool = True, **props: Any) -> str:
        return self._add("orgContact", props, track=track)

    def add_device(self, track: bool = True, **props: Any) -> str:
        return self._add("device", props, track=track)

    def add_service_principal(
        self, display_name: str, app_roles: Iterable[str] = (), track: bool = True, **props: Any
    ) -> str:
        roles = [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{display_name}/{value}")),
                "value": value,
                "displayName": value,
                "description": value,
                "allowedMemberTypes": ["User"],
                "isEnabled": True,
                "origin": "Application",
            }
            for value in app_roles
        ]
        props.setdefault("appId", new_id())
        props.setdefault("appOwnerOrganizationId", self.tenant_id)  # an application of its own
        props.setdefault("accountEnabled", True)
        props.setdefault("servicePrincipalType", "Application")
        props.setdefault("tags", [])
        return self._add(
            "servicePrincipal",
            {"displayName": display_name, "appDisplayName": display_name, "appRoles": roles}
            | props,
            track=track,
        )

    def add_administrative_unit(self, track: bool = True, **props: Any) -> str:
        """An administrativeUnit: not a group, so not in ``/groups`` nor in group delta."""
        for name in ("description", "visibility", "membershipRule", "membershipType"):
            props.setdefault(name, None)
        props.setdefault("membershipRuleProcessingState", None)
        props.setdefault("isMemberManagementRestricted", False)
        props.setdefault("deletedDateTime", None)
        object_id = self._add("administrativeUnit", props, track=track)
        self.au_members.setdefault(object_id, [])
        return object_id

    def add_au_member(self, au_id: str, member_id: str) -> None:
        with self.lock:
            ids = self.au_members[au_id]
            if member_id not in ids:
                ids.append(member_id)
            self._bump()

    def update(self, object_id: str, **props: Any) -> None:
        with self.lock:
            self.objects[object_id].update(props)
            self.changed[object_id] = self._bump()
            marks = self.changed_props.setdefault(object_id, {})
            marks.update(dict.fromkeys(props, self.version))

    def delete(self, object_id: str, reason: str = "changed") -> None:
        """Delete an object ("changed" = soft-deleted and restorable, "deleted" = gone)."""
        with self.lock:
            kind = self.types.pop(object_id)
            self.objects.pop(object_id)
            for relation in ("members", "owners"):
                table = getattr(self, relation)
                for group_id, ids in table.items():
                    if object_id in ids:
                        self._link(relation, group_id, object_id, kind, added=False)
            self.members.pop(object_id, None)
            self.owners.pop(object_id, None)
            self.sp_owners.pop(object_id, None)
            for ids in self.sp_owners.values():
                if object_id in ids:
                    ids.remove(object_id)
            self.au_members.pop(object_id, None)
            for ids in self.au_members.values():
                if object_id in ids:
                    ids.remove(object_id)
            for store in (self.role_assignments, self.role_eligibilities):
                for key in [k for k, a in store.items() if a["principalId"] == object_id]:
                    del store[key]
            for key in [
                k
                for k, a in self.app_role_assignments.items()
                if object_id in (a["principalId"], a["resourceId"])
            ]:
                del self.app_role_assignments[key]
            self.managers.pop(object_id, None)
            for key in [k for k, m in self.managers.items() if m == object_id]:
                del self.managers[key]
            self.changed.pop(object_id, None)
            self.changed_props.pop(object_id, None)
            self.removed[object_id] = (self._bump(), reason, kind)

    def _link(self, relation: str, group_id: str, target: str, kind: str, *, added: bool) -> None:
        ids = getattr(self, relation).setdefault(group_id, [])
        if added:
            ids.append(target)
        else:
            ids.remove(target)
        self.links.append(Link(self._bump(), relation, group_id, target, kind, added))

    def add_member(self, group_id: str, member_id: str, track: bool = True) -> None:
        with self.lock:
            if member_id in self.members[group_id]:
                return
            if track:
                self._link("members", group_id, member_id, self.types[member_id], added=True)
            else:
                self.members[group_id].append(member_id)

    def remove_member(self, group_id: str, member_id: str) -> None:
        with self.lock:
            self._link("members", group_id, member_id, self.types[member_id], added=False)

    def add_owner(self, group_id: str, owner_id: str, track: bool = True) -> None:
        with self.lock:
            if owner_id in self.owners[group_id]:
                return
            if track:
                self._link("owners", group_id, owner_id, self.types[owner_id], added=True)
            else:
                self.owners[group_id].append(owner_id)

    def remove_owner(self, group_id: str, owner_id: str) -> None:
        with self.lock:
            self._link("owners", group_id, owner_id, self.types[owner_id], added=False)

    def add_sp_owner(self, sp_id: str, owner_id: str) -> None:
        """An owner of a service principal (a user or a service principal). Not a group link:
        nothing in ``/groups/delta`` reports it."""
        with self.lock:
            ids = self.sp_owners.setdefault(sp_id, [])
            if owner_id not in ids:
                ids.append(owner_id)
            self._bump()

    def remove_sp_owner(self, sp_id: str, owner_id: str) -> None:
        with self.lock:
            self.sp_owners[sp_id].remove(owner_id)
            self._bump()

    def add_role_definition(self, role_id: str, name: str) -> None:
        self.role_definitions[role_id] = {
            "id": role_id,
            "displayName": name,
            "description": name,
            "isBuiltIn": False,
            "isEnabled": True,
            "templateId": role_id,
            "resourceScopes": ["/"],
            "version": "1",
        }

    def assign_role(
        self, principal_id: str, role_id: str, scope: str = "/", *, eligible: bool = False
    ) -> str:
        with self.lock:
            # Real ids look like "lAPpYvVpN0KRkAEhdxReEMmO4KwRqtpKkUWt3wOYIz4-1"; opaque here.
            assignment_id = f"{uuid.uuid4().hex}-1" + ("-e" if eligible else "")
            record: dict[str, Any] = {
                "id": assignment_id,
                "principalId": principal_id,
                "roleDefinitionId": role_id,
                "directoryScopeId": scope,
                "appScopeId": None,
            }
            if eligible:
                record |= {
                    "memberType": "Direct",
                    "startDateTime": "2025-01-01T00:00:00Z",
                    "endDateTime": None,
                    "roleEligibilityScheduleId": assignment_id.removesuffix("-1-e"),
                }
                self.role_eligibilities[assignment_id] = record
            else:
                record["resourceScope"] = scope
                self.role_assignments[assignment_id] = record
            self._bump()
            return assignment_id

    def assign_app_role(self, principal_id: str, resource_id: str, app_role_id: str) -> str:
        with self.lock:
            kind = self.types[principal_id]
            principal = self.objects[principal_id]
            assignment_id = uuid.uuid4().hex
            self.app_role_assignments[assignment_id] = {
                "id": assignment_id,
                "appRoleId": app_role_id,
                "createdDateTime": iso(datetime.now(UTC)),
                "deletedDateTime": None,
                "principalDisplayName": principal.get("displayName"),
                "principalId": principal_id,
                "principalType": {"user": "User", "group": "Group"}.get(kind, "ServicePrincipal"),
                "resourceDisplayName": self.objects[resource_id]["displayName"],
                "resourceId": resource_id,
            }
            self._bump()
            return assignment_id
