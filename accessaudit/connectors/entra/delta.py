"""Incremental collection with Graph delta queries (``/users/delta``, ``/groups/delta``).

A delta round returns changed objects in full, ``@removed`` tombstones, and for groups
``members@delta`` / ``owners@delta`` link changes — a large group may appear on several pages,
each with a slice of its members, and the same entity may be replayed
(learn.microsoft.com/graph/delta-query-overview, delta-query-groups). Here the round is folded
into "last state wins" per object and per link, then applied to the previous run's tables.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import polars as pl

from accessaudit.connectors.entra.tables import (
    GROUP_SELECT,
    USER_SELECT,
    member_kind,
    memberships_frame,
)
from accessaudit.model import ACCOUNTS_SCHEMA, GROUPS_SCHEMA, conform

#: "For directory objects, the limit is seven days" (delta-query-overview).
MAX_AGE: Final = timedelta(days=7)
#: Changes with the selected fields and the canonical columns: a link made for other fields, or
#: whose previous tables lack columns added since, is not reused (a full collection fills them).
FIELDS: Final = hashlib.sha256(
    "|".join(
        [
            ",".join(USER_SELECT),
            ",".join(GROUP_SELECT),
            ",".join(ACCOUNTS_SCHEMA.names()),
            ",".join(GROUPS_SCHEMA.names()),
        ]
    ).encode()
).hexdigest()[:16]

USERS_LATEST: Final = f"/users/delta?$select={','.join(USER_SELECT)}&$deltatoken=latest"
GROUPS_LATEST: Final = (
    f"/groups/delta?$select={','.join(GROUP_SELECT)},members,owners&$deltatoken=latest"
)

_LINK_KEYS: Final = frozenset({"id", "@odata.type", "@removed", "members@delta", "owners@delta"})


def usable_link(
    state: Mapping[str, str], part: str, now: datetime, previous: Mapping[str, pl.DataFrame]
) -> tuple[str | None, str | None]:
    """The stored deltaLink for ``part`` ("users" / "groups") if it can be applied now, else
    None and why a stored link is not used (None when there is none: a first run)."""
    link = state.get(f"{part}_delta_link")
    obtained = state.get(f"{part}_delta_obtained")
    needed = ("accounts",) if part == "users" else ("groups", "memberships")
    if not link or not obtained:
        return None, None
    if state.get("delta_fields") != FIELDS:
        return None, "the stored deltaLink was made for other properties or table columns"
    if any(name not in previous for name in needed):
        return None, "the previous run's tables are not available"
    try:
        when = datetime.fromisoformat(obtained)
    except ValueError:
        return None, f"the stored deltaLink's time {obtained!r} is not valid"
    if now - when >= MAX_AGE:
        return None, f"the stored deltaLink is older than 7 days (obtained {obtained})"
    return link, None


@dataclass
class Folded:
    """One delta round, reduced to its net effect."""

    changed: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> merged properties
    removed: set[str] = field(default_factory=set)
    members: dict[tuple[str, str], tuple[bool, str]] = field(
        default_factory=dict
    )  # -> (added, kind)
    owners: dict[tuple[str, str], bool] = field(default_factory=dict)
    entries: int = 0


def fold(entries: Iterable[Mapping[str, Any]]) -> Folded:
    out = Folded()
    for entry in entries:
        out.entries += 1
        object_id = str(entry.get("id"))
        if "@removed" in entry:
            out.removed.add(object_id)
            out.changed.pop(object_id, None)
            continue
        props = {k: v for k, v in entry.items() if k not in _LINK_KEYS}
        if props:  # a slice-only repeat of a large group carries just id + members@delta
            out.removed.discard(object_id)
            out.changed[object_id] = {**out.changed.get(object_id, {}), "id": object_id, **props}
        for link in entry.get("members@delta") or []:
            key = (object_id, str(link.get("id")))
            out.members[key] = ("@removed" not in link, member_kind(link.get("@odata.type")))
        for link in entry.get("owners@delta") or []:
            out.owners[(object_id, str(link.get("id")))] = "@removed" not in link
    return out


def apply_rows(
    previous: pl.DataFrame, key: str, folded: Folded, fresh: pl.DataFrame
) -> pl.DataFrame:
    """Previous rows minus changed and removed objects, plus the changed objects' new rows."""
    drop = sorted(set(folded.changed) | folded.removed)
    kept = previous.filter(~pl.col(key).is_in(drop))
    return pl.concat([kept, fresh], how="vertical").sort(key)


def apply_owners(
    previous_groups: pl.DataFrame, folded: Folded, live_groups: Iterable[str]
) -> dict[str, list[str]]:
    """Owner lists after the round: previous lists, link changes applied, live groups only."""
    owners: dict[str, list[str]] = {}
    for row in previous_groups.select("group_id", "owners").iter_rows():
        owners[row[0]] = list(row[1] or [])
    for (group_id, owner), added in folded.owners.items():
        ids = owners.setdefault(group_id, [])
        if added and owner not in ids:
            ids.append(owner)
        elif not added and owner in ids:
            ids.remove(owner)
    live = set(live_groups)
    return {g: sorted(ids) for g, ids in owners.items() if g in live and ids}


def with_owners(groups: pl.DataFrame, owners: Mapping[str, list[str]]) -> pl.DataFrame:
    lists = pl.DataFrame(
        {"group_id": list(owners), "owners": list(owners.values())},
        schema={"group_id": pl.String, "owners": pl.List(pl.String)},
    )
    joined = groups.drop("owners").join(lists, on="group_id", how="left")
    joined = joined.with_columns(pl.col("owners").fill_null(pl.lit([], dtype=pl.List(pl.String))))
    return conform(joined, GROUPS_SCHEMA)


def apply_memberships(
    previous: pl.DataFrame, folded: Folded, gone: set[str], source: str
) -> tuple[pl.DataFrame, int, int]:
    """Memberships after the round; ``gone`` = ids of deleted users and groups.

    Returns the table and the number of links added and removed.
    """
    removed = {k for k, (added, _) in folded.members.items() if not added}
    added = {k: kind for k, (was_added, kind) in folded.members.items() if was_added}
    touched = pl.DataFrame(
        sorted(removed | set(added)),
        schema={"group_id": pl.String, "member_id": pl.String},
        orient="row",
    )
    gone_list = sorted(gone)
    kept = previous.filter(
        ~pl.col("group_id").is_in(gone_list) & ~pl.col("member_id").is_in(gone_list)
    ).join(touched, on=["group_id", "member_id"], how="anti")
    fresh = memberships_frame(
        [(g, m, kind) for (g, m), kind in added.items() if g not in gone and m not in gone], source
    )
    table = pl.concat([kept, fresh], how="vertical").sort("group_id", "member_id")
    return table, len(added), len(removed)
