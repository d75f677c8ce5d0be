"""The hardening suites' command line and checks: configuration files, ``accessaudit`` in a
subprocess (recorded, with the secret canaries as its credentials), and what every fault
scenario checks.

Every scenario is judged by :func:`check_scenario`: the exit code, one clear line, no
traceback, an incomplete manifest where data is missing, nothing marked resolved by an
incomplete run, and every earlier run still intact (``accessaudit verify``).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from support import recorder
from support.example_config import without_source_matchers

TESTS = Path(__file__).resolve().parents[1]  # holds the support package
ROOT = TESTS.parent

#: Secret canaries: used as the real credentials of the test servers, then searched for in
#: every output file, log and message (they must never appear).
CANARY_PASSWORD = "Canary-LDAP-pw-7f3a9c51"
CANARY_SECRET = "Canary.Graph~secret-4e8b2d60"
CANARY_PASSPHRASE = "Canary-passphrase-91c7e2aa"
CANARIES = (CANARY_PASSWORD, CANARY_SECRET, CANARY_PASSPHRASE)
PASSWORD_ENV = "ACCESSAUDIT_LDAP_PASSWORD"
SECRET_ENV = "ACCESSAUDIT_CLIENT_SECRET"
#: A guard against a hung subprocess, never a measurement.
DEADLINE = 300


# --- configuration files -----------------------------------------------------------------------


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


def toml_table(name: str, values: Mapping[str, object]) -> str:
    lines = [f"[[{name}]]"] + [f"{k} = {toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def organisations_toml() -> str:
    """The organisations of config.example.toml (its [attribution] and [[organisations]]),
    without their ``sources`` matchers: those name the example's application exports, which
    these configurations do not collect (a matcher naming no configured source is refused)."""
    example = (ROOT / "config.example.toml").read_text()
    orgs = example[example.index("[attribution]") : example.index("# --- Sources")]
    return without_source_matchers(orgs)


def write_config(
    folder: Path,
    sources: str,
    *,
    audit: Mapping[str, object] | None = None,
    report: Mapping[str, object] | None = None,
) -> Path:
    """A config.toml in ``folder`` with data_dir ``folder/data`` and the given sources."""
    folder.mkdir(parents=True, exist_ok=True)
    audit_values: dict[str, object] = {"data_dir": str(folder / "data"), "fail_on": "high"}
    audit_values.update(audit or {})
    report_values: dict[str, object] = {"formats": ["html", "csv", "json", "xlsx"]}
    report_values.update(report or {})
    text = "[audit]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in audit_values.items())
    text += "\n" + organisations_toml() + "\n" + sources + "\n[report]\n"
    text += "".join(f"{k} = {toml_value(v)}\n" for k, v in report_values.items())
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def sample_source_toml(accounts: int = 200, **extra: object) -> str:
    return toml_table("sources", {"kind": "sample", "name": "alliance-sample", "seed": 7,
                                  "accounts": accounts, "host": "wmp", **extra})  # fmt: skip


# --- every LDAP operation and HTTP request, recorded -----------------------------------------

RECORD = Path(tempfile.gettempdir()) / f"accessaudit-hardening-{os.getpid()}" / "calls.jsonl"


@pytest.fixture(scope="module", autouse=True)
def read_only_calls() -> Iterator[Path]:
    """Every module of the suite: record every LDAP operation and HTTP request, in this process
    and in every ``accessaudit`` subprocess (see :func:`cli`); none may write."""
    with recorder.read_only(RECORD, "hardening suite") as path:
        yield path


# --- the command line --------------------------------------------------------------------------


def cli(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    umask: int | None = None,
    timeout: float = DEADLINE,
) -> subprocess.CompletedProcess[str]:
    """``python -m accessaudit ARGS`` in its own process and session, with no controlling
    terminal and no stdin, as cron or systemd start it: a prompt fails instead of waiting."""
    site = recorder.sitecustomize_dir(RECORD.parent / "site")
    path = os.pathsep.join(p for p in (str(site), str(TESTS), os.environ.get("PYTHONPATH")) if p)
    full = {**os.environ, PASSWORD_ENV: CANARY_PASSWORD, SECRET_ENV: CANARY_SECRET}
    full.update({"PYTHONPATH": path, recorder.ENV: str(RECORD)})
    full.update(env or {})
    full.pop("PYTHONBREAKPOINT", None)

    def preexec() -> None:
        if umask is not None:
            os.umask(umask)

    return subprocess.run(
        [sys.executable, "-m", "accessaudit", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # no controlling terminal (cron, systemd): /dev/tty cannot open
        cwd=cwd,
        env=full,
        timeout=timeout,
        check=False,
        preexec_fn=preexec if umask is not None else None,
    )


def run(config: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return cli("run", "--config", str(config), *args, cwd=config.parent, **kwargs)


def no_traceback(p: subprocess.CompletedProcess[str]) -> None:
    for stream in (p.stdout, p.stderr):
        assert "Traceback" not in stream, stream
        assert 'File "' not in stream, stream


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    """The single ``accessaudit: error:`` line of a failed command: nothing else on stderr but
    the stage lines ("  - collecting ...") a run prints when stderr is not a terminal."""
    no_traceback(p)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip() and not ln.startswith("  - ")]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("accessaudit: error: "), p.stderr
    return lines[0]


def incomplete_warning(p: subprocess.CompletedProcess[str]) -> str:
    """Exit 3: exactly one warning line on stderr, no traceback."""
    no_traceback(p)
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("accessaudit: WARNING")]
    assert len(lines) == 1, p.stderr
    assert "collection incomplete" in lines[0]
    assert not [ln for ln in p.stderr.splitlines() if ln.startswith("accessaudit: error")]
    return lines[0]


# --- what every scenario checks ----------------------------------------------------------------


def manifests(data_dir: Path) -> list[dict[str, Any]]:
    from accessaudit.store.runs import RunStore

    return [r.manifest for r in RunStore(data_dir).runs()]


def history(data_dir: Path, run_id: str) -> pl.DataFrame:
    return pl.read_parquet(data_dir / "runs" / run_id / "findings_history.parquet")


def check_runs_intact(config: Path) -> None:
    """``accessaudit verify`` over every run of the data directory: exit 0, no problem."""
    p = cli("verify", "--config", str(config), cwd=config.parent)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith("ok: ") and p.stderr == "", p.stdout + p.stderr


def check_nothing_resolved_by_incomplete(data_dir: Path) -> None:
    """No run that is incomplete, or follows an incomplete run, resolves a finding."""
    ms = manifests(data_dir)
    for before, m in zip([None, *ms], ms, strict=False):
        if m["complete"] and (before is None or before["complete"]):
            continue
        h = history(data_dir, m["run_id"])
        assert h.filter(pl.col("status") == "resolved").height == 0, m["run_id"]
        assert m["summary"]["changes"].get("resolved", 0) == 0


def check_scenario(
    p: subprocess.CompletedProcess[str],
    config: Path,
    *,
    exit_code: int,
    runs_before: int,
    incomplete_units: set[str] | None = None,
) -> dict[str, Any] | None:
    """Every check of one faulty run (see the module docstring); returns its manifest, if any."""
    assert p.returncode == exit_code, (p.returncode, p.stdout, p.stderr)
    data_dir = config.parent / "data"
    ms = manifests(data_dir)
    if exit_code == 3:
        incomplete_warning(p)
        assert len(ms) == runs_before + 1
        m = ms[-1]
        assert m["complete"] is False
        bad = {u["name"] for s in m["sources"] for u in s["units"] if not u["complete"]}
        assert bad, m["sources"]
        if incomplete_units is not None:
            assert bad == incomplete_units, bad
    elif exit_code == 2 or exit_code == 4:
        one_line_error(p)
        assert len(ms) == runs_before  # nothing written for a run that collected nothing
        m = None
    else:
        no_traceback(p)
        assert len(ms) == runs_before + 1
        m = ms[-1]
        assert m["complete"] is True
    if ms:
        check_runs_intact(config)
        check_nothing_resolved_by_incomplete(data_dir)
    assert not list((data_dir / "runs").glob(".tmp-*")) if (data_dir / "runs").exists() else True
    return m


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
