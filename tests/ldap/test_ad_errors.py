"""Transport, bind and mid-collection failures: each one clear line, never a partial snapshot."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest
from support.memory_keyring import installed
from support.servers.load_ad import BIND_PASSWORD
from support.servers.proxy import CuttingProxy
from support.servers.seeded import SeededDC, running_copy

from accessaudit.connectors.ldap.collect import IncompleteLdapCollection, collect
from accessaudit.errors import AuthError, ConfigError, ConnectError, ExitCode
from accessaudit.loopback_ca import Pki, make_pki

pytestmark = pytest.mark.servers


def test_wrong_password(samba: SeededDC, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = samba.source(monkeypatch)
    monkeypatch.setenv("ACCESSAUDIT_TEST_LDAP_PASSWORD", "not-the-password")
    with pytest.raises(AuthError) as err:
        collect(cfg)
    assert "wrong password (AD data 52e)" in err.value.message
    assert "auditor@alliance.local" in err.value.message
    assert "\n" not in str(err.value) and "not-the-password" not in str(err.value)


def test_disabled_bind_account(samba: SeededDC, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AuthError) as err:
        collect(samba.source(monkeypatch, bind_dn="auditor-off@alliance.local"))
    assert "account disabled (AD data 533)" in err.value.message
    assert err.value.hint == "enable the bind account in AD"


def test_untrusted_certificate(
    samba: SeededDC, other_pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConnectError) as err:
        collect(samba.source(monkeypatch, ca_file=other_pki.ca_file))
    assert "certificate is not trusted" in err.value.message
    assert "ca_file" in err.value.hint


def test_system_trust_store_does_not_trust_a_private_ca(
    samba: SeededDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ca_file means the system store, with validation still on (never CERT_NONE)."""
    with pytest.raises(ConnectError, match="not trusted"):
        collect(samba.source(monkeypatch, ca_file=None))


