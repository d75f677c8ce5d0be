"""Search results read straight off ldap3's connection, decoded into columns, not entries.

ldap3 stays the connection and BER layer: it opens and binds the connection (TLS, SASL), builds
and encodes every request (:func:`ldap3.operation.search.search_operation`, its controls, its
``strategy.send``), and decodes every message that is not a search entry (``searchResDone`` with
its result code and paged-results cookie, referrals, notices) with its own
``decode_message_fast`` / ``decode_response_fast``. What it does not do here is turn each
``searchResEntry`` into two case-insensitive dicts (``attributes`` formatted per value through
four config lookups, and ``raw_attributes``): at 100,000 entries that object model costs ten
times the wire (profile in benchmarks/README.md). Instead :func:`search` reads the raw response
messages from the connection's socket and appends, per requested attribute, the entry number
and the raw value of every value to two flat lists (:class:`~.columns.Columns`), which become
polars columns in batches (one per page). Values stay bytes, exactly as sent.

The SearchResultEntry walked by :func:`_decode` ([RFC 4511] 4.5.2, BER definite lengths):
``30 len | 02 len msgid | 64 len | 04 len dn | 30 len { 30 len | 04 len type | 31 len {04 len
value}* }* [| a0 controls]``. Anything that does not fit is a malformed response and ends the
search with an error, as a dropped connection does.
"""

from __future__ import annotations

import contextlib
import select
import ssl
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from ldap3 import DEREF_NEVER, Connection
from ldap3.core.exceptions import LDAPException, LDAPSocketReceiveError
from ldap3.operation.search import search_operation
from ldap3.utils.asn1 import decode_message_fast

from accessaudit.connectors.ldap import ber
from accessaudit.connectors.ldap.columns import Columns
from accessaudit.transport.ldap import short

_ENTRY, _REFERENCE = 0x64, 0x73
#: socket read size; TLS hands back at most one 16 kB record per read anyway
_READ = 1 << 18
#: decode once this much has arrived even while more keeps coming
_BATCH = 1 << 18


class MalformedResponse(LDAPSocketReceiveError):  # type: ignore[misc]  # ldap3 is untyped
    """A response that is not valid BER for what it claims to be."""


class DeadlineReached(LDAPSocketReceiveError):  # type: ignore[misc]  # ldap3 is untyped
    """The collection's total time limit passed while waiting for this search's answer."""


