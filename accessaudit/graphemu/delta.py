"""Delta queries: ``/users/delta`` and ``/groups/delta`` (graph/delta-query-overview)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from accessaudit.graphemu.protocol import Caller, GraphError, Reply, Request, _Cursor
from accessaudit.graphemu.schema import ODATA_TYPE
from accessaudit.graphemu.tenant import Tenant


class DeltaQueries:
    """Mixed into :class:`~accessaudit.graphemu.graph.GraphApi` (uses its paging and projection
    helpers and settings, declared here for the type checker)."""

    _base_url: Callable[[], str]
    delta_page_size: int
    delta_members_per_entry: int
    delta_replay: bool

    if TYPE_CHECKING:
        # Provided by GraphApi.

        def _context(self, what: str) -> str: ...

        def _select(self, req: Request, kind: str) -> list[str] | None: ...

        @staticmethod
        def _project(
            obj: Mapping[str, Any], kind: str, select: list[str] | None
        ) -> dict[str, Any]: ...

        def _cursor(self, req: Request) -> _Cursor | None: ...

        def _store(self, cursor: _Cursor) -> str: ...

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
            if token == "latest":  # noqa: S105 - a delta-token keyword, not a secret
                return Reply(
                    200,
                    {
                        "@odata.context": self._context(head),
                        "@odata.deltaLink": self._delta_link(
                            req, kind, caller.tenant.version, select
                        ),
                        "value": [],
                    },
                )
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
        relations: list[str] = [
            r for r in ("members", "owners") if kind == "group" and r in (select or [])
        ]
        minimal = "return=minimal" in req.headers.get("prefer", "")
        changed, link_changes = _changes(tenant, kind, relations, since)
        entries: list[dict[str, Any]] = []
        ids = list(dict.fromkeys([*changed, *[g for g in link_changes if g in tenant.objects]]))
        for object_id in ids:
            props_changed = since is None or tenant.changed.get(object_id, 0) > since
            first: dict[str, Any]
            if props_changed or not minimal:
                first = self._project(tenant.objects[object_id], kind, select)
            else:
                first = {"id": object_id}
            entries.extend(self._with_links(object_id, first, link_changes.get(object_id, {})))
        if since is not None:
            for object_id, (version, reason, removed_kind) in tenant.removed.items():
                if version > since and removed_kind == kind:
                    entries.append({"id": object_id, "@removed": {"reason": reason}})
        if self.delta_replay:
            entries = entries + [dict(e) for e in entries]
        return entries

    def _with_links(
        self,
        object_id: str,
        first: dict[str, Any],
        links: Mapping[tuple[str, str], dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """An object's delta entry ``first`` with its owner and member changes; members beyond
        ``delta_members_per_entry`` go in further entries of the same object."""
        slices: dict[str, list[dict[str, Any]]] = {}
        for (relation, _), entry in links.items():
            slices.setdefault(relation, []).append(entry)
        chunk = self.delta_members_per_entry
        members = slices.get("members", [])
        if "owners" in slices:
            first["owners@delta"] = slices["owners"]
        if members:
            first["members@delta"] = members[:chunk]
        entries = [first]
        for start in range(chunk, len(members), chunk):
            # Large groups: "the same group can appear on several pages, each with a
            # different slice of members" (delta-query-groups).
            entries.append({"id": object_id, "members@delta": members[start : start + chunk]})
        return entries


def _changes(
    tenant: Tenant, kind: str, relations: list[str], since: int | None
) -> tuple[list[str], dict[str, dict[tuple[str, str], dict[str, Any]]]]:
    """The ids of the objects of ``kind`` changed after version ``since`` (every one when None)
    and, per group, its changed links of ``relations`` keyed by (relation, target)."""
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
        return changed, link_changes
    changed = [i for i, v in tenant.changed.items() if v > since and tenant.types.get(i) == kind]
    for link in tenant.links:
        if link.version <= since or link.relation not in relations:
            continue
        entry: dict[str, Any] = {"@odata.type": ODATA_TYPE[link.target_type], "id": link.target_id}
        if not link.added:
            entry["@removed"] = {"reason": "deleted"}
        link_changes.setdefault(link.group_id, {})[(link.relation, link.target_id)] = entry
    return changed, link_changes
