"""Connecting and binding to an LDAP server with ldap3: TLS always verified, failures in one line.

Every ``Tls`` is built with ``ssl.CERT_REQUIRED`` (ldap3's default does not validate) and the
hostname is checked against the certificate. A plain ``ldap://`` bind without StartTLS is refused
unless the source sets ``allow_plaintext`` (a lab): a simple bind would send the password in
clear, and a Kerberos one would run unsigned and unencrypted (ldap3's GSSAPI negotiates no SASL
security layer). Bind failures become :class:`AuthError` with the AD sub-code decoded (``data
52e`` wrong password, ``533`` disabled, ...); unreachable servers and TLS failures become
:class:`ConnectError`, and :func:`connect` moves on to the next server.

Failover happens here only, before a collection starts: a server lost mid-collection makes that
collection incomplete; it is not resumed on another server (paging cookies belong to one server).
Connecting and binding count against the source's ``total_timeout``: each wait is the smaller of
its own limit and what is left of the total (ldap3 takes the TLS handshake's limit in whole
seconds, so that one wait may end up to a second late). A per-read limit never ends a wait on a
server that trickles a byte a second, so a watchdog (:class:`_Watchdog`) shuts the socket down
when the deadline passes, waking whatever read ldap3 is blocked in.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import re
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from typing import Any

from ldap3 import NONE, SASL, SIMPLE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException

from accessaudit.config.sources import LdapSource
from accessaudit.errors import AuthError, ConfigError, ConnectError

#: AD bind failure sub-codes (the "data NNN" in the diagnostic message) -> text and hint.
_AD_BIND_CODES: dict[str, tuple[str, str]] = {
    "52e": ("wrong password", "check the password the source's password_env/_file points at"),
    "525": ("no such user", "check bind_dn (a DN, user@domain or DOMAIN\\user)"),
    "530": ("not permitted to log on at this time", "check the account's logon hours"),
    "531": ("not permitted to log on from this workstation", "check userWorkstations"),
    "532": ("password expired", "reset the service account's password"),
    "533": ("account disabled", "enable the bind account in AD"),
    "701": ("account expired", "extend the bind account's accountExpires"),
    "773": ("password must be reset", "set a new password for the bind account"),
    "775": ("account locked out", "unlock the bind account; check for repeated failures"),
}


def _tls(cfg: LdapSource, host: str) -> Tls:
    return Tls(
        validate=ssl.CERT_REQUIRED,
        ca_certs_file=str(cfg.ca_file) if cfg.ca_file else None,
        version=ssl.PROTOCOL_TLS_CLIENT,
        sni=host,
    )


def _describe_tls_failure(url: str, exc: Exception) -> ConnectError:
    text = str(exc)
    if "doesn't match" in text or "match any name" in text or "hostname" in text.lower():
        return ConnectError(
            f"{url}: the server certificate does not name this host",
            "connect by a name in the certificate's subjectAltName (or fix the certificate)",
        )
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return ConnectError(
            f"{url}: the server certificate is not trusted ({short(text)})",
            "set ca_file to the CA that issued the domain controller's certificate",
        )
    return ConnectError(
        f"{url}: cannot connect: {short(text)}", "check the address, port and firewall"
    )


def short(text: str) -> str:
    m = re.search(r"\[SSL: [A-Z_]+\][^'\"\]\)]*", text)
    return (m.group(0) if m else text).strip()[:200]


def _bind_error(url: str, who: str, result: dict[str, Any]) -> AuthError:
    """The refused bind in one line. The server's own text is read for the codes in it, never
    quoted: it answers a request that carried the password, and a server may echo it."""
    code = result.get("result")
    desc = _word(result.get("description"))
    message = str(result.get("message") or "")
    if code == 8 and "sign or seal" in message.lower():
        # ldap3's GSSAPI has no SASL security layer: it relies on TLS, as AD accepts over LDAPS.
        return AuthError(
            f"{url}: Kerberos bind refused: the server wants SASL signing or sealing even over"
            f" TLS (result 8 {desc})",
            "on Samba set 'ldap server require strong auth = allow_sasl_over_tls' (Active"
            " Directory accepts Kerberos over LDAPS); or use a simple bind over LDAPS",
        )
    if code == 8:
        return AuthError(
            f"{url}: bind refused: the server requires transport encryption (result 8 {desc})",
            "use ldaps:// or start_tls = true",
        )
    m = re.search(r"data ([0-9a-f]{3})", message)
    if m and m.group(1) in _AD_BIND_CODES:
        what, hint = _AD_BIND_CODES[m.group(1)]
        return AuthError(f"{url}: bind as {who} refused: {what} (AD data {m.group(1)})", hint)
    return AuthError(
        f"{url}: bind as {who} refused: result {code} {desc}",
        "check bind_dn and the password source (the server's error text is not shown: it"
        " answers a request that carried the password)",
    )


def _word(value: object) -> str:
    """ldap3's name of a result code (its own table), or '?' for anything else."""
    text = str(value or "")
    return text if re.fullmatch(r"[A-Za-z]{1,40}", text) else "?"


