"""Correlation of application (CSV) users with directory accounts."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from accessaudit.analysis.correlate import CORRELATION_SCHEMA, correlate
from accessaudit.config.sources import CsvSource
from accessaudit.connectors.csvfile import collect
from accessaudit.model import ACCOUNTS_SCHEMA, CollectionUnit, SourceCollection, conform

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ON_VALUES = ("username", "upn", "employee_id", "mail")

# --- helpers (the sample generator will later write exports like these) -----------------------


def write_export(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")
    return path


def csv_collection(
    tmp_path: Path, rows: Sequence[Sequence[str]], **columns: str
) -> SourceCollection:
    """An export with columns User, Role, UPN, Payroll, Email; ``columns`` overrides the map."""
    path = write_export(tmp_path / "niche.csv", ["User", "Role", "UPN", "Payroll", "Email"], rows)
    mapping = {
        "username": "User",
        "role": "Role",
        "upn": "UPN",
        "employee_id": "Payroll",
        "mail": "Email",
    }
    mapping = {k: v for k, v in {**mapping, **columns}.items() if v}
    cfg = CsvSource(kind="csv", name="niche", path=path, columns=mapping)
    return collect(cfg, now=NOW)


def directory(on: str, rows: Sequence[tuple[str, str, str | None]]) -> pl.DataFrame:
    """Directory accounts (source, account_id, value of ``on``); every other column null."""
    frame = pl.DataFrame(
        {
            "source": [r[0] for r in rows],
            "account_id": [r[1] for r in rows],
            on: [r[2] for r in rows],
        },
        schema={"source": pl.String, "account_id": pl.String, on: pl.String},
    )
    return conform(frame, ACCOUNTS_SCHEMA)


CSV_ROWS = [
    ["alice", "Viewer", "Alice@A.example", "100", "alice@a.example"],
    ["alice", "Editor", "Alice@A.example", "100", "alice@a.example"],
    ["bob", "Viewer", "bob@b.example", "200", "bob@b.example"],
    ["carol", "Viewer", "carol@a.example", "300", "carol@a.example"],
    ["dave", "Viewer", "dave@x.example", "400", "dave@x.example"],
]

#: per `on`, the directory's spelling of alice's, bob's, carol's and dave's identity
DIRECTORY_KEYS = {
    "username": (" ALICE ", "Bob", "carol", "dave"),
    "upn": ("alice@a.example", " BOB@b.example", "Carol@A.example", "dave@x.example"),
    "employee_id": ("100 ", "200", "300", "400"),
    "mail": ("ALICE@A.EXAMPLE", "bob@b.example", "carol@a.example", "dave@x.example"),
}


def standard_directory(on: str) -> pl.DataFrame:
    alice, bob, carol, dave = DIRECTORY_KEYS[on]
    return directory(
        on,
        [
            ("ad:alliance.local", "ad-1", alice),
            ("ad:alliance.local", "ad-2", bob),
            ("ad:alliance.local", "ad-3", carol),
            ("entra:t1", "entra-3", carol),  # a second account with carol's identity
            ("csv:niche", "csv:niche:user:dave", dave),  # the CSV source itself: ignored
            ("ad:alliance.local", "ad-8", None),  # no value never matches
            ("ad:alliance.local", "ad-9", "  "),  # blank never matches
            ("ad:alliance.local", "ad-10", "zed"),
        ],
    )


# --- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("on", ON_VALUES)
def test_matched_unmatched_ambiguous(tmp_path: Path, on: str) -> None:
    col = csv_collection(tmp_path, CSV_ROWS)
    result, evidence = correlate(col, standard_directory(on), on)

    assert evidence.schema == CORRELATION_SCHEMA
    assert evidence.rows() == [
        ("csv:niche:user:alice", "ad-1", "matched", on),
        ("csv:niche:user:bob", "ad-2", "matched", on),
        ("csv:niche:user:carol", "ad-3", "ambiguous", on),
        ("csv:niche:user:carol", "entra-3", "ambiguous", on),
        ("csv:niche:user:dave", None, "unmatched", on),
    ]
    assert result.table("memberships").select("group_id", "member_id", "member_kind").rows() == [
        ("csv:niche:role:Viewer", "ad-1", "account"),
        ("csv:niche:role:Editor", "ad-1", "account"),
        ("csv:niche:role:Viewer", "ad-2", "account"),
        ("csv:niche:role:Viewer", "csv:niche:user:carol", "account"),
        ("csv:niche:role:Viewer", "csv:niche:user:dave", "account"),
    ]
    assert result.table("accounts")["account_id"].to_list() == [
        "csv:niche:user:carol",
        "csv:niche:user:dave",
    ]
    assert result.units[-1] == CollectionUnit(
        "correlation", True, f"2 matched, 1 unmatched, 1 ambiguous on {on}", 2
    )


def test_collection_metadata_is_kept(tmp_path: Path) -> None:
    col = csv_collection(tmp_path, CSV_ROWS)
    col.state["k"] = "v"
    result, _ = correlate(col, standard_directory("username"), "username")
    assert (result.source, result.kind, result.started, result.finished) == (
        "csv:niche",
        "csv",
        NOW,
        NOW,
    )
    assert result.units[:-1] == col.units
    assert [u.name for u in result.units] == ["rows", "correlation"]
    assert result.state == {"k": "v"}
    assert result.table("groups").equals(col.table("groups"))
    assert result.table("grants").height == 0
    assert result.table("memberships")["source"].unique().to_list() == ["csv:niche"]
    # the input collection is untouched
    assert col.table("accounts").height == 4
    assert len(col.units) == 1


def test_username_column_holding_upns(tmp_path: Path) -> None:
    """No UPN column mapped: the export's user column holds the UPN."""
    rows = [["Alice@A.example", "Viewer", "", "", ""], ["bob", "Viewer", "", "", ""]]
    col = csv_collection(tmp_path, rows, upn="", employee_id="", mail="")
    dir_accounts = directory("upn", [("ad:a", "ad-1", "alice@a.example"), ("ad:a", "ad-2", "bob")])
    result, evidence = correlate(col, dir_accounts, "upn")
    assert evidence.rows() == [
        ("csv:niche:user:alice@a.example", "ad-1", "matched", "upn"),
        ("csv:niche:user:bob", "ad-2", "matched", "upn"),
    ]
    assert result.table("accounts").height == 0


