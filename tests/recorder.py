"""Records every LDAP operation and every HTTP request the tool makes, to prove read mode reads.

:func:`install` wraps ldap3's ``BaseStrategy.send`` (every LDAP request of every connection goes
through it: bind, search, modify, add, delete, modify DN, extended) and ``requests.Session
.request`` (every Graph and token-endpoint call, msal's included) and appends one JSON line per
call to a file. It is installed in this test process by a fixture and, through a generated
``sitecustomize.py``, in every ``accessaudit`` subprocess the hardening suites start.

:func:`violations` judges the records: LDAP may bind, search, unbind, abandon and start TLS;
HTTP may GET, POST to the token endpoint, and POST ``$batch`` envelopes whose every item is a
GET (a ``$batch`` is a POST of requests, each of which must itself be a read).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

ENV = "ACCESSAUDIT_TEST_RECORD"
LDAP_READS = frozenset({"bindRequest", "searchRequest", "unbindRequest", "abandonRequest"})
START_TLS = "1.3.6.1.4.1.1466.20037"
_PACKAGE = str(Path(__file__).resolve().parents[1] / "accessaudit") + os.sep
_lock = threading.Lock()
_undo: list[Callable[[], None]] = []


def _write(path: str, record: dict[str, Any]) -> None:
    line = json.dumps(record, default=str) + "\n"
    with _lock, open(path, "a", encoding="utf-8") as fh:
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
    """Start recording to ``path`` (idempotent per process until :func:`uninstall`)."""
    if _undo:
        return
    import requests
    from ldap3.strategy.base import BaseStrategy

    target = str(path)
    send = BaseStrategy.send
    request = requests.Session.request

    def recording_send(self: Any, message_type: str, req: Any, controls: Any = None) -> Any:
        if not _by_the_tool():
            return send(self, message_type, req, controls)
        record: dict[str, Any] = {"kind": "ldap", "op": message_type, "pid": os.getpid()}
        if message_type == "extendedReq":
            try:
                record["name"] = str(req["requestName"])
            except Exception:
                record["name"] = "?"
        _write(target, record)
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
        _write(target, record)
        return request(self, method, url, *args, **kwargs)

    BaseStrategy.send = recording_send  # type: ignore[method-assign]
    requests.Session.request = recording_request  # type: ignore[method-assign]

    def undo() -> None:
        BaseStrategy.send = send  # type: ignore[method-assign]
        requests.Session.request = request  # type: ignore[method-assign]

    _undo.append(undo)


def uninstall() -> None:
    while _undo:
        _undo.pop()()


@contextlib.contextmanager
def read_only(path: Path, what: str) -> Iterator[Path]:
    """Record into ``path`` while the block runs; then fail if any recorded call wrote."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    offset = path.stat().st_size
    install(path)
    try:
        yield path
    finally:
        uninstall()
    bad = violations(records(path, offset))
    assert bad == [], f"{what}: write operations in read mode: {bad[:5]}"


def records(path: Path, offset: int = 0) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        fh.seek(offset)
        return [json.loads(line) for line in fh if line.strip()]


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
    import recorder
    recorder.install(os.environ[{env!r}])
"""


def sitecustomize_dir(folder: Path) -> Path:
    """A folder holding a sitecustomize.py that installs the recorder when ``ENV`` is set."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE.format(env=ENV))
    return folder
