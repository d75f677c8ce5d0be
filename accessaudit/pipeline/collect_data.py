"""Collect the data-path sources (Exchange exports, Azure role assignments, SMB shares) and
resolve their trustees to the directory objects collected in the same run."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from accessaudit.analysis.principals import DATA_KINDS, resolve_principals
from accessaudit.config.datasources import AzureSource, ExchangeSource, SmbSource
from accessaudit.model import SourceCollection
from accessaudit.pipeline.progress import UnitCounts

DataSource = ExchangeSource | AzureSource | SmbSource


def collect_data(
    src: DataSource, *, now: datetime, counts: UnitCounts | None = None
) -> SourceCollection:
    """One data-path source's resources and grants, trustees as the service names them."""
    if isinstance(src, ExchangeSource):
        from accessaudit.connectors.exchange import collect as exchange

        return exchange.collect(src, now=now)
    if isinstance(src, AzureSource):
        from accessaudit.connectors.azure import collect as azure

        return azure.collect(src, now=now)
    from accessaudit.connectors.smb import collect as smb

    return smb.collect(src, now=now, progress=counts)


def resolve_data(
    collected: list[tuple[str, SourceCollection]],
) -> list[tuple[str, SourceCollection]]:
    """Every data-path collection with its trustees resolved against the directories' accounts
    and groups (:mod:`accessaudit.analysis.principals`); other collections unchanged."""
    directory = [c for _, c in collected if c.kind not in (*DATA_KINDS, "csv")]
    if not directory or not any(c.kind in DATA_KINDS for _, c in collected):
        return collected
    accounts = pl.concat([c.table("accounts") for c in directory])
    groups = pl.concat([c.table("groups") for c in directory])
    return [
        (name, resolve_principals(c, accounts, groups) if c.kind in DATA_KINDS else c)
        for name, c in collected
    ]
