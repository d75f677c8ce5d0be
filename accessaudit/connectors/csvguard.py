"""Opening an application's CSV export safely: regular files only, never more than a limit.

A ``path`` that is a FIFO, a device (``/dev/zero``), a socket or a folder would hang the run
while it holds the data folder's lock, or fill the memory: :func:`open_export` refuses anything
but a regular file (checked on the opened descriptor, so a file swapped after a check is still
seen, and opened non-blocking, so a FIFO with no writer cannot stall the open), and stops a file
that grows past :data:`MAX_EXPORT_BYTES` while it is read (a log appended to, a file in
``/proc``). Both errors name the file and the limit.

:func:`missing_columns` words the error of a header that lacks a mapped column without quoting
the file: a header-less export's first row is names, and a wrong ``path`` may point at a file of
secrets; only a header cell close to a wanted name is shown (on the terminal, never in the logs).
"""

from __future__ import annotations

import difflib
import io
import os
import stat
from pathlib import Path
from typing import TextIO

from accessaudit.errors import ConfigError, InputFileError

#: The largest export read (bytes): 2 GiB, about twenty times the export of a 1.2 million
#: account estate; a larger "export" is a wrong path.
MAX_EXPORT_BYTES = 2 * 1024**3

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def _too_large(path: Path, limit: int) -> InputFileError:
    return InputFileError(
        f"CSV export {path} is larger than the limit of {limit:,} bytes"
        " (accessaudit.connectors.csvguard.MAX_EXPORT_BYTES)",
        "point `path` at the application's user export; an export this large is another file",
    )


class _Limited(io.RawIOBase):
    """A file descriptor read to at most ``limit`` bytes; one byte more is an error."""

    def __init__(self, fd: int, path: Path, limit: int) -> None:
        self._file = io.FileIO(fd, "rb", closefd=True)
        self._path = path
        self._limit = limit
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = self._file.readinto(buffer) or 0
        self._read += n
        if self._read > self._limit:
            raise _too_large(self._path, self._limit)
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


def open_export(path: Path, encoding: str, limit: int | None = None) -> TextIO:
    """``path`` opened as text for the csv module (``newline=""``), if it is a regular file.

    Raises :class:`FileNotFoundError` as ``open`` does (the caller words it), and
    :class:`InputFileError` for anything that is not a regular file or is over the limit.
    """
    limit = MAX_EXPORT_BYTES if limit is None else limit
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            what = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
            raise InputFileError(
                f"CSV export {path} is {what}, not a regular file",
                "point `path` at the exported file itself (exports are read whole, once)",
            )
        if st.st_size > limit:
            raise _too_large(path, limit)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    raw = _Limited(fd, path, limit)
    return io.TextIOWrapper(io.BufferedReader(raw), encoding=encoding, newline="")


def missing_columns(
    source: str, path: Path, header: list[str], missing: list[tuple[str, str]]
) -> ConfigError:
    """The error of a header without the mapped columns ``missing`` ((canonical, wanted) pairs).

    The header's cells are counted, not quoted; a cell is shown only when it is close to a
    wanted name (a typo), and then kept out of the logs."""
    cells = [h.strip().removeprefix("\ufeff") for h in header]
    close: list[str] = []
    for _, wanted in missing:
        hit = difflib.get_close_matches(wanted.casefold(), [c.casefold() for c in cells], 1, 0.75)
        if hit:
            close.append(cells[[c.casefold() for c in cells].index(hit[0])][:40])
    names = ", ".join(f"{wanted!r} (for {canonical})" for canonical, wanted in missing)
    guess = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(
        f"source {source}: {path}:1: no column {names}; the header row has"
        f" {len(cells)} column(s){guess}",
        f"fix [sources.columns] of source {source} to name the export's headers, or export the"
        " file again with its header row",
        outside=[repr(c) for c in close],
    )
