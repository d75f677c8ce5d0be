"""`accessaudit run --config` against the Samba domain controller, as a new user runs it.

The config is made the way the README tells a user to: copy ``config.example.toml``, keep the
organisations, delete the sources that do not apply and edit the LDAP one (server, CA file, the
least-privileged bind account, the environment variable holding its password). The command runs
in its own process; exit codes, the run's manifest and stderr are what is checked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.example_config import without_source_matchers
from support.servers.load_ad import BIND_PASSWORD
from support.servers.proxy import CuttingProxy
from support.servers.seeded import SampleSeeded, SeededDC

pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parents[2]
PASSWORD_ENV = "ACCESSAUDIT_LDAP_PASSWORD"
#: Objects `samba-tool domain provision` (4.17) makes itself (plus our bind user "auditor"):
#: Administrator, Guest, krbtgt, DC1$, dns-dc1, auditor; 25 built-in groups beyond those the
#: sample also has; and the 27 memberships among and into them.
SAMBA_OWN = {"accounts": 6, "groups": 25, "memberships": 27, "grants": 0}


def write_config(folder: Path, server: str, ca_file: Path, **edits: str) -> Path:
    """config.example.toml with only its LDAP source, edited for this domain controller."""
    example = (ROOT / "config.example.toml").read_text()
    # the organisations' sources matchers name the example's application exports, deleted
    # here with their [[sources]] entries (a matcher naming no configured source is refused)
    head = without_source_matchers(example[: example.index("# --- Sources")])
    ldap = example[example.index("# Active Directory (or OpenLDAP") : example.index("# Entra ID")]
    report = example[example.index("[report]") :]
    values = {
        "servers": json.dumps([server]),
        "bind_dn": '"auditor@alliance.local"',  # an ordinary user: Domain Users only
        "password_env": f'"{PASSWORD_ENV}"',
        "ca_file": json.dumps(str(ca_file)),
        **edits,
    }
    for key, value in values.items():
        ldap, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", ldap)
        assert n == 1, key
    path = folder / "config.toml"
    path.write_text(head + ldap + report)
    return path


def run(config: Path, password: str = BIND_PASSWORD) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, PASSWORD_ENV: password}
    return subprocess.run(
        [sys.executable, "-m", "accessaudit", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=config.parent,
        env=env,
        timeout=300,
        check=False,
    )


def manifests(folder: Path) -> list[dict[str, Any]]:
    runs = sorted((folder / "accessaudit-data" / "runs").glob("*/manifest.json"))
    return [json.loads(p.read_text()) for p in runs]


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in p.stderr, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("accessaudit: error:")]
    assert len(lines) == 1, p.stderr
    return lines[0]


def test_run_against_samba(sample_servers: SampleSeeded, tmp_path: Path) -> None:
    seeded = sample_servers.ad
    config = write_config(tmp_path, seeded.dc.ldaps_url, seeded.dc.pki.ca_file)
    p = run(config)
    assert p.returncode == 1, p.stderr  # open findings at or above "high" (the example's fail_on)
    assert "Traceback" not in p.stderr
    [manifest] = manifests(tmp_path)
    assert manifest["complete"] is True
    [source] = manifest["sources"]
    assert (source["name"], source["source"], source["kind"]) == (
        "alliance.local", "ad:alliance.local", "ldap",
    )  # fmt: skip
    assert source["complete"] is True and source["state"] == {"server": seeded.dc.ldaps_url}
    loaded = {n: df.height for n, df in seeded.dataset.tables.items()}
    # the dataset's grants are the sample's data paths (shares, mailboxes, Azure): not loaded
    # into the directory, so the DC serves none of them
    loaded["grants"] = 0
    counted = {n: source["counts"][n] for n in SAMBA_OWN}
    assert counted == {n: loaded[n] + SAMBA_OWN[n] for n in SAMBA_OWN}
    assert all(u["complete"] for u in source["units"])
    summary = manifest["summary"]
    assert summary["by_severity"]["critical"] + summary["by_severity"]["high"] > 0


def test_server_stopped_mid_collection(fresh_sample_dc: SeededDC, tmp_path: Path) -> None:
    """The DC stops after ~600 kB of answers (a few pages of accounts): exit 3, an incomplete
    run, no traceback; then with the DC gone nothing can be collected: exit 2 and one line
    naming the server."""
    dc = fresh_sample_dc.dc
    proxy = CuttingProxy((dc.address, 636), after=600_000, cut=dc.stop)
    try:
        config = write_config(tmp_path, proxy.url, dc.pki.ca_file, page_size="200")
        p = run(config)
    finally:
        proxy.close()
    assert proxy.was_cut.is_set() and not dc.running
    assert p.returncode == 3, p.stderr
    assert "Traceback" not in p.stderr
    assert "collection incomplete" in p.stderr
    [manifest] = manifests(tmp_path)
    assert manifest["complete"] is False
    [source] = manifest["sources"]
    assert source["complete"] is False
    accounts = next(u for u in source["units"] if u["name"] == "accounts")
    assert accounts["complete"] is False
    assert accounts["detail"].startswith("connection failed after ")
    assert 0 < accounts["count"] < len(fresh_sample_dc.dataset.tables["accounts"])

    p = run(config)
    assert p.returncode == 2
    line = one_line_error(p)
    assert proxy.url.removeprefix("ldaps://") in line
    assert len(manifests(tmp_path)) == 1  # nothing written for a run that collected nothing


def test_wrong_password_is_one_line(sample_servers: SampleSeeded, tmp_path: Path) -> None:
    seeded = sample_servers.ad
    config = write_config(tmp_path, seeded.dc.ldaps_url, seeded.dc.pki.ca_file)
    p = run(config, password="not-the-password")
    assert p.returncode == 2
    line = one_line_error(p)
    assert seeded.dc.ldaps_url in line and "data 52e" in line
    assert "not-the-password" not in p.stderr + p.stdout
    assert manifests(tmp_path) == []
