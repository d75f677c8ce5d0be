"""The CSV connector: application user lists read strictly into canonical tables."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl
import pytest

from accessaudit.config.sources import CsvSource
from accessaudit.connectors.csvfile import collect
from accessaudit.errors import ConfigError, InputFileError
from accessaudit.model import (
    ACCOUNTS_SCHEMA,
    GRANTS_SCHEMA,
    GROUPS_SCHEMA,
    MEMBERSHIPS_SCHEMA,
    CollectionUnit,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

HEADER = ["User ID", "Full Name", "Role", "Active"]
MAPPING = {"username": "User ID", "display_name": "Full Name", "role": "Role", "enabled": "Active"}


# --- helpers (the sample generator will later write exports like these) -----------------------


def write_export(
    path: Path,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    lineterminator: str = "\r\n",
    quoting: Literal[0, 1, 2, 3] = csv.QUOTE_MINIMAL,  # csv.QUOTE_MINIMAL, _ALL, _NONNUMERIC, _NONE
) -> Path:
    """Write an application export the way csv-producing tools do (quoting as needed)."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=lineterminator, quoting=quoting)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Write exactly ``text`` (line endings included) for byte-precise cases."""
    path.write_bytes(text.encode(encoding))
    return path


def source(path: Path, columns: dict[str, str] | None = None, **kw: Any) -> CsvSource:
    return CsvSource(kind="csv", name="niche", path=path, columns=columns or MAPPING, **kw)


def rows_of(df: pl.DataFrame, *cols: str) -> list[tuple[Any, ...]]:
    return df.select(cols).rows()


def error(exc_type: type[Exception], cfg: CsvSource) -> str:
    with pytest.raises(exc_type) as info:
        collect(cfg, now=NOW)
    return str(info.value)


def bad_rows(cfg: CsvSource) -> str:
    """The detail of the source's incomplete ``rows`` unit (a bad row never stops the run)."""
    col = collect(cfg, now=NOW)
    assert not col.complete
    (unit,) = col.units
    assert not unit.complete
    return unit.detail


# --- happy path ---------------------------------------------------------------------------------


def test_happy_path_builds_the_canonical_tables(tmp_path: Path) -> None:
    path = write_export(
        tmp_path / "niche.csv",
        ["Role", "User ID", "Full Name", "Email", "UPN", "Payroll", "Active", "Unmapped"],
        [
            ["Officer, Senior", "JSmith", "Smith, John", "j@a.example", "js@a", "100", "Yes", "x"],
            ["Viewer", "JSmith", "Smith, John", "j@a.example", "js@a", "100", "yes", "y"],
            ["Viewer", "  akhan ", " Khan, Aisha ", "", "", "", "inactive", ""],
        ],
    )  # fmt: skip
    cfg = source(
        path,
        {
            "username": "User ID",
            "display_name": "Full Name",
            "role": "Role",
            "mail": "Email",
            "upn": "UPN",
            "employee_id": "Payroll",
            "enabled": "Active",
        },
        application="Niche RMS",
    )
    col = collect(cfg, now=NOW)

    assert (col.source, col.kind, col.started, col.finished) == ("csv:niche", "csv", NOW, NOW)
    assert col.units == [CollectionUnit("rows", True, f"3 rows read from {path}", 3)]
    assert col.complete

    accounts = col.table("accounts")
    assert accounts.schema == ACCOUNTS_SCHEMA
    assert accounts.select(
        "source", "account_id", "username", "display_name", "mail", "upn", "employee_id",
        "kind", "enabled", "privileged", "sid_history",
    ).rows() == [
        ("csv:niche", "csv:niche:user:jsmith", "JSmith", "Smith, John", "j@a.example",
         "js@a", "100", "user", True, False, []),
        ("csv:niche", "csv:niche:user:akhan", "akhan", "Khan, Aisha", None, None, None,
         "user", False, False, []),
    ]  # fmt: skip

    groups = col.table("groups")
    assert groups.schema == GROUPS_SCHEMA
    assert groups.select(
        "source", "group_id", "name", "description", "kind", "scope", "mastered", "privileged",
        "owners",
    ).rows() == [
        ("csv:niche", "csv:niche:role:Officer, Senior", "Officer, Senior", "Niche RMS",
         "app-role", "application", "app", False, []),
        ("csv:niche", "csv:niche:role:Viewer", "Viewer", "Niche RMS", "app-role", "application",
         "app", False, []),
    ]  # fmt: skip

    memberships = col.table("memberships")
    assert memberships.schema == MEMBERSHIPS_SCHEMA
    assert memberships.rows() == [
        ("csv:niche", "csv:niche:role:Officer, Senior", "csv:niche:user:jsmith", "account", "csv"),
        ("csv:niche", "csv:niche:role:Viewer", "csv:niche:user:jsmith", "account", "csv"),
        ("csv:niche", "csv:niche:role:Viewer", "csv:niche:user:akhan", "account", "csv-disabled"),
    ]  # fmt: skip
    assert col.table("grants").schema == GRANTS_SCHEMA
    assert col.table("grants").height == 0


