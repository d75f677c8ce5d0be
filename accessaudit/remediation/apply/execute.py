"""Guarded, opt-in execution of a saved plan's directory changes, with journal and undo.

What is executed and what stays manual (and why) is in
:mod:`accessaudit.remediation.apply.changes`; the checks that refuse a change in
:mod:`accessaudit.remediation.apply.guards`. The guards, in order:

1. the plan's content matches its SHA-256 (and the approved one) - :func:`planfile.load_plan`;
2. the blast-radius cap: more writes than ``max_changes`` refuses the whole apply (a split
   counts each edge it changes and its new group; a primary-group move its three writes);
3. per change, refused without a write: a protected group by SID/RID (unless named in
   ``allow_protected``), a removal from the member's primary group where the directory
   cannot move it first (Graph has none; AD moves it: :mod:`.ldap_primary`), a Graph change to an
   on-premises-synced, dynamic, mail-enabled (Exchange) or role-assignable group, an
   irreversible change (sIDHistory) without ``allow_irreversible``;
4. per change, the object is read again just before the write: an object that is gone, or no
   longer as planned, is *drift* (skipped and reported); a value already absent is a no-op;
5. the per-group cap: a plan removing more than ``max_group_fraction`` of a group's direct
   members (read now, plus those this plan removed in earlier runs) refuses the whole apply
   before any write, unless ``allow_large``;
6. before the first write the undo file (LDIF + Graph JSON requests) is written and fsynced;
   each change is journalled (append-only JSON lines, fsynced) as ``intent`` (with what it
   removes) then ``done`` / ``noop`` / ``failed``. A second run resumes from the journal: a
   change already ``done`` is never repeated; an ``intent`` without outcome is re-read (absent:
   it was done). A change of several writes (a split, a primary-group move) journals each
   ``step`` before it is written; resumed, it is read again and completed from where it
   stopped (every step is idempotent), its first ``intent``'s ``prior`` kept for the undo;
7. AD writes carry the permissive-modify control, so repeating one is a no-op; writes are
   spaced by ``rate`` per second; ``max_failures`` consecutive failures stop the run.

A crash can be injected for tests: ``ACCESSAUDIT_APPLY_KILL_AFTER=k`` SIGKILLs the process
right after the k-th write, before its ``done`` is journalled (the hardest point to resume);
``ACCESSAUDIT_APPLY_KILL_AT_STEP=k`` right after the k-th step of a multi-write change.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from accessaudit.errors import AuditError
from accessaudit.model import ActionKind
from accessaudit.remediation.apply import guards
from accessaudit.remediation.apply.changes import (
    EXECUTABLE,
    IRREVERSIBLE,
    IRREVERSIBLE_NOTE,
    Change,
    Live,
    StepLog,
    expand,
    manual_reason,
)
from accessaudit.remediation.apply.journal import ApplyError, Journal, paths_for, write_undo

__all__ = [
    "EXECUTABLE",
    "KILL_ENV",
    "KILL_STEP_ENV",
    "ApplyError",
    "ApplyReport",
    "Change",
    "Directory",
    "Live",
    "Outcome",
    "apply_plan",
    "paths_for",
    "plan_changes",
    "plan_lock",
    "undo_plan",
]

A = ActionKind
KILL_ENV = "ACCESSAUDIT_APPLY_KILL_AFTER"
KILL_STEP_ENV = "ACCESSAUDIT_APPLY_KILL_AT_STEP"
FINAL = frozenset({"done", "noop"})


class Directory(Protocol):
    """One system's read-before-write and write operations (AD over LDAP, Graph)."""

    def read(self, change: Change) -> Live: ...

    def remove(self, change: Change, live: Live) -> None: ...

    def add(self, change: Change, prior: dict[str, Any]) -> str | None: ...

    def undo_text(self, change: Change, prior: dict[str, Any]) -> dict[str, Any]: ...


@runtime_checkable
class Stepped(Protocol):
    """A directory whose changes of several writes report each step (:class:`_Steps`)."""

    steps: StepLog


@dataclass
class Outcome:
    action_id: str
    state: str  # done, noop, already, drift, refused, failed, manual, dry-run, irreversible
    reason: str = ""


@dataclass
class ApplyReport:
    outcomes: list[Outcome] = field(default_factory=list)
    writes: int = 0
    journal: Path | None = None
    undo: Path | None = None
    undo_graph: Path | None = None

    def count(self, state: str) -> int:
        return sum(1 for o in self.outcomes if o.state == state)

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(o.state for o in self.outcomes).items()))

    @property
    def clean(self) -> bool:
        bad = {"drift", "refused", "failed", "irreversible"}
        return not any(o.state in bad for o in self.outcomes)


