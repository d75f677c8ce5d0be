"""Application user-list exports for the sample directory (one CSV per hosted application).

Each force hosts an application whose user list is exported as CSV, one row per user and role:
West Mercia's records system "niche" and Warwickshire's case system "athena". :func:`plant_apps`
builds the exports, recording as it plants: the owning force's users (legitimate:
``app-own-force`` rows of :attr:`~accessaudit.sample.builder.Sample.legitimate`), four of the
other force's users, drawn like the directory's plants (``cross-org-direct-member`` on the role;
a stray whose account is disabled is exported ``No``: a disabled login gives no access and is
reported by ``inactive-cross-org-access``),
and two users the directory does not know (``unattributed-with-access``); plus a username in the
wrong case and hostile text. :func:`write_app_exports` writes them and :func:`app_sources`
describes them as ``[[sources]]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import polars as pl

from accessaudit.sample.builder import Builder, Sample


@dataclass(frozen=True)
class App:
    name: str  # the CSV source name: source "csv:<name>"
    owner: str  # the force that hosts it
    title: str
    roles: tuple[str, ...]
    delimiter: str


APPS: Final = (
    App(
        "niche",
        "wmp",
        "Niche RMS",
        ("Investigator", "Supervisor", "Custody Officer", "Auditor"),
        ",",
    ),
    App("athena", "warks", "Athena case management", ("Case Officer", "Reviewer", "Admin"), ";"),
)
#: The sample domain's down-level (NetBIOS) name, as an application writes ``ALLIANCE\user``.
DOWN_LEVEL: Final = "ALLIANCE\\"
COLUMNS: Final = {
    "username": "User ID",
    "display_name": "Full Name",
    "role": "Role",
    "enabled": "Active",
}


def role_group_id(app: App, role: str) -> str:
    """The id the CSV connector gives a role (``csv:<app>:role:<role>``)."""
    return f"csv:{app.name}:role:{role}"


def plant_apps(
    b: Builder,
    people: pl.DataFrame,
    draw: Callable[[str, int], pl.Series],
    rng: np.random.Generator,
) -> dict[str, pl.DataFrame]:
    """Build each application's export rows and record the findings they must cause."""
    other = {"wmp": "warks", "warks": "wmp"}
    out: dict[str, pl.DataFrame] = {}
    for app in APPS:
        roles = list(app.roles)
        own = people.filter((pl.col("org") == app.owner) & ~pl.col("mover"))
        n_own = min(own.height, max(20, own.height // 20))
        legit = own[rng.choice(own.height, size=n_own, replace=False).tolist()]
        legit = legit.with_columns(
            role=pl.Series([roles[i % len(roles)] for i in range(n_own)]),
        )
        b.allow_rows(
            "app-own-force",
            f"{app.title} users of its own force",
            legit.select(
                "account_id",
                group_name=pl.lit(role_group_id(app, "")) + pl.col("role"),
                depth=pl.lit(0, pl.Int32),
            ),
        )
        strays_ids = draw(other[app.owner], 4)
        strays = people.filter(pl.col("account_id").is_in(strays_ids.to_list())).with_columns(
            role=pl.Series([roles[i % len(roles)] for i in range(4)])
        )
        for acct, role, enabled in strays.select("account_id", "role", "enabled").iter_rows():
            if not enabled:  # exported "No": a disabled login holds the role, gives no access
                b.reach.append(pl.Series([acct]))  # the inactive-access rule reports it
                continue
            b.plant(
                "cross-org-direct-member",
                f"app-{app.name}",
                pl.Series([acct]),
                [(role_group_id(app, role), 0)],
            )
        rows = pl.concat([legit, strays]).select(
            pl.col("username"),
            pl.col("display_name"),
            pl.col("role"),
            pl.when(pl.col("enabled")).then(pl.lit("Yes")).otherwise(pl.lit("No")).alias("enabled"),
        )
        # the export's own spelling of a directory username (correlation is case-insensitive)
        rows = rows.with_columns(
            username=pl.when(pl.int_range(pl.len()) == 0)
            .then(pl.col("username").str.to_uppercase())
            .otherwise(pl.col("username"))
        )
        # every third login in the down-level form Windows applications export (DOMAIN\user:
        # matched by its user part, the domain being the directory's)
        rows = rows.with_columns(
            username=pl.when(pl.int_range(pl.len()) % 3 == 1)
            .then(pl.lit(DOWN_LEVEL) + pl.col("username"))
            .otherwise(pl.col("username"))
        )
        ghosts = pl.DataFrame(
            {
                "username": [f"{app.name}.ghost{i}" for i in range(2)],
                "display_name": ['=HYPERLINK("http://evil.invalid","Ghost")', "Unknown user"],
                "role": [roles[0], roles[-1]],
                "enabled": ["Yes", "Yes"],
            }
        )
        for user in ghosts["username"].to_list():
            b.plant(
                "unattributed-with-access",
                f"app-{app.name}-ghost",
                pl.Series([f"csv:{app.name}:user:{user}"]),
                [],
            )
        out[app.name] = pl.concat([rows, ghosts]).rename(COLUMNS)
    return out


def _write_csv(df: pl.DataFrame, delimiter: str, fh: IO[bytes]) -> None:
    df.write_csv(fh, separator=delimiter)


def write_app_exports(sample: Sample, folder: Path) -> dict[str, Path]:
    """Write each application's export as CSV (owner-only) into ``folder``."""
    from accessaudit.store.runs import atomic_write, private_dir

    private_dir(folder)
    paths = {}
    for app in APPS:
        df = sample.exports[app.name]
        path = folder / f"{app.name}-users.csv"
        atomic_write(path, partial(_write_csv, df, app.delimiter))
        paths[app.name] = path
    return paths


def app_sources(paths: dict[str, Path]) -> list[dict[str, Any]]:
    """``[[sources]]`` entries that read the exports written by :func:`write_app_exports`."""
    by_name = {a.name: a for a in APPS}
    return [
        {
            "kind": "csv",
            "name": name,
            "path": str(path),
            "delimiter": by_name[name].delimiter,
            "application": by_name[name].title,
            "correlate_on": "username",
            "columns": dict(COLUMNS),
        }
        for name, path in paths.items()
    ]
