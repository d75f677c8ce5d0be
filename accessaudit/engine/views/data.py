"""Data paths: who can reach which folder or share, mailbox or Azure scope of a hosted service.

Built from the data grants (``grants`` rows of kind folder, share, mailbox and azure-scope, their
trustees resolved to directory objects by the pipeline) and the attributed ``resources`` view.
One row per (holder, resource, right, allow/deny); a group holder carries its effective member
accounts, which is how many people reach the data through it. ``strong`` marks the rights that
give control or the mailbox's voice (full control, modify; FullAccess, SendAs, SendOnBehalf,
ChangePermission, ChangeOwner; Owner, Contributor, User Access Administrator), the rest read.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from accessaudit.model import ResourceKind

DATA_KINDS: Final = (
    ResourceKind.FOLDER.value,
    ResourceKind.SHARE.value,
    ResourceKind.MAILBOX.value,
    ResourceKind.AZURE_SCOPE.value,
)
#: Rights above read, per kind of data (learn.microsoft.com: NTFS basic permissions,
#: Add-MailboxPermission -AccessRights, Azure built-in roles).
STRONG_RIGHTS: Final = (
    "full control",
    "modify",
    "FullAccess",
    "SendAs",
    "SendOnBehalf",
    "ChangePermission",
    "ChangeOwner",
    "Owner",
    "Contributor",
    "User Access Administrator",
    "Role Based Access Control Administrator",
)


def data_access(
    grants: pl.LazyFrame, resources: pl.LazyFrame, principals: pl.LazyFrame, eff: pl.LazyFrame
) -> pl.LazyFrame:
    """One row per (holder, data resource, right, deny): see the catalogue."""
    rows = (
        grants.filter(pl.col("resource_kind").is_in(list(DATA_KINDS)))
        .with_columns(deny=pl.col("deny").fill_null(False))
        .group_by("principal_id", "resource_id", "resource_kind", "right", "deny")
        .agg(
            inherited=pl.col("inherited").fill_null(False).all(),
            reach=pl.col("reach").fill_null(1).max(),
        )
    )
    denied = rows.filter(pl.col("deny")).select(
        "principal_id", "resource_id", "right", denied=pl.lit(True)
    )
    members = (
        eff.group_by("group_id")
        .agg(members=pl.col("account_id").n_unique().cast(pl.Int64))
        .select(pl.col("group_id").cast(pl.String).alias("principal_id"), "members")
    )
    res = resources.select(
        "resource_id",
        "family",
        "object_class",
        resource_name="name",
        resource_path="path",
        resource_org="org",
        resource_real="real_org",
    )
    return (
        rows.join(res, on="resource_id", how="left")
        .join(principals.drop("principal_kind", strict=False), on="principal_id", how="left")
        .join(members, on="principal_id", how="left")
        .join(denied, on=["principal_id", "resource_id", "right"], how="left")
        .with_columns(
            principal_type=pl.col("principal_type").fill_null("unresolved"),
            principal_real=pl.col("principal_real").fill_null(False),
            resource_real=pl.col("resource_real").fill_null(False),
            members=pl.when(pl.col("principal_type") == "group").then(
                pl.col("members").fill_null(0)
            ),
            denied=~pl.col("deny") & pl.col("denied").fill_null(False),
            strong=pl.col("right").is_in(list(STRONG_RIGHTS)),
            resource_name=pl.coalesce("resource_name", "resource_id"),
        )
        .with_columns(
            cross=pl.col("principal_real")
            & pl.col("resource_real")
            & (pl.col("principal_org") != pl.col("resource_org")).fill_null(False)
        )
        .select(
            "principal_id",
            "principal_type",
            "principal_org",
            "principal_real",
            "members",
            "resource_id",
            "resource_kind",
            "family",
            "object_class",
            "resource_name",
            "resource_path",
            "resource_org",
            "resource_real",
            "right",
            "deny",
            "denied",
            "strong",
            "inherited",
            "reach",
            "cross",
        )
    )
