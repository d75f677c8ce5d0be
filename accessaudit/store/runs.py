"""Runs on disk: Parquet tables + ``manifest.json``, written atomically, owner-only.

Layout::

    <data_dir>/
      (the folder itself is flock()ed by the run writing: an OS lock, a killed run frees it)
      runs/
        20261126T050000Z/        one immutable run
          accounts.parquet ...   every table, zstd
          report.html ...        outputs rendered from the tables
          manifest.json          written last: versions, hashes, per-source completeness
        .tmp-<id>-<pid>/         a run being written; renamed into place when complete

A run directory appears under its final name only once its manifest is written (the temporary
folder is renamed), so a crash leaves either a complete run or a ``.tmp-*`` folder that the next
start removes. Files are created 0600 and folders 0700 whatever the umask: reports name police
officers and staff.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import polars as pl

from accessaudit.errors import LockHeld, StoreError
from accessaudit.model import COLLECTED_SCHEMAS
from accessaudit.store.ledger import head as ledger_head
from accessaudit.store.ledger import read_ledger

MANIFEST = "manifest.json"
#: The rules and the exceptions register a run was evaluated with (see engine.snapshot).
RULES_FILE = "rules.json"
EXCEPTIONS_FILE = "exceptions.json"
ATTRIBUTION_FILE = "attribution.json"
FORMAT_VERSION = 1


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_dirs_private(path: Path) -> Path:
    """Create ``path`` and its missing parents, each owner-only whatever the umask (``mkdir``'s
    ``parents=True`` makes the parents 0777 less the umask); folders that exist are left."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made meanwhile by someone else: not ours to change
        folder.chmod(0o700)
    return path


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) owner-only; tighten it if it already exists."""
    try:
        new_dirs_private(path)
        path.chmod(0o700)
    except OSError as exc:
        raise StoreError(
            f"cannot create folder {path}: {exc.strerror}",
            "check the path and permissions (data_dir / --out)",
        ) from None
    return path


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write via a 0600 temp file in the same folder, fsync, rename, fsync the folder."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.chmod(0o600)
        tmp.replace(path)
        _fsync_dir(path.parent)
    except (OSError, pl.exceptions.ComputeError) as exc:
        # polars reports a failed write of its own as ComputeError: "... underlying IO error:
        # No space left on device (os error 28)", or, when the disk fills while it writes the
        # Parquet footer, only "Invalid thrift: transport error" (the OS error is lost, so the
        # free space is looked at before the temp file is removed); some OSErrors it raises
        # carry no strerror
        reason = getattr(exc, "strerror", None) or str(exc).rsplit(": ", 1)[-1]
        if isinstance(exc, pl.exceptions.ComputeError) and "IO error" not in str(exc):
            if not _no_space_left(path.parent):
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
            reason = os.strerror(errno.ENOSPC)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StoreError(
            f"cannot write {path}: {reason}", "check free space and permissions"
        ) from None
    return path


def _no_space_left(folder: Path) -> bool:
    """True when the file system of ``folder`` has (almost) no block left for us."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1 << 16


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    def write(fh: IO[bytes]) -> None:
        fh.write(data)

    return atomic_write(path, write)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def new_run_id(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    path: Path
    manifest: dict[str, Any]

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete"))


class RunWriter:
    """Writes one run into a temporary folder; :meth:`commit` makes it appear atomically."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.tmp = private_dir(store.runs_dir / f".tmp-{run_id}-{os.getpid()}")
        self.files: dict[str, dict[str, Any]] = {}

    def _record(self, name: str, rows: int | None = None) -> None:
        path = self.tmp / name
        entry: dict[str, Any] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        if rows is not None:
            entry["rows"] = rows
        self.files[name] = entry

    def write_table(self, name: str, df: pl.DataFrame) -> Path:
        path = self.tmp / f"{name}.parquet"
        atomic_write(path, lambda fh: df.write_parquet(fh, compression="zstd"))
        self._record(path.name, df.height)
        return path

    def write_bytes(self, name: str, data: bytes) -> Path:
        path = atomic_write_bytes(self.tmp / name, data)
        self._record(name)
        return path

    def add_file(self, name: str) -> None:
        """Record a file written into the run folder by another writer (report, exports)."""
        path = self.tmp / name
        path.chmod(0o600)
        self._record(name)

    def commit(self, manifest: dict[str, Any]) -> RunInfo:
        previous = self.store.latest()
        manifest = {
            "format": FORMAT_VERSION,
            "run_id": self.run_id,
            **manifest,
            "previous_run": previous.run_id if previous else None,
            "previous_manifest_sha256": sha256_file(previous.path / MANIFEST) if previous else None,
            "pruned_ledger": self._ledger(),
            "files": dict(sorted(self.files.items())),
        }
        data = json.dumps(manifest, indent=2, sort_keys=False, default=str).encode()
        atomic_write_bytes(self.tmp / MANIFEST, data)
        final = self.store.runs_dir / self.run_id
        if final.exists():
            raise StoreError(f"run {final} already exists", "runs are immutable; retry in a second")
        try:
            self.tmp.replace(final)
            _fsync_dir(self.store.runs_dir)
        except OSError as exc:
            raise StoreError(f"cannot finish run {final}: {exc.strerror}") from None
        return RunInfo(self.run_id, final, manifest)

    def _ledger(self) -> dict[str, Any]:
        """The ledger of deleted runs as this run sees it (vouched for by this manifest)."""
        try:
            return ledger_head(read_ledger(self.store.data_dir))
        except OSError as exc:
            raise StoreError(f"cannot read the ledger of deleted runs: {exc.strerror}") from None

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class RunStore:
    """The runs under one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.runs_dir = data_dir / "runs"

    def prepare(self) -> None:
        private_dir(self.runs_dir)
        self.data_dir.chmod(0o700)
        for leftover in self.runs_dir.glob(".tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive, non-blocking OS lock on the data directory for one writing run.

        The folder itself is locked (``flock`` on its descriptor), not a file in it: a lock
        file can be deleted under a run, and the next run would then lock a new file and go
        ahead (removing the first run's temporary folder). A folder holding runs cannot be
        swapped while a run writes into it."""
        private_dir(self.data_dir)
        fd = os.open(self.data_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockHeld(
                    f"another run is writing to {self.data_dir}",
                    "wait for it to finish; the lock is released when that process ends",
                ) from None
            yield
        finally:
            os.close(fd)

    def begin(self, now: datetime | None = None) -> RunWriter:
        self.prepare()
        run_id = new_run_id(now)
        n = 1
        while (self.runs_dir / run_id).exists():
            n += 1
            run_id = f"{new_run_id(now)}-{n}"
        return RunWriter(self, run_id)

    def runs(self) -> list[RunInfo]:
        """Completed runs, oldest first (a folder without a manifest is not a run)."""
        if not self.runs_dir.is_dir():
            return []
        out = []
        for path in sorted(self.runs_dir.iterdir()):
            if path.name.startswith(".") or not (path / MANIFEST).is_file():
                continue
            out.append(open_run(path))
        return out

    def latest(self) -> RunInfo | None:
        runs = self.runs()
        return runs[-1] if runs else None


def _time_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "is not a time"
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return "is not an ISO 8601 time"
    return None


#: key -> (required, check of its value: None when it is right, else what is wrong)
_MANIFEST_FIELDS: dict[str, tuple[bool, Callable[[Any], str | None]]] = {
    "run_id": (True, lambda v: None if isinstance(v, str) and v else "is not a run id"),
    "started": (False, _time_problem),
    "finished": (False, _time_problem),
    "complete": (False, lambda v: None if isinstance(v, bool) else "is not true or false"),
    "previous_run": (
        False,
        lambda v: None if v is None or isinstance(v, str) else "is not a run id",
    ),
    "previous_manifest_sha256": (
        False,
        lambda v: None if v is None or isinstance(v, str) else "is not a SHA-256",
    ),
    "files": (True, lambda v: None if isinstance(v, dict) else "is not a table"),
    "sources": (False, lambda v: None if isinstance(v, list) else "is not a list"),
    "summary": (False, lambda v: None if isinstance(v, dict) else "is not a table"),
}


def manifest_problems(manifest: Any) -> list[str]:
    """What is wrong with the shape of a parsed manifest (each key the tool reads), or []."""
    if not isinstance(manifest, dict):
        return ["is not a JSON object"]
    out = []
    for key, (required, check) in _MANIFEST_FIELDS.items():
        if key not in manifest:
            if required:
                out.append(f"has no '{key}'")
            continue
        problem = check(manifest[key])
        if problem:
            out.append(f"'{key}' {problem}")
    return out


def parse_manifest(data: bytes) -> Any:
    """A manifest's JSON; ValueError for anything that is not (nested too deep included)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply to be a manifest") from None


def open_run(path: Path) -> RunInfo:
    """Read a run's manifest; a clear StoreError if it is not a complete, well-formed run."""
    manifest_path = path / MANIFEST
    try:
        manifest = parse_manifest(manifest_path.read_bytes())
    except FileNotFoundError:
        raise StoreError(
            f"{path} is not a run (no {MANIFEST})", "give a folder under <data_dir>/runs/"
        ) from None
    except OSError as exc:
        raise StoreError(f"cannot read {manifest_path}: {exc.strerror}") from None
    except ValueError as exc:
        raise StoreError(
            f"{manifest_path}: damaged: {str(exc)[:120]}", "run `accessaudit verify`"
        ) from None
    problems = manifest_problems(manifest)
    if problems:
        more = f" ({len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise StoreError(
            f"{manifest_path}: damaged: {problems[0]}{more}", "run `accessaudit verify`"
        )
    return RunInfo(str(manifest["run_id"]), path, manifest)


def read_table(run: RunInfo, name: str) -> pl.DataFrame:
    """One table of a run (the schema is the one it was written with)."""
    path = run.path / f"{name}.parquet"
    try:
        return pl.read_parquet(path)
    except FileNotFoundError:
        if name in COLLECTED_SCHEMAS:
            return pl.DataFrame(schema=COLLECTED_SCHEMAS[name])
        raise StoreError(f"run {run.path} has no table {name}") from None
    except (OSError, pl.exceptions.ComputeError) as exc:
        raise StoreError(f"cannot read {path}: {exc}", "run `accessaudit verify`") from None
