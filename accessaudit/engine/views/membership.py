"""Membership views: effective access through groups, group nesting, and who a group's direct
members are by organisation."""

from __future__ import annotations

import polars as pl

from accessaudit.engine.views.directory import AU, CAT, EFFECTIVE_IDS
from accessaudit.model import MemberKind


def effective_ids(effective: pl.DataFrame) -> pl.LazyFrame:
    """The effective memberships with every id Categorical, as the joins on them expect."""
    return effective.lazy().with_columns(pl.col(*EFFECTIVE_IDS).cast(CAT))


def access(eff: pl.LazyFrame, a_orgs: pl.LazyFrame, g_orgs: pl.LazyFrame) -> pl.LazyFrame:
    """Effective memberships with both sides' organisations; administrative units left out.

    The effective memberships' ids are Categorical (EFFECTIVE_SCHEMA): the two joins run on
    their codes, and the ids become strings only after a rule's filters on the orgs, which
    polars pushes below that cast.
    """
    return (
        eff.join(a_orgs.with_columns(pl.col("account_id").cast(CAT)), on="account_id")
        .join(
            g_orgs.filter(pl.col("group_kind") != AU).with_columns(pl.col("group_id").cast(CAT)),
            on="group_id",
        )
        .with_columns(
            cross=pl.col("account_real")
            & pl.col("group_real")
            & (pl.col("account_org") != pl.col("group_org"))
        )
        .with_columns(pl.col(*EFFECTIVE_IDS, "via").cast(pl.String))
    )


def nestings(memberships: pl.LazyFrame, g_orgs: pl.LazyFrame) -> pl.LazyFrame:
    """Direct group-in-group edges with both groups' organisations."""
    not_au = g_orgs.filter(pl.col("group_kind") != AU)
    return (
        memberships.filter(pl.col("member_kind") == MemberKind.GROUP.value)
        .select(parent_id="group_id", child_id="member_id")
        .join(
            not_au.select(parent_id="group_id", parent_org="group_org", parent_real="group_real"),
            on="parent_id",
        )
        .join(
            g_orgs.select(child_id="group_id", child_org="group_org", child_real="group_real"),
            on="child_id",
        )
    )


def _usage(
    nests: pl.LazyFrame, role_grants: pl.LazyFrame, app_grants: pl.LazyFrame
) -> pl.LazyFrame:
    """Per group: how many groups it is nested in, app roles and directory roles it holds."""
    usage = pl.concat(
        [
            nests.group_by(group_id="child_id").agg(parents=pl.len()),
            app_grants.group_by(group_id="principal_id").agg(app_roles=pl.len()),
            role_grants.group_by(group_id="principal_id").agg(roles=pl.len()),
        ],
        how="diagonal",
    )
    return usage.group_by("group_id").agg(
        pl.col(c).sum().cast(pl.Int64) for c in ("parents", "app_roles", "roles")
    )


def composition(
    memberships: pl.LazyFrame,
    a_orgs: pl.LazyFrame,
    g_orgs: pl.LazyFrame,
    nests: pl.LazyFrame,
    role_grants: pl.LazyFrame,
    app_grants: pl.LazyFrame,
) -> pl.LazyFrame:
    """Per group, its direct account members by organisation and where the group is used."""
    not_au = g_orgs.filter(pl.col("group_kind") != AU)
    return (
        memberships.filter(pl.col("member_kind") == MemberKind.ACCOUNT.value)
        .select("group_id", account_id="member_id")
        .unique()
        .join(a_orgs.filter(pl.col("account_real")), on="account_id")
        .join(not_au, on="group_id")
        .group_by("group_id", "group_org", "group_real")
        .agg(
            members=pl.len(),
            own=(pl.col("account_org") == pl.col("group_org")).sum(),
            other=(pl.col("account_org") != pl.col("group_org")).sum(),
        )
        .with_columns(other_share=pl.col("other") / pl.col("members"))
        .join(_usage(nests, role_grants, app_grants), on="group_id", how="left")
        .with_columns(pl.col("parents", "app_roles", "roles").fill_null(0))
    )
