"""Resolve the trustees of the data-path sources (mailboxes, Azure scopes, file shares) to the
directory objects of the same run.

A data source names its trustees as its service prints them: an Entra object id (Azure), a SID
(an NTFS ACE), a user principal name, an SMTP address, ``DOMAIN\\name`` or a display name
(Exchange). Each ``grants.principal_id`` and ``resources.subject_id`` of such a source is
rewritten to the ``account_id`` / ``group_id`` it names, so attribution, the effective
memberships and the rules treat it like any other grant. A text is compared trimmed and
lower-cased against, in this order (the first kind of key that names exactly one object wins):

1. an account's or group's id, or its SID (``S-1-...``);
2. an account's UPN, then its mail address (texts with ``@``);
3. ``DOMAIN\\name``: an account's username or a group's name (the part after ``\\``);
4. a bare name: an account's username or a group's name, then a display name.

A text two objects share at its best kind of key stays as written (ambiguous: guessing would
put one person's access on another); so does a text nobody holds (a deleted account's SID).
Entra users synced from an AD account are left out of the candidates (the AD account, with the
same SID and UPN, is the one meant), but still match by their own object id. Pure polars joins.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

import polars as pl

from accessaudit.model import CollectionUnit, SourceCollection

#: The source kinds whose trustees are resolved here.
DATA_KINDS: Final = ("exchange", "azure", "smb")

_KEY = pl.Schema({"key": pl.String(), "rank": pl.Int32(), "target": pl.String()})


def _norm(expr: pl.Expr) -> pl.Expr:
    text = expr.str.strip_chars().str.to_lowercase()
    return pl.when(text != "").then(text)


def _keys(accounts: pl.DataFrame, groups: pl.DataFrame) -> pl.DataFrame:
    """(key, rank, target) for every name of every directory object."""
    acc = accounts.lazy()
    entra = pl.col("source").fill_null("").str.starts_with("entra:")
    homes = acc.filter(~entra & pl.col("sid").is_not_null()).select("sid").unique()
    synced = acc.filter(entra).join(homes, on="sid", how="semi").select("account_id")
    people = acc.join(synced, on="account_id", how="anti")
    grp = groups.lazy()

    def part(frame: pl.LazyFrame, column: str, rank: int, target: str) -> pl.LazyFrame:
        return frame.select(
            key=_norm(pl.col(column)), rank=pl.lit(rank, pl.Int32), target=pl.col(target)
        )

    parts = [
        part(acc, "account_id", 1, "account_id"),
        part(grp, "group_id", 1, "group_id"),
        part(people, "sid", 1, "account_id"),
        part(grp, "sid", 1, "group_id"),
        part(people, "upn", 2, "account_id"),
        part(people, "mail", 3, "account_id"),
        part(people, "username", 4, "account_id"),
        part(grp, "name", 4, "group_id"),
        part(people, "display_name", 5, "account_id"),
    ]
    return (
        pl.concat(parts)
        .filter(pl.col("key").is_not_null())
        .unique()
        .filter(pl.col("rank") == pl.col("rank").min().over("key"))
        .group_by("key")
        .agg(target=pl.col("target").first(), n=pl.col("target").n_unique())
        .filter(pl.col("n") == 1)
        .select("key", "target")
        .collect()
    )


def _lookup(column: str) -> pl.Expr:
    """The key a trustee text is looked up by: ``DOMAIN\\name`` -> ``name``."""
    text = _norm(pl.col(column))
    return (
        pl.when(text.str.contains("\\", literal=True))
        .then(text.str.split("\\").list.last())
        .otherwise(text)
    )


def _resolve(frame: pl.DataFrame, column: str, keys: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    if frame.height == 0:
        return frame, 0
    names = frame.columns
    out = (
        frame.with_columns(_k=_lookup(column))
        .join(keys.rename({"key": "_k", "target": "_t"}), on="_k", how="left")
        .with_columns(pl.coalesce("_t", column).alias(column))
    )
    resolved = out.filter(pl.col("_t").is_not_null()).height
    return out.select(names), resolved


def resolve_principals(
    collection: SourceCollection, accounts: pl.DataFrame, groups: pl.DataFrame
) -> SourceCollection:
    """``collection`` with its grants' principals and its resources' subjects rewritten to the
    directory objects they name, and a ``principals`` unit saying how many were resolved."""
    keys = _keys(accounts, groups)
    grants, hit = _resolve(collection.table("grants"), "principal_id", keys)
    resources = collection.table("resources")
    subjects = resources.filter(pl.col("subject_id").is_not_null())
    resources, subject_hit = _resolve(resources, "subject_id", keys)
    total = collection.table("grants")["principal_id"].n_unique()
    named = grants.filter(pl.col("principal_id").is_in(keys["target"].implode()))
    unit = CollectionUnit(
        "principals",
        True,
        f"{named['principal_id'].n_unique()} of {total} trustees and {subject_hit} of "
        f"{subjects.height} mailbox or resource owners resolved to directory objects "
        f"({hit} grant rows)",
        named["principal_id"].n_unique(),
    )
    tables = dict(collection.tables) | {"grants": grants, "resources": resources}
    units = [u for u in collection.units if u.name != "principals"] + [unit]
    return replace(collection, tables=tables, units=units)
