"""The embedded tables' encoding (columnar, gzip, base64) and its decoding."""

from __future__ import annotations

import base64
import gzip
import json
import re
from typing import Any

import pytest
from support.report_sample import GROUP_SCRIPT, XSS_SCRIPT, make_context

from accessaudit.report import embed
from accessaudit.report.html import render_string


def test_repeating_values_are_dictionary_coded() -> None:
    assert embed.encode_column("severity", ["high", "low", "high", "high"]) == {
        "name": "severity",
        "dict": ["high", "low"],
        "codes": [0, 1, 0, 0],
    }
    # null is a value like any other
    assert embed.encode_column("change", [None, None, "new", None]) == {
        "name": "change",
        "dict": [None, "new"],
        "codes": [0, 0, 1, 0],
    }


def test_mostly_distinct_values_stay_plain() -> None:
    # 3 distinct of 4 is more than half
    assert embed.encode_column("key", ["a", "b", "c", "a"]) == {
        "name": "key",
        "values": ["a", "b", "c", "a"],
    }
    # exactly half is coded
    assert embed.encode_column("x", [1, 2, 1, 2]) == {
        "name": "x",
        "dict": [1, 2],
        "codes": [0, 1, 0, 1],
    }


def test_bools_mixed_with_numbers_stay_plain() -> None:
    # True == 1 as a dict key: coding would turn every 1 into True
    assert embed.encode_column("m", [True, 1, True, 1]) == {
        "name": "m",
        "values": [True, 1, True, 1],
    }
    assert embed.encode_column("b", [False, False, True, False]) == {
        "name": "b",
        "dict": [False, True],
        "codes": [0, 0, 1, 0],
    }


def test_list_columns_are_lengths_and_items() -> None:
    assert embed.encode_column("path", [[4, 5], [], [6]]) == {
        "name": "path",
        "lengths": [2, 0, 1],
        "items": {"values": [4, 5, 6]},
    }
    assert embed.encode_column("evidence", [["upn:wmp"], ["upn:wmp"], ["upn:wmp", "ou:x"]]) == {
        "name": "evidence",
        "lengths": [1, 1, 2],
        "items": {"dict": ["upn:wmp", "ou:x"], "codes": [0, 0, 0, 1]},
    }


TABLE: dict[str, Any] = {
    "columns": ["key", "severity", "who", "path", "hidden", "detail"],
    "rows": [
        ["k1", "high", 0, [0, 2], False, XSS_SCRIPT],
        ["k2", "high", 1, [], True, "a\u2028b\u2029c</script>"],
        ["k3", "low", None, [2], False, GROUP_SCRIPT],
        ["k4", "high", 0, [1, 1, 2], False, "Dave\u202eexe.txt"],
    ],
}


def test_payload_is_gzip_of_packed_columnar_in_a_base64_string() -> None:
    text = embed.encode(TABLE)
    assert re.fullmatch(r'"[A-Za-z0-9+/]*={0,2}"', text)
    data = gzip.decompress(base64.b64decode(json.loads(text)))
    size = int.from_bytes(data[:4], "little")
    details = [r[5] for r in TABLE["rows"]]
    detail_utf8 = "".join(details).encode("utf-8")
    after_detail = 32 + len(detail_utf8) + (-len(detail_utf8) % 4)
    # integer lists (codes, lengths) are typed arrays in the binary section, 4-aligned; a
    # plain column of strings is one UTF-8 text there + the strings' UTF-16 lengths
    assert json.loads(data[4 : 4 + size]) == {
        "format": "columnar-1",
        "n": 4,
        "columns": [
            {"name": "key", "values": {"text": [0, 8, ["u8", 8, 4]]}},
            {"name": "severity", "dict": ["high", "low"], "codes": {"bin": ["u8", 12, 4]}},
            {"name": "who", "values": [0, 1, None, 0]},  # 3 distinct of 4, with a null: JSON
            {
                "name": "path",
                "lengths": {"bin": ["u8", 16, 4]},
                "items": {"dict": [0, 2, 1], "codes": {"bin": ["u8", 20, 6]}},
            },
            {"name": "hidden", "dict": [False, True], "codes": {"bin": ["u8", 28, 4]}},
            {
                "name": "detail",
                "values": {"text": [32, len(detail_utf8), ["u8", after_detail, 4]]},
            },
        ],
    }
    start = 4 + size + (-(4 + size) % 4)
    assert data[4 + size : start] == bytes(start - 4 - size)
    assert data[start:] == (
        b"k1k2k3k4" + bytes([2, 2, 2, 2])
        + bytes([0, 0, 1, 0]) + bytes([2, 0, 1, 3]) + bytes([0, 1, 1, 2, 2, 1, 0, 0])
        + bytes([0, 1, 0, 0])
        + detail_utf8 + bytes(-len(detail_utf8) % 4)
        + bytes([len(d) for d in details])  # all in the BMP: one UTF-16 unit per character
    )  # fmt: skip
    assert embed.unpack(data) == embed.columnar(TABLE)
    # the same data gives the same bytes (gzip mtime 0)
    assert embed.encode(TABLE) == text


