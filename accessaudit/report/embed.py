"""The report's embedded tables, columnar and compressed (what the page script decodes).

A table (``{"columns": [...], "rows": [[...], ...]}``, as :mod:`accessaudit.report.rows` and
:mod:`accessaudit.report.objects` build them) is stored column by column:

* a column of scalars with at most half as many distinct values as rows (severity, rule id,
  status, force, dates, flags, repeated details) as ``{"name", "dict": [values], "codes":
  [index into dict per row]}``; any other as ``{"name", "values": [...]}``;
* a column of lists (a finding's path, an object's evidence) as ``{"name", "lengths": [one
  length per row], "items": <the concatenated items, encoded as a column>}``.

That payload (``{"format": FORMAT, "n": rows, "columns": [...]}``) is packed (:func:`pack`:
every list of integers, the codes, lengths, object indexes, moves out of the JSON into a binary
section of little-endian u8/u16/u32/i32 arrays, ``{"bin": [type, offset, count]}`` in its
place, so the page parses no JSON for them and reads them as typed arrays; a plain column of
strings moves there as one UTF-8 text and the strings' lengths, ``{"text": [offset, bytes,
lengths]}``, which the page decodes with one ``TextDecoder`` call), gzip-compressed
(mtime 0, so the same data gives the same bytes) and base64-encoded, and the block holds it
as one JSON string: only ``[A-Za-z0-9+/=]`` between the quotes, which no HTML parser can read
as markup. The page decodes it with the browser's own ``DecompressionStream("gzip")`` over a
``Blob(...).stream()`` (no network, nothing the CSP has to allow).

At the 1M-account run this is what keeps the report one file: 121.5 MB of row-wise JSON
before, see ``benchmarks/README.md`` (report_views) for the figures of each encoding.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import sys
from array import array
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


#: Typed-array kinds of the binary section: (name, array typecode, largest value).
_UNSIGNED: Final = (("u8", "B", 0xFF), ("u16", "H", 0xFFFF), ("u32", "I", 0xFFFFFFFF))
_CODES: Final = {"u8": "B", "u16": "H", "u32": "I", "i32": "i"}
_ARRAY_KEYS: Final = ("codes", "lengths", "values")


def _int_array(values: Sequence[Any]) -> tuple[str, bytes] | None:
    """``values`` as the smallest typed array that holds them, or None (not all ints)."""
    if not values or set(map(type, values)) != {int}:
        return None
    lo, hi = min(values), max(values)
    kind = next((k for k, _, top in _UNSIGNED if lo >= 0 and hi <= top), None)
    if kind is None and lo >= -(2**31) and hi < 2**31:
        kind = "i32"
    if kind is None:
        return None
    packed = array(_CODES[kind], values)
    if sys.byteorder == "big":
        packed.byteswap()
    return kind, packed.tobytes()


def _blob(data: bytes, blobs: list[bytes], at: list[int]) -> int:
    """Append ``data`` to the binary section (4-aligned); its offset."""
    offset = at[0]
    data += bytes(-len(data) % 4)
    blobs.append(data)
    at[0] += len(data)
    return offset


def _text_column(values: Sequence[Any], blobs: list[bytes], at: list[int]) -> dict[str, Any] | None:
    """A column of strings as one UTF-8 text + each string's length in UTF-16 code units (what
    JavaScript's ``substring`` counts): ``{"text": [offset, bytes, lengths ref]}``; None when
    not all are strings or one cannot be UTF-8 (a lone surrogate)."""
    if not values or set(map(type, values)) != {str}:
        return None
    joined = "".join(values)
    try:
        data = joined.encode("utf-8")
    except UnicodeEncodeError:
        return None
    if joined.isascii():
        lengths = list(map(len, values))
    else:
        lengths = [len(v.encode("utf-16-le")) // 2 for v in values]
    got = _int_array(lengths)
    assert got is not None
    kind, packed = got
    offset = _blob(data, blobs, at)
    return {"text": [offset, len(data), [kind, _blob(packed, blobs, at), len(values)]]}


def _pack_column(col: Mapping[str, Any], blobs: list[bytes], at: list[int]) -> dict[str, Any]:
    out = dict(col)
    for key in _ARRAY_KEYS:
        got = _int_array(out[key]) if key in out else None
        if got is not None:
            kind, data = got
            out[key] = {"bin": [kind, _blob(data, blobs, at), len(out[key])]}
        elif key == "values" and key in out:
            text = _text_column(out[key], blobs, at)
            out[key] = out[key] if text is None else text
    if "items" in out:
        out["items"] = _pack_column(out["items"], blobs, at)
    return out


def pack(payload: Mapping[str, Any]) -> bytes:
    """The columnar payload as bytes: u32 little-endian length of the header JSON, the header
    (the payload with each integer list replaced by ``{"bin": [type, offset, count]}``), zero
    padding to 4 bytes, then the binary section the offsets point into."""
    blobs: list[bytes] = []
    at = [0]
    head = dict(payload, columns=[_pack_column(c, blobs, at) for c in payload["columns"]])
    # ASCII: a lone surrogate (not UTF-8) in a column left in the header stays \u-escaped
    text = json.dumps(head, separators=(",", ":")).encode("ascii")
    start = len(text).to_bytes(4, "little") + text
    return start + bytes(-len(start) % 4) + b"".join(blobs)


def _unpack_column(col: Mapping[str, Any], section: bytes) -> dict[str, Any]:
    out = dict(col)
    for key in _ARRAY_KEYS:
        ref = out.get(key)
        if isinstance(ref, dict) and "text" in ref:
            offset, size, lengths = ref["text"]
            text = section[offset : offset + size].decode("utf-8").encode("utf-16-le")
            strings, at = [], 0
            for n in _typed(section, lengths):
                strings.append(text[2 * at : 2 * (at + n)].decode("utf-16-le"))
                at += n
            out[key] = strings
        elif isinstance(ref, dict):
            out[key] = _typed(section, ref["bin"])
    if "items" in out:
        out["items"] = _unpack_column(out["items"], section)
    return out


def _typed(section: bytes, ref: Sequence[Any]) -> list[int]:
    kind, offset, count = ref
    values = array(_CODES[kind])
    values.frombytes(section[offset : offset + count * values.itemsize])
    if sys.byteorder == "big":
        values.byteswap()
    return values.tolist()


def unpack(data: bytes) -> dict[str, Any]:
    """:func:`pack`'s bytes back to the columnar payload (lists of ints again)."""
    size = int.from_bytes(data[:4], "little")
    head = json.loads(data[4 : 4 + size])
    start = 4 + size
    section = data[start + (-start % 4) :]
    return dict(head, columns=[_unpack_column(c, section) for c in head["columns"]])


def encode(table: Mapping[str, Any], *, compress: bool = True) -> str:
    """The block's text: a JSON string holding base64(gzip(packed columnar)); with ``compress``
    false the columnar JSON itself (``<``, ``>``, ``&``, ``'`` and non-ASCII ``\\u``-escaped,
    as ``|tojson`` does: the benchmark's comparison)."""
    if not compress:
        return str(htmlsafe_json_dumps(columnar(table), dumps=_compact))
    packed = gzip.compress(pack(columnar(table)), compresslevel=6, mtime=0)
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
        payload = unpack(gzip.decompress(base64.b64decode(value, validate=True)))
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
