"""Guarded, opt-in execution of a saved plan's directory changes, with journal and undo.

What is executed and what stays manual (and why) is in :mod:`.apply_changes`. The guards, in
order:

1. the plan's content matches its SHA-256 (and the approved one) - :func:`planfile.load_plan`;
2. the blast-radius cap: more changes than ``max_changes`` refuses the whole apply;
3. per change, refused without a write: a protected group by SID/RID (unless named in
   ``allow_protected``), a removal from the member's primary group, a Graph change to an
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
   it was done);
7. AD writes carry the permissive-modify control, so repeating one is a no-op; writes are
   spaced by ``rate`` per second; ``max_failures`` consecutive failures stop the run.

A crash can be injected for tests: ``ACCESSAUDIT_APPLY_KILL_AFTER=k`` SIGKILLs the process
right after the k-th write, before its ``done`` is journalled (the hardest point to resume).
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
from typing import Any, Protocol

from accessaudit.errors import AuditError
from accessaudit.model import ActionKind, Via, is_privileged_sid
from accessaudit.remediation.apply.changes import (
    DYNAMIC_REASON,
    EXCHANGE_REASON,
    EXECUTABLE,
    IRREVERSIBLE,
    IRREVERSIBLE_NOTE,
    MEMBERSHIP,
    Change,
    Live,
    expand,
    manual_reason,
)
from accessaudit.remediation.apply.journal import ApplyError, Journal, paths_for, write_undo

__all__ = [
    "EXECUTABLE",
    "KILL_ENV",
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
FINAL = frozenset({"done", "noop"})


class Directory(Protocol):
    """One system's read-before-write and write operations (AD over LDAP, Graph)."""

    def read(self, change: Change) -> Live: ...

    def remove(self, change: Change, live: Live) -> None: ...

    def add(self, change: Change, prior: dict[str, Any]) -> None: ...

    def undo_text(self, change: Change, prior: dict[str, Any]) -> dict[str, Any]: ...


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


# --- refusals --------------------------------------------------------------------------------


def _refusal(change: Change, live: Live, allow_protected: Iterable[str]) -> str | None:
    allowed = set(allow_protected)
    sid = live.group_sid or change.group_sid
    named = {change.group_id, sid} & allowed
    if is_privileged_sid(sid) and not named:
        return f"protected group {sid} (name it with --allow-protected to change it)"
    if change.kind in MEMBERSHIP and (live.primary or change.via == Via.PRIMARY_GROUP.value):
        return "the member's primary group (change primaryGroupID first)"
    if change.system == "cloud" and live.synced:
        what = "account" if change.kind == A.CLEAR_MANAGER.value else "group"
        return f"{what} synced from on-premises AD: change it in AD"
    if change.system == "cloud" and change.kind in MEMBERSHIP and live.dynamic:
        return DYNAMIC_REASON
    if change.system == "cloud" and change.kind in MEMBERSHIP and live.mail_enabled:
        return EXCHANGE_REASON
    if change.system == "cloud" and live.role_assignable:
        return "role-assignable group: the write app is deliberately not granted to change it"
    return None


def _preflight(
    change: Change, live: Live, allow_protected: Iterable[str], allow_irreversible: bool
) -> Outcome | None:
    """None when the change is to be written; else its drift / refusal / no-op outcome."""
    if not live.group_exists or not live.member_exists:
        what = "group" if not live.group_exists else "member"
        return Outcome(change.action_id, "drift", f"{what} no longer exists")
    if live.drift:
        return Outcome(change.action_id, "drift", live.drift)
    refusal = _refusal(change, live, allow_protected) or live.refusal
    if refusal:
        return Outcome(change.action_id, "refused", refusal)
    if not live.is_member:
        return Outcome(change.action_id, "noop", "already absent")
    if change.kind in IRREVERSIBLE and not allow_irreversible:
        return Outcome(
            change.action_id,
            "refused",
            f"irreversible ({IRREVERSIBLE_NOTE}); pass --allow-irreversible to make it",
        )
    return None


def _group_cap(
    to_write: list[tuple[Change, Live]],
    earlier: Counter[tuple[str, str]],
    max_fraction: float,
    allow_large: bool,
) -> None:
    """Refuse the apply when, with what this plan removed from a group in earlier runs
    (``earlier``: batches of --only-ids, a resumed run), more than ``max_fraction`` of the
    group's members before the plan would be gone."""
    if allow_large:
        return
    removing: Counter[tuple[str, str]] = Counter()
    size: dict[tuple[str, str], int] = {}
    for c, live in to_write:
        if c.kind in MEMBERSHIP and c.group_id and live.size:
            key = (c.system, c.group_id)
            removing[key] += 1
            size[key] = live.size
    over = sorted(
        (k, n + earlier[k], size[k] + earlier[k], earlier[k])
        for k, n in removing.items()
        if n + earlier[k] > max_fraction * (size[k] + earlier[k])
    )
    if over:
        listed = ", ".join(
            f"{g} ({n} of {s} members" + (f", {e} removed earlier by this plan)" if e else ")")
            for (_, g), n, s, e in over[:5]
        )
        raise ApplyError(
            f"the plan removes more than {max_fraction:.0%} of the members of "
            f"{len(over)} group(s): {listed}",
            "check those groups with their owners; pass --allow-large to go ahead, or apply "
            "a smaller batch with --only-ids",
        )


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
    if len(changes) > max_changes:
        raise ApplyError(
            f"the plan makes {len(changes)} changes, above the blast-radius cap of {max_changes}",
            "apply a batch with --only-ids, or raise the cap explicitly with --max-changes",
        )
    journal_path, ldif_path, graph_path = paths_for(plan_path)
    every, _ = plan_changes(doc["actions"])  # the undo file covers the whole plan's writes
    with plan_lock(plan_path):
        return _apply(
            Journal(journal_path, str(doc["sha256"])), changes, every, report, dirs, ldif_path,
            graph_path, execute=execute, allow_protected=allow_protected,
            allow_irreversible=allow_irreversible, max_group_fraction=max_group_fraction,
            allow_large=allow_large, rate=rate, max_failures=max_failures, sleep=sleep,
        )  # fmt: skip


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


