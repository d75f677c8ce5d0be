"""Guarded, opt-in execution of a saved plan's membership removals, with journal and undo.

Only ``remove-member`` and ``unnest-group`` actions are executed (in AD over LDAP, or through
Graph for cloud-mastered groups); every other action is a task for a person and is listed as
``manual``. The guards, in order:

1. the plan's content matches its SHA-256 (and the approved one) - :func:`planfile.load_plan`;
2. the blast-radius cap: more changes than ``max_changes`` refuses the whole apply;
3. per change, refused without a write: a protected group by SID/RID (unless named in
   ``allow_protected``), a removal from the member's primary group, a Graph change to an
   on-premises-synced, dynamic, mail-enabled (Exchange) or role-assignable group;
4. per change, the object is read again just before the write: a group or member that is gone
   is *drift* (skipped and reported); a membership already absent is a no-op (no write);
5. before the first write the undo file (LDIF ``add: member`` + Graph JSON requests) is written
   and fsynced; each change is journalled (append-only JSON lines, fsynced) as ``intent`` then
   ``done`` / ``noop`` / ``failed``. A second run resumes from the journal: a change already
   ``done`` is never repeated; an ``intent`` without outcome is re-read (absent: it was done);
6. AD removals carry the permissive-modify control, so repeating one is a no-op; writes are
   spaced by ``rate`` per second; ``max_failures`` consecutive failures stop the run.

A crash can be injected for tests: ``ACCESSAUDIT_APPLY_KILL_AFTER=k`` SIGKILLs the process
right after the k-th write, before its ``done`` is journalled (the hardest point to resume).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ..errors import AuditError
from ..model import ActionKind, Via, is_privileged_sid
from ..store import atomic_write_bytes

EXECUTABLE = frozenset({ActionKind.REMOVE_MEMBER.value, ActionKind.UNNEST_GROUP.value})
KILL_ENV = "ACCESSAUDIT_APPLY_KILL_AFTER"
FINAL = frozenset({"done", "noop"})


class ApplyError(AuditError):
    """The apply was refused as a whole (cap exceeded, no directory for a system ...)."""


@dataclass(frozen=True)
class Change:
    action_id: str
    kind: str
    system: str  # "ad" or "cloud"
    group_id: str
    member_id: str
    group_sid: str | None
    member_dn: str | None
    group_dn: str | None
    via: str | None

    @classmethod
    def of(cls, action: dict[str, Any]) -> Change:
        t = action.get("target") or {}
        return cls(
            action["action_id"],
            action["kind"],
            action["system"],
            action["group_id"],
            action["member_id"],
            t.get("group_sid"),
            t.get("member_dn"),
            t.get("group_dn"),
            t.get("via"),
        )


@dataclass(frozen=True)
class Live:
    """What the directory holds now, read just before a change."""

    group_exists: bool
    member_exists: bool
    is_member: bool
    group_sid: str | None = None
    primary: bool = False  # the group is the member's primary group
    synced: bool = False  # Graph: onPremisesSyncEnabled
    dynamic: bool = False  # Graph: DynamicMembership
    mail_enabled: bool = False  # Graph: a distribution / mail-enabled security group (Exchange)
    role_assignable: bool = False  # Graph: isAssignableToRole (needs a directory-role write)


class Directory(Protocol):
    """One system's read-before-write and write operations (AD over LDAP, Graph)."""

    def read(self, change: Change) -> Live: ...

    def remove(self, change: Change) -> None: ...

    def add(self, change: Change) -> None: ...

    def undo_text(self, change: Change) -> dict[str, Any]: ...


@dataclass
class Outcome:
    action_id: str
    state: str  # done, noop, already, drift, refused, failed, manual, dry-run
    reason: str = ""


@dataclass
class ApplyReport:
    outcomes: list[Outcome] = field(default_factory=list)
    writes: int = 0
    journal: Path | None = None
    undo: Path | None = None

    def count(self, state: str) -> int:
        return sum(1 for o in self.outcomes if o.state == state)

    @property
    def clean(self) -> bool:
        bad = {"drift", "refused", "failed"}
        return not any(o.state in bad for o in self.outcomes)


# --- journal ---------------------------------------------------------------------------------


