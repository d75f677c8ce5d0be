"""Role assignments (one row each: principal id and type, role id and name, scope) to canonical
tables: one ``resources`` row per scope (family ``azure-scope``, parent = the containing scope)
and one ``grants`` row per assignment (resource kind ``azure-scope``, right = the role's name).

Scopes are compared lower-cased (Azure resource ids are case-insensitive); the resource id is
the lower-cased scope, ``path`` the scope as Azure wrote it. Parents: a resource's resource
group, a resource group's subscription; a subscription's or management group's parent is not in
an assignment list and stays null. Pure polars.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from accessaudit.model import GRANTS_SCHEMA, RESOURCES_SCHEMA, ResourceKind, conform

#: Columns the readers produce.
ASSIGNMENT_SCHEMA: Final = pl.Schema(
    {
        "principal_id": pl.String(),
        "principal_type": pl.String(),
        "role_id": pl.String(),  # the role definition's GUID (last segment of its id)
        "role_name": pl.String(),  # null when the role is deleted or unreadable
        "scope": pl.String(),
    }
)

_MG = r"^/providers/microsoft\.management/managementgroups/[^/]+$"
_SUB = r"^/subscriptions/[^/]+$"
_RG = r"^/subscriptions/[^/]+/resourcegroups/[^/]+$"


def _parent(low: pl.Expr) -> pl.Expr:
    rg = low.str.extract(r"^(/subscriptions/[^/]+/resourcegroups/[^/]+)/providers/", 1)
    sub = low.str.extract(r"^(/subscriptions/[^/]+)/", 1)
    return pl.coalesce(rg, sub)


def _class(low: pl.Expr) -> pl.Expr:
    return (
        pl.when(low == "/")
        .then(pl.lit("root"))
        .when(low.str.contains(_MG))
        .then(pl.lit("managementGroup"))
        .when(low.str.contains(_SUB))
        .then(pl.lit("subscription"))
        .when(low.str.contains(_RG))
        .then(pl.lit("resourceGroup"))
        .otherwise(pl.lit("resource"))
    )


def tables(assignments: pl.DataFrame, source: str) -> dict[str, pl.DataFrame]:
    """``resources`` and ``grants`` of ``assignments`` (:data:`ASSIGNMENT_SCHEMA`)."""
    rows = assignments.with_columns(
        scope=pl.col("scope").str.strip_chars().str.strip_chars_end("/").replace("", "/")
    ).with_columns(_low=pl.col("scope").str.to_lowercase())
    scopes = rows.select("scope", "_low").unique("_low", keep="first")
    # parents of assigned scopes are resources too (a resource group's subscription)
    parents = scopes.select(_low=_parent(pl.col("_low")), scope=_parent(pl.col("scope"))).filter(
        pl.col("_low").is_not_null()
    )
    every = pl.concat([scopes, parents.select("scope", "_low")]).unique("_low", keep="first")
    resources = every.sort("_low").select(
        source=pl.lit(source),
        resource_id="_low",
        family=pl.lit("azure-scope"),
        object_class=_class(pl.col("_low")),
        name=pl.when(pl.col("_low") == "/")
        .then(pl.lit("/"))
        .otherwise(pl.col("scope").str.extract(r"([^/]+)$", 1)),
        path="scope",
        parent_id=_parent(pl.col("_low")),
        readable=pl.lit(True),
    )
    grants = (
        rows.select(
            source=pl.lit(source),
            principal_id=pl.col("principal_id").str.strip_chars().str.to_lowercase(),
            resource_id="_low",
            resource_kind=pl.lit(ResourceKind.AZURE_SCOPE.value),
            right=pl.coalesce(
                pl.when(pl.col("role_name").str.strip_chars() != "").then("role_name"),
                pl.lit("role ") + pl.col("role_id"),
            ),
            deny=pl.lit(False),
            inherited=pl.lit(False),
        )
        .unique()
        .sort("resource_id", "principal_id", "right")
    )
    return {
        "resources": conform(resources, RESOURCES_SCHEMA),
        "grants": conform(grants, GRANTS_SCHEMA),
    }
