"""The emulator's directory: objects, links, role and app-role assignments, change tracking.

Objects are stored as Microsoft Graph property dicts (camelCase, as the API returns them). Every
mutation bumps :attr:`Tenant.version` and is recorded, so ``/users/delta`` and ``/groups/delta``
can answer "what changed since version N" exactly as Graph documents it (changed objects in full,
``@removed`` tombstones, ``members@delta`` / ``owners@delta`` with per-link ``@removed``).

:func:`tenant_from_tables` builds a tenant from canonical ``accounts`` / ``groups`` /
``memberships`` / ``grants`` frames, so any canonical dataset (hand-built or
``accessaudit.sample``) can be served.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

ODATA_TYPE = {
    "user": "#microsoft.graph.user",
    "group": "#microsoft.graph.group",
    "servicePrincipal": "#microsoft.graph.servicePrincipal",
    "orgContact": "#microsoft.graph.orgContact",
    "device": "#microsoft.graph.device",
}

#: Returned by GET /users without $select (learn.microsoft.com/graph/api/user-list).
USER_DEFAULT = (
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
)
USER_PROPERTIES = frozenset(
    {
        *USER_DEFAULT,
        "accountEnabled",
        "userType",
        "companyName",
        "department",
        "employeeId",
        "employeeType",
        "creationType",
        "externalUserState",
        "externalUserStateChangeDateTime",
        "createdDateTime",
        "deletedDateTime",
        "identities",
        "lastPasswordChangeDateTime",
        "mailNickname",
        "onPremisesSyncEnabled",
        "onPremisesSecurityIdentifier",
        "onPremisesSamAccountName",
        "onPremisesDistinguishedName",
        "onPremisesDomainName",
        "onPremisesUserPrincipalName",
        "onPremisesImmutableId",
        "onPremisesLastSyncDateTime",
        "securityIdentifier",
        "signInActivity",
        "proxyAddresses",
        "usageLocation",
    }
)
#: Properties that cannot be returned in a collection: 501 NotImplemented.
USER_NOT_IN_COLLECTION = frozenset(
    {"aboutMe", "birthday", "hireDate", "interests", "mySite", "pastProjects", "preferredName",
     "responsibilities", "schools", "skills", "mailboxSettings"}
)  # fmt: skip
GROUP_PROPERTIES = (
    "id",
    "deletedDateTime",
    "classification",
    "createdDateTime",
    "description",
    "displayName",
    "expirationDateTime",
    "groupTypes",
    "isAssignableToRole",
    "mail",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "membershipRuleProcessingState",
    "onPremisesDomainName",
    "onPremisesLastSyncDateTime",
    "onPremisesNetBiosName",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "preferredDataLocation",
    "proxyAddresses",
    "renewedDateTime",
    "securityEnabled",
    "securityIdentifier",
    "visibility",
)
SP_PROPERTIES = (
    "id",
    "accountEnabled",
    "appId",
    "appDisplayName",
    "appRoles",
    "displayName",
    "servicePrincipalType",
    "tags",
)
CONTACT_PROPERTIES = ("id", "displayName", "mail", "companyName", "department")
DEVICE_PROPERTIES = ("id", "displayName", "deviceId", "operatingSystem", "accountEnabled")
PROPERTIES = {
    "user": tuple(sorted(USER_PROPERTIES)),
    "group": GROUP_PROPERTIES,
    "servicePrincipal": SP_PROPERTIES,
    "orgContact": CONTACT_PROPERTIES,
    "device": DEVICE_PROPERTIES,
}
DEFAULTS = {
    "user": USER_DEFAULT,
    "group": GROUP_PROPERTIES,
    "servicePrincipal": SP_PROPERTIES,
    "orgContact": CONTACT_PROPERTIES,
    "device": DEVICE_PROPERTIES,
}

#: A few built-in directory roles (template id = role definition id for built-in roles), from
#: learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference.
BUILTIN_ROLES: tuple[tuple[str, str], ...] = (
    ("62e90394-69f5-4237-9190-012177145e10", "Global Administrator"),
    ("e8611ab8-c189-46e8-94e1-60213ab1f814", "Privileged Role Administrator"),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
    ("194ae4cb-b126-40b2-bd5b-6091b380977d", "Security Administrator"),
    ("729827e3-9c14-49f7-bb1b-9608f156bbb8", "Helpdesk Administrator"),
    ("fdd7a751-b60b-444a-984c-02652fe8fa1c", "Groups Administrator"),
    ("29232cdf-9323-42fd-ade2-1d097af3e4de", "Exchange Administrator"),
    ("f2ef992c-3afb-46b9-b7cf-a126ee74c451", "Global Reader"),
    ("88d8e3e3-8f55-4a1e-953a-9b9898b8876b", "Directory Readers"),
    ("9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", "Application Administrator"),
)
DEFAULT_ACCESS_ROLE = "00000000-0000-0000-0000-000000000000"


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
    role_definitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    role_assignments: dict[str, dict[str, Any]] = field(default_factory=dict)
    role_eligibilities: dict[str, dict[str, Any]] = field(default_factory=dict)
    app_role_assignments: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 0
    changed: dict[str, int] = field(default_factory=dict)  # id -> version of last change
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

    def transitive_members(self, group_id: str) -> list[str]:
        """Flat, de-duplicated, cycle-safe nested members (the group itself excluded)."""
        seen: dict[str, None] = {}
        stack = list(reversed(self.members.get(group_id, [])))
        while stack:
            m = stack.pop()
            if m in seen or m == group_id:
                continue
            seen[m] = None
            if self.types.get(m) == "group":
                stack.extend(reversed(self.members.get(m, [])))
        return list(seen)

    # --- mutations (each one bumps the version and is visible to delta) -----------------------

    def _bump(self) -> int:
        self.version += 1
        return self.version

    def _add(self, kind: str, props: dict[str, Any], *, track: bool) -> str:
        with self.lock:
            object_id = props.setdefault("id", new_id())
            self.objects[object_id] = props
            self.types[object_id] = kind
            self.removed.pop(object_id, None)
            if kind == "group":
                self.members.setdefault(object_id, [])
                self.owners.setdefault(object_id, [])
            if track:
                self.changed[object_id] = self._bump()
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
        props.setdefault("accountEnabled", True)
        props.setdefault("servicePrincipalType", "Application")
        props.setdefault("tags", [])
        return self._add(
            "servicePrincipal",
            {"displayName": display_name, "appDisplayName": display_name, "appRoles": roles}
            | props,
            track=track,
        )

    def update(self, object_id: str, **props: Any) -> None:
        with self.lock:
            self.objects[object_id].update(props)
            self.changed[object_id] = self._bump()

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
            for store in (self.role_assignments, self.role_eligibilities):
                for key in [k for k, a in store.items() if a["principalId"] == object_id]:
                    del store[key]
            for key in [
                k
                for k, a in self.app_role_assignments.items()
                if object_id in (a["principalId"], a["resourceId"])
            ]:
                del self.app_role_assignments[key]
            self.changed.pop(object_id, None)
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


# --- canonical tables -> tenant ---------------------------------------------------------------

_GUEST_IDENTITY = {"signInType": "federated", "issuer": "ExternalAzureAD", "issuerAssignedId": None}


def _user_props(row: dict[str, Any], domain: str) -> dict[str, Any]:
    guest = row.get("kind") == "guest"
    synced = bool(row.get("sid") or row.get("dn")) and not guest
    props: dict[str, Any] = {
        "id": row["account_id"],
        "userPrincipalName": row.get("upn"),
        "displayName": row.get("display_name"),
        "mail": row.get("mail"),
        "mailNickname": row.get("username"),
        "givenName": None,
        "surname": None,
        "jobTitle": None,
        "businessPhones": [],
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "employeeId": row.get("employee_id"),
        "companyName": row.get("company"),
        "department": row.get("department"),
        "accountEnabled": row.get("enabled"),
        "createdDateTime": iso(row.get("created")),
        "lastPasswordChangeDateTime": iso(row.get("pwd_last_set")),
        "userType": "Guest" if guest else "Member",
        "creationType": "Invitation" if guest else None,
        "externalUserState": "Accepted" if guest else None,
        "onPremisesSyncEnabled": True if synced else None,
        "onPremisesSecurityIdentifier": row.get("sid") if synced else None,
        "onPremisesSamAccountName": row.get("username") if synced else None,
        "onPremisesDistinguishedName": row.get("dn") if synced else None,
        "onPremisesDomainName": None,
        "identities": [_GUEST_IDENTITY]
        if guest
        else [
            {
                "signInType": "userPrincipalName",
                "issuer": domain,
                "issuerAssignedId": row.get("upn"),
            }
        ],
    }
    if row.get("last_logon") is not None:
        props["signInActivity"] = {
            "lastSignInDateTime": iso(row["last_logon"]),
            "lastSignInRequestId": new_id(),
            "lastNonInteractiveSignInDateTime": "0001-01-01T00:00:00Z",
            "lastNonInteractiveSignInRequestId": "",
            "lastSuccessfulSignInDateTime": "",
            "lastSuccessfulSignInRequestId": "",
        }
    return props


def _group_props(row: dict[str, Any]) -> dict[str, Any]:
    kind = row.get("kind")
    synced = row.get("mastered") == "ad"
    return {
        "id": row["group_id"],
        "displayName": row.get("name"),
        "description": row.get("description"),
        "groupTypes": ["Unified"] if kind == "m365" else [],
        "securityEnabled": kind not in ("m365", "distribution"),
        "mailEnabled": kind in ("m365", "distribution"),
        "mail": None,
        "mailNickname": None,
        "isAssignableToRole": bool(row.get("privileged")) and not synced,
        "membershipRule": None,
        "membershipRuleProcessingState": None,
        "onPremisesSyncEnabled": True if synced else None,
        "onPremisesSecurityIdentifier": row.get("sid") if synced else None,
        "onPremisesSamAccountName": row.get("name") if synced else None,
        "securityIdentifier": None if synced else row.get("sid"),
        "visibility": None,
        "createdDateTime": "2020-01-01T00:00:00Z",
    }


def _rows(df: pl.DataFrame | None, source: str | None) -> list[dict[str, Any]]:
    if df is None:
        return []
    if source is not None and "source" in df.columns:
        df = df.filter(pl.col("source") == source)
    return df.to_dicts()


def parse_role_right(right: str) -> tuple[str, str, bool]:
    """``"Global Administrator @ / (eligible)"`` -> (name, scope, eligible)."""
    eligible = right.endswith(" (eligible)")
    text = right.removesuffix(" (eligible)")
    name, sep, scope = text.rpartition(" @ ")
    return (name, scope, eligible) if sep else (text, "/", eligible)


def tenant_from_tables(
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
    grants: pl.DataFrame | None = None,
    *,
    tenant_id: str = "11111111-2222-3333-4444-555555555555",
    domain: str = "alliance.onmicrosoft.com",
    source: str | None = None,
    premium: bool = True,
    p2: bool = True,
) -> Tenant:
    """A tenant serving a canonical dataset.

    Mapping (the inverse of the connector's): accounts -> users (guests get ``userType`` Guest,
    ``creationType`` Invitation and an ``ExternalAzureAD`` identity; accounts with a SID or DN
    are on-premises synced), groups -> groups (``mastered`` "ad" -> synced; kind m365 ->
    ``Unified``), memberships -> direct members (``foreign`` members become org contacts),
    grants -> role assignments / eligibilities (``right`` "<role> @ <scope>[ (eligible)]"),
    app-role assignments (``right`` "<app>: <role>") and group owners. ``source`` selects the
    rows of one source; None serves every row.
    """
    tenant = Tenant(tenant_id=tenant_id, domain=domain, premium=premium, p2=p2)
    for row in _rows(accounts, source):
        tenant.add_user(track=False, **_user_props(row, domain))
    group_rows = _rows(groups, source)
    for row in group_rows:
        tenant.add_group(track=False, **_group_props(row))
    edges = memberships
    if source is not None and "source" in edges.columns:
        edges = edges.filter(pl.col("source") == source)
    for group_id, member_id in (
        edges.unique(["group_id", "member_id"], maintain_order=True)
        .select("group_id", "member_id")
        .iter_rows()
    ):
        if group_id not in tenant.types:
            continue
        if member_id not in tenant.types:
            tenant.add_contact(track=False, id=member_id, displayName=f"contact {member_id}")
        tenant.members[group_id].append(member_id)  # unique already; no O(n) check per edge
    for row in group_rows:
        for owner in row.get("owners") or []:
            if owner in tenant.types:
                tenant.add_owner(row["group_id"], owner, track=False)
    for row in _rows(grants, source):
        principal, resource, kind = row["principal_id"], row["resource_id"], row["resource_kind"]
        right = row.get("right") or ""
        if principal not in tenant.types:
            continue
        if kind == "ownership" and tenant.type_of(resource) == "group":
            tenant.add_owner(resource, principal, track=False)
        elif kind == "directory-role":
            name, scope, eligible = parse_role_right(right)
            if resource not in tenant.role_definitions:
                tenant.add_role_definition(resource, name)
            tenant.assign_role(principal, resource, scope, eligible=eligible)
        elif kind == "app-role":
            app, sep, role = right.rpartition(": ")
            app, role = (app, role) if sep else (resource, right)
            if resource not in tenant.types:
                tenant.add_service_principal(app, id=resource, track=False)
            sp = tenant.objects[resource]
            if role == "default access":
                role_id = DEFAULT_ACCESS_ROLE
            else:
                found = [r for r in sp["appRoles"] if r["value"] == role]
                if not found:
                    found = [
                        {
                            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{resource}/{role}")),
                            "value": role,
                            "displayName": role,
                            "description": role,
                            "allowedMemberTypes": ["User"],
                            "isEnabled": True,
                            "origin": "Application",
                        }
                    ]
                    sp["appRoles"].append(found[0])
                role_id = found[0]["id"]
            tenant.assign_app_role(principal, resource, role_id)
    # Loading is the baseline: start change tracking from here.
    tenant.links.clear()
    tenant.changed.clear()
    return tenant
