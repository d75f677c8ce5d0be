"""Boundary data on a real Samba DC: groups at MaxValRange, foreign and well-known members,
accountExpires sentinels. Exact counts, every unit proven complete, nothing crashes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from support.hardening_cli import check_scenario, run, write_config
from support.hardening_env import (
    BOUNDARY_GROUPS,
    EXPIRES,
    UNRESOLVABLE,
    WELL_KNOWN,
    BoundaryDC,
    bulk_name,
    members_of,
)

from accessaudit.connectors.ldap.collect import collect

pytestmark = [pytest.mark.servers, pytest.mark.slow]

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _by_name(got: object) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    tables = got.tables  # type: ignore[attr-defined]
    return tables["accounts"], tables["groups"], tables["memberships"]


@pytest.mark.parametrize("range_size", [1000, 1500])
def test_groups_at_the_range_limit_are_read_exactly(
    boundary_ro: BoundaryDC, range_size: int
) -> None:
    got = collect(boundary_ro.source(range_size=range_size), now=NOW)
    assert got.complete, [u for u in got.units if not u.complete]
    accounts, groups, memberships = _by_name(got)
    names = dict(zip(accounts["account_id"], accounts["username"], strict=True))
    for name, size in BOUNDARY_GROUPS.items():
        gid = groups.filter(pl.col("name") == name)["group_id"].item()
        edges = memberships.filter(pl.col("group_id") == gid)
        assert edges.height == size, name
        assert {names[m] for m in edges["member_id"]} == {bulk_name(i) for i in members_of(size)}
        units = [u for u in got.units if u.name == f"members:{gid}"]
        if size <= range_size:  # the first window held them all: answered "range=0-*"
            assert units == [] and set(edges["via"]) == {"member"}, name
            continue
        requests = -(-size // range_size)  # every window full but the last, which ends in -*
        [unit] = units
        assert (unit.complete, unit.count) == (True, size)
        assert unit.detail == f"range ended in -* after {requests} request(s)", name
        assert set(edges["via"]) == {"range"}


def test_foreign_and_well_known_members_are_kept_by_sid(boundary_ro: BoundaryDC) -> None:
    got = collect(boundary_ro.source(), now=NOW)
    assert got.complete
    _, groups, memberships = _by_name(got)

    def members(name: str) -> set[tuple[str, str]]:
        gid = groups.filter(pl.col("name") == name)["group_id"].item()
        rows = memberships.filter(pl.col("group_id") == gid)
        return set(rows.select("member_id", "member_kind").iter_rows())

    assert members("WMP-Foreign") == {(sid, "foreign") for sid in UNRESOLVABLE}
    assert members("WARKS-Foreign") == {(UNRESOLVABLE[0], "foreign")}
    assert members("WMP-WellKnown") == {(sid, "foreign") for sid in WELL_KNOWN}
    fsp = next(u for u in got.units if u.name == "foreign-security-principals")
    assert fsp.complete


def test_account_expires_sentinels(boundary_ro: BoundaryDC) -> None:
    got = collect(boundary_ro.source(), now=NOW)
    accounts, _, _ = _by_name(got)
    enabled = dict(
        accounts.filter(pl.col("username").is_in(list(EXPIRES)))
        .select("username", "enabled")
        .rows()
    )
    assert enabled == {name: name != "x-expired" for name in EXPIRES}


def test_full_run_of_the_boundary_domain(boundary_ro: BoundaryDC, tmp_path: Path) -> None:
    """The command line over all of it: complete, exact counts, every output written."""
    config = write_config(tmp_path, boundary_ro.source_toml())
    p = run(config, "--fail-on", "none")
    m = check_scenario(p, config, exit_code=0, runs_before=0)
    assert m is not None
    [source] = m["sources"]
    ranged = [u for u in source["units"] if u["name"].startswith("members:")]
    assert sorted(u["count"] for u in ranged) == sorted(BOUNDARY_GROUPS.values())
    assert m["summary"]["by_rule"].get("cross-org-direct-member", 0) > 0
    files = set(m["files"])
    assert {"report.html", "findings.csv", "findings.json", "actions.xlsx"} <= files
