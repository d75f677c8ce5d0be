"""Decode raw LDAP attribute values a column at a time: text, integers, SIDs, times, DNs.

The LDAP layer (:mod:`~accessaudit.connectors.ldap.wire`) hands over a search's values
column-wise (:class:`~accessaudit.connectors.ldap.columns.Columns`), as bytes exactly as they
came off the wire; nothing here formats values entry by entry through ldap3's object model. The
helpers here decode whole columns at once for the table builders (:mod:`.ad`, :mod:`.generic`).

Encodings, with the pages they come from:

- FILETIME attributes (``lastLogonTimestamp``, ``pwdLastSet``, ``accountExpires``): 100 ns
  intervals since 1601-01-01 UTC; ``accountExpires`` 0 and 0x7FFFFFFFFFFFFFFF both mean never
  (learn.microsoft.com/windows/win32/adschema/a-accountexpires).
- Extended DN control (1.2.840.113556.1.4.529, string form): every DN-valued attribute reads
  ``<GUID=...>;<SID=...>;CN=...``, so members, managers and owners resolve to immutable ids
  without comparing DN strings ([MS-ADTS] 3.1.1.3.4.1.5).
- Binary SIDs: [MS-DTYP] 2.4.2.2; GeneralizedTime: RFC 4517 3.3.13.
"""

from __future__ import annotations

import re

import polars as pl

from accessaudit.model import ACCOUNTS_SCHEMA, GROUPS_SCHEMA, conform

FILETIME_EPOCH = 116_444_736_000_000_000  # 1970-01-01 in 100 ns intervals since 1601
FILETIME_NEVER = 0x7FFF_FFFF_FFFF_FFFF
#: 10000-01-01 UTC: later values (0x7FFFFFFEFFFFFFFF, year 30828, is seen in real directories as
#: another "never") have no datetime in Python, the reports or Excel, so they read as null too.
FILETIME_YEAR_10000 = 2_650_467_744_000_000_000
_EXT_DN = r"^<GUID=([0-9A-Fa-f-]{36})>;(?:<SID=([^>]*)>;)?(.*)$"
_EXT_DN_RE = re.compile(_EXT_DN, re.S)


def utf8(col: pl.Series) -> pl.Series:
    """Binary -> UTF-8 text, vectorised; invalid bytes (a hostile or broken server) replaced."""
    if col.dtype == pl.String:
        return col
    try:
        return col.cast(pl.String)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError):
        return pl.Series(
            col.name,
            [None if b is None else b.decode("utf-8", "replace") for b in col.to_list()],
            dtype=pl.String,
        )


def text(df: pl.DataFrame, attr: str) -> pl.Series:
    """A single-valued column as UTF-8 text."""
    return utf8(df.get_column(attr)).alias(attr)


def texts(df: pl.DataFrame, attr: str) -> pl.Series:
    """A ``multi`` column as ``List(String)`` (an empty list when absent)."""
    col = df.get_column(attr)
    if col.dtype != pl.List(pl.String):
        try:
            col = col.cast(pl.List(pl.String))
        except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError):
            col = pl.Series(
                attr,
                [None if v is None else [b.decode("utf-8", "replace") for b in v]
                 for v in col.to_list()],
                dtype=pl.List(pl.String),
            )  # fmt: skip
    return col.fill_null(pl.lit([], pl.List(pl.String))).alias(attr)


def integer(df: pl.DataFrame, attr: str) -> pl.Series:
    return text(df, attr).str.strip_chars().cast(pl.Int64, strict=False).alias(attr)


def guid_expr(binary: pl.Expr) -> pl.Expr:
    """16-byte little-endian GUID (objectGUID) -> lower-case canonical string, vectorised."""
    h = binary.bin.encode("hex")

    def rev(start: int, n: int) -> pl.Expr:
        return pl.concat_str([h.str.slice(start + 2 * k, 2) for k in reversed(range(n))])

    return pl.concat_str(
        [rev(0, 4), rev(8, 2), rev(12, 2), h.str.slice(16, 4), h.str.slice(20, 12)],
        separator="-",
    ).str.to_lowercase()


def filetime_expr(value: pl.Expr) -> pl.Expr:
    """FILETIME (Int64) -> UTC datetime; 0, negative, the 'never' sentinel and anything from the
    year 10000 on become null."""
    valid = (value > FILETIME_EPOCH // 10) & (value < FILETIME_YEAR_10000)
    micros = (value - FILETIME_EPOCH) // 10
    return (
        pl.when(valid)
        .then(pl.from_epoch(micros, time_unit="us"))
        .otherwise(None)
        .dt.replace_time_zone("UTC")
    )


def gentime_expr(value: pl.Expr) -> pl.Expr:
    """LDAP GeneralizedTime (``20240131120000.0Z``) -> UTC datetime (seconds precision)."""
    return (
        value.str.slice(0, 14)
        .str.strptime(pl.Datetime("us"), "%Y%m%d%H%M%S", strict=False)
        .dt.replace_time_zone("UTC")
    )


def extended_dn_one(value: str) -> tuple[str | None, str | None, str]:
    """Split one extended-DN string into (guid, sid, dn); plain DNs give (None, None, dn)."""
    m = _EXT_DN_RE.match(value)
    if not m:
        return None, None, value
    return m.group(1).lower(), m.group(2) or None, m.group(3)


def extended_dn(values: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Split extended-DN strings into (guid, sid, dn) expressions."""
    return (
        values.str.extract(_EXT_DN, 1).str.to_lowercase(),
        values.str.extract(_EXT_DN, 2).replace("", None),
        values.str.extract(_EXT_DN, 3),
    )


def edge_code(group_row: pl.Expr, account_row: pl.Expr) -> pl.Expr:
    """One UInt64 per (group row, account row) edge: edge sets compared as integers."""
    return (group_row.cast(pl.UInt64) * 2**32 + account_row.cast(pl.UInt64)).alias("code")


def finish_accounts(df: pl.DataFrame) -> pl.DataFrame:
    return conform(
        df.select([c for c in ACCOUNTS_SCHEMA.names() if c in df.columns]), ACCOUNTS_SCHEMA
    )


def finish_groups(df: pl.DataFrame) -> pl.DataFrame:
    return conform(df.select([c for c in GROUPS_SCHEMA.names() if c in df.columns]), GROUPS_SCHEMA)
