"""Run store: atomic runs, owner-only files, hashes in the manifest, the lock, leftovers."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from accessaudit.errors import LockHeld, StoreError
from accessaudit.store.runs import MANIFEST, RunStore, open_run, read_table, sha256_file


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_run_is_atomic_owner_only_and_hashed(tmp_path: Path) -> None:
    old = os.umask(0)  # the most permissive umask: modes must not depend on it
    try:
        store = RunStore(tmp_path / "data")
        w = store.begin()
        df = pl.DataFrame({"a": [1, 2, 3]})
        w.write_table("t", df)
        w.write_bytes("note.txt", b"hello")
        assert store.runs() == []  # nothing visible before commit
        run = w.commit({"complete": True})
    finally:
        os.umask(old)
    assert [r.run_id for r in store.runs()] == [run.run_id]
    assert mode(tmp_path / "data") == 0o700
    assert mode(store.runs_dir) == 0o700
    assert mode(run.path) == 0o700
    for f in run.path.iterdir():
        assert mode(f) == 0o600, f
    m = open_run(run.path).manifest
    assert m["files"]["t.parquet"]["rows"] == 3
    for name, entry in m["files"].items():
        assert entry["sha256"] == sha256_file(run.path / name)
    assert m["previous_run"] is None
    assert read_table(run, "t").equals(df)


def test_manifests_chain_to_the_previous_run(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    first = store.begin().commit({"complete": True})
    second = store.begin().commit({"complete": False})
    assert second.manifest["previous_run"] == first.run_id
    assert second.manifest["previous_manifest_sha256"] == sha256_file(first.path / MANIFEST)
    assert second.run_id != first.run_id
    assert [r.complete for r in store.runs()] == [True, False]


def test_aborted_and_crashed_runs_leave_nothing(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    w = store.begin()
    w.write_table("t", pl.DataFrame({"a": [1]}))
    w.abort()
    assert not w.tmp.exists()
    # a crashed writer leaves a .tmp-* folder: the next start removes it
    crashed = store.runs_dir / ".tmp-20260101T000000Z-999"
    crashed.mkdir()
    (crashed / "accounts.parquet").write_bytes(b"PAR1 truncated")
    store.prepare()
    assert not crashed.exists()
    assert store.runs() == []


def test_lock_is_exclusive_and_released_by_a_killed_process(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path\n"
            "from accessaudit.store.runs import RunStore\n"
            "with RunStore(Path(sys.argv[1])).lock():\n"
            "    print('locked', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeld, match="another run is writing"), store.lock():
            pass
    finally:
        holder.kill()
        holder.wait()
    with store.lock():  # the OS released the dead holder's lock: no stale lock file wedges us
        pass


def test_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is not a run"):
        open_run(tmp_path)


def test_unwritable_data_dir(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("x")
        with pytest.raises(StoreError, match="cannot create folder"):
            RunStore(blocker / "data").prepare()
    else:  # pragma: no cover - CI runs as root
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(StoreError):
            RunStore(ro / "data").prepare()
