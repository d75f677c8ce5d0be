"""Link an application's CSV users to the directory accounts they are.

An application export names its users by some identity (``CsvSource.correlate_on``: the
directory's username, UPN, employee id or mail). A CSV user whose identity matches exactly one
directory account *is* that account: its role memberships are rewritten to the directory
``account_id`` (so attribution, expansion and rules treat the application role like any other
group the person is in) and the CSV account row is dropped. A CSV user matching no directory
account keeps its own CSV account (an application-only login, itself worth reviewing); one
matching several is kept too and reported as ambiguous, because guessing would put a person's
access on someone else. Two logins of one person holding one role are one edge: the enabled one
when one of them is (a login the application has disabled, ``via`` ``csv-disabled``, gives no
access).

The CSV side's key is the CSV account's ``on`` column when it has a value (e.g. a mapped ``upn``
column), otherwise its username (an export whose user column holds UPNs or payroll numbers).
Both sides are trimmed and lower-cased; empty keys never match. Staff numbers are compared as
:func:`~accessaudit.analysis.identifiers.employee_id_key` normalises them on both sides (no
spaces, no leading zeros). A username written ``DOMAIN\\user`` or ``user@domain`` also matches
by its user part when the domain is one of the accepted ``domains``
(:func:`~accessaudit.analysis.identifiers.login_keys`); a login naming another domain does
not. Directory accounts of the CSV source itself are ignored, and so are Entra users synced
from an AD account (the AD account is the one matched). Pure polars joins; no per-row Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import polars as pl

from accessaudit.analysis.identifiers import (
    directory_domains,
    employee_id_key,
    login_domain,
    login_keys,
    text_key,
)
from accessaudit.model import CollectionUnit, MemberKind, SourceCollection, Via

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


def _key(expr: pl.Expr, on: str) -> pl.Expr:
    """A value of the ``on`` identity as compared: a staff number normalised, anything else
    trimmed and lower-cased; empty -> null (a null key never joins)."""
    return employee_id_key(expr) if on == "employee_id" else text_key(expr)


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
    collection: SourceCollection,
    directory_accounts: pl.DataFrame,
    on: str,
    domains: Sequence[str] | None = None,
) -> tuple[SourceCollection, pl.DataFrame]:
    """Rewrite matched CSV users to directory accounts; return the new collection and evidence.

    ``directory_accounts`` is an accounts table (``ACCOUNTS_SCHEMA`` columns, possibly from several
    sources). ``domains``: the domains a ``DOMAIN\\user`` or ``user@domain`` username may name
    (empty or None: :func:`~accessaudit.analysis.identifiers.directory_domains` of the directory
    accounts' sources). The returned collection keeps the source, kind, times, state and units of
    ``collection`` and adds a ``correlation`` unit; the evidence frame has
    :data:`CORRELATION_SCHEMA`, ordered like the CSV accounts (candidates by id).
    """
    if on not in CORRELATE_ON:
        raise ValueError(f"cannot correlate on {on!r}; one of {CORRELATE_ON}")
    accounts = collection.table("accounts")
    accepted = list(
        domains or directory_domains(directory_accounts["source"].unique().drop_nulls())
    )
    evidence = _evidence(accounts, directory_accounts, collection.source, on, accepted)
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
        # two CSV users, one person, one role: one edge; a disabled login's edge only when the
        # person holds the role through no enabled one
        .filter(_not_superseded())
        .unique(keep="first", maintain_order=True)
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
        units=[*collection.units, _unit(evidence, on, _other_domains(accounts, on, accepted))],
        state=dict(collection.state),
        signals=dict(collection.signals),
    )
    return result, evidence


def _not_superseded() -> pl.Expr:
    """False for a disabled login's edge (``via`` ``csv-disabled``) to a role the same member
    also holds through an enabled login."""
    disabled = pl.col("via") == Via.CSV_DISABLED.value
    return ~disabled | disabled.all().over("group_id", "member_id")


def _csv_keys(accounts: pl.DataFrame, on: str, domains: Sequence[str]) -> pl.DataFrame:
    """One row per (CSV account, key it is compared by), in CSV order (``_order``)."""
    ordered = accounts.with_row_index("_order")
    if on == "username":
        keys = login_keys(pl.col("username"), domains)
    else:
        keys = pl.concat_list(pl.coalesce(_key(pl.col(on), on), _key(pl.col("username"), on)))
    return ordered.select(
        "_order", pl.col("account_id").alias("csv_account_id"), keys.alias("_key")
    ).explode("_key")


def _evidence(
    accounts: pl.DataFrame,
    directory_accounts: pl.DataFrame,
    source: str,
    on: str,
    domains: Sequence[str],
) -> pl.DataFrame:
    """Each CSV account's candidates among the directory accounts of other sources
    (:data:`CORRELATION_SCHEMA`)."""
    directory = (
        _without_synced_copies(directory_accounts.lazy())
        .filter(pl.col("source").ne_missing(source))
        .select(
            pl.col("account_id").alias("directory_account_id"), _key(pl.col(on), on).alias("_key")
        )
        .drop_nulls()
        .unique()
    )
    # a CSV account may have two keys (a qualified login and its user part): its candidates are
    # the distinct directory accounts either key finds
    found = (
        _csv_keys(accounts, on, domains)
        .lazy()
        .join(directory, on="_key", how="left")
        .unique(["csv_account_id", "directory_account_id"])
    )
    candidates = pl.col("directory_account_id").count().over("csv_account_id")
    return (
        found.with_columns(
            pl.when(candidates == 0)
            .then(pl.lit("unmatched"))
            .when(candidates == 1)
            .then(pl.lit("matched"))
            .otherwise(pl.lit("ambiguous"))
            .alias("status"),
            pl.lit(on).alias("on"),
        )
        # an account with a candidate drops its rows of the key that found none
        .filter(pl.col("directory_account_id").is_not_null() | (candidates == 0))
        .unique(["csv_account_id", "directory_account_id"])
        .sort("_order", "directory_account_id", nulls_last=True)
        .select(CORRELATION_SCHEMA.names())
        .collect()
    )


def _other_domains(accounts: pl.DataFrame, on: str, domains: Sequence[str]) -> int:
    """How many CSV usernames name a domain that is not accepted (never matched by their user
    part)."""
    if on != "username" or accounts.is_empty():
        return 0
    domain = login_domain(pl.col("username"))
    named = domain.is_not_null() & ~domain.is_in(sorted({d.lower() for d in domains}))
    return int(accounts.select(named.sum()).item())


def _unit(evidence: pl.DataFrame, on: str, other_domains: int = 0) -> CollectionUnit:
    """The ``correlation`` unit: how many CSV accounts matched, did not, or were ambiguous."""
    per_status = evidence.unique("csv_account_id")["status"]
    n_matched = int((per_status == "matched").sum())
    n_unmatched = int((per_status == "unmatched").sum())
    n_ambiguous = int((per_status == "ambiguous").sum())
    return CollectionUnit(
        "correlation",
        complete=True,
        detail=f"{n_matched} matched, {n_unmatched} unmatched, {n_ambiguous} ambiguous on {on}"
        + (f" ({other_domains} login(s) of another domain)" if other_domains else ""),
        count=n_matched,
    )