def _kerberos_error(url: str, host: str, exc: Exception) -> AuthError:
    """One line from a GSS-API failure (its minor status says what Kerberos itself saw)."""
    text = str(exc)
    m = re.search(r"Minor \(\d+\): (.*)$", text, re.S)
    detail = (m.group(1) if m else text).strip().splitlines()[0][:200]
    if "credentials" in detail.lower():
        hint = (
            "get a ticket first (kinit, or a keytab in KRB5_CLIENT_KTNAME; KRB5CCNAME names the"
            " ticket cache)"
        )
    elif "server not found" in detail.lower() or "not found in kerberos database" in detail.lower():
        hint = f"name the domain controller as its service principal is named (ldap/{host})"
    else:
        hint = "check the Kerberos configuration (KRB5_CONFIG), the realm and the clock"
    return AuthError(f"{url}: Kerberos (GSSAPI) bind failed: {detail}", hint)


def connect(
    cfg: LdapSource,
    password: str | None,
    *,
    deadline: float | None = None,
    servers: Sequence[str] | None = None,
) -> tuple[Connection, str]:
    """Open and bind a connection to the first server that answers; returns it and its URL.

    ``servers`` (default ``cfg.servers``) are tried in order.

    Unreachable servers and TLS failures move on to the next server; a refused bind stops at
    once (trying the same wrong password on every DC only locks the account out faster).
    ``deadline`` (``time.monotonic()``, the collection's total time limit) caps every wait; when
    it passes, the error names the total time limit.
    """
    failures: list[ConnectError] = []
    for url in cfg.servers if servers is None else servers:
        if deadline is not None and time.monotonic() >= deadline:
            raise _total_limit(cfg, url, failures)
        try:
            return _connect_one(cfg, url, password, deadline), url
        except ConnectError as exc:
            failures.append(exc)
            if deadline is not None and time.monotonic() >= deadline:
                raise _total_limit(cfg, url, failures) from None
    if len(failures) == 1:
        raise failures[0]
    raise ConnectError(
        "no LDAP server answered: " + "; ".join(f.message for f in failures),
        failures[-1].hint,
    )


def _total_limit(cfg: LdapSource, url: str, failures: list[ConnectError]) -> ConnectError:
    seen = f" ({'; '.join(f.message for f in failures)})" if failures else ""
    return ConnectError(
        f"{url}: total time limit of {cfg.total_timeout:g} s reached while connecting and"
        f" binding{seen}",
        "raise total_timeout, or find out why the server is slow to answer",
    )


def _left(deadline: float | None, limit: float) -> float:
    """``limit``, or less when the deadline is nearer (never below a millisecond)."""
    if deadline is None:
        return limit
    return max(0.001, min(limit, deadline - time.monotonic()))


def _connect_one(
    cfg: LdapSource, url: str, password: str | None, deadline: float | None = None
) -> Connection:
    host, port, ldaps = _parse_url(url)
    encrypted = ldaps or cfg.start_tls
    if not encrypted and not cfg.allow_plaintext:
        raise _plaintext_refused(cfg, url)
    server = Server(
        host,
        port=port,
        use_ssl=ldaps,
        tls=_tls(cfg, host) if encrypted else None,
        get_info=NONE,
        connect_timeout=_left(deadline, cfg.connect_timeout),
    )
    conn, who = _connection(cfg, server, password, deadline)
    with _Watchdog(conn, deadline) as watchdog:
        try:
            _open(conn, cfg, url, ldaps, deadline)
            _bind(conn, cfg, url, host, who)
        except ConnectError:
            if watchdog.fired:  # connect() names the total time limit
                raise ConnectError(
                    f"{url}: the server's answer was still incomplete", "check the server"
                ) from None
            raise
    if conn.socket is not None:
        conn.socket.settimeout(max(1, math.ceil(cfg.receive_timeout)))
    return conn


