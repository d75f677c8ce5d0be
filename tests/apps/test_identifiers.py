"""Logins and staff numbers as exports write them (analysis.identifiers), and correlation on
them: exact keys for every shape the issue names, truth written out by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from accessaudit.analysis.correlate import correlate
from accessaudit.analysis.identifiers import (
    directory_domains,
    employee_id_key,
    login_domain,
    login_keys,
)
from accessaudit.config.sources import CsvSource
from accessaudit.connectors.csvfile import collect
from accessaudit.model import ACCOUNTS_SCHEMA, conform

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _keys(expr: pl.Expr, values: list[str | None]) -> list[object]:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    return frame.select(expr.alias("v"))["v"].to_list()


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("2000146", "2000146"), ("02000146", "2000146"), ("0002000146", "2000146"),
        ("  2000146 ", "2000146"), ("\u00a02000146\u00a0", "2000146"), ("2 000 146", "2000146"),
        ("0000", "0"), ("WM00146", "wm00146"), (" wm 00146", "wm00146"), ("", None),
        ("   ", None), (None, None), ("٢٠٠", "٢٠٠"),  # Arabic-Indic digits: not a number here
    ],
)  # fmt: skip
def test_employee_id_key(written: str | None, key: str | None) -> None:
    assert _keys(employee_id_key(pl.col("v")), [written]) == [key]


@pytest.mark.parametrize(
    ("written", "keys"),
    [
        ("achen1428", ["achen1428"]),
        ("  ACHEN1428\u00a0", ["achen1428"]),
        ("ALLIANCE\\achen1428", ["alliance\\achen1428", "achen1428"]),
        ("alliance\\ACHEN1428", ["alliance\\achen1428", "achen1428"]),
        ("achen1428@Alliance.Local", ["achen1428@alliance.local", "achen1428"]),
        ("OTHER\\achen1428", ["other\\achen1428"]),  # another domain: never its user part
        ("achen1428@westmercia.police.uk", ["achen1428@westmercia.police.uk"]),
        ("ALLIANCE\\", ["alliance\\"]),
        ("", []),
    ],
)
def test_login_keys(written: str, keys: list[str]) -> None:
    (got,) = _keys(login_keys(pl.col("v"), ["ALLIANCE", "alliance.local"]), [written])
    assert isinstance(got, list) and sorted(got) == sorted(keys)


def test_login_domain_and_the_default_domains() -> None:
    values: list[str | None] = ["ALLIANCE\\a", "a@b.example", "a", None]
    assert _keys(login_domain(pl.col("v")), values) == ["alliance", "b.example", None, None]
    assert directory_domains(["ad:alliance.local", "entra:t1", "csv:cad", "ad:Corp.Example"]) == [
        "alliance",
        "alliance.local",
        "corp",
        "corp.example",
    ]


def _directory(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    """(account_id, username, employee_id) of source ad:alliance.local."""
    return conform(
        pl.DataFrame(
            {
                "source": "ad:alliance.local",
                "account_id": [r[0] for r in rows],
                "username": [r[1] for r in rows],
                "employee_id": [r[2] for r in rows],
            }
        ),
        ACCOUNTS_SCHEMA,
    )


def _export(tmp_path: Path, rows: list[str], **kw: object) -> CsvSource:
    path = tmp_path / "cad.csv"
    path.write_text("Login;Role\n" + "".join(f"{r};WMP-Dispatcher\n" for r in rows), "utf-8")
    return CsvSource.model_validate(
        {
            "kind": "csv",
            "name": "cad",
            "path": path,
            "delimiter": ";",
            "columns": {"username": "Login", "role": "Role"},
            **kw,
        }
    )


def test_down_level_logins_correlate_by_user_part_in_an_accepted_domain(tmp_path: Path) -> None:
    directory = _directory(
        [("a1", "achen1428", "2000146"), ("a2", "bjones", "1000001"), ("a3", "Bjones", "1")]
    )
    logins = [
        "ALLIANCE\\achen1428",  # a1
        "alliance\\ACHEN1428",  # a1 again: one edge
        "achen1428@alliance.local",  # a1
        "OTHER\\achen1428",  # another domain: unmatched
        "ALLIANCE\\bjones",  # two directory accounts are bjones: ambiguous, never guessed
        "nobody",  # unmatched
    ]
    cfg = _export(tmp_path, logins)
    correlated, evidence = correlate(collect(cfg, now=NOW), directory, "username")
    status = dict(
        evidence.group_by("csv_account_id", maintain_order=True)
        .agg(pl.col("status").first())
        .iter_rows()
    )
    assert status == {
        "csv:cad:user:alliance\\achen1428": "matched",
        "csv:cad:user:achen1428@alliance.local": "matched",
        "csv:cad:user:other\\achen1428": "unmatched",
        "csv:cad:user:alliance\\bjones": "ambiguous",
        "csv:cad:user:nobody": "unmatched",
    }
    assert correlated.table("memberships")["member_id"].to_list() == [
        "a1",
        "csv:cad:user:other\\achen1428",
        "csv:cad:user:alliance\\bjones",
        "csv:cad:user:nobody",
    ]
    assert correlated.units[-1].detail == (
        "2 matched, 2 unmatched, 1 ambiguous on username (1 login(s) of another domain)"
    )
    # the configured domains replace the default ones: ALLIANCE is then another domain
    _, only_corp = correlate(collect(cfg, now=NOW), directory, "username", ["CORP"])
    assert only_corp.filter(pl.col("status") == "matched").height == 0


def test_padded_staff_numbers_correlate(tmp_path: Path) -> None:
    directory = _directory([("a1", "x", "2000146"), ("a2", "y", " 0001000001"), ("a3", "z", "")])
    path = tmp_path / "duty.csv"
    path.write_text("User,Staff No,Role\nu1,02000146,R\nu2,1000001,R\nu3,0,R\nu4,,R\n", "utf-8")
    cfg = CsvSource.model_validate(
        {
            "kind": "csv",
            "name": "duty",
            "path": path,
            "correlate_on": "employee_id",
            "columns": {"username": "User", "employee_id": "Staff No", "role": "Role"},
        }
    )
    _, evidence = correlate(collect(cfg, now=NOW), directory, "employee_id")
    assert evidence.select("csv_account_id", "directory_account_id", "status").rows() == [
        ("csv:duty:user:u1", "a1", "matched"),
        ("csv:duty:user:u2", "a2", "matched"),
        ("csv:duty:user:u3", None, "unmatched"),
        ("csv:duty:user:u4", None, "unmatched"),
    ]
