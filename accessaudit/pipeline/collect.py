"""Collect every configured source into canonical tables, then correlate application users.

The only stage of a run that talks to directories: each source's connector (or the embedded
sample) returns a :class:`~accessaudit.model.SourceCollection` marked complete or incomplete.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import polars as pl

from accessaudit.analysis.correlate import correlate
from accessaudit.config.settings import Settings
from accessaudit.config.sources import CsvSource, EntraSource, LdapSource, SampleSource
from accessaudit.errors import IncompleteCollection
from accessaudit.model import (
    COLLECTED_SCHEMAS,
    LAST_LOGON,
    CollectionUnit,
    Signal,
    SourceCollection,
)
from accessaudit.pipeline.collect_data import DataSource, collect_data, resolve_data
from accessaudit.pipeline.progress import Counts, Progress, UnitCounts, no_counts, noop
from accessaudit.store.runs import (
    RunInfo,
    read_table,
)


def _sample_collection(
    src: SampleSource, now: datetime, counts: UnitCounts | None = None
) -> SourceCollection:
    from accessaudit.sample.directory import generate

    started = datetime.now(UTC)
    entra = src.part == "entra"
    sample = generate(
        seed=src.seed,
        accounts=src.accounts,
        now=now,
        entra=entra,
        legacy=src.legacy,
        domains=src.domains and not entra,
    )
    tables = sample.entra if entra else sample.directory()
    units = [
        CollectionUnit(name, True, f"generated from seed {src.seed}", df.height)
        for name, df in tables.items()
    ]
    for unit in units:  # generated in one step: each table's size once, at the end
        if counts:
            counts(unit.name, unit.count)
    source = str(tables["accounts"]["source"][0]) if entra else sample.source
    signals = {LAST_LOGON: Signal(True, "generated: every account's last sign-in or logon")}
    return SourceCollection(
        source, "sample", started, datetime.now(UTC), dict(tables), units, signals=signals
    )


def _previous_state(previous: RunInfo | None, name: str) -> dict[str, str] | None:
    if previous is None:
        return None
    for s in previous.manifest.get("sources", []):
        if s.get("name") == name and s.get("complete"):
            state = s.get("state") or {}
            return {str(k): str(v) for k, v in state.items()}
    return None


def _previous_tables(previous: RunInfo | None, source: str) -> dict[str, pl.DataFrame] | None:
    if previous is None:
        return None
    out = {}
    for name in COLLECTED_SCHEMAS:
        df = read_table(previous, name)
        # a run stored before a column was added lacks it: the connector conforms the tables
        names = [c for c in COLLECTED_SCHEMAS[name].names() if c in df.columns]
        out[name] = df.filter(pl.col("source") == source).select(names)
    return out


def collect_one(
    src: SampleSource | LdapSource | EntraSource | CsvSource | DataSource,
    *,
    now: datetime,
    previous: RunInfo | None = None,
    counts: UnitCounts | None = None,
) -> SourceCollection:
    """Collect one configured source. An incomplete collection is returned, marked incomplete.

    ``counts(unit, objects_so_far)`` reports progress: LDAP after every page, Entra as each
    unit completes, CSV every 10,000 rows, the sample once per table."""
    try:
        if isinstance(src, SampleSource):
            return _sample_collection(src, now, counts)
        if isinstance(src, LdapSource):
            from accessaudit.connectors.ldap import collect as ldap

            return ldap.collect(src, now=now, progress=counts)
        if isinstance(src, EntraSource):
            from accessaudit.connectors.entra import collect as entra

            state = _previous_state(previous, src.name)
            prev_tables = _previous_tables(previous, f"entra:{src.tenant_id}") if state else None
            return entra.collect(src, state=state, previous=prev_tables, now=now, progress=counts)
        if not isinstance(src, CsvSource):
            return collect_data(src, now=now, counts=counts)
        from accessaudit.connectors import csvfile

        return csvfile.collect(src, now=now, progress=counts)
    except IncompleteCollection as exc:
        if isinstance(exc.collection, SourceCollection):
            return exc.collection
        raise


def collect_sources(
    settings: Settings,
    *,
    now: datetime,
    previous: RunInfo | None = None,
    progress: Progress = noop,
    counts: Counts = no_counts,
) -> list[tuple[str, SourceCollection]]:
    """Every configured source, then CSV users correlated with the directory accounts.

    ``progress(stage)`` names each step; ``counts(source_name, unit, objects_so_far)`` reports
    the objects collected so far (see :func:`collect_one`)."""
    collected: list[tuple[str, SourceCollection]] = []
    for src in settings.sources:
        progress(f"collecting {src.name} ({src.kind})")
        unit_counts = functools.partial(counts, src.name)
        collected.append(
            (src.name, collect_one(src, now=now, previous=previous, counts=unit_counts))
        )
    directory = [c.table("accounts") for _, c in collected if c.kind != "csv"]
    if directory:
        dir_accounts = pl.concat(directory)
        by_name = {s.name: s for s in settings.sources}
        for i, (name, c) in enumerate(collected):
            src = by_name[name]
            if isinstance(src, CsvSource):
                progress(f"correlating {name} on {src.correlate_on}")
                correlated = correlate(c, dir_accounts, src.correlate_on, src.domains)
                collected[i] = (name, correlated[0])
    return resolve_data(collected)


def combine(collections: list[tuple[str, SourceCollection]]) -> dict[str, pl.DataFrame]:
    """One table per canonical name across all sources."""
    return {
        name: pl.concat([c.table(name) for _, c in collections], how="vertical")
        for name in COLLECTED_SCHEMAS
    }
