"""Directory-role assignments, PIM eligibility, app-role assignments and owners of service
principals -> grant rows; the service principals holding app-role assignments or having owners
-> groups rows (kind ``app-role``, their owners in ``owners``).

An owner of a service principal can add credentials to it and act as the application
(serviceprincipal-list-owners: "a set of nonadmin users or servicePrincipals who are allowed to
modify this object"), so owners are rights in the application like a group's owners are."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from accessaudit.connectors.entra.tables import (
    SP_OWNER_SELECT,
    SP_SELECT,
    app_role_grants,
    containers_frame,
    role_grants,
)
from accessaudit.connectors.entra.units import Context, proof, select
from accessaudit.model import CollectionUnit, GroupKind
from accessaudit.transport.graph_http import GraphFailure, Listing, UnitFailed

Row = tuple[str, str, str, str]


def directory_roles(ctx: Context) -> tuple[list[Row], dict[str, str | None]]:
    lacks = ctx.lacks("roles")
    if lacks:
        ctx.bad("role-definitions", lacks)
        ctx.bad("role-assignments", lacks)
        names: dict[str, str] = {}
        templates: dict[str, str | None] = {}
        rows: list[Row] = []
    else:
        names, templates = {}, {}
        try:
            listing = ctx.client.list_all("/roleManagement/directory/roleDefinitions")
        except UnitFailed as failure:
            ctx.bad("role-definitions", f"{failure}; role names shown as ids")
        else:
            for d in listing.items:
                names[str(d.get("id"))] = str(d.get("displayName") or d.get("id"))
                templates[str(d.get("id"))] = d.get("templateId")
            ctx.ok("role-definitions", proof(listing), len(listing.items))
        try:
            listing = ctx.client.list_all("/roleManagement/directory/roleAssignments")
        except UnitFailed as failure:
            ctx.bad("role-assignments", str(failure))
            rows = []
        else:
            rows = role_grants(listing.items, names, eligible=False)
            ctx.ok("role-assignments", proof(listing), len(listing.items))
    if ctx.cfg.role_eligibility:
        rows += role_eligibility(ctx, names)
    return rows, templates


def role_eligibility(ctx: Context, names: Mapping[str, str]) -> list[Row]:
    lacks = ctx.lacks("role-eligibility")
    if lacks:
        ctx.bad("role-eligibility", lacks)
        return []
    try:
        listing = ctx.client.list_all("/roleManagement/directory/roleEligibilityScheduleInstances")
    except GraphFailure as failure:
        if failure.code == "AadPremiumLicenseRequired":
            ctx.ok(
                "role-eligibility",
                "tenant has no Entra ID P2: PIM eligibility does not exist",
                0,
            )
        else:
            ctx.bad("role-eligibility", str(failure))
        return []
    except UnitFailed as failure:
        ctx.bad("role-eligibility", str(failure))
        return []
    ctx.ok("role-eligibility", proof(listing), len(listing.items))
    return role_grants(listing.items, names, eligible=True)


#: The units of the service principals' own listings (per-object listings follow).
SP_UNITS = ("app-role-assignments", "service-principal-owners")


def service_principals(ctx: Context) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The service principals, and for the shared ``$batch`` queue one ``appRoleAssignedTo``
    and one ``owners`` listing of each."""
    lacks = ctx.lacks("applications")
    if lacks:
        for name in ("service-principals", *SP_UNITS):
            ctx.bad(name, lacks)
        return [], []
    try:
        listing = ctx.client.list_all(
            f"/servicePrincipals?$select={select(SP_SELECT)}&$top={ctx.page}"
        )
    except UnitFailed as failure:
        ctx.bad("service-principals", str(failure))
        for name in SP_UNITS:
            ctx.bad(name, "service principals could not be listed")
        return [], []
    ctx.ok("service-principals", proof(listing), len(listing.items))
    jobs = [
        (f"a:{sp['id']}", f"/servicePrincipals/{sp['id']}/appRoleAssignedTo?$top={ctx.page}")
        for sp in listing.items
    ]
    # serviceprincipal-list-owners supports the OData query parameters: ids only, full pages
    jobs += [
        (
            f"p:{sp['id']}",
            f"/servicePrincipals/{sp['id']}/owners?$select={select(SP_OWNER_SELECT)}"
            f"&$top={ctx.page}",
        )
        for sp in listing.items
    ]
    if not jobs:
        for name in SP_UNITS:
            ctx.ok(name, "no service principals", 0)
    return listing.items, jobs


