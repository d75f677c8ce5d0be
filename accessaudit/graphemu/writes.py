"""Microsoft Graph v1.0 write endpoints the guarded ``apply`` uses (group membership and
ownership, service-principal ownership, directory-role and app-role assignments), with the
documented permissions, status codes and error bodies.

- ``DELETE /groups/{id}/members/{id}/$ref`` (group-delete-members) and
  ``POST /groups/{id}/members/$ref`` (group-post-members): GroupMember.ReadWrite.All,
  Group.ReadWrite.All or Directory.ReadWrite.All; a member that is not there: 404; one already
  there: 400 "One or more added object references already exist ...".
- on-premises-synced groups: 400 "Unable to update the specified properties for on-premises
  mastered Directory Sync objects ..." (change them in AD); dynamic groups: 400 [assumed text].
- ``DELETE /roleManagement/directory/roleAssignments/{id}`` (unifiedroleassignment-delete, 204)
  and ``POST /roleManagement/directory/roleAssignments`` (rbacapplication-post-roleassignments,
  201 with the unifiedRoleAssignment): RoleManagement.ReadWrite.Directory;
- ``DELETE /groups/{id}/owners/{id}/$ref`` (group-delete-owners, 204) and
  ``POST /groups/{id}/owners/$ref`` (group-post-owners, 204): Group.ReadWrite.All or
  Directory.ReadWrite.All (GroupMember.ReadWrite.All is not enough); "the last owner (a user
  object) of the group cannot be removed": 400 [assumed text];
- ``DELETE /servicePrincipals/{id}/owners/{id}/$ref`` (serviceprincipal-delete-owners, 204):
  Application.ReadWrite.All or Directory.ReadWrite.All;
  ``POST /servicePrincipals/{id}/owners/$ref`` (serviceprincipal-post-owners, 204; a user or a
  service principal, the service principal itself included): Application.ReadWrite.All *and*
  Directory.Read.All, or Directory.ReadWrite.All. Application.ReadWrite.OwnedBy covers only the
  objects the calling app owns, and the emulator's apps own none: refused (403). Unlike a
  group's, a service principal's last owner can be removed (Microsoft only recommends two
  owners). An owner that is not there: 404; one already there: 400 "One or more added object
  references already exist ...";
- ``DELETE /servicePrincipals/{id}/appRoleAssignedTo/{id}``
  (serviceprincipal-delete-approleassignedto, 204) and ``POST .../appRoleAssignedTo``
  (serviceprincipal-post-approleassignedto, 201 with the appRoleAssignment; principalId,
  resourceId, appRoleId; resourceId must be the service principal of the path and appRoleId one
  of its appRoles): AppRoleAssignment.ReadWrite.All;
- ``DELETE /users/{id}/manager/$ref`` (user-delete-manager, 204) and
  ``PUT /users/{id}/manager/$ref`` (user-post-manager, 204): User.ReadWrite.All or
  Directory.ReadWrite.All; the manager of an on-premises-synced user is AD's: 400 (the synced
  message above).
"""

from __future__ import annotations

import json
import re
from typing import Any

from accessaudit.graphemu.protocol import Caller, GraphError, Reply, Request, denied, not_found

