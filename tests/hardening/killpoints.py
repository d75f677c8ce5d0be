"""Kill ``accessaudit run`` with SIGKILL at many points while it writes; check after each kill.

Run by ``test_crash_safety.py`` as its own process::

    python killpoints.py CONFIG KILLS SEED OUT.json

A fork server: this process imports the package once (nothing is computed, so no thread pool
exists yet) and forks one child per kill point; each child runs the real command line
(``accessaudit.cli.main(["run", ...])``). Kill points are of three kinds:

* ``event``: the child kills itself at its n-th file-system operation under the data directory
  (an ``open`` for writing, a rename, a removal, a ``mkdir`` or ``chmod``: Python audit events),
  before the operation happens; every n of a complete run is tried once;
* ``event+delay``: a timer started at the n-th operation kills it a few milliseconds later
  (in the middle of whatever it writes next);
* ``time``: this process kills the child at a random moment of its run.

After every kill the data directory is checked with nothing but the file system and hashes:
every run folder under its final name verifies (``accessaudit.store.verify``), no earlier run
changed or vanished (except by retention, recorded in its ledger), leftovers of earlier kills were
removed by the next start that got that far (by the latest at the next run that
finishes), and the JSON log and the audit log hold only whole lines. Every 25
points, and at the end, a run without a kill must succeed and leave no leftover at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, NoReturn

WATCHED = frozenset(
    {
        "open",
        "os.rename",
        "os.remove",
        "os.rmdir",
        "os.mkdir",
        "os.chmod",
        "os.truncate",
        "shutil.rmtree",
    }
)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _writes(mode: object, flags: object) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & WRITE_FLAGS)


def child(
    config: str, data: Path, log: Path, kill_at: int | None, delay: float, count: Path | None
) -> NoReturn:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    root = str(data)
    seen = 0

    def under(path: object) -> bool:
        if not isinstance(path, str | bytes | os.PathLike):  # a descriptor, None, ...
            return False
        try:
            text = os.fsdecode(path)
        except TypeError:  # a PathLike whose __fspath__ returns neither str nor bytes
            return False
        return text == root or text.startswith(root + os.sep)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        nonlocal seen
        if event not in WATCHED:
            return
        if event == "open" and not _writes(args[1], args[2]):
            return
        if not any(under(a) for a in args[:2]):
            return
        seen += 1
        if kill_at is not None and seen == kill_at:
            if delay <= 0:
                os.kill(os.getpid(), signal.SIGKILL)
            threading.Timer(delay, os.kill, (os.getpid(), signal.SIGKILL)).start()

    sys.addaudithook(hook)
    code = 1
    try:
        from accessaudit.cli import main

        main(
            ["run", "-c", config, "-q", "--fail-on", "none", "--json-log", str(log)],
            standalone_mode=True,
        )
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    if count is not None:
        count.write_text(str(seen))
    os._exit(code)


class Checker:
    def __init__(self, data: Path, log: Path) -> None:
        self.data = data
        self.runs = data / "runs"
        self.log = log
        self.known: dict[str, str] = {}  # run id -> manifest sha256 of every final run seen
        self.problems: list[str] = []

    def final_runs(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if not self.runs.is_dir():
            return out
        for d in sorted(self.runs.iterdir()):
            if d.name.startswith("."):
                continue
            manifest = d / "manifest.json"
            if not manifest.is_file():
                self.problems.append(f"{d.name}: a run folder under its final name has no manifest")
                continue
            out[d.name] = hashlib.sha256(manifest.read_bytes()).hexdigest()
        return out

    def check(self, point: str, allowed_pids: set[int]) -> None:
        from accessaudit.store.retention import pruned_entries
        from accessaudit.store.verify import verify

        before = len(self.problems)
        now = self.final_runs()
        pruned = {e["run_id"] for e in pruned_entries(self.data)}
        for run_id, digest in self.known.items():
            if run_id not in now and run_id not in pruned:
                self.problems.append(f"{point}: run {run_id} vanished")
            elif run_id in now and now[run_id] != digest:
                self.problems.append(f"{point}: run {run_id}'s manifest changed")
        self.known.update(now)
        self.problems += [f"{point}: verify: {p}" for p in verify(self.data)]
        for left in self.leftovers():
            pid = int(left.rsplit("-", 1)[-1]) if "-" in left else -1
            pid = int(left.split(".")[-2]) if left.endswith(".tmp") else pid
            if pid not in allowed_pids:
                self.problems.append(f"{point}: leftover {left} of an earlier run not removed")
        for log in (self.log, self.data / "audit-log.jsonl"):
            if not log.exists():
                continue
            for n, line in enumerate(log.read_text().splitlines(), 1):
                try:
                    json.loads(line)
                except ValueError:
                    self.problems.append(f"{point}: {log.name} line {n} is not whole: {line!r}")
        if len(self.problems) > before:
            self.problems.append(f"{point}: ^ state: {sorted(os.listdir(self.runs))}")

    def leftovers(self) -> list[str]:
        found = []
        if self.runs.is_dir():
            found += [p.name for p in self.runs.iterdir() if p.name.startswith(".tmp-")]
        found += [p.name for p in self.data.glob(".*.tmp")]
        return found


def fork_run(
    config: str, data: Path, log: Path, kill_at: int | None, delay: float, count: Path | None
) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            child(config, data, log, kill_at, delay, count)
        finally:
            os._exit(99)
    return pid


def _data_dir(config: Path) -> Path:
    """The configuration's ``audit.data_dir``, relative to its folder (as load_settings does)."""
    import tomllib

    audit = tomllib.loads(config.read_text(encoding="utf-8-sig")).get("audit", {})
    value = Path(audit.get("data_dir", "accessaudit-data"))
    return value if value.is_absolute() else config.parent / value


