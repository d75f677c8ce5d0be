"""The sample's ground truth: the findings its plants must cause, resolved to object ids.

Every plant records its truth rows on the :class:`~accessaudit.sample.builder.Builder` as it
plants, by group *name* (:meth:`~accessaudit.sample.builder.Builder.plant`) or by object ids
(:meth:`~accessaudit.sample.builder.Builder.plant_ids`). :func:`truth_frame` resolves the names
to the ids the directory's groups were given, adds the one rule no plant records by itself
(``inactive-cross-org-access``: a disabled or dormant account keeping any planted cross-force
access, or reaching one through a group's grant) and fails loudly if two plants overlap.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import polars as pl

from accessaudit.model import conform
from accessaudit.sample.builder import Builder

#: Days without a sign-in after which an account counts as dormant.
DORMANT_DAYS: Final = 90

TRUTH_SCHEMA: Final = pl.Schema(
    {
        "rule_id": pl.String,
        "account_id": pl.String,
        "group_id": pl.String,
        "member_group_id": pl.String,
        "resource_id": pl.String,
        "right": pl.String,
        "depth": pl.Int32,
        "plant": pl.String,  # which plant caused it (for reading test failures)
    }
)


#: Rules whose findings are an account's cross-force access (what "inactive" rows derive from).
_ACCESS_RULES = (
    "cross-org-direct-member",
    "cross-org-nested-access",
    "cross-org-privileged-access",
    "cross-org-directory-role",
    "cross-org-app-role",
)
TRUTH_KEYS: Final = ["rule_id", "account_id", "group_id", "member_group_id", "resource_id", "right"]


def truth_frame(
    b: Builder, name_map: pl.DataFrame, accounts: pl.DataFrame, now: datetime
) -> pl.DataFrame:
    """The truth recorded on ``b``, group names resolved by ``name_map`` (``group_name``,
    ``group_id``), with the inactive ``accounts`` that keep a planted cross-force access."""
    raw = pl.concat([t.select(sorted(t.columns)) for t in b.truth], how="vertical")
    member_map = name_map.rename({"group_name": "member_group_name", "group_id": "member_group_id"})
    truth = (
        raw.join(name_map, on="group_name", how="left")
        .join(member_map, on="member_group_name", how="left")
        .with_columns(  # application roles are named by their CSV role id already
            group_id=pl.when(pl.col("group_name").str.starts_with("csv:"))
            .then(pl.col("group_name"))
            .otherwise(pl.col("group_id"))
        )
    )
    by_ids = [
        conform(t.with_columns(pl.col(pl.Null).cast(pl.String)), TRUTH_SCHEMA) for t in b.truth_ids
    ]
    truth = pl.concat([_conform_truth(truth), *by_ids])
    # Findings per (rule, ids) are unique: the plants never overlap by construction, so a
    # duplicate here is a generator bug worth failing loudly on.
    dupes = truth.filter(truth.select(TRUTH_KEYS).is_duplicated())
    if dupes.height:
        raise AssertionError(f"sample plants overlap: {dupes.head(5)}")
    # Inactive (disabled or dormant) accounts keeping any planted cross-force access.
    cross = pl.concat(
        [
            truth.filter(pl.col("rule_id").is_in(_ACCESS_RULES)).select("account_id"),
            *(s.to_frame("account_id") for s in b.reach),
        ]
    ).drop_nulls()
    # dormant: no sign-in since the cutoff, where the source records sign-ins
    cutoff = now - timedelta(days=DORMANT_DAYS)
    dormant = pl.col("activity_tracked").fill_null(False) & (
        pl.coalesce("last_logon", "created") < cutoff
    )
    inactive = accounts.filter(~pl.col("enabled") | dormant).select("account_id")
    rule8 = (
        cross.join(inactive, on="account_id", how="semi")
        .unique()
        .with_columns(rule_id=pl.lit("inactive-cross-org-access"), plant=pl.lit("inactive"))
    )
    out = pl.concat([truth, conform(rule8, TRUTH_SCHEMA)])
    return out.sort(TRUTH_KEYS, nulls_last=True)


def _conform_truth(df: pl.DataFrame) -> pl.DataFrame:
    """Name-keyed truth rows (group names resolved to ids) in TRUTH_SCHEMA."""
    return conform(df.select([c for c in TRUTH_SCHEMA.names() if c in df.columns]), TRUTH_SCHEMA)