def test_group_name_defaults_to_source_name_and_minimal_mapping(tmp_path: Path) -> None:
    path = write_export(tmp_path / "s.csv", ["user", "role"], [["a", "Dispatcher"]])
    col = collect(source(path, {"username": "user", "role": "role"}), now=NOW)
    assert rows_of(col.table("groups"), "group_id", "name", "description") == [
        ("csv:niche:role:Dispatcher", "Dispatcher", "niche")
    ]
    accounts = col.table("accounts")
    assert rows_of(accounts, "account_id", "enabled", "display_name") == [
        ("csv:niche:user:a", None, None)
    ]


def test_header_matched_trimmed_and_case_insensitively(tmp_path: Path) -> None:
    path = write_text(tmp_path / "h.csv", " user id ,FULL NAME,role,ACTIVE\nbob,Bob,R,1\n")
    col = collect(source(path), now=NOW)
    assert rows_of(col.table("accounts"), "username", "display_name", "enabled") == [
        ("bob", "Bob", True)
    ]


def test_timestamps_default_to_the_utc_clock(tmp_path: Path) -> None:
    path = write_export(tmp_path / "t.csv", HEADER, [["a", "A", "R", "yes"]])
    before = datetime.now(UTC)
    col = collect(source(path))
    assert before <= col.started <= col.finished <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True), ("TRUE", True), ("Yes", True), ("1", True), ("Enabled", True),
        (" active ", True), ("false", False), ("No", False), ("0", False),
        ("DISABLED", False), ("Inactive", False), ("Y", True), ("n", False),
        ("Suspended", False), ("LOCKED", False), ("blocked", False), ("Deactivated", False),
        ("\u00a0No\u00a0", False),
    ],
)  # fmt: skip
def test_enabled_spellings(tmp_path: Path, value: str, expected: bool) -> None:
    path = write_export(tmp_path / "e.csv", HEADER, [["a", "A", "R", value]])
    assert collect(source(path), now=NOW).table("accounts")["enabled"].to_list() == [expected]


# --- encodings, delimiters, quoting -------------------------------------------------------------


def test_utf8_with_bom_and_welsh_names(tmp_path: Path) -> None:
    path = write_export(
        tmp_path / "bom.csv",
        HEADER,
        [["llyr", "Llŷr Jones", "Viewer", "yes"], ["sian", "Siân Evans", "Viewer", "yes"]],
        encoding="utf-8-sig",
    )
    assert path.read_bytes().startswith(b"\xef\xbb\xbfUser ID")
    col = collect(source(path), now=NOW)  # default encoding utf-8-sig strips the BOM
    assert rows_of(col.table("accounts"), "account_id", "display_name") == [
        ("csv:niche:user:llyr", "Llŷr Jones"),
        ("csv:niche:user:sian", "Siân Evans"),
    ]


