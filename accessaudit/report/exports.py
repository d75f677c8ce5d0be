"""CSV, XLSX and JSON exports (written with the store's atomic owner-only writer).

Spreadsheets are a code-execution path for the identity team: a cell that starts with ``=``
runs as a formula (``=HYPERLINK(...)``, ``=WEBSERVICE(...)``, DDE). Following OWASP
("CSV Injection") and ASVS 5.0 V1.2.10, every exported *string* cell that starts with one of
``= + - @``, tab, CR, LF, NUL or their full-width forms ``＝ ＋ － ＠`` gets a leading ``'``. The
rule is applied vectorised to every String column (and to List columns after joining them with
``"; "``); numeric, boolean and temporal columns keep their types, so numbers stay numbers.
XlsxWriter turns strings into formulas and URLs by default (XlsxWriter #663); the workbook is
opened with both conversions off and every string is written with ``write_string``.

The JSON export stays raw: it is data for programs, not a spreadsheet.

Every file is created with mode 0600 under a temporary name in the target directory, fsynced,
renamed over the target with ``os.replace`` and the directory fsynced, so a crash leaves either
the old file or the new one, never half of one.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import polars as pl
import xlsxwriter

from accessaudit.store.runs import atomic_write, atomic_write_bytes

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

#: First characters that make a spreadsheet cell a formula (or a DDE / command payload).
FORMULA_TRIGGERS: Final = frozenset("=+-@\t\r\n\x00＝＋－＠")
_TRIGGER_REGEX: Final = r"^[=+\-@\t\r\n\x00＝＋－＠]"
#: Separator for List columns in CSV and XLSX cells.
LIST_SEPARATOR: Final = "; "
#: Excel's hard limits.
XLSX_MAX_ROWS: Final = 1_048_576
XLSX_MAX_CELL_CHARS: Final = 32_767
_SHEET_NAME_BAD: Final = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
FILE_MODE: Final = 0o600


# --- Neutralising ------------------------------------------------------------------------------


def neutralise_cell(value: str) -> str:
    """``value`` with a leading ``'`` if a spreadsheet would read it as a formula."""
    if value and value[0] in FORMULA_TRIGGERS:
        return "'" + value
    return value


def neutralise_expr(col: str | pl.Expr) -> pl.Expr:
    """Vectorised :func:`neutralise_cell` for a String column (nulls stay null)."""
    expr = pl.col(col) if isinstance(col, str) else col
    return pl.when(expr.str.contains(_TRIGGER_REGEX)).then(pl.lit("'") + expr).otherwise(expr)


def _is_temporal(dtype: PolarsDataType) -> bool:
    return isinstance(dtype, pl.Datetime | pl.Date | pl.Time | pl.Duration)


def _is_plain(dtype: PolarsDataType) -> bool:
    """Types that are written as themselves (never a formula)."""
    return dtype.is_numeric() or dtype == pl.Boolean or _is_temporal(dtype)


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _join_any(values: Any) -> str:
    return LIST_SEPARATOR.join(_text(v) for v in values)


