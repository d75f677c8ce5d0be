"""Records every LDAP operation and every HTTP request the tool makes, to prove read mode reads
and that only loopback addresses are contacted.

:func:`install` wraps ldap3's ``BaseStrategy.send`` (every LDAP request of every connection goes
through it: bind, search, modify, add, delete, modify DN, extended) and ``requests.Session
.request`` (every Graph and token-endpoint call, msal's included) and appends one JSON line per
call to a file. It is installed in this test process by a fixture and, through a generated
``sitecustomize.py``, in every ``accessaudit`` subprocess the hardening suites start.

:func:`violations` judges the records: LDAP may bind, search, unbind, abandon and start TLS;
HTTP may GET, POST to the token endpoint, and POST ``$batch`` envelopes whose every item is a
GET (a ``$batch`` is a POST of requests, each of which must itself be a read).
:func:`off_loopback` judges where they went: every URL's host and every LDAP server must be a
loopback address (127.0.0.0/8, ::1) or ``localhost`` - the test servers bind nowhere else, so
anything else is a request leaving the machine.

Recordings nest: the innermost :func:`read_only` / :func:`loopback_only` block receives the
records, so a test can make a deliberately bad call without failing its module's recording.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV = "ACCESSAUDIT_TEST_RECORD"
LDAP_READS = frozenset({"bindRequest", "searchRequest", "unbindRequest", "abandonRequest"})
START_TLS = "1.3.6.1.4.1.1466.20037"
_PACKAGE = str(Path(__file__).resolve().parents[2] / "accessaudit") + os.sep
_lock = threading.Lock()
_undo: list[Callable[[], None]] = []
_targets: list[str] = []  # record files of the open recordings; the innermost gets the records


def _write(record: dict[str, Any]) -> None:
    line = json.dumps(record, default=str) + "\n"
    with _lock:
        if not _targets:
            return
        with open(_targets[-1], "a", encoding="utf-8") as fh:
            fh.write(line)


def _by_the_tool() -> bool:
    """True when the accessaudit package is on the call stack (test setup, e.g. seeding a
    server with adds, is not the tool and is not recorded)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith(_PACKAGE):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def install(path: str | Path) -> None:
    """Start recording to ``path``, until the matching :func:`uninstall` (which resumes the
    recording that was open before, if any)."""
    with _lock:
        _targets.append(str(path))
    if _undo:
        return
    import requests
    from ldap3.strategy.base import BaseStrategy

    send = BaseStrategy.send
    request = requests.Session.request

    def recording_send(self: Any, message_type: str, req: Any, controls: Any = None) -> Any:
        if not _by_the_tool():
            return send(self, message_type, req, controls)
        server = getattr(getattr(self, "connection", None), "server", None)
        record: dict[str, Any] = {
            "kind": "ldap",
            "op": message_type,
            "host": getattr(server, "host", None),
            "pid": os.getpid(),
        }
        if message_type == "extendedReq":
            try:
                record["name"] = str(req["requestName"])
            except Exception:
                record["name"] = "?"
        _write(record)
        return send(self, message_type, req, controls)

    def recording_request(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if not _by_the_tool():
            return request(self, method, url, *args, **kwargs)
        body = kwargs.get("json")
        items = None
        if isinstance(body, dict) and isinstance(body.get("requests"), list):
            items = [str(i.get("method", "GET")) for i in body["requests"] if isinstance(i, dict)]
        record = {
            "kind": "http",
            "method": str(method).upper(),
            "url": str(url),
            "pid": os.getpid(),
        }
        if items is not None:
            record["batch"] = items
        _write(record)
        return request(self, method, url, *args, **kwargs)

    # patched in place: every connection and session, msal's included, goes through them
    strategy: Any = BaseStrategy
    session: Any = requests.Session
    strategy.send = recording_send
    session.request = recording_request

    def undo() -> None:
        strategy.send = send
        session.request = request

    _undo.append(undo)


def uninstall() -> None:
    """End the innermost recording; the last one ends recording altogether."""
    with _lock:
        if _targets:
            _targets.pop()
        if _targets:
            return
    while _undo:
        _undo.pop()()


@contextlib.contextmanager
def _recording(path: Path) -> Iterator[int]:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    offset = path.stat().st_size
    install(path)
    try:
        yield offset
    finally:
        uninstall()


@contextlib.contextmanager
def loopback_only(path: Path, what: str) -> Iterator[Path]:
    """Record into ``path`` while the block runs; then fail if any call left loopback."""
    with _recording(path) as offset:
        yield path
    away = off_loopback(records(path, offset))
    assert away == [], f"{what}: calls off loopback: {away[:5]}"


@contextlib.contextmanager
def read_only(path: Path, what: str) -> Iterator[Path]:
    """Record into ``path`` while the block runs; then fail if any recorded call wrote or
    left loopback."""
    with _recording(path) as offset:
        yield path
    recs = records(path, offset)
    away = off_loopback(recs)
    assert away == [], f"{what}: calls off loopback: {away[:5]}"
    bad = violations(recs)
    assert bad == [], f"{what}: write operations in read mode: {bad[:5]}"


def records(path: Path, offset: int = 0) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        fh.seek(offset)
        return [json.loads(line) for line in fh if line.strip()]


def is_loopback(host: str | None) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1 (bracketed or not); anything else, or no host, is not."""
    if not host:
        return False
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def off_loopback(recs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every recorded call addressed to a host that is not loopback."""
    away = []
    for r in recs:
        host = r.get("host") if r["kind"] == "ldap" else urlsplit(str(r.get("url"))).hostname
        if not is_loopback(host):
            away.append(r)
    return away


def violations(recs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every recorded call that could change a directory."""
    bad = []
    for r in recs:
        if r["kind"] == "ldap":
            ok = r["op"] in LDAP_READS or (r["op"] == "extendedReq" and r.get("name") == START_TLS)
        else:
            method, url = r["method"], r["url"].split("?")[0]
            ok = (
                method == "GET"
                or (method == "POST" and url.endswith("/oauth2/v2.0/token"))
                or (
                    method == "POST"
                    and url.endswith("/$batch")
                    and bool(r.get("batch"))
                    and all(m.upper() == "GET" for m in r["batch"])
                )
            )
        if not ok:
            bad.append(r)
    return bad


SITECUSTOMIZE = """\
import os
if os.environ.get({env!r}):
    from support import recorder
    recorder.install(os.environ[{env!r}])
"""


def sitecustomize_dir(folder: Path) -> Path:
    """A folder holding a sitecustomize.py that installs the recorder when ``ENV`` is set."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE.format(env=ENV))
    return folder