def test_bom_tolerated_even_with_plain_utf8(tmp_path: Path) -> None:
    path = write_export(
        tmp_path / "bom.csv", HEADER, [["a", "Zoë", "R", "1"]], encoding="utf-8-sig"
    )
    col = collect(source(path, encoding="utf-8"), now=NOW)
    assert rows_of(col.table("accounts"), "display_name") == [("Zoë",)]


def test_cp1252_with_encoding_set(tmp_path: Path) -> None:
    names = ["Siân Evans", "Zoë Price", "José García", "Seán O'Brien"]
    path = write_export(
        tmp_path / "cp.csv",
        HEADER,
        [[f"u{i}", n, "Viewer", "yes"] for i, n in enumerate(names)],
        encoding="cp1252",
    )
    assert b"Si\xe2n" in path.read_bytes()
    col = collect(source(path, encoding="cp1252"), now=NOW)
    assert col.table("accounts")["display_name"].to_list() == names


def test_wrong_encoding_names_the_line_and_hints_encoding(tmp_path: Path) -> None:
    path = write_export(
        tmp_path / "cp.csv",
        HEADER,
        [["a", "Ann", "R", "yes"], ["b", "Bob", "R", "yes"], ["z", "Zoë", "R", "yes"]],
        encoding="cp1252",
    )
    message = error(InputFileError, source(path))
    assert f"{path}:4:" in message
    assert "eb" in message  # the offending byte (ë in cp1252)
    assert "utf-8-sig" in message
    assert 'encoding = "cp1252"' in message


def test_wrong_encoding_line_counts_quoted_newlines(tmp_path: Path) -> None:
    text = 'User ID,Full Name,Role,Active\r\na,"two\r\nlines",R,1\r\nb,Jos\xe9,R,1\r\n'
    path = write_text(tmp_path / "cp.csv", text, encoding="cp1252")
    assert f"{path}:4:" in error(InputFileError, source(path))


def test_unknown_encoding_is_a_config_error(tmp_path: Path) -> None:
    path = write_export(tmp_path / "x.csv", HEADER, [["a", "A", "R", "1"]])
    message = error(ConfigError, source(path, encoding="no-such-codec"))
    assert "no-such-codec" in message


def test_semicolon_delimiter(tmp_path: Path) -> None:
    path = write_export(
        tmp_path / "semi.csv",
        HEADER,
        [["a", "Khan; Aisha", "Call handler", "yes"], ["b", "Bob, Jr", "Call handler", "no"]],
        delimiter=";",
    )
    assert b'"Khan; Aisha"' in path.read_bytes()
    col = collect(source(path, delimiter=";"), now=NOW)
    assert rows_of(col.table("accounts"), "username", "display_name", "enabled") == [
        ("a", "Khan; Aisha", True),
        ("b", "Bob, Jr", False),
    ]


def test_wrong_delimiter_reports_missing_headers(tmp_path: Path) -> None:
    path = write_export(tmp_path / "semi.csv", HEADER, [["a", "A", "R", "1"]], delimiter=";")
    message = error(ConfigError, source(path))
    assert "'User ID'" in message and str(path) in message


def test_embedded_newline_and_quotes_in_quoted_field(tmp_path: Path) -> None:
    text = (
        "User ID,Full Name,Role,Active\n"
        'a,"Line one\nLine two, ""quoted""",Viewer,yes\n'
        "b,Bob,Viewer,yes\n"
    )
    path = write_text(tmp_path / "nl.csv", text)
    col = collect(source(path), now=NOW)
    assert rows_of(col.table("accounts"), "username", "display_name") == [
        ("a", 'Line one\nLine two, "quoted"'),
        ("b", "Bob"),
    ]
    assert col.units[0].count == 2


def test_bad_row_after_multiline_record_names_its_physical_line(tmp_path: Path) -> None:
    text = (
        "User ID,Full Name,Role,Active\r\n"  # 1
        'a,"one\r\ntwo\r\nthree",Viewer,yes\r\n'  # 2-4
        ",Nobody,Viewer,yes\r\n"  # 5
    )
    path = write_text(tmp_path / "nl.csv", text)
    message = bad_rows(source(path))
    assert message.startswith(f"{path}:5: empty username (column 'User ID')")


