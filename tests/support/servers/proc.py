"""Process and port helpers shared by the server fixtures (stop by PID, never by name)."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_free(host: str, port: int) -> bool:
    """True when ``host:port`` can be bound (nothing else holds it, nor a wildcard)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_port(host: str, port: int, timeout: float, what: str, log: Path | None = None) -> None:
    """Wait until ``host:port`` accepts connections, or raise naming the log to read."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        time.sleep(0.05)
    tail = ""
    if log is not None and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s{tail}")


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (state Z, not yet reaped) counts as stopped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[0]
    return state not in ("Z", "X")


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM ``pid`` and wait until it is gone (or a zombie); SIGKILL after ``timeout``."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while alive(pid):
        time.sleep(0.02)


def read_pid(pidfile: Path, timeout: float = 5.0) -> int:
    """Read a daemon's pid file, waiting briefly for it to appear."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = pidfile.read_text().strip()
        except OSError:
            text = ""
        if text.isdigit():
            return int(text)
        time.sleep(0.02)
    raise RuntimeError(f"no pid in {pidfile}")
