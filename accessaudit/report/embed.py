"""The report's embedded tables, columnar and compressed (what the page script decodes).

A table (``{"columns": [...], "rows": [[...], ...]}``, as :mod:`accessaudit.report.rows` and
:mod:`accessaudit.report.objects` build them) is stored column by column:

* a column of scalars with at most half as many distinct values as rows (severity, rule id,
  status, force, dates, flags, repeated details) as ``{"name", "dict": [values], "codes":
  [index into dict per row]}``; any other as ``{"name", "values": [...]}``;
* a column of lists (a finding's path, an object's evidence) as ``{"name", "lengths": [one
  length per row], "items": <the concatenated items, encoded as a column>}``.

That JSON (``{"format": FORMAT, "n": rows, "columns": [...]}``) is gzip-compressed (mtime 0,
so the same data gives the same bytes) and base64-encoded, and the block holds it as one JSON
string: only ``[A-Za-z0-9+/=]`` between the quotes, which no HTML parser can read as markup.
The page decodes it with the browser's own ``DecompressionStream("gzip")`` over a
``Blob(...).stream()`` (no network, nothing the CSP has to allow) and ``JSON.parse``.

At the 1M-account run this is what keeps the report one file: 121.5 MB of row-wise JSON
before, see ``benchmarks/README.md`` (report_views) for the figures of each encoding.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from jinja2.utils import htmlsafe_json_dumps

#: The payload's format tag; the page script refuses any other.
FORMAT: Final = "columnar-1"
#: A scalar column is dictionary-coded when it has at most this share of distinct values.
DICT_SHARE: Final = 0.5


def encode_column(name: str | None, values: Sequence[Any]) -> dict[str, Any]:
    """One column: dictionary-coded, plain, or (lists) lengths + the concatenated items."""
    out: dict[str, Any] = {} if name is None else {"name": name}
    types = set(map(type, values))
    if list in types or tuple in types:
        lengths = [0 if v is None else len(v) for v in values]
        items = [x for v in values if v is not None for x in v]
        return out | {"lengths": lengths, "items": encode_column(None, items)}
    # True == 1 in a dict: a column mixing bools and numbers stays plain
    if not (bool in types and (int in types or float in types)):
        distinct = list(dict.fromkeys(values))
        if len(distinct) <= DICT_SHARE * len(values):
            index = {v: i for i, v in enumerate(distinct)}
            return out | {"dict": distinct, "codes": list(map(index.__getitem__, values))}
    return out | {"values": list(values)}


def columnar(table: Mapping[str, Any]) -> dict[str, Any]:
    """``{"columns", "rows"}`` as the columnar payload (before compression)."""
    columns, rows = list(table["columns"]), table["rows"]
    by_column = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    return {
        "format": FORMAT,
        "n": len(rows),
        "columns": [encode_column(c, v) for c, v in zip(columns, by_column, strict=True)],
    }


def encode(table: Mapping[str, Any], *, compress: bool = True) -> str:
    """The block's text: a JSON string holding base64(gzip(columnar JSON)); with ``compress``
    false the columnar JSON itself (``<``, ``>``, ``&``, ``'`` and non-ASCII ``\\u``-escaped,
    as ``|tojson`` does: the benchmark's comparison)."""
    if not compress:
        return str(htmlsafe_json_dumps(columnar(table), dumps=_compact))
    text = json.dumps(columnar(table), ensure_ascii=False, separators=(",", ":"))
    packed = gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)
    return '"' + base64.b64encode(packed).decode("ascii") + '"'


def _compact(obj: Any, **kwargs: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), **kwargs)


def _decode_column(col: Mapping[str, Any], n: int) -> list[Any]:
    if "lengths" in col:
        items = _decode_column(col["items"], sum(col["lengths"]))
        out, at = [], 0
        for length in col["lengths"]:
            out.append(items[at : at + length])
            at += length
        return out
    if "codes" in col:
        return [col["dict"][c] for c in col["codes"]]
    return list(col["values"])


def decode(text: str) -> dict[str, Any]:
    """A block's text back to ``{"columns", "rows"}`` (tests and tools; the page decodes in
    JavaScript). A block holding a plain JSON object (a site template's ``|tojson``) is
    returned as it is."""
    value = json.loads(text)
    if isinstance(value, str):
        payload = json.loads(gzip.decompress(base64.b64decode(value, validate=True)))
    elif "format" in value:
        payload = value
    else:
        return dict(value)
    if payload.get("format") != FORMAT:
        raise ValueError(f"embedded data of format {payload.get('format')!r}, not {FORMAT!r}")
    n = payload["n"]
    cols = payload["columns"]
    data = [_decode_column(c, n) for c in cols]
    return {
        "columns": [c["name"] for c in cols],
        "rows": [list(r) for r in zip(*data, strict=True)] if n else [],
    }


#: The report's tables written through ``|embed`` (the page script's data).
TABLE_BLOCKS: Final = ("objects-data", "worklist-data", "findings-data")
_BLOCK = re.compile(r'<script type="application/json" id="([a-z-]+)">(.*?)</script>', re.S)


def blocks(html: str) -> dict[str, Any]:
    """Every ``<script type="application/json">`` block of a report, decoded: a table block as
    ``{"columns", "rows"}``, any other as its JSON (what tests and leak checks read)."""
    return {
        name: decode(text) if name in TABLE_BLOCKS else json.loads(text)
        for name, text in _BLOCK.findall(html)
    }