def test_text_lengths_count_utf16_units() -> None:
    # an astral character is two UTF-16 code units (what JavaScript's substring counts)
    payload = {
        "format": "columnar-1",
        "n": 3,
        "columns": [{"name": "t", "values": ["a😀", "", "\ufeffé"]}],
    }
    data = embed.pack(payload)
    size = int.from_bytes(data[:4], "little")
    [column] = json.loads(data[4 : 4 + size])["columns"]
    assert column["values"] == {"text": [0, 10, ["u8", 12, 3]]}  # 1+4+0+3+2 UTF-8 bytes
    start = 4 + size + (-(4 + size) % 4)
    assert data[start + 12 : start + 15] == bytes([3, 0, 2])
    assert embed.unpack(data) == payload
    # a lone surrogate cannot be UTF-8: the column stays JSON
    lone = {"format": "columnar-1", "n": 1, "columns": [{"name": "t", "values": ["\ud800"]}]}
    assert embed.unpack(embed.pack(lone)) == lone


def test_integer_arrays_take_the_smallest_type() -> None:
    payload = {
        "format": "columnar-1",
        "n": 3,
        "columns": [
            {"name": "u16", "values": [0, 256, 65535]},
            {"name": "u32", "values": [0, 65536, 2**32 - 1]},
            {"name": "i32", "values": [-1, 0, 2**31 - 1]},
            {"name": "big", "values": [-1, 0, 2**31]},  # fits no typed array: stays JSON
            {"name": "bools", "values": [True, False, True]},  # not ints: stays JSON
        ],
    }
    data = embed.pack(payload)
    size = int.from_bytes(data[:4], "little")
    refs = [c["values"] for c in json.loads(data[4 : 4 + size])["columns"]]
    assert refs == [
        {"bin": ["u16", 0, 3]},
        {"bin": ["u32", 8, 3]},  # 6 bytes of u16, padded to 8
        {"bin": ["i32", 20, 3]},
        [-1, 0, 2**31],
        [True, False, True],
    ]
    assert embed.unpack(data) == payload


@pytest.mark.parametrize("compress", [True, False])
def test_decode_gives_the_table_back(compress: bool) -> None:
    text = embed.encode(TABLE, compress=compress)
    assert embed.decode(text) == TABLE
    if not compress:
        assert "<" not in text and ">" not in text and "&" not in text
        assert "\u2028" not in text and "\u202e" not in text


def test_empty_table_and_row_wise_blocks() -> None:
    empty = {"columns": ["a", "b"], "rows": []}
    assert embed.decode(embed.encode(empty)) == empty
    # a site template's |tojson block (row-wise) is read as it is
    assert embed.decode(json.dumps(TABLE)) == TABLE


def test_unknown_format_is_refused() -> None:
    text = json.dumps({"format": "columnar-9", "n": 0, "columns": []})
    with pytest.raises(ValueError, match="columnar-9"):
        embed.decode(text)


def test_report_blocks_decode_to_the_context_tables() -> None:
    ctx = make_context(title="t")
    blocks = embed.blocks(render_string(ctx))
    assert set(blocks) == {"objects-data", "worklist-data", "findings-data", "report-meta"}
    for name, table in (
        ("objects-data", ctx["objects"]),
        ("worklist-data", ctx["worklist"]["data"]),
        ("findings-data", ctx["findings"]["data"]),
    ):
        assert blocks[name] == json.loads(json.dumps(table)), name
    assert blocks["report-meta"]["page_size"] == 100
