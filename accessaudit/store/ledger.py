"""``pruned-runs.jsonl``, the ledger of the runs retention deleted: read strictly, and checked
to be as tamper-evident as the manifests.

* Each line records the SHA-256 of the line before it (``prev_entry_sha256``): a line changed,
  removed or inserted breaks the chain at the next line.
* Each run's manifest records the ledger as it stood when the run was written
  (``pruned_ledger``: the number of lines and the SHA-256 of the last one), so every line
  written before a run is vouched for by that run and, through the chain of manifests, by
  every later one.
* Lines written after the newest run (its own retention, or ``accessaudit prune``) are vouched
  for by no manifest yet: each must be a deletion the newest run's retention (``retention`` in
  its manifest) allows: none when it keeps every run, never one of the newest ``keep_runs``
  runs, never a run younger than ``keep_days``. A middle run deleted by hand and explained by a
  forged line is therefore found, with or without retention. (A newest manifest without
  ``retention`` was written before it was recorded: its tail is not judged.)

Ledgers written before these fields existed hold lines without ``prev_entry_sha256``; they are
accepted only before the first chained line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

LEDGER: Final = "pruned-runs.jsonl"
CHAIN_KEY: Final = "prev_entry_sha256"


@dataclass(frozen=True)
class LedgerLine:
    number: int  # 1-based
    raw: bytes  # without the line break
    entry: dict[str, Any] | None  # None: damaged
    problem: str | None  # why it is damaged
    torn: bool = False  # the last line, without a line break: a write cut short by a crash


def line_sha256(line: LedgerLine) -> str:
    """The hash a line is chained and vouched for by: of its entry written canonically (keys
    sorted, no spaces), so the same entry written again with its keys in another order is the
    same line; of its bytes when it is damaged."""
    if line.entry is None:
        return hashlib.sha256(line.raw).hexdigest()
    text = json.dumps(line.entry, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def read_ledger(data_dir: Path) -> list[LedgerLine]:
    """Every line of the ledger (none when there is no ledger); damaged lines are marked, not
    skipped. Raises OSError when the file cannot be read."""
    try:
        data = (data_dir / LEDGER).read_bytes()
    except FileNotFoundError:
        return []
    raws = data.split(b"\n")
    torn_last = raws[-1] != b""
    if not torn_last:
        raws = raws[:-1]
    out = []
    for i, raw in enumerate(raws, start=1):
        entry, problem = _parse(raw)
        out.append(LedgerLine(i, raw, entry, problem, torn_last and i == len(raws)))
    return out


def _parse(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte {exc.start + 1})"
    try:
        entry = json.loads(text)
    except RecursionError:
        return None, "nested too deeply"
    except ValueError:
        return None, "not JSON"
    if not isinstance(entry, dict) or not isinstance(entry.get("run_id"), str):
        return None, "not an entry with a run_id"
    return entry, None


def head(lines: Sequence[LedgerLine]) -> dict[str, Any]:
    """What a manifest records of the ledger (see the module docstring)."""
    return {"entries": len(lines), "sha256": line_sha256(lines[-1]) if lines else None}


def next_chain(lines: Sequence[LedgerLine]) -> str | None:
    """``prev_entry_sha256`` of a line appended now."""
    return line_sha256(lines[-1]) if lines else None


def chain_problems(lines: Sequence[LedgerLine]) -> list[tuple[int, str]]:
    """(line, problem) of damaged lines and of lines not chained to the one before."""
    out: list[tuple[int, str]] = []
    chained = False
    for i, line in enumerate(lines):
        if line.entry is None:
            out.append((line.number, f"damaged: {line.problem}"))
            continue
        if CHAIN_KEY not in line.entry:
            if chained:
                out.append((line.number, "not chained to the line before (a line was inserted)"))
            continue
        chained = True
        want = line_sha256(lines[i - 1]) if i else None
        if line.entry[CHAIN_KEY] != want:
            out.append(
                (
                    line.number,
                    "not chained to the line before (a line before it was changed, removed or"
                    " inserted)",
                )
            )
    return out


def vouched_problems(lines: Sequence[LedgerLine], recorded: Mapping[str, Any]) -> str | None:
    """Why the ledger is not what a run saw (``recorded``: its manifest's ``pruned_ledger``)."""
    n = recorded.get("entries")
    if not isinstance(n, int) or n < 0:
        return "its record of pruned-runs.jsonl is damaged"
    if len(lines) < n:
        return f"pruned-runs.jsonl has {len(lines)} line(s); this run saw {n}"
    if n and line_sha256(lines[n - 1]) != recorded.get("sha256"):
        return f"pruned-runs.jsonl line {n} is not the one this run saw (changed or replaced)"
    return None


def _started(run_id: str) -> datetime | None:
    try:
        return datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _kept(run_id: str, policy: Mapping[str, Any], all_runs: Sequence[str], now: datetime) -> str:
    """What in ``policy`` keeps ``run_id`` ('' when nothing does)."""
    keep_runs, keep_days = policy.get("keep_runs"), policy.get("keep_days")
    if isinstance(keep_runs, int) and sum(r > run_id for r in all_runs) < keep_runs:
        return f"keep_runs = {keep_runs}"
    started = _started(run_id)
    if isinstance(keep_days, int) and (
        started is None or started >= now - timedelta(days=keep_days)
    ):
        return f"keep_days = {keep_days}"
    return ""


def tail_problem(
    entry: Mapping[str, Any],
    newest: str,
    retention: Any,
    stored: Mapping[str, bool],
    all_runs: Sequence[str],
    now: datetime,
) -> str | None:
    """Why a deletion recorded after the newest run ``newest`` was written is not one a
    retention policy made: the entry's own ``policy`` (``accessaudit prune``), else the newest
    run's ``retention``. The policy must configure something and not keep the deleted run, and
    it would have deleted every older run too, but the newest complete one (``stored``: run id
    -> complete; ``all_runs``: every run id, stored or deleted)."""
    run_id = str(entry.get("run_id"))
    policy = entry.get("policy") if isinstance(entry.get("policy"), Mapping) else retention
    policy = policy if isinstance(policy, Mapping) else {}
    if policy.get("keep_runs") is None and policy.get("keep_days") is None:
        return (
            f"deleted run {run_id} is vouched for by no run, and {newest} (the newest) keeps"
            " every run (no retention configured)"
        )
    kept = _kept(run_id, policy, all_runs, now)
    if kept:
        return f"deleted run {run_id} is vouched for by no run, and retention ({kept}) keeps it"
    complete = [r for r, done in stored.items() if done]
    newest_complete = max(complete) if complete else None
    older = [r for r in stored if r < run_id and r != newest_complete]
    if older:
        return (
            f"deleted run {run_id} is vouched for by no run, and the retention that would"
            f" delete it would have deleted {older[-1]} too (stored, older, not the newest"
            " complete run): a run removed by hand?"
        )
    return None
