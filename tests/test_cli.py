"""The command line as a user runs it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

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
        head
        + '[[sources]]\nkind = "ldap"\nname = "dc"\nservers = ["ldaps://127.0.0.1:1"]\n'
        + 'base_dn = "DC=alliance,DC=local"\nconnect_timeout = 2\n'
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
    )
    assert_one_line_error(
        cli("rules", "test", "--config", str(tmp_path / "c.toml")), 2, "broken.toml"
    )


SITE_CONFIG = (
    '[audit]\nrules_dirs = ["site"]\n[[organisations]]\nid = "a"\nname = "A"\n'
    '[[organisations]]\nid = "b"\nname = "B"\n[[sources]]\nkind = "sample"\nname = "s"\n'
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
