"""Directory-role assignments, PIM eligibility and app-role assignments -> grant rows; the
service principals holding app-role assignments -> groups rows (kind ``app-role``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from ..model import CollectionUnit, GroupKind
from .entra_http import GraphFailure, Listing, UnitFailed
from .entra_tables import SP_SELECT, app_role_grants, containers_frame, role_grants
from .entra_units import Context, proof, select

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


def service_principals(ctx: Context) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    lacks = ctx.lacks("applications")
    if lacks:
        ctx.bad("service-principals", lacks)
        ctx.bad("app-role-assignments", lacks)
        return [], []
    try:
        listing = ctx.client.list_all(
            f"/servicePrincipals?$select={select(SP_SELECT)}&$top={ctx.page}"
        )
    except UnitFailed as failure:
        ctx.bad("service-principals", str(failure))
        ctx.bad("app-role-assignments", "service principals could not be listed")
        return [], []
    ctx.ok("service-principals", proof(listing), len(listing.items))
    jobs = [
        (f"a:{sp['id']}", f"/servicePrincipals/{sp['id']}/appRoleAssignedTo?$top={ctx.page}")
        for sp in listing.items
    ]
    if not jobs:
        ctx.ok("app-role-assignments", "no service principals", 0)
    return listing.items, jobs


def applications(
    ctx: Context, service_principals: list[dict[str, Any]], rows: list[Row]
) -> pl.DataFrame:
    """One groups row per service principal that has app-role assignments: the enterprise
    application whose organisation the rules read (attributed by its name like any group)."""
    assigned = {resource for _, resource, _, _ in rows}
    apps = [sp for sp in service_principals if str(sp.get("id")) in assigned]
    return containers_frame(apps, GroupKind.APP_ROLE, ctx.source)


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
