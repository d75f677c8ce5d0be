"""The ledger of deleted runs is as tamper-evident as the manifests, and damaged run data is a
one-line error naming the file (``verify`` lists every problem) instead of an internal error."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from support.fixtures import NOW
from support.hardening_cli import (
    cli,
    no_traceback,
    one_line_error,
    sample_source_toml,
    write_config,
)

from accessaudit.pipeline.demo import demo_settings
from accessaudit.pipeline.run import run_audit
from accessaudit.store.ledger import CHAIN_KEY, LEDGER
from accessaudit.store.runs import MANIFEST
from accessaudit.store.verify import verify

DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Three complete runs, no retention configured."""
    data = tmp_path_factory.mktemp("tamper") / "data"
    settings = demo_settings(data, accounts=300, seed=3)
    return data, [run_audit(settings, now=NOW + i * DAY).run.run_id for i in range(3)]


@pytest.fixture
def data(pristine: tuple[Path, list[str]], tmp_path: Path) -> Path:
    copy = tmp_path / "site" / "data"
    shutil.copytree(pristine[0], copy)
    return copy


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _config(data: Path) -> Path:
    return write_config(data.parent, sample_source_toml(200))


def _forge(data: Path, ids: list[str], **extra: object) -> None:
    """Delete the middle run and explain it with a ledger line made from what is on disk."""
    first, middle, _ = ids
    runs = data / "runs"
    m = json.loads((runs / middle / MANIFEST).read_text())
    entry = {
        "run_id": middle,
        "started": m["started"],
        "finished": m["finished"],
        "complete": m["complete"],
        "manifest_sha256": _sha(runs / middle / MANIFEST),
        "previous_run": first,
        "previous_manifest_sha256": _sha(runs / first / MANIFEST),
        "summary": m["summary"],
        "pruned_at": (NOW + 5 * DAY).isoformat(),
        CHAIN_KEY: None,
        **extra,
    }
    shutil.rmtree(runs / middle)
    (data / LEDGER).write_text(json.dumps(entry, sort_keys=True) + "\n")


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ({}, "keeps every run (no retention configured)"),
        # a forged policy: it would have deleted the first run as well
        ({"policy": {"keep_runs": 1, "keep_days": None}}, "would have deleted"),
    ],
    ids=["no-policy", "forged-policy"],
)
def test_a_middle_run_deleted_with_a_forged_ledger_line_is_found(
    data: Path, pristine: tuple[Path, list[str]], extra: dict[str, object], why: str
) -> None:
    ids = pristine[1]
    assert verify(data) == []
    _forge(data, ids, **extra)
    found = [str(p) for p in verify(data)]
    assert len(found) == 1, found
    assert found[0].startswith(
        f"pruned-runs.jsonl: ledger: line 1: deleted run {ids[1]} is vouched for by no run"
    )
    assert why in found[0]
    p = cli("verify", "--config", str(_config(data)))
    assert p.returncode == 2 and p.stdout.splitlines() == [f"accessaudit: verify: {found[0]}"]


def test_retention_deletions_verify(data: Path, pristine: tuple[Path, list[str]]) -> None:
    """The control: the same deletion made by retention (keep_runs = 1, its own policy)."""
    from accessaudit.store.retention import prune_runs
    from accessaudit.store.runs import RunStore

    store = RunStore(data)
    with store.lock():
        assert prune_runs(store, keep_runs=1, keep_days=None, now=NOW + 5 * DAY) == pristine[1][:2]
    assert verify(data) == []
    lines = (data / LEDGER).read_text().splitlines()
    edited = json.loads(lines[0])
    edited["summary"] = {"open": 0}  # an earlier line changed: the next no longer follows it
    (data / LEDGER).write_text(json.dumps(edited) + "\n" + lines[1] + "\n")
    assert [str(p) for p in verify(data)] == [
        "pruned-runs.jsonl: ledger: line 2: not chained to the line before (a line before it"
        " was changed, removed or inserted)"
    ]


# --- damaged run data ---------------------------------------------------------------------------


def _newest_manifest(data: Path, pristine: tuple[Path, list[str]]) -> Path:
    return data / "runs" / pristine[1][-1] / MANIFEST


@pytest.mark.parametrize("damage", ["deep", "started", "ledger"])
def test_damaged_run_data_is_one_line_naming_the_file(
    data: Path, pristine: tuple[Path, list[str]], damage: str
) -> None:
    manifest = _newest_manifest(data, pristine)
    if damage == "deep":
        manifest.write_text('{"run_id": "x", "a": ' + "[" * 5000 + "]" * 5000 + "}")
        named, problem = manifest, "damaged: nested too deeply to be a manifest"
    elif damage == "started":
        m = json.loads(manifest.read_text())
        m["started"] = "garbage"
        manifest.write_text(json.dumps(m, indent=2))
        named, problem = manifest, "damaged: 'started' is not an ISO 8601 time"
    else:
        (data / LEDGER).write_bytes(b'{"run_id": "20260101T000000Z"}\n\xff\xfe\x00broken\n')
        named, problem = data / LEDGER, "2: damaged (not UTF-8 (byte 1))"
    config = _config(data)
    commands = [
        ("run", "--config", str(config)),
        ("report", str(data / "runs" / pristine[1][0]), "--config", str(config), "--out",
         str(data.parent / "r.html")),
    ]  # fmt: skip
    for args in commands:
        p = cli(*args, cwd=data.parent)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        line = one_line_error(p)
        assert line.startswith(f"accessaudit: error: {named}"), (args, line)
        assert problem in line, (args, line)
    v = cli("verify", "--config", str(config), cwd=data.parent)
    no_traceback(v)
    assert v.returncode == 2, v.stderr
    assert v.stdout.startswith("accessaudit: verify: "), v.stdout
    assert v.stdout.count("\n") >= 1
