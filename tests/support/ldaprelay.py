"""A TLS-terminating LDAP relay that can cut, stall or rewrite one protocol message.

The relay is an LDAPS server on 127.0.0.1 (the test PKI names that address) and an LDAPS client
of a real directory server. It reads whole LDAP messages (BER framing, [RFC 4511] 4.1.1) in both
directions and hands each to a :class:`Script`, which decides: forward it, forward something
else (a rewritten message, or answers the relay makes up), **cut** every connection, or **stall**
(stop forwarding answers while keeping the connection open). That is enough to make each
directory fault the hardening suites test happen on purpose, against Samba or slapd, at an exact
point of a collection: mid-page, mid-range, a server that stops answering, a result code that a
real server returns only under load (timeLimitExceeded, adminLimitExceeded), a paging cookie that
never ends, a range that stops without ``-*``.

Only the few BER shapes needed here are parsed and built (definite lengths only).
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

PAGED_OID = b"1.2.840.113556.1.4.319"

# protocolOp tags ([APPLICATION n])
BIND_REQUEST, SEARCH_REQUEST, UNBIND_REQUEST = 0x60, 0x63, 0x42
SEARCH_ENTRY, SEARCH_DONE, SEARCH_REFERENCE = 0x64, 0x65, 0x73


def _tlv(data: bytes, i: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the TLV at ``data[i]``."""
    tag = data[i]
    n = data[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(data[i : i + k], "big")
        i += k
    return tag, i, i + n


def _children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(tag, start of the TLV, start of content, end) of each TLV in ``data[start:end]``."""
    i = start
    while i < end:
        tag, s, e = _tlv(data, i)
        yield tag, i, s, e
        i = e


def ber(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def ber_int(tag: int, value: int) -> bytes:
    length = max(1, (value.bit_length() + 8) // 8)
    return ber(tag, value.to_bytes(length, "big", signed=True))


def message_size(buf: bytes | bytearray) -> int:
    """Bytes of the first complete message in ``buf``, or 0 if it is not complete yet."""
    if len(buf) < 2:
        return 0
    n = buf[1]
    head = 2
    if n & 0x80:
        k = n & 0x7F
        if len(buf) < 2 + k:
            return 0
        n = int.from_bytes(buf[2 : 2 + k], "big")
        head += k
    return head + n if len(buf) >= head + n else 0


@dataclass
class Message:
    """One LDAPMessage: its bytes and the parts the scripts look at."""

    raw: bytes
    msgid: int
    op: int  # the protocolOp tag
    op_tlv: tuple[int, int, int]  # (start of TLV, start of content, end)
    controls: tuple[int, int, int] | None  # the [0] Controls, if any

    @classmethod
    def parse(cls, raw: bytes) -> Message:
        tag, s, e = _tlv(raw, 0)
        if tag != 0x30:
            raise ValueError(f"not an LDAPMessage: 0x{tag:02x}")
        parts = list(_children(raw, s, e))
        msgid = int.from_bytes(raw[parts[0][2] : parts[0][3]], "big", signed=True)
        op, ot, os_, oe = parts[1]
        controls = next(((ct, cs, ce) for t, ct, cs, ce in parts[2:] if t == 0xA0), None)
        return cls(raw, msgid, op, (ot, os_, oe), controls)

    def _op_parts(self) -> list[tuple[int, int, int, int]]:
        return list(_children(self.raw, self.op_tlv[1], self.op_tlv[2]))

    def with_msgid(self, msgid: int) -> bytes:
        """The same message under another message ID (a replayed answer)."""
        return ber(0x30, ber_int(0x02, msgid) + self.raw[self.op_tlv[0] :])

    # --- requests -----------------------------------------------------------------------------

    def search_attributes(self) -> list[str]:
        _, _, s, e = self._op_parts()[-1]
        return [
            self.raw[a:b].decode("utf-8", "replace") for _, _, a, b in _children(self.raw, s, e)
        ]

    def paged_cookie(self) -> bytes | None:
        """The cookie of the paged-results control (request or searchResDone), if any."""
        if self.controls is None:
            return None
        for _, _, s, e in _children(self.raw, self.controls[1], self.controls[2]):
            fields = list(_children(self.raw, s, e))
            if self.raw[fields[0][2] : fields[0][3]] != PAGED_OID:
                continue
            _, _, vs, _ = fields[-1]  # controlValue: an OCTET STRING holding the SEQUENCE
            _, qs, qe = _tlv(self.raw, vs)
            seq = list(_children(self.raw, qs, qe))
            return self.raw[seq[1][2] : seq[1][3]]
        return None

    # --- answers ------------------------------------------------------------------------------

    def result_code(self) -> int:
        _, _, s, e = self._op_parts()[0]
        return int.from_bytes(self.raw[s:e], "big")

    def entry_dn(self) -> str:
        _, _, s, e = self._op_parts()[0]
        return self.raw[s:e].decode("utf-8", "replace")

    def entry_attributes(self) -> list[tuple[str, list[bytes]]]:
        _, _, s, e = self._op_parts()[1]
        out = []
        for _, _, a, b in _children(self.raw, s, e):
            (_, _, ts, te), (_, _, vs, ve) = list(_children(self.raw, a, b))
            values = [self.raw[x:y] for _, _, x, y in _children(self.raw, vs, ve)]
            out.append((self.raw[ts:te].decode("utf-8", "replace"), values))
        return out


def paged_controls(cookie: bytes) -> bytes:
    value = ber(0x30, ber_int(0x02, 0) + ber(0x04, cookie))
    return ber(0xA0, ber(0x30, ber(0x04, PAGED_OID) + ber(0x04, value)))


def search_done(msgid: int, code: int, message: str = "", cookie: bytes | None = None) -> bytes:
    """A searchResDone (with a paged-results control when ``cookie`` is given)."""
    op = ber(SEARCH_DONE, ber_int(0x0A, code) + ber(0x04, b"") + ber(0x04, message.encode()))
    controls = paged_controls(cookie) if cookie is not None else b""
    return ber(0x30, ber_int(0x02, msgid) + op + controls)


def search_entry(msgid: int, dn: str, attributes: list[tuple[str, list[bytes]]]) -> bytes:
    attrs = b"".join(
        ber(0x30, ber(0x04, name.encode()) + ber(0x31, b"".join(ber(0x04, v) for v in values)))
        for name, values in attributes
    )
    op = ber(SEARCH_ENTRY, ber(0x04, dn.encode()) + ber(0x30, attrs))
    return ber(0x30, ber_int(0x02, msgid) + op)


# --- the relay ---------------------------------------------------------------------------------

FORWARD = "forward"
CUT = "cut"
STALL = "stall"


@dataclass
class Reply:
    """From :meth:`Script.request`: answer the client with these messages, send nothing up."""

    messages: list[bytes]


#: What a script decides for one message: FORWARD / CUT / STALL, the messages to send instead
#: (possibly none), or (requests only) a :class:`Reply` made up by the relay.
Verdict = str | list[bytes] | Reply


@dataclass
class Script:
    """Forwards everything; subclasses override :meth:`request` / :meth:`response`.

    ``searches`` counts search requests (over every connection), so a script can act on "the
    third search request" or "the first range request" exactly.
    """

    searches: int = 0
    log: list[str] = field(default_factory=list)

    def request(self, msg: Message) -> Verdict:
        return FORWARD

    def response(self, msg: Message, request: Message | None) -> Verdict:
        return FORWARD


def _payload(raw: bytes, verdict: Verdict) -> bytes:
    """What to pass on for FORWARD (the message itself) or a list of messages (those)."""
    if isinstance(verdict, list):
        return b"".join(verdict)
    if verdict == FORWARD:
        return raw
    raise ValueError(f"not a verdict here: {verdict!r}")


class LdapRelay:
    """LDAPS on 127.0.0.1:<port>, relaying to ``upstream`` (host, port) over verified TLS.

    One thread per relayed connection moves messages both ways (``select``), so no TLS object
    is ever used by two threads.
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        cert_file: Path,
        key_file: Path,
        ca_file: Path,
        script: Script | None = None,
        on_cut: Callable[[], None] | None = None,
    ) -> None:
        self.upstream = upstream
        self.script = script or Script()
        self.on_cut = on_cut
        self.was_cut = threading.Event()
        self.stalled = threading.Event()
        self.connections = 0
        self._server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_ctx.load_cert_chain(str(cert_file), str(key_file))
        self._client_ctx = ssl.create_default_context(cafile=str(ca_file))
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def url(self) -> str:
        return f"ldaps://127.0.0.1:{self.port}"

    def __enter__(self) -> LdapRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                raw_client, _ = self._listener.accept()
            except OSError:
                continue
            t = threading.Thread(target=self._serve, args=(raw_client,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, raw_client: socket.socket) -> None:
        try:
            raw_client.settimeout(30)
            client = self._server_ctx.wrap_socket(raw_client, server_side=True)
            upstream = self._client_ctx.wrap_socket(
                socket.create_connection(self.upstream, timeout=30),
                server_hostname=self.upstream[0],
            )
        except (OSError, ssl.SSLError):
            with contextlib.suppress(OSError):
                raw_client.close()
            return
        with self._lock:
            self._sockets += [client, upstream]
            self.connections += 1
        try:
            self._relay(client, upstream)
        finally:
            self._close(client, upstream)

    def _relay(self, client: ssl.SSLSocket, upstream: ssl.SSLSocket) -> None:
        bufs = {client: bytearray(), upstream: bytearray()}
        pending: dict[int, Message] = {}
        while not self._stop.is_set() and not self.was_cut.is_set():
            ready = [s for s in (client, upstream) if s.pending()]
            if not ready:
                try:
                    ready = select.select([client, upstream], [], [], 0.1)[0]
                except (OSError, ValueError):
                    return
            for sock in ready:
                try:
                    data = sock.recv(65536)
                except (OSError, ssl.SSLError):
                    return
                if not data:
                    if self.stalled.is_set() and sock is upstream:
                        continue
                    return
                buf = bufs[sock]
                buf += data
                while size := message_size(buf):
                    raw = bytes(buf[:size])
                    del buf[:size]
                    if sock is client:
                        if not self._up(raw, client, upstream, pending):
                            return
                    elif not self._down(raw, client, pending):
                        return

    def _up(
        self,
        raw: bytes,
        client: socket.socket,
        upstream: socket.socket,
        pending: dict[int, Message],
    ) -> bool:
        msg = Message.parse(raw)
        if msg.op == SEARCH_REQUEST:
            self.script.searches += 1
        pending[msg.msgid] = msg
        verdict = self.script.request(msg)
        if isinstance(verdict, Reply):
            return self._send(client, b"".join(verdict.messages))
        if verdict == CUT:
            self.cut()
            return False
        if verdict == STALL:
            self.stalled.set()
            return True
        return self._send(upstream, _payload(raw, verdict))

    def _down(self, raw: bytes, client: socket.socket, pending: dict[int, Message]) -> bool:
        if self.stalled.is_set():
            return True  # swallowed: the client waits for an answer that never comes
        msg = Message.parse(raw)
        verdict = self.script.response(msg, pending.get(msg.msgid))
        if verdict == CUT:
            self.cut()
            return False
        if verdict == STALL:
            self.stalled.set()
            return True
        return self._send(client, _payload(raw, verdict))

    @staticmethod
    def _send(sock: socket.socket, data: bytes) -> bool:
        if not data:
            return True
        try:
            sock.sendall(data)
        except OSError:
            return False
        return True

    @staticmethod
    def _close(*socks: socket.socket) -> None:
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def cut(self) -> None:
        """Close every relayed connection now (and call ``on_cut``, e.g. stop the server)."""
        if self.was_cut.is_set():
            return
        self.was_cut.set()
        if self.on_cut is not None:
            self.on_cut()
        with self._lock:
            socks = list(self._sockets)
        self._close(*socks)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            socks = list(self._sockets)
        self._close(*socks)
        self._listener.close()
        for t in self._threads:
            t.join(timeout=5)
