"""Client-credentials authentication for the Entra connector (msal), and the permission policy.

msal returns error dicts instead of raising; this module turns them, and the transport failures
underneath, into one :class:`~accessaudit.errors.AuthError` / :class:`ConnectError` /
:class:`ConfigError` with a hint. Error codes are from
learn.microsoft.com/entra/identity-platform/reference-error-codes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from accessaudit.config.sources import EntraSource
from accessaudit.errors import AuthError, ConfigError, ConnectError

log = logging.getLogger(__name__)

#: Application permissions that satisfy each part of the collection, least privileged first
#: (the "Permissions" table of each Graph API page). The first one is what we document.
NEEDS: Mapping[str, tuple[str, ...]] = {
    "users": (
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ),
    "sign-in-activity": ("AuditLog.Read.All",),
    "groups": (
        "GroupMember.Read.All",
        "Group.Read.All",
        "GroupMember.ReadWrite.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ),
    "roles": (
        "RoleManagement.Read.Directory",
        "RoleManagement.Read.All",
        "RoleManagement.ReadWrite.Directory",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ),
    "role-eligibility": (
        "RoleManagement.Read.Directory",
        "RoleEligibilitySchedule.Read.Directory",
        "RoleManagement.Read.All",
        "RoleEligibilitySchedule.ReadWrite.Directory",
        "RoleManagement.ReadWrite.Directory",
    ),
    "applications": (
        "Application.Read.All",
        "Application.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ),
    # directory-list-administrativeunits and administrativeunit-list-members (v1.0). Not
    # RoleManagement.Read.Directory: Microsoft lists it only for a unit's scopedRoleMembers.
    "administrative-units": (
        "AdministrativeUnit.Read.All",
        "AdministrativeUnit.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ),
}

_HINTS: Mapping[int, str] = {
    7000215: "use the secret's Value (not its Secret ID) from the app registration's "
    "'Certificates & secrets' page",
    7000222: "the client secret has expired: create a new one (or use a certificate credential)",
    7000218: "configure client_secret_env / _file / _keyring or certificate_file",
    700016: "check client_id and tenant_id: the app must be registered in, or consented to by, "
    "this tenant",
    90002: "check tenant_id (directory GUID or verified domain) and authority_host for your cloud",
    70011: "the scope is '<graph_url origin>/.default': check graph_url",
    1002012: "the scope is '<graph_url origin>/.default': check graph_url",
    700027: "upload this certificate's public part to the app registration, or fix "
    "certificate_thumbprint",
    700024: "the client assertion is outside its validity window: check this machine's clock",
    65001: "an administrator must grant admin consent to the app's application permissions",
    7000112: "the application is disabled in this tenant",
}


class PinnedSession(requests.Session):
    """A requests session that verifies TLS against ``ca_file`` when one is configured.

    ``requests`` lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` override ``Session.verify``
    (it merges the environment per request unless ``verify`` is passed with the request), which
    silently ignores a configured CA bundle on machines that set those variables; msal sends its
    requests without ``verify``. Proxies from the environment are still honoured.
    """

    def __init__(self, ca_file: Path | None) -> None:
        super().__init__()
        self._ca = str(ca_file) if ca_file else None
        if self._ca:
            self.verify = self._ca

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        if self._ca is not None and kwargs.get("verify") in (None, True):
            kwargs["verify"] = self._ca  # an explicit verify is not overridden by the env
        return super().request(*args, **kwargs)


def graph_scope(graph_url: str) -> str:
    """``https://graph.microsoft.com/v1.0`` -> ``https://graph.microsoft.com/.default``."""
    parts = urlsplit(graph_url)
    return f"{parts.scheme}://{parts.netloc}/.default"


def is_read_only(permission: str) -> bool:
    """``X.Read.Y`` and ``X.ReadBasic.Y`` are reads; anything else (ReadWrite, Send, Invite,
    AccessAsUser, unknown shapes) is treated as able to change something."""
    parts = permission.split(".")
    return len(parts) >= 2 and parts[1].startswith("Read") and not parts[1].startswith("ReadWrite")


def write_permissions(roles: frozenset[str]) -> list[str]:
    return sorted(r for r in roles if not is_read_only(r))


def missing_permission(part: str, roles: frozenset[str] | None) -> str | None:
    """The least-privileged permission to grant when ``roles`` cover none of ``part``'s needs."""
    if roles is None:
        return None  # token not decodable: let Graph decide
    options = NEEDS[part]
    return None if roles & set(options) else options[0]


def token_roles(token: str) -> frozenset[str] | None:
    """The ``roles`` claim of an app-only token (granted application permissions).

    Read for policy only, never trusted for anything else, so the signature is not verified
    (we are not the token's audience). None when the token is not a readable JWT.
    """
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    roles = claims.get("roles") or []
    return frozenset(str(r) for r in roles)


def _load_certificate(cfg: EntraSource) -> dict[str, str]:
    path = cfg.certificate_file
    assert path is not None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read certificate_file {path}: {exc.strerror}",
            "check the path and that only this account can read it (chmod 600)",
        ) from None
    ref = cfg.certificate_passphrase
    passphrase = ref.resolve().encode() if ref else None
    match = re.search(
        rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", data, re.S
    )
    if not match:
        raise ConfigError(
            f"certificate_file {path} holds no PEM private key",
            "export key and certificate as PEM: openssl pkcs12 -in app.pfx -out app.pem -nodes",
        )
    try:
        key = serialization.load_pem_private_key(match.group(0), passphrase)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"cannot load the private key in {path}: {exc}",
            "if the key is encrypted, give its passphrase by reference: "
            "certificate_passphrase_env / _file / _keyring",
        ) from None
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    if cfg.certificate_thumbprint:
        thumbprint = cfg.certificate_thumbprint.replace(":", "").replace(" ", "")
        return {"private_key": key_pem, "thumbprint": thumbprint}
    certs = re.findall(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", data, re.S)
    if not certs:
        raise ConfigError(
            f"certificate_file {path} holds no certificate and certificate_thumbprint is not set",
            "append the PEM certificate to the file, or set certificate_thumbprint",
        )
    x509.load_pem_x509_certificate(certs[0])  # fail here, clearly, on a damaged certificate
    # With a public certificate and no thumbprint msal signs with PS256 and an x5t#S256 header.
    return {"private_key": key_pem, "public_certificate": certs[0].decode()}


def client_credential(cfg: EntraSource) -> str | dict[str, str]:
    """The msal ``client_credential``: a secret by reference or a certificate; never inline."""
    secret = cfg.client_secret
    if cfg.certificate_file and secret:
        raise ConfigError(
            f"source {cfg.name}: both certificate_file and a client secret are set",
            "keep one credential: the certificate (recommended) or the secret",
        )
    if cfg.certificate_file:
        return _load_certificate(cfg)
    if secret:
        return secret.resolve()
    raise ConfigError(
        f"source {cfg.name}: no credential configured",
        "set certificate_file (recommended) or client_secret_env / _file / _keyring",
    )


def _short(exc: BaseException) -> str:
    """The useful part of a requests/urllib3 error ("[SSL: ...] ...", "[Errno 111] ...")."""
    text = str(exc)
    for pattern in (r"\[SSL: [A-Z_]+\][^'\"()]*", r"\[Errno -?\d+\][^'\"()]*", r"timed out"):
        match = re.search(pattern, text)
        if match:
            return match.group(0).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:200]


def transport_error(exc: requests.RequestException, what: str, source: str) -> ConnectError:
    if isinstance(exc, requests.exceptions.SSLError):
        return ConnectError(
            f"{source}: TLS to {what} failed: {_short(exc)}",
            "set ca_file to the CA bundle that signs this server's certificate",
        )
    return ConnectError(
        f"{source}: cannot reach {what}: {_short(exc)}",
        "check authority_host / graph_url, the proxy (HTTPS_PROXY) and the firewall",
    )


class TokenSource:
    """App-only Graph tokens from msal, refreshable when Graph answers 401."""

    def __init__(self, cfg: EntraSource, session: requests.Session, source: str) -> None:
        self._cfg = cfg
        self._session = session
        self._source = source
        self._credential = client_credential(cfg)
        self.authority = f"{cfg.authority_host.rstrip('/')}/{cfg.tenant_id}"
        self.host = urlsplit(cfg.authority_host).netloc or cfg.authority_host
        self._scope = graph_scope(cfg.graph_url)
        self._app = self._new_app()
        self.token = self._acquire()

    def refresh(self) -> str:
        """A new token from the token endpoint (a fresh cache: msal would serve the old one)."""
        self._app = self._new_app()
        self.token = self._acquire()
        return self.token

    def _new_app(self) -> msal.ConfidentialClientApplication:
        try:
            return msal.ConfidentialClientApplication(
                self._cfg.client_id,
                authority=self.authority,
                client_credential=self._credential,
                # Client credentials need no instance discovery, which would call
                # login.microsoftonline.com even for sovereign clouds and local authorities.
                instance_discovery=False,
                http_client=self._session,
                token_cache=msal.TokenCache(),
            )
        except requests.RequestException as exc:
            raise transport_error(exc, self.host, self._source) from None
        except ValueError as exc:
            detail = self._discovery_error()
            if detail:
                code, text = detail
                raise AuthError(
                    f"{self._source}: {self.host} rejected tenant {self._cfg.tenant_id}: "
                    f"AADSTS{code} {text}",
                    _HINTS.get(code, "check tenant_id and authority_host"),
                    outside=[text],
                ) from None
            raise ConfigError(
                f"{self._source}: invalid authority {self.authority}: {_short(exc)}",
                "authority_host must be an https URL such as https://login.microsoftonline.com",
            ) from None

    def _discovery_error(self) -> tuple[int, str] | None:
        """Why OIDC discovery failed, from the server's own error body (msal hides it)."""
        url = f"{self.authority}/v2.0/.well-known/openid-configuration"
        try:
            body = self._session.get(url, timeout=self._cfg.timeout).json()
        except (requests.RequestException, ValueError):
            return None
        return _aadsts(body) if isinstance(body, dict) and "error" in body else None

    def _acquire(self) -> str:
        try:
            result: dict[str, Any] = self._app.acquire_token_for_client(scopes=[self._scope])
        except requests.RequestException as exc:
            raise transport_error(exc, self.host, self._source) from None
        token = result.get("access_token")
        if isinstance(token, str) and token:
            return token
        code, text = _aadsts(result) or (0, str(result.get("error", "no access token")))
        error = str(result.get("error", "error"))
        if not _OAUTH_CODE.fullmatch(error):
            error = "error"  # an OAuth error code is a short identifier; anything else is text
        said = f"{text} {result.get('error_description') or ''}"  # before any cut
        if isinstance(self._credential, str) and _quotes(said, self._credential):
            # what the server says about the credential it was sent may hold the credential
            text = "(the server's text quotes the credential sent: not shown)"
        raise AuthError(
            f"{self._source}: {self.host} refused client {self._cfg.client_id}: "
            f"{error} AADSTS{code} {text}".replace(" AADSTS0 ", " "),
            _HINTS.get(code, "check client_id, tenant_id and the credential"),
            outside=[text],  # the server's words: on the terminal, never in a log
        )


#: An OAuth 2.0 error code (``invalid_client``, ``unauthorized_client`` ...).
_OAUTH_CODE = re.compile(r"[a-z_]{1,40}")
#: The shortest piece of a credential whose appearance in a server's text withholds the text.
_QUOTE_MIN = 8


def _quotes(text: str, secret: str) -> bool:
    """Whether ``text`` holds ``secret`` or a piece of it long enough to matter."""
    if not secret:
        return False
    if secret in text:
        return True
    n = min(len(secret), max(_QUOTE_MIN, len(secret) // 2))
    return any(secret[i : i + n] in text for i in range(len(secret) - n + 1))


def _aadsts(body: Mapping[str, Any]) -> tuple[int, str] | None:
    """(AADSTS code, first line of the description) from a token-endpoint error body."""
    description = str(body.get("error_description") or "")
    codes = body.get("error_codes") or []
    match = re.match(r"AADSTS(\d+):\s*(.*)", description)
    first = (match.group(2) if match else description).splitlines()[0] if description else ""
    first = first.strip()[:200]
    if codes and isinstance(codes[0], int):
        return int(codes[0]), first
    if match:
        return int(match.group(1)), first
    return None
