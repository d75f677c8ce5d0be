"""What every benchmark here measures with: memory, time, medians and the printed table.

The benchmarks run as scripts (``python benchmarks/pipeline.py``), so this folder is first on
``sys.path`` and they import from here as ``from measure import Meter, measured, ...``.

Memory is read from the kernel (Linux ``/proc``) where it can be:

- :class:`Meter` gives the peak resident memory of *this* process over a stretch of code: the
  kernel's high-water mark (``VmHWM``) reset by writing ``5`` to ``/proc/self/clear_refs`` and
  read after it (exact); where that reset is refused, a thread samples ``VmRSS`` every 5 ms (it
  can miss a shorter spike); without ``/proc``, ``ru_maxrss`` gives only the process's peak so
  far. ``Meter.method`` names the one in use, for the printed header.
- :class:`Spawner` runs a command as a child and gives that child's own peak RSS (``wait4``
  rusage). The child is forked from a small interpreter, not from the benchmark: a child's
  ``ru_maxrss`` counts the address space it was forked from.
- :func:`status_bytes` reads any process's ``VmRSS`` by pid (a driver watching its worker).

Time: :func:`timed` (wall and CPU seconds of a block), :func:`measured` (the same plus the
memory of a :class:`Meter`, after a ``gc.collect()`` so a block is not charged for collecting
its predecessors' cycles). :func:`combine` takes the median of N runs' seconds and the largest
of their peaks. :func:`markdown_table` prints rows as the tables in ``benchmarks/README.md``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MB = 1024 * 1024


# --- memory -------------------------------------------------------------------------------------


def status_bytes(field: str, pid: int | str = "self") -> int | None:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``) in bytes; None where
    there is no /proc or no such process."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


def meminfo_bytes(field: str) -> int | None:
    """A ``kB`` field of ``/proc/meminfo`` (``MemTotal``, ``MemAvailable``) in bytes; None
    where there is no /proc."""
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


def maxrss() -> int:
    """This process's peak RSS so far (``getrusage``), in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # KiB on Linux, bytes on macOS


def reset_peak() -> bool:
    """Reset this process's high-water mark (``VmHWM``) to its current RSS; False if refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Meter:
    """Peak resident memory of this process over a stretch of code: :meth:`start` before it,
    :meth:`peak` after it (the module docstring says how)."""

    def __init__(self) -> None:
        self._max = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if status_bytes("VmRSS") is None:
            self.method = "ru_maxrss (process peak so far; cannot be reset per stage)"
        elif self._reset_hwm():
            self.method = "VmHWM reset per stage via /proc/self/clear_refs (exact kernel peak)"
        else:
            self.method = "sampling thread reading /proc/self/status VmRSS every 5 ms"
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    @staticmethod
    def _reset_hwm() -> bool:
        if not reset_peak():
            return False
        hwm, rss = status_bytes("VmHWM"), status_bytes("VmRSS")
        # a reset sets the high-water mark to the current RSS (give a few pages of slack)
        return hwm is not None and rss is not None and hwm - rss < 8 * MB

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._max = max(self._max, status_bytes("VmRSS") or 0)

    def current(self) -> int:
        """The resident memory now, in bytes."""
        return status_bytes("VmRSS") or maxrss()

    def start(self) -> None:
        if self.method.startswith("VmHWM"):
            self._reset_hwm()
        self._max = self.current()

    def peak(self) -> int:
        """The largest resident memory since :meth:`start`, in bytes."""
        if self.method.startswith("VmHWM"):
            return status_bytes("VmHWM") or 0
        if self._thread is not None:
            return max(self._max, self.current())
        return maxrss()


# --- time (and memory) of a block ---------------------------------------------------------------


@dataclass
class Measurement:
    """Wall and CPU seconds of a block; with a meter, its peak RSS and the RSS it began with."""

    seconds: float = 0.0
    cpu: float = 0.0
    peak: int = 0
    base: int = 0
    #: time spent in the ``gc.collect()`` before the block, not counted in ``seconds``
    gc_seconds: float = 0.0

    @property
    def grew(self) -> int:
        """Bytes the block added above the RSS it began with (at its peak)."""
        return max(0, self.peak - self.base)


@contextlib.contextmanager
def timed() -> Iterator[Measurement]:
    """Wall (``perf_counter``) and CPU (``process_time``) seconds of the block."""
    m = Measurement()
    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        yield m
    finally:
        m.seconds, m.cpu = time.perf_counter() - t0, time.process_time() - cpu0


@contextlib.contextmanager
def measured(meter: Meter) -> Iterator[Measurement]:
    """Seconds, CPU and peak RSS of the block, after a ``gc.collect()`` (timed apart)."""
    g0 = time.perf_counter()
    gc.collect()
    gc_seconds = time.perf_counter() - g0
    meter.start()
    base = meter.current()
    with timed() as m:
        yield m
    m.peak, m.base, m.gc_seconds = meter.peak(), base, gc_seconds


# --- children ------------------------------------------------------------------------------------

#: The spawner's own loop: one JSON request per line in (command, environment, stdout file), one
#: JSON line out (wall seconds, the child's ru_maxrss in KiB, exit code).
_SPAWNER = r"""
import json, os, sys, time
for line in sys.stdin:
    req = json.loads(line)
    out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.dup2(out, 1)
        os.execvpe(req["cmd"][0], req["cmd"], req["env"])
    os.close(out)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    print(json.dumps({"wall": wall, "maxrss_kb": usage.ru_maxrss, "code": code}), flush=True)
