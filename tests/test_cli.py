"""The command line as a user runs it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from support.example_config import without_source_matchers

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accessaudit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def assert_one_line_error(p: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert p.returncode == code, p.stderr
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("accessaudit: error:")]
    assert len(lines) == 1 and text in lines[0], p.stderr


def test_version_and_help() -> None:
    p = cli("--version")
    assert p.returncode == 0 and p.stdout.startswith("accessaudit, version ")
    p = cli("--help")
    assert p.returncode == 0
    for command in ("demo", "run", "report", "runs", "rules"):
        assert command in p.stdout


def test_demo_writes_run_and_report(tmp_path: Path) -> None:
    p = cli("demo", "--accounts", "800", "--seed", "3", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = tmp_path / "accessaudit-demo"
    assert (out / "report.html").is_file()
    [run] = list((out / "runs").iterdir())
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert f"report:     {(out / 'report.html').resolve()}" in p.stdout
    assert f"Run {manifest['run_id']}  (complete)" in p.stdout
    assert "critical" in p.stdout and "remediation actions" in p.stdout
    # --fail-on: open critical findings exist in the sample -> exit 1
    p = cli(
        "demo", "--accounts", "800", "--out", str(tmp_path / "b"), "--fail-on", "critical", "-q"
    )
    assert p.returncode == 1 and p.stdout == ""
    # re-render the stored run's report
    p = cli("report", str(run), "--out", str(tmp_path / "again.html"))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "again.html").stat().st_size > 10_000


def test_run_with_config(tmp_path: Path) -> None:
    cfg = (ROOT / "config.example.toml").read_text()
    # keep only the sample source
    head, _, _ = cfg.partition("# Active Directory (or OpenLDAP")
    (tmp_path / "config.toml").write_text(head.replace("accounts = 6000", "accounts = 500"))
    p = cli("run", "--config", "config.toml", "--fail-on", "none", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    p = cli("run", "--config", "config.toml", cwd=tmp_path)  # fail_on = "high" in the config
    assert p.returncode == 1, p.stderr
    p = cli("runs", "--config", "config.toml", cwd=tmp_path)
    assert p.returncode == 0 and p.stdout.count("complete") == 2
    header, first, second = p.stdout.splitlines()
    assert header.split()[:9] == [
        "run", "state", "open", "unknown", "critical", "high", "new", "resolved", "regressed"
    ]  # fmt: skip
    # each count sits right-aligned under its header; the second run found nothing new
    new_end = header.index("new") + len("new")
    assert first[new_end - 3 : new_end].strip() == first.split()[2]  # all new in run 1
    assert second[new_end - 3 : new_end].strip() == "0"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[audit]\ncolour = 1\n", "config.toml:2: audit.colour: unknown key"),
        ("not toml [", "config.toml: "),
    ],
)
def test_bad_config_is_one_line_exit_2(tmp_path: Path, config: str, message: str) -> None:
    (tmp_path / "config.toml").write_text(config)
    assert_one_line_error(cli("run", "--config", "config.toml", cwd=tmp_path), 2, message)


def test_missing_config(tmp_path: Path) -> None:
    assert_one_line_error(cli("run", cwd=tmp_path), 2, "config file config.toml not found")


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    cfg = (ROOT / "config.example.toml").read_text()
    head, _, _ = cfg.partition("# The embedded synthetic")
    (tmp_path / "config.toml").write_text(
        without_source_matchers(head)
        + '[[sources]]\nkind = "ldap"\nname = "dc"\nservers = ["ldaps://127.0.0.1:1"]\n'
        + 'base_dn = "DC=alliance,DC=local"\nconnect_timeout = 2\nhost = "wmp"\n'
    )
    p = cli("run", "--config", "config.toml", cwd=tmp_path)
    assert_one_line_error(p, 2, "127.0.0.1")
    assert not (tmp_path / "accessaudit-data" / "runs").exists() or not any(
        (tmp_path / "accessaudit-data" / "runs").iterdir()
    )


def test_rules_commands(tmp_path: Path) -> None:
    p = cli("rules", "list")
    assert p.returncode == 0 and len(p.stdout.splitlines()) >= 8
    assert p.stdout.splitlines()[0].split()[0] == "conflicting-attribution"
    p = cli("rules", "show", "mixed-group")
    assert p.returncode == 0 and "min_share = 0.1" in p.stdout and "SELECT" in p.stdout
    assert_one_line_error(cli("rules", "show", "nope"), 2, "no rule 'nope'")
    p = cli("rules", "test")
    assert p.returncode == 0 and p.stdout.rstrip().endswith(" passed, 0 failed")
    bad = tmp_path / "site"
    bad.mkdir()
    (bad / "broken.toml").write_text('id = "broken"\ntitle = \n')
    (tmp_path / "c.toml").write_text(
        '[audit]\nrules_dirs = ["site"]\n[[organisations]]\nid = "a"\nname = "A"\n'
        '[[organisations]]\nid = "b"\nname = "B"\n[[sources]]\nkind = "sample"\nname = "s"\n'
        'host = "a"\n'
    )
    assert_one_line_error(
        cli("rules", "test", "--config", str(tmp_path / "c.toml")), 2, "broken.toml"
    )


SITE_CONFIG = (
    '[audit]\nrules_dirs = ["site"]\n[[organisations]]\nid = "a"\nname = "A"\n'
    '[[organisations]]\nid = "b"\nname = "B"\n[[sources]]\nkind = "sample"\nname = "s"\n'
    'host = "a"\n'
)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace('version = "1.0"\n', 'version = "1.0"\ncolour = "red"\n'),
            ":3: unknown key 'colour'",
        ),
        (lambda t: t.replace("FROM composition", "FROM nowhere"), ": query failed"),
        (lambda t: t.replace("SELECT group_id,", "SELEC group_id,"), ": query failed"),
        (lambda t: t.partition("[[examples]]")[0], ": no positive example"),
    ],
)
def test_bad_site_rule_is_one_line_exit_2(
    tmp_path: Path, edit: Callable[[str], str], message: str
) -> None:
    text = (ROOT / "rules" / "mixed-group.toml").read_text()
    assert edit(text) != text
    site = tmp_path / "site"
    site.mkdir()
    rule = site / "site-mixed.toml"
    rule.write_text(edit(text.replace('id = "mixed-group"', 'id = "site-mixed"')))
    (tmp_path / "c.toml").write_text(SITE_CONFIG)
    p = cli("rules", "test", "--config", str(tmp_path / "c.toml"))
    assert_one_line_error(p, 2, f"{rule}{message}")


#: A site rule whose examples pass (numeric usernames) but whose strict cast fails on the real
#: sample's usernames while the rules are evaluated: polars raises InvalidOperationError, not an
#: AuditError. Nothing in the code foresees it, as with a bug.
BAD_CAST_RULE = '''id = "bad-cast"
version = "1.0"
title = "Numeric usernames"
severity = "low"
action = "review-attribution"
rationale = "Fails at evaluation time on alphabetic usernames."
remediation = "None."
key = ["account_id", "group_id"]
query = """
SELECT account_id, CAST(NULL AS VARCHAR) AS group_id,
       CAST(CAST(username AS INTEGER) AS VARCHAR) AS detail
