"""Building blocks of the commands: quoting (PowerShell literals, comments, ids in filters,
URLs and JSON), where an object is changed, and the row every action kind's renderer returns."""

from __future__ import annotations

from typing import NamedTuple

import polars as pl

UNSAFE = r"[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"


def ps_quote(expr: pl.Expr) -> pl.Expr:
    """A PowerShell single-quoted string literal of ``expr``."""
    cleaned = expr.cast(pl.String).str.replace_all(UNSAFE, "")
    cleaned = cleaned.str.replace_all(r"(['\u2018\u2019\u201a\u201b])", "$1$1")
    return pl.concat_str([pl.lit("'"), cleaned, pl.lit("'")])


def comment_text(expr: pl.Expr) -> pl.Expr:
    """Text safe to put after ``#`` on one line."""
    return expr.cast(pl.String).str.replace_all(UNSAFE, " ")


def id_text(expr: pl.Expr) -> pl.Expr:
    """An id, SID or directory scope for an OData filter, URL or JSON body: only
    ``[A-Za-z0-9._/-]`` kept, so it cannot close a quote or add a clause."""
    return expr.cast(pl.String).str.replace_all(r"[^A-Za-z0-9._/\-]", "")


def quoted_list(col: str) -> pl.Expr:
    return pl.col(col).list.eval(ps_quote(pl.element())).list.join(",")


def source_system(col: str) -> pl.Expr:
    """Where an object of source ``col`` is changed: cloud (Entra) / app / ad."""
    src = pl.col(col).fill_null("")
    return (
        pl.when(src.str.starts_with("entra:"))
        .then(pl.lit("cloud"))
        .when(src.str.starts_with("csv:"))
        .then(pl.lit("app"))
        .otherwise(pl.lit("ad"))
    )


def group_system() -> pl.Expr:
    """Where the group ``group_id`` is changed, by its system of record (groups.mastered)."""
    mastered = pl.col("_g_mastered")
    return (
        pl.when(mastered == "cloud")
        .then(pl.lit("cloud"))
        .when(mastered == "app")
        .then(pl.lit("app"))
        .otherwise(pl.lit("ad"))
    )


class Rendered(NamedTuple):
    """What one action kind's renderer gives: the four command columns as polars expressions
    over the action row and its context columns (``_g_*`` the group, ``_m_*`` the member or
    account, ``_r_*`` another account, ``_split_*`` / ``_new_*`` a split's new group)."""

    system: pl.Expr
    summary: pl.Expr
    powershell: pl.Expr
    graph: pl.Expr


def cat(*parts: pl.Expr | str) -> pl.Expr:
    """The parts joined into one string (a ``str`` part is literal text)."""
    return pl.concat_str([pl.lit(p) if isinstance(p, str) else p for p in parts])
