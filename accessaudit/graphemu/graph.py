"""Microsoft Graph v1.0 read endpoints over a :class:`~accessaudit.graphemu.tenant.Tenant`.

Pure request -> reply logic (no sockets): the server authenticates the caller, applies faults,
and hands the request here, for top-level requests and ``$batch`` items alike. Behaviour follows
learn.microsoft.com (paging, query options, permissions, error bodies); where Microsoft does not
document a detail the choice is marked ``[assumed]``. A ``HiddenMembership`` group's members
are silently left out for callers without Member.Read.Hidden (200, not 403: see
:meth:`.protocol.Caller.sees_members`). Delta queries live in :mod:`.delta`,
service principals and directory roles in :mod:`.roles`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from accessaudit.graphemu.delta import DeltaQueries
from accessaudit.graphemu.odata import (
    DELTA_SEGMENTS,
    cast_type,
    check_options,
    count_reply,
    membership_test,
    order_keys,
    sort_key,
    split_count,
)
from accessaudit.graphemu.protocol import (
    ADVANCED_MESSAGE,
    Caller,
    GraphError,
    Reply,
    Request,
    _Cursor,
    denied,
    expired_page_token,
    not_found,
    page_token,
)
from accessaudit.graphemu.roles import AppsAndRoles
from accessaudit.graphemu.schema import DEFAULTS, ODATA_TYPE, PROPERTIES, USER_NOT_IN_COLLECTION


def _text_test(prop: str, text: str, *, ends: bool) -> Callable[[dict[str, Any]], bool]:
    """``endsWith(prop, 'text')`` / ``startsWith(...)``, case-insensitive."""

    def test(obj: dict[str, Any]) -> bool:
        value = str(obj.get(prop) or "").lower()
        return value.endswith(text) if ends else value.startswith(text)

    return test


def _equality_test(prop: str, value: object, *, equal: bool) -> Callable[[dict[str, Any]], bool]:
    """``prop eq value`` / ``prop ne value``."""

    def test(obj: dict[str, Any]) -> bool:
        return (obj.get(prop) == value) if equal else (obj.get(prop) != value)

    return test


class GraphApi(DeltaQueries, AppsAndRoles):
    """The read side of Graph v1.0 for the emulator's tenants."""

    def __init__(self, base_url: Callable[[], str]) -> None:
        self._base_url = base_url
        self._cursors: dict[str, _Cursor] = {}
        self._lock = threading.Lock()
        self.page_token_ttl: float | None = None  # seconds; None = page tokens never expire
        self.signin_page_cap = 500  # 120 in older docs, 500 in the 2025 docs
        self.delta_page_size = 100  # delta entries per page without a Prefer [assumed]
        self.delta_members_per_entry = 100  # members@delta slice per group entry [assumed]
        self.delta_replay = True  # documented "replays": on by default (see .delta)
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
        check_options(req, segs)
        head, rest = segs[0], segs[1:]
        if head in ("users", "groups"):
            return self._directory(req, caller, head, rest)
        if head == "servicePrincipals":
            return self._service_principals(req, caller, rest)
        if head == "roleManagement" and rest[:1] == ["directory"] and len(rest) == 2:
            return self._role_management(req, caller, rest[1])
        if head == "directoryRoles":
            return self._directory_roles(req, caller, rest)
        # /directory/administrativeUnits is the documented v1.0 path; /administrativeUnits the
        # older one, still answered
        if head == "directory" and rest[:1] == ["administrativeUnits"]:
            return self._administrative_units(req, caller, rest[1:])
        if head == "administrativeUnits":
            return self._administrative_units(req, caller, rest)
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
        token = page_token()
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
                tests.append(_text_test(prop, text.lower(), ends=op == "endswith"))
                continue
            m = re.fullmatch(r"(\w+)\s+in\s+\((.*)\)", clause.strip(), re.I)
            if m:
                # "$filter (eq, in) on id" (user-list, group-list); at most 15 values [assumed]
                values = [v.strip() for v in m.group(2).split(",") if v.strip()]
                if not values or not all(v.startswith("'") and v.endswith("'") for v in values):
                    raise GraphError(
                        400, "Request_BadRequest", f"Invalid filter clause '{clause}'."
                    )
                wanted = frozenset(v[1:-1].replace("''", "'") for v in values)
                tests.append(membership_test(m.group(1), wanted))
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
            tests.append(_equality_test(prop, value, equal=op == "eq"))
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
            raise denied()
        tenant = caller.tenant
        if not rest:
            return self._list_directory(req, caller, head, kind)
        if rest == ["$count"]:
            if not req.advanced:
                raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")
            items = self._filter(req, tenant.of_type(kind))
            return Reply(200, str(len(items)), {"Content-Type": "text/plain"})
        if rest[0] in DELTA_SEGMENTS and len(rest) == 1:
            return self._delta(req, caller, kind)
        obj = tenant.by_id_or_upn(kind, rest[0])
        if obj is None:
            raise not_found(rest[0])
        if len(rest) == 1:
            select = self._select(req, kind)
            self._check_sign_in(req, caller, select)
            body = {"@odata.context": self._context(f"{head}/$entity")}
            body |= self._project(obj, kind, select)
            return Reply(200, body)
        if kind == "group" and rest[1] in ("members", "transitiveMembers", "owners"):
            return self._links(req, caller, obj["id"], rest[1], rest[2:])
        if kind == "user" and rest[1:] == ["manager"]:
            return self._manager(req, caller, obj["id"])
        if rest[1] in ("memberOf", "transitiveMemberOf"):
            return self._member_of(
                req, caller, obj["id"], rest[2:], transitive=rest[1] != "memberOf"
            )
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[1]}'.")

    def _manager(self, req: Request, caller: Caller, user_id: str) -> Reply:
        """user-list-manager: the manager as a directoryObject; none: 404 [message as Graph's]."""
        tenant = caller.tenant
        manager = tenant.managers.get(user_id)
        if manager is None or tenant.type_of(manager) is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                "Resource 'manager' does not exist or one of its queried reference-property "
                "objects are not present.",
            )
        select = None
        if "$select" in req.query:
            select = [x.strip() for x in req.query["$select"].split(",") if x.strip()]
        body = {"@odata.context": self._context("directoryObjects/$entity")}
        return Reply(200, body | self._directory_object(caller, manager, select))

    def _member_of(
        self, req: Request, caller: Caller, object_id: str, cast: list[str], *, transitive: bool
    ) -> Reply:
        """Groups (direct or nested, cycle-safe), activated directory roles held directly and
        administrative units the object is a direct member of (a group in a unit brings the
        group into the unit's scope, not its members: administrative-units overview; that
        transitiveMemberOf therefore lists direct units only is [assumed])."""
        tenant = caller.tenant
        parents = self._parents(caller)
        seen: dict[str, None] = {}
        stack = list(reversed(parents.get(object_id, [])))
        while stack:
            group_id = stack.pop()
            if group_id in seen or group_id == object_id:
                continue
            seen[group_id] = None
            if transitive:
                stack.extend(reversed(parents.get(group_id, [])))
        entries: list[dict[str, Any]] = [
            {"@odata.type": ODATA_TYPE["group"]} | self._project(tenant.objects[g], "group", None)
            for g in seen
        ]
        for role in self._activated_roles(tenant):
            if object_id in role["_members"]:
                entries.append(
                    {"@odata.type": "#microsoft.graph.directoryRole"}
                    | {k: v for k, v in role.items() if k != "_members"}
                )
        for au_id, ids in tenant.au_members.items():
            if object_id in ids:
                entries.append(
                    {"@odata.type": ODATA_TYPE["administrativeUnit"]}
                    | self._project(tenant.objects[au_id], "administrativeUnit", None)
                )
        cast, counted = split_count(req, cast)
        context = "directoryObjects"
        if cast:
            type_name = cast_type(cast, ("group", "directoryRole", "administrativeUnit"))
            entries = [e for e in entries if e["@odata.type"] == f"#microsoft.graph.{type_name}"]
            context = f"{type_name}s"
        if counted:
            return count_reply(len(entries))
        return self._page(req, entries, dict, self._context(context))

    def _check_sign_in(self, req: Request, caller: Caller, select: list[str] | None) -> None:
        uses = "signInActivity" in (select or []) or "signInActivity" in req.query.get(
            "$filter", ""
        )
        if not uses:
            return
        if not caller.can("auditlog"):
            raise denied()
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
        if "$orderby" in req.query:
            for prop, descending in reversed(order_keys(req.query["$orderby"])):
                # case-insensitive, nulls last when ascending [assumed]
                items = sorted(items, key=sort_key(prop), reverse=descending)
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
                ids = ids if caller.sees_members(obj) else []
                out["members"] = [self._directory_object(caller, i, ["displayName"]) for i in ids]
            return out

        return self._page(req, items, project, self._context(context), cap=cap)

    def _links(
        self, req: Request, caller: Caller, group_id: str, relation: str, cast: list[str]
    ) -> Reply:
        tenant = caller.tenant
        if relation != "owners" and not caller.sees_members(tenant.objects[group_id]):
            ids: list[str] = []  # silently empty, 200 (Caller.sees_members)
        elif relation == "transitiveMembers":
            ids = tenant.transitive_members(group_id, self._opaque(caller))
        elif relation == "members":
            ids = list(tenant.members.get(group_id, []))
        else:
            ids = list(tenant.owners.get(group_id, []))
        if self.omit_service_principals:
            ids = [i for i in ids if tenant.type_of(i) != "servicePrincipal"]
        return self._object_links(req, caller, ids, cast)

    def _parents(self, caller: Caller) -> dict[str, list[str]]:
        """member -> the groups it is a direct member of, hidden memberships left out."""
        parents: dict[str, list[str]] = {}
        opaque = self._opaque(caller)
        for group_id, ids in caller.tenant.members.items():
            if group_id in opaque:
                continue
            for member in ids:
                parents.setdefault(member, []).append(group_id)
        return parents

    @staticmethod
    def _opaque(caller: Caller) -> frozenset[str]:
        """The groups whose membership ``caller`` may not see (Caller.sees_members)."""
        groups = caller.tenant.of_type("group")
        return frozenset(g["id"] for g in groups if not caller.sees_members(g))

    def _object_links(self, req: Request, caller: Caller, ids: list[str], cast: list[str]) -> Reply:
        """A directoryObject collection (members, owners): each entry with its ``@odata.type``
        (limited information for types the caller may not read), paged by ``$top`` (1-999,
        default 100) with ``$select`` applied per type, and an optional OData type cast."""
        tenant = caller.tenant
        context = "directoryObjects"
        cast, counted = split_count(req, cast)
        if cast:
            type_name = cast_type(cast, tuple(ODATA_TYPE))
            ids = [i for i in ids if tenant.type_of(i) == type_name]
            context = f"{type_name}s"
        if counted:
            return count_reply(len(ids))
        select = None
        if "$select" in req.query:
            select = [s.strip() for s in req.query["$select"].split(",") if s.strip()]
        return self._page(
            req,
            ids,
            lambda i: self._directory_object(caller, i, select),
            self._context(context),
        )