def main() -> None:
    config, kills_wanted, seed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    # everything a run imports, once, before forking
    import accessaudit.cli
    import accessaudit.pipeline.job
    import accessaudit.report.exports
    import accessaudit.store.retention
    import accessaudit.store.verify  # noqa: F401

    # Not load_settings: validating a config compiles its regexes with polars, which starts
    # polars' thread pool in this process, and a child forked while those threads hold a lock
    # waits on it for ever. This process must stay single-threaded: it only reads data_dir.
    data = _data_dir(Path(config))
    log = data.parent / "run.jsonl"
    checker = Checker(data, log)
    rng = random.Random(seed)
    stats: dict[str, Any] = {"points": 0, "killed": 0, "finished": 0, "by_kind": {}}

    def clean_run(label: str) -> None:
        pid = fork_run(config, data, log, None, 0.0, None)
        _, status = os.waitpid(pid, 0)
        if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            checker.problems.append(f"{label}: a run without a kill failed: status {status}")
        checker.check(label, set())
        if checker.leftovers():
            checker.problems.append(
                f"{label}: leftovers after a clean start: {checker.leftovers()}"
            )

    # calibration: how many watched operations, and how long, a complete run takes
    clean_run("first run")
    count_file = data.parent / "events.count"
    started = time.monotonic()
    pid = fork_run(config, data, log, None, 0.0, count_file)
    os.waitpid(pid, 0)
    duration = time.monotonic() - started
    events = int(count_file.read_text())
    checker.check("calibration", set())
    stats.update(events_per_run=events, seconds_per_run=round(duration, 2))

    plan: list[tuple[str, int | None, float]] = [("event", n, 0.0) for n in range(1, events + 1)]
    # Runs killed since the last run that finished: a run killed early (before its start-up
    # removes what earlier kills left) leaves those leftovers in place, so any of these may
    # still have some. A run that finishes has cleaned them all: the set starts again empty.
    killed_since_finish: set[int] = set()
    while stats["killed"] < kills_wanted or plan:
        if plan:
            kind, at, delay = plan.pop(0)
        elif rng.random() < 0.5:
            kind, at, delay = "event+delay", rng.randint(1, events), rng.uniform(0.0005, 0.03)
        else:
            kind, at, delay = "time", None, rng.uniform(0.05, duration)
        pid = fork_run(config, data, log, at, delay if kind != "time" else 0.0, None)
        if kind == "time":
            time.sleep(delay)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        stats["points"] += 1
        stats["killed" if killed else "finished"] += 1
        stats["by_kind"][kind] = stats["by_kind"].get(kind, 0) + 1
        if not killed and not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            checker.problems.append(f"{kind} {at} {delay:.4f}: exit status {status}")
        if killed:
            killed_since_finish.add(pid)
        else:
            killed_since_finish = set()
        checker.check(f"{kind} {at} {delay:.4f}", killed_since_finish)
        if stats["points"] % 25 == 0:
            clean_run(f"clean run after {stats['points']} points")
            killed_since_finish = set()
        if len(checker.problems) > 20:
            break
    clean_run("last run")
    stats["runs_kept"] = len(checker.final_runs())
    stats["problems"] = checker.problems
    Path(out).write_text(json.dumps(stats, indent=2))


if __name__ == "__main__":
    main()
