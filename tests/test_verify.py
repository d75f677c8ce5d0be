"""`accessaudit verify`: every tampering with a stored run is named, one line per problem."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from accessaudit_fixtures import NOW

from accessaudit.pipeline import demo_settings, run_audit
from accessaudit.retention import prune_runs
from accessaudit.store import MANIFEST, RunStore
from accessaudit.verify import verify

DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Three runs, every export format."""
    data = tmp_path_factory.mktemp("verify") / "data"
    settings = demo_settings(data, accounts=400, seed=3)
    report = settings.report.model_copy(update={"formats": ["html", "csv", "json", "xlsx"]})
    settings = settings.model_copy(update={"report": report})
    ids = [run_audit(settings, now=NOW + i * DAY).run.run_id for i in range(3)]
    return data, ids


@pytest.fixture
def data(pristine: tuple[Path, list[str]], tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(pristine[0], copy)
    return copy


def problems(data: Path, run_ids: list[str] | None = None) -> list[tuple[str, str, str]]:
    return [(p.run_id, p.kind, p.name) for p in verify(data, run_ids)]


def flip(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset % len(raw)] ^= 0x01
    path.write_bytes(bytes(raw))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accessaudit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_intact_runs_verify(data: Path, pristine: tuple[Path, list[str]]) -> None:
    assert problems(data) == []
    run = data / "runs" / pristine[1][0]
    p = cli("verify", str(run))
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout == "ok: 1 run(s) intact, chain verified\n"


@pytest.mark.parametrize(
    "name",
    [
        "findings.parquet",
        "accounts.parquet",
        "findings_history.parquet",
        "report.html",
        "findings.csv",
        "trend.csv",
        "findings.json",
        "actions.xlsx",
    ],
)
def test_a_flipped_byte_in_any_file_is_named(
    data: Path, pristine: tuple[Path, list[str]], name: str
) -> None:
    first = pristine[1][0]
    path = data / "runs" / first / name
    flip(path, path.stat().st_size // 2)
    assert problems(data) == [(first, "changed", name)]


def test_an_edited_manifest_breaks_the_chain(data: Path, pristine: tuple[Path, list[str]]) -> None:
    first, second, _ = pristine[1]
    path = data / "runs" / first / MANIFEST
    m = json.loads(path.read_text())
    sha = m["files"]["findings.parquet"]["sha256"]
    # change one hex digit of a recorded hash: still valid JSON, no longer the written manifest
    m["files"]["findings.parquet"]["sha256"] = ("0" if sha[0] != "0" else "1") + sha[1:]
    path.write_text(json.dumps(m, indent=2))
    assert problems(data) == [
        (first, "changed", "findings.parquet"),
        (first, "chain", MANIFEST),
        (second, "chain", first),
    ]
    # verifying only the edited run still finds the break through the run after it
    assert problems(data, [first]) == [
        (first, "changed", "findings.parquet"),
        (first, "chain", MANIFEST),
    ]


def test_missing_and_extra_files(data: Path, pristine: tuple[Path, list[str]]) -> None:
    run = data / "runs" / pristine[1][2]
    (run / "actions.csv").unlink()
    (run / "notes.txt").write_text("added later")
    assert problems(data) == [
        (run.name, "missing", "actions.csv"),
        (run.name, "extra", "notes.txt"),
    ]
    p = cli("verify", str(run))
    assert p.returncode == 2
    assert p.stdout.splitlines() == [
        f"accessaudit: verify: {run.name}: missing: actions.csv: listed in the manifest",
        f"accessaudit: verify: {run.name}: extra: notes.txt: not in the manifest",
    ]
    assert "Traceback" not in p.stderr


def test_a_replayed_manifest(data: Path, pristine: tuple[Path, list[str]]) -> None:
    """The second run's folder gets the first run's manifest and files (an old run replayed)."""
    first, second, third = pristine[1]
    runs = data / "runs"
    shutil.rmtree(runs / second)
    shutil.copytree(runs / first, runs / second)
    assert problems(data) == [
        (second, "replayed", MANIFEST),  # identical to the first run's
        (second, "replayed", MANIFEST),  # names the first run, not its own folder
        (second, "chain", "previous_run"),  # it names no previous run; one is stored before
        (second, "chain", MANIFEST),  # the third run recorded another manifest here ...
        (third, "chain", second),  # ... and says so from its side
    ]


def test_a_removed_run_breaks_the_chain(data: Path, pristine: tuple[Path, list[str]]) -> None:
    first, second, third = pristine[1]
    shutil.rmtree(data / "runs" / second)
    assert problems(data) == [(third, "chain", second)]
    shutil.rmtree(data / "runs" / first)
    assert problems(data) == [(third, "chain", second)]


def test_runs_deleted_by_retention_keep_the_chain(
    data: Path, pristine: tuple[Path, list[str]]
) -> None:
    first, second, third = pristine[1]
    store = RunStore(data)
    with store.lock():
        assert prune_runs(store, keep_runs=1, keep_days=None, now=NOW) == [first, second]
    assert [r.run_id for r in store.runs()] == [third]
    assert problems(data) == []
    ledger = data / "pruned-runs.jsonl"
    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [e["run_id"] for e in entries] == [first, second]
    entries[1]["manifest_sha256"] = "0" * 64  # a forged ledger no longer vouches
    ledger.write_text("".join(json.dumps(e) + "\n" for e in entries))
    assert problems(data) == [(third, "chain", second)]
