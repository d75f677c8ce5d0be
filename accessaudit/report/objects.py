"""Every account and group the report names, once: the ``objects`` table rows refer to.

The findings' and actions' rows for the page script name objects by index into this table, so
100,000 findings through the same two groups do not repeat those groups' names and evidence
100,000 times.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import polars as pl

from accessaudit.hidden import visible
from accessaudit.report.display import NO_ORG, NONE, org_label, raw, visible_column
from accessaudit.report.matched import explained

#: Columns of the JSON the page script reads (one list per object, in this order).
OBJECT_COLUMNS: Final = ("id", "name", "secondary", "kind", "org", "evidence", "conflict")
ID, NAME, SECONDARY, KIND, ORG, EVIDENCE, CONFLICT = range(len(OBJECT_COLUMNS))


def _non_empty(column: str) -> pl.Expr:
    return pl.when(pl.col(column) != "").then(pl.col(column))


def _application(groups: pl.DataFrame) -> pl.Expr:
    """An application export's role is named as the application writes it; its application
    (the group's ``description``) is shown beside it. Null for every other group."""
    if not {"source", "description"} <= set(groups.columns):
        return pl.lit(None, pl.String).alias("_application")
    role = pl.col("source").str.starts_with("csv:").fill_null(False)
    return pl.when(role).then(pl.col("description")).alias("_application")


class Objects:
    """Accounts and groups the report refers to, as rows of :data:`OBJECT_COLUMNS`."""

    def __init__(
        self,
        accounts: pl.DataFrame,
        groups: pl.DataFrame,
        ids: set[str],
        attribution: Mapping[str, Any] | None = None,
    ) -> None:
        """``attribution``: the run's ``attribution.json``, to show each piece of evidence
        with the value that matched (:mod:`accessaudit.report.matched`)."""
        self.attribution = attribution
        self.rows: list[list[Any]] = []
        self.hidden: list[bool] = []
        self.index: dict[str, int] = {}
        wanted = sorted(ids)
        if "group_id" in groups.columns:
            g = groups.filter(pl.col("group_id").is_in(wanted))
            g = g.with_columns(
                pl.coalesce(_non_empty("name"), "group_id").alias("_name"), _application(g)
            )
            self._add(g, "group", "group_id", "_application")
        if "account_id" in accounts.columns:
            a = accounts.filter(pl.col("account_id").is_in(wanted))
            cols = [c for c in ("display_name", "username") if c in a.columns]
            names = [_non_empty(c) for c in cols]
            a = a.with_columns(pl.coalesce(*names, "account_id").alias("_name"))
            self._add(a, "account", "account_id", "username" if "username" in a.columns else None)

    def _add(self, df: pl.DataFrame, kind: str, id_col: str, secondary_col: str | None) -> None:
        ids = raw(df, id_col)
        names, names_h = visible_column(df, "_name")
        if secondary_col:
            df = df.with_columns(
                pl.when(pl.col(secondary_col) != pl.col("_name"))
                .then(pl.col(secondary_col))
                .alias("_secondary")
            )
        secondary, secondary_h = visible_column(df, "_secondary")
        orgs = raw(df, "org")
        evidence = explained(df, kind, self.attribution).to_list()
        conflict = raw(df, "org_conflict")
        for i, obj_id in enumerate(ids):
            if obj_id in self.index:
                continue
            self.index[obj_id] = len(self.rows)
            self.rows.append(
                [
                    visible(obj_id),
                    names[i],
                    secondary[i],
                    kind,
                    org_label(orgs[i]),
                    [visible(e) for e in evidence[i] or []],
                    bool(conflict[i]),
                ]
            )
            self.hidden.append(names_h[i] or secondary_h[i])

    def ref(self, obj_id: str | None) -> int | None:
        """Index of ``obj_id`` (an unknown id gets a placeholder object); None for None."""
        if not obj_id:
            return None
        found = self.index.get(obj_id)
        if found is None:
            found = self.index[obj_id] = len(self.rows)
            shown = visible(obj_id)
            self.rows.append([shown, shown, "", "unknown", NO_ORG, [], False])
            self.hidden.append(shown != obj_id)
        return found

    def labelled(self, key: str, name: str, kind: str, org: str) -> int:
        """Index of an object that is not a directory object (an exception of the register, a
        rule), shown as ``name`` (under its own ``key``, which no directory id can equal)."""
        found = self.index.get(key)
        if found is None:
            found = self.index[key] = len(self.rows)
            shown = visible(name)
            self.rows.append([shown, shown, "", kind, org, [], False])
            self.hidden.append(shown != name)
        return found

    def name(self, ref: int | None) -> str:
        return NONE if ref is None else str(self.rows[ref][NAME])
