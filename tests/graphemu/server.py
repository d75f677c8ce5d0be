"""The emulator's HTTPS server: OIDC discovery, v2.0 token endpoint, Graph v1.0 and ``$batch``.

Built on the standard library (``http.server.ThreadingHTTPServer`` + ``ssl``) so the emulator has
no dependency beyond what the connector already needs (PyJWT, cryptography). It binds to
127.0.0.1 on an ephemeral port and runs in a daemon thread of the test process::

    with GraphEmulator(pki) as emu:
        tenant = emu.add_tenant(tenant_from_tables(...))
        emu.register_app(tenant.tenant_id, CLIENT_ID, secret="s3cret", roles=[...])
        ... emu.authority(tenant.tenant_id), emu.graph_url ...

Every request is logged (:attr:`GraphEmulator.log`) so tests can count round trips exactly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import ssl
import threading
import time
import traceback
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .faults import DEFAULT_ERRORS, Fault, Faults
from .graph import Caller, GraphApi, GraphError, Reply, expired_page_token, parse_request
from .pki import AppCertificate, TestPKI
from .tenant import Tenant

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

#: The read-only permission set the connector documents as sufficient.
READ_ROLES = (
    "User.Read.All",
    "GroupMember.Read.All",
    "RoleManagement.Read.Directory",
    "Application.Read.All",
    "AuditLog.Read.All",
)

_SIGNING_KEY: rsa.RSAPrivateKey | None = None
_KEY_LOCK = threading.Lock()


def _signing_key() -> rsa.RSAPrivateKey:
    global _SIGNING_KEY
    with _KEY_LOCK:
        if _SIGNING_KEY is None:
            _SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _SIGNING_KEY


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class AppRegistration:
    client_id: str
    tenant_id: str
    roles: list[str]
    secrets: dict[str, bool] = field(default_factory=dict)  # secret value -> expired
    certificates: list[x509.Certificate] = field(default_factory=list)
    display_name: str = "accessaudit"
    service_principal_id: str = field(default_factory=lambda: str(uuid.uuid4()))


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
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()


class GraphEmulator:
    """A local Microsoft identity platform + Graph v1.0, for tests."""

    def __init__(self, pki: TestPKI) -> None:
        self.pki = pki
        self.tenants: dict[str, Tenant] = {}
        self.apps: dict[tuple[str, str], AppRegistration] = {}
        self.faults = Faults()
        self.api = GraphApi(lambda: self.base_url)
        self.log: list[Logged] = []
        self.errors: list[str] = []  # emulator bugs (500s with a traceback)
        self.token_lifetime = 3599
        #: extra resource URIs the token endpoint accepts in ``<resource>/.default`` scopes
        self.resources: set[str] = set()
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
                reply = self._graph(method, target, headers, in_batch=False)
            else:
                reply = self._error(404, "NotFound", f"No route for {path}")
        except Exception:
            self.errors.append(traceback.format_exc())
            reply = self._error(500, "generalException", "emulator failure")
        self._record(kind, method, target, reply.status)
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

    # --- identity platform --------------------------------------------------------------------

    def _find_tenant(self, key: str) -> Tenant | None:
        if key in self.tenants:
            return self.tenants[key]
        for tenant in self.tenants.values():
            if tenant.domain.lower() == key.lower():
                return tenant
        return None

    def _aad_error(self, status: int, error: str, code: int, message: str) -> Reply:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        body = {
            "error": error,
            "error_description": f"AADSTS{code}: {message} Trace ID: {trace} "
            f"Correlation ID: {correlation} Timestamp: {stamp}".replace(" Trace ID", "\r\nTrace ID")
            .replace(" Correlation ID", "\r\nCorrelation ID")
            .replace(" Timestamp", "\r\nTimestamp"),
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"{self.base_url}/error?code={code}",
        }
        return Reply(status, body)

    def _unknown_tenant(self, key: str) -> Reply:
        return self._aad_error(
            400,
            "invalid_tenant",
            90002,
            f"Tenant '{key}' not found. Check to make sure you have the correct tenant ID and are "
            "signing into the correct cloud. Check with your subscription administrator, this may "
            "happen if there are no active subscriptions for the tenant.",
        )

    def _token_endpoint(self, tenant_id: str) -> str:
        return f"{self.base_url}/{tenant_id}/oauth2/v2.0/token"

    def _discovery(self, path: str) -> Reply:
        key = path.split("/")[1]
        tenant = self._find_tenant(key)
        if tenant is None:
            return self._unknown_tenant(key)
        base, tid = self.base_url, tenant.tenant_id
        return Reply(
            200,
            {
                "token_endpoint": self._token_endpoint(tid),
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/{tid}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base}/{tid}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{base}/oidc/userinfo",
                "authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/{tid}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "roles"],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
                "msgraph_host": "graph.microsoft.com",
            },
        )

    def _token(self, path: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        key = path.split("/")[1]
        tenant = self._find_tenant(key)
        if tenant is None:
            return self._unknown_tenant(key)
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        basic_id = basic_secret = None
        auth = headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            decoded = base64.b64decode(auth[6:]).decode()
            basic_id, _, basic_secret = decoded.partition(":")
        grant = form.get("grant_type", "")
        if grant != "client_credentials":
            return self._aad_error(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        client_id = form.get("client_id") or basic_id or ""
        app = self.apps.get((tenant.tenant_id, client_id))
        if app is None:
            return self._aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant.domain}'. This can happen if the application has not been installed by "
                "the administrator of the tenant or consented to by any user in the tenant. You "
                "may have sent your authentication request to the wrong tenant.",
            )
        scope = form.get("scope", "")
        resources = {GRAPH_AUDIENCE, GRAPH_APP_ID, self.base_url, f"https://localhost:{self.port}"}
        resources |= self.resources
        scopes = scope.split()
        if (
            len(scopes) != 1
            or not scopes[0].endswith("/.default")
            or scopes[0][:-9] not in resources
        ):
            return self._aad_error(
                400,
                "invalid_scope",
                70011,
                "The provided request must include a 'scope' input parameter. The provided value "
                f"for the input parameter 'scope' is not valid. The scope {scope} is not valid.",
            )
        secret = form.get("client_secret") or basic_secret
        assertion = form.get("client_assertion")
        if secret:
            if secret not in app.secrets:
                return self._aad_error(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request "
                    "is the client secret value, not the client secret ID, for a secret added to "
                    f"app '{client_id}'.",
                )
            if app.secrets[secret]:
                return self._aad_error(
                    401,
                    "invalid_client",
                    7000222,
                    f"The provided client secret keys for app '{client_id}' are expired. Visit "
                    "the Azure portal to create new keys for your app: "
                    "https://aka.ms/NewClientSecret, or consider using certificate credentials "
                    "for added security: https://aka.ms/certCreds.",
                )
            method = "1"
        elif assertion and form.get("client_assertion_type") == JWT_BEARER:
            failure = self._check_assertion(app, tenant, key, assertion)
            if failure is not None:
                return failure
            method = "2"
        else:
            return self._aad_error(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        return Reply(200, self._issue(app, tenant, method))

    def _check_assertion(
        self, app: AppRegistration, tenant: Tenant, key: str, assertion: str
    ) -> Reply | None:
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return self._aad_error(
                401, "invalid_client", 700027, "Client assertion failed signature validation."
            )
        # x5t / x5t#S256 are base64url thumbprints; msal keeps the "=" padding, so strip it.
        x5t = str(header.get("x5t") or "").rstrip("=")
        x5t256 = str(header.get("x5t#S256") or "").rstrip("=")
        cert = None
        for candidate in app.certificates:
            der = candidate.public_bytes(serialization.Encoding.DER)
            sha1 = _b64url(hashlib.sha1(der).digest())  # noqa: S324 - x5t is SHA-1 by RFC 7515
            if x5t == sha1 or x5t256 == _b64url(hashlib.sha256(der).digest()):
                cert = candidate
        if cert is None:
            return self._aad_error(
                401,
                "invalid_client",
                700027,
                "The certificate with identifier used to sign the client assertion is not "
                f"registered on application. [Reason - The key was not found., Thumbprint of key "
                f"used by client: '{header.get('x5t') or header.get('x5t#S256')}']",
            )
        audiences = [self._token_endpoint(tenant.tenant_id), self._token_endpoint(key)]
        try:
            claims = jwt.decode(
                assertion,
                cert.public_key(),  # type: ignore[arg-type]
                algorithms=["RS256", "PS256"],
                audience=audiences,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            return self._aad_error(
                401,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            )
        except jwt.InvalidAudienceError:
            return self._aad_error(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )
        except jwt.PyJWTError:
            return self._aad_error(
                401, "invalid_client", 700027, "Client assertion failed signature validation."
            )
        if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
            return self._aad_error(
                401,
                "invalid_client",
                700023,
                "Client assertion contains an invalid issuer or subject.",
            )
        return None

    def _issue(self, app: AppRegistration, tenant: Tenant, method: str) -> dict[str, Any]:
        with self._lock:
            self._serial += 1
            serial = self._serial
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": GRAPH_AUDIENCE,
            "iss": f"https://sts.windows.net/{tenant.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime,
            "app_displayname": app.display_name,
            "appid": app.client_id,
            "appidacr": method,
            "idp": f"https://sts.windows.net/{tenant.tenant_id}/",
            "idtyp": "app",
            "oid": app.service_principal_id,
            "sub": app.service_principal_id,
            "tid": tenant.tenant_id,
            "uti": str(serial),
            "ver": "1.0",
        }
        if app.roles:
            claims["roles"] = list(app.roles)
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": "graphemu"})
        return {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": token,
        }

    # --- Graph --------------------------------------------------------------------------------

    def _authenticate(self, headers: Mapping[str, str]) -> Caller:
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not token:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            claims = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                audience=[GRAPH_AUDIENCE, GRAPH_APP_ID],
                options={"require": ["exp", "iat", "tid"]},
            )
        except jwt.ExpiredSignatureError:
            raise GraphError(
                401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
            ) from None
        except jwt.PyJWTError:
            raise GraphError(
                401, "InvalidAuthenticationToken", "Access token validation failure."
            ) from None
        if int(claims.get("uti", "0")) < self._min_serial:
            raise GraphError(
                401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
            )
        tenant = self.tenants.get(str(claims["tid"]))
        if tenant is None:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.")
        return Caller(tenant, frozenset(claims.get("roles", [])))

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

    def _graph(
        self, method: str, target: str, headers: Mapping[str, str], *, in_batch: bool
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
            req = parse_request(method, target, headers)
            with caller.tenant.lock:
                reply = self.api.handle(req, caller)
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
        except GraphError as err:
            return self._error(err.status, err.code, err.message)
        try:
            payload = json.loads(body)
            items = payload["requests"]
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return self._error(400, "BadRequest", "Invalid batch payload format.")
        if len(items) > 20:
            return self._error(
                400, "BadRequest", "The number of requests in the batch exceeded the limit of 20."
            )  # [assumed message]; the limit is documented (json-batching)
        ids = [str(i.get("id", "")).lower() for i in items]
        if any(not i for i in ids) or len(set(ids)) != len(ids):
            return self._error(
                400, "BadRequest", "Batch request contains duplicate or missing Ids."
            )
        if any(str(i.get("url", "")).lower().startswith(("http://", "https://")) for i in items):
            return self._error(400, "BadRequest", "Invalid batch payload format.")
        results: dict[str, Reply] = {}
        order: list[tuple[str, str]] = []
        for item in items:
            item_id = str(item["id"])
            url = str(item.get("url", ""))
            if not url.startswith("/"):
                url = "/" + url
            method = str(item.get("method", "GET")).upper()
            deps = [str(d) for d in item.get("dependsOn") or []]
            if any(results[d].status >= 400 for d in deps if d in results):
                reply = self._error(424, "FailedDependency", "Failed dependency.")
            elif url.lower().startswith(("/v1.0/", "/beta/")):
                segment = url.split("/")[1]
                reply = self._error(
                    400, "BadRequest", f"Resource not found for the segment '{segment}'."
                )
            else:
                item_headers = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
                item_headers["authorization"] = headers.get("authorization", "")
                reply = self._graph(method, "/v1.0" + url, item_headers, in_batch=True)
                drop = drop or reply.drop
            self._record("batch-item", method, url, reply.status)
            results[item_id] = reply
            order.append((item_id, url))
        if self.faults.batch_order == "reversed":
            order.reverse()
        responses = []
        for item_id, _ in order:
            reply = results[item_id]
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
            responses.append(
                {"id": item_id, "status": reply.status, "headers": item_headers, "body": body_out}
            )
        return Reply(200, {"responses": responses}, drop=drop)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _with_ids(body: Any, request_id: str, crid: str) -> Any:
    """Fill innerError's date / request-id / client-request-id of a top-level error body."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        inner = body["error"].get("innerError")
        if isinstance(inner, dict) and inner.get("request-id") is None:
            inner |= {"date": _now(), "request-id": request_id, "client-request-id": crid}
    return body
