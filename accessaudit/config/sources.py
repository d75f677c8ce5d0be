"""The ``[[sources]]`` of a configuration: one model per kind, told apart by ``kind``.

Passwords, client secrets and key passphrases are given by reference (``*_env``, ``*_file``,
``*_keyring``); the properties ``password``, ``client_secret`` and ``certificate_passphrase``
turn them into a :class:`~accessaudit.config.secrets.SecretRef`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from accessaudit.config.base import STRICT
from accessaudit.config.datasources import (
    DATA_SOURCE_KINDS,
    AzureSource,
    ExchangeSource,
    SmbSource,
)
from accessaudit.config.secrets import SecretRef


class _Model(BaseModel):
    model_config = STRICT


class _Source(_Model):
    name: Annotated[str, Field(min_length=1)]


class _Directory(_Source):
    """A directory source: an Active Directory domain or an Entra ID tenant (or the sample's).

    ``host`` is the organisation that hosts it: whose tenant a tenant-wide directory role
    belongs to, and whose the domain's protected groups are. It is required in a configuration
    file (:func:`accessaudit.config.settings.parse_settings` refuses a directory source without
    one: the tool never guesses it); a source model built on its own may leave it out."""

    host: str | None = None


class SampleSource(_Directory):
    """The embedded synthetic two-force directory (``accessaudit.sample.directory``)."""

    #: with each force's new domain beside the shared one, in the directory part: foreign
    #: principals, SID history, trusts (:mod:`accessaudit.sample.plants_foreign`)
    domains: bool = False

    kind: Literal["sample"]
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 7  # the random generator takes 32 bits
    accounts: Annotated[int, Field(ge=200, le=5_000_000)] = 6000
    #: "directory": the Active Directory domain; "entra": its shared Entra ID tenant
    part: Literal["directory", "entra"] = "directory"
    #: the directory as years of sharing leave it (accounts in CN=Users, a renamed OU, old
    #: staff numbers ...): what ``accessaudit survey`` is for (:mod:`accessaudit.sample.legacy`)
    legacy: bool = False


class LdapSource(_Directory):
    """Active Directory or generic LDAP through ldap3 (read-only)."""

    kind: Literal["ldap"]
    flavour: Literal["ad", "openldap"] = "ad"
    servers: Annotated[list[str], Field(min_length=1)]  # ldaps://host:636 or ldap://host (StartTLS)
    base_dn: str
    bind_dn: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    password_keyring: str | None = None
    auth: Literal["simple", "kerberos"] = "simple"
    start_tls: bool = False
    ca_file: Path | None = None
    allow_plaintext: bool = False  # lab only: simple bind without TLS
    connect_timeout: Annotated[float, Field(gt=0)] = 10.0
    receive_timeout: Annotated[float, Field(gt=0)] = 60.0
    total_timeout: Annotated[float, Field(gt=0)] = 3600.0
    page_size: Annotated[int, Field(ge=1, le=5000)] = 1000
    range_size: Annotated[int, Field(ge=1, le=5000)] = 1000
    user_filter: str | None = None
    group_filter: str | None = None
    #: generic LDAP only: canonical column -> LDAP attribute, overriding the flavour's defaults
    #: (accounts: account_id=entryUUID, username=uid, employee_id=employeeNumber, kind=...).
    attribute_map: dict[str, str] = {}
    #: generic LDAP only: the same for groups (group_id=entryUUID, name=cn, member=member, ...).
    group_attribute_map: dict[str, str] = {}

    @property
    def password(self) -> SecretRef | None:
        if not (self.password_env or self.password_file or self.password_keyring):
            return None
        return SecretRef(
            env=self.password_env, file=self.password_file, keyring=self.password_keyring
        )


class EntraSource(_Directory):
    """Entra ID through msal (client credentials) and Microsoft Graph (read-only)."""

    kind: Literal["entra"]
    tenant_id: str
    client_id: str
    authority_host: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    certificate_file: Path | None = None  # PEM private key (+ certificate) for the app
    certificate_thumbprint: str | None = None
    certificate_passphrase_env: str | None = None  # an encrypted key's passphrase, by reference
    certificate_passphrase_file: Path | None = None
    certificate_passphrase_keyring: str | None = None
    client_secret_env: str | None = None
    client_secret_file: Path | None = None
    client_secret_keyring: str | None = None
    ca_file: Path | None = None  # extra CA bundle (the emulator's CA in tests)
    allow_write_permissions: bool = False
    sign_in_activity: bool = False  # needs AuditLog.Read.All and Entra ID P1
    role_eligibility: bool = True  # PIM eligible assignments (Entra ID P2; none without it)
    use_delta: bool = True
    max_retries: Annotated[int, Field(ge=0, le=20)] = 6
    retry_backoff: Annotated[float, Field(gt=0, le=60)] = 1.0  # first backoff without Retry-After
    time_budget: Annotated[float, Field(gt=0)] = 3600.0
    timeout: Annotated[float, Field(gt=0)] = 60.0
    page_size: Annotated[int, Field(ge=1, le=999)] = 999  # Graph's $top range is 1-999
    batch_size: Annotated[int, Field(ge=1, le=20)] = 20  # $batch holds at most 20; 1 = no $batch
    #: $batch requests in flight at once; halved on a 429, +1 after a run without (AIMD). 8: a
    #: large tenant's 800 RU/s are spent at ~150 ms per round trip (benchmarks/README.md)
    max_concurrency: Annotated[int, Field(ge=1, le=16)] = 8

    @property
    def client_secret(self) -> SecretRef | None:
        if not (self.client_secret_env or self.client_secret_file or self.client_secret_keyring):
            return None
        return SecretRef(
            env=self.client_secret_env,
            file=self.client_secret_file,
            keyring=self.client_secret_keyring,
            key="client_secret",
        )

    @property
    def certificate_passphrase(self) -> SecretRef | None:
        """Where the passphrase of an encrypted ``certificate_file`` key lives, if set."""
        given = (
            self.certificate_passphrase_env
            or self.certificate_passphrase_file
            or self.certificate_passphrase_keyring
        )
        if not given:
            return None
        return SecretRef(
            env=self.certificate_passphrase_env,
            file=self.certificate_passphrase_file,
            keyring=self.certificate_passphrase_keyring,
            key="certificate_passphrase",
        )


class CsvSource(_Source):
    """An application's user list exported as CSV: one row per user and role/group."""

    kind: Literal["csv"]
    path: Path
    encoding: str = "utf-8-sig"
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    #: canonical field -> CSV column header. ``username`` and ``role`` are required.
    columns: dict[str, str]
    #: which directory attribute the CSV's identity column holds, for correlation
    correlate_on: Literal["username", "upn", "employee_id", "mail"] = "username"
    #: the domains a ``DOMAIN\\user`` or ``user@domain`` username may name to be matched by its
    #: user part (NetBIOS ``ALLIANCE`` or DNS ``alliance.local``, case-insensitive); empty: each
    #: AD source's DNS name and its first label
    domains: list[str] = []
    #: extra spellings of the ``enabled`` column (trimmed, case-insensitive) -> enabled or not,
    #: added to (or overriding) :data:`accessaudit.connectors.csvfile.ENABLED_VALUES`
    enabled_values: dict[str, bool] = {}
    application: str | None = None  # shown in reports; defaults to the source name

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: dict[str, str]) -> dict[str, str]:
        allowed = {"username", "role", "display_name", "upn", "employee_id", "mail", "enabled"}
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ValueError(f"unknown column mapping(s) {unknown}; allowed: {sorted(allowed)}")
        for required in ("username", "role"):
            if required not in value:
                raise ValueError(f"missing mapping for '{required}'")
        return value


Source = Annotated[
    SampleSource | LdapSource | EntraSource | CsvSource | ExchangeSource | AzureSource | SmbSource,
    Field(discriminator="kind"),
]
#: The tags pydantic inserts into an error's ``loc`` after a source's index (not TOML keys).
SOURCE_KINDS = ("sample", "ldap", "entra", "csv", *DATA_SOURCE_KINDS)
#: The sources that are a directory, each hosted by one organisation (``host``).
DirectorySource = SampleSource | LdapSource | EntraSource
