"""Administrative units and their direct members -> groups rows (kind ``administrative-unit``)
and memberships.

An administrative unit scopes directory roles ("<role> @ /administrativeUnits/<id>"); its members
(users, groups, devices) are the objects such a role holder may manage. Units do not nest, and a
group in a unit does not bring its members in (learn.microsoft.com/entra/identity/
role-based-access-control/administrative-units). Needs AdministrativeUnit.Read.All; a unit with
``visibility`` HiddenMembership also needs Member.Read.Hidden for its members.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from accessaudit.connectors.entra.tables import (
    AU_SELECT,
    LINK_SELECT,
    containers_frame,
    member_kind,
    memberships_frame,
)
from accessaudit.connectors.entra.units import Context, is_limited, limited_reason, proof, select
from accessaudit.model import CollectionUnit, GroupKind
from accessaudit.transport.graph_http import GraphFailure, Listing, UnitFailed

Jobs = list[tuple[str, str]]


def administrative_units(ctx: Context) -> tuple[list[dict[str, Any]], Jobs]:
    """The units, and one members listing per unit for the shared ``$batch`` queue."""
    lacks = ctx.lacks("administrative-units")
    if lacks:
        ctx.bad("administrative-units", lacks)
        ctx.bad("administrative-unit-members", lacks)
        return [], []
    try:
        # directory-list-administrativeunits documents $select, $filter, $count, $search and
        # $expand, not $top: the default page size is used.
        listing = ctx.client.list_all(f"/directory/administrativeUnits?$select={select(AU_SELECT)}")
    except UnitFailed as failure:
        ctx.bad("administrative-units", str(failure))
        ctx.bad("administrative-unit-members", "administrative units could not be listed")
        return [], []
    ctx.ok("administrative-units", proof(listing), len(listing.items))
    fields = select(LINK_SELECT)
    jobs = [
        (
            f"u:{u['id']}",
            f"/directory/administrativeUnits/{u['id']}/members?$select={fields}&$top={ctx.page}",
        )
        for u in listing.items
    ]
    if not jobs:
        ctx.ok("administrative-unit-members", "no administrative units", 0)
    return listing.items, jobs


def unit_members(
    ctx: Context,
    units: list[dict[str, Any]],
    results: Mapping[str, Listing | UnitFailed],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Groups rows for the units still there, and their direct members as memberships."""
    edges: list[tuple[str, str, str]] = []
    failed: list[tuple[str, str]] = []
    live: list[dict[str, Any]] = []
    pages = 0
    for unit in units:
        unit_id = str(unit["id"])
        result = results.get(f"u:{unit_id}", UnitFailed("not collected"))
        if isinstance(result, GraphFailure) and result.code == "Request_ResourceNotFound":
            continue  # deleted since the listing
        live.append(unit)
        if isinstance(result, UnitFailed):
            reason = str(result)
            hidden = (unit.get("visibility") or "").lower() == "hiddenmembership"
            if hidden and isinstance(result, GraphFailure) and result.status == 403:
                reason += "; the unit hides its membership: grant Member.Read.Hidden"
            failed.append((unit_id, reason))
            continue
        pages += result.pages
        edges.extend(
            (unit_id, str(i.get("id")), member_kind(i.get("@odata.type"))) for i in result.items
        )
        limited = [i for i in result.items if is_limited(i)]
        if limited:
            failed.append((unit_id, limited_reason(limited, "member")))
    groups = containers_frame(live, GroupKind.ADMIN_UNIT, ctx.source)
    memberships = memberships_frame(edges, ctx.source)
    if failed:
        ctx.bad(
            "administrative-unit-members",
            f"{len(failed)} unit(s) incomplete, see administrative-unit-members:<id>",
            memberships.height,
        )
        ctx.failed.extend(
            CollectionUnit(f"administrative-unit-members:{u}", False, r) for u, r in failed
        )
    elif live:
        ctx.ok(
            "administrative-unit-members",
            f"{len(live)} unit(s): no @odata.nextLink after {pages} page(s) in total",
            memberships.height,
        )
    else:
        ctx.ok("administrative-unit-members", "no administrative units", 0)
    return groups, memberships
