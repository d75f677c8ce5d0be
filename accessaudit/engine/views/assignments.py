"""Assignment views: Entra directory roles, enterprise applications' app roles and group owners,
each with the holder's and the resource's organisation."""

from __future__ import annotations

import polars as pl

from accessaudit.engine.views.directory import AU
from accessaudit.model import MemberKind, ResourceKind

#: The declared hosts' frame: which organisation hosts each source's directory (a tenant or a
#: domain), as the configuration declares it; a source not in it has no known host.
HOSTS_SCHEMA = pl.Schema({"source": pl.String(), "host_org": pl.String()})


def _unit_objects(acc: pl.LazyFrame, grp: pl.LazyFrame) -> pl.LazyFrame:
    """Every attributed object an administrative unit can hold, by id: accounts (users, guests,
    service principals) and groups, with a name to show. Devices and org contacts have no row
    (``foreign`` members): attributed to no one, they reach no one."""
    name = pl.coalesce("upn", "username", "display_name", "account_id")
    return pl.concat(
        [
            acc.filter(pl.col("real_org")).select(
                member_id="account_id",
                member_kind=pl.lit(MemberKind.ACCOUNT.value),
                object_org="org",
                object_type=pl.lit("account"),
                object_name=name,
            ),
            grp.filter(pl.col("real_org")).select(
                member_id="group_id",
                member_kind=pl.lit(MemberKind.GROUP.value),
                object_org="org",
                object_type=pl.lit("group"),
                object_name=pl.coalesce("name", "group_id"),
            ),
        ]
    )


def _scope_reach(
    roles: pl.LazyFrame, grp: pl.LazyFrame, memberships: pl.LazyFrame, acc: pl.LazyFrame
) -> pl.LazyFrame:
    """Per scoped role: the other organisation it reaches and through what. A scope object (an
    administrative unit, an application) of another organisation is reached itself; an
    administrative unit also reaches every member object (account, group) of another
    organisation: a Groups Administrator scoped to a unit holding a group can change that
    group's membership (learn.microsoft.com/entra/identity/role-based-access-control/
    admin-units-manage). A group in a unit does not bring its members in."""
    scope_own = grp.filter(pl.col("real_org")).select(
        scope_id="group_id",
        reach_org="org",
        _own=pl.lit(True),
        object_type=pl.lit(None, pl.String),
        object_id=pl.lit(None, pl.String),
        object_name=pl.lit(None, pl.String),
    )
    scope_members = (
        memberships.select(scope_id="group_id", member_id="member_id", member_kind="member_kind")
        .join(grp.filter(pl.col("kind") == AU).select(scope_id="group_id"), on="scope_id")
        .join(_unit_objects(acc, grp), on=["member_id", "member_kind"])
        .select(
            "scope_id",
            reach_org="object_org",
            _own=pl.lit(False),
            object_type="object_type",
            object_id="member_id",
            object_name="object_name",
        )
    )
    key = ["principal_id", "resource_id", "right"]
    order = ["_own", "reach_org", "object_type", "object_name", "object_id"]
    return (
        roles.filter(pl.col("scope_id").is_not_null())
        .select(*key, "scope_id", "principal_org")
        .join(pl.concat([scope_own, scope_members]).unique(), on="scope_id")
        .filter(pl.col("reach_org") != pl.col("principal_org").fill_null(""))
        .sort(order, descending=[True, False, False, False, False], nulls_last=True)
        .group_by(key, maintain_order=True)
        .agg(
            reach_org=pl.col("reach_org").first(),
            reach_via_scope=pl.col("_own").first(),
            reach_object_type=pl.col("object_type").first(),
            reach_object_id=pl.col("object_id").first(),
            reach_object_name=pl.col("object_name").first(),
            reach_objects=pl.col("object_id").n_unique().cast(pl.Int64)
            - pl.col("object_id").null_count().gt(0).cast(pl.Int64),
        )
    )


def role_grants(
    grants: pl.LazyFrame,
    principals: pl.LazyFrame,
    grp: pl.LazyFrame,
    memberships: pl.LazyFrame,
    acc: pl.LazyFrame,
    hosts: pl.LazyFrame,
) -> pl.LazyFrame:
    """Directory roles with what each reaches. The tenant scope ``/`` is the tenant's host
    organisation's, as the configuration declares it (``hosts``: source -> host_org); a source
    without a declared host has none, and then every tenant-wide role is reported."""
    text = pl.col("right").str.strip_suffix(" (eligible)")
    roles = (
        grants.filter(pl.col("resource_kind") == ResourceKind.DIRECTORY_ROLE.value)
        .select("source", "principal_id", "resource_id", "right")
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
    key = ["principal_id", "resource_id", "right"]
    scope_obj = grp.select(
        scope_id="group_id", scope_org="org", scope_kind="kind", scope_name="name"
    )
    declared = hosts.select("source", "host_org").unique("source", keep="first")
    root = pl.col("scope") == "/"
    return (
        roles.join(_scope_reach(roles, grp, memberships, acc), on=key, how="left")
        .join(scope_obj, on="scope_id", how="left")
        .join(declared, on="source", how="left")
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
