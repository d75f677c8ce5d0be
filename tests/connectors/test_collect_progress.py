"""Progress of a collection: counts from the connectors, through the pipeline, to the terminal."""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from accessaudit.cli import StageProgress
from accessaudit.config.settings import Settings
from accessaudit.connectors.csvfile import PROGRESS_EVERY
from accessaudit.pipeline.collect import collect_sources
from accessaudit.sample.directory import sample_settings_dict

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ROWS = 2 * PROGRESS_EVERY + 123


def _settings(tmp_path: Path) -> Settings:
    export = tmp_path / "app.csv"
    lines = ["User ID,Role"] + [f"user{i},Role {i % 7}" for i in range(ROWS)]
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Settings.model_validate(
        {
            **sample_settings_dict(),
            "audit": {"data_dir": str(tmp_path / "data")},
            "sources": [
                {"kind": "sample", "name": "alliance", "accounts": 300, "host": "wmp"},
                {
                    "kind": "csv",
                    "name": "app",
                    "path": str(export),
                    "columns": {"username": "User ID", "role": "Role"},
                },
            ],
        }
    )


def test_collect_sources_reports_growing_counts_ending_at_table_sizes(tmp_path: Path) -> None:
    calls: list[tuple[str, str, int]] = []
    collected = dict(
        collect_sources(
            _settings(tmp_path), now=NOW, counts=lambda s, u, n: calls.append((s, u, n))
        )
    )
    series: dict[tuple[str, str], list[int]] = defaultdict(list)
    for source, unit, n in calls:
        series[(source, unit)].append(n)
    for values in series.values():
        assert values == sorted(values)  # never goes back
    sample = collected["alliance"]
    assert {(s, u) for s, u in series if s == "alliance"} == {
        ("alliance", name) for name in sample.tables
    }
    for name, df in sample.tables.items():
        assert series[("alliance", name)][-1] == df.height
    assert series[("alliance", "accounts")][-1] >= 300
    # the CSV export: every PROGRESS_EVERY rows while reading, then the final count
    assert series[("app", "rows")] == [PROGRESS_EVERY, 2 * PROGRESS_EVERY, ROWS]
    [rows_unit] = [u for u in collected["app"].units if u.name == "rows"]
    assert rows_unit.count == ROWS
    # sources are reported in the order they are collected
    assert [s for s, _, _ in calls] == sorted(
        (s for s, _, _ in calls), key=["alliance", "app"].index
    )


def _console(buffer: io.StringIO, terminal: bool) -> Console:
    return Console(file=buffer, force_terminal=terminal, width=120, highlight=False, markup=False)


def test_terminal_shows_counts_per_source() -> None:
    out = io.StringIO()
    with StageProgress(_console(out, terminal=True)) as progress:
        progress("collecting alliance (ldap)")
        progress.count("alliance", "accounts", 1000)
        progress.count("alliance", "accounts", 2000)
        progress.count("alliance", "groups", 345)
    text = out.getvalue()
    assert "collecting alliance (ldap)" in text
    assert "2,345 collected: accounts 2,000, groups 345" in text


def test_many_units_show_the_first_and_the_latest_two() -> None:
    out = io.StringIO()
    with StageProgress(_console(out, terminal=True)) as progress:
        progress("collecting tenant (entra)")
        for n, unit in enumerate(("users", "groups", "members", "owners", "role-assignments")):
            progress.count("tenant", unit, 10 * (n + 1))
    assert "150 collected: users 10, ..., owners 40, role-assignments 50" in out.getvalue()


def test_no_live_display_off_a_terminal_or_for_json_log_runs() -> None:
    for terminal, live in ((False, True), (True, False)):
        out = io.StringIO()
        with StageProgress(_console(out, terminal), live=live) as progress:
            progress("collecting alliance (sample)")
            progress.count("alliance", "accounts", 1000)
        assert out.getvalue() == "  - collecting alliance (sample)\n"