def spreadsheet_safe(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with String and List columns neutralised; other columns as text or as is.

    Lists are joined with ``"; "``; anything that is not a number, boolean, date/time or
    string (structs, nested lists, binary) becomes text (JSON for structs), then neutralised.
    """
    exprs = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if dtype == pl.String:
            exprs.append(neutralise_expr(col).alias(name))
        elif isinstance(dtype, pl.Categorical | pl.Enum):
            exprs.append(neutralise_expr(col.cast(pl.String)).alias(name))
        elif _is_plain(dtype) or dtype == pl.Null:
            exprs.append(col)
        elif isinstance(dtype, pl.List | pl.Array) and (
            dtype.inner == pl.String or _is_plain(dtype.inner)
        ):
            joined = col.list.eval(pl.element().cast(pl.String)).list.join(LIST_SEPARATOR)
            if isinstance(dtype, pl.Array):
                joined = col.arr.eval(pl.element().cast(pl.String)).arr.join(LIST_SEPARATOR)
            exprs.append(neutralise_expr(joined).alias(name))
        elif isinstance(dtype, pl.List | pl.Array):
            text = col.map_elements(_join_any, return_dtype=pl.String, skip_nulls=True)
            exprs.append(neutralise_expr(text).alias(name))
        else:
            exprs.append(
                neutralise_expr(
                    col.map_elements(_text, return_dtype=pl.String, skip_nulls=True)
                ).alias(name)
            )
    return df.select(exprs)


# --- Writers -----------------------------------------------------------------------------------


def write_csv(df: pl.DataFrame, path: Path, *, bom: bool = True) -> Path:
    """Write ``df`` as formula-safe CSV (RFC 4180, UTF-8, comma, header row).

    Every non-numeric field is quoted, so a value containing the ``;`` list separator of
    European Excel locales still stays one cell. ``bom`` writes a UTF-8 byte-order mark so
    Excel reads non-ASCII names correctly (read it back with ``encoding="utf-8-sig"``).
    Zoned datetimes are written in UTC as RFC 3339 (``2026-11-26T05:00:00+00:00``).
    """
    safe = spreadsheet_safe(df).with_columns(
        # RFC 3339 ("+00:00"), which polars' default "+0000" is not
        pl.col(name).dt.convert_time_zone("UTC").dt.to_string("%Y-%m-%dT%H:%M:%S%.f%:z")
        for name, dtype in df.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone
    )
    return atomic_write(
        Path(path),
        lambda stream: safe.write_csv(stream, include_bom=bom, quote_style="non_numeric"),
    )


def _sheet_name(name: str, used: set[str]) -> str:
    """A valid, unique Excel sheet name (31 chars, no ``[]:*?/\\``, not quoted at the ends)."""
    base = _SHEET_NAME_BAD.sub("_", name).strip("'")[:31] or "Sheet"
    candidate, n = base, 1
    while candidate.casefold() in used:
        n += 1
        suffix = f" ({n})"
        candidate = base[: 31 - len(suffix)] + suffix
    used.add(candidate.casefold())
    return candidate


def _naive_utc(value: datetime) -> datetime:
    # Excel has no time zones: aware datetimes are written as UTC wall time.
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _write_cell(sheet: Any, r: int, c: int, value: Any, formats: Mapping[str, Any]) -> int:
    """Write one non-null cell as its type; the column width it asks for (0: no opinion)."""
    if isinstance(value, str):
        sheet.write_string(r, c, value[:XLSX_MAX_CELL_CHARS])
        return min(len(value), 60)
    if isinstance(value, bool):
        sheet.write_boolean(r, c, value)
    elif isinstance(value, int | float | Decimal):
        sheet.write_number(r, c, float(value))
        return min(len(str(value)), 20)
    elif isinstance(value, datetime):
        sheet.write_datetime(r, c, _naive_utc(value), formats["datetime"])
        return 19
    elif isinstance(value, date):
        sheet.write_datetime(r, c, value, formats["date"])
        return 10
    elif isinstance(value, time):
        sheet.write_datetime(r, c, value, formats["time"])
    elif isinstance(value, timedelta):
        sheet.write_number(r, c, value.total_seconds())
    else:  # pragma: no cover - spreadsheet_safe leaves no other types
        sheet.write_string(r, c, neutralise_cell(str(value)))
    return 0


def _write_sheet(workbook: Any, sheet_name: str, df: pl.DataFrame) -> None:
    if df.height + 1 > XLSX_MAX_ROWS:
        raise ValueError(
            f"sheet {sheet_name!r} has {df.height} rows; Excel allows {XLSX_MAX_ROWS - 1}"
            " (export it as CSV instead)"
        )
    sheet = workbook.add_worksheet(sheet_name)
    header = workbook.add_format({"bold": True, "bg_color": "#E7ECF2", "border": 1})
    formats = {
        "datetime": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
        "date": workbook.add_format({"num_format": "yyyy-mm-dd"}),
        "time": workbook.add_format({"num_format": "hh:mm:ss"}),
    }
    safe = spreadsheet_safe(df)
    for c, name in enumerate(safe.columns):
        label = neutralise_cell(name)
        sheet.write_string(0, c, label, header)
        width = len(label)
        for r, value in enumerate(safe.get_column(name).to_list(), start=1):
            if value is not None:
                width = max(width, _write_cell(sheet, r, c, value, formats))
        sheet.set_column(c, c, width + 2)
    sheet.freeze_panes(1, 0)
    if safe.width:
        sheet.autofilter(0, 0, max(safe.height, 1), safe.width - 1)


def write_xlsx(sheets: Mapping[str, pl.DataFrame], path: Path) -> Path:
    """Write one worksheet per frame; strings never become formulas or links.

    Sheet names are made valid and unique (Excel: 31 characters, no ``[]:*?/\\``).
    """
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer,
        {
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "in_memory": True,
        },
    )
    used: set[str] = set()
    for name, df in sheets.items():
        _write_sheet(workbook, _sheet_name(name, used), df)
    if not sheets:
        workbook.add_worksheet("Empty")
    workbook.close()
    return atomic_write_bytes(Path(path), buffer.getvalue())


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, pl.DataFrame):
        return value.to_dicts()
    if isinstance(value, pl.Series):
        return value.to_list()
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def write_json(obj: Any, path: Path) -> Path:
    """Write ``obj`` as UTF-8 JSON (indented; datetimes ISO 8601; DataFrames as row lists)."""
    text = json.dumps(obj, default=_json_default, ensure_ascii=False, indent=2) + "\n"
    return atomic_write_bytes(Path(path), text.encode("utf-8"))
