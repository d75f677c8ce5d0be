"""Request / reply types shared by the emulator's endpoints, permissions and error helpers."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from accessaudit.graphemu.tenant import Tenant

# Application permissions that allow reading each kind of object, least privileged first
# (the "Permissions" table of each API page on learn.microsoft.com/graph/api).
READ: dict[str, frozenset[str]] = {
    "user": frozenset(
        {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
    ),
    "group": frozenset(
        {
            "GroupMember.Read.All",
            "Group.Read.All",
            "Group.ReadWrite.All",
            "GroupMember.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        }
    ),
    "servicePrincipal": frozenset(
        {
            "Application.Read.All",
            "Application.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        }
    ),
    "orgContact": frozenset(
        {"OrgContact.Read.All", "Directory.Read.All", "Directory.ReadWrite.All"}
    ),
    "device": frozenset({"Device.Read.All", "Directory.Read.All", "Directory.ReadWrite.All"}),
    # directory-list-administrativeunits / administrativeunit-list-members (Application)
    "administrativeUnit": frozenset(
        {
            "AdministrativeUnit.Read.All",
            "AdministrativeUnit.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        }
    ),
    "roles": frozenset(
        {
            "RoleManagement.Read.Directory",
            "RoleManagement.Read.All",
            "RoleManagement.ReadWrite.Directory",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        }
    ),
    "eligibility": frozenset(
        {
            "RoleEligibilitySchedule.Read.Directory",
            "RoleEligibilitySchedule.ReadWrite.Directory",
            "RoleManagement.Read.Directory",
            "RoleManagement.Read.All",
            "RoleManagement.ReadWrite.Directory",
        }
    ),
    "auditlog": frozenset({"AuditLog.Read.All"}),
    "hidden": frozenset({"Member.Read.Hidden"}),
}

ADVANCED_MESSAGE = (
    "Operator '{op}' is not supported because the required parameters might be missing. "
    "Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to "
    "https://aka.ms/graph-docs/advanced-queries for more information"
)


class GraphError(Exception):
    """An error reply in Graph's envelope."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


@dataclass
class Reply:
    status: int
    body: Any = None  # dict -> JSON, str -> text/plain, None -> empty
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


@dataclass
class Caller:
    tenant: Tenant
    roles: frozenset[str]

    def can(self, kind: str) -> bool:
        return bool(self.roles & READ[kind])

    def sees_members(self, group: Mapping[str, Any]) -> bool:
        """Whether this caller may see the membership of ``group``: a group whose
        ``visibility`` is ``HiddenMembership`` shows it only to callers holding
        Member.Read.Hidden. Graph does not refuse the others: it answers 200 with the hidden
        group's members left out of ``members`` / ``transitiveMembers`` / ``members@delta`` and
        the group left out of its members' ``memberOf`` (group resource, ``visibility``;
        microsoftgraph/microsoft-graph-docs issues #12552, #10109 and #12285)."""
        hidden = str(group.get("visibility") or "").lower() == "hiddenmembership"
        return not hidden or self.can("hidden")


@dataclass
class Request:
    method: str
    path: str  # "/v1.0/users"
    raw_query: str
    query: dict[str, str]
    headers: Mapping[str, str]  # lower-case names

    @property
    def advanced(self) -> bool:
        return self.headers.get("consistencylevel", "").lower() == "eventual"


@dataclass
class _Cursor:
    path: str
    offset: int
    created: float
    entries: list[dict[str, Any]] | None = None  # delta: the snapshot being paged
    delta_version: int = 0
    delta_select: list[str] | None = None
    delta_ids: list[str] | None = None  # delta: the $filter=id eq ids, kept in the tokens


def parse_request(method: str, target: str, headers: Mapping[str, str]) -> Request:
    parts = urlsplit(target)
    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        # Graph accepts $deltaToken and $deltatoken alike.
        query.setdefault(key.lower() if key.startswith("$") else key, value)
    return Request(
        method=method,
        path=parts.path,
        raw_query=parts.query,
        query=query,
        headers={k.lower(): v for k, v in headers.items()},
    )


def page_token() -> str:
    return base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")


def denied() -> GraphError:
    return GraphError(
        403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )


def not_found(object_id: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{object_id}' does not exist or one of its queried reference-property "
        "objects are not present.",
    )


def expired_page_token() -> GraphError:
    # Undocumented code seen in msgraph-sdk-dotnet#2254 and AzureHound PR #189; status assumed.
    return GraphError(
        400,
        "Directory_ExpiredPageToken",
        "The specified page token value has expired and can no longer be included in your request.",
    )


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