"""


@dataclass(frozen=True)
class ChildRun:
    """One command run by a :class:`Spawner`."""

    seconds: float  # its wall time, fork to exit
    peak: int  # its own peak RSS, bytes
    code: int  # its exit code


class Spawner:
    """Runs commands as children of a small interpreter (``python -S``) and reports each one's
    wall time and its own peak RSS, not inflated by the benchmark's address space."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-S", "-c", _SPAWNER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, cmd: list[str], env: Mapping[str, str], stdout: Path) -> ChildRun:
        """Run ``cmd`` with ``env``, its standard output into the file ``stdout``."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        req = {"cmd": cmd, "env": dict(env), "stdout": str(stdout)}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        res = json.loads(self.proc.stdout.readline())
        return ChildRun(res["wall"], res["maxrss_kb"] * 1024, res["code"])

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


# --- runs, machine, table -----------------------------------------------------------------------


def combine(
    runs: Sequence[Mapping[str, Any]],
    *,
    median: Iterable[str] = (),
    largest: Iterable[str] = (),
) -> dict[str, Any]:
    """The first run's record, with each key of ``median`` replaced by its median over the
    runs and each key of ``largest`` by its maximum."""
    out = dict(runs[0])
    out.update({k: statistics.median(r[k] for r in runs) for k in median})
    out.update({k: max(r[k] for r in runs) for k in largest})
    return out


def machine() -> str:
    """CPUs, memory, Python and polars versions of this machine, for a table's header."""
    total = meminfo_bytes("MemTotal")
    parts = [f"{os.cpu_count()} CPUs"]
    if total:
        parts.append(f"{total / 1024**3:.0f} GB RAM")
    parts.append(f"Python {platform.python_version()}")
    with contextlib.suppress(ImportError):
        import polars as pl

        parts.append(f"polars {pl.__version__}")
    return ", ".join(parts)


def markdown_table(
    head: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = ()
) -> str:
    """``rows`` under ``head`` as a Markdown table, padded to line up; the columns whose
    indexes are in ``right`` are right-aligned (numbers)."""
    lines = [tuple(head), *(tuple(r) for r in rows)]
    right = set(right)
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]

    def fmt(row: tuple[str, ...]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "| " + " | ".join(cells) + " |"

    rule = [("-" * (w + 1) + ":") if i in right else "-" * (w + 2) for i, w in enumerate(widths)]
    return "\n".join([fmt(lines[0]), "|" + "|".join(rule) + "|", *(fmt(r) for r in lines[1:])])
