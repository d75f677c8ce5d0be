"""The emulator's HTTPS server: OIDC discovery, v2.0 token endpoint, Graph v1.0 and ``$batch``.

Built on the standard library (``http.server.ThreadingHTTPServer`` + ``ssl``) so the emulator has
no dependency beyond what the connector already needs (PyJWT, cryptography). It binds to
127.0.0.1 (only) on an ephemeral port and runs in a daemon thread of the calling process (the
test session, a benchmark or ``accessaudit demo --source sample-entra``)::

    with GraphEmulator(pki) as emu:
        tenant = emu.add_tenant(tenant_from_tables(...))
        emu.register_app(tenant.tenant_id, CLIENT_ID, secret="s3cret", roles=[...])
        ... emu.authority(tenant.tenant_id), emu.graph_url ...

Every request is logged (:attr:`GraphEmulator.log`) so tests can count round trips exactly.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
import traceback
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from accessaudit.graphemu.arm import ARM_RESOURCE, MG_PREFIX, ArmTenant, handle_arm
from accessaudit.graphemu.faults import DEFAULT_ERRORS, Fault, Faults
from accessaudit.graphemu.graph import GraphApi
from accessaudit.graphemu.identity import (
    GRAPH_APP_ID,
    AppRegistration,
    IdentityPlatform,
    _signing_key,
)
from accessaudit.graphemu.latency import Pace
from accessaudit.graphemu.odata import check_depends_on
from accessaudit.graphemu.pki import AppCertificate, TestPKI
from accessaudit.graphemu.protocol import GraphError, Reply, expired_page_token, parse_request
from accessaudit.graphemu.tenant import Tenant
from accessaudit.graphemu.writes import GraphWrites

#: The read-only permission set the connector documents as sufficient.
READ_ROLES = (
    "User.Read.All",
    "GroupMember.Read.All",
    "RoleManagement.Read.Directory",
    "Application.Read.All",
    "AdministrativeUnit.Read.All",
    "AuditLog.Read.All",
)


@dataclass(frozen=True)
class Logged:
    kind: str  # "discovery" | "token" | "graph" | "batch" | "batch-item" | "other"
    method: str
    target: str  # path + query as sent
    status: int


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "graphemu"
    sys_version = ""
    server: _Server

    def do_GET(self) -> None:
        self.server.emulator._dispatch(self)

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, emulator: GraphEmulator, context: ssl.SSLContext) -> None:
        self.emulator = emulator
        self.context = context
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # TLS handshake per connection, in the connection's own thread. No Nagle: headers and
        # body are separate writes, and Nagle + delayed ACK would add ~40 ms to every reply.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(tls, client_address)  # RequestHandlerClass(tls, addr, self)
        finally:
            tls.close()


class GraphEmulator(IdentityPlatform):
    """A local Microsoft identity platform + Graph v1.0, for tests, benchmarks and the demo."""

    def __init__(self, pki: TestPKI, *, pace: Pace | None = None) -> None:
        self.pki = pki
        self.pace = pace or Pace()  # latency and throttling (:mod:`.latency`), off by default
        self.tenants: dict[str, Tenant] = {}
        self.apps: dict[tuple[str, str], AppRegistration] = {}
        self.faults = Faults()
        self.api = GraphApi(lambda: self.base_url)
        self.writes = GraphWrites()
        self.log: list[Logged] = []
        self.errors: list[str] = []  # emulator bugs (500s with a traceback)
        self.token_lifetime = 3599
        #: extra resource URIs the token endpoint accepts in ``<resource>/.default`` scopes
        self.resources: set[str] = set()
        #: Azure Resource Manager data per tenant id (:mod:`.arm`), served when added
        self.arm: dict[str, ArmTenant] = {}
        self._key = _signing_key()
        self._serial = 0
        self._min_serial = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> GraphEmulator:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.pki.cert_file, self.pki.key_file)
        self._server = _Server(self, context)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> GraphEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "emulator not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    def authority(self, tenant: str) -> str:
        return f"{self.base_url}/{tenant}"

    # --- setup --------------------------------------------------------------------------------

    def add_arm(self, arm: ArmTenant) -> ArmTenant:
        """Serve ARM role assignments for ``arm.tenant_id`` (tokens for ARM's audience)."""
        self.arm[arm.tenant_id] = arm
        self.resources.add(ARM_RESOURCE)
        return arm

    def add_tenant(self, tenant: Tenant) -> Tenant:
        self.tenants[tenant.tenant_id] = tenant
        return tenant

    def register_app(
        self,
        tenant_id: str,
        client_id: str | None = None,
        *,
        secret: str | None = None,
        expired_secret: str | None = None,
        certificate: AppCertificate | None = None,
        roles: Iterable[str] = READ_ROLES,
    ) -> AppRegistration:
        app = AppRegistration(
            client_id=client_id or str(uuid.uuid4()), tenant_id=tenant_id, roles=list(roles)
        )
        if secret:
            app.secrets[secret] = False
        if expired_secret:
            app.secrets[expired_secret] = True
        if certificate:
            app.certificates.append(certificate.certificate)
        self.apps[(tenant_id, app.client_id)] = app
        return app

    def revoke_tokens(self) -> None:
        """Every access token issued so far now fails with 401 (as if it expired)."""
        with self._lock:
            self._min_serial = self._serial + 1

    # --- request log --------------------------------------------------------------------------

    def requests(self, kind: str = "graph") -> list[Logged]:
        with self._lock:
            return [
                r for r in self.log if r.kind == kind or (kind == "wire" and r.kind != "batch-item")
            ]

    def graph_round_trips(self) -> int:
        """Requests on the wire to Graph: plain requests plus $batch envelopes."""
        with self._lock:
            return sum(1 for r in self.log if r.kind in ("graph", "batch"))

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    def _record(self, kind: str, method: str, target: str, status: int) -> None:
        with self._lock:
            self.log.append(Logged(kind, method, target, status))

    # --- dispatch -----------------------------------------------------------------------------

    def _dispatch(self, h: _Handler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in h.headers.items()}
        crid = headers.get("client-request-id") or str(uuid.uuid4())
        method, target = h.command, h.path
        path = urlsplit(target).path
        kind = "other"
        try:
            if path.endswith("/v2.0/.well-known/openid-configuration") and method == "GET":
                kind = "discovery"
                reply = self._discovery(path)
            elif re.fullmatch(r"/[^/]+/oauth2/v2\.0/token", path) and method == "POST":
                kind = "token"
                reply = self._token(path, body, headers)
            elif path == "/v1.0/$batch" and method == "POST":
                kind = "batch"
                reply = self._batch(headers, body, crid)
            elif path.startswith("/v1.0/"):
                kind = "graph"
                reply = self._graph(method, target, headers, in_batch=False, body=body)
            elif path.lower().startswith(("/subscriptions/", MG_PREFIX)):
                kind = "arm"
                reply = self._arm(method, target, headers)
            else:
                reply = self._error(404, "NotFound", f"No route for {path}")
        except Exception:
            self.errors.append(traceback.format_exc())
            reply = self._error(500, "generalException", "emulator failure")
        self._record(kind, method, target, reply.status)
        self.pace.wait(kind, reply.body)  # a round trip's latency, no lock held
        self._send(h, reply, crid, json_kind="aad" if kind in ("token", "discovery") else "graph")

    def _send(self, h: _Handler, reply: Reply, crid: str, *, json_kind: str) -> None:
        request_id = str(uuid.uuid4())
        headers = dict(reply.headers)
        if isinstance(reply.body, str):
            data = reply.body.encode()
            headers.setdefault("Content-Type", "text/plain")
        elif reply.body is None:
            data = b""
        else:
            data = json.dumps(_with_ids(reply.body, request_id, crid), ensure_ascii=False).encode()
            if json_kind == "graph":
                headers.setdefault(
                    "Content-Type",
                    "application/json;odata.metadata=minimal;odata.streaming=true;"
                    "IEEE754Compatible=false;charset=utf-8",
                )
                headers.setdefault("OData-Version", "4.0")
            else:
                headers.setdefault("Content-Type", "application/json; charset=utf-8")
                headers.setdefault("Cache-Control", "no-store, no-cache")
        if json_kind == "graph":
            headers.setdefault("request-id", request_id)
            headers.setdefault("client-request-id", crid)
            headers.setdefault(
                "x-ms-ags-diagnostic",
                json.dumps({"ServerInfo": {"DataCenter": "Loopback", "Slice": "E", "Ring": "0",
                                           "ScaleUnit": "000", "RoleInstance": "GRAPHEMU"}}),
            )  # fmt: skip
            headers.setdefault("x-ms-resource-unit", "1")
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        try:
            h.send_response(reply.status)
            for name, value in headers.items():
                h.send_header(name, value)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            if reply.drop:
                h.wfile.write(data[: len(data) // 2])
                h.wfile.flush()
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
            else:
                h.wfile.write(data)
        except OSError:
            h.close_connection = True

    def _error(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> Reply:
        headers = dict(headers or {})
        if status == 401:
            headers.setdefault(
                "WWW-Authenticate",
                'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/'
                f'oauth2/authorize", client_id="{GRAPH_APP_ID}"',
            )
        inner: dict[str, Any] = {"date": None, "request-id": None, "client-request-id": None}
        body: dict[str, Any] = {"error": {"code": code, "message": message, "innerError": inner}}
        if status == 429:
            # learn.microsoft.com/graph/throttling: innerError repeats code/status "429"
            inner |= {"code": "429", "message": "Please retry after", "status": "429"}
        return Reply(status, body, headers)

    def _fault(self, fault: Fault, target: str) -> Reply | None:
        if fault.action == "expire-token":
            self.revoke_tokens()
            return None
        if fault.action == "drop":
            return Reply(0, drop=True)
        if fault.action == "expired-page-token":
            err = expired_page_token()
            return self._error(err.status, err.code, err.message)
        if fault.action == "delta-reset":
            path = urlsplit(target).path
            return self._error(
                410,
                "resyncRequired",
                "Resync required. Replace any local items with the server's version (including "
                "deletes) if you're sure that the service was up to date with your local changes "
                "when you last sync'd.",
                {"Location": f"{self.base_url}{path}?$deltatoken="},
            )
        code, message = DEFAULT_ERRORS.get(fault.status, ("UnknownError", "Error."))
        headers = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
        return self._error(fault.status, fault.code or code, fault.message or message, headers)

    def _arm(self, method: str, target: str, headers: Mapping[str, str]) -> Reply:
        fault = self.faults.pick(method, target, False)
        faulted = self._fault(fault, target) if fault else None
        if faulted is not None and not faulted.drop:
            return faulted
        key, floor = self._key, self._min_serial
        reply = handle_arm(self.arm, self.base_url, key, floor, method, target, headers)
        reply.drop = faulted is not None
        return reply

    def _graph(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        *,
        in_batch: bool,
        body: bytes = b"",
    ) -> Reply:
        fault = self.faults.pick(method, target, in_batch)
        drop = False
        if fault is not None:
            reply = self._fault(fault, target)
            if reply is not None and not reply.drop:
                return reply
            drop = reply is not None and reply.drop
        try:
            caller = self._authenticate(headers)
            paid = self.pace.charge(caller.tenant, headers, method, target)
            if paid.retry_after is not None:
                return self._error(429, *DEFAULT_ERRORS[429], paid.headers)
            req = parse_request(method, target, headers)
            with caller.tenant.lock:
                if method in ("DELETE", "POST", "PUT"):
                    reply = self.writes.handle(req, caller, body)
                else:
                    reply = self.api.handle(req, caller)
            reply.headers.update(paid.headers)
        except GraphError as err:
            reply = self._error(err.status, err.code, err.message, err.headers)
        reply.drop = drop
        return reply

    def _batch(self, headers: Mapping[str, str], body: bytes, crid: str) -> Reply:
        drop = False
        fault = self.faults.pick("POST", "/v1.0/$batch", False)
        if fault is not None:
            reply = self._fault(fault, "/v1.0/$batch")
            if reply is not None and not reply.drop:
                return reply
            drop = reply is not None
        try:
            self._authenticate(headers)
            items = _batch_items(body)
        except GraphError as err:
            return self._error(err.status, err.code, err.message)
        results: dict[str, Reply] = {}
        order: list[tuple[str, str]] = []
        for item in items:
            item_id = str(item["id"])
            url = str(item.get("url", ""))
            if not url.startswith("/"):
                url = "/" + url
            method = str(item.get("method", "GET")).upper()
            reply = self._batch_item(item, method, url, headers, results)
            drop = drop or reply.drop
            self._record("batch-item", method, url, reply.status)
            results[item_id] = reply
            order.append((item_id, url))
        if self.faults.batch_order == "reversed":
            order.reverse()
        responses = [_batch_response(item_id, results[item_id], crid) for item_id, _ in order]
        return Reply(200, {"responses": responses}, drop=drop)

    def _batch_item(
        self,
        item: Mapping[str, Any],
        method: str,
        url: str,
        headers: Mapping[str, str],
        results: Mapping[str, Reply],
    ) -> Reply:
        """One request of a batch, sent with the batch's authorization; 424 when a request it
        depends on failed."""
        deps = [str(d) for d in item.get("dependsOn") or []]
        if any(results[d].status >= 400 for d in deps if d in results):
            return self._error(424, "FailedDependency", "Failed dependency.")
        if url.lower().startswith(("/v1.0/", "/beta/")):
            segment = url.split("/")[1]
            return self._error(
                400, "BadRequest", f"Resource not found for the segment '{segment}'."
            )
        item_headers = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        item_headers["authorization"] = headers.get("authorization", "")
        return self._graph(method, "/v1.0" + url, item_headers, in_batch=True)


def _batch_items(body: bytes) -> list[dict[str, Any]]:
    """The requests of a ``$batch`` body; :class:`GraphError` when the payload is refused."""
    try:
        payload = json.loads(body)
        items = payload["requests"]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise GraphError(400, "BadRequest", "Invalid batch payload format.") from None
    if len(items) > 20:
        raise GraphError(
            400, "BadRequest", "The number of requests in the batch exceeded the limit of 20."
        )  # [assumed message]; the limit is documented (json-batching)
    ids = [str(i.get("id", "")).lower() for i in items]
    if any(not i for i in ids) or len(set(ids)) != len(ids):
        raise GraphError(400, "BadRequest", "Batch request contains duplicate or missing Ids.")
    check_depends_on(items, ids)
    if any(str(i.get("url", "")).lower().startswith(("http://", "https://")) for i in items):
        raise GraphError(400, "BadRequest", "Invalid batch payload format.")
    return items


def _batch_response(item_id: str, reply: Reply, crid: str) -> dict[str, Any]:
    """One entry of a ``$batch`` answer's ``responses``."""
    item_headers = {"Content-Type": "application/json"} | dict(reply.headers)
    if reply.status == 401:
        item_headers.pop("WWW-Authenticate", None)
    body_out = reply.body
    if isinstance(body_out, dict) and "error" in body_out:
        inner = body_out["error"].get("innerError")
        if isinstance(inner, dict):
            inner |= {
                "date": _now(),
                "request-id": str(uuid.uuid4()),
                "client-request-id": crid,
            }
    return {"id": item_id, "status": reply.status, "headers": item_headers, "body": body_out}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _with_ids(body: Any, request_id: str, crid: str) -> Any:
    """Fill innerError's date / request-id / client-request-id of a top-level error body."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        inner = body["error"].get("innerError")
        if isinstance(inner, dict) and inner.get("request-id") is None:
            inner |= {"date": _now(), "request-id": request_id, "client-request-id": crid}
    return body