class Journal:
    """Append-only JSON lines, each fsynced before the call returns."""

    def __init__(self, path: Path, plan_sha256: str) -> None:
        self.path = path
        self.plan_sha256 = plan_sha256

    def states(self) -> dict[str, list[str]]:
        """action_id -> its journalled states, in order (lines of another plan are refused)."""
        out: dict[str, list[str]] = {}
        if not self.path.exists():
            return out
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash: its change is re-read on resume
            if rec.get("plan_sha256") != self.plan_sha256:
                raise ApplyError(
                    f"journal {self.path}:{number} belongs to another plan",
                    "move the old journal away, or apply the plan it belongs to",
                )
            if rec.get("action_id"):
                out.setdefault(rec["action_id"], []).append(rec["state"])
        return out

    def write(self, action_id: str, state: str, reason: str = "") -> None:
        rec = {
            "ts": datetime.now(UTC).isoformat(),
            "plan_sha256": self.plan_sha256,
            "action_id": action_id,
            "state": state,
        }
        if reason:
            rec["reason"] = reason
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            # a line torn by a crash stays on its own line (it is skipped when read back)
            torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
            line = ("\n" if torn else "") + json.dumps(rec, sort_keys=True) + "\n"
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)


def paths_for(plan_path: Path) -> tuple[Path, Path, Path]:
    """(journal, LDIF undo, Graph undo) beside the plan."""
    stem = plan_path.with_suffix("")
    return (
        stem.with_name(stem.name + ".journal.jsonl"),
        stem.with_name(stem.name + ".undo.ldif"),
        stem.with_name(stem.name + ".undo.graph.json"),
    )


def write_undo(changes: list[Change], dirs: dict[str, Directory], ldif: Path, graph: Path) -> None:
    """LDIF ``add: member`` per AD removal and a Graph request per cloud removal, fsynced."""
    lines = ["version: 1", ""]
    requests: list[dict[str, Any]] = []
    for c in changes:
        u = dirs[c.system].undo_text(c)
        if c.system == "ad":
            lines += [f"# {c.action_id}", str(u["ldif"]), ""]
        else:
            requests.append({"id": str(len(requests) + 1), **u})
    atomic_write_bytes(ldif, "\n".join(lines).encode())
    atomic_write_bytes(graph, json.dumps({"requests": requests}, indent=1).encode())


# --- apply -----------------------------------------------------------------------------------


def _refusal(change: Change, live: Live, allow_protected: Iterable[str]) -> str | None:
    allowed = set(allow_protected)
    sid = live.group_sid or change.group_sid
    if is_privileged_sid(sid) and change.group_id not in allowed and (sid or "") not in allowed:
        return f"protected group {sid} (name it with --allow-protected to change it)"
    if live.primary or change.via == Via.PRIMARY_GROUP.value:
        return "the member's primary group (change primaryGroupID first)"
    if change.system == "cloud" and live.synced:
        return "group synced from on-premises AD: change it in AD"
    if change.system == "cloud" and live.dynamic:
        return "dynamic group: change its membership rule"
    if change.system == "cloud" and live.mail_enabled:
        return "mail-enabled group: change it in Exchange"
    if change.system == "cloud" and live.role_assignable:
        return "role-assignable group: the write app is deliberately not granted to change it"
    return None