class _Watchdog:
    """Shuts the connection's socket down when ``deadline`` passes, until the block ends.

    ldap3 reads a response with blocking ``recv`` calls until the message is whole; each call
    is limited by the socket's timeout, but a server sending a byte at a time resets that limit
    with every byte. Shutting the socket down from another thread ends the blocked read at once
    (the read sees end of file and ldap3 raises its socket error).
    """

    def __init__(self, conn: Connection, deadline: float | None) -> None:
        self.conn = conn
        self.deadline = deadline
        self.fired = False
        self._done = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __enter__(self) -> _Watchdog:
        if self.deadline is not None:
            wait = max(0.0, self.deadline - time.monotonic())
            self._timer = threading.Timer(wait, self._fire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        if self._timer is not None:
            self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            sock = self.conn.socket
            if sock is None:
                return
            # the plain socket's shutdown, also under TLS: SSLSocket.shutdown would drop the TLS
            # object that the blocked thread is still reading through
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _parse_url(url: str) -> tuple[str, int, bool]:
    """``ldaps://host:port`` -> (host, port, ldaps); the port defaults by scheme."""
    m = re.match(r"^(ldaps?)://(\[[^\]]+\]|[^:/]+)(?::(\d+))?/?$", url, re.I)
    if not m:
        raise ConfigError(
            f"server '{url}' is not an ldap:// or ldaps:// URL", "e.g. ldaps://dc1.example.org"
        )
    host = m.group(2).strip("[]")
    ldaps = m.group(1).lower() == "ldaps"
    port = int(m.group(3)) if m.group(3) else (636 if ldaps else 389)
    return host, port, ldaps


def _plaintext_refused(cfg: LdapSource, url: str) -> ConfigError:
    if cfg.auth == "kerberos":
        return ConfigError(
            f"refusing a Kerberos bind without TLS to {url}: ldap3's GSSAPI has no SASL"
            " security layer, so the session would be neither signed nor encrypted",
            "use ldaps:// or start_tls = true (allow_plaintext = true is for a lab only)",
        )
    return ConfigError(
        f"refusing a simple bind without TLS to {url}: the password would cross in clear",
        "use ldaps:// or start_tls = true (allow_plaintext = true is for a lab only)",
    )


def _connection(
    cfg: LdapSource, server: Server, password: str | None, deadline: float | None
) -> tuple[Connection, str]:
    """An unopened connection set up for the source's bind; and who binds, for messages."""
    kwargs: dict[str, Any] = {
        "auto_bind": False,
        "auto_range": False,  # ranges are followed and checked here (ldap3 issue 336)
        "auto_referrals": False,  # never chase referrals (anonymously or otherwise)
        "return_empty_attributes": False,  # ldap3 KeyError with auto_range=False otherwise
        "check_names": False,
        "raise_exceptions": False,
        # ldap3 packs an int (SO_RCVTIMEO); it limits the TLS handshake inside open()
        "receive_timeout": max(1, math.ceil(_left(deadline, cfg.receive_timeout))),
        "read_only": True,
    }
    if cfg.auth == "kerberos":
        try:
            importlib.import_module("gssapi")  # optional; ldap3 imports it during the bind
        except ImportError:
            raise ConfigError(
                "auth = 'kerberos' needs the Python gssapi package",
                "pip install gssapi (building it needs libkrb5-dev and a C compiler)",
            ) from None
        conn = Connection(server, authentication=SASL, sasl_mechanism="GSSAPI", **kwargs)
        return conn, "(Kerberos ticket)"
    conn = Connection(
        server,
        user=cfg.bind_dn,
        password=password,
        authentication=SIMPLE if cfg.bind_dn else None,
        **kwargs,
    )
    return conn, cfg.bind_dn or "(anonymous)"


def _open(conn: Connection, cfg: LdapSource, url: str, ldaps: bool, deadline: float | None) -> None:
    """Open the socket (TLS handshake on ldaps://) and run StartTLS when the source asks."""
    try:
        conn.open()
        # StartTLS and the bind wait on the socket's own timeout: capped by the deadline, and
        # set back to receive_timeout for the searches once bound.
        if conn.socket is not None:
            conn.socket.settimeout(_left(deadline, cfg.receive_timeout))
        if cfg.start_tls and not ldaps and not conn.start_tls():
            said = str(conn.result.get("message") or "").strip()[:120]
            raise ConnectError(f"{url}: StartTLS refused: {said}", "use ldaps://", outside=[said])
    except LDAPException as exc:  # LDAPSocketOpenError, LDAPStartTLSError, ...
        raise _describe_tls_failure(url, exc) from None


def _bind(conn: Connection, cfg: LdapSource, url: str, host: str, who: str) -> None:
    try:
        ok = conn.bind()
    except LDAPException as exc:
        raise ConnectError(
            f"{url}: connection lost during bind: {short(str(exc))}", "retry"
        ) from None
    except Exception as exc:  # gssapi's errors: no ticket, unknown service principal, clock skew
        if cfg.auth != "kerberos":
            raise
        raise _kerberos_error(url, host, exc) from None
    if not ok:
        conn.unbind()
        raise _bind_error(url, who, conn.result)
