"""Delta queries: ``/users/delta`` and ``/groups/delta``, as untidy as Graph's.

Facts (learn.microsoft.com unless said otherwise):

* "The same resource may be returned more than once ... replays" and entities are not returned
  in any guaranteed order (delta-query-overview, "Replays"; the optional client-side dedup in
  its call pattern). Here both are ON by default: :attr:`DeltaQueries.delta_replay` repeats every
  third entry of a round later in the round, :attr:`DeltaQueries.delta_out_of_order` shuffles the
  round's entries (seeded by the round, so a test run is repeatable). Tests that count pages or
  entries turn them off with :meth:`DeltaQueries.tidy_delta`.
* "``$select`` ... limits which changes are tracked": an object whose only changes are to
  properties outside ``$select`` is not returned (delta-query-overview, "Use $select to track
  changes"); its links count for groups selecting ``members`` / ``owners``.
* ``$filter=id eq '...'`` (up to 50 ids joined with ``or``) tracks only those objects (user-delta,
  group-delta "Optional query parameters"); the filter is kept in the tokens like ``$select``.
* Page size: ``Prefer: odata.maxpagesize=N`` is honoured and echoed in ``Preference-Applied``
  (OData 4.0 part 1, 8.2.8.3); Graph caps directory objects at 200 per delta page and uses that
  size when no preference is given (learn.microsoft.com/answers 2052165, a Microsoft moderator;
  [secondary]). The default here is 100 [assumed] so that the sample's rounds span pages.
* Never-set properties are omitted from delta entries rather than sent as ``null``
  (delta-query-overview: "properties ... that have not been set are not included" for created
  resources [paraphrase]); a property set to null is returned as null.
* ``$top`` is ignored on delta (learn.microsoft.com/answers 1090464); ``$orderby``, ``$expand``
  (but ``members``), ``$search`` and ``$count`` are refused (:mod:`.odata`).
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from accessaudit.graphemu.odata import delta_ids
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
    #: the round's entries shuffled across its pages (Graph guarantees no order)
    delta_out_of_order: bool = True
    #: the largest ``Prefer: odata.maxpagesize`` honoured (directory objects, [secondary])
    delta_max_page_size: int = 200

    def tidy_delta(self) -> None:
        """No replays, entries in change order: for tests that count pages or entries."""
        self.delta_replay = False
        self.delta_out_of_order = False

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

    def _delta_link(
        self,
        req: Request,
        kind: str,
        version: int,
        select: list[str] | None,
        ids: list[str] | None = None,
    ) -> str:
        state = {"k": kind, "v": version, "s": select, "f": ids, "t": int(time.time())}
        token = base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")
        return f"{self._base_url()}{req.path}?$deltatoken={token}"

    def _delta(self, req: Request, caller: Caller, kind: str) -> Reply:
        head = "users" if kind == "user" else "groups"
        cursor = self._cursor(req)
        if cursor is None:
            since: int | None = None
            select = self._select(req, kind)
            ids = delta_ids(req.query["$filter"]) if "$filter" in req.query else None
            token = req.query.get("$deltatoken")
            if token == "latest":  # noqa: S105 - a delta-token keyword, not a secret
                return Reply(
                    200,
                    {
                        "@odata.context": self._context(head),
                        "@odata.deltaLink": self._delta_link(
                            req, kind, caller.tenant.version, select, ids
                        ),
                        "value": [],
                    },
                )
            if token:
                try:
                    state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
                    since, select, ids = int(state["v"]), state["s"], state.get("f")
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
            if ids is not None:
                wanted = set(ids)
                entries = [e for e in entries if e["id"] in wanted]
            entries = self._untidy(entries, version)
            cursor = _Cursor(req.path, 0, time.time(), entries, version, select)
            cursor.delta_ids = ids
        assert cursor.entries is not None
        size, applied = self._delta_size(req)
        end = cursor.offset + size
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
            nxt.delta_ids = cursor.delta_ids
            body["@odata.nextLink"] = f"{self._base_url()}{req.path}?$skiptoken={self._store(nxt)}"
        else:
            body["@odata.deltaLink"] = self._delta_link(
                req, kind, cursor.delta_version, cursor.delta_select, cursor.delta_ids
            )
        body["value"] = cursor.entries[cursor.offset : end]
        headers = {"Preference-Applied": f"odata.maxpagesize={applied}"} if applied else {}
        return Reply(200, body, headers)

    def _delta_size(self, req: Request) -> tuple[int, int | None]:
        """Entries on this page, and the ``odata.maxpagesize`` applied (None: no preference)."""
        m = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", req.headers.get("prefer", ""))
        if not m:
            return self.delta_page_size, None
        size = max(1, min(int(m.group(1)), self.delta_max_page_size))
        return size, size

    def _untidy(self, entries: list[dict[str, Any]], version: int) -> list[dict[str, Any]]:
        """Graph's order and replays: shuffled (seeded by the round), every third entry again."""
        rng = random.Random(version * 7919 + len(entries))
        out = list(entries)
        if self.delta_out_of_order:
            rng.shuffle(out)
        if self.delta_replay:
            out += [dict(e) for e in out[::3]]
            if self.delta_out_of_order:
                rng.shuffle(out)
        return out

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
        changed, link_changes = _changes(tenant, kind, relations, since, select)
        for group_id, links in link_changes.items():
            if group_id in tenant.objects and not caller.sees_members(tenant.objects[group_id]):
                # a hidden membership is left out of members@delta (Caller.sees_members)
                link_changes[group_id] = {k: v for k, v in links.items() if k[0] != "members"}
        entries: list[dict[str, Any]] = []
        ids = list(dict.fromkeys([*changed, *[g for g in link_changes if g in tenant.objects]]))
        for object_id in ids:
            props_changed = since is None or tenant.changed.get(object_id, 0) > since
            first: dict[str, Any]
            if props_changed or not minimal:
                obj = tenant.objects[object_id]
                # never-set properties are omitted, not null (delta-query-overview)
                first = {k: v for k, v in self._project(obj, kind, select).items() if k in obj}
            else:
                first = {"id": object_id}
            entries.extend(self._with_links(object_id, first, link_changes.get(object_id, {})))
        if since is not None:
            for object_id, (version, reason, removed_kind) in tenant.removed.items():
                if version > since and removed_kind == kind:
                    entries.append({"id": object_id, "@removed": {"reason": reason}})
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


