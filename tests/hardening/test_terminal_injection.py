"""CR/LF, ANSI escapes, backspaces and bidi overrides in directory text never reach the
terminal or the logs raw: every line the command prints is one line, no control character."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from support.hardening_cli import (
    cli,
    incomplete_warning,
    run,
    sample_source_toml,
    toml_table,
    write_config,
)
from support.payloads import TERMINAL

from accessaudit.sample.apps import write_app_exports
from accessaudit.sample.directory import generate

#: What may not appear in anything printed: C0 controls but tab and newline, DEL, C1 controls
#: (incl. the 8-bit CSI), bidi overrides / isolates and zero-width characters.
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def _niche(folder: Path, hostile: bool, bad_row: bool = False) -> Path:
    paths = write_app_exports(generate(seed=7, accounts=300, apps=True), folder)
    rows = list(csv.reader(io.StringIO(paths["niche"].read_text(encoding="utf-8-sig"))))
    header, body = rows[0], rows[1:]
    if hostile:
        for i, row in enumerate(body):
            payload = TERMINAL[i % len(TERMINAL)]
            row[1] = row[1] + payload  # Full Name
            row[2] = row[2] + payload  # Role: becomes the application group's name
    if bad_row:
        body.append(["badrow\x1b[2J\r\naccessaudit: error: forged", "x", "Investigator", "maybe"])
    out = io.StringIO()
    csv.writer(out).writerows([header, *body])
    paths["niche"].write_text(out.getvalue(), encoding="utf-8")
    return paths["niche"]


def _csv_source(path: Path) -> str:
    return toml_table(
        "sources",
        {
            "kind": "csv",
            "name": "niche",
            "path": str(path),
            "correlate_on": "username",
            "columns": {
                "username": "User ID",
                "role": "Role",
                "display_name": "Full Name",
                "enabled": "Active",
            },
        },
    )


def _clean(stream: str, *, one_line_fields: bool = True) -> None:
    bad = sorted({hex(ord(c)) for c in RAW.findall(stream)})
    assert bad == [], (bad, stream[:2000])
    if one_line_fields:  # a CR/LF in a name never starts a line of its own
        starts = ("accessaudit: error: forged", "accessaudit: 0 findings")
        assert not [ln for ln in stream.splitlines() if ln.startswith(starts)]


def test_hostile_names_in_a_full_run(tmp_path: Path) -> None:
    niche = _niche(tmp_path / "exports", hostile=True)
    config = write_config(tmp_path, sample_source_toml(300) + "\n" + _csv_source(niche))
    log = tmp_path / "run.jsonl"
    p = run(config, "--fail-on", "none", "--json-log", str(log))
    assert p.returncode == 0, p.stderr
    _clean(p.stdout)
    _clean(p.stderr)
    assert "remediation actions; the first (worst, then most resolved):" in p.stdout
    for line in log.read_text(encoding="utf-8").splitlines():
        assert not RAW.search(line)
        json.loads(line)
    for command in (["runs"], ["verify"], ["exceptions", "check"]):
        q = cli(*command, "--config", str(config))
        _clean(q.stdout + q.stderr)


def test_hostile_value_in_an_error_line(tmp_path: Path) -> None:
    niche = _niche(tmp_path / "exports", hostile=False, bad_row=True)
    config = write_config(tmp_path, sample_source_toml(300) + "\n" + _csv_source(niche))
    p = run(config)
    assert p.returncode == 3  # a bad row marks its source incomplete, never stops the run
    line = incomplete_warning(p)
    _clean(p.stderr)
    assert "niche-users.csv" in line


@pytest.mark.parametrize("payload", TERMINAL, ids=range(len(TERMINAL)))
def test_hostile_site_rule_text_in_rule_listings(tmp_path: Path, payload: str) -> None:
    """Rule titles and texts (site rule folders) are printed by `rules list/show`."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "odd-rule.toml").write_text(
        "\n".join(
            [
                'id = "odd-rule"',
                'version = "1.0"',
                f"title = {json.dumps('Odd ' + payload)}",
                'severity = "low"',
                'action = "review-attribution"',
                f"rationale = {json.dumps(payload)}",
                f"remediation = {json.dumps(payload)}",
                'key = ["account_id", "group_id"]',
                'query = "SELECT account_id, CAST(NULL AS VARCHAR) AS group_id FROM accounts"',
                "[[examples]]",
                'name = "any account"',
                'accounts = [{ id = "a1" }]',
                'expect = [["a1", ""]]',
                "[[examples]]",
                'name = "no accounts"',
                "expect = []",
            ]
        )
    )
    config = write_config(tmp_path, sample_source_toml(200), audit={"rules_dirs": [str(folder)]})
    for command in (["rules", "list"], ["rules", "show", "odd-rule"]):
        q = cli(*command, "--config", str(config))
        assert q.returncode == 0, q.stderr
        # a rationale is multi-line text: its line breaks stay, nothing else does
        _clean(q.stdout + q.stderr, one_line_fields=command[1] == "list")
        assert "Odd " in q.stdout
