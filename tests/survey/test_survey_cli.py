"""``accessaudit survey`` end to end on the legacy sample: the terminal table, the JSON and the
proposals (owner-only), --write leaving the file's own bytes as they were, --check against the
[survey] thresholds, a stored run read with --run, and configuration mistakes named by line."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

CONFIG = """\
[audit]
data_dir = "data"

[[organisations]]
id = "wmp"
name = "West Mercia Police"
[organisations.match]
ou = ["OU=West Mercia,DC=alliance,DC=local"]
privileged_groups = true

[[organisations]]
id = "warks"
name = "Warwickshire Police"
[organisations.match]
ou = ["OU=Warwickshire,DC=alliance,DC=local"]

[[organisations]]
id = "shared"
name = "Shared services"
[organisations.match]
ou = ["OU=Shared Services,DC=alliance,DC=local"]
owner = false

[[sources]]
kind = "sample"
name = "legacy"
accounts = 1500
legacy = true
host = "wmp"
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accessaudit", *args],
        capture_output=True, text=True, cwd=cwd, timeout=300, check=False,
    )  # fmt: skip


def test_survey_json_proposals_write_and_check(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG.rstrip("\n"))  # no final newline: --write adds one, changes nothing
    cfg.chmod(0o640)
    original = cfg.read_bytes()
    p = cli(
        "survey", "-c", "config.toml", "--json", "s.json", "--proposals", "p.toml", cwd=tmp_path
    )
    assert p.returncode == 0, p.stderr
    assert "accounts: attribution coverage by signal" in p.stdout
    assert "accounts: proposed matchers" in p.stdout
    assert "OU=Warwickshire Constabulary" in p.stdout
    for name in ("s.json", "p.toml"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
    doc = json.loads((tmp_path / "s.json").read_text())
    accounts = doc["accounts"]
    totals = accounts["totals"]
    assert totals["objects"] == 1504  # 1500 and the four signal-less service accounts
    assert totals["unattributed_with_access"] > 50
    assert accounts["after_proposals"]["unattributed_with_access"] < 0.01 * totals["with_access"]
    assert all(len(x["moved"]) == x["moves"] for x in accounts["proposals"])
    proposals = tomllib.loads((tmp_path / "p.toml").read_text())["matchers"]
    assert len(proposals) == len(accounts["proposals"]) + len(doc["groups"]["proposals"])
    assert cfg.read_bytes() == original  # nothing written to the configuration without --write

    p = cli("survey", "-c", "config.toml", "--check", "-q", cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    p = cli("survey", "-c", "config.toml", "--check", cwd=tmp_path)
    line = f"check: {totals['unattributed_with_access']} unattributed accounts hold access"
    assert p.returncode == 1 and line in p.stdout

    p = cli("survey", "-c", "config.toml", "--write", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    written = cfg.read_bytes()
    assert written.startswith(original + b"\n\n# accessaudit survey ")
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o640
    assert len(tomllib.loads(written.decode())["matchers"]) == len(proposals)
    p = cli("survey", "-c", "config.toml", "--json", "again.json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    again = json.loads((tmp_path / "again.json").read_text())["accounts"]
    assert again["proposals"] == []
    assert again["totals"] == accounts["after_proposals"]

    thresholds = (
        f"\n[survey]\nmax_unattributed_accounts = {again['totals']['unattributed_with_access']}\n"
        f"max_conflicting_accounts = {again['totals']['conflicting_with_access']}\n"
        "max_unattributed_groups = 1000\nmax_conflicting_groups = 1000\n"
    )
    cfg.write_bytes(written + thresholds.encode())
    p = cli("survey", "-c", "config.toml", "--check", "-q", cwd=tmp_path)
    assert p.returncode == 0, p.stderr


def test_survey_reads_a_stored_run(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG)
    p = cli("run", "-c", "config.toml", "-q", "--fail-on", "none", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    [run] = list((tmp_path / "data" / "runs").iterdir())
    p = cli("survey", "-c", "config.toml", "--run", str(run), "--json", "r.json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    p = cli("survey", "-c", "config.toml", "--json", "c.json", cwd=tmp_path)
    stored = json.loads((tmp_path / "r.json").read_text())
    collected = json.loads((tmp_path / "c.json").read_text())
    assert stored["tables"] == f"run {run.name}" and collected["tables"] == "collected now"
    for kind in ("accounts", "groups"):
        assert stored[kind]["totals"] == collected[kind]["totals"]
        assert stored[kind]["proposals"] == collected[kind]["proposals"]


def test_survey_settings_are_checked_with_their_line(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG + "\n[survey]\nmin_share = 2\n")
    p = cli("survey", "-c", "config.toml", cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    line = CONFIG.count("\n") + 3
    assert f"config.toml:{line}: survey.min_share:" in p.stderr
    cfg.write_text(CONFIG + '\n[[matchers]]\norg = "nobody"\nou = ["OU=X"]\n')
    p = cli("survey", "-c", "config.toml", cwd=tmp_path)
    line = CONFIG.count("\n") + 3
    assert p.returncode == 2
    assert f"config.toml:{line}: matchers[0].org: 'nobody' is not a configured" in p.stderr
