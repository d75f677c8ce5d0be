"""An ``smb`` source: the configured shares of one file server, read-only.

Per share: the share-level permissions (:mod:`.srvsvc`; a null descriptor means "not readable
by this account", recorded as such, never as "no entries"), then every folder down to
``depth`` (:mod:`.walk`), each folder's owner and DACL parsed by
:mod:`accessaudit.transport.secdesc`, entries folded to where they are set (:mod:`.fold`).

Tables: ``resources`` (one row per share, family ``share``, and per folder, family ``folder``:
``resource_id`` ``smb://server/share/path``, ``path`` the UNC path, ``parent_id`` the parent
folder, ``owner_sid``, ``readable``) and ``grants`` (resource kinds ``share`` and ``folder``,
trustees as SIDs: the pipeline resolves them to directory objects). Completeness is per share:
a folder whose descriptor or listing was refused makes the share's unit incomplete, naming the
first such folder.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import polars as pl

from accessaudit.config.datasources import SmbSource
from accessaudit.connectors.smb.client import SmbReader
from accessaudit.connectors.smb.fold import fold, right_of
from accessaudit.connectors.smb.srvsvc import share_descriptor
from accessaudit.connectors.smb.walk import Walked, walk
from accessaudit.errors import ConfigError
from accessaudit.model import (
    GRANTS_SCHEMA,
    LAST_LOGON,
    RESOURCES_SCHEMA,
    CollectionUnit,
    ResourceKind,
    Signal,
    SourceCollection,
    conform,
)
from accessaudit.transport.secdesc import FILE_MAPPING, parse_many


def collect(
    cfg: SmbSource,
    *,
    now: datetime | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> SourceCollection:
    """Read every configured share of ``cfg.server``."""
    started = now or datetime.now(UTC)
    source = f"smb:{cfg.server.lower()}"
    if cfg.password is None:
        raise ConfigError(
            f"source {cfg.name}: no password reference",
            "set password_env, password_file or password_keyring",
        )
    password = cfg.password.resolve()
    reader = SmbReader(
        cfg.server,
        cfg.port,
        cfg.username,
        password,
        require_encryption=cfg.require_encryption,
        timeout=cfg.timeout,
        name=f"source {cfg.name}",
    )
    resources: list[pl.DataFrame] = []
    grants: list[pl.DataFrame] = []
    units: list[CollectionUnit] = []
    try:
        for share in cfg.shares:
            tree = reader.tree(share)
            base = f"smb://{cfg.server.lower()}/{share.lower()}"
            sd = share_descriptor(reader, share)
            counts = _share_progress(progress, share)
            walked = walk(reader, tree, cfg.depth, files=cfg.files, progress=counts)
            res, gr, unit = _share_tables(cfg, share, base, walked, sd)
            resources.append(res)
            grants.append(gr)
            units.append(unit)
    finally:
        reader.close()
    return SourceCollection(
        source=source,
        kind="smb",
        started=started,
        finished=now or datetime.now(UTC),
        tables={
            "resources": pl.concat(resources).with_columns(source=pl.lit(source)),
            "grants": pl.concat(grants).with_columns(source=pl.lit(source)),
        },
        units=units,
        signals={LAST_LOGON: Signal(False, "a file server records no sign-ins")},
    )


def _share_progress(
    progress: Callable[[str, int], None] | None, share: str
) -> Callable[[int], None] | None:
    if progress is None:
        return None
    report = progress

    def counts(n: int) -> None:
        report(f"share {share}", n)

    return counts


def _share_tables(
    cfg: SmbSource, share: str, base: str, walked: Walked, share_sd: bytes | None
) -> tuple[pl.DataFrame, pl.DataFrame, CollectionUnit]:
    heads, aces = parse_many(walked.descriptors)
    unc = f"\\\\{cfg.server}\\{share}"
    rel = pl.Series("rel", walked.paths, dtype=pl.String)
    nodes = pl.DataFrame(
        {
            "i": pl.Series(range(len(walked.paths)), dtype=pl.UInt32),
            "rel": rel,
            "parent": pl.Series(walked.parents, dtype=pl.UInt32),
            "depth": pl.Series(walked.depths, dtype=pl.Int32),
            "listed": walked.listed,
            "walk_error": pl.Series(walked.errors, dtype=pl.String),
            "is_file": walked.is_file,
        }
    ).join(heads, on="i")
    ids = nodes.select(
        "i",
        resource_id=pl.lit(base + "/") + pl.col("rel").str.replace_all("\\", "/", literal=True),
    )
    folders = nodes.join(ids, on="i").join(
        ids.rename({"i": "parent", "resource_id": "parent_id"}), on="parent", how="left"
    )
    share_id = base
    res = pl.concat(
        [
            pl.DataFrame(
                {
                    "resource_id": [share_id],
                    "family": ["share"],
                    "object_class": ["share"],
                    "name": [share],
                    "path": [unc],
                    "readable": [share_sd is not None],
                }
            ),
            folders.select(
                "resource_id",
                family=pl.lit("folder"),
                object_class=pl.when("is_file").then(pl.lit("file")).otherwise(pl.lit("folder")),
                name=pl.when(pl.col("rel") == "")
                .then(pl.lit(share))
                .otherwise(pl.col("rel").str.split("\\").list.last()),
                path=pl.lit(unc)
                + pl.when(pl.col("rel") == "")
                .then(pl.lit(""))
                .otherwise(pl.lit("\\") + pl.col("rel")),
                parent_id=pl.coalesce(
                    "parent_id", pl.when(pl.col("i") == 0).then(pl.lit(share_id))
                ),
                owner_sid="owner_sid",
                readable="readable",
            ),
        ],
        how="diagonal_relaxed",
    )
    folded = fold(nodes.select("i", "parent", "depth", "readable", "protected"), aces)
    folder_grants = folded.join(ids, on="i").select(
        principal_id="trustee",
        resource_id="resource_id",
        resource_kind=pl.lit(ResourceKind.FOLDER.value),
        right="right",
        deny="deny",
        inherited="inherited",
        reach="reach",
    )
    gr = pl.concat([folder_grants, _share_grants(share_sd, share_id)], how="diagonal_relaxed")
    return (
        conform(res.with_columns(source=pl.lit("")), RESOURCES_SCHEMA),
        conform(gr.with_columns(source=pl.lit("")), GRANTS_SCHEMA),
        _unit(share, unc, nodes, cfg.depth, share_sd is not None),
    )


def _share_grants(sd: bytes | None, share_id: str) -> pl.DataFrame:
    if sd is None:
        return pl.DataFrame()
    _, aces = parse_many([sd])
    return (
        aces.filter(pl.col("allow") | pl.col("deny"))
        .select(
            principal_id="trustee",
            resource_id=pl.lit(share_id),
            resource_kind=pl.lit(ResourceKind.SHARE.value),
            right=right_of(FILE_MAPPING.expr(pl.col("mask"))),
            deny="deny",
            inherited=pl.lit(False),
            reach=pl.lit(1, pl.Int64),
        )
        .unique()
    )


def _unit(
    share: str, unc: str, nodes: pl.DataFrame, depth: int, share_read: bool
) -> CollectionUnit:
    bad = nodes.filter(~pl.col("readable") | ~pl.col("listed")).sort("i")
    n = nodes.height
    share_text = "share permissions read" if share_read else "share permissions not readable"
    if bad.height == 0:
        return CollectionUnit(
            f"share {share}", True, f"{n} objects of {unc} to depth {depth}; {share_text}", n
        )
    first = bad.row(0, named=True)
    where = unc + ("\\" + first["rel"] if first["rel"] else "")
    why = first["walk_error"] or first["error"] or "not readable"
    return CollectionUnit(
        f"share {share}",
        False,
        f"{bad.height} of {n} objects of {unc} not read completely, first {where}: {why}; "
        "the subtree below each is unknown",
        n,
    )
