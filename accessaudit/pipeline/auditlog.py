"""The tool's own audit log: who ran what, with which configuration, what was read and disclosed.

Modelled on the logging duty of the Data Protection Act 2018 s.62 (collection, consultation,
disclosure, alteration, erasure; who, when, why): ``<data_dir>/audit-log.jsonl``, one JSON object
per line, appended and fsynced, created 0600. Every line has ``ts`` (UTC), ``event``, ``command``,
``argv``, ``user``, ``uid``, ``host``, ``pid``, ``tool_version``, ``config`` (absolute path) and
``config_hash`` (the manifest's); then per event:

* ``start``: a command that reads directories or discloses data began (a killed run leaves it);
* ``finished`` (``run`` / ``demo``): ``exit_code``, ``run_id``, ``complete``, ``manifest_sha256``,
  ``sources`` (name, kind, source, server or tenant, complete, counts: what was *collected*),
  ``exported`` (every report and export file with its SHA-256: what was *disclosed*),
  ``pseudonymised``, ``pruned`` (runs *erased* by retention);
* ``exported`` (``report``): the run re-rendered, the file written and its SHA-256;
* ``pruned`` (``prune``): the runs deleted (or, with ``dry_run``, that would be);
* ``error``: ``exit_code``, ``error`` (class) and ``message`` of a failed command; an internal
  error (a bug) has ``internal: true`` and no message (see ``errors.error_fields``).

Secrets never reach it: configuration holds only references to them, and messages of this
package never carry a secret's value. Directory text does not either (names are not logged).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accessaudit.errors import StoreError, error_fields
from accessaudit.store.runs import MANIFEST, private_dir, sha256_file

if TYPE_CHECKING:
    from accessaudit.config.settings import Settings
    from accessaudit.pipeline.result import RunResult

LOG_NAME = "audit-log.jsonl"
#: Files of a run that disclose its data (the tables are evidence, not disclosures).
DISCLOSURES = (".html", ".csv", ".xlsx", ".json")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container): the uid says who
        return f"uid {os.geteuid()}"


def append(data_dir: Path, record: Mapping[str, Any]) -> None:
    """Append one line to ``data_dir``'s audit log (created 0600 in a 0700 folder)."""
    private_dir(data_dir)
    path = data_dir / LOG_NAME
    line = (json.dumps(record, default=str, ensure_ascii=True, sort_keys=False) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StoreError(
            f"cannot write the audit log {path}: {exc.strerror}", "check free space and permissions"
        ) from None


class AuditTrail:
    """The audit log lines of one command invocation."""

    def __init__(
        self,
        data_dir: Path,
        command: str,
        *,
        config: Path | None = None,
        settings: Settings | None = None,
    ) -> None:
        from accessaudit.config.settings import settings_hash
        from accessaudit.version import tool_version

        self.data_dir = data_dir
        self.base: dict[str, Any] = {
            "command": command,
            "argv": [Path(sys.argv[0]).name, *sys.argv[1:]],
            "user": _user(),
            "uid": os.geteuid(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "tool_version": tool_version(),
            "config": str(config.resolve()) if config else None,
            "config_hash": settings_hash(settings) if settings else None,
        }

    def event(self, event: str, **fields: Any) -> None:
        ts = datetime.now(UTC).isoformat(timespec="milliseconds")
        append(self.data_dir, {"ts": ts, "event": event, **self.base, **fields})

    def error(self, exc: Exception) -> None:
        self.event("error", **error_fields(exc))


def run_fields(result: RunResult, exit_code: int) -> dict[str, Any]:
    """What a finished run read, disclosed and erased."""
    m = result.run.manifest
    sources = [
        {
            "name": s.get("name"),
            "kind": s.get("kind"),
            "source": s.get("source"),
            "server": (s.get("state") or {}).get("server"),
            "complete": s.get("complete"),
            "counts": s.get("counts"),
        }
        for s in m.get("sources", [])
    ]
    exported = {
        name: meta.get("sha256")
        for name, meta in m.get("files", {}).items()
        if name.endswith(DISCLOSURES)
    }
    return {
        "exit_code": exit_code,
        "run_id": m.get("run_id"),
        "run_dir": str(result.run.path.resolve()),
        "complete": m.get("complete"),
        "manifest_sha256": sha256_file(result.run.path / MANIFEST),
        "sources": sources,
        "exported": exported,
        "report": str(result.report) if result.report else None,
        "pseudonymised": m.get("pseudonymised"),
        "pruned": list(result.pruned),
    }
