"""Display text and chip classes: directory text made visible, severities and organisations.

Directory text is hostile. Escaping for HTML is the template's job (jinja2 autoescape); this
module makes *invisible* text visible: bidi overrides, zero-width and other format or control
characters in directory-derived strings become a visible ``[U+202E]`` marker and the row is
flagged, so a name cannot reorder the text around it or hide part of a command
("Trojan Source", CVE-2021-42574).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import polars as pl

from accessaudit import hidden
from accessaudit.hidden import visible
from accessaudit.model import SEVERITY_RANK, Org, Severity

#: Severities, worst first.
SEVERITIES: Final[tuple[str, ...]] = tuple(
    s.value for s in sorted(Severity, key=lambda s: SEVERITY_RANK[s], reverse=True)
)
_RANK: Final[Mapping[str, int]] = {s.value: SEVERITY_RANK[s] for s in Severity}

#: Shown for a missing value.
NONE: Final = "—"
#: Label for a missing organisation.
NO_ORG: Final = Org.UNATTRIBUTED.value


def visible_column(
    df: pl.DataFrame, column: str, *, keep_lines: bool = False
) -> tuple[list[str], list[bool]]:
    """A column as display text, plus which rows had hidden characters (vectorised scan)."""
    if column not in df.columns:
        return [""] * df.height, [False] * df.height
    series = df.get_column(column).cast(pl.String)
    pattern = hidden.HIDDEN_KEEP_LINES_PATTERN if keep_lines else hidden.HIDDEN_PATTERN
    mask = series.str.contains(pattern).fill_null(False)
    values: list[str] = series.fill_null("").to_list()
    for i in mask.arg_true().to_list():
        values[i] = visible(values[i], keep_lines=keep_lines)
    return values, mask.to_list()


def raw(df: pl.DataFrame, column: str) -> list[Any]:
    """A column's values as they are (None for every row when the column is missing)."""
    return df.get_column(column).to_list() if column in df.columns else [None] * df.height


def severity_rank(severity: str | None) -> int:
    """Higher is worse; unknown severities sort below ``info``."""
    return _RANK.get(severity or "", -1)


def severity_class(severity: str | None) -> str:
    """A CSS class for a severity chip, from a fixed set (never built from data)."""
    return f"sev-{severity}" if severity in _RANK else "sev-unknown"


def org_label(value: str | None) -> str:
    """An organisation id, or :data:`NO_ORG` for none."""
    return value if value else NO_ORG


def org_classes(orgs: set[str]) -> dict[str, str]:
    """Org id -> chip class: the first real organisations get distinct colours."""
    real = sorted(o for o in orgs if o not in (Org.SHARED.value, NO_ORG))
    classes = {org: f"org-{i}" if i < 4 else "org-other" for i, org in enumerate(real)}
    classes[Org.SHARED.value] = "org-shared"
    classes[NO_ORG] = "org-none"
    return classes
