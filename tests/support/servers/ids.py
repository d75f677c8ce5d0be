"""The mapping from a dataset's ids to the ids a server assigned, and dataset translation."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from accessaudit.model import ACCOUNTS_SCHEMA, GROUPS_SCHEMA, MEMBERSHIPS_SCHEMA


@dataclass
class IdMap:
    """Dataset id -> server id for accounts and groups (GUIDs), and dataset SID -> server SID."""

    ids: dict[str, str] = field(default_factory=dict)
    sids: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def translate(self, tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
        """The dataset's tables with every id and SID replaced by the server's."""

        def ids(col: str) -> pl.Expr:
            return pl.col(col).replace(self.ids)

        def sids(col: str) -> pl.Expr:
            return pl.col(col).replace(self.sids)

        acc = tables["accounts"].with_columns(
            ids("account_id"),
            ids("manager_id"),
            sids("sid"),
            pl.col("sid_history").list.eval(pl.element().replace(self.sids)),
        )
        grp = tables["groups"].with_columns(
            ids("group_id"),
            ids("managed_by"),
            sids("sid"),
            pl.col("owners").list.eval(pl.element().replace(self.ids)),
        )
        mem = tables["memberships"].with_columns(ids("group_id"), ids("member_id"))
        return {
            "accounts": acc.select(ACCOUNTS_SCHEMA.names()),
            "groups": grp.select(GROUPS_SCHEMA.names()),
            "memberships": mem.select(MEMBERSHIPS_SCHEMA.names()),
            "grants": tables["grants"],
        }
