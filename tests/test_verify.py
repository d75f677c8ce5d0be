"""`accessaudit verify`: every tampering with a stored run is named, one line per problem."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from support.fixtures import NOW

from accessaudit.pipeline.demo import demo_settings
from accessaudit.pipeline.run import run_audit
from accessaudit.store.retention import prune_runs
from accessaudit.store.runs import MANIFEST, RunStore
from accessaudit.store.verify import verify

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


# --- gaps left by retention (it keeps the newest complete run whatever the policy) -------------


def gap_store(tmp_path: Path) -> tuple[Path, list[str]]:
    """Five runs (complete, complete, then three incomplete); a config keeping one run.

    `accessaudit prune` deletes runs 0, 2 and 3 and keeps 1 (the newest complete run) and 4
    (the newest run): run 4's previous_run (3) is not the run stored before it (1).
    """
    data = tmp_path / "data"
    store = RunStore(data)
    ids = []
    with store.lock():
        for day, complete in enumerate([True, True, False, False, False]):
            t = NOW + day * DAY
            w = store.begin(t)
            w.write_bytes("x.txt", b"x")
            manifest = {"started": t.isoformat(), "complete": complete, "summary": {"open": 1}}
            ids.append(w.commit(manifest).run_id)
    config = tmp_path / "config.toml"
    config.write_text(
        '[audit]\ndata_dir = "data"\nkeep_runs = 1\n'
        '[[organisations]]\nid = "a"\nname = "A"\n[[organisations]]\nid = "b"\nname = "B"\n'
        '[[sources]]\nkind = "sample"\nname = "s"\nhost = "a"\n'
    )
    p = cli("prune", "--config", str(config))
    assert p.returncode == 0, p.stderr
    assert [r.run_id for r in store.runs()] == [ids[1], ids[4]]
    return config, ids


def test_a_gap_left_by_retention_verifies(tmp_path: Path) -> None:
    config, ids = gap_store(tmp_path)
    p = cli("verify", "--config", str(config))
    assert (p.returncode, p.stdout, p.stderr) == (0, "ok: 2 run(s) intact, chain verified\n", "")
    data = config.parent / "data"
    assert problems(data, [ids[4]]) == []


def ledger(data: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (data / "pruned-runs.jsonl").read_text().splitlines()]


def write_ledger(data: Path, entries: list[dict[str, object]]) -> None:
    (data / "pruned-runs.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))


@pytest.mark.parametrize(
    ("field", "named"),
    [
        # the deleted run's own hash: run 3 recorded another one
        ("manifest_sha256", [(4, 2)]),
        # the hash it recorded of run 1: that entry, or run 1's manifest, was changed
        ("previous_manifest_sha256", [(1, None), (4, 1)]),
    ],
    ids=["deleted-run-hash", "deleted-run-previous-hash"],
)
def test_a_forged_ledger_entry_in_a_gap_is_named(
    tmp_path: Path, field: str, named: list[tuple[int, int | None]]
) -> None:
    config, ids = gap_store(tmp_path)
    data = config.parent / "data"
    entries = ledger(data)
    [entry] = [e for e in entries if e["run_id"] == ids[2]]
    entry[field] = "0" * 64
    write_ledger(data, entries)
    p = cli("verify", "--config", str(config))
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    ledger_line = "accessaudit: verify: pruned-runs.jsonl: ledger: "
    lines = [ln for ln in p.stdout.splitlines() if not ln.startswith(ledger_line)]
    # the ledger's own chain: the entry after the changed one no longer follows it
    assert [ln for ln in p.stdout.splitlines() if ln.startswith(ledger_line)] == [
        f"{ledger_line}line 3: not chained to the line before (a line before it was changed,"
        " removed or inserted)"
    ]
    assert len(lines) == len(named), p.stdout
    for line, (run, name) in zip(lines, named, strict=True):
        what = MANIFEST if name is None else ids[name]
        assert line.startswith(f"accessaudit: verify: {ids[run]}: chain: {what}: "), line


def test_a_gap_not_in_the_ledger_is_named(tmp_path: Path) -> None:
    config, ids = gap_store(tmp_path)
    data = config.parent / "data"
    # a deleted run's ledger line removed: the gap is no longer explained
    write_ledger(data, [e for e in ledger(data) if e["run_id"] != ids[3]])
    p = cli("verify", "--config", str(config))
    assert p.returncode == 2
    assert p.stdout == (
        f"accessaudit: verify: {ids[4]}: chain: {ids[3]}: the manifest gives {ids[3]} as previous "
        f"run, but {ids[1]} is stored before it and pruned-runs.jsonl has no entry for it (a run "
        "was inserted, removed or replayed)\n"
    )


def test_a_removed_run_behind_a_gap_is_named(tmp_path: Path) -> None:
    config, ids = gap_store(tmp_path)
    data = config.parent / "data"
    shutil.rmtree(data / "runs" / ids[1])  # a kept run deleted by hand, not by retention
    p = cli("verify", "--config", str(config))
    assert p.returncode == 2
    assert p.stdout == (
        f"accessaudit: verify: {ids[4]}: chain: {ids[1]}: "
        f"the previous run of deleted run {ids[2]} is missing\n"
    )


def test_an_edited_manifest_behind_a_gap_is_caught(tmp_path: Path) -> None:
    """The run after the gap vouches for the kept run before it, through the ledger."""
    config, ids = gap_store(tmp_path)
    data = config.parent / "data"
    path = data / "runs" / ids[1] / MANIFEST
    m = json.loads(path.read_text())
    m["summary"] = {"open": 0}
    path.write_text(json.dumps(m, indent=2))
    assert problems(data) == [(ids[1], "chain", MANIFEST), (ids[4], "chain", ids[1])]
    assert problems(data, [ids[1]]) == [(ids[1], "chain", MANIFEST)]