MEMBER_WRITE = frozenset(
    {"GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"}
)
ROLE_WRITE = frozenset({"RoleManagement.ReadWrite.Directory"})
OWNER_WRITE = frozenset({"Group.ReadWrite.All", "Directory.ReadWrite.All"})
APP_ROLE_WRITE = frozenset({"AppRoleAssignment.ReadWrite.All"})
SP_OWNER_DELETE = frozenset({"Application.ReadWrite.All", "Directory.ReadWrite.All"})
#: serviceprincipal-post-owners: each entry is a set of permissions needed together
SP_OWNER_POST = (
    frozenset({"Application.ReadWrite.All", "Directory.Read.All"}),
    frozenset({"Directory.ReadWrite.All"}),
)
USER_WRITE = frozenset({"User.ReadWrite.All", "Directory.ReadWrite.All"})
LAST_OWNER_MESSAGE = (
    "The group must have at least one owner, hence this owner cannot be removed. [assumed text]"
)
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
        if segs[:1] == ["users"] and segs[2:] == ["manager", "$ref"]:
            return self._manager(req, caller, segs[1], body)
        if segs[:3] == ["roleManagement", "directory", "roleAssignments"]:
            return self._role_assignment(req, caller, segs[3:], body)
        if segs[:1] == ["groups"] and len(segs) >= 4 and segs[2] == "owners" and segs[-1] == "$ref":
            return self._owner(req, caller, segs, body)
        if (
            segs[:1] == ["servicePrincipals"]
            and len(segs) >= 4
            and segs[2] == "owners"
            and segs[-1] == "$ref"
        ):
            return self._sp_owner(req, caller, segs, body)
        if segs[:1] == ["servicePrincipals"] and segs[2:3] == ["appRoleAssignedTo"]:
            return self._app_role(req, caller, segs, body)
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
        new = self._new_ref(
            caller, body, "members", caller.tenant.members.get(group_id, []), types=None
        )
        caller.tenant.add_member(group_id, new)
        self.log.append(("POST", path))
        return Reply(204)

    # --- owners, role and app-role assignments ----------------------------------------------

    def _new_ref(
        self,
        caller: Caller,
        body: bytes,
        relation: str,
        existing: list[str],
        types: tuple[str, ...] | None = ("user", "servicePrincipal"),
    ) -> str:
        """The object a ``POST .../{relation}/$ref`` body names (``@odata.id`` ending in
        ``/directoryObjects/{id}``), of one of ``types`` (None: any known object), not already
        in ``existing``; Graph's 400 otherwise."""
        ref = str(self._body(body).get("@odata.id") or "")
        m = re.search(r"/directoryObjects/([^/?]+)$", ref)
        kind = caller.tenant.type_of(m.group(1)) if m else None
        if not m or kind is None or (types is not None and kind not in types):
            raise GraphError(400, "Request_BadRequest", "Invalid object identifier.")
        if m.group(1) in existing:
            raise GraphError(
                400,
                "Request_BadRequest",
                "One or more added object references already exist for the following modified "
                f"properties: '{relation}'.",
            )
        return m.group(1)

    @staticmethod
    def _body(body: bytes) -> dict[str, Any]:
        try:
            value = json.loads(body or b"{}")
        except ValueError:
            raise GraphError(400, "BadRequest", "Invalid JSON body.") from None
        if not isinstance(value, dict):
            raise GraphError(400, "BadRequest", "Invalid JSON body.")
        return value

    def _owner(self, req: Request, caller: Caller, segs: list[str], body: bytes) -> Reply:
        if not caller.roles & OWNER_WRITE:
            raise denied()
        tenant, group_id = caller.tenant, segs[1]
        if tenant.type_of(group_id) != "group":
            raise not_found(group_id)
        owners = tenant.owners.setdefault(group_id, [])
        if req.method == "DELETE" and len(segs) == 5:
            if segs[3] not in owners:
                raise not_found(segs[3])
            if owners == [segs[3]] and tenant.type_of(segs[3]) == "user":
                raise GraphError(400, "Request_BadRequest", LAST_OWNER_MESSAGE)
            tenant.remove_owner(group_id, segs[3])
            self.log.append((req.method, req.path))
            return Reply(204)
        if req.method == "POST" and len(segs) == 4:
            tenant.add_owner(group_id, self._new_ref(caller, body, "owners", owners))
            self.log.append((req.method, req.path))
            return Reply(204)
        raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed.")

    def _sp_owner(self, req: Request, caller: Caller, segs: list[str], body: bytes) -> Reply:
        tenant, sp = caller.tenant, segs[1]
        if req.method == "DELETE" and len(segs) == 5:
            if not caller.roles & SP_OWNER_DELETE:
                raise denied()
            if tenant.type_of(sp) != "servicePrincipal":
                raise not_found(sp)
            if segs[3] not in tenant.sp_owners.get(sp, []):
                raise not_found(segs[3])
            tenant.remove_sp_owner(sp, segs[3])
            self.log.append((req.method, req.path))
            return Reply(204)
        if req.method == "POST" and len(segs) == 4:
            if not any(needed <= caller.roles for needed in SP_OWNER_POST):
                raise denied()
            if tenant.type_of(sp) != "servicePrincipal":
                raise not_found(sp)
            owners = tenant.sp_owners.get(sp, [])
            tenant.add_sp_owner(sp, self._new_ref(caller, body, "owners", owners))
            self.log.append((req.method, req.path))
            return Reply(204)
        raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed.")

    def _role_assignment(self, req: Request, caller: Caller, rest: list[str], body: bytes) -> Reply:
        if not caller.roles & ROLE_WRITE:
            raise denied()
        tenant = caller.tenant
        if req.method == "DELETE" and len(rest) == 1:
            if tenant.role_assignments.pop(rest[0], None) is None:
                raise not_found(rest[0])
            tenant.version += 1
            self.log.append((req.method, req.path))
            return Reply(204)
        if req.method == "POST" and not rest:
            data = self._body(body)
            principal = str(data.get("principalId") or "")
            role = str(data.get("roleDefinitionId") or "")
            scope = str(data.get("directoryScopeId") or "")
            if (
                tenant.type_of(principal) is None
                or role not in tenant.role_definitions
                or not scope
            ):
                raise GraphError(400, "Request_BadRequest", "Invalid request body.")
            for a in tenant.role_assignments.values():
                if (a["principalId"], a["roleDefinitionId"], a["directoryScopeId"]) == (
                    principal, role, scope
                ):  # fmt: skip
                    raise GraphError(
                        409,
                        "Request_BadRequest",
                        "A conflicting object with one or more of the specified property "
                        "values is present in the directory. [assumed text]",
                    )
            new = tenant.assign_role(principal, role, scope)
            self.log.append((req.method, req.path))
            record = {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#roleManagement/"
                "directory/roleAssignments/$entity",
                **tenant.role_assignments[new],
            }
            return Reply(201, record)
        raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed.")

    def _app_role(self, req: Request, caller: Caller, segs: list[str], body: bytes) -> Reply:
        if not caller.roles & APP_ROLE_WRITE:
            raise denied()
        tenant, sp = caller.tenant, segs[1]
        if tenant.type_of(sp) != "servicePrincipal":
            raise not_found(sp)
        if req.method == "DELETE" and len(segs) == 4:
            a = tenant.app_role_assignments.get(segs[3])
            if a is None or a["resourceId"] != sp:
                raise not_found(segs[3])
            del tenant.app_role_assignments[segs[3]]
            tenant.version += 1
            self.log.append((req.method, req.path))
            return Reply(204)
        if req.method == "POST" and len(segs) == 3:
            data = self._body(body)
            principal = str(data.get("principalId") or "")
            role = str(data.get("appRoleId") or "")
            roles = {r["id"] for r in tenant.objects[sp].get("appRoles") or []}
            if str(data.get("resourceId") or "") != sp or tenant.type_of(principal) is None:
                raise GraphError(400, "Request_BadRequest", "Invalid request body.")
            if role not in roles and role != "00000000-0000-0000-0000-000000000000":
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    "Permission being assigned was not found on application. [assumed text]",
                )
            new = tenant.assign_app_role(principal, sp, role)
            self.log.append((req.method, req.path))
            return Reply(201, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#"
                               "servicePrincipals('" + sp + "')/appRoleAssignedTo/$entity",
                               **tenant.app_role_assignments[new]})  # fmt: skip
        raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed.")

    def _manager(self, req: Request, caller: Caller, user_id: str, body: bytes) -> Reply:
        if not caller.roles & USER_WRITE:
            raise denied()
        tenant = caller.tenant
        user = tenant.objects.get(user_id)
        if user is None or tenant.type_of(user_id) != "user":
            raise not_found(user_id)
        if user.get("onPremisesSyncEnabled"):
            raise GraphError(400, "Request_BadRequest", SYNCED_MESSAGE)
        if req.method == "DELETE":
            if tenant.managers.pop(user_id, None) is None:
                raise not_found(user_id)
        elif req.method == "PUT":
            ref = str(self._body(body).get("@odata.id") or "")
            m = re.search(r"/(?:users|directoryObjects)/([^/?]+)$", ref)
            if not m or tenant.type_of(m.group(1)) not in ("user", "orgContact"):
                raise GraphError(400, "Request_BadRequest", "Invalid object identifier.")
            tenant.managers[user_id] = m.group(1)
        else:
            raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed.")
        tenant.version += 1
        self.log.append((req.method, req.path))
        return Reply(204)