def _tracked(tenant: Tenant, object_id: str, since: int, select: list[str] | None) -> bool:
    """Whether a change after ``since`` touched the object's tracked properties: any when
    there is no ``$select``, else created since or a selected property changed since."""
    marks = tenant.changed_props.get(object_id)
    if select is None or marks is None:
        return True
    return any(v > since and (p == "*" or p in select) for p, v in marks.items())


def _changes(
    tenant: Tenant, kind: str, relations: list[str], since: int | None, select: list[str] | None
) -> tuple[list[str], dict[str, dict[tuple[str, str], dict[str, Any]]]]:
    """The ids of the objects of ``kind`` whose tracked properties changed after version
    ``since`` (every one when None) and, per group, its changed links of ``relations`` keyed by
    (relation, target)."""
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
    changed = [
        i
        for i, v in tenant.changed.items()
        if v > since and tenant.types.get(i) == kind and _tracked(tenant, i, since, select)
    ]
    for link in tenant.links:
        if link.version <= since or link.relation not in relations:
            continue
        entry: dict[str, Any] = {"@odata.type": ODATA_TYPE[link.target_type], "id": link.target_id}
        if not link.added:
            entry["@removed"] = {"reason": "deleted"}
        link_changes.setdefault(link.group_id, {})[(link.relation, link.target_id)] = entry
    return changed, link_changes