def plan_changes(
    actions: Iterable[dict[str, Any]], only_ids: Iterable[str] = ()
) -> tuple[list[Change], list[Outcome]]:
    """The changes of a plan's actions (``only_ids``: these actions, or these expanded
    changes), and a ``manual`` outcome, with its reason, for every action left to a person."""
    only = set(only_ids)
    changes: list[Change] = []
    manual: list[Outcome] = []
    for a in actions:
        reason = manual_reason(a)
        if reason is not None:
            if not only or a["action_id"] in only:
                manual.append(Outcome(a["action_id"], "manual", reason))
            continue
        for c in expand(a):
            if not only or a["action_id"] in only or c.action_id in only:
                changes.append(c)
    return changes, manual


# --- apply -----------------------------------------------------------------------------------


def apply_plan(
    doc: dict[str, Any],
    plan_path: Path,
    dirs: dict[str, Directory],
    *,
    execute: bool = False,
    only_ids: Iterable[str] = (),
    max_changes: int = 50,
    allow_protected: Iterable[str] = (),
    allow_irreversible: bool = False,
    max_group_fraction: float = 0.5,
    allow_large: bool = False,
    rate: float = 1.0,
    max_failures: int = 3,
    sleep: Callable[[float], None] = time.sleep,
) -> ApplyReport:
    """Dry-run (default) or execute a loaded plan's changes; see the module doc."""
    changes, manual = plan_changes(doc["actions"], only_ids)
    report = ApplyReport(outcomes=manual)
    missing = sorted({c.system for c in changes} - set(dirs))
    if missing:
        raise ApplyError(
            f"the plan changes {', '.join(missing)} but no write connection is configured for it",
            "configure [apply] in the config (write credentials), or use --only-ids",
        )
    writes = sum(c.writes for c in changes)
    if writes > max_changes:
        raise ApplyError(
            f"the plan makes {_counted(writes, len(changes))}, above the blast-radius cap of "
            f"{max_changes}",
            "apply a batch with --only-ids, or raise the cap explicitly with --max-changes",
        )
    journal_path, ldif_path, graph_path = paths_for(plan_path)
    every, _ = plan_changes(doc["actions"])  # the undo file covers the whole plan's writes
    with plan_lock(plan_path):
        run = _Run(
            Journal(journal_path, str(doc["sha256"])), dirs, report, execute=execute,
            allow_protected=allow_protected, allow_irreversible=allow_irreversible, rate=rate,
            max_failures=max_failures, sleep=sleep,
        )  # fmt: skip
        to_write = _prepare(run, changes, every, max_group_fraction, allow_large)
        if to_write:
            undo = _Undo(run.priors, dirs, ldif_path, graph_path)
            _write_all(run, to_write, undo.begin(to_write, every, run.seen, run.prior_of))
        return report


