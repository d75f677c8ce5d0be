"""update_history and the trend on small hand-made inputs: exact statuses, rates and dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from accessaudit.report.history import (
    HISTORY_SCHEMA,
    RunState,
    change_counts,
    finding_sources,
    update_history,
)
from accessaudit.report.trend import TrendPoint, point, projection, trend_context, trend_frame

T0 = datetime(2026, 11, 1, tzinfo=UTC)
AD, APP = "ad:x", "csv:app"


def history(rows: list[tuple[str, str, list[str]]]) -> pl.DataFrame:
    """(key, status, sources) rows first seen at T0."""
    return pl.DataFrame(
        [
            {
                "finding_key": k,
                "rule_id": "r",
                "severity": "high",
                "status": s,
                "finding_status": None,
                "first_seen": T0,
                "first_seen_run": "run0",
                "last_seen": T0,
                "last_seen_run": "run0",
                "resolved_run": "run0" if s in ("resolved", "closed") else None,
                "sources": src,
                "account_id": None,
                "group_id": None,
                "member_group_id": None,
            }
            for k, s, src in rows
        ],
        schema=HISTORY_SCHEMA,
        orient="row",
    )


def findings(keys: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    f = pl.DataFrame(
        {
            "finding_key": keys,
            "rule_id": ["r"] * len(keys),
            "severity": ["high"] * len(keys),
            "status": ["open"] * len(keys),
        },
        schema=dict.fromkeys(("finding_key", "rule_id", "severity", "status"), pl.String),
    )
    sources = f.select("finding_key", sources=pl.lit([AD], pl.List(pl.String)))
    return f, sources


PREVIOUS = history(
    [
        ("a", "persisting", [AD]),
        ("b", "resolved", [AD]),
        ("c", "unknown", [APP]),
        ("d", "closed", [AD]),
        ("e", "new", [AD, APP]),
    ]
)


def state(run_id: str, day: int, complete: bool, **sources: bool) -> RunState:
    return RunState(run_id, T0 + timedelta(days=day), complete, {AD: True, **sources})


def statuses(h: pl.DataFrame) -> dict[str, str]:
    return dict(h.select("finding_key", "status").iter_rows())


def test_statuses_between_two_complete_runs() -> None:
    f, src = findings(["a", "b", "f"])
    h = update_history(
        PREVIOUS,
        state("run1", 1, True, **{APP: True}),
        f,
        src,
        state("run2", 2, True, **{APP: True}),
    )
    assert statuses(h) == {
        "a": "persisting",
        "b": "regressed",
        "c": "resolved",
        "d": "closed",
        "e": "resolved",
        "f": "new",
    }
    rows = {r["finding_key"]: r for r in h.iter_rows(named=True)}
    assert (
        rows["f"]["first_seen"] == T0 + timedelta(days=2) and rows["f"]["first_seen_run"] == "run2"
    )
    assert rows["b"]["first_seen_run"] == "run0" and rows["b"]["last_seen_run"] == "run2"
    assert rows["c"]["resolved_run"] == "run2" and rows["c"]["last_seen_run"] == "run0"
    assert rows["d"]["resolved_run"] == "run0"
    assert change_counts(h) == {
        "new": 1, "persisting": 1, "regressed": 1, "resolved": 2, "unknown": 0, "closed": 1,
    }  # fmt: skip
    assert h.schema == HISTORY_SCHEMA


def test_a_source_missing_from_a_run_resolves_nothing_of_its_own() -> None:
    """The application source is not in the current run at all (dropped from the config)."""
    f, src = findings(["a"])
    h = update_history(
        PREVIOUS, state("run1", 1, True, **{APP: True}), f, src, state("r2", 2, True)
    )
    assert statuses(h) == {"a": "persisting", "b": "closed", "c": "unknown", "d": "closed",
                           "e": "unknown"}  # fmt: skip


def test_incomplete_runs_resolve_nothing() -> None:
    f, src = findings([])
    complete, incomplete = state("p", 1, True, **{APP: True}), state("c", 2, False, **{APP: False})
    for prev, cur in ((complete, incomplete), (incomplete, complete)):
        h = update_history(PREVIOUS, prev, f, src, cur)
        assert statuses(h) == {"a": "unknown", "b": "closed", "c": "unknown", "d": "closed",
                               "e": "unknown"}  # fmt: skip


def test_first_run_is_all_new() -> None:
    f, src = findings(["x", "y"])
    h = update_history(None, None, f, src, state("r", 0, False))
    assert statuses(h) == {"x": "new", "y": "new"}


def test_finding_sources_from_accounts_and_groups() -> None:
    f = pl.DataFrame(
        {
            "finding_key": ["k1", "k2", "k3"],
            "account_id": ["u1", None, "ghost"],
            "group_id": ["g1", "g2", None],
            "member_group_id": [None, "g1", None],
            "via_group_id": [None, None, None],
        },
        schema_overrides={"via_group_id": pl.String},
    )
    accounts = pl.DataFrame({"account_id": ["u1"], "source": [APP]})
    groups = pl.DataFrame({"group_id": ["g1", "g2"], "source": [AD, AD]})
    got = dict(finding_sources(f, accounts, groups).iter_rows())
    assert got == {"k1": [AD, APP], "k2": [AD], "k3": []}


def summary(open_: int, accepted: int = 0, **changes: int) -> dict[str, object]:
    return {
        "findings": open_ + accepted,
        "open": open_,
        "accepted": accepted,
        "open_by_severity": {"critical": open_ // 10, "high": open_ - open_ // 10},
        "open_by_rule": {"r1": open_},
        "changes": changes,
    }


def manifests() -> list[dict[str, object]]:
    days = [(0, 100, True), (10, 80, True), (20, 60, True), (25, 10, False)]
    return [
        {
            "run_id": (T0 + timedelta(days=d)).strftime("%Y%m%dT%H%M%SZ"),
            "started": (T0 + timedelta(days=d)).isoformat(),
            "complete": c,
            "summary": summary(n, accepted=5, resolved=20),
        }
        for d, n, c in days
    ]


def test_projection_uses_complete_runs_only() -> None:
    points = [p for m in manifests() if (p := point(m)) is not None]
    proj = projection(points)
    assert proj is not None
    assert (proj.rate_per_day, proj.runs, proj.open_now) == (2.0, 3, 60)
    assert proj.reaches_zero == T0 + timedelta(days=50)
    assert projection(points[:1]) is None
    assert projection(points, runs=2) == projection(points[1:3], runs=2)


def _points(spec: list[tuple[timedelta, int]]) -> list[TrendPoint]:
    return [TrendPoint(f"r{i}", T0 + at, True, n, 0) for i, (at, n) in enumerate(spec)]


def test_no_projection_from_runs_seconds_apart() -> None:
    """Three complete runs 17 s apart once gave "10452.3 fewer open findings per day ... reach
    zero today" and a chart collapsed to a vertical line."""
    runs = _points([(timedelta(seconds=17 * i), 2000 - 100 * i) for i in range(3)])
    assert projection(runs) is None
    ctx = trend_context(runs, None)
    assert ctx["verdict"]["state"] == "none"
    assert ctx["verdict"]["text"] == (
        "No projection yet: it needs two complete runs at least a day apart."
    )
    assert ctx["chart"]["projection"] is None
    ticks = ctx["chart"]["x_ticks"]  # the axis shows a day, not one instant
    assert [t["label"] for t in ticks] == ["2026-11-01", "2026-11-02"]
    assert ticks[0]["x"] < ticks[1]["x"]


