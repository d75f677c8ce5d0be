"""Ids replaced by the ids themselves in pseudonymised tables: every id column exactly, every
part of a key (see :mod:`accessaudit.report.pseudonymise`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import polars as pl

#: Columns holding one object id each (an account, group, SID or resource).
ID_COLUMNS: Final = frozenset(
    {
        "account_id",
        "group_id",
        "member_group_id",
        "via_group_id",
        "resource_id",
        "member_id",
        "manager_id",
        "principal_id",
        "ancestor_id",
        "subject_id",
        "parent_id",
        "target_id",
    }
)
#: Columns holding keys made of ids joined by "|" (a rule or action kind first).
KEY_COLUMNS: Final = frozenset({"finding_key", "action_id", "finding_keys"})


def map_ids(df: pl.DataFrame, mapping: Mapping[str, str]) -> pl.DataFrame:
    """``df`` with its id columns and the ids inside its key columns replaced by ``mapping``."""
    if not mapping:
        return df

    def part(e: pl.Expr) -> pl.Expr:
        return e.str.split("|").list.eval(pl.element().replace(mapping)).list.join("|")

    exprs = []
    for name, dtype in df.schema.items():
        listed = isinstance(dtype, pl.List)
        text = dtype == pl.String or (isinstance(dtype, pl.List) and dtype.inner == pl.String)
        if not text or (name not in ID_COLUMNS and name not in KEY_COLUMNS):
            continue
        if name in ID_COLUMNS:
            e = pl.element().replace(mapping) if listed else pl.col(name).replace(mapping)
        else:
            e = part(pl.element()) if listed else part(pl.col(name))
        exprs.append(pl.col(name).list.eval(e) if listed else e.alias(name))
    return df.with_columns(exprs) if exprs else df
