"""What an account reaches and what ties a group to another organisation: the views that gather
the membership and grant views into one row per right or link."""

from __future__ import annotations

import polars as pl

from accessaudit.engine.views.directory import CAT, real
from accessaudit.model import MemberKind, Via

_ACCOUNT_COLS = ["account_org", "account_real", "account_enabled", "account_kind"]


def _group_rights(access: pl.LazyFrame) -> pl.LazyFrame:
    """The ``access`` view as rights rows, as it is: a rule's filter is pushed down into it."""
    return access.select(
        pl.col("account_id"),
        pl.lit("membership").alias("right_kind"),
        pl.col("group_id").alias("resource_id"),
        pl.col("group_org").alias("resource_org"),
        pl.col("group_real").alias("resource_real"),
        *_ACCOUNT_COLS,
        "days_since_active",
        "cross",
        right_enabled=pl.lit(True),
    )


def _disabled_logins(
    memberships: pl.LazyFrame, a_orgs: pl.LazyFrame, g_orgs: pl.LazyFrame
) -> pl.LazyFrame:
    """Memberships through a login its application has disabled (``via`` ``csv-disabled``):
    they give no access, so the expansion leaves them out, but they are still held."""
    return (
        memberships.filter(pl.col("via") == Via.CSV_DISABLED.value)
        .filter(pl.col("member_kind") == MemberKind.ACCOUNT.value)
        .select(account_id="member_id", resource_id="group_id")
        .unique()
        .join(a_orgs, on="account_id")
        .join(g_orgs.select(resource_id="group_id", resource_org="group_org"), on="resource_id")
        .with_columns(right_kind=pl.lit("membership"), right_enabled=pl.lit(False))
    )


def _role_rights(role_grants: pl.LazyFrame, effective: pl.LazyFrame) -> list[pl.LazyFrame]:
    """Directory roles an account holds directly, or through a group at any depth."""
    role_cols = role_grants.select(
        "principal_id", "principal_type", resource_id="resource_id", resource_org="resource_org"
    )
    roles_direct = role_cols.filter(pl.col("principal_type") == "account").select(
        account_id="principal_id",
        right_kind=pl.lit("directory-role"),
        resource_id="resource_id",
        resource_org="resource_org",
    )
    roles_via = (
        role_cols.filter(pl.col("principal_type") == "group")
        .with_columns(pl.col("principal_id").cast(CAT))
        .join(effective.select("account_id", principal_id="group_id"), on="principal_id")
        .select(
            pl.col("account_id").cast(pl.String),
            right_kind=pl.lit("directory-role"),
            resource_id="resource_id",
            resource_org="resource_org",
        )
    )
    return [roles_direct, roles_via]


def _app_rights(app_grants: pl.LazyFrame, memberships: pl.LazyFrame) -> list[pl.LazyFrame]:
    """App roles an account is assigned directly, or as a direct member of an assigned group."""
    app_cols = app_grants.select(
        "principal_id", "principal_type", "resource_id", resource_org="app_org"
    )
    apps_direct = app_cols.filter(pl.col("principal_type") == "account").select(
        account_id="principal_id",
        right_kind=pl.lit("app-role"),
        resource_id="resource_id",
        resource_org="resource_org",
    )
    # Graph: "direct members of the group are also considered to have been assigned the role".
    apps_via = (
        app_cols.filter(pl.col("principal_type") == "group")
        .join(
            memberships.filter(pl.col("member_kind") == MemberKind.ACCOUNT.value).select(
                account_id="member_id", principal_id="group_id"
            ),
            on="principal_id",
        )
        .select(
            "account_id",
            right_kind=pl.lit("app-role"),
            resource_id="resource_id",
            resource_org="resource_org",
        )
    )
    return [apps_direct, apps_via]


def rights(
    access: pl.LazyFrame,
    role_grants: pl.LazyFrame,
    app_grants: pl.LazyFrame,
    a_orgs: pl.LazyFrame,
    effective: pl.LazyFrame,
    memberships: pl.LazyFrame,
    g_orgs: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Everything an account can reach: groups (any depth), directory roles (held directly or
    through a group), app roles (directly or as a direct member of an assigned group); and,
    with ``g_orgs``, the groups it holds through a disabled login (``right_enabled`` false).

    The group part is the (large) ``access`` view as it is, so that a rule's filter on it is
    pushed down into it; only the (small) grant parts are de-duplicated and joined here.
    """
    groups = _group_rights(access)
    granted = (
        pl.concat([*_role_rights(role_grants, effective), *_app_rights(app_grants, memberships)])
        .unique(["account_id", "right_kind", "resource_id"])
        .join(a_orgs, on="account_id")
        .with_columns(right_enabled=pl.lit(True))
        .with_columns(resource_real=real("resource_org"))
        .with_columns(
            cross=pl.col("account_real")
            & pl.col("resource_real")
            & (pl.col("account_org") != pl.col("resource_org"))
        )
        .select(groups.collect_schema().names())
    )
    parts = [groups, granted]
    if g_orgs is not None:
        disabled = _disabled_logins(memberships, a_orgs, g_orgs).with_columns(
            resource_real=real("resource_org")
        )
        parts.append(
            disabled.with_columns(
                cross=pl.col("account_real")
                & pl.col("resource_real")
                & (pl.col("account_org") != pl.col("resource_org"))
            ).select(groups.collect_schema().names())
        )
    return pl.concat(parts)


def group_links(
    nestings: pl.LazyFrame,
    owners: pl.LazyFrame,
    role_grants: pl.LazyFrame,
    app_grants: pl.LazyFrame,
) -> pl.LazyFrame:
    """Each group's ties to the other organisation: nested in its group, owned by it, holding
    its role or app role."""
    return pl.concat(
        [
            nestings.filter(
                pl.col("child_real")
                & pl.col("parent_real")
                & (pl.col("child_org") != pl.col("parent_org"))
            ).select(
                group_id="child_id",
                link=pl.lit("nested in"),
                other_org="parent_org",
                other_id="parent_id",
            ),
            owners.filter(pl.col("cross")).select(
                "group_id", link=pl.lit("owned by"), other_org="owner_org", other_id="owner_id"
            ),
            role_grants.filter(pl.col("cross") & (pl.col("principal_type") == "group")).select(
                group_id="principal_id",
                link=pl.lit("holds a role of"),
                other_org="resource_org",
                other_id="resource_id",
            ),
            app_grants.filter(pl.col("cross") & (pl.col("principal_type") == "group")).select(
                group_id="principal_id",
                link=pl.lit("holds an app role of"),
                other_org="app_org",
                other_id="resource_id",
            ),
        ]
    )
