"""Enabled spellings and bad rows (issue 24, items 5 and 6): a bad cell marks its own source
incomplete with file:line (exit 3) while every other source is collected and analysed."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from support.app_exports import (
    NOW,
    Directory,
    cad_rows,
    csv_sources,
    duty_rows,
    settings_for,
    write_cad,
    write_duty,
)

from accessaudit.config.sources import CsvSource
from accessaudit.connectors.csvfile import collect
from accessaudit.errors import ConfigError, ExitCode
from accessaudit.pipeline.run import run_audit
from accessaudit.sample.directory import generate

HEADER = "Login;Role;Status\r\n"


def _roster(path: Path, body: str, **kw: object) -> CsvSource:
    path.write_bytes((HEADER + body).encode("cp1252"))
    return CsvSource.model_validate(
        {
            "kind": "csv",
            "name": "roster",
            "path": path,
            "encoding": "cp1252",
            "delimiter": ";",
            "columns": {"username": "Login", "role": "Role", "enabled": "Status"},
            **kw,
        }
    )


@pytest.mark.parametrize(
    ("status", "enabled"),
    [
        ("Suspended", False), ("LOCKED", False), ("N", False), ("Y", True), ("0", False),
        ("1", True), ("Disabled", False), ("\u00a0Inactive\u00a0", False), ("Actif", True),
        ("Gesperrt", False),
    ],
)  # fmt: skip
def test_common_and_configured_enabled_spellings(
    tmp_path: Path, status: str, enabled: bool
) -> None:
    cfg = _roster(
        tmp_path / "r.csv",
        f"ALLIANCE\\ann;WMP-Dispatcher;{status}\r\n",
        enabled_values={"actif": True, " GESPERRT ": False},
    )
    col = collect(cfg, now=NOW)
    assert col.complete
    assert col.table("accounts")["enabled"].to_list() == [enabled]
    assert col.table("memberships")["via"].to_list() == ["csv" if enabled else "csv-disabled"]


def test_a_still_bad_cell_marks_the_source_incomplete_naming_file_and_line(tmp_path: Path) -> None:
    body = (
        "ann;WMP-Dispatcher;Active\r\n"  # 2
        'bob;"WARKS-\r\nDispatcher";Peut-être\r\n'  # 3-4: a multi-line cell, a bad status
        "cy;WMP-Dispatcher\r\n"  # 5: a missing cell
        "di;WMP-Dispatcher;N\r\n"  # 6
        ";;\r\n;;\r\n"  # Excel's empty tail
    )
    path = tmp_path / "r.csv"
    col = collect(_roster(path, body), now=NOW)
    (unit,) = col.units
    assert (unit.name, unit.complete, unit.count) == ("rows", False, 3)
    assert unit.detail == (
        f"{path}:3: enabled value (column 'Status') is not an accepted spelling (add it to "
        "enabled_values of source roster; kept as enabled) (1 more bad row(s) in the file); "
        "the other rows were read: fix the export (or ask the application owner for a clean "
        "one) to complete the source"
    )
    assert "Peut" not in unit.detail  # the cell itself is never quoted
    # the bad status is kept as enabled (unknown state, access reported); the short row is out
    assert col.table("memberships").select("member_id", "via").rows() == [
        ("csv:roster:user:ann", "csv"),
        ("csv:roster:user:bob", "csv"),
        ("csv:roster:user:di", "csv-disabled"),
    ]


def test_a_mapped_column_missing_names_line_1(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    cfg = _roster(path, "ann;R;Y\r\n")
    path.write_bytes("Login;Rôle;Status\r\nann;R;Y\r\n".encode("cp1252"))
    with pytest.raises(ConfigError) as info:
        collect(cfg, now=NOW)
    assert str(info.value).startswith(f"source roster: {path}:1: no column 'Role' (for role)")


def test_one_bad_source_exits_3_and_the_others_are_audited(tmp_path: Path) -> None:
    directory = Directory(generate(seed=7, accounts=600, now=NOW).tables["accounts"].to_dicts())
    write_cad(tmp_path / "cad.csv", cad_rows(directory))
    write_duty(tmp_path / "duty.csv", duty_rows(directory))
    roster = tmp_path / "roster.csv"
    roster.write_bytes((HEADER + "ann;WMP-Dispatcher;Suspendu\r\n").encode("cp1252"))
    sources = [
        *csv_sources(tmp_path),
        {
            "kind": "csv",
            "name": "roster",
            "path": str(roster),
            "encoding": "cp1252",
            "delimiter": ";",
            "columns": {"username": "Login", "role": "Role", "enabled": "Status"},
        },
    ]
    result = run_audit(settings_for(tmp_path, sources), now=NOW)
    assert result.exit_code("none") == ExitCode.INCOMPLETE
    assert int(ExitCode.INCOMPLETE) == 3
    complete = {s["name"]: s["complete"] for s in result.run.manifest["sources"]}
    assert complete == {"alliance": True, "cad": True, "duty": True, "roster": False}
    assert result.incomplete_units().startswith(f"roster: rows ({roster}:2: enabled value")
    # the other applications' cross-force roles are still found
    f = result.analysis.findings.filter(pl.col("rule_id") == "cross-org-direct-member")
    groups = set(f.filter(pl.col("group_id").str.starts_with("csv:"))["group_id"].to_list())
    assert groups == {
        "csv:cad:role:WARKS-Dispatcher",
        "csv:cad:role:WMP-Dispatcher",
        "csv:duty:role:WARKS-Custody",
        "csv:duty:role:WMP-Custody",
    }
