"""The other half of the sample's ground truth: the accesses it plants as *legitimate*.

:attr:`accessaudit.sample.builder.Sample.truth` lists the findings every planted cross-force
case must cause (:mod:`accessaudit.sample.truth`);
:attr:`~accessaudit.sample.builder.Sample.legitimate` lists what the generator planted knowing it
is *not* a finding, recorded as each case is planted
(:meth:`~accessaudit.sample.builder.Builder.allow` and its siblings), never derived afterwards
from the tables. A finding "touches" a legitimate row when it carries every non-null key of that
row (same account, group, member group, resource and right).
Row shapes, by the keys they fill:

* ``account_id`` + ``group_id`` (``depth`` 0): a legitimate direct membership, or ownership;
* ``member_group_id`` + ``group_id`` (``depth`` >= 1): the nesting path from the member group up
  to that ancestor stays inside one force (depth 1 is the nesting itself). Together with a
  legitimate direct membership of the member group it makes its members' reach legitimate;
* ``group_id`` alone: no finding may name the group (shared-services and primary groups);
* ``account_id`` alone: no finding may name the account;
* ``account_id`` or ``member_group_id`` with ``resource_id`` + ``right`` (and ``group_id`` for a
  scope or an application): a legitimate grant, role or sIDHistory entry.

Group-level rows keep the table small: per account it holds only direct memberships (about two
rows per member of staff), never one row per (account, reachable group) pair.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from accessaudit.model import conform

LEGIT_SCHEMA: Final = pl.Schema(
    {
        "kind": pl.String,  # which legitimate case planted it
        "account_id": pl.String,
        "group_id": pl.String,
        "member_group_id": pl.String,
        "resource_id": pl.String,
        "right": pl.String,
        "depth": pl.Int32,
        "reason": pl.String,  # why it is not a finding, for reading test failures
    }
)
#: The columns a finding must match (each where the legitimate row is not null).
LEGIT_KEYS: Final = ["account_id", "group_id", "member_group_id", "resource_id", "right"]


def legit_frame(
    named: list[pl.DataFrame],
    groups: list[tuple[str, str, str, int, str]],
    by_ids: list[pl.DataFrame],
    name_map: pl.DataFrame,
) -> pl.DataFrame:
    """Resolve the recorded rows into :data:`LEGIT_SCHEMA`.

    ``named`` rows name groups (``group_name``, ``member_group_name``; a name starting ``csv:``
    is already an application role's id); ``groups`` are group-level rows as plain tuples
    (kind, member group name or "", group name, depth, reason), one per group rather than one
    frame each; ``by_ids`` rows are keyed by object ids already.
    """
    nested = pl.DataFrame(
        groups,
        schema={
            "kind": pl.String,
            "member_group_name": pl.String,
            "group_name": pl.String,
            "depth": pl.Int32,
            "reason": pl.String,
        },
        orient="row",
    ).with_columns(pl.col("member_group_name").replace("", None))
    raw = pl.concat([*named, nested], how="diagonal_relaxed")
    member_map = name_map.rename({"group_name": "member_group_name", "group_id": "member_group_id"})
    resolved = (
        raw.join(name_map, on="group_name", how="left")
        .join(member_map, on="member_group_name", how="left")
        .with_columns(
            group_id=pl.when(pl.col("group_name").str.starts_with("csv:"))
            .then(pl.col("group_name"))
            .otherwise(pl.col("group_id"))
        )
    )
    unresolved = resolved.filter(
        (pl.col("group_name").is_not_null() & pl.col("group_id").is_null())
        | (pl.col("member_group_name").is_not_null() & pl.col("member_group_id").is_null())
    )
    if unresolved.height:  # a typo in a group name would silently weaken the check
        raise AssertionError(f"legitimate rows name unknown groups: {unresolved.head(5)}")
    keep = [c for c in LEGIT_SCHEMA.names() if c in resolved.columns]
    ids = [conform(t.with_columns(pl.col(pl.Null).cast(pl.String)), LEGIT_SCHEMA) for t in by_ids]
    return pl.concat([conform(resolved.select(keep), LEGIT_SCHEMA), *ids])
