"""Which organisation hosts each directory: the configuration's ``host`` of every ldap, entra
and sample source, as the views take it, and the evidence shown when one is missing.

The configuration check (:func:`accessaudit.config.settings.parse_settings`) refuses a directory
source without a ``host``; :func:`load_config` adds to that error what the data directory's
latest run saw of the source (which organisation holds more of its privileged groups), so the
person declaring it has the facts, and the tool still never guesses. :func:`declared_hosts`
turns the declarations into the views' ``hosts`` frame (source -> host_org), keyed by the
``source`` value the source's rows carry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from accessaudit.config.datasources import AzureSource, ExchangeSource, SmbSource
from accessaudit.config.settings import HostUndeclared, Settings, load_settings
from accessaudit.config.sources import (
    CsvSource,
    DirectorySource,
    EntraSource,
    LdapSource,
    SampleSource,
)
from accessaudit.config.tomlpos import line_of
from accessaudit.engine.views import HOSTS_SCHEMA
from accessaudit.errors import AuditError, ConfigError
from accessaudit.pipeline.ruleconfig import check_rule_settings
from accessaudit.store.runs import RunInfo, RunStore, read_table


def source_id(src: DirectorySource) -> str:
    """The ``source`` value of the rows a directory source is collected into (the connectors'
    own naming: ``ad:<dns domain>`` or ``ldap:<name>``, ``entra:<tenant id>``; the sample's
    domain or tenant)."""
    if isinstance(src, EntraSource):
        return f"entra:{src.tenant_id}"
    if isinstance(src, LdapSource):
        from accessaudit.connectors.ldap.collect import source_name

        return source_name(src)
    if src.part == "entra":
        from accessaudit.sample.entra import ENTRA_SOURCE

        return ENTRA_SOURCE
    from accessaudit.sample.builder import SOURCE

    return SOURCE


def declared_hosts(settings: Settings) -> pl.DataFrame:
    """The views' ``hosts`` frame: per collected ``source``, the organisation the configuration
    declares hosts it. Two sources collecting the same directory must agree; a source without a
    declaration (a configuration built in code) is left out: its host is unknown."""
    rows: dict[str, tuple[str, str]] = {}
    for src in settings.sources:
        if isinstance(src, DirectorySource) and src.host is not None:
            key = source_id(src)
            seen = rows.setdefault(key, (src.name, src.host))
            if seen[1] != src.host:
                raise ConfigError(
                    f"sources {seen[0]} and {src.name} both collect {key} but declare different "
                    f"hosts ({seen[1]}, {src.host})",
                    "one directory has one host: make the two declarations agree",
                )
    return pl.DataFrame(
        {"source": list(rows), "host_org": [host for _, host in rows.values()]},
        schema=HOSTS_SCHEMA,
    )


def load_config(path: Path) -> Settings:
    """:func:`~accessaudit.config.settings.load_settings`; a directory source without a
    declared host fails with what the data directory's latest run saw of it, when there is
    one; rule settings are checked against the rules (:mod:`.ruleconfig`)."""
    try:
        settings = load_settings(path)
    except HostUndeclared as exc:
        evidence = host_evidence(exc.settings, [name for _, name in exc.missing])
        if not evidence:
            raise
        raise ConfigError(f"{exc.message}; {evidence}", exc.hint) from None
    check_rule_settings(settings, path)  # overrides against the rules' declared settings
    check_match_sources(settings, path)
    return settings


#: An application's home tenant (``entra:<tenant id>``): a ``sources`` matcher may name one that
#: is not collected (a multi-tenant application's own tenant, matched on service principals).
_TENANT = re.compile(r"^entra:[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")


def collected_sources(settings: Settings) -> dict[str, str]:
    """The ``source`` value each configured source's rows carry -> the source's name."""
    out: dict[str, str] = {}
    for src in settings.sources:
        if isinstance(src, SampleSource):
            from accessaudit.sample.sources import sample_sources

            for key in sorted(sample_sources(src.part)):
                out.setdefault(key, src.name)
            continue
        if isinstance(src, DirectorySource):
            key = source_id(src)
        elif isinstance(src, CsvSource):
            key = f"csv:{src.name}"
        elif isinstance(src, SmbSource):
            key = f"smb:{src.server.lower()}"
        elif isinstance(src, ExchangeSource):
            key = f"exchange:{src.name}"
        elif isinstance(src, AzureSource):
            key = f"azure:{src.tenant_id}"
        else:  # pragma: no cover - every kind is named above
            continue
        out.setdefault(key, src.name)
    return out


def check_match_sources(settings: Settings, path: Path | None = None) -> None:
    """Every value of an organisation's ``sources`` matcher names a configured source (as its
    rows carry it: ``csv:<name>``, ``ad:<dns domain>``, ``entra:<tenant id>`` ...) or an
    application's home tenant (``entra:<tenant id>``): a typo would attribute nothing, silently.
    """
    known = collected_sources(settings)
    for j, org in enumerate(settings.organisations):
        for k, value in enumerate(org.match.sources):
            if value in known or _TENANT.match(value):
                continue
            loc: list[int | str] = ["organisations", j, "match", "sources", k]
            where = str(path) if path else "configuration"
            try:
                line = line_of(path.read_text(encoding="utf-8-sig"), loc) if path else None
            except (OSError, UnicodeDecodeError):
                line = None
            raise ConfigError(
                f"{where}{f':{line}' if line else ''}: organisations[{j}].match.sources: "
                f"'{value}' names no configured source",
                "use the source value its rows carry: "
                + (", ".join(sorted(known)) or "no source is configured")
                + ", or entra:<tenant id> for an application's home tenant",
            )


def host_evidence(settings: Settings, names: Iterable[str]) -> str:
    """What the latest run in the data directory saw of the named sources: per source, how many
    of its privileged groups each organisation holds (empty: no run, or nothing to say). The
    evidence is advice for the person declaring the host, never a decision."""
    try:
        run = RunStore(settings.audit.data_dir).latest()
        if run is None:
            return ""
        groups = read_table(run, "groups")
    except (AuditError, OSError, ValueError, pl.exceptions.PolarsError):
        return ""  # evidence is optional: the configuration error stands without it
    if not {"source", "privileged", "org"} <= set(groups.columns):
        return ""
    sources = _run_sources(run, settings, names)
    parts = [
        _source_counts(groups, name, source, settings.real_orgs) for name, source in sources.items()
    ]
    said = [p for p in parts if p]
    return f"last run {run.run_id}: " + "; ".join(said) if said else ""


def _run_sources(run: RunInfo, settings: Settings, names: Iterable[str]) -> dict[str, str]:
    """Source name -> the ``source`` its rows carried in ``run`` (from the run's manifest; a
    source the run did not collect is left out)."""
    recorded: dict[str, str] = {}
    for entry in run.manifest.get("sources", []):
        if isinstance(entry, Mapping) and entry.get("name") and entry.get("source"):
            recorded[str(entry["name"])] = str(entry["source"])
    return {n: recorded[n] for n in names if n in recorded}


def _source_counts(groups: pl.DataFrame, name: str, source: str, orgs: list[str]) -> str:
    counts: dict[Any, int] = dict(
        groups.filter((pl.col("source") == source) & pl.col("privileged").fill_null(False))
        .group_by("org")
        .len()
        .iter_rows()
    )
    held = sorted(((counts.get(o, 0), o) for o in orgs), key=lambda c: (-c[0], c[1]))
    if not any(n for n, _ in held):
        return f"{name}: none of its privileged groups is attributed to an organisation"
    first, *rest = held
    others = ", ".join(f"{o} {n}" for n, o in rest)
    return f"{first[1]} holds {first[0]} privileged group(s) of {name}" + (
        f", {others}" if others else ""
    )