def applications(
    ctx: Context,
    service_principals: list[dict[str, Any]],
    rows: list[Row],
    owners: Mapping[str, list[str]],
) -> pl.DataFrame:
    """One groups row per service principal that has app-role assignments or owners: the
    enterprise application whose organisation the rules read (attributed by its name like any
    group), with its owners (read by the ``owners`` view like a group's)."""
    assigned = {resource for _, resource, _, _ in rows} | {s for s, ids in owners.items() if ids}
    apps = [sp for sp in service_principals if str(sp.get("id")) in assigned]
    return containers_frame(apps, GroupKind.APP_ROLE, ctx.source, owners)


def service_principal_owners(
    ctx: Context,
    service_principals: list[dict[str, Any]],
    results: Mapping[str, Listing | UnitFailed],
) -> dict[str, list[str]]:
    """Service principal id -> the ids of its owners (users or service principals), for those
    that have any. A listing that failed (403, retries or time budget exhausted) marks the unit
    incomplete with a ``service-principal-owners:<id>`` unit saying why, never an empty list."""
    owners: dict[str, list[str]] = {}
    failed: list[tuple[str, str]] = []
    pages = links = 0
    for sp in service_principals:
        sp_id = str(sp["id"])
        result = results.get(f"p:{sp_id}", UnitFailed("not collected"))
        if isinstance(result, GraphFailure) and result.code == "Request_ResourceNotFound":
            continue  # deleted since the listing
        if isinstance(result, UnitFailed):
            failed.append((sp_id, str(result)))
            continue
        pages += result.pages
        ids = [str(i.get("id")) for i in result.items if i.get("id")]
        links += len(ids)
        if ids:
            owners[sp_id] = ids
    unit = "service-principal-owners"
    if failed:
        ctx.bad(unit, f"{len(failed)} service principal(s) incomplete, see {unit}:<id>", links)
        ctx.failed.extend(CollectionUnit(f"{unit}:{s}", False, r) for s, r in failed)
    else:
        ctx.ok(
            unit,
            f"{len(service_principals)} service principal(s): no @odata.nextLink after "
            f"{pages} page(s) in total",
            links,
        )
    return owners


def app_role_assignments(
    ctx: Context,
    service_principals: list[dict[str, Any]],
    results: Mapping[str, Listing | UnitFailed],
) -> list[Row]:
    rows: list[Row] = []
    failed: list[tuple[str, str]] = []
    pages = 0
    for sp in service_principals:
        result = results.get(f"a:{sp['id']}", UnitFailed("not collected"))
        if isinstance(result, GraphFailure) and result.code == "Request_ResourceNotFound":
            continue  # deleted since the listing
        if isinstance(result, UnitFailed):
            failed.append((str(sp["id"]), str(result)))
            continue
        pages += result.pages
        rows += app_role_grants(result.items, sp)
    if failed:
        ctx.bad(
            "app-role-assignments",
            f"{len(failed)} service principal(s) incomplete, see app-role-assignments:<id>",
            len(rows),
        )
        ctx.failed.extend(CollectionUnit(f"app-role-assignments:{s}", False, r) for s, r in failed)
    else:
        ctx.ok(
            "app-role-assignments",
            f"{len(service_principals)} service principal(s): no @odata.nextLink after "
            f"{pages} page(s) in total",
            len(rows),
        )
    return rows