def test_projection_reaches_back_a_day_when_the_last_runs_share_one() -> None:
    """Eight runs on the last day and one the day before: the rate is over the day, not over
    the last minutes."""
    spec = [(timedelta(0), 300)] + [(timedelta(days=1, minutes=m), 200) for m in range(8)]
    proj = projection(_points(spec))
    assert proj is not None
    assert (proj.since, proj.runs, proj.open_now) == (T0, 9, 200)
    assert proj.rate_per_day == pytest.approx(100 / (1 + 7 / 1440))


def test_date_ticks_are_days_then_weeks() -> None:
    """Two runs 13 days apart, falling 4 open findings: zero projected on day 29.25, so the
    axis spans 30 days and is labelled weekly from the first run's day."""
    ctx = trend_context(_points([(timedelta(0), 9), (timedelta(days=13), 5)]), None)
    ticks = ctx["chart"]["x_ticks"]
    assert [t["label"] for t in ticks] == [
        "2026-11-01", "2026-11-08", "2026-11-15", "2026-11-22", "2026-11-29",
    ]  # fmt: skip
    xs = [t["x"] for t in ticks]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    assert (ticks[0]["anchor"], ticks[1]["anchor"]) == ("start", "middle")


def test_trend_context_chart_and_verdict() -> None:
    points = [p for m in manifests() if (p := point(m)) is not None]
    target = (T0 + timedelta(days=40)).date()
    ctx = trend_context(points, target)
    chart = ctx["chart"]
    assert [p["value"] for p in chart["open"]["points"]] == [100, 80, 60, 10]
    assert [p["cls"] for p in chart["open"]["points"]][-1] == "pt pt-open pt-incomplete"
    assert [p["value"] for p in chart["accepted"]["points"]] == [5, 5, 5, 5]
    # x runs from day 0 to day 50 (the projected zero, later than the target)
    assert chart["open"]["points"][0]["x"] == chart["left"]
    assert (
        chart["projection"]["x2"] == chart["right"] and chart["projection"]["y2"] == chart["bottom"]
    )
    assert chart["target"]["label"] == "target 2026-12-11"
    assert chart["y_ticks"][-1]["label"] == "100"
    assert ctx["verdict"]["state"] == "late"
    assert ctx["verdict"]["reaches_zero"] == "2026-12-21"
    assert "10 day(s) after the target date 2026-12-11" in ctx["verdict"]["text"]
    assert [r["open"] for r in ctx["rows"]] == [10, 60, 80, 100]  # newest first
    assert trend_context(points, date(2027, 1, 1))["verdict"]["state"] == "on-track"
    frame = trend_frame(points)
    totals = frame.filter(pl.col("dimension") == "total")
    assert totals["open"].to_list() == [100, 80, 60, 10]
    assert frame.filter(pl.col("dimension") == "change")["count"].to_list() == [20] * 4


def test_summaries_written_before_the_history_are_read_as_open_counts() -> None:
    p = point(
        {
            "run_id": "20261101T000000Z",
            "complete": True,
            "summary": {"findings": 7, "open": 7, "by_severity": {"high": 7}, "by_rule": {"r": 7}},
        }
    )
    assert p is not None
    assert (p.started, p.open, p.accepted, dict(p.open_by_severity)) == (T0, 7, 0, {"high": 7})
    assert point({"run_id": "x", "complete": True}) is None