def _decode(b: bytes, msgid: int, cols: Columns) -> tuple[int, list[bytes]]:
    """Decode the complete messages at the start of ``b``; entries go into ``cols``.

    Returns how many bytes were consumed and the other messages (searchResDone, references,
    notices) still encoded, for ldap3 to decode. The walk itself is compiled (:func:`.ber.walk`);
    it stops only at an attribute spelling it does not know yet (given its slot here, then
    walked on) and at a malformed message.
    """
    arr = np.frombuffer(b, np.uint8)
    n = len(b)
    vals = np.empty((n // 2 + 1, 4), np.int64)
    dns = np.empty((n // 8 + 1, 2), np.int64)
    ranged = np.empty((n // 6 + 1, 4), np.int64)
    others = np.empty((n // 7 + 1, 2), np.int64)
    state = np.zeros(8, np.int64)
    found: list[bytes] = []
    p = 0
    while True:
        types, (blob, off, slots) = cols.type_table()
        first = cols.n
        ber.walk(arr, p, msgid, first, blob, off, slots, vals, dns, ranged, others, state)
        status, p, nv, nd, nr, no, aux, aux2 = (int(x) for x in state)
        cols.add_block(b, vals[:nv].copy(), dns[:nd].copy())
        for i, t, q, end in ranged[:nr].tolist():
            cols.keep_ranged(i, types[t], _values(b, q, end))
        found += [b[s:e] for s, e in others[:no].tolist()]
        if status == ber.UNKNOWN:
            cols.slot_for(b[aux : aux + aux2])
        elif status != ber.DONE:
            raise MalformedResponse(ber.MESSAGES[status].format(aux=aux))
        else:
            return p, found


def _values(b: bytes, q: int, end: int) -> list[bytes]:
    """The values of one value set, ``b[q:end]`` (checked by the walk): a partial range."""
    out: list[bytes] = []
    while q < end:
        q += 1
        ln = b[q]
        q += 1
        if ln & 0x80:
            k = ln & 0x7F
            ln = int.from_bytes(b[q : q + k], "big")
            q += k
        out.append(b[q : q + ln])
        q += ln
    return out


def _drop(conn: Connection) -> None:
    """The stream is out of step (or gone): close it so nothing else reads from it."""
    with contextlib.suppress(Exception):
        conn.strategy.close()


def search(
    conn: Connection,
    base: str,
    search_filter: str,
    scope: str,
    cols: Columns,
    *,
    controls: Sequence[Any] | None = None,
    time_limit: int = 0,
    deadline: float | None = None,
) -> dict[str, Any]:
    """One search request on ``conn``; its entries are added to ``cols``.

    Returns ldap3's dict of the ``searchResDone`` (``result``, ``description``, ``message``,
    ``controls`` with the paged-results cookie). Raises an ``LDAPException`` when the connection
    drops, goes quiet for ``receive_timeout`` (the socket's timeout, as ldap3 set it) or sends
    malformed BER, and :class:`DeadlineReached` when ``deadline`` (``time.monotonic()``) passes;
    every wait is capped by what is left until ``deadline``. The connection is closed then.
    """
    msgid = _send(conn, base, search_filter, scope, cols.names, controls, time_limit)
    sock = conn.socket
    if sock is None:
        raise LDAPSocketReceiveError("the connection is closed")
    wait = sock.gettimeout()  # ldap3 set it to receive_timeout (None: no limit)
    sock.setblocking(False)
    try:
        return _receive(conn, sock, msgid, cols, wait, deadline)
    except LDAPException:
        _drop(conn)
        raise
    except OSError as exc:  # resets, TLS errors
        _drop(conn)
        raise LDAPSocketReceiveError(f"error receiving data: {short(str(exc))}") from None
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(wait)


def _send(
    conn: Connection,
    base: str,
    search_filter: str,
    scope: str,
    attrs: list[str],
    controls: Sequence[Any] | None,
    time_limit: int,
) -> int:
    """Send the searchRequest through ldap3; its messageID, to be answered by :func:`_receive`."""
    if conn.sasl_mechanism == "DIGEST-MD5":  # ldap3 signs/verifies those messages itself
        raise LDAPException("DIGEST-MD5 sessions are not supported by the column reader")
    # Aliases are never dereferenced: an inventory lists the entries under the base, once each
    # (AD has no aliases; in OpenLDAP a dereferenced alias could repeat or leave the subtree).
    request = search_operation(
        base, search_filter, scope, DEREF_NEVER, attrs, 0, time_limit, False,
        conn.auto_escape, conn.auto_encode, None, validator=None, check_names=False,
    )  # fmt: skip
    msgid: int = conn.strategy.send("searchRequest", request, list(controls or ()))
    conn.strategy._outstanding.pop(msgid, None)  # answered here, not by ldap3's get_response
    return msgid


def _receive(
    conn: Connection,
    sock: Any,
    msgid: int,
    cols: Columns,
    wait: float | None,
    deadline: float | None,
) -> dict[str, Any]:
    """Read the answer to ``msgid`` off the non-blocking ``sock`` up to its searchResDone.

    While the server is ahead, records are read back to back and decoded in batches of _BATCH
    bytes; when the socket runs dry, what has arrived is decoded and the reader waits (select)
    for at most ``wait`` (receive_timeout). One decode per TLS record (slapd writes one per
    entry) would cost more in call overhead than the entries themselves.
    """
    pending = bytearray()
    while True:
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlineReached("total time limit reached while receiving")
        try:
            chunk: bytes | None = sock.recv(_READ)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            chunk = None
        if chunk:
            pending += chunk
            if len(pending) < _BATCH:
                continue
        done = _decode_pending(conn, pending, msgid, cols)
        if done is not None:
            return done
        if chunk == b"":  # what had arrived is decoded above: the rest never will
            raise LDAPSocketReceiveError("connection closed by the server")
        if chunk is None:
            if cols.pending:  # nothing to read yet: cut the values out meanwhile, then look again
                cols.flush()
                continue
            _wait(sock, wait, deadline)


def _decode_pending(
    conn: Connection, pending: bytearray, msgid: int, cols: Columns
) -> dict[str, Any] | None:
    """Decode (and remove) the complete messages at the start of ``pending``; the
    searchResDone's dict once it has come."""
    need = _message_size(pending)
    if not need or len(pending) < need:
        return None
    used, others = _decode(bytes(pending), msgid, cols)
    del pending[:used]
    for raw in others:
        done = _other(conn, raw, msgid, cols)
        if done is not None:
            if pending:
                raise MalformedResponse("data after searchResDone")
            return done
    return None


def _wait(sock: Any, wait: float | None, deadline: float | None) -> None:
    """Wait until ``sock`` is readable: at most ``wait`` seconds, never past ``deadline``."""
    cap, by_deadline = wait, False
    if deadline is not None:
        left = max(0.0, deadline - time.monotonic())
        if wait is None or left < wait:
            cap, by_deadline = left, True
    if not select.select([sock], [], [], cap)[0]:
        if by_deadline:
            raise DeadlineReached("total time limit reached while receiving")
        raise LDAPSocketReceiveError(f"no data from the server for {wait:g} s")


def _message_size(pending: bytearray) -> int:
    if len(pending) < 2:
        return 0
    ln = pending[1]
    if not ln & 0x80:
        return 2 + ln
    k = ln & 0x7F
    if len(pending) < 2 + k:
        return 0
    return 2 + k + int.from_bytes(pending[2 : 2 + k], "big")


def _other(conn: Connection, raw: bytes, msgid: int, cols: Columns) -> dict[str, Any] | None:
    """A message that is not an entry, decoded by ldap3; the result dict when it ends the search."""
    message = decode_message_fast(raw)
    if message["messageID"] != msgid:
        # messageID 0: an unsolicited notification, e.g. Notice of Disconnection (RFC 4511 4.4.1)
        notice = conn.strategy.decode_response_fast(message)
        raise LDAPSocketReceiveError(
            f"unsolicited message {message['messageID']}: {notice.get('description')} "
            f"{notice.get('message') or ''}".strip()
        )
    if message["protocolOp"] == 19:  # searchResRef: counted, never chased
        cols.references += 1
        return None
    if message["protocolOp"] == 25:  # intermediateResponse: not used by a plain search
        return None
    response = dict(conn.strategy.decode_response_fast(message))
    if response.get("type") != "searchResDone":
        raise MalformedResponse(f"unexpected {response.get('type')} in a search")
    return response
