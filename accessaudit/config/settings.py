"""Load and validate ``config.toml`` into typed settings.

Every section is a pydantic model with ``extra="forbid"``, so an unknown key, a wrong type or a
missing key becomes a :class:`~accessaudit.errors.ConfigError` naming the file, the key and (where
the key appears in the file) its line. Secrets are never written inline: a source names an
environment variable, a file or a keyring entry (:class:`SecretRef`), resolved only when the
connector needs it.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from accessaudit.config.tomlpos import line_of
from accessaudit.errors import ConfigError
from accessaudit.model import SPECIAL_ORGS, Severity

#: Inline secret keys we refuse with a specific message rather than "unknown key".
_INLINE_SECRET_KEYS = ("password", "client_secret", "secret", "passphrase", "private_key")

MATCHER_KINDS: tuple[str, ...] = (
    "ids",
    "employee_id",
    "company",
    "ou",
    "upn_suffix",
    "mail_domain",
    "name_prefix",
    "names",
    "owner",
    "privileged_groups",
    "sources",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Model):
    """Where a secret lives. Exactly one of ``env``, ``file`` or ``keyring`` is set.

    ``key`` is the configuration key it was given by without the suffix (``password``,
    ``client_secret``, ``certificate_passphrase``), so hints name the right alternatives."""

    env: str | None = None
    file: Path | None = None
    keyring: str | None = None  # "service:username"
    key: str = "password"

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        given = [n for n in ("env", "file", "keyring") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError("give exactly one of env, file or keyring")
        if self.keyring and ":" not in self.keyring:
            raise ValueError("keyring must be 'service:username'")
        return self

    def describe(self) -> str:
        """Where the secret comes from, never the secret itself."""
        if self.env:
            return f"environment variable {self.env}"
        if self.file:
            return f"file {self.file}"
        return f"keyring entry {self.keyring}"

    def resolve(self) -> str:
        """Read the secret. Never prompts; fails with a ConfigError naming the source."""
        if self.env:
            value = os.environ.get(self.env)
            if not value:
                raise ConfigError(
                    f"secret {self.describe()} is not set",
                    f"export {self.env} before running, or use a secret file",
                )
            return value
        if self.file:
            try:
                return self.file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read secret {self.describe()}: {exc.strerror}",
                    "check the path and that only this account can read it (chmod 600)",
                ) from None
        return _keyring_secret(str(self.keyring), self.key)


def _keyring_secret(ref: str, key: str) -> str:
    service, _, user = ref.partition(":")
    try:
        import keyring  # optional dependency
        from keyring.errors import KeyringError
    except ImportError:
        raise ConfigError(
            f"secret keyring entry {ref} needs the keyring package",
            f"pip install 'accessaudit[keyring]', or use {key}_env / {key}_file",
        ) from None
    try:
        value = keyring.get_password(service, user)
    except KeyringError as exc:  # e.g. no backend under a scheduler: never prompt
        raise ConfigError(
            f"keyring entry {ref} unavailable: {exc}",
            f"under a scheduler use {key}_env or {key}_file instead",
        ) from None
    if value is None:
        raise ConfigError(
            f"keyring entry {ref} not found", f"store it with: keyring set {service} {user}"
        )
    return str(value)


class Matchers(_Model):
    """Attribution signals for one organisation; every one that fires is recorded as evidence."""

    ids: list[str] = []  # explicit object ids / SIDs (an override decided by a person)
    employee_id: str | None = None  # regular expression over employeeID
    company: list[str] = []  # exact `company` values (case-insensitive)
    ou: list[str] = []  # DN suffixes (OU subtrees), case-insensitive
    upn_suffix: list[str] = []  # e.g. "@westmercia.police.uk"
    mail_domain: list[str] = []  # e.g. "westmercia.police.uk"
    name_prefix: list[str] = []  # username / group-name prefixes, e.g. "WMP-"
    names: list[str] = []  # exact account usernames or group names
    owner: bool = True  # a group managed by one of this organisation's accounts
    privileged_groups: bool = False  # this organisation hosts the domain's protected groups
    sources: list[str] = []  # groups from these sources (e.g. "csv:niche") belong to this org

    @field_validator("employee_id")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value


class Organisation(_Model):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
    name: str
    match: Matchers = Matchers()


class Attribution(_Model):
    #: Which signal wins when signals disagree (the object is still flagged as conflicting).
    precedence: list[str] = [
        "ids",
        "employee_id",
        "company",
        "ou",
        "upn_suffix",
        "mail_domain",
        "name_prefix",
        "names",
        "owner",
        "privileged_groups",
        "sources",
    ]

    @field_validator("precedence")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in MATCHER_KINDS]
        if unknown:
            raise ValueError(f"unknown matcher(s) {unknown}; known: {list(MATCHER_KINDS)}")
        missing = [m for m in MATCHER_KINDS if m not in value]
        return [*value, *missing]


class _Source(_Model):
    name: Annotated[str, Field(min_length=1)]


class SampleSource(_Source):
    """The embedded synthetic two-force directory (``accessaudit.sample.directory``)."""

    kind: Literal["sample"]
    seed: int = 7
    accounts: Annotated[int, Field(ge=200, le=5_000_000)] = 6000
    #: "directory": the Active Directory domain; "entra": its shared Entra ID tenant
    part: Literal["directory", "entra"] = "directory"


class LdapSource(_Source):
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


class EntraSource(_Source):
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


Source = Annotated[SampleSource | LdapSource | EntraSource | CsvSource, Field(discriminator="kind")]
#: The tags pydantic inserts into an error's ``loc`` after a source's index (not TOML keys).
_SOURCE_KINDS = ("sample", "ldap", "entra", "csv")


class AuditSettings(_Model):
    data_dir: Path = Path("accessaudit-data")
    rules_dirs: list[Path] = []  # site rule folders, added to the built-in catalogue
    exceptions_file: Path | None = None
    dormant_days: Annotated[int, Field(ge=1, le=3650)] = 90
    fail_on: Severity = Severity.HIGH
    #: per-rule setting overrides: {"mixed-group" = {"min_share" = 0.2}}
    rule_settings: dict[str, dict[str, Any]] = {}
    #: retention (runs kept if either keeps them; the newest complete run is never deleted)
    keep_runs: Annotated[int, Field(ge=1)] | None = None
    keep_days: Annotated[int, Field(ge=1)] | None = None


class ReportSettings(_Model):
    title: str = "Access separation audit"
    pseudonymise: bool = False
    pseudonym_key_file: Path | None = None  # kept outside the run directory
    target_date: date | None = None  # the transition agreement's end: the burn-down's target
    formats: list[Literal["html", "csv", "json", "xlsx"]] = ["html", "csv", "json"]


class ApplySettings(_Model):
    """``accessaudit apply``: its own write credentials (never the audit ones), by reference,
    and its limits. The servers, tenant and CA come from the named audit sources."""

    ad_source: str | None = None  # name of the [[sources]] LDAP source whose servers are written
    bind_dn: str | None = None  # the write account (delegated "Write Members" on target OUs)
    password_env: str | None = None
    password_file: Path | None = None
    password_keyring: str | None = None
    entra_source: str | None = None  # name of the [[sources]] Entra source (tenant, Graph URL)
    client_id: str | None = None  # the write app (GroupMember.ReadWrite.All), not the audit app
    certificate_file: Path | None = None
    certificate_thumbprint: str | None = None
    certificate_passphrase_env: str | None = None
    certificate_passphrase_file: Path | None = None
    certificate_passphrase_keyring: str | None = None
    client_secret_env: str | None = None
    client_secret_file: Path | None = None
    client_secret_keyring: str | None = None
    max_changes: Annotated[int, Field(ge=1)] = 50  # blast-radius cap; --max-changes raises it
    rate_per_second: Annotated[float, Field(gt=0, le=100)] = 1.0  # writes per second, per run
    max_failures: Annotated[int, Field(ge=1)] = 3  # consecutive failed writes stop the run
    # a plan removing more of a group's direct members than this refuses the apply (--allow-large)
    max_group_fraction: Annotated[float, Field(gt=0, le=1)] = 0.5


class Settings(_Model):
    audit: AuditSettings = AuditSettings()
    apply: ApplySettings = ApplySettings()
    attribution: Attribution = Attribution()
    organisations: Annotated[list[Organisation], Field(min_length=2)]
    sources: Annotated[list[Source], Field(min_length=1)]
    report: ReportSettings = ReportSettings()

    @model_validator(mode="after")
    def _unique(self) -> Settings:
        ids = [o.id for o in self.organisations]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate organisation id(s) {dupes}")
        reserved = [i for i in ids if i == "unattributed"]
        if reserved:
            raise ValueError("'unattributed' is reserved; it is given to objects no matcher claims")
        real = [i for i in ids if i not in SPECIAL_ORGS]
        if len(real) < 2:
            raise ValueError("at least two organisations other than 'shared' are needed")
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate source name(s) {dupes}")
        return self

    @property
    def real_orgs(self) -> list[str]:
        return [o.id for o in self.organisations if o.id not in SPECIAL_ORGS]


def _line_of(text: str, loc: Sequence[int | str]) -> int | None:
    """Line of the key at ``loc``, counting ``[[...]]`` entries; for a missing key the line of
    the table it is missing from (tomllib keeps no positions; see :mod:`.tomlpos`)."""
    keys = [
        part
        for i, part in enumerate(loc)
        if not (part in _SOURCE_KINDS and i and isinstance(loc[i - 1], int))
    ]
    return line_of(text, keys)


def _format_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _SOURCE_KINDS and out.endswith("]"):
            continue  # the discriminated-union tag pydantic inserts
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def parse_settings(data: dict[str, Any], text: str, origin: str) -> Settings:
    """Validate a parsed TOML document; errors name ``origin``, the key and its line."""
    for key, lineno in _inline_secrets(text):
        raise ConfigError(
            f"{origin}:{lineno}: '{key}' holds a secret inline",
            f'reference it instead: {key}_env = "VAR", {key}_file = "path" or {key}_keyring',
        )
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [p for p in err["loc"] if isinstance(p, int | str)]
        line = _line_of(text, loc)
        where = f"{origin}:{line}" if line else origin
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "missing required key"
        raise ConfigError(
            f"{where}: {_format_loc(loc)}: {msg}",
            "see config.example.toml for every key",
        ) from None
    _check_regexes(settings)
    return settings


def _inline_secrets(text: str) -> list[tuple[str, int]]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        m = re.match(r"^\s*([A-Za-z_]+)\s*=", line)
        if m and m.group(1) in _INLINE_SECRET_KEYS:
            found.append((m.group(1), number))
    return found


def _check_regexes(settings: Settings) -> None:
    for org in settings.organisations:
        if org.match.employee_id:
            re.compile(org.match.employee_id)


def load_settings(path: Path) -> Settings:
    """Read and validate a config file; every failure is a one-line ConfigError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found", "copy config.example.toml to config.toml"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 (byte {exc.start})", "save the file as UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}", "fix the TOML syntax") from None
    settings = parse_settings(data, text, str(path))
    return _resolve_paths(settings, path.parent)


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    """Make relative paths in the config relative to the config file's folder."""

    def fix(p: Path | None) -> Path | None:
        return None if p is None or p.is_absolute() else base / p

    audit = settings.audit.model_copy(
        update={
            "data_dir": fix(settings.audit.data_dir),
            "rules_dirs": [fix(p) or p for p in settings.audit.rules_dirs],  # absolute: kept
            "exceptions_file": fix(settings.audit.exceptions_file)
            or settings.audit.exceptions_file,
        }
    )
    if settings.audit.data_dir.is_absolute():
        audit = audit.model_copy(update={"data_dir": settings.audit.data_dir})
    sources: list[Any] = []
    for s in settings.sources:
        updates: dict[str, Any] = {}
        for name in (
            "path",
            "ca_file",
            "password_file",
            "certificate_file",
            "certificate_passphrase_file",
            "client_secret_file",
        ):
            value = getattr(s, name, None)
            if isinstance(value, Path) and not value.is_absolute():
                updates[name] = base / value
        sources.append(s.model_copy(update=updates) if updates else s)
    report = settings.report
    if report.pseudonym_key_file and not report.pseudonym_key_file.is_absolute():
        report = report.model_copy(update={"pseudonym_key_file": base / report.pseudonym_key_file})
    apply_updates = {
        name: base / value
        for name in (
            "password_file",
            "certificate_file",
            "certificate_passphrase_file",
            "client_secret_file",
        )
        if isinstance(value := getattr(settings.apply, name), Path) and not value.is_absolute()
    }
    apply = settings.apply.model_copy(update=apply_updates)
    return settings.model_copy(
        update={"audit": audit, "sources": sources, "report": report, "apply": apply}
    )


def settings_hash(settings: Settings) -> str:
    """SHA-256 of the validated settings (recorded in every manifest)."""
    return hashlib.sha256(settings.model_dump_json().encode()).hexdigest()