@contextlib.contextmanager
def plan_lock(plan_path: Path) -> Iterator[None]:
    """One apply (or undo) of a plan at a time: an OS lock that dies with its process."""
    fd = os.open(plan_path.with_name(plan_path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ApplyError(
                f"another apply of {plan_path} is running",
                "wait for it to finish; the lock is released when that process ends",
            ) from None
        yield
    finally:
        os.close(fd)


@dataclass
class _Run:
    """One apply: its journal, connections, report and write settings."""

    journal: Journal
    dirs: dict[str, Directory]
    report: ApplyReport
    execute: bool
    allow_protected: Iterable[str]
    allow_irreversible: bool
    rate: float
    max_failures: int
    sleep: Callable[[float], None]
    seen: dict[str, list[str]] = field(default_factory=dict)  # the journal's states at start
    priors: dict[str, dict[str, Any]] = field(default_factory=dict)  # and its intents' priors
    kill_after: int = field(default_factory=lambda: int(os.environ.get(KILL_ENV, "0") or 0))
    kill_at_step: int = field(default_factory=lambda: int(os.environ.get(KILL_STEP_ENV, "0") or 0))
    steps: int = 0  # steps of multi-write changes written by this run

    def prior_of(self, c: Change, live: Live) -> dict[str, Any]:
        """What the change's write removes, for the undo: as read now, but a change a crash
        left half made keeps what its first ``intent`` recorded (the directory no longer
        holds it all)."""
        marks = [s for s in self.seen.get(c.action_id, []) if s in ("intent", *FINAL, "undone")]
        if marks and marks[-1] == "intent":
            return {**live.prior, **self.priors.get(c.action_id, {})}
        return live.prior

    def preflight(self, c: Change, live: Live) -> Outcome | None:
        """None when the change is to be written; else its drift / refusal / no-op outcome."""
        verdict = guards.preflight(c, live, self.allow_protected, self.allow_irreversible)
        return None if verdict is None else Outcome(c.action_id, *verdict)


def _prepare(
    run: _Run,
    changes: list[Change],
    every: list[Change],
    max_group_fraction: float,
    allow_large: bool,
) -> list[tuple[Change, Live]]:
    """Read every change (pass 1) and check the per-group cap; the changes left to write, with
    what was read (none on a dry run: each is reported as what it would do)."""
    run.seen = run.journal.states()
    run.priors = run.journal.priors()
    run.report.journal = run.journal.path
    to_write = _read_all(run, changes)
    pending = {c.action_id for c, _ in to_write}
    removed: Counter[tuple[str, str]] = Counter()
    for c in every:
        if c.action_id not in pending and _removed(run.seen.get(c.action_id, [])):
            for group, n in c.removals():
                removed[(c.system, group)] += n
    guards.group_cap(to_write, removed, max_group_fraction, allow_large)
    if not run.execute:
        run.report.outcomes += [
            Outcome(c.action_id, "dry-run", _would(c, live.prior)) for c, live in to_write
        ]
        return []
    return to_write


def _read_all(run: _Run, changes: list[Change]) -> list[tuple[Change, Live]]:
    """Pass 1: read every change's objects; refusals, drift and no-ops are settled (and
    reported) without a write, the rest returned with what was read."""
    to_write: list[tuple[Change, Live]] = []
    for c in changes:
        states = run.seen.get(c.action_id, [])
        settled = [st for st in states if st in (*FINAL, "undone")]
        if settled and settled[-1] in FINAL:
            run.report.outcomes.append(Outcome(c.action_id, "already", "journalled as done"))
            continue
        live = run.dirs[c.system].read(c)
        outcome = run.preflight(c, live)
        if outcome is None:
            to_write.append((c, live))
            continue
        if outcome.state == "noop" and run.execute:
            # an intent left by a crash whose write had landed: that change is now done
            outcome.state = "done" if "intent" in states else "noop"
            run.journal.write(c.action_id, outcome.state, outcome.reason)
        run.report.outcomes.append(outcome)
    return to_write


@dataclass
class _Undo:
    """The undo file (LDIF + Graph JSON requests) and what each change in it removed."""

    priors: dict[str, dict[str, Any]]
    dirs: dict[str, Directory]
    ldif_path: Path
    graph_path: Path
    changes: list[Change] = field(default_factory=list)

    def begin(
        self,
        to_write: list[tuple[Change, Live]],
        every: list[Change],
        seen: dict[str, list[str]],
        prior_of: Callable[[Change, Live], dict[str, Any]],
    ) -> _Undo:
        """Write the undo file before the first write. It covers every change of this plan
        written (and not undone since), by this run (even with --only-ids) or an earlier one,
        and every change about to be written."""
        earlier = [c for c in every if _written(seen.get(c.action_id, []))]
        self.priors |= {c.action_id: prior_of(c, live) for c, live in to_write}
        about = (c for c, _ in to_write)
        self.changes = list({c.action_id: c for c in [*earlier, *about]}.values())
        self.write()
        return self

    def write(self) -> None:
        write_undo(self.changes, self.priors, self.dirs, self.ldif_path, self.graph_path)

    def follow(self, c: Change, prior: dict[str, Any]) -> None:
        """A change read again with another prior than pass 1's (another assignment since,
        say): the undo file follows."""
        if prior != self.priors.get(c.action_id):
            self.priors[c.action_id] = prior
            self.write()


def _write_all(run: _Run, to_write: list[tuple[Change, Live]], undo: _Undo) -> None:
    """Pass 2: re-read each object just before its write (drift since pass 1), then write,
    spaced by the rate; stop after ``max_failures`` failures in a row."""
    run.report.undo, run.report.undo_graph = undo.ldif_path, undo.graph_path
    interval = 1.0 / run.rate if run.rate > 0 else 0.0
    last_write = 0.0
    failures = 0
    for c, _ in to_write:
        live = run.dirs[c.system].read(c)
        if not _still_to_write(run, c, live):
            continue
        undo.follow(c, run.prior_of(c, live))
        wait = last_write + interval - time.monotonic()
        if wait > 0:
            run.sleep(wait)
        written = _write(run, c, live)
        if written is None:
            failures += 1
            if failures >= run.max_failures:
                break
            continue
        last_write = written
        failures = 0


def _still_to_write(run: _Run, c: Change, live: Live) -> bool:
    """Whether the change, read again, is still to be written; else its outcome is reported
    (a no-op journalled)."""
    outcome = run.preflight(c, live)
    if outcome is None:
        return True
    if outcome.state == "noop":
        run.journal.write(c.action_id, "noop", outcome.reason)
    run.report.outcomes.append(outcome)
    return False


def _write(run: _Run, c: Change, live: Live) -> float | None:
    """Journal the intent, write, journal the outcome: when the write was made (None: it
    failed)."""
    run.journal.write(c.action_id, "intent", prior=run.prior_of(c, live))
    d = run.dirs[c.system]
    if isinstance(d, Stepped):
        d.steps = _Steps(run, c.action_id)
    try:
        d.remove(c, live)
    except AuditError as exc:
        run.journal.write(c.action_id, "failed", str(exc))
        run.report.outcomes.append(Outcome(c.action_id, "failed", str(exc)))
        return None
    written = time.monotonic()
    run.report.writes += 1
    if run.kill_after and run.report.writes >= run.kill_after:
        os.kill(os.getpid(), signal.SIGKILL)
    run.journal.write(c.action_id, "done")
    note = IRREVERSIBLE_NOTE if c.kind in IRREVERSIBLE else ""
    run.report.outcomes.append(Outcome(c.action_id, "done", note))
    return written


class _Steps:
    """The steps of one change of several writes: each journalled before it is written,
    counted after (a crash can be injected after the k-th: :data:`KILL_STEP_ENV`)."""

    def __init__(self, run: _Run, action_id: str) -> None:
        self.run = run
        self.action_id = action_id

    def before(self, name: str, detail: dict[str, Any] | None = None) -> None:
        self.run.journal.write(self.action_id, "step", name, prior=detail)

    def after(self) -> None:
        self.run.steps += 1
        if self.run.kill_at_step and self.run.steps >= self.run.kill_at_step:
            os.kill(os.getpid(), signal.SIGKILL)


def _counted(writes: int, changes: int) -> str:
    return f"{changes} changes" if writes == changes else f"{writes} writes ({changes} changes)"


def _removed(states: list[str]) -> bool:
    """Whether a change's journal says it is done (and not undone since)."""
    marks = [st for st in states if st in ("done", "undone")]
    return bool(marks) and marks[-1] == "done"


def _written(states: list[str]) -> bool:
    """Whether a change's journal says its write may be in place (not undone since)."""
    marks = [st for st in states if st in ("intent", "done", "undone")]
    return bool(marks) and marks[-1] != "undone"


def _would(c: Change, prior: dict[str, Any]) -> str:
    text = f"would {c.kind}"
    if prior.get("assignments"):
        text += f" ({len(prior['assignments'])} assignment(s))"
    if c.kind in IRREVERSIBLE:
        text += f"; {IRREVERSIBLE_NOTE}"
    return text


def undo_plan(doc: dict[str, Any], plan_path: Path, dirs: dict[str, Directory]) -> ApplyReport:
    """Put back every change the journal records as done by this plan (with what it removed,
    from its ``intent`` line); an irreversible one is reported, never attempted."""
    journal_path, _, _ = paths_for(plan_path)
    journal = Journal(journal_path, str(doc["sha256"]))
    report = ApplyReport(journal=journal_path)
    changes, _ = plan_changes(doc["actions"])
    with plan_lock(plan_path):
        states = journal.states()
        priors = journal.priors()
        for c in changes:
            st = states.get(c.action_id, [])
            # done and not undone since (the last of the two in the journal wins)
            if "done" not in st or st[::-1].index("done") > _last(st, "undone"):
                continue
            if c.kind in IRREVERSIBLE:
                report.outcomes.append(Outcome(c.action_id, "irreversible", IRREVERSIBLE_NOTE))
                continue
            note = dirs[c.system].add(c, priors.get(c.action_id) or {})
            report.writes += 1
            journal.write(c.action_id, "undone", note or "")
            report.outcomes.append(Outcome(c.action_id, "undone", note or ""))
    return report


def _last(states: list[str], state: str) -> int:
    """Distance from the end of the last ``state`` (a large number when absent)."""
    return states[::-1].index(state) if state in states else len(states) + 1
