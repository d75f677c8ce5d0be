"""`accessaudit plan` and `accessaudit apply` as a user runs them, against Samba: config from
config.example.toml with an [apply] write account; each refusal one line and an exit code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.apply_servers import ApplyDC
from support.example_config import without_source_matchers
from support.servers.load_ad import BIND_PASSWORD
from support.servers.samba import ADMIN_PASSWORD

pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parents[2]
READ = "ACCESSAUDIT_LDAP_PASSWORD"
WRITE = "ACCESSAUDIT_WRITE_PASSWORD"


def write_config(folder: Path, seeded: ApplyDC) -> Path:
    example = (ROOT / "config.example.toml").read_text()
    head = without_source_matchers(example[: example.index("# --- Sources")])
    ldap = example[example.index("# Active Directory (or OpenLDAP") : example.index("# Entra ID")]
    tail = example[example.index("[report]") :]
    for key, value in {
        "servers": json.dumps([seeded.dc.ldaps_url]),
        "bind_dn": '"auditor@alliance.local"',
        "password_env": f'"{READ}"',
        "ca_file": json.dumps(str(seeded.dc.pki.ca_file)),
    }.items():
        ldap, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", ldap)
        assert n == 1, key
    for key, value in {
        "ad_source": '"alliance.local"',
        "bind_dn": '"Administrator@alliance.local"',
        "password_env": f'"{WRITE}"',
    }.items():
        tail, n = re.subn(rf"(?m)^# {key} = .*$", f"{key} = {value}", tail)
        assert n == 1, key
    path = folder / "config.toml"
    path.write_text(head + ldap + tail)
    return path


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, READ: BIND_PASSWORD, WRITE: ADMIN_PASSWORD}
    return subprocess.run(
        [sys.executable, "-m", "accessaudit", *args],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=300,
        check=False,
    )


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in p.stderr, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("accessaudit: error:")]
    assert len(lines) == 1, p.stderr
    return lines[0]


def test_plan_and_apply_cli(apply_dc: ApplyDC, tmp_path: Path) -> None:
    config = write_config(tmp_path, apply_dc)
    assert cli(tmp_path, "run", "-c", str(config), "-q").returncode == 1
    [run] = sorted((tmp_path / "accessaudit-data" / "runs").iterdir())
    p = cli(tmp_path, "plan", str(run), "-c", str(config), "--out", "plan.json")
    assert p.returncode == 0, p.stderr
    assert "0 remaining" in p.stdout and "VALID" in p.stdout
    digest = p.stdout.split("sha256 ")[-1].strip()
    doc = json.loads((tmp_path / "plan.json").read_text())
    assert doc["sha256"] == digest

    # a split takes 4 of a mixed group's 7 members: past the 50% cap, so --allow-large
    p = cli(tmp_path, "apply", "plan.json", "-c", str(config), "--max-changes", "100",
            "--allow-large")  # fmt: skip
    assert p.returncode == 1, p.stderr  # refusals present (protected groups, sIDHistory)
    assert "dry run: 0 write(s)" in p.stdout
    refused = [ln for ln in p.stdout.splitlines() if ln.startswith("refused ")]
    assert len(refused) == 6 and sum("protected group S-1-5-" in ln for ln in refused) == 3
    assert sum("pass --allow-irreversible" in ln for ln in refused) == 3
    manual = [ln for ln in p.stdout.splitlines() if ln.startswith("manual ")]
    assert not [ln for ln in manual if ln.startswith("manual   split-group|")]  # executed now

    # the per-group cap, from the config: refused as a whole, unless --allow-large
    small = tmp_path / "small-cap.toml"
    text = config.read_text()
    small.write_text(text.replace("max_group_fraction = 0.5", "max_group_fraction = 0.05"))
    p = cli(tmp_path, "apply", "plan.json", "-c", str(small), "--max-changes", "100")
    assert p.returncode == 2 and "than 5% of the members of 10 group(s)" in one_line_error(p)
    p = cli(tmp_path, "apply", "plan.json", "-c", str(small), "--max-changes", "100",
            "--allow-large")  # fmt: skip
    assert p.returncode == 1 and "dry run: 0 write(s)" in p.stdout

    p = cli(tmp_path, "apply", "plan.json", "-c", str(config), "--execute")
    assert p.returncode == 2 and "need --sha256" in one_line_error(p)
    p = cli(
        tmp_path, "apply", "plan.json", "-c", str(config), "--execute", "--sha256", digest,
        "--max-changes", "2",
    )  # fmt: skip
    assert p.returncode == 2 and "above the blast-radius cap of 2" in one_line_error(p)

    doc["actions"][0]["member_id"] = doc["actions"][1]["member_id"]
    (tmp_path / "tampered.json").write_text(json.dumps(doc))
    p = cli(tmp_path, "apply", "tampered.json", "-c", str(config))
    assert p.returncode == 2 and "does not match its hash" in one_line_error(p)

    p = cli(tmp_path, "apply", "plan.json", "-c", str(config), "--execute", "--sha256", "0" * 64)
    assert p.returncode == 2 and "not the approved" in one_line_error(p)

    # 26 changes written: the 23 single ones, 2 splits and 2 primary-group moves (84 directory
    # writes in all, over the default cap of 50); two edges planned twice are no-ops the second
    # time (a primary edge and a mover's strip)
    execute = ("apply", "plan.json", "-c", str(config), "--execute", "--sha256", digest,
           "--max-changes", "100", "--allow-large")  # fmt: skip
    p = cli(tmp_path, *execute)
    assert p.returncode == 1, p.stderr  # done, but the refused ones remain
    assert re.search(r"executed: 26 write\(s\); 26 done, (\d+) manual, 2 noop, 6 refused", p.stdout)
    assert "undo file: plan.undo.ldif" in p.stdout
    p = cli(tmp_path, *execute)
    assert "executed: 0 write(s); 28 already" in p.stdout

    # the tool's audit log: every apply's start and end (or error), with its counts
    log = [json.loads(ln) for ln in (tmp_path / "accessaudit-data" / "audit-log.jsonl")
           .read_text().splitlines()]  # fmt: skip
    applies = [(r["event"], r.get("mode")) for r in log if r["command"] == "apply"]
    assert applies == [
        ("start", "dry run"), ("finished", "dry run"),
        ("start", "dry run"), ("error", None),  # the per-group cap
        ("start", "dry run"), ("finished", "dry run"),  # --allow-large
        ("start", "executed"), ("error", None),  # the blast-radius cap
        ("start", "executed"), ("finished", "executed"),
        ("start", "executed"), ("finished", "executed"),
    ]  # fmt: skip
    first, again = [r for r in log if r["command"] == "apply" and r["event"] == "finished"][2:]
    manual_n = first["skipped"] - 6
    assert {k: first[k] for k in ("writes", "done", "noop", "failed", "exit_code")} == {
        "writes": 26, "done": 26, "noop": 2, "failed": 0, "exit_code": 1}  # fmt: skip
    assert manual_n == int(re.findall(r"(\d+) manual", p.stdout)[0]) > 0
    assert first["plan_sha256"] == digest and first["journal"].endswith("plan.journal.jsonl")
    assert [Path(u).name for u in first["undo"]] == ["plan.undo.ldif", "plan.undo.graph.json"]
    assert (again["writes"], again["done"], again["noop"]) == (0, 0, 28)
    assert [r["message"] for r in log if r["event"] == "error"][1].startswith("the plan makes")
