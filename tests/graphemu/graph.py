"""Microsoft Graph v1.0 read endpoints over a :class:`~graphemu.tenant.Tenant`.

Pure request -> reply logic (no sockets): the server authenticates the caller, applies faults,
and hands the request here, for top-level requests and ``$batch`` items alike. Behaviour follows
learn.microsoft.com (paging, query options, permissions, error bodies); where Microsoft does not
document a detail the choice is marked ``[assumed]``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .tenant import DEFAULTS, ODATA_TYPE, PROPERTIES, USER_NOT_IN_COLLECTION, Tenant

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


def _token() -> str:
    return base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")


def _denied() -> GraphError:
    return GraphError(
        403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )


def _not_found(object_id: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{object_id}' does not exist or one of its queried reference-property "
        "objects are not present.",
    )


class GraphApi:
    """The read side of Graph v1.0 for the emulator's tenants."""

    def __init__(self, base_url: Callable[[], str]) -> None:
        self._base_url = base_url
        self._cursors: dict[str, _Cursor] = {}
        self._lock = threading.Lock()
        self.page_token_ttl: float | None = None  # seconds; None = page tokens never expire
        self.signin_page_cap = 500  # 120 in older docs, 500 in the 2025 docs
        self.delta_page_size = 50  # entries per delta page [assumed]
        self.delta_members_per_entry = 100  # members@delta slice per group entry [assumed]
        self.delta_replay = False  # repeat every changed entry once (documented "replays")
        #: documented v1.0 known issue: service principals are not listed as members / owners
        self.omit_service_principals = False

    # --- entry point --------------------------------------------------------------------------

    def handle(self, req: Request, caller: Caller) -> Reply:
        if req.method != "GET":
            raise GraphError(
                405,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request target.",
            )
        segs = [unquote(s) for s in req.path.split("/")[2:] if s != ""]
        if not segs:
            raise GraphError(400, "BadRequest", "Invalid request.")
        head, rest = segs[0], segs[1:]
        if head in ("users", "groups"):
            return self._directory(req, caller, head, rest)
        if head == "servicePrincipals":
            return self._service_principals(req, caller, rest)
        if head == "roleManagement" and rest[:1] == ["directory"] and len(rest) == 2:
            return self._role_management(req, caller, rest[1])
        if head == "directoryRoles":
            return self._directory_roles(req, caller, rest)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{head}'.")

    # --- helpers ------------------------------------------------------------------------------

    def _context(self, what: str) -> str:
        return f"{self._base_url()}/v1.0/$metadata#{what}"

    def _select(self, req: Request, kind: str) -> list[str] | None:
        raw = req.query.get("$select")
        if raw is None:
            return None
        names = [s.strip() for s in raw.split(",") if s.strip()]
        known = set(PROPERTIES[kind])
        for name in names:
            if kind == "user" and name in USER_NOT_IN_COLLECTION:
                raise GraphError(
                    501, "NotImplemented", "This operation target is not yet supported."
                )
            if name not in known and name not in ("members", "owners"):
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    f"Could not find a property named '{name}' on type 'microsoft.graph.{kind}'.",
                )
        return names

    @staticmethod
    def _project(obj: Mapping[str, Any], kind: str, select: list[str] | None) -> dict[str, Any]:
        names = list(DEFAULTS[kind]) if select is None else ["id", *select]
        out: dict[str, Any] = {}
        for name in names:
            if name in ("members", "owners") or name in out:
                continue
            if name == "signInActivity":
                # "not returned for a user who has never signed in or last signed in before
                # April 2020" (signInActivity resource)
                if obj.get(name) is not None:
                    out[name] = obj[name]
                continue
            if name in PROPERTIES[kind]:
                out[name] = obj.get(name)
        return out

    def _directory_object(
        self, caller: Caller, object_id: str, select: list[str] | None
    ) -> dict[str, Any]:
        """A member/owner entry; limited information when the caller may not read its type."""
        kind = caller.tenant.type_of(object_id) or "user"
        obj = caller.tenant.objects.get(object_id, {"id": object_id})
        names = list(DEFAULTS[kind]) if select is None else ["id", *select]
        out: dict[str, Any] = {"@odata.type": ODATA_TYPE[kind]}
        if caller.can(kind):
            for name in names:
                if name in PROPERTIES[kind] and name not in out:
                    out[name] = obj.get(name)
        else:
            # "only the @odata.type property for the object type and the id is returned, while
            # other properties are indicated as null" (group-list-members)
            for name in names:
                out[name] = object_id if name == "id" else None
        return out

    @staticmethod
    def _top(req: Request) -> int | None:
        raw = req.query.get("$top")
        if raw is None:
            return None
        if not raw.isdigit() or not 1 <= int(raw) <= 999:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive.",
            )
        return int(raw)

    def _next_link(self, req: Request, token: str) -> str:
        kept = [
            p for p in req.raw_query.split("&") if p and not p.lower().startswith("$skiptoken=")
        ]
        kept.append(f"$skiptoken={token}")
        return f"{self._base_url()}{req.path}?{'&'.join(kept)}"

    def _cursor(self, req: Request) -> _Cursor | None:
        token = req.query.get("$skiptoken")
        if token is None:
            return None
        with self._lock:
            cursor = self._cursors.get(token)
        if cursor is None or cursor.path != req.path:
            raise GraphError(
                400, "Request_BadRequest", "The specified page token value is invalid."
            )
        if self.page_token_ttl is not None and time.time() - cursor.created > self.page_token_ttl:
            raise expired_page_token()
        return cursor

    def _store(self, cursor: _Cursor) -> str:
        token = _token()
        with self._lock:
            self._cursors[token] = cursor
        return token

    def _page(
        self,
        req: Request,
        items: list[Any],
        project: Callable[[Any], dict[str, Any]],
        context: str,
        *,
        default: int = 100,
        cap: int = 999,
        count: bool = True,
    ) -> Reply:
        top = self._top(req)
        size = min(top or default, cap)
        cursor = self._cursor(req)
        offset = cursor.offset if cursor else 0
        body: dict[str, Any] = {"@odata.context": context}
        if count and cursor is None and req.query.get("$count") == "true" and req.advanced:
            body["@odata.count"] = len(items)  # only on page 1, only with ConsistencyLevel
        end = offset + size
        if end < len(items):
            token = self._store(_Cursor(req.path, end, time.time()))
            body["@odata.nextLink"] = self._next_link(req, token)
        body["value"] = [project(o) for o in items[offset:end]]
        return Reply(200, body)

    def _filter(self, req: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        expr = req.query.get("$filter")
        if not expr:
            return items
        advanced = req.advanced and req.query.get("$count") == "true"
        tests: list[Callable[[dict[str, Any]], bool]] = []
        for clause in re.split(r"\s+and\s+", expr.strip(), flags=re.I):
            m = re.fullmatch(r"(endsWith|startsWith)\((\w+),\s*'((?:[^']|'')*)'\)", clause, re.I)
            if m:
                op, prop, text = m.group(1).lower(), m.group(2), m.group(3).replace("''", "'")
                if op == "endswith" and not advanced:
                    raise GraphError(
                        400, "Request_UnsupportedQuery", ADVANCED_MESSAGE.format(op="endsWith")
                    )
                low = text.lower()
                tests.append(
                    (lambda o, p=prop, t=low: str(o.get(p) or "").lower().endswith(t))
                    if op == "endswith"
                    else (lambda o, p=prop, t=low: str(o.get(p) or "").lower().startswith(t))
                )
                continue
            m = re.fullmatch(r"(\w+)\s+(eq|ne)\s+(.+)", clause.strip())
            if not m:
                raise GraphError(
                    400, "Request_UnsupportedQuery", f"Unsupported query filter clause '{clause}'."
                )
            prop, op, raw = m.groups()
            value: Any
            if raw.startswith("'") and raw.endswith("'"):
                value = raw[1:-1].replace("''", "'")
            else:
                value = {"true": True, "false": False, "null": None}.get(raw, raw)
            if op == "ne" and not advanced:
                raise GraphError(400, "Request_UnsupportedQuery", ADVANCED_MESSAGE.format(op="ne"))
            if op == "eq":
                tests.append(lambda o, p=prop, v=value: o.get(p) == v)
            else:
                tests.append(lambda o, p=prop, v=value: o.get(p) != v)
        return [o for o in items if all(t(o) for t in tests)]

    def _search(self, req: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        raw = req.query.get("$search")
        if raw is None:
            return items
        if not req.advanced:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                "Request with $search query parameter only works through MSGraph with a special "
                "request header: 'ConsistencyLevel: eventual'",
            )
        m = re.fullmatch(r'"(\w+):(.*)"', raw.strip())
        if not m:
            raise GraphError(400, "Request_UnsupportedQuery", "Invalid $search syntax.")
        prop, text = m.group(1), m.group(2).lower()
        return [o for o in items if text in str(o.get(prop) or "").lower()]

    # --- /users and /groups -------------------------------------------------------------------

    def _directory(self, req: Request, caller: Caller, head: str, rest: list[str]) -> Reply:
        kind = "user" if head == "users" else "group"
        if not caller.can(kind):
            raise _denied()
        tenant = caller.tenant
        if not rest:
            return self._list_directory(req, caller, head, kind)
        if rest == ["$count"]:
            if not req.advanced:
                raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")
            items = self._filter(req, tenant.of_type(kind))
            return Reply(200, str(len(items)), {"Content-Type": "text/plain"})
        if rest[0] in ("delta", "microsoft.graph.delta") and len(rest) == 1:
            return self._delta(req, caller, kind)
        obj = tenant.by_id_or_upn(kind, rest[0])
        if obj is None:
            raise _not_found(rest[0])
        if len(rest) == 1:
            select = self._select(req, kind)
            self._check_sign_in(req, caller, select)
            body = {"@odata.context": self._context(f"{head}/$entity")}
            body |= self._project(obj, kind, select)
            return Reply(200, body)
        if kind == "group" and rest[1] in ("members", "transitiveMembers", "owners"):
            return self._links(req, caller, obj["id"], rest[1], rest[2:])
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[1]}'.")

    def _check_sign_in(self, req: Request, caller: Caller, select: list[str] | None) -> None:
        uses = "signInActivity" in (select or []) or "signInActivity" in req.query.get(
            "$filter", ""
        )
        if not uses:
            return
        if not caller.can("auditlog"):
            raise _denied()
        if not caller.tenant.premium:
            raise GraphError(
                403,
                "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                "Neither tenant is B2C or tenant doesn't have premium license",
            )

    def _list_directory(self, req: Request, caller: Caller, head: str, kind: str) -> Reply:
        select = self._select(req, kind)
        self._check_sign_in(req, caller, select)
        items = self._search(req, self._filter(req, caller.tenant.of_type(kind)))
        cap = 999
        if "signInActivity" in (select or []):
            cap = self.signin_page_cap  # "pages with up to 500 users"
        expand = req.query.get("$expand")
        if expand and kind == "group" and expand.split("(")[0] == "members":
            cap = 100  # known issue: with $expand the outer page is capped at 100 [secondary]
        context = head if select is None else f"{head}({','.join(select)})"

        def project(obj: dict[str, Any]) -> dict[str, Any]:
            out = self._project(obj, kind, select)
            if expand and kind == "group" and expand.split("(")[0] == "members":
                # "$expand returns a maximum of 20 objects" for directory objects, no nextLink
                ids = caller.tenant.members.get(obj["id"], [])[:20]
                out["members"] = [self._directory_object(caller, i, ["displayName"]) for i in ids]
            return out

        return self._page(req, items, project, self._context(context), cap=cap)

    def _links(
        self, req: Request, caller: Caller, group_id: str, relation: str, cast: list[str]
    ) -> Reply:
        tenant = caller.tenant
        group = tenant.objects[group_id]
        if (
            relation != "owners"
            and (group.get("visibility") or "").lower() == "hiddenmembership"
            and not caller.can("hidden")
        ):
            raise _denied()
        if relation == "transitiveMembers":
            ids = tenant.transitive_members(group_id)
        elif relation == "members":
            ids = list(tenant.members.get(group_id, []))
        else:
            ids = list(tenant.owners.get(group_id, []))
        if self.omit_service_principals:
            ids = [i for i in ids if tenant.type_of(i) != "servicePrincipal"]
        context = "directoryObjects"
        if cast:
            type_name = cast[0].removeprefix("microsoft.graph.")
            if len(cast) > 1 or type_name not in ODATA_TYPE:
                raise GraphError(
                    400,
                    "Request_UnsupportedQuery",
                    f"The type cast '{cast[0]}' is not supported for this relationship.",
                )
            ids = [i for i in ids if tenant.type_of(i) == type_name]
            context = f"{type_name}s"
        select = None
        if "$select" in req.query:
            select = [s.strip() for s in req.query["$select"].split(",") if s.strip()]
        return self._page(
            req,
            ids,
            lambda i: self._directory_object(caller, i, select),
            self._context(context),
        )

    # --- delta --------------------------------------------------------------------------------

    def _delta_link(self, req: Request, kind: str, version: int, select: list[str] | None) -> str:
        state = {"k": kind, "v": version, "s": select, "t": int(time.time())}
        token = base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")
        return f"{self._base_url()}{req.path}?$deltatoken={token}"

    def _delta(self, req: Request, caller: Caller, kind: str) -> Reply:
        head = "users" if kind == "user" else "groups"
        cursor = self._cursor(req)
        if cursor is None:
            since: int | None = None
            select = self._select(req, kind)
            token = req.query.get("$deltatoken")
            if token == "latest":
                body = {
                    "@odata.context": self._context(head),
                    "@odata.deltaLink": self._delta_link(req, kind, caller.tenant.version, select),
                    "value": [],
                }
                return Reply(200, body)
            if token:
                try:
                    state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
                    since, select = int(state["v"]), state["s"]
                    assert state["k"] == kind
                except Exception:
                    raise GraphError(
                        400, "Request_BadRequest", "The specified delta token value is invalid."
                    ) from None
                if time.time() - int(state["t"]) > 7 * 86400:
                    raise GraphError(
                        400, "syncStateNotFound", "The sync state generation is not found."
                    )
            if select and "signInActivity" in select:
                raise GraphError(
                    400, "Request_UnsupportedQuery", "signInActivity is not supported with delta."
                )
            with caller.tenant.lock:
                entries = self._delta_entries(req, caller, kind, since, select)
                version = caller.tenant.version
            cursor = _Cursor(req.path, 0, time.time(), entries, version, select)
        assert cursor.entries is not None
        end = cursor.offset + self.delta_page_size
        body: dict[str, Any] = {"@odata.context": self._context(head)}
        if end < len(cursor.entries):
            nxt = _Cursor(
                req.path,
                end,
                cursor.created,
                cursor.entries,
                cursor.delta_version,
                cursor.delta_select,
            )
            body["@odata.nextLink"] = f"{self._base_url()}{req.path}?$skiptoken={self._store(nxt)}"
        else:
            body["@odata.deltaLink"] = self._delta_link(
                req, kind, cursor.delta_version, cursor.delta_select
            )
        body["value"] = cursor.entries[cursor.offset : end]
        return Reply(200, body)

    def _delta_entries(
        self,
        req: Request,
        caller: Caller,
        kind: str,
        since: int | None,
        select: list[str] | None,
    ) -> list[dict[str, Any]]:
        tenant = caller.tenant
        relations = [r for r in ("members", "owners") if kind == "group" and r in (select or [])]
        minimal = "return=minimal" in req.headers.get("prefer", "")
        link_changes: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        if since is None:
            changed = [o["id"] for o in tenant.of_type(kind)]
            for gid in changed:
                for relation in relations:
                    for target in getattr(tenant, relation).get(gid, []):
                        link_changes.setdefault(gid, {})[(relation, target)] = {
                            "@odata.type": ODATA_TYPE[tenant.types[target]],
                            "id": target,
                        }
        else:
            changed = [
                i for i, v in tenant.changed.items() if v > since and tenant.types.get(i) == kind
            ]
            for link in tenant.links:
                if link.version <= since or link.relation not in relations:
                    continue
                entry: dict[str, Any] = {
                    "@odata.type": ODATA_TYPE[link.target_type],
                    "id": link.target_id,
                }
                if not link.added:
                    entry["@removed"] = {"reason": "deleted"}
                link_changes.setdefault(link.group_id, {})[(link.relation, link.target_id)] = entry
        entries: list[dict[str, Any]] = []
        ids = list(dict.fromkeys([*changed, *[g for g in link_changes if g in tenant.objects]]))
        for object_id in ids:
            props_changed = since is None or tenant.changed.get(object_id, 0) > since
            first: dict[str, Any]
            if props_changed or not minimal:
                first = self._project(tenant.objects[object_id], kind, select)
            else:
                first = {"id": object_id}
            slices: dict[str, list[dict[str, Any]]] = {}
            for (relation, _), entry in link_changes.get(object_id, {}).items():
                slices.setdefault(relation, []).append(entry)
            chunk = self.delta_members_per_entry
            members = slices.get("members", [])
            if "owners" in slices:
                first["owners@delta"] = slices["owners"]
            if members:
                first["members@delta"] = members[:chunk]
            entries.append(first)
            for start in range(chunk, len(members), chunk):
                # Large groups: "the same group can appear on several pages, each with a
                # different slice of members" (delta-query-groups).
                entries.append({"id": object_id, "members@delta": members[start : start + chunk]})
        if since is not None:
            for object_id, (version, reason, removed_kind) in tenant.removed.items():
                if version > since and removed_kind == kind:
                    entries.append({"id": object_id, "@removed": {"reason": reason}})
        if self.delta_replay:
            entries = entries + [dict(e) for e in entries]
        return entries

    # --- service principals and app roles -----------------------------------------------------

    def _service_principals(self, req: Request, caller: Caller, rest: list[str]) -> Reply:
        if not caller.can("servicePrincipal"):
            raise _denied()
        tenant = caller.tenant
        if not rest:
            select = self._select(req, "servicePrincipal")
            items = self._filter(req, tenant.of_type("servicePrincipal"))
            context = (
                "servicePrincipals" if select is None else f"servicePrincipals({','.join(select)})"
            )
            return self._page(
                req,
                items,
                lambda o: self._project(o, "servicePrincipal", select),
                self._context(context),
            )
        if tenant.type_of(rest[0]) != "servicePrincipal":
            raise _not_found(rest[0])
        if len(rest) == 1:
            body = {"@odata.context": self._context("servicePrincipals/$entity")}
            body |= self._project(
                tenant.objects[rest[0]], "servicePrincipal", self._select(req, "servicePrincipal")
            )
            return Reply(200, body)
        if rest[1] in ("appRoleAssignedTo", "appRoleAssignments") and len(rest) == 2:
            key = "resourceId" if rest[1] == "appRoleAssignedTo" else "principalId"
            items = [a for a in tenant.app_role_assignments.values() if a[key] == rest[0]]
            return self._page(
                req,
                items,
                dict,
                self._context(f"servicePrincipals('{rest[0]}')/{rest[1]}"),
            )
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[1]}'.")

    # --- directory roles ----------------------------------------------------------------------

    def _role_management(self, req: Request, caller: Caller, what: str) -> Reply:
        tenant = caller.tenant
        context = self._context(f"roleManagement/directory/{what}")
        if what == "roleDefinitions":
            if not caller.can("roles"):
                raise _denied()
            items = self._filter(req, list(tenant.role_definitions.values()))
            return self._page(req, items, dict, context)
        if what == "roleAssignments":
            if not caller.can("roles"):
                raise _denied()
            items = self._filter(req, list(tenant.role_assignments.values()))
            return self._page(req, items, self._expand_principal(req, caller), context)
        if what in ("roleEligibilitySchedules", "roleEligibilityScheduleInstances"):
            if not caller.can("eligibility"):
                raise _denied()
            if not tenant.p2:
                raise GraphError(
                    400,
                    "AadPremiumLicenseRequired",
                    "The tenant needs to have Microsoft Entra ID P2 or Microsoft Entra ID "
                    "Governance license.",
                )
            items = self._filter(req, list(tenant.role_eligibilities.values()))
            return self._page(req, items, self._expand_principal(req, caller), context)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{what}'.")

    def _expand_principal(
        self, req: Request, caller: Caller
    ) -> Callable[[dict[str, Any]], dict[str, Any]]:
        expand = req.query.get("$expand") == "principal"

        def project(a: dict[str, Any]) -> dict[str, Any]:
            out = dict(a)
            if expand:
                out["principal"] = self._directory_object(caller, a["principalId"], None)
            return out

        return project

    def _directory_roles(self, req: Request, caller: Caller, rest: list[str]) -> Reply:
        """Activated roles only, unpaged (directoryRoles don't support paging)."""
        if not caller.can("roles"):
            raise _denied()
        tenant = caller.tenant
        active: dict[str, list[str]] = {}
        for a in tenant.role_assignments.values():
            if a["directoryScopeId"] == "/":
                active.setdefault(a["roleDefinitionId"], []).append(a["principalId"])
        roles = {str(uuid.uuid5(uuid.NAMESPACE_OID, role_id)): role_id for role_id in active}
        if not rest:
            value = [
                {
                    "id": rid,
                    "deletedDateTime": None,
                    "description": tenant.role_definitions[tid]["description"],
                    "displayName": tenant.role_definitions[tid]["displayName"],
                    "roleTemplateId": tid,
                }
                for rid, tid in roles.items()
            ]
            return Reply(200, {"@odata.context": self._context("directoryRoles"), "value": value})
        if rest[0] not in roles:
            raise _not_found(rest[0])
        if rest[1:] == ["members"]:
            value = [self._directory_object(caller, p, None) for p in active[roles[rest[0]]]]
            return Reply(200, {"@odata.context": self._context("directoryObjects"), "value": value})
        raise GraphError(400, "BadRequest", "Resource not found for the segment.")


def expired_page_token() -> GraphError:
    # Undocumented code seen in msgraph-sdk-dotnet#2254 and AzureHound PR #189; status assumed.
    return GraphError(
        400,
        "Directory_ExpiredPageToken",
        "The specified page token value has expired and can no longer be included in your request.",
    )


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
