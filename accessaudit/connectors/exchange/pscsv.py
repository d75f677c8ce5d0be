"""Read a file written by PowerShell's ``Export-Csv``, exactly as both PowerShell lines write it.

What the cmdlet writes (PowerShell-Docs ``reference/5.1`` and ``7.4`` ``Export-Csv.md``):

* Windows PowerShell 5.1 starts with ``#TYPE <full type name>`` unless ``-NoTypeInformation``;
  PowerShell 6+ only with ``-IncludeTypeInformation``. The line is skipped (its type name is
  kept for messages); a ``#`` line anywhere else is data, and then a malformed row.
* Encoding: 5.1 defaults to ASCII (non-ASCII characters are already ``?`` in the file),
  ``-Encoding UTF8`` writes a BOM, ``-Encoding Unicode`` UTF-16 LE with a BOM; 6+ writes UTF-8
  without a BOM. The BOM decides; without one the file must be UTF-8 (ASCII is a subset).
* Every field quoted (5.1; 7's ``-UseQuotes Always``) or only where needed (``AsNeeded``):
  the stdlib ``csv`` reader in strict mode reads both, and an unbalanced quote is an error.
* A property holding a collection is written with ``ToString()``: its *type name*
  (``System.Object[]``, ``System.Collections.ArrayList``, ``...MultiValuedProperty`1[...]``),
  not its values. Such a cell is refused loudly (:func:`type_name_cells`): the rights it hid
  would otherwise be silently lost.

Every problem is one :class:`~accessaudit.errors.InputFileError` naming ``file:line``.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from accessaudit.errors import InputFileError

LINE: Final = "_line"  # the physical line a record starts on

#: A .NET type name where a value should be: dotted identifiers (the first capitalised), an
#: optional generic arity with its arguments, an optional array suffix.
TYPE_NAME: Final = (
    r"^(?:Deserialized\.)?[A-Z][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+"
    r"(?:`\d+\[.*\])?(?:\[\])?$"
)

_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class Export:
    """One export: its cells as strings (header names as written), the line of each record."""

    path: Path
    type_name: str | None  # from the ``#TYPE`` line, if there was one
    rows: pl.DataFrame  # one String column per header name, plus ``_line``


def _decode(path: Path, data: bytes) -> str:
    for bom, codec in _BOMS:
        if data.startswith(bom):
            encoding = codec
            break
    else:
        encoding = "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        byte = exc.object[exc.start : exc.end].hex(" ")
        raise InputFileError(
            f"{path}:{line}: byte(s) {byte} are not valid {encoding}",
            "export again with -Encoding UTF8 (Windows PowerShell 5.1) or the default "
            "encoding of PowerShell 7",
        ) from None


def read_export(path: Path, what: str, *, delimiter: str = ",") -> Export:
    """Every record of ``path``; ``what`` names the cmdlet in messages."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(
            f"{what} export {path} not found", "check the path in config.toml, or export again"
        ) from None
    except OSError as exc:
        raise InputFileError(f"cannot read {what} export {path}: {exc.strerror}") from None
    text = _decode(path, data).lstrip("\ufeff")
    type_name = None
    offset = 0
    if text.startswith("#TYPE"):
        first, _, text = text.partition("\n")
        type_name = first[5:].strip() or None
        offset = 1
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise InputFileError(
                f"{path}:{offset + 1}: no header row",
                f"export {what} again with Export-Csv (the first object's properties are "
                "the header)",
            )
        names = [h.strip() for h in header]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InputFileError(f"{path}:{offset + 1}: column(s) {dup} appear twice")
        rows, lines = _rows(reader, path, offset, len(names))
    except csv.Error as exc:
        raise InputFileError(
            f"{path}:{offset + reader.line_num}: malformed CSV record: {exc}",
            "check for an unbalanced quote character on this line",
        ) from None
    frame = pl.DataFrame(rows, schema=[(n, pl.String) for n in names], orient="row")
    return Export(path, type_name, frame.with_columns(pl.Series(LINE, lines, dtype=pl.Int64)))


def _rows(
    reader: Any,  # a csv reader (its type is private in typeshed)
    path: Path,
    offset: int,
    width: int,
) -> tuple[list[list[str]], list[int]]:
    rows: list[list[str]] = []
    lines: list[int] = []
    last = reader.line_num
    blank: int | None = None
    for row in reader:
        start, last = last + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            blank = blank or start
            continue
        if blank is not None:
            raise InputFileError(f"{path}:{offset + blank}: blank line inside the data")
        if len(row) != width:
            raise InputFileError(
                f"{path}:{offset + start}: row has {len(row)} fields, the header has {width}",
                "rows are never skipped: fix or export the file again",
            )
        rows.append(row)
        lines.append(offset + start)
    return rows, lines


def require(export: Export, what: str, columns: tuple[str, ...]) -> None:
    """Refuse an export that lacks one of ``columns`` (compared case-sensitively, as written)."""
    missing = [c for c in columns if c not in export.rows.columns]
    if missing:
        raise InputFileError(
            f"{export.path}:{1 + (export.type_name is not None)}: no column(s) "
            f"{', '.join(missing)} in this {what} export",
            f"export with the command in the README (it selects {', '.join(columns)})",
        )


def type_name_cells(export: Export, columns: tuple[str, ...]) -> None:
    """Refuse the first cell of ``columns`` that holds a .NET type name instead of values."""
    present = [c for c in columns if c in export.rows.columns]
    if not present:
        return
    hit = (
        export.rows.lazy()
        .select(
            LINE,
            bad=pl.coalesce(
                *(
                    pl.when(pl.col(c).str.strip_chars().str.contains(TYPE_NAME)).then(pl.lit(c))
                    for c in present
                )
            ),
        )
        .filter(pl.col("bad").is_not_null())
        .head(1)
        .collect()
    )
    if hit.height:
        column = str(hit["bad"][0])
        value = export.rows.filter(pl.col(LINE) == hit[LINE][0])[column][0]
        raise InputFileError(
            f"{export.path}:{hit[LINE][0]}: {column} is the .NET type name "
            f"{str(value).strip()[:80]!r}, not its values",
            f"Export-Csv writes a collection as its type name: flatten it in the export, e.g. "
            f"Select-Object ...,@{{n='{column}';e={{$_.{column} -join ';'}}}}",
        )
