"""The exports as the identity team works them: names beside ids, worst and most effective
actions first, finding keys on a sheet of their own, tracking columns kept between runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from accessaudit.errors import InputFileError
from accessaudit.report import tracking
from accessaudit.report.exports import XLSX_MAX_CELL_CHARS, write_xlsx
from accessaudit.report.worklist import (
    ACTION_LEAD,
    TRACKING_COLUMNS,
    actions_sheet,
    finding_keys_sheet,
    findings_sheet,
    object_names,
    split_sheets,
    worklist_order,
)

ACCOUNTS = pl.DataFrame(
    {
        "account_id": ["a1", "a2", "a3"],
        "display_name": ["Ada Byron", None, None],
        "upn": ["ada@wmp", "bob@warks", None],
        "username": ["ada", "bob", "svc_x"],
    }
)
GROUPS = pl.DataFrame({"group_id": ["g1", "g2"], "name": ["Firearms", "=HYPERLINK(1)"]})


def _actions() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "action_id": ["act-shared", "act-low", "act-crit-1", "act-crit-9", "act-high"],
            "kind": [
                "decide-shared-account",
                "remove-member",
                "unnest-group",
                "remove-member",
                "remove-member",
            ],
            "severity": ["medium", "low", "critical", "critical", "high"],
            "group_id": [None, "g1", "g1", "g2", "g2"],
            "member_id": ["a3", "a1", "g2", "a2", "nobody"],
            "resource_id": [None, None, None, None, None],
            "right": [None, None, None, None, None],
            "system": ["ad"] * 5,
            "owning_org": ["shared", "wmp", "wmp", "warks", "warks"],
            "resolves": [15, 1, 1, 261, 3],
            "finding_keys": [["k1"], ["k2"], ["k3"], [f"key-{i:06d}" for i in range(261)], ["k4"]],
            "summary": ["s"] * 5,
        },
        schema_overrides={"resource_id": pl.String, "right": pl.String},
    )


def test_object_names_prefer_what_a_person_calls_the_object() -> None:
    names = dict(object_names(ACCOUNTS, GROUPS).iter_rows())
    assert names == {
        "a1": "Ada Byron",  # display name first
        "a2": "bob@warks",  # then the sign-in name
        "a3": "svc_x",  # then the account name
        "g1": "Firearms",
        "g2": "=HYPERLINK(1)",  # raw here; the writers neutralise it
    }


def test_findings_get_a_name_beside_every_id() -> None:
    findings = pl.DataFrame(
        {
            "finding_key": ["f1", "f2"],
            "account_id": ["a1", "zz"],
            "group_id": ["g1", "g2"],
            "member_group_id": [None, "g1"],
            "via_group_id": ["g2", None],
            "resource_id": [None, "role-x"],
        },
        schema_overrides={"member_group_id": pl.String, "resource_id": pl.String},
    )
    out = findings_sheet(findings, object_names(ACCOUNTS, GROUPS))
    assert out.columns == [
        *("finding_key", "account_id", "account_name", "group_id", "group_name"),
        *("member_group_id", "member_group_name", "via_group_id", "via_group_name"),
        *("resource_id", "resource_name"),
    ]
    assert out.rows() == [
        ("f1", "a1", "Ada Byron", "g1", "Firearms", None, None, "g2", "=HYPERLINK(1)", None, None),
        ("f2", "zz", None, "g2", "=HYPERLINK(1)", "g1", "Firearms", None, None, "role-x", None),
    ]


def test_worklist_order_is_severity_then_findings_resolved_never_force() -> None:
    ordered = worklist_order(_actions())["action_id"].to_list()
    # critical first, the un-nest resolving 261 findings above the one resolving 1; the
    # "shared" force's medium action does not float up because "shared" sorts first
    assert ordered == ["act-crit-9", "act-crit-1", "act-high", "act-shared", "act-low"]


def test_actions_sheet_leads_with_readable_columns_and_tracking() -> None:
    tracked = pl.DataFrame(
        {
            "action_id": ["act-low", "gone-action"],
            "status": ["in progress", "done"],
            "owner": ["J. Smith", None],
            "ticket": ["CHG-1", None],
            "done": [None, "2026-12-01"],
            "notes": ["waiting for the app owner", None],
        },
        schema_overrides={"owner": pl.String, "ticket": pl.String, "done": pl.String},
    )
    sheet = actions_sheet(_actions(), object_names(ACCOUNTS, GROUPS), tracked)
    lead = [c for c in ACTION_LEAD if c in sheet.columns]
    assert sheet.columns[: len(lead)] == lead
    assert lead[:6] == ["severity", "kind", "owning_org", "summary", "group_name", "member_name"]
    row = sheet.filter(pl.col("action_id") == "act-low").row(0, named=True)
    assert (row["group_name"], row["member_name"]) == ("Firearms", "Ada Byron")
    assert {c: row[c] for c in TRACKING_COLUMNS} == {
        "status": "in progress",
        "owner": "J. Smith",
        "ticket": "CHG-1",
        "done": None,
        "notes": "waiting for the app owner",
    }
    untracked = sheet.filter(pl.col("action_id") == "act-high").row(0, named=True)
    assert all(untracked[c] is None for c in TRACKING_COLUMNS)
    assert sheet.height == 5  # a tracked action that has gone adds no row


def test_finding_keys_get_their_own_sheet_uncut(tmp_path: Path) -> None:
    actions = _actions().with_columns(
        finding_keys=pl.when(pl.col("action_id") == "act-crit-9")
        .then(pl.lit([f"cross-org-nested-access:{'x' * 120}:{i}" for i in range(400)]))
        .otherwise(pl.col("finding_keys"))
    )
    joined = len("; ".join(actions.filter(pl.col("action_id") == "act-crit-9")["finding_keys"][0]))
    assert joined > XLSX_MAX_CELL_CHARS  # what used to be cut silently
    sheets = split_sheets(actions_sheet(actions, object_names(ACCOUNTS, GROUPS), None))
    sheets["finding keys"] = finding_keys_sheet(actions)
    book = openpyxl.load_workbook(write_xlsx(sheets, tmp_path / "a.xlsx"), read_only=True)
    assert book.sheetnames == ["actions-shared", "actions-warks", "actions-wmp", "finding keys"]
    keys = list(book["finding keys"].iter_rows(min_row=2, values_only=True))
    assert len(keys) == 400 + 4
    assert sum(1 for a, _ in keys if a == "act-crit-9") == 400
    header = next(book["actions-warks"].iter_rows(max_row=1, values_only=True))
    assert "finding_keys" not in header and header[:3] == ("severity", "kind", "owning_org")


def _edited_workbook(path: Path, edits: dict[str, dict[str, object]]) -> Path:
    sheets = split_sheets(actions_sheet(_actions(), object_names(ACCOUNTS, GROUPS), None))
    write_xlsx(sheets, path)
    book = openpyxl.load_workbook(path)
    for ws in book.worksheets:
        header = [c.value for c in ws[1]]
        for row in ws.iter_rows(min_row=2):
            edit = edits.get(str(row[header.index("action_id")].value), {})
            for column, value in edit.items():
                row[header.index(column)].value = value
    book.save(path)
    return path


def test_import_reads_every_sheet_and_merging_never_erases(tmp_path: Path) -> None:
    first = _edited_workbook(
        tmp_path / "first.xlsx",
        {"act-crit-9": {"status": "in progress", "owner": "Team A"}, "act-low": {"ticket": 42}},
    )
    imported = tracking.read_workbook(first)
    assert sorted(imported.select("action_id", "status", "owner", "ticket").rows()) == [
        ("act-crit-9", "in progress", "Team A", None),
        ("act-low", None, None, "42"),  # a number typed in a cell is kept as its text
    ]
    assert tracking.merge(tmp_path, imported) == 2
    # an older copy with nothing written cannot clear the notes; a newer edit replaces its row
    later = _edited_workbook(tmp_path / "later.xlsx", {"act-crit-9": {"status": "done"}})
    tracking.merge(tmp_path, tracking.read_workbook(later))
    stored = tracking.load(tmp_path).sort("action_id")
    assert stored.select("action_id", "status", "owner", "ticket").rows() == [
        ("act-crit-9", "done", None, None),
        ("act-low", None, None, "42"),
    ]
    assert (tmp_path / tracking.TRACKING_FILE).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"status,action_id\n", "not an Excel workbook"),
        (None, "no such file"),
    ],
)
def test_import_errors_name_the_file(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "edited.xlsx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputFileError) as err:
        tracking.read_workbook(path)
    assert str(path) in err.value.message and message in err.value.message


def test_import_without_action_ids_is_an_error(tmp_path: Path) -> None:
    path = write_xlsx({"x": pl.DataFrame({"status": ["done"]})}, tmp_path / "x.xlsx")
    with pytest.raises(InputFileError, match=r"x\.xlsx:1: no sheet has an action_id column"):
        tracking.read_workbook(path)


def test_damaged_tracking_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / tracking.TRACKING_FILE).write_text("{not json")
    with pytest.raises(InputFileError, match="damaged tracking file"):
        tracking.load(tmp_path)


def test_edited_status_survives_the_next_runs_export(tmp_path: Path) -> None:
    """A team edits the run's actions.xlsx, imports it; the next run's exports carry it."""
    from accessaudit.pipeline.demo import prepare_demo
    from accessaudit.pipeline.run import run_audit

    settings = prepare_demo(tmp_path / "demo", accounts=600, seed=7)
    first = run_audit(settings)
    actions = pl.read_parquet(first.run.path / "actions.parquet")
    chosen = actions.sort("action_id")["action_id"].head(2).to_list()
    edited = tmp_path / "edited.xlsx"
    book = openpyxl.load_workbook(first.run.path / "actions.xlsx")
    for ws in book.worksheets:
        header = [c.value for c in ws[1]]
        if "action_id" not in header or ws.title == "finding keys":
            continue
        for row in ws.iter_rows(min_row=2):
            if row[header.index("action_id")].value in chosen:
                row[header.index("status")].value = "in progress"
                row[header.index("notes")].value = "@SUM(1+1)*cmd|' /C calc'!A0"
    book.save(edited)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[audit]\ndata_dir = "{settings.audit.data_dir}"\n'
        '[[organisations]]\nid = "wmp"\nname = "West Mercia"\n'
        '[[organisations]]\nid = "warks"\nname = "Warwickshire"\n'
        '[[sources]]\nkind = "sample"\nname = "s"\nhost = "wmp"\n'
    )
    p = subprocess.run(
        [sys.executable, "-m", "accessaudit", "worklist", "import", str(edited), "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == f"2 action(s) updated from {edited}"

    second = run_audit(settings)
    exported = pl.read_csv(second.run.path / "actions.csv", encoding="utf8-lossy")
    got = exported.filter(pl.col("status").is_not_null()).sort("action_id")
    assert got["action_id"].to_list() == sorted(chosen)
    assert got["status"].to_list() == ["in progress", "in progress"]
    # text typed by someone, neutralised on the way out
    assert got["notes"].to_list() == ["'@SUM(1+1)*cmd|' /C calc'!A0"] * 2
    # the tracking columns name people (owners, notes): a pseudonymised run leaves them empty
    report = settings.report.model_copy(update={"pseudonymise": True})
    third = run_audit(settings.model_copy(update={"report": report}))
    shared = pl.read_csv(third.run.path / "actions.csv", encoding="utf8-lossy")
    assert shared["status"].null_count() == shared.height
    assert shared["notes"].null_count() == shared.height


def test_a_damaged_tracking_file_stops_the_run_before_anything_is_collected(
    tmp_path: Path,
) -> None:
    from accessaudit.pipeline.demo import prepare_demo
    from accessaudit.pipeline.run import run_audit

    settings = prepare_demo(tmp_path / "demo", accounts=600, seed=7)
    settings.audit.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.audit.data_dir / tracking.TRACKING_FILE).write_text("{damaged")
    with pytest.raises(InputFileError, match="damaged tracking file"):
        run_audit(settings)
    assert not (settings.audit.data_dir / "runs").exists()
