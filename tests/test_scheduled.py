"""`accessaudit run` unattended, as cron or a systemd timer starts it: real processes.

The lock tests make a run hold the lock for as long as the test wants, with no timing: its Entra
source is a Graph emulator on loopback whose Graph reads wait until the test releases them
(:mod:`support.held_graph`). (A named pipe as a CSV export did the same before; exports must be
regular files now, and a pipe fails at once.)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.held_graph import HeldGraph
from support.loopback import without_proxies

from accessaudit.graphemu import TestPKI, make_pki
from accessaudit.sample.apps import write_app_exports
from accessaudit.sample.directory import generate
from accessaudit.store.runs import MANIFEST, RunStore, sha256_file

ROOT = Path(__file__).resolve().parents[1]
ACCOUNTS = 300
#: a guard against a hung test, never a measurement
DEADLINE = 180


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The niche application's export for the 300-account sample (seed 7), as text."""
    folder = tmp_path_factory.mktemp("exports")
    paths = write_app_exports(generate(seed=7, accounts=ACCOUNTS, apps=True), folder)
    return paths["niche"].read_text(encoding="utf-8-sig")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def graph(pki: TestPKI, monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldGraph]:
    without_proxies(monkeypatch)  # the runs started below inherit this environment
    emulator = HeldGraph(pki)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


def write_config(
    folder: Path,
    csv_path: Path,
    *,
    audit: str = "",
    report: str = "",
    graph: HeldGraph | None = None,
) -> Path:
    """config.example.toml with the sample source (300 accounts), the niche CSV source and,
    with ``graph``, its held Entra tenant."""
    example = (ROOT / "config.example.toml").read_text()
    head = example[: example.index("# --- Sources")]
    head = head.replace('fail_on = "high"', f'fail_on = "high"\n{audit}')
    sample = example[
        example.index("# The embedded synthetic") : example.index("# Active Directory")
    ]
    sample = sample.replace("accounts = 6000", f"accounts = {ACCOUNTS}")
    start = example.index("# An application's user list")
    # the CSV source only: the data sources that follow it need secrets this test has none of
    csv = example[start : example.index("\n[[sources]]", example.index("[[sources]]", start) + 1)]
    csv = csv[: csv.rfind("\n#")] + "\n" if "\n#" in csv else csv
    csv, n = re.subn(r"(?m)^path = .*$", f"path = {json.dumps(str(csv_path))}", csv)
    assert n == 1
    if graph is not None:
        csv += graph.source(folder, host="wmp")
    tail = example[example.index("[report]") :] + report
    path = folder / "config.toml"
    path.write_text(head + sample + csv + tail)
    return path


