"""Azure Resource Manager's role-assignment and role-definition reads, emulated on the same
loopback server as Graph (paths ``/subscriptions/...`` and ``/providers/Microsoft.Management/
managementGroups/...`` never collide with Graph's ``/v1.0``).

From Microsoft's documented behaviour:

* tokens: ARM accepts only tokens issued for it (``aud`` ``https://management.azure.com/``); a
  Graph token gets 401 ``InvalidAuthenticationTokenAudience`` (the scope an app asks msal for is
  ``https://management.azure.com/.default``);
* ``GET {scope}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01``
  (Role Assignments - List For Scope): without a filter the assignments at, above and below the
  scope; ``$filter=atScope()`` only at and above. ``nextLink`` (absolute, with ``$skipToken``)
  until the last page. Role definitions likewise (``.../roleDefinitions``: built-in roles and
  the custom roles assignable at the scope).
* authorization: the caller's service principal needs a role assignment at or above the scope
  (Reader is enough), else 403 ``AuthorizationFailed`` with the documented message; an unknown
  subscription is 404 ``SubscriptionNotFound``.
* throttling ("Understand how Azure Resource Manager throttles requests"): reads are a token
  bucket of 250 refilled at 25 per second per subscription and principal; an empty bucket is
  429 with ``Retry-After`` in seconds; ``x-ms-ratelimit-remaining-subscription-reads`` on every
  answer. The emulator's bucket size and refill are settable so tests can throttle cheaply.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from accessaudit.graphemu.protocol import Reply, page_token

ARM_RESOURCE = "https://management.azure.com"
ARM_AUDIENCES = (
    "https://management.azure.com/",
    "https://management.azure.com",
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
)
MG_PREFIX = "/providers/microsoft.management/managementgroups/"
AUTH = "/providers/microsoft.authorization/"

#: Built-in roles with their fixed ids (learn.microsoft.com/azure/role-based-access-control/
#: built-in-roles).
BUILT_IN: dict[str, tuple[str, list[str]]] = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": ("Owner", ["*"]),
    "b24988ac-6180-42a0-ab88-20f7382dd24c": ("Contributor", ["*"]),
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": ("Reader", ["*/read"]),
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": (
        "User Access Administrator",
        ["*/read", "Microsoft.Authorization/*"],
    ),
}
OWNER, CONTRIBUTOR, READER = (
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "acdd72a7-3385-48ef-bd42-f606fba81ae7",
)


@dataclass
class Assignment:
    scope: str  # "/subscriptions/<id>/resourceGroups/<rg>" as written
    role_id: str  # the role definition GUID
    principal_id: str
    principal_type: str = "User"
    name: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class ArmTenant:
    """One tenant's management groups, subscriptions, custom roles and assignments."""

    tenant_id: str
    management_groups: dict[str, str | None] = field(default_factory=dict)  # id -> parent id
    subscriptions: dict[str, str | None] = field(default_factory=dict)  # id -> management group
    custom_roles: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    assignments: list[Assignment] = field(default_factory=list)
    page_size: int = 100
    bucket: float = 250.0  # read tokens per subscription and principal
    refill: float = 25.0  # per second
    _buckets: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    _cursors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- scopes -------------------------------------------------------------------------------

    def ancestors(self, scope: str) -> list[str]:
        """The scope and every scope above it, lower-cased, ending with the root ``/``."""
        low = scope.lower().rstrip("/")
        out: list[str] = []
        mg: str | None = None
        if low.startswith("/subscriptions/"):
            parts = low.split("/")
            for end in range(len(parts), 2, -1):
                out.append("/".join(parts[:end]))
            mg = {k.lower(): v for k, v in self.subscriptions.items()}.get(parts[2])
        elif low.startswith(MG_PREFIX):
            mg = low[len(MG_PREFIX) :]
        parents = {k.lower(): v for k, v in self.management_groups.items()}
        seen: set[str] = set()
        while mg and mg.lower() not in seen:
            seen.add(mg.lower())
            out.append(MG_PREFIX + mg.lower())
            mg = parents.get(mg.lower())
        return [*dict.fromkeys(out), "/"]

    def below(self, scope: str, candidate: str) -> bool:
        return scope.lower().rstrip("/") in self.ancestors(candidate)[1:]

    def exists(self, scope: str) -> bool:
        low = scope.lower()
        if low.startswith("/subscriptions/"):
            return low.split("/")[2] in {s.lower() for s in self.subscriptions}
        if low.startswith(MG_PREFIX):
            return low[len(MG_PREFIX) :] in {m.lower() for m in self.management_groups}
        return low == "/"

    def roles(self) -> dict[str, tuple[str, list[str]]]:
        return BUILT_IN | self.custom_roles

    # --- throttling ---------------------------------------------------------------------------

    def take(self, subscription: str, principal: str) -> tuple[float | None, int]:
        """A read token: (None, remaining) or (seconds to wait, 0) when the bucket is empty."""
        with self._lock:
            now = time.monotonic()
            level, at = self._buckets.get((subscription, principal), (self.bucket, now))
            level = min(self.bucket, level + (now - at) * self.refill)
            if level < 1:
                self._buckets[(subscription, principal)] = (level, now)
                return (1 - level) / self.refill, 0
            self._buckets[(subscription, principal)] = (level - 1, now)
            return None, int(level - 1)


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}}, dict(headers or {}))