def apply_plan(
    doc: dict[str, Any],
    plan_path: Path,
    dirs: dict[str, Directory],
    *,
    execute: bool = False,
    only_ids: Iterable[str] = (),
    max_changes: int = 50,
    allow_protected: Iterable[str] = (),
    rate: float = 1.0,
    max_failures: int = 3,
    sleep: Callable[[float], None] = time.sleep,
) -> ApplyReport:
    """Dry-run (default) or execute a loaded plan's membership removals; see the module doc."""
    only = set(only_ids)
    actions = [a for a in doc["actions"] if not only or a["action_id"] in only]
    report = ApplyReport()
    changes: list[Change] = []
    for a in actions:
        if a["kind"] in EXECUTABLE and a.get("system") in ("ad", "cloud"):
            changes.append(Change.of(a))
        else:
            report.outcomes.append(Outcome(a["action_id"], "manual", f"{a['kind']}: by hand"))
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
    with plan_lock(plan_path):
        return _apply(
            doc, changes, report, dirs, journal_path, ldif_path, graph_path,
            execute=execute, allow_protected=allow_protected, rate=rate,
            max_failures=max_failures, sleep=sleep,
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
    doc: dict[str, Any],
    changes: list[Change],
    report: ApplyReport,
    dirs: dict[str, Directory],
    journal_path: Path,
    ldif_path: Path,
    graph_path: Path,
    *,
    execute: bool,
    allow_protected: Iterable[str],
    rate: float,
    max_failures: int,
    sleep: Callable[[float], None],
) -> ApplyReport:
    journal = Journal(journal_path, str(doc["sha256"]))
    seen = journal.states()
    report.journal = journal_path
    kill_after = int(os.environ.get(KILL_ENV, "0") or 0)
    interval = 1.0 / rate if rate > 0 else 0.0

    # Pass 1: read every change's objects; refusals, drift and no-ops are settled without a write.
    to_write: list[Change] = []
    for c in changes:
        states = seen.get(c.action_id, [])
        settled = [st for st in states if st in (*FINAL, "undone")]
        if settled and settled[-1] in FINAL:
            report.outcomes.append(Outcome(c.action_id, "already", "journalled as done"))
            continue
        outcome = _preflight(c, dirs[c.system].read(c), allow_protected)
        if outcome is None:
            to_write.append(c)
            continue
        if outcome.state == "noop" and execute:
            # an intent left by a crash whose write had landed: that change is now done
            outcome.state = "done" if "intent" in states else "noop"
            journal.write(c.action_id, outcome.state, outcome.reason)
        report.outcomes.append(outcome)
    if not execute:
        report.outcomes += [Outcome(c.action_id, "dry-run", "would remove") for c in to_write]
        return report
    if not to_write:
        return report
    # The undo file covers every change this plan has written or is about to write.
    earlier = [c for c in changes if "intent" in seen.get(c.action_id, [])]
    undo = {c.action_id: c for c in [*earlier, *to_write]}
    write_undo(list(undo.values()), dirs, ldif_path, graph_path)
    report.undo = ldif_path

    # Pass 2: re-read each object just before its write (drift since pass 1), then write.
    last_write = 0.0
    failures = 0
    for c in to_write:
        d = dirs[c.system]
        outcome = _preflight(c, d.read(c), allow_protected)
        if outcome is not None:
            if outcome.state == "noop":
                journal.write(c.action_id, "noop", outcome.reason)
            report.outcomes.append(outcome)
            continue
        wait = last_write + interval - time.monotonic()
        if wait > 0:
            sleep(wait)
        journal.write(c.action_id, "intent")
        try:
            d.remove(c)
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
        report.outcomes.append(Outcome(c.action_id, "done"))
    return report


def _preflight(change: Change, live: Live, allow_protected: Iterable[str]) -> Outcome | None:
    """None when the change is to be written; else its drift / refusal / no-op outcome."""
    if not live.group_exists or not live.member_exists:
        what = "group" if not live.group_exists else "member"
        return Outcome(change.action_id, "drift", f"{what} no longer exists")
    refusal = _refusal(change, live, allow_protected)
    if refusal:
        return Outcome(change.action_id, "refused", refusal)
    if not live.is_member:
        return Outcome(change.action_id, "noop", "already absent")
    return None


def undo_plan(doc: dict[str, Any], plan_path: Path, dirs: dict[str, Directory]) -> ApplyReport:
    """Add back every membership the journal records as removed (``done``) by this plan."""
    journal_path, _, _ = paths_for(plan_path)
    journal = Journal(journal_path, str(doc["sha256"]))
    report = ApplyReport(journal=journal_path)
    with plan_lock(plan_path):
        states = journal.states()
        for a in doc["actions"]:
            st = states.get(a["action_id"], [])
            # done and not undone since (the last of the two in the journal wins)
            if "done" not in st or st[::-1].index("done") > _last(st, "undone"):
                continue
            c = Change.of(a)
            dirs[c.system].add(c)
            report.writes += 1
            journal.write(c.action_id, "undone")
            report.outcomes.append(Outcome(c.action_id, "undone"))
    return report


def _last(states: list[str], state: str) -> int:
    """Distance from the end of the last ``state`` (a large number when absent)."""
    return states[::-1].index(state) if state in states else len(states) + 1
