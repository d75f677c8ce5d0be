"""Service principals (their owners and app-role assignments), directory roles (unified RBAC
and legacy) and the administrative units that scope them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from accessaudit.graphemu.protocol import Caller, GraphError, Reply, Request, denied, not_found
from accessaudit.graphemu.tenant import Tenant


class AppsAndRoles:
    """Mixed into :class:`~accessaudit.graphemu.graph.GraphApi` (uses its paging and projection
    helpers, declared here for the type checker)."""

    if TYPE_CHECKING:
        # Provided by GraphApi.

        def _context(self, what: str) -> str: ...

        def _select(self, req: Request, kind: str) -> list[str] | None: ...

        @staticmethod
        def _project(
            obj: Mapping[str, Any], kind: str, select: list[str] | None
        ) -> dict[str, Any]: ...

        def _directory_object(
            self, caller: Caller, object_id: str, select: list[str] | None
        ) -> dict[str, Any]: ...

        def _filter(self, req: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]: ...

        def _object_links(
            self, req: Request, caller: Caller, ids: list[str], cast: list[str]
        ) -> Reply: ...

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
        ) -> Reply: ...

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
        if rest[1] == "owners" and len(rest) <= 3:
            # serviceprincipal-list-owners: a directoryObject collection (users and service
            # principals), Application.Read.All (checked above; 403 Authorization_RequestDenied
            # without it), OData query parameters as for any directoryObject collection.
            return self._object_links(
                req, caller, list(tenant.sp_owners.get(rest[0], [])), rest[2:]
            )
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[1]}'.")

    # --- administrative units -----------------------------------------------------------------

    def _administrative_units(self, req: Request, caller: Caller, rest: list[str]) -> Reply:
        """directory-list-administrativeunits, administrativeunit-get and -list-members.

        Members are users, groups and devices (``@odata.type`` on each, limited information for
        types the caller may not read); a ``HiddenMembership`` unit's members need
        Member.Read.Hidden (administrativeUnit resource: "only members ... can list other
        members")."""
        if not caller.can("administrativeUnit"):
            raise denied()
        tenant = caller.tenant
        kind = "administrativeUnit"
        if not rest:
            select = self._select(req, kind)
            items = self._filter(req, tenant.of_type(kind))
            context = (
                "directory/administrativeUnits"
                if select is None
                else f"directory/administrativeUnits({','.join(select)})"
            )
            return self._page(
                req, items, lambda o: self._project(o, kind, select), self._context(context)
            )
        if tenant.type_of(rest[0]) != kind:
            raise not_found(rest[0])
        unit = tenant.objects[rest[0]]
        if len(rest) == 1:
            body = {"@odata.context": self._context("directory/administrativeUnits/$entity")}
            body |= self._project(unit, kind, self._select(req, kind))
            return Reply(200, body)
        if rest[1] != "members" or len(rest) > 3:
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[1]}'.")
        if (unit.get("visibility") or "").lower() == "hiddenmembership" and not caller.can(
            "hidden"
        ):
            raise denied()
        ids = list(tenant.au_members.get(rest[0], []))
        context = "directoryObjects"
        if len(rest) == 3:  # OData cast: .../members/microsoft.graph.user
            type_name = rest[2].removeprefix("microsoft.graph.")
            if type_name not in ("user", "group", "device"):
                raise GraphError(
                    400,
                    "Request_UnsupportedQuery",
                    f"The type cast '{rest[2]}' is not supported for this relationship.",
                )
            ids = [i for i in ids if tenant.type_of(i) == type_name]
            context = f"{type_name}s"
        select = None
        if "$select" in req.query:
            select = [s.strip() for s in req.query["$select"].split(",") if s.strip()]
        return self._page(
            req, ids, lambda i: self._directory_object(caller, i, select), self._context(context)
        )

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

    @staticmethod
    def _activated_roles(tenant: Tenant) -> list[dict[str, Any]]:
        """directoryRole objects: roles with a tenant-wide active assignment ("activated")."""
        active: dict[str, list[str]] = {}
        for a in tenant.role_assignments.values():
            if a["directoryScopeId"] == "/":
                active.setdefault(a["roleDefinitionId"], []).append(a["principalId"])
        return [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_OID, role_id)),
                "deletedDateTime": None,
                "description": tenant.role_definitions[role_id]["description"],
                "displayName": tenant.role_definitions[role_id]["displayName"],
                "roleTemplateId": role_id,
                "_members": members,
            }
            for role_id, members in active.items()
        ]

    def _directory_roles(self, req: Request, caller: Caller, rest: list[str]) -> Reply:
        """Activated roles only, unpaged (directoryRoles don't support paging)."""
        if not caller.can("roles"):
            raise denied()
        roles = {r["id"]: r for r in self._activated_roles(caller.tenant)}
        if not rest:
            value = [{k: v for k, v in r.items() if k != "_members"} for r in roles.values()]
            return Reply(200, {"@odata.context": self._context("directoryRoles"), "value": value})
        if rest[0] not in roles:
            raise not_found(rest[0])
        if rest[1:] == ["members"]:
            value = [self._directory_object(caller, p, None) for p in roles[rest[0]]["_members"]]
            return Reply(200, {"@odata.context": self._context("directoryObjects"), "value": value})
        raise GraphError(400, "BadRequest", "Resource not found for the segment.")
