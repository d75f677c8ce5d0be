"""Every run a data directory has ever had, stored or not: what ``accessaudit runs`` lists.

The stored runs are only part of the record. Retention deletes runs and writes each one's line
to ``pruned-runs.jsonl`` first (:mod:`accessaudit.store.retention`); a run folder deleted by
hand leaves no line, but the run after it still names it as its ``previous_run``. So the
timeline is the stored runs, the ledger's pruned runs and, for every ``previous_run`` that is
neither, a **missing** run (the gap ``accessaudit verify`` reports as a broken chain). A folder
under ``runs/`` without a manifest is listed as **damaged**. A deleted newest run leaves no
successor to name it: only the anchor kept outside the store (the ``--json-log`` line's
``manifest_sha256``) can show that one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from accessaudit.errors import StoreError
from accessaudit.store.retention import pruned_entries
from accessaudit.store.runs import MANIFEST, RunStore, open_run


class Presence(StrEnum):
    STORED = "stored"  # a run folder with its manifest
    PRUNED = "pruned"  # deleted by retention; its summary is in pruned-runs.jsonl
    MISSING = "missing"  # named as previous run, but neither stored nor in the ledger
    DAMAGED = "damaged"  # a run folder whose manifest is missing or unreadable


#: States that mean the record has a hole (``runs`` exits 2 for them).
GAPS = (Presence.MISSING, Presence.DAMAGED)


@dataclass(frozen=True)
class TimelineEntry:
    run_id: str
    state: Presence
    #: the stored manifest, or the ledger entry of a pruned run (both carry ``summary``)
    record: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None
    #: for a missing run: the run (stored or pruned) that names it as its previous run
    named_by: str | None = None

    @property
    def complete(self) -> bool:
        return self.record.get("complete") is True

    @property
    def gap(self) -> bool:
        return self.state in GAPS


def timeline(data_dir: Path) -> list[TimelineEntry]:
    """The stored, pruned, missing and damaged runs of ``data_dir``, oldest first (run ids are
    UTC timestamps, so their order is the runs' order)."""
    store = RunStore(data_dir)
    entries: dict[str, TimelineEntry] = {}
    for entry in pruned_entries(data_dir):
        run_id = str(entry["run_id"])
        entries[run_id] = TimelineEntry(run_id, Presence.PRUNED, entry)
    if store.runs_dir.is_dir():
        for path in sorted(store.runs_dir.iterdir()):
            if path.name.startswith(".") or not path.is_dir():
                continue
            if not (path / MANIFEST).is_file():
                entries[path.name] = TimelineEntry(path.name, Presence.DAMAGED, path=path)
                continue
            try:
                run = open_run(path)
            except StoreError:
                entries[path.name] = TimelineEntry(path.name, Presence.DAMAGED, path=path)
                continue
            entries[run.run_id] = TimelineEntry(run.run_id, Presence.STORED, run.manifest, path)
    missing: dict[str, TimelineEntry] = {}
    for e in entries.values():
        prev = e.record.get("previous_run")
        if prev and str(prev) not in entries and str(prev) not in missing:
            missing[str(prev)] = TimelineEntry(str(prev), Presence.MISSING, named_by=e.run_id)
    return sorted([*entries.values(), *missing.values()], key=lambda e: e.run_id)
