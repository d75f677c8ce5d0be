"""Crash safety: SIGKILL at hundreds of points while a run writes, a full disk, a read-only
data directory, and credentials that cannot be read under a scheduler."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from support.hardening_cli import (
    CANARY_PASSWORD,
    check_runs_intact,
    cli,
    manifests,
    no_traceback,
    one_line_error,
    run,
    sample_source_toml,
    toml_table,
    write_config,
)

from accessaudit.store.runs import MANIFEST, RunStore

HERE = Path(__file__).resolve().parent
KILLS_PER_DRIVER = 110  # two drivers (one per core): at least 220 SIGKILLs in all


def _sample_config(folder: Path, **audit: object) -> Path:
    return write_config(folder, sample_source_toml(200), audit={"fail_on": "critical", **audit})


@pytest.mark.slow
def test_sigkill_at_random_points_while_a_run_writes(tmp_path: Path) -> None:
    drivers = []
    for seed in (1, 2):
        folder = tmp_path / f"driver{seed}"
        config = _sample_config(folder, keep_runs=4)
        out = folder / "killpoints.json"
        cmd = [sys.executable, str(HERE / "killpoints.py"), str(config), str(KILLS_PER_DRIVER)]
        drivers.append((config, out, subprocess.Popen([*cmd, str(seed), str(out)])))
    for _, _, proc in drivers:
        assert proc.wait(timeout=900) == 0
    killed = points = 0
    for config, out, _ in drivers:
        stats = json.loads(out.read_text())
        assert stats["problems"] == [], stats["problems"]
        assert stats["by_kind"]["event"] == stats["events_per_run"] > 40
        killed += stats["killed"]
        points += stats["points"]
        check_runs_intact(config)
        data = config.parent / "data"
        store = RunStore(data)
        runs = store.runs()
        assert len(runs) == stats["runs_kept"] == 4  # retention still keeps exactly four
        assert not [p for p in (data / "runs").iterdir() if p.name.startswith(".")]
        newest = runs[-1]
        assert newest.complete
        for name in newest.manifest["files"]:
            if name.endswith(".parquet"):
                pl.read_parquet(newest.path / name)  # every table of the last run reads whole
        listing = cli("runs", "--config", str(config))
        assert listing.returncode == 0
        stored = [ln.split() for ln in listing.stdout.splitlines()[1:]]  # below the header
        # runs retention deleted are listed as pruned; no run is missing
        assert [w[0] for w in stored if w[1] != "pruned"] == [r.run_id for r in runs]
        assert not [w for w in stored if w[1] in ("MISSING", "DAMAGED")]
        rendered = cli("report", str(newest.path), "--config", str(config), "--out",
                       str(config.parent / "again.html"))  # fmt: skip
        assert rendered.returncode == 0, rendered.stderr
    assert killed >= 200, (killed, points)


# --- a full disk --------------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[bool]:
    """A tmpfs of ``size`` at ``path`` (root only); False if it cannot be mounted."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    try:
        yield done.returncode == 0
    finally:
        if done.returncode == 0:
            subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(folder: Path, leave: int) -> None:
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    with (folder / "filler").open("wb") as fh:
        fh.write(b"\0" * max(free - leave, 0))


@pytest.mark.parametrize("leave", [40_000, 300_000], ids=["in-the-tables", "in-the-exports"])
def test_disk_full_mid_run(tmp_path: Path, leave: int) -> None:
    mount = tmp_path / "disk"
    with tmpfs(mount, "12m") as mounted:
        config = write_config(
            tmp_path / "cfg", sample_source_toml(200), audit={"data_dir": str(mount / "data")}
        )
        first = run(config, "--fail-on", "none")
        assert first.returncode == 0, first.stderr
        if mounted:
            _fill(mount, leave)
            p = run(config, "--fail-on", "none")
            reason = "No space left on device"
        else:  # pragma: no cover - no mount permission: a file size limit instead
            p = _run_with_file_limit(config, leave)
            reason = "File too large"
        line = one_line_error(p)
        assert p.returncode == 2
        assert reason in line and "cannot write" in line
        assert len(manifests(mount / "data")) == 1  # nothing at a final path
        assert not list((mount / "data" / "runs").glob(".tmp-*"))  # the partial run removed
        check_runs_intact(config)
        (mount / "filler").unlink(missing_ok=True)
        again = run(config, "--fail-on", "none")
        assert again.returncode == 0, again.stderr
        assert len(manifests(mount / "data")) == 2
        check_runs_intact(config)


@pytest.mark.parametrize("full", [True, False], ids=["disk-full", "disk-not-full"])
def test_parquet_footer_lost_to_a_full_disk_is_a_store_error(tmp_path: Path, full: bool) -> None:
    """When the disk fills while polars writes a Parquet footer it raises only "Invalid thrift:
    transport error" (the OS error is lost): on a full disk that is the one-line "No space left"
    store error; on a disk with room it stays what it is (a real polars failure, not hidden)."""
    from accessaudit.errors import StoreError
    from accessaudit.store.runs import atomic_write

    mount = tmp_path / "disk"
    with tmpfs(mount, "1m") as mounted:
        assert mounted, "tmpfs needs root (CI runs as root)"

        def write(fh: object) -> None:
            if full:
                _fill(mount, 0)
            raise pl.exceptions.ComputeError(
                "parquet: File out of specification: Invalid thrift: transport error"
            )

        target = mount / "t.parquet"
        if full:
            with pytest.raises(StoreError) as err:
                atomic_write(target, write)
            assert err.value.message == f"cannot write {target}: No space left on device"
        else:
            with pytest.raises(pl.exceptions.ComputeError):
                atomic_write(target, write)
        assert [p.name for p in mount.iterdir() if p.name != "filler"] == []  # temp removed