def test_multiline_bad_record_names_the_line_it_starts_on(tmp_path: Path) -> None:
    text = 'User ID,Full Name,Role,Active\na,A,R,1\nb,"multi\nline",R\n'
    path = write_text(tmp_path / "nl.csv", text)
    assert bad_rows(source(path)).startswith(f"{path}:3: row has 3 fields, the header has 4")


# --- de-duplication and case --------------------------------------------------------------------


def test_duplicate_rows_are_deduplicated(tmp_path: Path) -> None:
    row = ["a", "Ann", "Viewer", "yes"]
    path = write_export(tmp_path / "d.csv", HEADER, [row, row, ["a", "Ann", "Editor", "yes"], row])
    col = collect(source(path), now=NOW)
    assert col.units[0].count == 4
    assert col.table("accounts")["account_id"].to_list() == ["csv:niche:user:a"]
    assert col.table("groups")["group_id"].to_list() == [
        "csv:niche:role:Viewer",
        "csv:niche:role:Editor",
    ]
    assert rows_of(col.table("memberships"), "group_id", "member_id") == [
        ("csv:niche:role:Viewer", "csv:niche:user:a"),
        ("csv:niche:role:Editor", "csv:niche:user:a"),
    ]


def test_usernames_are_case_insensitive_first_spelling_kept(tmp_path: Path) -> None:
    path = write_export(
        tmp_path / "c.csv",
        HEADER,
        [["JSmith", "John", "Viewer", "yes"], ["jsmith", "john", "Editor", "no"],
         ["JSMITH ", "JOHN", "Viewer", "no"]],
    )  # fmt: skip
    col = collect(source(path), now=NOW)
    assert rows_of(col.table("accounts"), "account_id", "username", "display_name", "enabled") == [
        ("csv:niche:user:jsmith", "JSmith", "John", True)
    ]
    assert rows_of(col.table("memberships"), "group_id", "member_id") == [
        ("csv:niche:role:Viewer", "csv:niche:user:jsmith"),
        ("csv:niche:role:Editor", "csv:niche:user:jsmith"),
    ]


def test_roles_are_case_sensitive_and_trimmed(tmp_path: Path) -> None:
    path = write_export(
        tmp_path / "r.csv", HEADER, [["a", "A", " Viewer ", "1"], ["a", "A", "viewer", "1"]]
    )
    col = collect(source(path), now=NOW)
    assert col.table("groups")["group_id"].to_list() == [
        "csv:niche:role:Viewer",
        "csv:niche:role:viewer",
    ]


# --- bad input ----------------------------------------------------------------------------------

GOOD = "User ID,Full Name,Role,Active\r\na,Ann,Viewer,yes\r\n"


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ("b,Bob,Viewer", "row has 3 fields, the header has 4"),
        ("b,Bob,Viewer,yes,extra", "row has 5 fields, the header has 4"),
        (",Bob,Viewer,yes", "empty username (column 'User ID')"),
        ("   ,Bob,Viewer,yes", "empty username (column 'User ID')"),
        ("b,Bob,,yes", "empty role (column 'Role')"),
        ("b,Bob,\t ,yes", "empty role (column 'Role')"),
        ("b,Bob,Viewer,maybe", "enabled value (column 'Active') is not an accepted spelling"),
        ("b,Bob,Viewer,", "enabled value (column 'Active') is not an accepted spelling"),
        ('b,"Bob" Jr,Viewer,yes', "malformed CSV record"),
        ('b,"Bob,Viewer,yes', "malformed CSV record"),
    ],
)
def test_each_bad_row_names_file_and_line(tmp_path: Path, bad_line: str, problem: str) -> None:
    path = write_text(tmp_path / "bad.csv", GOOD + bad_line + "\r\nc,Cy,Viewer,no\r\n")
    message = bad_rows(source(path))
    assert message.startswith(f"{path}:3: {problem}"), message
    assert "the other rows were read" in message


