"""Runs over an evolving sample directory, written through the real pipeline (no servers).

The embedded sample is split into two sources: the directory (``ad:alliance.local``) and a
cloud source (``entra:tenant-1``) holding two application groups and their memberships, so one
source can be made incomplete while the other is not.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import polars as pl

from accessaudit.config.settings import Settings
from accessaudit.engine.rulefile import Rule
from accessaudit.model import CollectionUnit, SourceCollection
from accessaudit.pipeline.analyse import analyse
from accessaudit.pipeline.collect import combine
from accessaudit.pipeline.demo import demo_settings
from accessaudit.pipeline.publish import write_run
from accessaudit.pipeline.result import RunResult
from accessaudit.sample.builder import Sample
from accessaudit.store.runs import RunStore

AD = "ad:alliance.local"
ENTRA = "entra:tenant-1"
#: groups moved into the cloud source
CLOUD_GROUPS = ("WARKS-PRJ-Major-Crime-Review", "WMP-APP-0003")


def split(sample: Sample) -> dict[str, pl.DataFrame]:
    """The sample's tables with CLOUD_GROUPS (and their member edges) in the cloud source."""
    t = dict(sample.tables)
    cloud = t["groups"].filter(pl.col("name").is_in(CLOUD_GROUPS))["group_id"].to_list()
    t["groups"] = t["groups"].with_columns(
        source=pl.when(pl.col("group_id").is_in(cloud)).then(pl.lit(ENTRA)).otherwise("source"),
        mastered=pl.when(pl.col("group_id").is_in(cloud))
        .then(pl.lit("cloud"))
        .otherwise("mastered"),
    )
    t["memberships"] = t["memberships"].with_columns(
        source=pl.when(pl.col("group_id").is_in(cloud)).then(pl.lit(ENTRA)).otherwise("source")
    )
    return t


def collections(
    tables: dict[str, pl.DataFrame], now: datetime, *, cloud_complete: bool = True
) -> list[tuple[str, SourceCollection]]:
    out = []
    for name, source, kind, complete in (
        ("alliance", AD, "ldap", True),
        ("tenant", ENTRA, "entra", cloud_complete),
    ):
        part = {n: df.filter(pl.col("source") == source) for n, df in tables.items()}
        detail = "test: proven" if complete else "test: throttled, members not collected"
        units = [CollectionUnit(n, complete, detail, df.height) for n, df in part.items()]
        out.append((name, SourceCollection(source, kind, now, now, part, units)))
    return out


def settings_for(data_dir: Path) -> Settings:
    return demo_settings(data_dir)


def write(
    store_dir: Path,
    tables: dict[str, pl.DataFrame],
    rules: list[Rule],
    now: datetime,
    *,
    cloud_complete: bool = True,
    settings: Settings | None = None,
) -> RunResult:
    settings = settings or settings_for(store_dir)
    colls = collections(tables, now, cloud_complete=cloud_complete)
    analysis = analyse(combine(colls), settings, rules, as_of=now)
    return write_run(RunStore(store_dir), analysis, colls, settings, started=now)


def without_edges(
    tables: dict[str, pl.DataFrame], edges: Iterable[tuple[str, str]]
) -> dict[str, pl.DataFrame]:
    drop = pl.DataFrame(list(edges), schema=["group_id", "member_id"], orient="row")
    out = dict(tables)
    out["memberships"] = tables["memberships"].join(drop, on=["group_id", "member_id"], how="anti")
    return out


def with_edges(
    tables: dict[str, pl.DataFrame], edges: Iterable[tuple[str, str]]
) -> dict[str, pl.DataFrame]:
    m = tables["memberships"]
    groups = tables["groups"].select("group_id", "source")
    add = (
        pl.DataFrame(list(edges), schema=["group_id", "member_id"], orient="row")
        .join(groups, on="group_id")
        .with_columns(member_kind=pl.lit("account"), via=pl.lit("member"))
        .select(m.columns)
    )
    out = dict(tables)
    out["memberships"] = pl.concat([m, add]).unique(["group_id", "member_id"], keep="first")
    return out
