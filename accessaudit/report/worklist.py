"""The exports as worklists: names beside every id, the readable columns first, the worst and
most effective actions on top, and the identity team's tracking columns.

An identity team filters and sorts the exports in a spreadsheet. Ids (GUIDs, SIDs) are what a
command needs; names are what a person filters on. Every id column of the findings and actions
gets a ``*_name`` column next to it, resolved from the run's accounts and groups (an id that is
neither, a role definition or an application, keeps the name its finding gives it in ``right``).

Actions are ordered by severity (worst first), then by the findings they resolve (most first),
then by id: the same order in ``actions.csv``, ``actions.xlsx``, the JSON export and the report.
The tracking columns (``status``, ``owner``, ``ticket``, ``done``, ``notes``) are the team's:
the tool never sets them, it carries them over from the tracking file by ``action_id``
(:mod:`accessaudit.report.tracking`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import polars as pl

from accessaudit.model import SEVERITY_RANK, Severity

#: The identity team's columns, kept between runs by action id.
TRACKING_COLUMNS: Final = ("status", "owner", "ticket", "done", "notes")

#: Findings: id column -> the name column written right after it.
FINDING_NAMES: Final = {
    "account_id": "account_name",
    "group_id": "group_name",
    "member_group_id": "member_group_name",
    "via_group_id": "via_group_name",
    "resource_id": "resource_name",
}
#: Actions: id column -> the name column written right after it.
ACTION_NAMES: Final = {
    "group_id": "group_name",
    "member_id": "member_name",
    "resource_id": "resource_name",
}
#: The columns a person reads first in an actions sheet, in this order; the rest follow.
ACTION_LEAD: Final = (
    *("severity", "kind", "owning_org", "summary", "group_name", "member_name"),
    *("resource_name", "right", "resolves", "apply", *TRACKING_COLUMNS, "action_id", "batch_id"),
)


def object_names(accounts: pl.DataFrame, groups: pl.DataFrame) -> pl.DataFrame:
    """``id`` -> ``name`` for every account and group: what a person calls it (display name,
    then sign-in name, then account name for an account; the group's name)."""
    frames = []
    if "account_id" in accounts.columns:
        candidates = [c for c in ("display_name", "upn", "username") if c in accounts.columns]
        frames.append(
            accounts.select(
                id=pl.col("account_id"),
                name=pl.coalesce(*candidates) if candidates else pl.lit(None, pl.String),
            )
        )
    if "group_id" in groups.columns and "name" in groups.columns:
        frames.append(groups.select(id=pl.col("group_id"), name=pl.col("name")))
    if not frames:
        return pl.DataFrame(schema={"id": pl.String, "name": pl.String})
    return (
        pl.concat([f.cast({"id": pl.String, "name": pl.String}) for f in frames])
        .drop_nulls("id")
        .unique("id", keep="first", maintain_order=True)
    )


def with_names(df: pl.DataFrame, names: pl.DataFrame, columns: dict[str, str]) -> pl.DataFrame:
    """``df`` with a name column right after each id column of ``columns`` that it has."""
    out = df
    order = list(df.columns)
    lookup = names.lazy()
    for id_col, name_col in columns.items():
        if id_col not in out.columns or name_col in out.columns:
            continue
        out = (
            out.lazy()
            .with_columns(pl.col(id_col).cast(pl.String).alias("_id"))
            .join(
                lookup.rename({"id": "_id", "name": name_col}),
                on="_id",
                how="left",
                maintain_order="left",
            )
            .drop("_id")
            .collect()
        )
        order.insert(order.index(id_col) + 1, name_col)
    return out.select(order)


def _severity_rank() -> pl.Expr:
    ranks = {s.value: SEVERITY_RANK[s] for s in Severity}
    return pl.col("severity").replace_strict(ranks, default=-1, return_dtype=pl.Int32)


def worklist_order(actions: pl.DataFrame) -> pl.DataFrame:
    """Actions by severity (worst first), findings resolved (most first), then id."""
    if actions.is_empty() or "severity" not in actions.columns:
        return actions
    resolves = pl.col("resolves") if "resolves" in actions.columns else pl.lit(0)
    return (
        actions.with_columns(_rank=_severity_rank(), _resolves=resolves)
        .sort(["_rank", "_resolves", "action_id"], descending=[True, True, False])
        .drop("_rank", "_resolves")
    )


def with_tracking(actions: pl.DataFrame, tracking: pl.DataFrame | None) -> pl.DataFrame:
    """``actions`` + the tracking columns, filled from ``tracking`` by ``action_id`` (null
    where the team has written nothing yet)."""
    empty = {c: pl.lit(None, pl.String).alias(c) for c in TRACKING_COLUMNS}
    base = actions.drop([c for c in TRACKING_COLUMNS if c in actions.columns])
    if tracking is None or tracking.is_empty():
        return base.with_columns(**empty)
    kept = tracking.select("action_id", *TRACKING_COLUMNS).unique("action_id", keep="last")
    return base.join(kept, on="action_id", how="left", maintain_order="left")


def findings_sheet(findings: pl.DataFrame, names: pl.DataFrame) -> pl.DataFrame:
    """The findings export: every id with its name beside it."""
    return with_names(findings, names, FINDING_NAMES)


def actions_sheet(
    actions: pl.DataFrame, names: pl.DataFrame, tracking: pl.DataFrame | None
) -> pl.DataFrame:
    """The actions export: names beside ids, tracking columns, readable columns first, in
    worklist order."""
    named = with_tracking(with_names(worklist_order(actions), names, ACTION_NAMES), tracking)
    lead = [c for c in ACTION_LEAD if c in named.columns]
    return named.select(lead + [c for c in named.columns if c not in lead])


def finding_keys_sheet(actions: pl.DataFrame) -> pl.DataFrame:
    """One row per (action, finding it resolves): the list that does not fit in a cell."""
    if "finding_keys" not in actions.columns:
        return pl.DataFrame(schema={"action_id": pl.String, "finding_key": pl.String})
    return (
        actions.select("action_id", pl.col("finding_keys").alias("finding_key"))
        .explode("finding_key")
        .drop_nulls("finding_key")
    )


def split_sheets(
    actions: pl.DataFrame, by: str = "owning_org", drop: Sequence[str] = ("finding_keys",)
) -> dict[str, pl.DataFrame]:
    """One actions sheet per value of ``by`` (``actions-<force>``), each in worklist order,
    without the ``drop`` columns (they go to sheets of their own)."""
    kept = actions.drop([c for c in drop if c in actions.columns])
    values = sorted(set(kept[by].drop_nulls().to_list())) if by in kept.columns else []
    sheets = {f"actions-{v}": kept.filter(pl.col(by) == v) for v in values}
    rest = kept.filter(pl.col(by).is_null()) if by in kept.columns else kept
    if not sheets or not rest.is_empty():
        sheets["actions" if not sheets else "actions-none"] = rest
    return sheets
