"""How identifiers are compared across sources: the one normalisation of staff numbers that
CSV correlation, the ``employee_id`` attribution matcher and the identity views all use.

It sits at the bottom layer because ``analysis`` and ``engine`` both need it and may not import
each other. The stored value is never rewritten: only its comparison key is normalised.
"""

from __future__ import annotations

import polars as pl


def employee_id_key(expr: pl.Expr) -> pl.Expr:
    """A staff number as compared: no whitespace at all (spaces, non-breaking spaces, inner
    spaces), lower-cased, and an ASCII all-digit id without its leading zeros (``" 02000146"``
    and ``"0002000146"`` are ``"2000146"``; an all-zero id is ``"0"``). Ids with letters keep
    their zeros (``WM00146``: a prefix makes the digits a code). Empty -> null, never matched."""
    compact = expr.str.replace_all(r"\s", "").str.to_lowercase()
    unpadded = compact.str.strip_chars_start("0")
    number = pl.when(unpadded == "").then(pl.lit("0")).otherwise(unpadded)
    norm = pl.when(compact.str.contains(r"^[0-9]+$")).then(number).otherwise(compact)
    return pl.when(compact != "").then(norm).otherwise(None)
