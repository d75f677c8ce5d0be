"""Assignment views: Entra directory roles, enterprise applications' app roles and group owners,
each with the holder's and the resource's organisation."""

from __future__ import annotations

import polars as pl

from accessaudit.engine.views.directory import AU, unique_top
from accessaudit.model import MemberKind, ResourceKind


def role_grants(
    grants: pl.LazyFrame,
    principals: pl.LazyFrame,
    grp: pl.LazyFrame,
    memberships: pl.LazyFrame,
    a_orgs: pl.LazyFrame,
) -> pl.LazyFrame:
    text = pl.col("right").str.strip_suffix(" (eligible)")
    roles = (
        grants.filter(pl.col("resource_kind") == ResourceKind.DIRECTORY_ROLE.value)
        .select("principal_id", "resource_id", "right")
        .unique()
        .with_columns(
            eligible=pl.col("right").str.ends_with(" (eligible)"),
            role_name=text.str.replace(r" @ [^@]*$", ""),
            scope=text.str.extract(r" @ ([^@]*)$", 1).fill_null("/"),
        )
        .with_columns(
            scope_id=pl.when(pl.col("scope") == "/")
            .then(pl.lit(None, pl.String))
            .otherwise(pl.col("scope").str.extract(r"([^/]+)/?$", 1))
        )
        .join(principals, on="principal_id", how="left")
    )
    # The tenant is the hosting organisation's, as the domain's protected groups are: its
    # organisation is the one holding most privileged groups (none, or a tie: unknown).
    host = unique_top(grp.filter(pl.col("privileged") & pl.col("real_org")), [], "org", "host_org")
    # What a scoped role reaches: the scope object's own organisation (an administrative unit or
    # an application) and the organisations of the accounts the administrative unit contains.
    scope_own = grp.filter(pl.col("real_org")).select(
        scope_id="group_id", reach_org="org", _own=pl.lit(True)
    )
    scope_members = (
        memberships.filter(pl.col("member_kind") == MemberKind.ACCOUNT.value)
        .select(scope_id="group_id", account_id="member_id")
        .join(grp.filter(pl.col("kind") == AU).select(scope_id="group_id"), on="scope_id")
        .join(a_orgs.filter(pl.col("account_real")), on="account_id")
        .select("scope_id", reach_org="account_org", _own=pl.lit(False))
    )
    key = ["principal_id", "resource_id", "right"]
    reach = (
        roles.filter(pl.col("scope_id").is_not_null())
        .select(*key, "scope_id", "principal_org")
        .join(pl.concat([scope_own, scope_members]).unique(), on="scope_id")
        .filter(pl.col("reach_org") != pl.col("principal_org").fill_null(""))
        .group_by(key)
        .agg(
            reach_org=pl.col("reach_org")
            .sort_by(["_own", "reach_org"], descending=[True, False])
            .first(),
            reach_via_scope=pl.col("_own").max(),
        )
    )
    scope_obj = grp.select(scope_id="group_id", scope_org="org", scope_kind="kind")
    root = pl.col("scope") == "/"
    return (
        roles.join(reach, on=key, how="left")
        .join(scope_obj, on="scope_id", how="left")
        .join(host, how="cross")
        .with_columns(
            resource_org=pl.when(root)
            .then(pl.col("host_org"))
            .otherwise(pl.coalesce("reach_org", "scope_org")),
            host_known=pl.col("host_org").is_not_null(),
        )
        .with_columns(
            cross=pl.col("principal_real").fill_null(False)
            & pl.when(root)
            .then(
                pl.col("host_org").is_null()
                | (pl.col("host_org") != pl.col("principal_org")).fill_null(False)
            )
            .otherwise(pl.col("reach_org").is_not_null())
        )
    )


def app_grants(grants: pl.LazyFrame, principals: pl.LazyFrame, grp: pl.LazyFrame) -> pl.LazyFrame:
    apps = grp.select(resource_id="group_id", app_org="org", app_real="real_org", app_name="name")
    return (
        grants.filter(pl.col("resource_kind") == ResourceKind.APP_ROLE.value)
        .select("principal_id", "resource_id", "right")
        .unique()
        .with_columns(
            role=pl.col("right").str.extract(r": ([^:]*)$", 1).fill_null(pl.col("right")),
        )
        .join(principals, on="principal_id", how="left")
        .join(apps, on="resource_id", how="left")
        .with_columns(
            app_name=pl.coalesce(
                "app_name", pl.col("right").str.extract(r"^(.*): [^:]*$", 1), "resource_id"
            ),
            cross=(
                pl.col("principal_real").fill_null(False)
                & pl.col("app_real").fill_null(False)
                & (pl.col("principal_org") != pl.col("app_org")).fill_null(False)
            ),
        )
    )


def owners(grp: pl.LazyFrame, grants: pl.LazyFrame, principals: pl.LazyFrame) -> pl.LazyFrame:
    """managedBy, Entra owners and ownership grants: one row per (group, owner)."""
    managed = grp.filter(pl.col("managed_by").is_not_null()).select(
        "group_id", owner_id="managed_by", via=pl.lit("managedBy")
    )
    listed = (
        grp.select("group_id", owner_id="owners")
        .explode("owner_id")
        .filter(pl.col("owner_id").is_not_null())
        .with_columns(via=pl.lit("owner"))
    )
    granted = grants.filter(pl.col("resource_kind") == ResourceKind.OWNERSHIP.value).select(
        group_id="resource_id", owner_id="principal_id", via=pl.lit("owner")
    )
    g = grp.select(
        "group_id", group_org="org", group_real="real_org", group_kind="kind", mastered="mastered"
    )
    return (
        pl.concat([managed, listed, granted])
        .sort("group_id", "owner_id", "via")
        .unique(["group_id", "owner_id"], keep="first", maintain_order=True)
        .join(g, on="group_id")
        .join(
            principals.select(
                owner_id="principal_id",
                owner_type="principal_type",
                owner_org="principal_org",
                owner_real="principal_real",
            ),
            on="owner_id",
            how="left",
        )
        .with_columns(
            cross=pl.col("owner_real").fill_null(False)
            & pl.col("group_real")
            & (pl.col("owner_org") != pl.col("group_org")).fill_null(False)
        )
    )