def test_first_bad_row_named_and_others_counted(tmp_path: Path) -> None:
    text = GOOD + "b,B,Viewer,yes\r\nc,C,Viewer,nope\r\n,D,Viewer,yes\r\ne,E,Viewer\r\n"
    path = write_text(tmp_path / "bad.csv", text)
    message = bad_rows(source(path))
    assert message.startswith(f"{path}:4: enabled value (column 'Active')")
    assert "(2 more bad row(s) in the file)" in message


def test_width_error_later_than_value_error_is_not_named_first(tmp_path: Path) -> None:
    text = GOOD + ",B,Viewer,yes\r\nc,C\r\n"
    message = bad_rows(source(write_text(tmp_path / "bad.csv", text)))
    assert ":3: empty username" in message and "(1 more bad row(s)" in message


def test_blank_line_inside_data_is_a_bad_row(tmp_path: Path) -> None:
    path = write_text(tmp_path / "blank.csv", GOOD + "\r\nb,Bob,Viewer,yes\r\n")
    assert bad_rows(source(path)).startswith(f"{path}:3: blank line inside the data")


def test_trailing_blank_lines_are_ignored(tmp_path: Path) -> None:
    path = write_text(tmp_path / "t.csv", GOOD + "\r\n\r\n  \r\n,,,\r\n")
    col = collect(source(path), now=NOW)
    assert col.units[0].count == 1
    assert col.table("accounts")["account_id"].to_list() == ["csv:niche:user:a"]


def test_no_trailing_newline(tmp_path: Path) -> None:
    path = write_text(tmp_path / "t.csv", "User ID,Full Name,Role,Active\na,Ann,Viewer,yes")
    assert collect(source(path), now=NOW).units[0].count == 1


def test_header_only_file_gives_empty_tables(tmp_path: Path) -> None:
    path = write_export(tmp_path / "h.csv", HEADER, [])
    col = collect(source(path), now=NOW)
    assert col.units == [CollectionUnit("rows", True, f"0 rows read from {path}", 0)]
    assert col.table("accounts").schema == ACCOUNTS_SCHEMA
    assert [col.table(t).height for t in ("accounts", "groups", "memberships")] == [0, 0, 0]


def test_empty_file(tmp_path: Path) -> None:
    path = write_text(tmp_path / "empty.csv", "")
    message = error(InputFileError, source(path))
    assert message.startswith(f"{path}:1: no header row (the file is empty)")


def test_missing_header_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = write_export(tmp_path / "m.csv", ["User ID", "Full Name", "Active"], [["a", "A", "1"]])
    message = error(ConfigError, source(path))
    assert "'Role' (for role)" in message
    assert f"{path}:1: no column" in message
    # the header is counted, not quoted (a header-less file's first row is names)
    assert "the header row has 3 column(s)" in message
    assert "'User ID'" not in message


def test_several_missing_headers_are_all_named(tmp_path: Path) -> None:
    path = write_export(tmp_path / "m.csv", ["Login"], [["a"]])
    message = error(ConfigError, source(path))
    for header in ("'User ID'", "'Full Name'", "'Role'", "'Active'"):
        assert header in message


def test_duplicate_mapped_header_is_rejected(tmp_path: Path) -> None:
    path = write_export(tmp_path / "d.csv", [*HEADER, "role"], [["a", "A", "R", "1", "S"]])
    message = error(InputFileError, source(path))
    assert message.startswith(f"{path}:1: column 'Role' appears 2 times in the header")


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "niche.csv"
    message = error(InputFileError, source(path))
    assert str(path) in message and "not found" in message


def test_directory_instead_of_file(tmp_path: Path) -> None:
    assert str(tmp_path) in error(InputFileError, source(tmp_path))


