"""A server that answers, but too slowly to ever finish: ``total_timeout`` still ends the run.

A per-read timeout (``receive_timeout``) never fires against a server that sends one byte per
second; only the total time limit can end such a wait. The servers here are plain loopback TCP
servers speaking just enough LDAP (a BER header promising more bytes than ever come).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.hardening_cli import check_scenario, run, toml_table, write_config

TOTAL = 6.0
#: what a run may take beyond total_timeout: starting Python, writing nothing, exiting
SLACK = 8.0


class TrickleServer:
    """Accepts connections; answers the first request after ``answer_after`` requests with a
    SEQUENCE header promising 100 bytes, then sends one byte a second. Requests before that
    one are answered with a successful bind response."""

    def __init__(self, *, answer_after: int = 0) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.answer_after = answer_after
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        conn.settimeout(0.5)
        seen = 0
        try:
            while not self.stop.is_set():
                try:
                    request = conn.recv(65536)
                except TimeoutError:
                    continue
                if not request:
                    return
                msgid = request[4] if len(request) > 4 else 1  # 30 LL 02 01 <id>
                if seen < self.answer_after:
                    seen += 1
                    conn.sendall(
                        bytes([0x30, 0x0C, 0x02, 0x01, msgid, 0x61, 0x07])
                        + bytes([0x0A, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00])
                    )
                    continue
                conn.sendall(bytes([0x30, 0x64, 0x02, 0x01, msgid]))
                while not self.stop.is_set():
                    time.sleep(1.0)
                    conn.sendall(b"\x04")
        except OSError:
            return
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.listener.close()


@pytest.fixture
def trickle() -> Iterator[TrickleServer]:
    server = TrickleServer()
    try:
        yield server
    finally:
        server.close()


def _config(folder: Path, url: str) -> Path:
    source = toml_table(
        "sources",
        {
            "kind": "ldap",
            "name": "slow.local",
            "host": "wmp",
            "servers": [url],
            "base_dn": "DC=slow,DC=local",
            "bind_dn": "auditor@slow.local",
            "password_env": "ACCESSAUDIT_LDAP_PASSWORD",
            "allow_plaintext": True,
            "connect_timeout": 5.0,
            "receive_timeout": 3.0,
            "total_timeout": TOTAL,
        },
    )
    return write_config(folder, source)


def test_bind_answer_trickling_one_byte_a_second_ends_at_total_timeout(
    trickle: TrickleServer, tmp_path: Path
) -> None:
    config = _config(tmp_path, trickle.url)
    started = time.monotonic()
    p = run(config, timeout=60)
    took = time.monotonic() - started
    assert took < TOTAL + SLACK, (took, p.stderr)
    check_scenario(p, config, exit_code=2, runs_before=0)
    assert f"total time limit of {TOTAL:g} s reached" in p.stderr, p.stderr
    assert trickle.url in p.stderr, p.stderr


def test_search_answer_trickling_one_byte_a_second_ends_at_total_timeout(tmp_path: Path) -> None:
    server = TrickleServer(answer_after=1)  # the bind succeeds; the first search trickles
    try:
        config = _config(tmp_path, server.url)
        started = time.monotonic()
        p = run(config, timeout=60)
        took = time.monotonic() - started
    finally:
        server.close()
    assert took < TOTAL + SLACK, (took, p.stderr)
    m = check_scenario(p, config, exit_code=3, runs_before=0)
    assert m is not None
    units = {u["name"]: u for s in m["sources"] for u in s["units"]}
    assert units["accounts"]["detail"] == (
        f"total time limit {TOTAL:g} s reached after 0 pages (while receiving)"
    )