FROM accounts WHERE enabled
"""

[[examples]]
name = "a numeric username"
accounts = [{ id = "1001" }]
expect = [["1001", ""]]

[[examples]]
name = "a disabled account"
accounts = [{ id = "1002", enabled = false }]
expect = []
'''


def test_an_internal_error_is_one_line_exit_2_and_logged(tmp_path: Path) -> None:
    """Exit 1 means "findings" (cron and the systemd unit treat it as success): a crash must
    exit 2, in one line, with an error event in the JSON log and the audit log."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "bad-cast.toml").write_text(BAD_CAST_RULE)
    head, _, _ = (ROOT / "config.example.toml").read_text().partition("# Active Directory (or")
    assert head.count("rules_dirs = []") == 1
    head = head.replace("rules_dirs = []", 'rules_dirs = ["site"]')
    (tmp_path / "config.toml").write_text(head.replace("accounts = 6000", "accounts = 300"))
    assert cli("rules", "test", "-c", str(tmp_path / "config.toml")).returncode == 0

    def run(*debug: str, **env: str) -> subprocess.CompletedProcess[str]:
        args = [*debug, "run", "-c", "config.toml", "-q", "--json-log", "run.jsonl"]
        clean = {k: v for k, v in os.environ.items() if k != "ACCESSAUDIT_DEBUG"}
        return subprocess.run(
            [sys.executable, "-m", "accessaudit", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**clean, **env},
            stdin=subprocess.DEVNULL,
            timeout=300,
            check=False,
        )

    p = run()
    assert p.returncode == 2, p.stderr
    assert p.stdout == "" and "Traceback" not in p.stderr and 'File "' not in p.stderr
    [line] = p.stderr.splitlines()
    assert line.startswith(
        "accessaudit: error: internal error: InvalidOperationError: conversion from `str` to"
    ), line
    assert line.endswith(
        "(please report; details in the traceback printed with --debug or ACCESSAUDIT_DEBUG=1)"
    ), line
    data = tmp_path / "accessaudit-data"
    assert not (data / "runs").exists() or not any((data / "runs").iterdir())
    log = [json.loads(x) for x in (tmp_path / "run.jsonl").read_text().splitlines()]
    audit = [json.loads(x) for x in (data / "audit-log.jsonl").read_text().splitlines()]
    for events in (log, audit):
        assert events[0]["event"] == "start"
        error = events[-1]
        assert error["event"] == "error", events
        assert (error["exit_code"], error["error"], error["internal"]) == (
            2,
            "InvalidOperationError",
            True,
        )
        # polars quoted usernames in its message; neither log may hold directory text
        assert error["message"] == "internal error: InvalidOperationError (please report)"

    # the traceback, on stderr only, when asked for
    for p in (run(ACCESSAUDIT_DEBUG="1"), run("--debug")):
        assert p.returncode == 2
        assert p.stderr.startswith("Traceback (most recent call last):\n")
        assert "in evaluate" in p.stderr  # where it happened: accessaudit/engine/evaluate.py
        last = p.stderr.splitlines()[-1]
        assert last.startswith("accessaudit: error: internal error: InvalidOperationError: ")
        assert last.endswith("(please report; details in the traceback above)")


def test_no_progress_display_off_a_terminal(tmp_path: Path) -> None:
    """Captured output (a pipe, as under cron) has plain stage lines: no cursor movement,
    carriage returns or colour, so logs and mail stay readable."""
    p = cli("demo", "--accounts", "400", "--out", str(tmp_path / "d"), "--fail-on", "none")
    assert p.returncode == 0, p.stderr
    assert "  - collecting alliance (sample)\n" in p.stderr
    for text in (p.stdout, p.stderr):
        assert "\x1b" not in text and "\r" not in text
        assert not any(ch in text for ch in "⠋⠙⠹━")  # spinner frames, bar segments
