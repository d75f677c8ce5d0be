"""Graph writes for :mod:`accessaudit.remediation.apply.execute`: cloud-only group members and
owners, owners of enterprise applications (service principals), directory-role and app-role
assignments.

Uses the Entra connector's own client (msal token source, TLS pinned to the configured CA,
retries honouring Retry-After) with the *write* app of ``[apply]``. Before each change the
object is read: a group (``onPremisesSyncEnabled``: change it in AD; ``DynamicMembership``:
change the rule; mail-enabled non-Microsoft-365: Exchange; ``isAssignableToRole``: refused by
design) and its direct members or owners; a principal's role assignments of one role and scope
(their ids, which the plan cannot hold: an assignment is re-created with a new id); a service
principal's ``appRoleAssignedTo`` of one principal (ids and app roles, for the undo), or its
owners (an enterprise application's owner: no group checks apply). A 404 on a
``DELETE`` is "already removed" only once a re-read confirms it (Graph eventual consistency).

Requests (learn.microsoft.com/graph/api/...):

- ``group-delete-members`` / ``group-post-members``: ``DELETE|POST /groups/{id}/members...$ref``
  (GroupMember.ReadWrite.All);
- ``group-delete-owners`` / ``group-post-owners``: ``DELETE|POST /groups/{id}/owners...$ref``
  (Group.ReadWrite.All; "the last owner (a user object) of the group cannot be removed");
- ``serviceprincipal-delete-owners`` / ``serviceprincipal-post-owners``:
  ``DELETE|POST /servicePrincipals/{id}/owners...$ref`` for an enterprise application's owner
  (Application.ReadWrite.All; the undo's POST also needs Directory.Read.All); a service
  principal may lose its last owner (Microsoft recommends two, Graph does not refuse);
- ``unifiedroleassignment-delete`` / ``rbacapplication-post-roleassignments``:
  ``DELETE /roleManagement/directory/roleAssignments/{id}``, ``POST .../roleAssignments``
  with principalId, roleDefinitionId, directoryScopeId (RoleManagement.ReadWrite.Directory);
- ``serviceprincipal-delete-approleassignedto`` / ``serviceprincipal-post-approleassignedto``:
  ``DELETE|POST /servicePrincipals/{id}/appRoleAssignedTo[/{id}]`` with principalId, resourceId,
  appRoleId (AppRoleAssignment.ReadWrite.All);
- ``user-delete-manager`` / ``user-post-manager``: ``DELETE|PUT /users/{id}/manager/$ref``
  (User.ReadWrite.All); a synced user's manager is AD's (refused).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import requests

from accessaudit.config.sources import EntraSource
from accessaudit.errors import AuditError
from accessaudit.model import ActionKind
from accessaudit.remediation.apply.changes import Change, Live
from accessaudit.transport.graph_auth import PinnedSession, TokenSource
from accessaudit.transport.graph_http import GraphClient, GraphFailure, UnitFailed

A = ActionKind
GRAPH = "https://graph.microsoft.com/v1.0"


def _odata_id(object_id: str | None) -> dict[str, str]:
    return {"@odata.id": f"{GRAPH}/directoryObjects/{object_id}"}


class GraphDirectory:
    """Read-before-write and writes on one Entra tenant."""

    def __init__(self, client: GraphClient) -> None:
        self.client = client
        self.writes = 0

    @classmethod
    def open(cls, cfg: EntraSource) -> GraphDirectory:
        session: requests.Session = PinnedSession(cfg.ca_file)
        source = f"entra:{cfg.tenant_id} (apply)"
        tokens = TokenSource(cfg, session, source)
        deadline = time.monotonic() + cfg.time_budget
        return cls(GraphClient(cfg, session, tokens, source, deadline=deadline))

    # --- plumbing ----------------------------------------------------------------------------

    def _get(self, relative: str) -> dict[str, Any] | None:
        try:
            return self.client.send("GET", self.client.url(relative))
        except GraphFailure as exc:
            if exc.status == 404:
                return None
            raise AuditError(f"Graph read {relative} failed: {exc}") from None
        except UnitFailed as exc:
            raise AuditError(f"Graph read {relative} failed: {exc}") from None

    def _list(self, relative: str) -> list[dict[str, Any]]:
        try:
            return list(self.client.list_all(relative).items)
        except UnitFailed as exc:
            raise AuditError(f"Graph listing {relative} failed: {exc}") from None

    def _send(self, method: str, relative: str, body: Any = None, hint: str = "") -> int:
        """One write; the HTTP status of a refusal, or 0 when it succeeded."""
        self.writes += 1
        try:
            self.client.send(method, self.client.url(relative), body=body)
        except GraphFailure as exc:
            if exc.status in (400, 404):
                return exc.status
            raise AuditError(f"Graph {method} {relative} refused: {exc}", hint) from None
        except UnitFailed as exc:
            raise AuditError(f"Graph {method} {relative} failed: {exc}") from None
        return 0

    # --- reads -------------------------------------------------------------------------------

    def _principal(self, object_id: str | None) -> bool:
        if not object_id:
            return False
        for kind in ("users", "groups", "servicePrincipals"):
            if self._get(f"/{kind}/{object_id}?$select=id") is not None:
                return True
        return False

    def _ids(self, group_id: str | None, relation: str) -> list[str]:
        return [i.get("id", "") for i in self._list(f"/groups/{group_id}/{relation}?$select=id")]

    def _sp_owners(self, sp_id: str | None) -> list[str]:
        items = self._list(f"/servicePrincipals/{sp_id}/owners?$select=id")
        return [i.get("id", "") for i in items]

    def _read_sp_owner(self, change: Change) -> Live:
        """An enterprise application's owner: the service principal and its owners now."""
        sp = self._get(f"/servicePrincipals/{change.group_id}?$select=id")
        member = self._principal(change.member_id)
        if sp is None or not member:
            return Live(sp is not None, member, False)
        return Live(True, True, change.member_id in self._sp_owners(change.group_id))

    def _manager(self, user_id: str | None) -> str | None:
        found = self._get(f"/users/{user_id}/manager?$select=id")
        return str(found["id"]) if found and found.get("id") else None

    def _read_manager(self, change: Change) -> Live:
        user = self._get(f"/users/{change.member_id}?$select=id,onPremisesSyncEnabled")
        if user is None:
            return Live(True, False, False)
        synced = bool(user.get("onPremisesSyncEnabled"))
        manager = self._manager(change.member_id)
        if manager is None:
            return Live(True, True, False, synced=synced)
        if change.manager_id and manager != change.manager_id:
            drift = f"the manager is now {manager}, not the planned one"
            return Live(True, True, True, synced=synced, drift=drift)
        return Live(True, True, True, synced=synced, prior={"manager": manager})

    def read(self, change: Change) -> Live:
        if change.kind == A.CLEAR_MANAGER.value:
            return self._read_manager(change)
        if change.kind == A.REMOVE_ROLE_ASSIGNMENT.value:
            return self._read_roles(change)
        if change.kind == A.REMOVE_APP_ROLE_ASSIGNMENT.value:
            return self._read_app_roles(change)
        if change.kind == A.REMOVE_OWNER.value and change.service_principal:
            return self._read_sp_owner(change)
        group = self._get(
            f"/groups/{change.group_id}?$select=id,groupTypes,onPremisesSyncEnabled,"
            "securityIdentifier,mailEnabled,isAssignableToRole"
        )
        member = self._principal(change.member_id)
        if group is None or not member:
            return Live(group is not None, member, False)
        types = group.get("groupTypes") or []
        owners = change.kind == A.REMOVE_OWNER.value
        ids = self._ids(change.group_id, "owners" if owners else "members")
        return Live(
            True,
            True,
            change.member_id in ids,
            group_sid=group.get("securityIdentifier"),
            synced=bool(group.get("onPremisesSyncEnabled")),
            dynamic="DynamicMembership" in types,
            # Microsoft 365 groups are mail-enabled and changeable; the others are Exchange's
            mail_enabled=bool(group.get("mailEnabled")) and "Unified" not in types,
            role_assignable=bool(group.get("isAssignableToRole")),
            size=None if owners else len(ids),
            refusal="the group's last owner: give it an owner of its own force first (Graph "
            "refuses to remove the last owner)"
            if owners and ids == [change.member_id]
            else "",
        )

    def _role_assignments(self, change: Change) -> list[dict[str, Any]]:
        filt = quote(f"principalId eq '{change.member_id}'", safe="'= ")
        items = self._list(f"/roleManagement/directory/roleAssignments?$filter={filt}")
        return [
            a
            for a in items
            if a.get("roleDefinitionId") == change.resource_id
            and (a.get("directoryScopeId") or "/") == change.scope
            and a.get("principalId") == change.member_id
        ]

    def _read_roles(self, change: Change) -> Live:
        if not self._principal(change.member_id):
            return Live(True, False, False)
        found = self._role_assignments(change)
        prior = {
            "assignments": sorted(str(a["id"]) for a in found),
            "principalId": change.member_id,
            "roleDefinitionId": change.resource_id,
            "directoryScopeId": change.scope,
        }
        return Live(True, True, bool(found), prior=prior if found else {})

    def _app_assignments(self, change: Change) -> list[dict[str, Any]]:
        items = self._list(f"/servicePrincipals/{change.resource_id}/appRoleAssignedTo")
        return [a for a in items if a.get("principalId") == change.member_id]

    def _read_app_roles(self, change: Change) -> Live:
        sp = self._get(f"/servicePrincipals/{change.resource_id}?$select=id")
        principal = self._principal(change.member_id)
        if sp is None or not principal:
            return Live(sp is not None, principal, False)
        found = sorted(self._app_assignments(change), key=lambda a: str(a["id"]))
        prior = {
            "assignments": [str(a["id"]) for a in found],
            "appRoleIds": [str(a.get("appRoleId")) for a in found],
        }
        return Live(True, True, bool(found), prior=prior if found else {})

    # --- writes ------------------------------------------------------------------------------

    def remove(self, change: Change, live: Live | None = None) -> None:
        prior = live.prior if live else {}
        if change.kind == A.REMOVE_ROLE_ASSIGNMENT.value:
            for aid in prior.get("assignments", []):
                status = self._send(
                    "DELETE",
                    f"/roleManagement/directory/roleAssignments/{aid}",
                    hint="check the write app has RoleManagement.ReadWrite.Directory",
                )
                self._confirm(status, change, lambda: self._role_assignments(change))
            return
        if change.kind == A.REMOVE_APP_ROLE_ASSIGNMENT.value:
            for aid in prior.get("assignments", []):
                status = self._send(
                    "DELETE",
                    f"/servicePrincipals/{change.resource_id}/appRoleAssignedTo/{aid}",
                    hint="check the write app has AppRoleAssignment.ReadWrite.All",
                )
                self._confirm(status, change, lambda: self._app_assignments(change))
            return
        if change.kind == A.CLEAR_MANAGER.value:
            status = self._send(
                "DELETE",
                f"/users/{change.member_id}/manager/$ref",
                hint="check the write app has User.ReadWrite.All",
            )
            self._confirm(status, change, lambda: self._manager(change.member_id))
            return
        if change.kind == A.REMOVE_OWNER.value and change.service_principal:
            status = self._send(
                "DELETE",
                f"/servicePrincipals/{change.group_id}/owners/{change.member_id}/$ref",
                hint="check the write app has Application.ReadWrite.All",
            )
            self._confirm(
                status,
                change,
                lambda: [i for i in self._sp_owners(change.group_id) if i == change.member_id],
            )
            return
        relation = "owners" if change.kind == A.REMOVE_OWNER.value else "members"
        permission = "Group.ReadWrite.All" if relation == "owners" else "GroupMember.ReadWrite.All"
        status = self._send(
            "DELETE",
            f"/groups/{change.group_id}/{relation}/{change.member_id}/$ref",
            hint=f"check the write app has {permission}",
        )
        self._confirm(
            status,
            change,
            lambda: [i for i in self._ids(change.group_id, relation) if i == change.member_id],
        )

    @staticmethod
    def _confirm(status: int, change: Change, still: Any) -> None:
        """A 404 is success only when a re-read finds nothing left; anything else fails."""
        if status == 0 or (status == 404 and not still()):
            return
        raise AuditError(f"Graph refused {change.kind} {change.action_id} (HTTP {status})")

    def add(self, change: Change, prior: dict[str, Any] | None = None) -> None:
        for r in self.undo_text(change, prior or {})["requests"]:
            hint = (
                "check the write app has Application.ReadWrite.All and Directory.Read.All"
                if change.service_principal
                else ""
            )
            status = self._send(r["method"], r["url"], body=r["body"], hint=hint)
            if status == 400 and change.kind in (A.REMOVE_MEMBER.value, A.UNNEST_GROUP.value,
                                                 A.REMOVE_OWNER.value):  # fmt: skip
                relation = "owners" if change.kind == A.REMOVE_OWNER.value else "members"
                now = (
                    self._sp_owners(change.group_id)
                    if change.service_principal
                    else self._ids(change.group_id, relation)
                )
                if change.member_id in now:
                    continue  # "One or more added object references already exist"
            if status:
                raise AuditError(f"Graph {r['method']} {r['url']} refused (HTTP {status})")

    def undo_text(self, change: Change, prior: dict[str, Any] | None = None) -> dict[str, Any]:
        """The Graph requests that put back what the change removes."""
        prior = prior or {}
        headers = {"Content-Type": "application/json"}
        if change.kind == A.CLEAR_MANAGER.value:
            manager = prior.get("manager") or change.manager_id
            reqs = [
                {
                    "method": "PUT",
                    "url": f"/users/{change.member_id}/manager/$ref",
                    "body": {"@odata.id": f"{GRAPH}/users/{manager}"},
                    "headers": headers,
                }
            ]
        elif change.kind == A.REMOVE_ROLE_ASSIGNMENT.value:
            body = {
                "principalId": change.member_id,
                "roleDefinitionId": change.resource_id,
                "directoryScopeId": change.scope,
            }
            # one assignment per (principal, role, scope): Graph holds no duplicates
            url = "/roleManagement/directory/roleAssignments"
            reqs = [{"method": "POST", "url": url, "body": body, "headers": headers}]
        elif change.kind == A.REMOVE_APP_ROLE_ASSIGNMENT.value:
            url = f"/servicePrincipals/{change.resource_id}/appRoleAssignedTo"
            reqs = [
                {
                    "method": "POST",
                    "url": url,
                    "body": {
                        "principalId": change.member_id,
                        "resourceId": change.resource_id,
                        "appRoleId": role,
                    },
                    "headers": headers,
                }
                for role in prior.get("appRoleIds", [])
            ]
        else:
            relation = "owners" if change.kind == A.REMOVE_OWNER.value else "members"
            container = "servicePrincipals" if change.service_principal else "groups"
            reqs = [
                {
                    "method": "POST",
                    "url": f"/{container}/{change.group_id}/{relation}/$ref",
                    "body": _odata_id(change.member_id),
                    "headers": headers,
                }
            ]
        return {"requests": reqs}
