"""`accessaudit exceptions check`: the register's entries and states, or a one-line error."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from accessaudit.cli import main

ROOT = Path(__file__).resolve().parents[1]

REGISTER = """
[[exception]]
id = "EX-1"
rule = "mixed-group"
objects = ["WMP-PRJ-*"]
justification = "Joint firearms licensing continues until the split"
agreement = "TSA schedule 2, clause 4.1"
expires = 2027-03-31
approvers = [{ org = "wmp", name = "A" }, { org = "warks", name = "B" }]

[[exception]]
id = "EX-2"
rule = "cross-org-direct-member"
objects = ["svc-*"]
justification = "Legacy print service"
agreement = "TSA schedule 5, clause 1.2"
expires = 2026-12-31
agreement_ends = 2026-06-30
approvers = [{ org = "wmp", name = "A" }, { org = "warks", name = "B" }]
"""


def config(tmp_path: Path, register: str) -> Path:
    head = (
        (ROOT / "config.example.toml").read_text().partition("# Active Directory (or OpenLDAP")[0]
    )
    head = head.replace(
        '# exceptions_file = "exceptions.toml"', 'exceptions_file = "exceptions.toml"'
    )
    assert 'exceptions_file = "exceptions.toml"' in head
    (tmp_path / "exceptions.toml").write_text(register)
    (tmp_path / "config.toml").write_text(head)
    return tmp_path / "config.toml"


def test_check_lists_states(tmp_path: Path) -> None:
    cfg = config(tmp_path, REGISTER)
    r = CliRunner().invoke(main, ["exceptions", "check", "-c", str(cfg), "--on", "2026-11-01"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split()[:6] == ["EX-1", "mixed-group", "in", "force", "until", "2027-03-31"]
    assert "(150 days)" in lines[0]
    assert lines[1].split()[:5] == [
        "EX-2",
        "cross-org-direct-member",
        "EXPIRED",
        "on",
        "2026-06-30",
    ]
    assert lines[2].startswith("2 exception(s); register sha256 ")


def test_check_reports_a_malformed_register_in_one_line(tmp_path: Path) -> None:
    cfg = config(
        tmp_path, REGISTER.replace('{ org = "warks", name = "B" }', '{ org = "warks" }', 1)
    )
    r = CliRunner().invoke(main, ["exceptions", "check", "-c", str(cfg)])
    assert r.exit_code == 2
    assert r.output.count("\n") == 1
    assert "exceptions.toml:9: exception 'EX-1': each approver needs an org and a name" in r.output
