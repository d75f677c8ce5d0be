"""Retention: delete old runs (``audit.keep_runs`` / ``audit.keep_days``), keeping the evidence.

A run is kept when *any* configured policy keeps it: it is one of the newest ``keep_runs`` runs,
or it started within the last ``keep_days`` days (restic's ``--keep-last`` + ``--keep-within``).
With neither key set nothing is deleted. Whatever the policy, the newest run and the newest
*complete* run are never deleted: the next run's history and the chain need them.

Before a run is deleted, one line is appended to ``<data_dir>/pruned-runs.jsonl``: its id,
times, completeness, the SHA-256 of its manifest, its ``previous_run`` and
``previous_manifest_sha256`` and its ``summary``. So the trend still has the pruned run's point,
and ``accessaudit verify`` can follow the chain of manifests hash by hash across deleted runs,
including the gaps the newest-complete-run rule leaves. The run folder is renamed to
``.tmp-pruned-*`` (it stops being a run at once) and then removed; a crash in between leaves a
``.tmp-*`` folder that the next start removes.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from accessaudit.errors import StoreError
from accessaudit.store.ledger import CHAIN_KEY, LEDGER, next_chain, read_ledger
from accessaudit.store.runs import MANIFEST, RunInfo, RunStore, sha256_file


def run_started(manifest: Mapping[str, Any]) -> datetime:
    """A run's start time: the manifest's ``started``, else the time in its run id."""
    started = manifest.get("started")
    if started:
        value = datetime.fromisoformat(str(started))
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    stamp = str(manifest.get("run_id", ""))[:16]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def _started(run: RunInfo) -> datetime:
    return run_started({"run_id": run.run_id, **run.manifest})


def select_for_deletion(
    runs: Sequence[RunInfo],
    *,
    keep_runs: int | None,
    keep_days: int | None,
    now: datetime,
) -> list[RunInfo]:
    """The runs (oldest first) the policy deletes; pure."""
    if keep_runs is None and keep_days is None:
        return []
    ordered = sorted(runs, key=lambda r: (_started(r), r.run_id))
    protected: set[str] = set()
    if ordered:
        protected.add(ordered[-1].run_id)
        complete = [r for r in ordered if r.complete]
        if complete:
            protected.add(complete[-1].run_id)
    if keep_runs is not None:
        # max(): with fewer runs than keep_runs a negative start would keep only the newest
        protected.update(r.run_id for r in ordered[max(len(ordered) - keep_runs, 0) :])
    if keep_days is not None:
        cutoff = now - timedelta(days=keep_days)
        protected.update(r.run_id for r in ordered if _started(r) >= cutoff)
    return [r for r in ordered if r.run_id not in protected]


def _append_ledger(store: RunStore, entry: dict[str, Any]) -> None:
    """Append ``entry``, chained to the line before (see :mod:`.ledger`)."""
    path = store.data_dir / LEDGER
    try:
        lines = [ln for ln in read_ledger(store.data_dir) if not ln.torn]
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from None
    entry = {**entry, CHAIN_KEY: next_chain(lines)}
    line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StoreError(f"cannot append to {path}: {exc.strerror}", "check free space") from None


def pruned_entries(data_dir: Path) -> list[dict[str, Any]]:
    """The ledger of deleted runs (oldest first). A last line cut short by a crash is left out;
    any other damaged line is a :class:`StoreError` naming the file and line."""
    path = data_dir / LEDGER
    try:
        lines = read_ledger(data_dir)
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from None
    out: list[dict[str, Any]] = []
    for line in lines:
        if line.entry is not None:
            out.append(line.entry)
        elif not line.torn:
            raise StoreError(
                f"{path}:{line.number}: damaged ({line.problem})", "run `accessaudit verify`"
            )
    return out


def prune_runs(
    store: RunStore,
    *,
    keep_runs: int | None,
    keep_days: int | None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> list[str]:
    """Delete the runs the policy selects; return their ids. Call it holding the store lock."""
    doomed = select_for_deletion(
        store.runs(), keep_runs=keep_runs, keep_days=keep_days, now=now or datetime.now(UTC)
    )
    if dry_run:
        return [r.run_id for r in doomed]
    for run in doomed:
        m = run.manifest
        _append_ledger(
            store,
            {
                "run_id": run.run_id,
                "started": m.get("started"),
                "finished": m.get("finished"),
                "complete": run.complete,
                "manifest_sha256": sha256_file(run.path / MANIFEST),
                "previous_run": m.get("previous_run"),
                "previous_manifest_sha256": m.get("previous_manifest_sha256"),
                "summary": m.get("summary"),
                "pruned_at": (now or datetime.now(UTC)).isoformat(),
                # the policy that deleted it: verify checks the deletion against it
                "policy": {"keep_runs": keep_runs, "keep_days": keep_days},
            },
        )
        trash = store.runs_dir / f".tmp-pruned-{run.run_id}-{os.getpid()}"
        try:
            run.path.replace(trash)
        except OSError as exc:
            raise StoreError(f"cannot delete run {run.path}: {exc.strerror}") from None
        shutil.rmtree(trash, ignore_errors=True)
    return [r.run_id for r in doomed]
