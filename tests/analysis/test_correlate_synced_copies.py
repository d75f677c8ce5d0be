"""A CSV user matches the AD account, not also the Entra user synced from it (same SID)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from accessaudit.analysis.correlate import correlate
from accessaudit.config.sources import CsvSource
from accessaudit.connectors.csvfile import collect
from accessaudit.model import ACCOUNTS_SCHEMA, conform

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_synced_copy_is_not_a_second_candidate(tmp_path: Path) -> None:
    path = tmp_path / "niche.csv"
    path.write_text("User,Role\njsmith,Investigator\ncloudonly,Auditor\n", encoding="utf-8")
    cfg = CsvSource(
        kind="csv", name="niche", path=path, columns={"username": "User", "role": "Role"}
    )
    rows = [
        ("ad:alliance.local", "ad-1", "S-1-5-21-1-2-3-1001", "jsmith"),
        ("entra:t1", "cloud-1", "S-1-5-21-1-2-3-1001", "jsmith"),  # synced from ad-1
        ("entra:t1", "cloud-2", None, "cloudonly"),  # cloud-only: a candidate of its own
    ]
    accounts = conform(
        pl.DataFrame(rows, schema=["source", "account_id", "sid", "username"], orient="row"),
        ACCOUNTS_SCHEMA,
    )
    result, evidence = correlate(collect(cfg, now=NOW), accounts, "username")
    assert evidence.select("directory_account_id", "status").rows() == [
        ("ad-1", "matched"),
        ("cloud-2", "matched"),
    ]
    members = set(result.table("memberships")["member_id"])
    assert members == {"ad-1", "cloud-2"}
