"""Directory faults made to happen at an exact point of a real collection, through the command
line: Samba behind our TLS-terminating relay (:mod:`ldaprelay`).

Each scenario first writes a complete run (the relay forwarding everything), then runs again
with the fault, and checks (:func:`conftest.check_scenario`): the documented exit code, one
clear line and no traceback, the incomplete units named in the manifest, nothing "resolved" by
the incomplete run, and the complete run before it still intact (``accessaudit verify``).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.hardening_cli import check_scenario, manifests, run, write_config
from support.hardening_env import BoundaryDC
from support.ldaprelay import (
    CUT,
    FORWARD,
    SEARCH_DONE,
    SEARCH_ENTRY,
    STALL,
    LdapRelay,
    Message,
    Reply,
    Script,
    Verdict,
    search_done,
    search_entry,
)

pytestmark = [pytest.mark.servers, pytest.mark.slow]


@dataclass
class Env:
    relay: LdapRelay
    config: Path
    data: Path

    def fault(self, script: Script) -> None:
        self.relay.script = script


@pytest.fixture
def env(boundary_ro: BoundaryDC, tmp_path: Path) -> Iterator[Env]:
    """A relay in front of the boundary DC and one complete run already written through it."""
    dc = boundary_ro.dc
    relay = LdapRelay(
        (dc.address, 636),
        cert_file=dc.pki.cert_file,
        key_file=dc.pki.key_file,
        ca_file=dc.pki.ca_file,
    )
    config = write_config(
        tmp_path,
        boundary_ro.source_toml(relay.url, receive_timeout=3.0, total_timeout=120.0),
    )
    try:
        first = run(config, "--fail-on", "none")
        check_scenario(first, config, exit_code=0, runs_before=0)
        yield Env(relay, config, tmp_path / "data")
    finally:
        relay.close()


def is_accounts_search(request: Message | None) -> bool:
    return request is not None and "userAccountControl" in request.search_attributes()


def is_range_request(request: Message | None, *, after_first: bool = True) -> bool:
    """A base-scope request for ``member;range=N-M`` (the first window comes with the groups)."""
    if request is None:
        return False
    attrs = request.search_attributes()
    return len(attrs) == 1 and attrs[0].lower().startswith("member;range=")


def units_of(m: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["name"]: u for s in m["sources"] for u in s["units"]}


# --- the scripts -------------------------------------------------------------------------------


@dataclass
class CutAfterEntries(Script):
    """Cut every connection after ``n`` entries of the accounts search (mid-page)."""

    n: int = 300
    seen: int = 0

    def response(self, msg: Message, request: Message | None) -> Verdict:
        if msg.op == SEARCH_ENTRY and is_accounts_search(request):
            self.seen += 1
            if self.seen > self.n:
                return CUT
        return FORWARD


@dataclass
class CutAtRange(Script):
    """Cut when the client asks for the ``k``-th further range window (mid-range)."""

    k: int = 2
    ranges: int = 0

    def request(self, msg: Message) -> Verdict:
        if is_range_request(msg):
            self.ranges += 1
            if self.ranges == self.k:
                return CUT
        return FORWARD


@dataclass
class StallAtSearch(Script):
    """Stop answering from the ``k``-th search request on (the connection stays open)."""

    k: int = 2

    def request(self, msg: Message) -> Verdict:
        return STALL if self.searches >= self.k else FORWARD


@dataclass
class ResultCodeOnPage(Script):
    """Page ``page`` of the accounts search ends in ``code`` (its entries still delivered)."""

    code: int = 3
    page: int = 2
    pages: int = 0

    def response(self, msg: Message, request: Message | None) -> Verdict:
        if msg.op == SEARCH_DONE and is_accounts_search(request):
            self.pages += 1
            if self.pages == self.page:
                name = {3: "timeLimitExceeded", 4: "sizeLimitExceeded", 11: "adminLimitExceeded"}
                return [search_done(msg.msgid, self.code, name.get(self.code, ""))]
        return FORWARD


@dataclass
class EndlessCookie(Script):
    """The accounts search never ends: its last page says "more" with the same cookie, and each
    request with that cookie gets the same page again (answered by the relay)."""

    cookie: bytes = b"\x00endless"
    page: list[bytes] = field(default_factory=list)
    replays: int = 0

    def request(self, msg: Message) -> Verdict:
        if msg.paged_cookie() == self.cookie:
            self.replays += 1
            entries = [Message.parse(e).with_msgid(msg.msgid) for e in self.page]
            return Reply([*entries, search_done(msg.msgid, 0, cookie=self.cookie)])
        return FORWARD

    def response(self, msg: Message, request: Message | None) -> Verdict:
        if not is_accounts_search(request):
            return FORWARD
        if msg.op == SEARCH_ENTRY:
            self.page.append(msg.raw)
            return FORWARD
        if msg.op == SEARCH_DONE:
            if msg.paged_cookie():
                self.page = []
                return FORWARD
            return [search_done(msg.msgid, 0, cookie=self.cookie)]
        return FORWARD


@dataclass
class EmptyPagesForever(Script):
    """The accounts search's last page says "more", then every page is empty, each with a new
    cookie (the relay answers them)."""

    n: int = 0

    def request(self, msg: Message) -> Verdict:
        cookie = msg.paged_cookie()
        if cookie and cookie.startswith(b"empty-"):
            self.n += 1
            return Reply([search_done(msg.msgid, 0, cookie=f"empty-{self.n}".encode())])
        return FORWARD

    def response(self, msg: Message, request: Message | None) -> Verdict:
        if is_accounts_search(request) and msg.op == SEARCH_DONE and not msg.paged_cookie():
            return [search_done(msg.msgid, 0, cookie=b"empty-0")]
        return FORWARD


@dataclass
class RangeStopsEarly(Script):
    """The ``k``-th further range window comes back without any ``member;range`` values."""

    k: int = 1
    ranges: int = 0
    mode: str = "missing"  # or "short": the final window claims N-M but carries fewer values

    def response(self, msg: Message, request: Message | None) -> Verdict:
        if msg.op != SEARCH_ENTRY or not is_range_request(request):
            return FORWARD
        attrs = msg.entry_attributes()
        if self.mode == "short" and not any(
            n.lower().startswith("member;range=") and n.endswith("-*") for n, _ in attrs
        ):
            # only a final window can claim more than it carries; groups are collected in no
            # fixed order, so a middle window of a larger group must not use up the fault
            return FORWARD
        self.ranges += 1
        if self.ranges != self.k:
            return FORWARD
        if self.mode == "missing":
            kept = [(n, v) for n, v in attrs if not n.lower().startswith("member;")]
        else:
            kept = []
            for n, v in attrs:
                if n.lower().startswith("member;range=") and n.endswith("-*"):
                    start = int(n.split("=")[1].split("-")[0])
                    n = f"member;range={start}-{start + len(v)}"  # one more than it carries
                kept.append((n, v))
        return [search_entry(msg.msgid, msg.entry_dn(), kept)]


# --- the scenarios ------------------------------------------------------------------------------


def test_server_down_at_start(env: Env, boundary_ro: BoundaryDC) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"ldaps://127.0.0.1:{s.getsockname()[1]}"
    config = write_config(env.config.parent, boundary_ro.source_toml(dead))
    p = run(config)
    check_scenario(p, config, exit_code=2, runs_before=1)
    assert f"{dead.removeprefix('ldaps://')}: cannot connect" in p.stderr


def test_connection_dropped_mid_page(env: Env) -> None:
    env.fault(CutAfterEntries(n=300))
    p = run(env.config)
    m = check_scenario(p, env.config, exit_code=3, runs_before=1)
    assert m is not None
    u = units_of(m)
    assert u["accounts"]["detail"].startswith("connection failed after 0 pages")
    assert u["accounts"]["count"] == 0  # the cut page is dropped whole
    assert not u["groups"]["complete"] and not u["memberships"]["complete"]
    assert "accounts (connection failed" in p.stderr


def test_connection_dropped_mid_range(env: Env) -> None:
    script = CutAtRange(k=2)
    env.fault(script)
    p = run(env.config)
    m = check_scenario(p, env.config, exit_code=3, runs_before=1)
    assert m is not None
    u = units_of(m)
    assert u["accounts"]["complete"] and u["groups"]["complete"]
    broken = [n for n, x in u.items() if n.startswith("members:") and not x["complete"]]
    assert broken, u
    assert any("range request from" in str(u[n]["detail"]) for n in broken)
    assert not u["memberships"]["complete"]


def test_server_stalls_past_the_receive_timeout(env: Env) -> None:
    env.fault(StallAtSearch(k=2))  # the accounts search's second page never comes
    p = run(env.config)
    m = check_scenario(p, env.config, exit_code=3, runs_before=1)
    assert m is not None
    detail = str(units_of(m)["accounts"]["detail"])
    assert detail.startswith("connection failed after 1 pages: no data from the server for 3")


@pytest.mark.parametrize(
    ("code", "name"),
    [(3, "timeLimitExceeded"), (4, "sizeLimitExceeded"), (11, "adminLimitExceeded")],
)
def test_limit_result_codes_with_partial_entries(env: Env, code: int, name: str) -> None:
    env.fault(ResultCodeOnPage(code=code, page=2))
    p = run(env.config)
    m = check_scenario(p, env.config, exit_code=3, runs_before=1)
    assert m is not None
    accounts = units_of(m)["accounts"]
    assert str(accounts["detail"]).startswith(f"page 2: result {code} {name}")
    assert accounts["count"] == 2000  # two full pages of entries arrived, none is trusted whole
    assert name in p.stderr


def test_paging_cookie_that_never_ends(env: Env) -> None:
    script = EndlessCookie()
    env.fault(script)
    p = run(env.config)
    m = check_scenario(p, env.config, exit_code=3, runs_before=1)
    assert m is not None
    detail = str(units_of(m)["accounts"]["detail"])
    assert detail.startswith("cookie loop"), detail
    assert script.replays == 1  # caught the first time the cookie came back


def test_empty_pages_with_new_cookies_forever(env: Env) -> None:
    script = EmptyPagesForever()
    env.fault(script)
    p = run(env.config)
    m = check_scenario(p, env.config, exit_code=3, runs_before=1)
    assert m is not None
    assert str(units_of(m)["accounts"]["detail"]).startswith("cookie loop")
    assert script.n == 3


@pytest.mark.parametrize("mode", ["missing", "short"])
def test_range_loop_that_stops_early(env: Env, mode: str) -> None:
    env.fault(RangeStopsEarly(k=1, mode=mode))
    p = run(env.config)
    m = check_scenario(p, env.config, exit_code=3, runs_before=1)
    assert m is not None
    u = units_of(m)
    [broken] = [n for n, x in u.items() if n.startswith("members:") and not x["complete"]]
    detail = str(u[broken]["detail"])
    if mode == "missing":
        assert detail == "range stopped at 1000 without a final '-*' range"
    else:
        # the first final window the proxy sees: groups come in no fixed order, so it may be
        # the 1,499/1,500/1,501-member groups' (1000-*) or the 5,000-member group's (4000-*)
        found = re.fullmatch(r"range member;range=(\d+)-(\d+) carried (\d+) value\(s\)", detail)
        assert found is not None, detail
        start, end, carried = (int(x) for x in found.groups())
        assert start in (1000, 4000) and end == start + carried
        # what the window really carried: the rest of a 1,499/1,500/1,501 or 5,000-member group
        assert carried in ((499, 500, 501) if start == 1000 else (1000,)), detail
    assert manifests(env.data)[-1]["complete"] is False
