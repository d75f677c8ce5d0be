"""Link an application's CSV users to the directory accounts they are.

An application export names its users by some identity (``CsvSource.correlate_on``: the
directory's username, UPN, employee id or mail). A CSV user whose identity matches exactly one
directory account *is* that account: its role memberships are rewritten to the directory
``account_id`` (so attribution, expansion and rules treat the application role like any other
group the person is in) and the CSV account row is dropped. A CSV user matching no directory
account keeps its own CSV account (an application-only login, itself worth reviewing); one
matching several is kept too and reported as ambiguous, because guessing would put a person's
access on someone else.

The CSV side's key is the CSV account's ``on`` column when it has a value (e.g. a mapped ``upn``
column), otherwise its username (an export whose user column holds UPNs or payroll numbers).
Both sides are trimmed and lower-cased; empty keys never match. Directory accounts of the CSV
source itself are ignored, and so are Entra users synced from an AD account (the AD account is
the one matched). Pure polars joins; no per-row Python.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from accessaudit.model import CollectionUnit, MemberKind, SourceCollection

#: The identities a CSV user can be correlated on (``CsvSource.correlate_on``).
CORRELATE_ON: Final = ("username", "upn", "employee_id", "mail")

#: One row per CSV account and status; an ambiguous account has one row per candidate.
CORRELATION_SCHEMA: Final = pl.Schema(
    {
        "csv_account_id": pl.String,
        "directory_account_id": pl.String,  # null when unmatched
        "status": pl.String,  # "matched" / "unmatched" / "ambiguous"
        "on": pl.String,
    }
)


def _key(expr: pl.Expr) -> pl.Expr:
    """Trimmed, lower-cased; empty -> null (a null key never joins)."""
    norm = expr.str.strip_chars().str.to_lowercase()
    return pl.when(norm != "").then(norm).otherwise(None)


def _without_synced_copies(accounts: pl.LazyFrame) -> pl.LazyFrame:
    """Drop Entra users synced from AD: same objectSid (onPremisesSecurityIdentifier), same
    person, same username - keeping both would make every such CSV user ambiguous."""
    entra = pl.col("source").fill_null("").str.starts_with("entra:")
    homes = (
        accounts.filter(~entra & pl.col("sid").is_not_null())
        .select("sid")
        .unique()
        .with_columns(_home=pl.lit(True))
    )
    return (
        accounts.join(homes, on="sid", how="left")
        .filter(~(entra & pl.col("_home").fill_null(False)))
        .drop("_home")
    )


def correlate(
    collection: SourceCollection, directory_accounts: pl.DataFrame, on: str
) -> tuple[SourceCollection, pl.DataFrame]:
    """Rewrite matched CSV users to directory accounts; return the new collection and evidence.

    ``directory_accounts`` is an accounts table (``ACCOUNTS_SCHEMA`` columns, possibly from several
    sources). The returned collection keeps the source, kind, times, state and units of
    ``collection`` and adds a ``correlation`` unit; the evidence frame has
    :data:`CORRELATION_SCHEMA`, ordered like the CSV accounts (candidates by id).
    """
    if on not in CORRELATE_ON:
        raise ValueError(f"cannot correlate on {on!r}; one of {CORRELATE_ON}")
    accounts = collection.table("accounts")
    evidence = _evidence(accounts, directory_accounts, collection.source, on)
    matched = evidence.filter(pl.col("status") == "matched").select(
        "csv_account_id", "directory_account_id"
    )
    new_memberships = (
        collection.table("memberships")
        .join(
            matched,
            left_on="member_id",
            right_on="csv_account_id",
            how="left",
            maintain_order="left",
        )
        .with_columns(
            pl.when(pl.col("member_kind") == MemberKind.ACCOUNT.value)
            .then(pl.coalesce("directory_account_id", "member_id"))
            .otherwise(pl.col("member_id"))
            .alias("member_id")
        )
        .drop("directory_account_id")
        .unique(keep="first", maintain_order=True)  # two CSV users, one person, one role
    )
    new_accounts = accounts.join(
        matched, left_on="account_id", right_on="csv_account_id", how="anti", maintain_order="left"
    )
    result = SourceCollection(
        source=collection.source,
        kind=collection.kind,
        started=collection.started,
        finished=collection.finished,
        tables={**collection.tables, "accounts": new_accounts, "memberships": new_memberships},
        units=[*collection.units, _unit(evidence, on)],
        state=dict(collection.state),
        signals=dict(collection.signals),
    )
    return result, evidence


def _evidence(
    accounts: pl.DataFrame, directory_accounts: pl.DataFrame, source: str, on: str
) -> pl.DataFrame:
    """Each CSV account's candidates among the directory accounts of other sources
    (:data:`CORRELATION_SCHEMA`)."""
    csv_keys = accounts.select(
        pl.col("account_id").alias("csv_account_id"),
        pl.coalesce(_key(pl.col(on)), _key(pl.col("username"))).alias("_key"),
    ).with_row_index("_order")
    directory = (
        _without_synced_copies(directory_accounts.lazy())
        .filter(pl.col("source").ne_missing(source))
        .select(pl.col("account_id").alias("directory_account_id"), _key(pl.col(on)).alias("_key"))
        .drop_nulls()
        .unique()
    )
    # (account_id, key) pairs are unique and a CSV account has one key: count() (non-null) is the
    # number of distinct candidate accounts
    candidates = pl.col("directory_account_id").count().over("csv_account_id")
    return (
        csv_keys.lazy()
        .join(directory, on="_key", how="left")
        .with_columns(
            pl.when(candidates == 0)
            .then(pl.lit("unmatched"))
            .when(candidates == 1)
            .then(pl.lit("matched"))
            .otherwise(pl.lit("ambiguous"))
            .alias("status"),
            pl.lit(on).alias("on"),
        )
        .sort("_order", "directory_account_id", nulls_last=True)
        .select(CORRELATION_SCHEMA.names())
        .collect()
    )


def _unit(evidence: pl.DataFrame, on: str) -> CollectionUnit:
    """The ``correlation`` unit: how many CSV accounts matched, did not, or were ambiguous."""
    per_status = evidence.unique("csv_account_id")["status"]
    n_matched = int((per_status == "matched").sum())
    n_unmatched = int((per_status == "unmatched").sum())
    n_ambiguous = int((per_status == "ambiguous").sum())
    return CollectionUnit(
        "correlation",
        complete=True,
        detail=f"{n_matched} matched, {n_unmatched} unmatched, {n_ambiguous} ambiguous on {on}",
        count=n_matched,
    )
