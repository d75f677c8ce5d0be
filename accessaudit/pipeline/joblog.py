"""One JSON object per line for a SIEM or a log shipper (``accessaudit run --json-log``).

Every line has ``ts`` (UTC, RFC 3339), ``event``, ``command``, ``pid`` and ``elapsed_s`` (seconds
since the command started); then per event:

* ``start``: ``config`` (the config file), ``data_dir``;
* ``stage``: ``stage`` (what the run is doing now, e.g. "collecting alliance (ldap)");
* ``finished``: ``exit_code``, ``run_id``, ``complete``, ``open`` (the run's findings not
  accepted plus the unknown ones, ``open_unknown`` of them), ``open_by_severity``,
  ``changes`` (new / resolved / regressed / unknown ...), ``manifest_sha256`` (anchor it: the
  newest manifest has no later run vouching for it yet), ``report``, ``pruned``;
* ``error``: ``exit_code``, ``error`` (the exception class), ``message`` (with the hint); for an
  internal error (a bug, exit 2 too) ``internal: true`` and no library text in ``message``.

Directory text never reaches this log: stage names come from the configuration and the code.
Lines are flushed one by one, so a killed run still leaves every stage it reached.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from accessaudit.errors import StoreError
from accessaudit.store.runs import MANIFEST, sha256_file

if TYPE_CHECKING:
    from accessaudit.pipeline.result import RunResult


class JsonLog:
    """Writes events to ``stream`` (already open; the caller owns it)."""

    def __init__(self, stream: IO[str], command: str) -> None:
        self.stream = stream
        self.command = command
        self._t0 = time.monotonic()

    def event(self, event: str, **fields: Any) -> None:
        record = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event": event,
            "command": self.command,
            "pid": os.getpid(),
            "elapsed_s": round(time.monotonic() - self._t0, 3),
            **fields,
        }
        self.stream.write(json.dumps(record, default=str, ensure_ascii=True) + "\n")
        self.stream.flush()

    def stage(self, stage: str) -> None:
        self.event("stage", stage=stage)


@contextlib.contextmanager
def open_log(target: Path | None, command: str) -> Iterator[JsonLog | None]:
    """A :class:`JsonLog` on ``target`` (appended, 0600), on stderr for ``-``; None for None."""
    if target is None:
        yield None
        return
    if str(target) == "-":
        yield JsonLog(sys.stderr, command)
        return
    try:
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot open the JSON log {target}: {exc.strerror}") from None
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        yield JsonLog(fh, command)


def finished_fields(result: RunResult, exit_code: int) -> dict[str, Any]:
    """The ``finished`` event's fields for a run's result."""
    m = result.run.manifest
    s = m.get("summary", {})
    return {
        "exit_code": exit_code,
        "run_id": m.get("run_id"),
        "complete": m.get("complete"),
        "open": s.get("open"),
        "open_unknown": s.get("open_unknown", 0),
        "open_by_severity": s.get("open_by_severity"),
        "changes": s.get("changes"),
        "manifest_sha256": sha256_file(result.run.path / MANIFEST),
        "run_dir": str(result.run.path),
        "report": str(result.report) if result.report else None,
        "pruned": list(result.pruned),
    }
