"""Attribution evidence with the value that matched: ``employeeID 1234567 ~ ^1\\d{6}$ (wmp)``.

The attribution stage records which matchers fired (``org_evidence``: ``"employee_id:wmp"``,
``"ou:warks"``, ...). A reviewer also wants to see *what* matched: the object's own value and
the organisation's configured pattern. Both are known when the report is built: the value is a
column of the object's row, the pattern is in the run's ``attribution.json``
(:func:`accessaudit.engine.snapshot.attribution_snapshot`), so a re-render of an old run shows
the patterns it was attributed with. A label with a qualifier (``"upn_suffix:warks (home
domain)"``), one whose matcher reads no single column (``owner``, ``privileged_groups``), or one
whose organisation the snapshot lacks is kept as it is: never guessed.

Computed in polars over the objects the report names (evidence exploded, one join with the
configured patterns, imploded back): no per-row Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import polars as pl

#: matcher kind -> (the attribute as a directory person calls it, the column per table kind)
FIELDS: Final[dict[str, tuple[str, dict[str, str]]]] = {
    "employee_id": ("employeeID", {"account": "employee_id"}),
    "company": ("company", {"account": "company"}),
    "ou": ("DN", {"account": "dn", "group": "dn"}),
    "upn_suffix": ("UPN", {"account": "upn"}),
    "mail_domain": ("mail", {"account": "mail"}),
    "name_prefix": ("name", {"account": "username", "group": "name"}),
    "names": ("name", {"account": "username", "group": "name"}),
    "ids": ("id", {"account": "account_id", "group": "group_id"}),
    "domain_sid": ("SID", {"account": "sid", "group": "sid"}),
    "sources": ("source", {"group": "source"}),
}
#: Longest pattern text shown (a long list of OUs is cut; the snapshot has it whole).
MAX_PATTERN: Final = 120


def patterns(snapshot: Mapping[str, Any] | None) -> pl.DataFrame:
    """(kind, org, pattern) of every configured matcher in an ``attribution.json``."""
    rows: list[tuple[str, str, str]] = []
    for org in (snapshot or {}).get("organisations") or []:
        if not isinstance(org, Mapping):
            continue
        for kind, value in (org.get("match") or {}).items():
            if kind not in FIELDS or value in (None, [], ""):
                continue
            text = value if isinstance(value, str) else " | ".join(str(v) for v in value)
            if len(text) > MAX_PATTERN:
                text = text[: MAX_PATTERN - 1] + "…"
            rows.append((str(kind), str(org.get("id", "")), text))
    return pl.DataFrame(
        rows, schema={"_kind": pl.String, "_org": pl.String, "_pattern": pl.String}, orient="row"
    )


def explained(df: pl.DataFrame, kind: str, snapshot: Mapping[str, Any] | None) -> pl.Series:
    """``df``'s ``org_evidence`` (one list per row, in row order) with each plain label
    rewritten as ``<attribute> <value> ~ <pattern> (<org>)``; ``kind`` is ``account`` or
    ``group`` (which columns the matchers read)."""
    if "org_evidence" not in df.columns:
        return pl.Series("org_evidence", [[]] * df.height, pl.List(pl.String))
    pats = patterns(snapshot)
    if pats.is_empty() or df.is_empty():
        return df.get_column("org_evidence")
    columns = {k: (label, cols[kind]) for k, (label, cols) in FIELDS.items() if kind in cols}
    columns = {k: v for k, v in columns.items() if v[1] in df.columns}
    value = pl.lit(None, pl.String)
    label = pl.lit(None, pl.String)
    for k, (name, col) in columns.items():
        value = pl.when(pl.col("_kind") == k).then(pl.col(col).cast(pl.String)).otherwise(value)
        label = pl.when(pl.col("_kind") == k).then(pl.lit(name)).otherwise(label)
    long = (
        df.select(
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"),
            "org_evidence",
            *{c for _, c in columns.values()},
        )
        .explode("org_evidence")
        .with_columns(
            pl.col("org_evidence").str.extract(r"^([a-z_]+):[^ ]+$", 1).alias("_kind"),
            pl.col("org_evidence").str.extract(r"^[a-z_]+:([^ ]+)$", 1).alias("_org"),
        )
        .join(pats, on=["_kind", "_org"], how="left", maintain_order="left")
        .with_columns(value.alias("_value"), label.alias("_label"))
    )
    shown = (
        pl.when(pl.col("_pattern").is_not_null() & pl.col("_value").is_not_null())
        .then(pl.format("{} {} ~ {} ({})", "_label", "_value", "_pattern", "_org"))
        .otherwise(pl.col("org_evidence"))
    )
    got = (
        long.with_columns(shown.alias("_shown")).group_by("_row").agg(pl.col("_shown").drop_nulls())
    )
    # every row, in order (an empty evidence list explodes to no row at all)
    rows = pl.DataFrame({"_row": pl.int_range(df.height, dtype=pl.UInt32, eager=True)})
    out = rows.join(got, on="_row", how="left", maintain_order="left")
    return out.get_column("_shown").fill_null([]).alias("org_evidence")