def test_nul_byte_is_a_bad_row(tmp_path: Path) -> None:
    path = write_text(tmp_path / "nul.csv", GOOD + "b,B\x00b,Viewer,yes\r\n")
    assert bad_rows(source(path)).startswith(f"{path}:3: NUL character in column 'Full Name'")


def test_utf16_export(tmp_path: Path) -> None:
    path = write_export(
        tmp_path / "u16.csv", HEADER, [["llyr", "Llŷr", "R", "1"]], encoding="utf-16"
    )
    col = collect(source(path, encoding="utf-16"), now=NOW)
    assert rows_of(col.table("accounts"), "account_id", "display_name") == [
        ("csv:niche:user:llyr", "Llŷr")
    ]
    assert f"{path}:1:" in error(InputFileError, source(path))  # FF FE is not UTF-8
    message = error(InputFileError, source(path, encoding="cp1252"))
    assert message.startswith(f"{path}:1: the header contains NUL characters")
    assert 'encoding = "utf-16"' in message


def test_braces_in_column_names(tmp_path: Path) -> None:
    path = write_export(tmp_path / "b.csv", ["{user}", "{role}", "{value}"], [["a", "R", "x"]])
    cfg = source(path, {"username": "{user}", "role": "{role}", "enabled": "{value}"})
    assert "enabled value (column '{value}')" in bad_rows(cfg)


def test_a_bad_value_is_never_shown(tmp_path: Path) -> None:
    path = write_text(tmp_path / "esc.csv", GOOD + "b,B,Viewer,\x1b[31mred\r\n")
    message = bad_rows(source(path))
    assert message.startswith(f"{path}:3: enabled value (column 'Active')")
    assert "\x1b" not in message and "red" not in message


# --- untrusted values ---------------------------------------------------------------------------


def test_hostile_values_are_kept_verbatim(tmp_path: Path) -> None:
    hostile_name = '=HYPERLINK("http://evil.example","click")'
    hostile_role = "<script>alert(1)</script>"
    path = write_export(
        tmp_path / "h.csv",
        HEADER,
        [["+cmd|' /C calc'!A0", hostile_name, hostile_role, "yes"], ["@x", "-1+1", "R", "yes"]],
        quoting=csv.QUOTE_ALL,
    )
    col = collect(source(path), now=NOW)
    assert rows_of(col.table("accounts"), "account_id", "username", "display_name") == [
        ("csv:niche:user:+cmd|' /c calc'!a0", "+cmd|' /C calc'!A0", hostile_name),
        ("csv:niche:user:@x", "@x", "-1+1"),
    ]
    assert rows_of(col.table("groups"), "group_id", "name")[0] == (
        f"csv:niche:role:{hostile_role}",
        hostile_role,
    )


# --- size ---------------------------------------------------------------------------------------


def test_200k_rows(tmp_path: Path) -> None:
    n = 200_000
    lines = ["User ID,Full Name,Role,Active"]
    lines += [
        f"U{i % 50_000},User {i % 50_000},Role {i % 37},{'yes' if i % 3 else 'no'}"
        for i in range(n)
    ]
    path = write_text(tmp_path / "big.csv", "\r\n".join(lines) + "\r\n")
    col = collect(source(path), now=NOW)
    assert col.units[0].count == n
    assert col.table("accounts").height == 50_000
    assert col.table("groups").height == 37
    # user u gets roles i % 37 for i = u, u+50000, u+100000, u+150000: 4 distinct (37 ∤ 50000)
    assert col.table("memberships").height == 200_000
    # each (role, user) edge is one row: disabled where that row says "no" (i % 3 == 0)
    vias = col.table("memberships")["via"].value_counts().sort("via").rows()
    assert vias == [("csv", n - len(range(0, n, 3))), ("csv-disabled", len(range(0, n, 3)))]
    # a login is enabled when any of its rows is: U0's rows are i = 0 (no), 50000 (yes), ...
    first = col.table("accounts").row(0, named=True)
    assert (first["account_id"], first["username"], first["enabled"]) == (
        "csv:niche:user:u0",
        "U0",
        True,
    )
