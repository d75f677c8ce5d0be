"""Logs carry codes and counts, never text from outside: a header-less CSV's first row, the
first line of a file that is not a CSV at all, an LDAP server's error text (one that echoes the
bind request puts the password in it). The outside text may reach stderr only when it cannot be
a secret: never from a secret source (a bind), never a file's first line that names no column.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.hardening_cli import (
    CANARY_PASSWORD,
    one_line_error,
    run,
    sample_source_toml,
    toml_table,
    write_config,
)

NAMES = ("aelfric.canary", "Beornwulf.Canary")


def _csv_source(path: Path) -> str:
    return toml_table(
        "sources",
        {
            "kind": "csv",
            "name": "niche",
            "path": str(path),
            "columns": {"username": "User ID", "role": "Role"},
        },
    )


def _logs(folder: Path) -> str:
    audit = (folder / "data" / "audit-log.jsonl").read_text(encoding="utf-8")
    job = (folder / "job.jsonl").read_text(encoding="utf-8")
    for line in (audit + job).splitlines():
        json.loads(line)
    return audit + "\n" + job


def _errors(logs: str) -> list[dict[str, object]]:
    records = [json.loads(line) for line in logs.splitlines() if line.strip()]
    return [r for r in records if r.get("event") == "error"]


def test_header_less_csv_row_stays_out_of_the_logs(tmp_path: Path) -> None:
    export = tmp_path / "niche.csv"
    export.write_text(f"{NAMES[0]},Officer\n{NAMES[1]},Analyst\n", encoding="utf-8")
    config = write_config(tmp_path, sample_source_toml(200) + _csv_source(export))
    p = run(config, "--json-log", str(tmp_path / "job.jsonl"))
    assert p.returncode == 2, p.stderr
    line = one_line_error(p)
    assert f"{export}" in line and "'User ID'" in line and "'Role'" in line
    assert "2 column(s)" in line, line
    logs = _logs(tmp_path)
    [audit_error, job_error] = _errors(logs)
    assert audit_error["error"] == job_error["error"] == "ConfigError"
    for name in NAMES:
        assert name.casefold() not in logs.casefold()
        assert name.casefold() not in p.stderr.casefold()  # a first row names no column
    assert "Officer" not in logs


def test_password_file_as_csv_reaches_neither_stderr_nor_the_logs(tmp_path: Path) -> None:
    secrets = tmp_path / "shadow"
    secrets.write_text(f"root:{CANARY_PASSWORD}:19000:0:99999:7:::\nbin:*:19000::::::\n")
    config = write_config(tmp_path, sample_source_toml(200) + _csv_source(secrets))
    p = run(config, "--json-log", str(tmp_path / "job.jsonl"))
    assert p.returncode == 2, p.stderr
    one_line_error(p)
    logs = _logs(tmp_path)
    assert len(_errors(logs)) == 2
    for text in (logs, p.stderr, p.stdout):
        assert CANARY_PASSWORD not in text
        assert "root:" not in text


# --- an LDAP server whose error text echoes the bind request -----------------------------------


def _ber_len(n: int) -> bytes:
    return bytes([n]) if n < 0x80 else b"\x82" + n.to_bytes(2, "big")


def _bind_response(msgid: int, code: int, text: bytes) -> bytes:
    body = b"\x0a\x01" + bytes([code]) + b"\x04\x00" + b"\x04" + _ber_len(len(text)) + text
    op = b"\x61" + _ber_len(len(body)) + body
    inner = b"\x02\x01" + bytes([msgid]) + op
    return b"\x30" + _ber_len(len(inner)) + inner


class EchoServer:
    """Refuses every bind with result 49 and, as diagnostic text, the bind request itself."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ldap://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    request = conn.recv(65536)
                    if request:
                        echo = b"bind refused for " + request[7:]
                        conn.sendall(_bind_response(request[4], 49, echo))
                        conn.recv(65536)  # the unbind
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    try:
        yield server
    finally:
        server.close()


def test_ldap_error_text_echoing_the_password_reaches_neither_stderr_nor_logs(
    echo: EchoServer, tmp_path: Path
) -> None:
    source = toml_table(
        "sources",
        {
            "kind": "ldap",
            "name": "echo.local",
            "host": "wmp",
            "servers": [echo.url],
            "base_dn": "DC=echo,DC=local",
            "bind_dn": "auditor@echo.local",
            "password_env": "ACCESSAUDIT_LDAP_PASSWORD",
            "allow_plaintext": True,
            "connect_timeout": 5.0,
            "receive_timeout": 5.0,
        },
    )
    config = write_config(tmp_path, source)
    p = run(config, "--json-log", str(tmp_path / "job.jsonl"))
    assert p.returncode == 2, p.stderr
    line = one_line_error(p)
    assert line.startswith(
        f"accessaudit: error: {echo.url}: bind as auditor@echo.local refused: result 49"
        " invalidCredentials"
    ), line
    logs = _logs(tmp_path)
    assert [e["error"] for e in _errors(logs)] == ["AuthError", "AuthError"]
    for text in (logs, p.stderr, p.stdout):
        assert CANARY_PASSWORD not in text
        assert "bind refused for" not in text