def start(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "accessaudit", "run", "-c", str(config), "--fail-on", "none", *args],
        stdin=subprocess.DEVNULL,  # no terminal: nothing may prompt
        # and no controlling terminal either, as under cron or systemd: a prompt opened on
        # /dev/tty fails at once instead of waiting on the terminal pytest was started from
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=config.parent,
    )


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    p = start(config, *args)
    out, err = p.communicate(timeout=DEADLINE)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def first_to_exit(procs: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                return p
        time.sleep(0.02)
    raise AssertionError("neither run exited")


def events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_for_event(path: Path, stage: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if path.exists() and any(e.get("stage") == stage for e in events(path)):
            return
        time.sleep(0.02)
    raise AssertionError(f"stage {stage!r} never logged")


def test_two_runs_started_together_exactly_one_writes(
    tmp_path: Path, export: str, graph: HeldGraph
) -> None:
    csv = tmp_path / "niche-users.csv"
    csv.write_text(export, encoding="utf-8")
    config = write_config(tmp_path, csv, graph=graph)
    logs = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    procs = [start(config, "-q", "--json-log", str(log)) for log in logs]
    try:
        loser = first_to_exit(procs)
        winner = procs[1 - procs.index(loser)]
        _, err = loser.communicate(timeout=DEADLINE)
        assert loser.returncode == 4, err
        assert err.startswith("accessaudit: error: another run is writing to ")
        assert winner.poll() is None  # it holds the lock (or is about to read the tenant)
        graph.release.set()
        out, err = winner.communicate(timeout=DEADLINE)
        assert winner.returncode == 0, err
        assert (out, err) == ("", "")  # --quiet
    finally:
        for p in procs:
            p.kill()
            p.wait()
    [written] = RunStore(tmp_path / "accessaudit-data").runs()
    lost = events(logs[procs.index(loser)])
    assert [e["event"] for e in lost] == ["start", "error"]
    assert lost[1]["exit_code"] == 4 and lost[1]["error"] == "LockHeld"
    won = events(logs[procs.index(winner)])
    assert won[0]["event"] == "start" and won[-1]["event"] == "finished"
    stages = [e["stage"] for e in won if e["event"] == "stage"]
    assert stages[:3] == [
        "collecting alliance-sample (sample)",
        "collecting niche (csv)",
        "collecting tenant (entra)",
    ]
    assert f"writing run {written.run_id}" in stages
    finished = won[-1]
    assert finished["exit_code"] == 0 and finished["run_id"] == written.run_id
    assert finished["manifest_sha256"] == sha256_file(written.path / MANIFEST)
    assert finished["open"] == written.manifest["summary"]["open"]
    assert finished["changes"] == written.manifest["summary"]["changes"]


def session_and_terminal(pid: int) -> tuple[int, int]:
    """(session id, tty_nr) of a running process, from ``/proc/<pid>/stat`` (proc(5))."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[3]), int(fields[4])


def test_a_scheduled_run_has_no_terminal_to_prompt_on(
    tmp_path: Path, export: str, graph: HeldGraph
) -> None:
    csv = tmp_path / "niche-users.csv"
    csv.write_text(export, encoding="utf-8")
    log = tmp_path / "run.jsonl"
    p = start(write_config(tmp_path, csv, graph=graph), "-q", "--json-log", str(log))
    try:
        wait_for_event(log, "collecting tenant (entra)")  # running, its Graph reads held
        # a session of its own with no controlling terminal: nothing can open /dev/tty
        assert session_and_terminal(p.pid) == (p.pid, 0)
        graph.release.set()
        out, err = p.communicate(timeout=DEADLINE)  # finishes: nothing waited for input
    finally:
        p.kill()
        p.wait()
    assert p.returncode == 0, err
    assert (out, err) == ("", "")
    assert events(log)[-1]["event"] == "finished"


def test_killing_the_holder_frees_the_lock(tmp_path: Path, export: str, graph: HeldGraph) -> None:
    csv = tmp_path / "niche-users.csv"
    csv.write_text(export, encoding="utf-8")
    log = tmp_path / "held.jsonl"
    holder = start(write_config(tmp_path, csv, graph=graph), "--json-log", str(log))
    try:
        wait_for_event(log, "collecting tenant (entra)")  # it holds the lock now
        assert graph.reached.wait(DEADLINE)  # and waits on the tenant
        blocked = run(write_config(tmp_path, csv))
        assert blocked.returncode == 4, blocked.stderr
    finally:
        holder.kill()
        holder.wait()
    p = run(write_config(tmp_path, csv))
    assert p.returncode == 0, p.stderr
    assert len(RunStore(tmp_path / "accessaudit-data").runs()) == 1


def test_json_log_on_stderr_retention_and_runs(tmp_path: Path, export: str) -> None:
    csv = tmp_path / "niche-users.csv"
    csv.write_text(export, encoding="utf-8")
    config = write_config(tmp_path, csv, audit="keep_runs = 2\n")
    for _ in range(3):
        p = run(config, "-q", "--json-log", "-")
        assert p.returncode == 0 and p.stdout == ""
        lines = [json.loads(line) for line in p.stderr.splitlines()]
        assert lines[0]["event"] == "start" and lines[-1]["event"] == "finished"
    data = tmp_path / "accessaudit-data"
    runs = RunStore(data).runs()
    assert len(runs) == 2
    assert lines[-1]["pruned"] and lines[-1]["pruned"][0] < runs[0].run_id
    assert len((data / "pruned-runs.jsonl").read_text().splitlines()) == 1
    # the trend of the newest run still has the deleted run's point
    trend = (runs[-1].path / "trend.csv").read_text(encoding="utf-8-sig").splitlines()
    assert sum(1 for line in trend if ',"total",' in line) == 3
    listing = subprocess.run(
        [sys.executable, "-m", "accessaudit", "runs", "--config", str(config)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()[1:]  # below the header
    # the run retention deleted is listed too, marked pruned, with its kept counts
    assert [line.split()[:2] for line in listing] == [
        [lines[-1]["pruned"][0], "pruned"],
        *([r.run_id, "complete"] for r in runs),
    ]
    # every count, then the folder (or "deleted by retention <date>" for the pruned run)
    assert [len(line.split()) for line in listing] == [13, 10, 10]
    p = subprocess.run(
        [sys.executable, "-m", "accessaudit", "verify", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (p.returncode, p.stdout) == (0, "ok: 2 run(s) intact, chain verified\n")
