"""Load and validate ``config.toml`` into typed settings.

Every section is a pydantic model with ``extra="forbid"``, so an unknown key, a wrong type or a
missing key becomes a :class:`~accessaudit.errors.ConfigError` naming the file, the key and (where
the key appears in the file) its line. Secrets are never written inline: a source names an
environment variable, a file or a keyring entry (:class:`~accessaudit.config.secrets.SecretRef`),
resolved only when the connector needs it.

:class:`Settings` and its ``[audit]``, ``[report]`` and ``[apply]`` tables are here; the
organisations and their matchers are in :mod:`~accessaudit.config.organisations`, the
``[[sources]]`` in :mod:`~accessaudit.config.sources`.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Sequence
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from accessaudit.config.base import STRICT
from accessaudit.config.checks import document_problems, settings_problems
from accessaudit.config.organisations import Attribution, Organisation
from accessaudit.config.sources import SOURCE_KINDS, DirectorySource, Source
from accessaudit.config.survey import AddedMatchers, SurveySettings, added_problems, merge_matchers
from accessaudit.config.tomlpos import line_of
from accessaudit.errors import ConfigError
from accessaudit.model import SPECIAL_ORGS


class _Model(BaseModel):
    model_config = STRICT


#: Inline secret keys we refuse with a specific message rather than "unknown key".
_INLINE_SECRET_KEYS = ("password", "client_secret", "secret", "passphrase", "private_key")


#: The shortest dormant threshold: AD replicates lastLogonTimestamp only when it is 9-14 days
#: old (ms-DS-Logon-Time-Sync-Interval, 14 days by default, less a random 0-5), so an account
#: used every day can show a last logon 14 days ago. A shorter threshold would call accounts in
#: use dormant, and the plan would disable them.
MIN_DORMANT_DAYS = 14


def _check_dormant(value: Any) -> None:
    if isinstance(value, int) and value < MIN_DORMANT_DAYS:
        raise ValueError(
            f"{value} is below {MIN_DORMANT_DAYS}: Active Directory replicates "
            "lastLogonTimestamp only every 9-14 days, so accounts in use would be called "
            f"dormant (and disabled); use {MIN_DORMANT_DAYS} or more"
        )


class FailOn(StrEnum):
    """``audit.fail_on``: the severities, and ``none`` (never fail on findings), as on the
    command line."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"
    NONE = "none"


