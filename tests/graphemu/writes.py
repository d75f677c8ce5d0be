"""Microsoft Graph v1.0 write endpoints the guarded ``apply`` uses (group membership, role
assignments), with the documented permissions and error bodies.

- ``DELETE /groups/{id}/members/{id}/$ref`` (group-delete-members) and
  ``POST /groups/{id}/members/$ref`` (group-post-members): GroupMember.ReadWrite.All,
  Group.ReadWrite.All or Directory.ReadWrite.All; a member that is not there: 404; one already
  there: 400 "One or more added object references already exist ...".
- on-premises-synced groups: 400 "Unable to update the specified properties for on-premises
  mastered Directory Sync objects ..." (change them in AD); dynamic groups: 400 [assumed text].
- ``DELETE /roleManagement/directory/roleAssignments/{id}``: RoleManagement.ReadWrite.Directory.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .protocol import Caller, GraphError, Reply, Request, denied, not_found

MEMBER_WRITE = frozenset(
    {"GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"}
)
ROLE_WRITE = frozenset({"RoleManagement.ReadWrite.Directory"})
SYNCED_MESSAGE = (
    "Unable to update the specified properties for on-premises mastered Directory Sync objects "
    "or objects currently undergoing migration."
)


class GraphWrites:
    """The write side; every accepted write is recorded in ``log`` (method, path)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    def handle(self, req: Request, caller: Caller, body: bytes) -> Reply:
        segs = [s for s in req.path.split("/")[2:] if s]
        if (
            req.method == "DELETE"
            and len(segs) == 5
            and segs[0] == "groups"
            and segs[2:5:2]
            == [
                "members",
                "$ref",
            ]
        ):
            return self._remove(caller, segs[1], segs[3], req.path)
        if req.method == "POST" and segs[:1] == ["groups"] and segs[2:] == ["members", "$ref"]:
            return self._add(caller, segs[1], body, req.path)
        if req.method == "DELETE" and segs[:3] == [
            "roleManagement",
            "directory",
            "roleAssignments",
        ]:
            if len(segs) != 4:
                raise GraphError(400, "BadRequest", "Invalid request.")
            if not caller.roles & ROLE_WRITE:
                raise denied()
            if caller.tenant.role_assignments.pop(segs[3], None) is None:
                raise not_found(segs[3])
            self.log.append((req.method, req.path))
            return Reply(204)
        raise GraphError(
            405,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        )

    def _group(self, caller: Caller, group_id: str) -> dict[str, Any]:
        if not caller.roles & MEMBER_WRITE:
            raise denied()
        group = caller.tenant.objects.get(group_id)
        if group is None or caller.tenant.type_of(group_id) != "group":
            raise not_found(group_id)
        if group.get("onPremisesSyncEnabled"):
            raise GraphError(400, "Request_BadRequest", SYNCED_MESSAGE)
        if "DynamicMembership" in (group.get("groupTypes") or []):
            raise GraphError(
                400,
                "Request_BadRequest",
                "Insufficient privileges to complete the operation: the group has dynamic "
                "membership [assumed text].",
            )
        return group

    def _remove(self, caller: Caller, group_id: str, member_id: str, path: str) -> Reply:
        self._group(caller, group_id)
        if member_id not in caller.tenant.members.get(group_id, []):
            raise not_found(member_id)
        caller.tenant.remove_member(group_id, member_id)
        self.log.append(("DELETE", path))
        return Reply(204)

    def _add(self, caller: Caller, group_id: str, body: bytes, path: str) -> Reply:
        self._group(caller, group_id)
        try:
            ref = str(json.loads(body or b"{}").get("@odata.id") or "")
        except ValueError:
            raise GraphError(400, "BadRequest", "Invalid JSON body.") from None
        m = re.search(r"/directoryObjects/([^/?]+)$", ref)
        if not m or caller.tenant.type_of(m.group(1)) is None:
            raise GraphError(400, "Request_BadRequest", "Invalid object identifier.")
        if m.group(1) in caller.tenant.members.get(group_id, []):
            raise GraphError(
                400,
                "Request_BadRequest",
                "One or more added object references already exist for the following modified "
                "properties: 'members'.",
            )
        caller.tenant.add_member(group_id, m.group(1))
        self.log.append(("POST", path))
        return Reply(204)