def test_empty_identity_cell_falls_back_to_username(tmp_path: Path) -> None:
    rows = [["1234", "Viewer", "", "", ""], ["carl", "Viewer", "", "999", ""]]
    col = csv_collection(tmp_path, rows)
    dir_accounts = directory("employee_id", [("ad:a", "ad-1", "1234"), ("ad:a", "ad-2", "carl")])
    _, evidence = correlate(col, dir_accounts, "employee_id")
    assert evidence.rows() == [
        ("csv:niche:user:1234", "ad-1", "matched", "employee_id"),
        ("csv:niche:user:carl", None, "unmatched", "employee_id"),  # 999 is no one
    ]


def test_two_csv_users_one_person_memberships_deduplicated(tmp_path: Path) -> None:
    rows = [
        ["asmith", "Viewer", "alice@a.example", "", ""],
        ["alice.smith", "Viewer", "alice@a.example", "", ""],
        ["alice.smith", "Editor", "alice@a.example", "", ""],
    ]
    col = csv_collection(tmp_path, rows)
    result, evidence = correlate(
        col, directory("upn", [("ad:a", "ad-1", "alice@a.example")]), "upn"
    )
    assert evidence["status"].to_list() == ["matched", "matched"]
    assert result.table("memberships").select("group_id", "member_id").rows() == [
        ("csv:niche:role:Viewer", "ad-1"),
        ("csv:niche:role:Editor", "ad-1"),
    ]
    assert result.units[-1].detail == "2 matched, 0 unmatched, 0 ambiguous on upn"


def test_same_account_listed_twice_is_not_ambiguous(tmp_path: Path) -> None:
    col = csv_collection(tmp_path, CSV_ROWS[:1])
    dup = directory("username", [("ad:a", "ad-1", "alice"), ("ad:a", "ad-1", "Alice")])
    _, evidence = correlate(col, dup, "username")
    assert evidence.rows() == [("csv:niche:user:alice", "ad-1", "matched", "username")]


def test_other_attributes_do_not_match(tmp_path: Path) -> None:
    col = csv_collection(tmp_path, CSV_ROWS[:1])
    dir_accounts = directory("username", [("ad:a", "ad-1", "alice")])  # only username is set
    result, evidence = correlate(col, dir_accounts, "mail")
    assert evidence.rows() == [("csv:niche:user:alice", None, "unmatched", "mail")]
    assert result.table("accounts")["account_id"].to_list() == ["csv:niche:user:alice"]
    assert result.units[-1] == CollectionUnit(
        "correlation", True, "0 matched, 1 unmatched, 0 ambiguous on mail", 0
    )


def test_empty_directory_and_empty_collection(tmp_path: Path) -> None:
    col = csv_collection(tmp_path, CSV_ROWS)
    _, evidence = correlate(col, pl.DataFrame(schema=ACCOUNTS_SCHEMA), "username")
    assert evidence["status"].to_list() == ["unmatched"] * 4

    empty_col = csv_collection(tmp_path, [])
    result, evidence = correlate(empty_col, standard_directory("username"), "username")
    assert evidence.height == 0 and evidence.schema == CORRELATION_SCHEMA
    assert result.units[-1].detail == "0 matched, 0 unmatched, 0 ambiguous on username"


def test_directory_frame_with_derived_columns(tmp_path: Path) -> None:
    col = csv_collection(tmp_path, CSV_ROWS[:1])
    dir_accounts = directory("username", [("ad:a", "ad-1", "alice")]).with_columns(
        org=pl.lit("wmp"), org_conflict=pl.lit(False)
    )
    _, evidence = correlate(col, dir_accounts, "username")
    assert evidence["directory_account_id"].to_list() == ["ad-1"]


def test_unknown_on_is_rejected(tmp_path: Path) -> None:
    col = csv_collection(tmp_path, CSV_ROWS[:1])
    with pytest.raises(ValueError, match="display_name"):
        correlate(col, standard_directory("username"), "display_name")
