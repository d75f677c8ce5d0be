"""Service principals, app-role assignments and directory roles (unified RBAC and legacy)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from .protocol import Caller, GraphError, Reply, Request, denied, not_found


class AppsAndRoles:
    """Mixed into :class:`~graphemu.graph.GraphApi` (uses its paging and projection helpers)."""

    def _service_principals(self, req: Request, caller: Caller, rest: list[str]) -> Reply:
        if not caller.can("servicePrincipal"):
            raise denied()
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
            raise not_found(rest[0])
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
                raise denied()
            items = self._filter(req, list(tenant.role_definitions.values()))
            return self._page(req, items, dict, context)
        if what == "roleAssignments":
            if not caller.can("roles"):
                raise denied()
            items = self._filter(req, list(tenant.role_assignments.values()))
            return self._page(req, items, self._expand_principal(req, caller), context)
        if what in ("roleEligibilitySchedules", "roleEligibilityScheduleInstances"):
            if not caller.can("eligibility"):
                raise denied()
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
            raise denied()
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
            raise not_found(rest[0])
        if rest[1:] == ["members"]:
            value = [self._directory_object(caller, p, None) for p in active[roles[rest[0]]]]
            return Reply(200, {"@odata.context": self._context("directoryObjects"), "value": value})
        raise GraphError(400, "BadRequest", "Resource not found for the segment.")
