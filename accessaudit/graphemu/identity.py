"""The identity-platform side of the emulator: OIDC discovery, the v2.0 token endpoint
(client secret and client assertion) and access-token checks for Graph.

Error bodies follow learn.microsoft.com/entra/identity-platform/reference-error-codes and
v2-oauth2-client-creds-grant-flow: ``error``, ``error_description`` ("AADSTSnnnn: ... Trace ID /
Correlation ID / Timestamp" on separate lines), ``error_codes``, ``timestamp``, ``trace_id``,
``correlation_id``, ``error_uri``. HTTP 401 for ``invalid_client`` (ADAL issue #79), 400 else.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from accessaudit.graphemu.protocol import Caller, GraphError, Reply
from accessaudit.graphemu.tenant import Tenant

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
#: The ``aud`` of a token asked for ``<resource>/.default``, for resources other than Graph
#: (an ARM token's audience is ``https://management.azure.com/``, as Azure issues it).
RESOURCE_AUDIENCES = {"https://management.azure.com": "https://management.azure.com/"}
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

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


class IdentityPlatform:
    """Mixed into :class:`~accessaudit.graphemu.server.GraphEmulator`, which holds tenants, apps
    and keys."""

    tenants: dict[str, Tenant]
    apps: dict[tuple[str, str], AppRegistration]
    resources: set[str]
    token_lifetime: int
    _key: rsa.RSAPrivateKey
    _serial: int
    _min_serial: int
    _lock: threading.Lock
    #: a misbehaving identity endpoint: its "invalid client secret" error quotes the secret it
    #: received (what a client must never pass on: tests of the client's error hygiene)
    echo_rejected_secret: bool = False

    @property
    def base_url(self) -> str:
        raise NotImplementedError

    @property
    def port(self) -> int:
        raise NotImplementedError

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
        failure = self._scope_error(form.get("scope", ""))
        if failure is not None:
            return failure
        audience = RESOURCE_AUDIENCES.get(form.get("scope", "")[:-9], GRAPH_AUDIENCE)
        return self._client_token(app, tenant, key, form, client_id, basic_secret, audience)

    def _scope_error(self, scope: str) -> Reply | None:
        """The error for any ``scope`` but one ``<resource>/.default`` this service serves."""
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
        return None

    def _client_token(
        self,
        app: AppRegistration,
        tenant: Tenant,
        key: str,
        form: Mapping[str, str],
        client_id: str,
        basic_secret: str | None,
        audience: str = GRAPH_AUDIENCE,
    ) -> Reply:
        """Check the client's secret or signed assertion; the token, or the error Entra gives."""
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
                    f"app '{client_id}'."
                    + (f" Received: '{secret}'." if self.echo_rejected_secret else ""),
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
        return Reply(200, self._issue(app, tenant, method, audience))

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

    def _issue(
        self, app: AppRegistration, tenant: Tenant, method: str, audience: str = GRAPH_AUDIENCE
    ) -> dict[str, Any]:
        with self._lock:
            self._serial += 1
            serial = self._serial
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": audience,
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

    def _verified(self, token: str) -> dict[str, Any]:
        """The claims of a bearer token: signature, audience and required claims checked once
        per token (every ``$batch`` item carries the same one: verifying it again each time was
        ~40% of the emulator's CPU in the Entra benchmark), its expiry on every request."""
        cache: dict[str, dict[str, Any]] = self.__dict__.setdefault("_verified_tokens", {})
        claims = cache.get(token)
        if claims is None:
            claims = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                audience=[GRAPH_AUDIENCE, GRAPH_APP_ID],
                options={"require": ["exp", "iat", "tid"]},
            )
            if len(cache) >= 1024:
                cache.clear()
            cache[token] = claims
        elif int(claims["exp"]) <= time.time():  # as PyJWT: expired from exp on
            raise jwt.ExpiredSignatureError("Signature has expired")
        return claims

    def _authenticate(self, headers: Mapping[str, str]) -> Caller:
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not token:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            claims = self._verified(token)
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