def _claims(key: rsa.RSAPrivateKey, headers: Mapping[str, str], min_serial: int) -> Any:
    auth = headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    if not token:
        return _error(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        )
    try:
        claims = jwt.decode(
            token, key.public_key(), algorithms=["RS256"], options={"verify_aud": False}
        )
    except jwt.ExpiredSignatureError:
        return _error(401, "ExpiredAuthenticationToken", "The access token expiry UTC time is "
                      "earlier than current UTC time.")  # fmt: skip
    except jwt.PyJWTError:
        return _error(401, "InvalidAuthenticationToken", "The access token is invalid.")
    if claims.get("aud") not in ARM_AUDIENCES:
        allowed = ",".join(f"'{a}'" for a in ARM_AUDIENCES)
        return _error(
            401,
            "InvalidAuthenticationTokenAudience",
            f"The access token has been obtained for wrong audience or resource "
            f"'{claims.get('aud')}'. It should exactly match with one of the allowed audiences "
            f"{allowed}.",
        )
    if int(claims.get("uti", "0")) < min_serial:
        return _error(401, "ExpiredAuthenticationToken", "The access token has expired.")
    return claims


def handle_arm(
    tenants: Mapping[str, ArmTenant],
    base_url: str,
    key: rsa.RSAPrivateKey,
    min_serial: int,
    method: str,
    target: str,
    headers: Mapping[str, str],
) -> Reply:
    """One ARM request (after the emulator's fault switches)."""
    claims = _claims(key, headers, min_serial)
    if isinstance(claims, Reply):
        return claims
    arm = tenants.get(str(claims.get("tid")))
    parts = urlsplit(target)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    low = parts.path.lower()
    kind = next((k for k in ("roleassignments", "roledefinitions") if low.endswith(AUTH + k)), "")
    if method != "GET" or not kind:
        return _error(404, "NotFound", f"The resource '{parts.path}' was not found.")
    if "api-version" not in query:
        return _error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    scope = parts.path[: -len(AUTH + kind)] or "/"
    if arm is None or not arm.exists(scope):
        sub = scope.split("/")[2] if scope.lower().startswith("/subscriptions/") else scope
        return _error(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
    oid = str(claims.get("oid"))
    if not _can_read(arm, oid, scope):
        return _error(
            403,
            "AuthorizationFailed",
            f"The client '{claims.get('appid')}' with object id '{oid}' does not have "
            f"authorization to perform action 'Microsoft.Authorization/{kind[:4]}"
            f"{kind[4:]}/read' over scope '{scope}' or the scope is invalid. If access was "
            "recently granted, please refresh your credentials.",
        )
    sub = scope.split("/")[2].lower() if low.startswith("/subscriptions/") else "tenant"
    wait, remaining = arm.take(sub, oid)
    limit = {"x-ms-ratelimit-remaining-subscription-reads": str(remaining)}
    if wait is not None:
        return _error(
            429,
            "TooManyRequests",
            "The request is being throttled as the limit has been reached for operation type "
            "- Read_ObservationWindow_00:05:00.",
            {"Retry-After": str(max(1, round(wait)))} | limit,
        )
    token = query.get("$skipToken")
    if token is not None:
        items = arm._cursors.pop(token, None)
        if items is None:
            return _error(400, "InvalidSkipToken", "The skip token is invalid or has expired.")
    elif kind == "roleassignments":
        items = _assignments(arm, scope, query.get("$filter", ""))
    else:
        items = _definitions(arm, scope)
    page, rest = items[: arm.page_size], items[arm.page_size :]
    body: dict[str, Any] = {"value": page}
    if rest:
        next_token = page_token()
        arm._cursors[next_token] = rest
        link_query = urlencode({"api-version": query["api-version"], "$skipToken": next_token})
        body["nextLink"] = f"{base_url}{parts.path}?{link_query}"
    return Reply(200, body, limit)


def _can_read(arm: ArmTenant, oid: str, scope: str) -> bool:
    above = set(arm.ancestors(scope))
    return any(a.principal_id == oid and a.scope.lower() in above for a in arm.assignments)


def _role_id(scope: str, role: str) -> str:
    low = scope.lower()
    prefix = "/".join(scope.split("/")[:3]) if low.startswith("/subscriptions/") else ""
    return f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{role}"


def _assignments(arm: ArmTenant, scope: str, filter_text: str) -> list[dict[str, Any]]:
    at_scope = "atscope()" in filter_text.replace(" ", "").lower()
    above = set(arm.ancestors(scope))
    out = []
    for a in arm.assignments:
        if not (a.scope.lower() in above or (not at_scope and arm.below(scope, a.scope))):
            continue
        out.append(
            {
                "id": f"{a.scope.rstrip('/')}/providers/Microsoft.Authorization/"
                f"roleAssignments/{a.name}",
                "name": a.name,
                "type": "Microsoft.Authorization/roleAssignments",
                "properties": {
                    "roleDefinitionId": _role_id(scope, a.role_id),
                    "principalId": a.principal_id,
                    "principalType": a.principal_type,
                    "scope": a.scope,
                    "condition": None,
                    "conditionVersion": None,
                    "createdOn": "2025-01-01T00:00:00.0000000Z",
                    "updatedOn": "2025-01-01T00:00:00.0000000Z",
                    "createdBy": None,
                    "updatedBy": None,
                    "delegatedManagedIdentityResourceId": None,
                    "description": None,
                },
            }
        )
    return out


def _definitions(arm: ArmTenant, scope: str) -> list[dict[str, Any]]:
    return [
        {
            "id": _role_id(scope, guid),
            "name": guid,
            "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {
                "roleName": name,
                "type": "BuiltInRole" if guid in BUILT_IN else "CustomRole",
                "description": name,
                "assignableScopes": ["/"],
                "permissions": [
                    {"actions": actions, "notActions": [], "dataActions": [], "notDataActions": []}
                ],
            },
        }
        for guid, (name, actions) in arm.roles().items()
    ]
