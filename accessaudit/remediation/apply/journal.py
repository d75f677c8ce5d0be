"""The journal and the undo file of ``apply``: both written, and fsynced, before a write lands.

The journal is append-only JSON lines beside the plan (``<plan>.journal.jsonl``): per change
``intent`` (with ``prior``: what the write is about to remove, as the undo needs it), then
``done`` / ``noop`` / ``failed``; ``undone`` after an undo. The undo file is an LDIF
(``<plan>.undo.ldif``) for AD changes and a Graph request list (``<plan>.undo.graph.json``) for
Entra ones; an irreversible change appears in both as a ``NOT reversible`` note, never as a
request that would fail.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from accessaudit.errors import AuditError
from accessaudit.remediation.apply.changes import IRREVERSIBLE, IRREVERSIBLE_NOTE, Change
from accessaudit.store.runs import atomic_write_bytes


class ApplyError(AuditError):
    """The apply was refused as a whole (cap exceeded, no directory for a system ...)."""


class UndoText(Protocol):
    def undo_text(self, change: Change, prior: dict[str, Any]) -> dict[str, Any]: ...


class Journal:
    """Append-only JSON lines, each fsynced before the call returns."""

    def __init__(self, path: Path, plan_sha256: str) -> None:
        self.path = path
        self.plan_sha256 = plan_sha256

    def records(self) -> list[dict[str, Any]]:
        """Every readable line of this plan (a line of another plan is refused)."""
        out: list[dict[str, Any]] = []
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
                out.append(rec)
        return out

    def states(self) -> dict[str, list[str]]:
        """action_id -> its journalled states, in order."""
        out: dict[str, list[str]] = {}
        for rec in self.records():
            out.setdefault(rec["action_id"], []).append(rec["state"])
        return out

    def priors(self) -> dict[str, dict[str, Any]]:
        """action_id -> the ``prior`` of its last ``intent`` (what its write removed)."""
        return {
            r["action_id"]: r.get("prior") or {} for r in self.records() if r["state"] == "intent"
        }

    def write(
        self, action_id: str, state: str, reason: str = "", prior: dict[str, Any] | None = None
    ) -> None:
        rec: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(),
            "plan_sha256": self.plan_sha256,
            "action_id": action_id,
            "state": state,
        }
        if reason:
            rec["reason"] = reason
        if prior:
            rec["prior"] = prior
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


def write_undo(
    changes: list[Change],
    priors: Mapping[str, dict[str, Any]],
    dirs: Mapping[str, UndoText],
    ldif: Path,
    graph: Path,
) -> None:
    """The LDIF and Graph requests that put back what the changes remove, fsynced."""
    lines = ["version: 1", ""]
    requests: list[dict[str, Any]] = []
    notes: list[dict[str, str]] = []
    for c in changes:
        if c.kind in IRREVERSIBLE:
            note = f"{c.action_id}: {IRREVERSIBLE_NOTE}"
            if c.system == "ad":
                lines += [f"# {note}", f"# (removed: sIDHistory {c.resource_id})", ""]
            else:
                notes.append({"action_id": c.action_id, "note": IRREVERSIBLE_NOTE})
            continue
        u = dirs[c.system].undo_text(c, priors.get(c.action_id) or {})
        if c.system == "ad":
            lines += [f"# {c.action_id}", str(u["ldif"]), ""]
        else:
            for r in u["requests"]:
                requests.append({"id": str(len(requests) + 1), **r})
    atomic_write_bytes(ldif, "\n".join(lines).encode())
    body: dict[str, Any] = {"requests": requests}
    if notes:
        body["not_reversible"] = notes
    atomic_write_bytes(graph, json.dumps(body, indent=1).encode())