class AuditSettings(_Model):
    data_dir: Path = Path("accessaudit-data")
    rules_dirs: list[Path] = []  # site rule folders, added to the built-in catalogue
    exceptions_file: Path | None = None
    dormant_days: Annotated[int, Field(le=3650)] = 90  # at least MIN_DORMANT_DAYS
    fail_on: FailOn = FailOn.HIGH
    #: per-rule setting overrides: {"mixed-group" = {"min_share" = 0.2}}
    rule_settings: dict[str, dict[str, Any]] = {}
    #: retention (runs kept if either keeps them; the newest complete run is never deleted)
    keep_runs: Annotated[int, Field(ge=1)] | None = None
    keep_days: Annotated[int, Field(ge=1)] | None = None

    @field_validator("dormant_days")
    @classmethod
    def _dormant_days(cls, value: int) -> int:
        _check_dormant(value)
        return value

    @field_validator("rule_settings")
    @classmethod
    def _rule_dormant_days(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for settings in value.values():
            _check_dormant(settings.get("dormant_days"))
        return value


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
    survey: SurveySettings = SurveySettings()
    #: matchers added to organisations (``accessaudit survey --write`` appends them), merged
    #: into ``organisations`` when the file is loaded (:mod:`.survey`)
    matchers: list[AddedMatchers] = []

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


class HostUndeclared(ConfigError):
    """Directory sources that declare no ``host``: the configuration is otherwise valid
    (``settings``, for the evidence of a previous run); ``missing`` names each such source with
    its index in ``[[sources]]``."""

    def __init__(
        self, message: str, hint: str, settings: Settings, missing: list[tuple[int, str]]
    ) -> None:
        super().__init__(message, hint)
        self.settings = settings
        self.missing = missing


def directory_sources(settings: Settings) -> list[tuple[int, DirectorySource]]:
    """The directory sources (ldap, entra, sample) with their index in ``[[sources]]``."""
    return [(i, s) for i, s in enumerate(settings.sources) if isinstance(s, DirectorySource)]


def _where(origin: str, text: str, loc: Sequence[int | str]) -> str:
    line = line_of(text, loc)
    return f"{origin}:{line}" if line else origin


def _check_hosts(settings: Settings, text: str, origin: str) -> None:
    """Every directory source declares the organisation hosting it (``host``), a configured
    organisation other than ``shared``; an organisation claiming the domain's protected groups
    (``privileged_groups``) is the declared host of every directory source. An undeclared host
    is :class:`HostUndeclared`: never guessed."""
    real = settings.real_orgs
    directories = directory_sources(settings)
    for i, src in directories:
        if src.host is not None and src.host not in real:
            raise ConfigError(
                f"{_where(origin, text, ['sources', i, 'host'])}: sources[{i}].host: "
                f"'{src.host}' is not an organisation that can host a directory",
                f"one of: {', '.join(real)}",
            )
    _check_privileged_groups(settings, text, origin)
    missing = [(i, src.name) for i, src in directories if src.host is None]
    if missing:
        i, name = missing[0]
        more = f"; {len(missing) - 1} more source(s) lack one too" if len(missing) > 1 else ""
        raise HostUndeclared(
            f"{_where(origin, text, ['sources', i, 'host'])}: sources[{i}] ({name}): no host "
            f"declared: which organisation hosts this {settings.sources[i].kind} directory is "
            f"never guessed{more}",
            f'add host = "<organisation id>" to the source, one of: {", ".join(real)}',
            settings,
            missing,
        )


def _check_privileged_groups(settings: Settings, text: str, origin: str) -> None:
    """``privileged_groups`` gives the protected groups of every directory source to one
    organisation: it must be the host every directory source declares."""
    for j, org in enumerate(settings.organisations):
        if not org.match.privileged_groups:
            continue
        for i, src in directory_sources(settings):
            if src.host is not None and src.host != org.id:
                loc: list[int | str] = ["organisations", j, "match", "privileged_groups"]
                raise ConfigError(
                    f"{_where(origin, text, loc)}: organisations[{j}].match.privileged_groups: "
                    f"'{org.id}' claims every directory's protected groups, but sources[{i}] "
                    f"({src.name}) declares host = '{src.host}'",
                    "set privileged_groups = true only on the organisation every directory "
                    "source declares as its host",
                )


def _line_of(text: str, loc: Sequence[int | str]) -> int | None:
    """Line of the key at ``loc``, counting ``[[...]]`` entries; for a missing key the line of
    the table it is missing from (tomllib keeps no positions; see :mod:`.tomlpos`)."""
    keys = [
        part
        for i, part in enumerate(loc)
        if not (part in SOURCE_KINDS and i and isinstance(loc[i - 1], int))
    ]
    return line_of(text, keys)


def _format_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in SOURCE_KINDS and out.endswith("]"):
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
    _raise_first(document_problems(data), text, origin)
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
    _raise_first(added_problems(settings.organisations, settings.matchers), text, origin)
    merged = merge_matchers(settings.organisations, settings.matchers)
    settings = settings.model_copy(update={"organisations": merged})
    _raise_first(settings_problems(settings), text, origin)
    _check_hosts(settings, text, origin)
    return settings


def _raise_first(
    problems: Sequence[tuple[Sequence[int | str], str]], text: str, origin: str
) -> None:
    """A :class:`ConfigError` for the first of ``problems`` (:mod:`.checks`), naming its line."""
    if not problems:
        return
    loc, message = problems[0]
    more = f" ({len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    raise ConfigError(
        f"{_where(origin, text, loc)}: {_format_loc(loc)}: {message}{more}",
        "see config.example.toml for every key",
    )


def _inline_secrets(text: str) -> list[tuple[str, int]]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        m = re.match(r"^\s*([A-Za-z_]+)\s*=", line)
        if m and m.group(1) in _INLINE_SECRET_KEYS:
            found.append((m.group(1), number))
    return found


def load_settings(path: Path) -> Settings:
    """Read and validate a config file; every failure is a one-line ConfigError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found",
            f"write one to start from with: accessaudit init --config {path}",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")  # a byte order mark (Windows editors) is not content
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 (byte {exc.start})", "save the file as UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
        settings = parse_settings(data, text, str(path))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}", "fix the TOML syntax") from None
    except RecursionError:
        raise ConfigError(
            f"{path}: values nested too deeply (arrays or tables inside each other)",
            "a configuration nests a few levels at most; see config.example.toml",
        ) from None
    except HostUndeclared as exc:
        exc.settings = _resolve_paths(exc.settings, path.parent)  # its data_dir, for evidence
        raise
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