def _run_with_file_limit(config: Path, limit: int) -> subprocess.CompletedProcess[str]:
    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ}
    return subprocess.run(
        [sys.executable, "-m", "accessaudit", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=limit_files,
        check=False,
        timeout=300,
    )


def test_read_only_data_directory(tmp_path: Path) -> None:
    mount = tmp_path / "disk"
    with tmpfs(mount, "12m") as mounted:
        if not mounted:
            pytest.fail("mount -t tmpfs needs root (the CI runs the tests as root)")
        config = write_config(
            tmp_path / "cfg", sample_source_toml(200), audit={"data_dir": str(mount / "data")}
        )
        assert run(config, "--fail-on", "none").returncode == 0
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        p = run(config)
        assert p.returncode == 2
        assert "Read-only file system" in one_line_error(p)
        check_runs_intact(config)  # the earlier run is still readable and intact
        assert cli("runs", "--config", str(config)).returncode == 0


def test_data_directory_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("not a folder")
    config = write_config(
        tmp_path, sample_source_toml(200), audit={"data_dir": str(tmp_path / "blocker" / "data")}
    )
    p = run(config)
    assert p.returncode == 2
    assert "cannot create folder" in one_line_error(p)


# --- credentials under a scheduler --------------------------------------------------------------


def _ldap_source(**secret: object) -> str:
    return toml_table(
        "sources",
        {
            "kind": "ldap",
            "name": "alliance.local",
            "host": "wmp",
            "servers": ["ldaps://127.0.0.1:1"],
            "base_dn": "DC=alliance,DC=local",
            "bind_dn": "auditor@alliance.local",
            **secret,
        },
    )


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("keyring.backends.fail.Keyring", "keyring entry accessaudit:svc-audit unavailable"),
        ("keyring.backends.null.Keyring", "keyring entry accessaudit:svc-audit not found"),
    ],
    ids=["no-backend", "null-backend"],
)
def test_keyring_unavailable_under_a_scheduler(tmp_path: Path, backend: str, message: str) -> None:
    """No D-Bus, no terminal, no stdin: fail at once naming the entry; never prompt."""
    config = write_config(tmp_path, _ldap_source(password_keyring="accessaudit:svc-audit"))
    env = {"PYTHON_KEYRING_BACKEND": backend, "DBUS_SESSION_BUS_ADDRESS": "", "DISPLAY": ""}
    p = run(config, env=env, timeout=60)
    assert p.returncode == 2
    line = one_line_error(p)
    assert message in line
    assert "password_env or password_file" in line or "keyring set" in line
    assert manifests(tmp_path / "data") == []


def test_keyring_without_any_configured_backend(tmp_path: Path) -> None:
    config = write_config(tmp_path, _ldap_source(password_keyring="accessaudit:svc-audit"))
    env = {"DBUS_SESSION_BUS_ADDRESS": "", "XDG_RUNTIME_DIR": str(tmp_path), "HOME": str(tmp_path)}
    p = run(config, env=env, timeout=60)
    assert p.returncode == 2
    assert "keyring entry accessaudit:svc-audit" in one_line_error(p)


def test_no_prompt_without_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cli`` starts the tool as a scheduler does: no stdin and no controlling terminal (a
    session of its own), so a prompt on /dev/tty would fail rather than wait on the terminal the
    tests run from. The interpreter is started through a shell wrapper that records its
    ``/proc/self/stat`` and execs Python (same process), to prove it; the run completes in time."""
    stat = tmp_path / "stat"
    wrapper = tmp_path / "python"
    wrapper.write_text(
        f"#!/bin/sh\ncat /proc/$$/stat > {shlex.quote(str(stat))}\n"
        f'exec {shlex.quote(sys.executable)} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(wrapper))
    p = run(_sample_config(tmp_path), "--fail-on", "none", timeout=120)
    assert p.returncode == 0, p.stderr
    no_traceback(p)
    pid, _, rest = stat.read_text().partition(" (")
    fields = rest.rsplit(")", 1)[1].split()  # state ppid pgrp session tty_nr ... (proc(5))
    assert (int(fields[3]), int(fields[4])) == (int(pid), 0)  # session leader, no terminal


def test_secret_environment_variable_not_set(tmp_path: Path) -> None:
    config = write_config(tmp_path, _ldap_source(password_env="ACCESSAUDIT_NOT_SET"))
    p = run(config, env={"ACCESSAUDIT_NOT_SET": ""})
    assert p.returncode == 2
    assert "secret environment variable ACCESSAUDIT_NOT_SET is not set" in one_line_error(p)


def test_secret_file_unreadable(tmp_path: Path) -> None:
    config = write_config(tmp_path, _ldap_source(password_file=str(tmp_path / "missing.secret")))
    p = run(config)
    assert p.returncode == 2
    assert f"cannot read secret file {tmp_path / 'missing.secret'}" in one_line_error(p)


def test_lock_file_left_by_a_killed_run_does_not_wedge(tmp_path: Path) -> None:
    """A run SIGKILLed while holding the lock (on the data folder): the next run proceeds."""
    config = _sample_config(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from accessaudit.store.runs import RunStore\n"
         "with RunStore(Path(sys.argv[1])).lock():\n"
         "    print('locked', flush=True); time.sleep(120)",
         str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        blocked = run(config)
        assert blocked.returncode == 4
        assert "another run is writing to" in one_line_error(blocked)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert not (tmp_path / "data" / ".lock").exists()  # the folder itself is locked
    p = run(config, "--fail-on", "none")
    assert p.returncode == 0, p.stderr
    assert (RunStore(tmp_path / "data").runs()[0].path / MANIFEST).is_file()
    assert CANARY_PASSWORD not in p.stdout + p.stderr
