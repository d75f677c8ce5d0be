"""The identity team's tracking columns, kept between runs by action id.

A team works the worklist in ``actions.xlsx``: it fills ``status``, ``owner``, ``ticket``,
``done`` and ``notes``. ``accessaudit worklist import EDITED.xlsx`` reads those columns from every
sheet that has an ``action_id`` column and stores them in the data directory
(``tracking.json``, owner-only); every later export writes them back beside the same action ids,
so nothing the team wrote is lost between runs. Action ids are stable across runs (kind + target
ids), so an action that is still open keeps its status; an action that has gone (its findings
are resolved) keeps its row in the file, and comes back with it if the finding regresses.

Merging never erases: a row whose tracking cells are all empty is skipped (an older copy of the
workbook cannot clear what a newer one recorded); a row with any value replaces the stored row
of its action id. Cell values are text from outside: they are stored as text, capped, and
neutralised again by the exports.
"""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl

from accessaudit.errors import InputFileError
from accessaudit.report.worklist import TRACKING_COLUMNS
from accessaudit.store.runs import atomic_write_bytes

TRACKING_FILE: Final = "tracking.json"
FORMAT: Final = 1
#: A tracking cell longer than this is cut (a note, not a document).
MAX_CELL: Final = 2_000
#: Rows read from one workbook at most (Excel's own limit).
MAX_ROWS: Final = 1_048_576

_SCHEMA: Final = pl.Schema(
    {"action_id": pl.String, **dict.fromkeys(TRACKING_COLUMNS, pl.String), "updated": pl.String}
)


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    text = text.strip()
    return text[:MAX_CELL] or None


def read_workbook(path: Path) -> pl.DataFrame:
    """Every row of ``path`` (an edited ``actions.xlsx``) with an action id and at least one
    tracking value, from every sheet that has an ``action_id`` column; the last row of an id
    wins. A file that is not a workbook, or has no sheet with ``action_id``, is an error."""
    from openpyxl import load_workbook  # only this command reads workbooks

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError:
        raise InputFileError(
            f"{path}: no such file", "give the path of the edited actions.xlsx"
        ) from None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise InputFileError(
            f"{path}: not an Excel workbook (.xlsx)",
            "save the worklist as an Excel workbook and import that file",
        ) from None
    rows: list[dict[str, str | None]] = []
    found = False
    try:
        for sheet in book.worksheets:
            found |= _read_sheet(sheet, rows)
    finally:
        book.close()
    if not found:
        raise InputFileError(
            f"{path}:1: no sheet has an action_id column",
            "import the actions.xlsx a run wrote (its header row names action_id)",
        )
    frame = pl.DataFrame(
        rows, schema={"action_id": pl.String, **dict.fromkeys(TRACKING_COLUMNS, pl.String)}
    )
    return frame.unique("action_id", keep="last", maintain_order=True)


def _read_sheet(sheet: Any, rows: list[dict[str, str | None]]) -> bool:
    """Append the sheet's tracked rows to ``rows``; whether it had an ``action_id`` column."""
    lines = sheet.iter_rows(values_only=True, max_row=MAX_ROWS)
    header = next(lines, None)
    if not header:
        return False
    names = [_cell(h) for h in header]
    if "action_id" not in names:
        return False
    where = {c: names.index(c) for c in ("action_id", *TRACKING_COLUMNS) if c in names}
    for line in lines:
        values = {c: _cell(line[i]) if i < len(line) else None for c, i in where.items()}
        if values.get("action_id") and any(values.get(c) for c in TRACKING_COLUMNS):
            rows.append({c: values.get(c) for c in ("action_id", *TRACKING_COLUMNS)})
    return True


def load(data_dir: Path) -> pl.DataFrame:
    """The stored tracking rows (empty when nothing was imported yet)."""
    path = Path(data_dir) / TRACKING_FILE
    if not path.exists():
        return pl.DataFrame(schema=_SCHEMA)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        rows = [{"action_id": k, **v} for k, v in doc["actions"].items()]
        return pl.DataFrame(rows, schema=_SCHEMA, strict=False)
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise InputFileError(
            f"{path}: damaged tracking file",
            "restore it from a backup, or delete it and import the edited workbook again",
        ) from None


def merge(data_dir: Path, imported: pl.DataFrame, *, now: datetime | None = None) -> int:
    """Store ``imported`` over the tracking file (rows with values replace their action id's
    row; the others stay); the number of action ids updated."""
    stamp = (now or datetime.now(UTC)).isoformat()
    current = {r["action_id"]: r for r in load(data_dir).to_dicts()}
    for row in imported.to_dicts():
        current[row["action_id"]] = {**row, "updated": stamp}
    doc = {
        "format": FORMAT,
        "actions": {
            k: {c: v.get(c) for c in (*TRACKING_COLUMNS, "updated")}
            for k, v in sorted(current.items())
        },
    }
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    atomic_write_bytes(Path(data_dir) / TRACKING_FILE, text.encode("utf-8"))
    return imported.height