def _apply(
    journal: Journal,
    changes: list[Change],
    every: list[Change],
    report: ApplyReport,
    dirs: dict[str, Directory],
    ldif_path: Path,
    graph_path: Path,
    *,
    execute: bool,
    allow_protected: Iterable[str],
    allow_irreversible: bool,
    max_group_fraction: float,
    allow_large: bool,
    rate: float,
    max_failures: int,
    sleep: Callable[[float], None],
) -> ApplyReport:
    seen = journal.states()
    priors = journal.priors()
    report.journal = journal.path
    kill_after = int(os.environ.get(KILL_ENV, "0") or 0)
    interval = 1.0 / rate if rate > 0 else 0.0

    def preflight(c: Change, live: Live) -> Outcome | None:
        return _preflight(c, live, allow_protected, allow_irreversible)

    # Pass 1: read every change's objects; refusals, drift and no-ops are settled without a write.
    to_write: list[tuple[Change, Live]] = []
    for c in changes:
        states = seen.get(c.action_id, [])
        settled = [st for st in states if st in (*FINAL, "undone")]
        if settled and settled[-1] in FINAL:
            report.outcomes.append(Outcome(c.action_id, "already", "journalled as done"))
            continue
        live = dirs[c.system].read(c)
        outcome = preflight(c, live)
        if outcome is None:
            to_write.append((c, live))
            continue
        if outcome.state == "noop" and execute:
            # an intent left by a crash whose write had landed: that change is now done
            outcome.state = "done" if "intent" in states else "noop"
            journal.write(c.action_id, outcome.state, outcome.reason)
        report.outcomes.append(outcome)
    pending = {c.action_id for c, _ in to_write}
    removed = Counter(
        (c.system, c.group_id)
        for c in every
        if c.kind in MEMBERSHIP and c.group_id and c.action_id not in pending
        and _removed(seen.get(c.action_id, []))
    )  # fmt: skip
    _group_cap(to_write, removed, max_group_fraction, allow_large)
    if not execute:
        report.outcomes += [
            Outcome(c.action_id, "dry-run", _would(c, live.prior)) for c, live in to_write
        ]
        return report
    if not to_write:
        return report
    # The undo file covers every change of this plan written (and not undone since), by this
    # run (even with --only-ids) or an earlier one, and every change about to be written.
    earlier = [c for c in every if _written(seen.get(c.action_id, []))]
    priors |= {c.action_id: live.prior for c, live in to_write}
    undo_changes = list({c.action_id: c for c in [*earlier, *(c for c, _ in to_write)]}.values())
    write_undo(undo_changes, priors, dirs, ldif_path, graph_path)
    report.undo, report.undo_graph = ldif_path, graph_path

    # Pass 2: re-read each object just before its write (drift since pass 1), then write.
    last_write = 0.0
    failures = 0
    for c, _ in to_write:
        d = dirs[c.system]
        live = d.read(c)
        outcome = preflight(c, live)
        if outcome is not None:
            if outcome.state == "noop":
                journal.write(c.action_id, "noop", outcome.reason)
            report.outcomes.append(outcome)
            continue
        if live.prior != priors.get(c.action_id):
            # changed since pass 1 (another assignment, say): the undo file follows
            priors[c.action_id] = live.prior
            write_undo(undo_changes, priors, dirs, ldif_path, graph_path)
        wait = last_write + interval - time.monotonic()
        if wait > 0:
            sleep(wait)
        journal.write(c.action_id, "intent", prior=live.prior)
        try:
            d.remove(c, live)
        except AuditError as exc:
            failures += 1
            journal.write(c.action_id, "failed", str(exc))
            report.outcomes.append(Outcome(c.action_id, "failed", str(exc)))
            if failures >= max_failures:
                break
            continue
        last_write = time.monotonic()
        report.writes += 1
        failures = 0
        if kill_after and report.writes >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        journal.write(c.action_id, "done")
        note = IRREVERSIBLE_NOTE if c.kind in IRREVERSIBLE else ""
        report.outcomes.append(Outcome(c.action_id, "done", note))
    return report


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
            dirs[c.system].add(c, priors.get(c.action_id) or {})
            report.writes += 1
            journal.write(c.action_id, "undone")
            report.outcomes.append(Outcome(c.action_id, "undone"))
    return report


def _last(states: list[str], state: str) -> int:
    """Distance from the end of the last ``state`` (a large number when absent)."""
    return states[::-1].index(state) if state in states else len(states) + 1