def test_wrong_hostname(
    samba_template: SeededDC, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A trusted CA, but a certificate that names only 127.0.0.250, not the address we use.
    other_name = make_pki(tmp_path / "pki", ips=("127.0.0.250",), dns=("dc9.example.org",))
    seeded = running_copy(samba_template, tmp_path / "dc", other_name)
    try:
        cfg = seeded.source(monkeypatch)
        with pytest.raises(ConnectError) as err:
            collect(cfg)
        assert "does not name this host" in err.value.message
    finally:
        seeded.dc.stop()


def test_plaintext_refused_before_connecting(
    samba: SeededDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as err:
        collect(samba.source(monkeypatch, servers=[samba.dc.ldap_url]))
    assert "refusing a simple bind without TLS" in err.value.message


def test_plaintext_allowed_but_server_requires_encryption(
    samba: SeededDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(AuthError) as err:
        collect(samba.source(monkeypatch, servers=[samba.dc.ldap_url], allow_plaintext=True))
    assert "requires transport encryption (result 8" in err.value.message


def test_start_tls(samba: SeededDC, monkeypatch: pytest.MonkeyPatch) -> None:
    got = collect(samba.source(monkeypatch, servers=[samba.dc.ldap_url], start_tls=True))
    assert got.complete and got.state["server"] == samba.dc.ldap_url


def test_failover_to_next_server(samba: SeededDC, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = "ldaps://127.0.0.1:1"  # nothing listens: connection refused at once
    got = collect(samba.source(monkeypatch, servers=[dead, samba.dc.ldaps_url]))
    assert got.complete and got.state["server"] == samba.dc.ldaps_url


def test_all_servers_down(samba: SeededDC, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConnectError) as err:
        collect(samba.source(monkeypatch, servers=["ldaps://127.0.0.1:1", "ldaps://127.0.0.1:2"]))
    assert err.value.message.startswith("no LDAP server answered")
    assert "127.0.0.1:1" in err.value.message and "127.0.0.1:2" in err.value.message


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    for c in held:
        c.close()
    sock.close()


def test_hung_server_times_out(
    samba: SeededDC, silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = samba.source(
        monkeypatch, servers=[f"ldaps://127.0.0.1:{silent_server}"], receive_timeout=1
    )
    with pytest.raises(ConnectError):
        collect(cfg)


def test_total_time_limit_counts_connect_and_bind(
    samba: SeededDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A millisecond is over before the bind is: nothing is collected, and the error says so."""
    with pytest.raises(ConnectError) as err:
        collect(samba.source(monkeypatch, total_timeout=0.001))
    assert "total time limit of 0.001 s reached while connecting and binding" in err.value.message


def test_server_stopped_mid_collection(
    fresh_samba: SeededDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, int]] = []

    def stop_after_first_page(unit: str, count: int) -> None:
        calls.append((unit, count))
        if len(calls) == 1:
            fresh_samba.dc.stop()

    cfg = fresh_samba.source(monkeypatch, page_size=100)
    with pytest.raises(IncompleteLdapCollection) as err:
        collect(cfg, progress=stop_after_first_page)
    collection = err.value.collection
    accounts = next(u for u in collection.units if u.name == "accounts")
    assert not accounts.complete and accounts.count == 100
    assert "connection failed after 1 pages" in accounts.detail
    assert "accounts (connection failed" in err.value.message
    assert not collection.complete


def _drop_after_first_page(
    proxy: CuttingProxy,
) -> tuple[list[tuple[str, int]], Callable[[str, int], None]]:
    """A progress callback that drops every connection through ``proxy`` after the first page."""
    calls: list[tuple[str, int]] = []

    def progress(unit: str, count: int) -> None:
        calls.append((unit, count))
        if len(calls) == 1:
            proxy.was_cut.set()
            proxy.close()

    return calls, progress


def test_server_lost_mid_collection_fails_over_to_the_next(
    samba: SeededDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first DC drops the connection after one page of accounts: the whole collection starts
    again on the next DC, is complete and equals a collection from that DC alone (no page of
    the first is kept); the DC given up is named in the collection's state."""
    proxy = CuttingProxy((samba.dc.address, 636), after=1 << 40, cut=lambda: None)
    calls, progress = _drop_after_first_page(proxy)
    cfg = samba.source(monkeypatch, servers=[proxy.url, samba.dc.ldaps_url], page_size=100)
    try:
        got = collect(cfg, progress=progress)
    finally:
        proxy.close()
    assert calls[0] == ("accounts", 100) and calls[1] == ("accounts", 100)  # started again
    assert got.complete
    assert got.state["server"] == samba.dc.ldaps_url
    assert got.state["failed_over_from"].startswith(f"{proxy.url}: ")
    direct = collect(samba.source(monkeypatch))
    for name, key in (("accounts", "account_id"), ("groups", "group_id")):
        assert got.table(name).sort(key).equals(direct.table(name).sort(key)), name
    edges = ["group_id", "member_id", "via"]
    assert (
        got.table("memberships")
        .select(edges)
        .sort(edges)
        .equals(direct.table("memberships").select(edges).sort(edges))
    )
    assert [(u.name, u.complete, u.count) for u in got.units] == [
        (u.name, u.complete, u.count) for u in direct.units
    ]


def test_server_lost_mid_collection_and_the_next_unreachable(
    samba: SeededDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failover to a DC that does not answer: one error naming both, nothing returned."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"ldaps://127.0.0.1:{s.getsockname()[1]}"  # closed again: refused
    proxy = CuttingProxy((samba.dc.address, 636), after=1 << 40, cut=lambda: None)
    _, progress = _drop_after_first_page(proxy)
    cfg = samba.source(monkeypatch, servers=[proxy.url, dead], page_size=100)
    try:
        with pytest.raises(ConnectError) as err:
            collect(cfg, progress=progress)
    finally:
        proxy.close()
    message = err.value.message
    assert message.startswith(f"{proxy.url}: ") and "(lost mid-collection), then " in message
    assert dead in message and "\n" not in str(err.value)


def test_kerberos_needs_gssapi(samba: SeededDC, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kerberos needs the optional gssapi package; without it, a clear error before connecting
    (the real Kerberos binds are in test_kerberos.py)."""
    import sys

    monkeypatch.setitem(sys.modules, "gssapi", None)  # what `import gssapi` sees uninstalled
    with pytest.raises(ConfigError, match="needs the Python gssapi package"):
        collect(samba.source(monkeypatch, auth="kerberos"))


def test_invalid_configured_filter_is_a_config_error(
    samba: SeededDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="invalid LDAP filter"):
        collect(samba.source(monkeypatch, user_filter="(department=CID"))


def test_configured_filter_restricts_accounts(
    samba: SeededDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = collect(samba.source(monkeypatch, user_filter="(company=Force A)"))
    assert got.complete
    assert set(got.table("accounts")["company"]) == {"Force A"}


def test_receive_timeout_names_itself(
    samba: SeededDC, silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that never answers the TLS handshake: receive_timeout fires (1 s), well within
    the total time limit, and the error says which limit it was."""
    cfg = samba.source(
        monkeypatch, servers=[f"ldaps://127.0.0.1:{silent_server}"], receive_timeout=1
    )
    started = time.monotonic()
    with pytest.raises(ConnectError) as err:
        collect(cfg)
    assert time.monotonic() - started < 5
    assert "timed out" in err.value.message and "total time limit" not in err.value.message


def test_total_time_limit_covers_connect_and_bind(
    samba: SeededDC, silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hung server with generous connect/receive limits: the total time limit (1 s) ends the
    wait, not receive_timeout (30 s), and the error names the total time limit."""
    cfg = samba.source(
        monkeypatch,
        servers=[f"ldaps://127.0.0.1:{silent_server}", samba.dc.ldaps_url],
        connect_timeout=30,
        receive_timeout=30,
        total_timeout=1,
    )
    started = time.monotonic()
    with pytest.raises(ConnectError) as err:
        collect(cfg)
    assert time.monotonic() - started < 4
    assert err.value.message.startswith(
        f"ldaps://127.0.0.1:{silent_server}: total time limit of 1 s reached while connecting"
    )
    assert "total_timeout" in err.value.hint


def test_stalled_server_stops_at_the_total_deadline(
    fresh_samba: SeededDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The domain controller freezes (SIGSTOP) after the first page, its connection open: the
    collection ends at the total time limit (4 s), not one receive_timeout (30 s) later."""
    pid = fresh_samba.dc.pid
    assert pid is not None
    frozen: list[int] = []

    def freeze_after_first_page(unit: str, count: int) -> None:
        if not frozen:
            os.kill(pid, signal.SIGSTOP)
            frozen.append(pid)

    cfg = fresh_samba.source(monkeypatch, page_size=100, receive_timeout=30, total_timeout=4)
    started = time.monotonic()
    try:
        with pytest.raises(IncompleteLdapCollection) as err:
            collect(cfg, progress=freeze_after_first_page)
        elapsed = time.monotonic() - started
    finally:
        if frozen:
            os.kill(pid, signal.SIGCONT)
    assert 3.5 < elapsed < 8
    assert err.value.exit_code == ExitCode.INCOMPLETE and not err.value.collection.complete
    accounts = next(u for u in err.value.collection.units if u.name == "accounts")
    assert not accounts.complete and accounts.count == 100
    assert accounts.detail == "total time limit 4 s reached after 1 pages (while receiving)"
    assert "no data from the server" not in err.value.message


def test_kerberos_refused_over_plain_ldap(samba: SeededDC, monkeypatch: pytest.MonkeyPatch) -> None:
    """ldap3's GSSAPI has no SASL security layer: over ldap:// without StartTLS the session
    would be neither signed nor sealed, so it is refused before connecting."""
    cfg = samba.source(
        monkeypatch,
        servers=[samba.dc.ldap_url],
        auth="kerberos",
        bind_dn=None,
        password_env=None,
    )
    with pytest.raises(ConfigError) as err:
        collect(cfg)
    assert err.value.message == (
        f"refusing a Kerberos bind without TLS to {samba.dc.ldap_url}: ldap3's GSSAPI has no"
        " SASL security layer, so the session would be neither signed nor encrypted"
    )
    assert "start_tls = true" in err.value.hint


def test_bind_password_from_keyring(samba: SeededDC, monkeypatch: pytest.MonkeyPatch) -> None:
    with installed() as memory:
        keyring.set_password("accessaudit", "auditor", BIND_PASSWORD)
        cfg = samba.source(monkeypatch, password_env=None, password_keyring="accessaudit:auditor")
        got = collect(cfg, now=samba.dataset.now)
    assert got.complete
    assert memory.entries == {("accessaudit", "auditor"): BIND_PASSWORD}
