"""The trend over all runs, built only from stored run summaries, and the burn-down chart.

Every run's ``manifest.json`` carries a ``summary`` (open and accepted findings by severity and
by rule, and the history's change counts; open counts the unknown findings too, see
:data:`~accessaudit.report.history.OPEN_DEFINITION`); runs deleted by retention keep theirs in
``pruned-runs.jsonl``. The trend is read from those and nothing else, so it is reproducible
from the stored runs alone (even after retention deletes some) and cheap: no run's tables are
opened.

The projection is deliberately simple and explainable: over the last :data:`PROJECTION_RUNS`
*complete* runs (reaching back to the latest complete run a day or more before the last, when
those span less than a day), the rate is (open findings at the first of them - open findings at
the last) / days between them; if that rate is positive, the open findings reach zero after
``open_now / rate`` more days. Complete runs less than a day apart give no projection.
Incomplete runs are drawn (hollow points) but never used for the rate: their counts may be low
only because something was not collected.

:func:`chart` returns plain numbers (integer pixel coordinates) for the template's inline SVG.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import polars as pl

from accessaudit.model import SEVERITY_RANK, Severity, _schema
from accessaudit.store.retention import pruned_entries, run_started
from accessaudit.store.runs import RunStore

#: Complete runs the burn-down rate is computed over.
PROJECTION_RUNS: Final = 6
#: A rate needs complete runs at least this many days apart (runs minutes apart give nonsense).
MIN_PROJECTION_DAYS: Final = 1.0
#: Date labels on the chart's x axis at most.
MAX_X_TICKS: Final = 8
#: Rows of the per-run table in the report (newest first).
TABLE_RUNS: Final = 20
#: Runs (columns) of the by-rule table in the report: the most recent ones.
RULE_RUNS: Final = 8
SEVERITIES: Final = tuple(
    s.value for s in sorted(Severity, key=lambda s: SEVERITY_RANK[s], reverse=True)
)
#: Chart size (SVG user units = CSS pixels) and the plot area inside it.
WIDTH: Final = 760
HEIGHT: Final = 280
LEFT, RIGHT, TOP, BOTTOM = 56, 740, 16, 244
#: A projection further out than this is clipped at the chart's edge.
MAX_PROJECTION_DAYS: Final = 3 * 365


@dataclass(frozen=True)
class TrendPoint:
    run_id: str
    started: datetime
    complete: bool
    open: int
    accepted: int
    open_by_severity: Mapping[str, int] = field(default_factory=dict)
    accepted_by_severity: Mapping[str, int] = field(default_factory=dict)
    open_by_rule: Mapping[str, int] = field(default_factory=dict)
    changes: Mapping[str, int] = field(default_factory=dict)
    #: None for summaries written before accepted findings were counted by rule
    accepted_by_rule: Mapping[str, int] | None = None
    pruned: bool = False


@dataclass(frozen=True)
class Projection:
    rate_per_day: float  # open findings fewer per day (negative: growing)
    runs: int  # complete runs the rate is based on
    since: datetime  # the first of them
    open_now: int
    as_of: datetime  # the last of them
    reaches_zero: datetime | None  # None when the rate is not positive


def _ints(value: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in (value or {}).items()}


def point(manifest: Mapping[str, Any], *, pruned: bool = False) -> TrendPoint | None:
    """A run's trend point from its manifest (or ledger entry); None without a summary.

    Summaries written before the history existed have only ``by_severity`` / ``by_rule`` over
    all findings: those are read as open counts.
    """
    s = manifest.get("summary")
    if not isinstance(s, Mapping) or "open" not in s:
        return None
    total = int(s.get("findings", s["open"]))
    seen_open = int(s["open"]) - int(s.get("open_unknown", 0))
    return TrendPoint(
        run_id=str(manifest.get("run_id")),
        started=run_started(manifest),
        complete=manifest.get("complete") is True,
        open=open_count(s),
        accepted=int(s.get("accepted", total - seen_open)),
        open_by_severity=_ints(s.get("open_by_severity", s.get("by_severity"))),
        accepted_by_severity=_ints(s.get("accepted_by_severity")),
        open_by_rule=_ints(s.get("open_by_rule", s.get("by_rule"))),
        changes=_ints(s.get("changes")),
        pruned=pruned,
        accepted_by_rule=_ints(s["accepted_by_rule"]) if "accepted_by_rule" in s else None,
    )


def open_count(summary: Mapping[str, Any]) -> int:
    """A stored summary's open findings by the one definition (unknown ones included).

    Summaries written before that definition (no ``open_unknown``) counted only the run's own
    findings: their history's unknown keys are added (their severity and rule breakdowns cannot
    be, and stay as stored).
    """
    n = int(summary.get("open", 0))
    if "open_unknown" not in summary:
        n += int((summary.get("changes") or {}).get("unknown", 0))
    return n


def stored_points(data_dir: Path, current: Mapping[str, Any]) -> list[TrendPoint]:
    """Every run up to and including ``current`` (the run being written or re-rendered).

    Runs after ``current`` are left out, so re-rendering an old run draws the same chart.
    """
    run_id = str(current.get("run_id"))
    points: dict[str, TrendPoint] = {}
    for entry in pruned_entries(data_dir):
        p = point(entry, pruned=True)
        if p is not None and p.run_id < run_id:
            points[p.run_id] = p
    for run in RunStore(data_dir).runs():
        if run.run_id < run_id:
            p = point({"run_id": run.run_id, **run.manifest})
            if p is not None:
                points[p.run_id] = p
    p = point(current)
    if p is not None:
        points[p.run_id] = p
    return sorted(points.values(), key=lambda x: (x.started, x.run_id))


def _days(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 86400


def projection(points: Sequence[TrendPoint], *, runs: int = PROJECTION_RUNS) -> Projection | None:
    """The recent burn-down rate and when it reaches zero; None unless two complete runs lie
    at least :data:`MIN_PROJECTION_DAYS` apart.

    The basis is the last ``runs`` complete runs; when they span less than a day (several runs
    in one day) it reaches back to the latest complete run a day or more before the last. Runs
    seconds apart would otherwise give a rate of thousands per day and a projected zero today.
    """
    complete = [p for p in points if p.complete]
    if len(complete) < 2:
        return None
    basis = complete[-runs:]
    last = basis[-1]
    if _days(basis[0].started, last.started) < MIN_PROJECTION_DAYS:
        older = [p for p in complete if _days(p.started, last.started) >= MIN_PROJECTION_DAYS]
        if not older:
            return None
        basis = [older[-1], *(p for p in complete if p.started > older[-1].started)]
    first = basis[0]
    rate = (first.open - last.open) / _days(first.started, last.started)
    zero: datetime | None = None
    if last.open == 0:
        zero = last.started
    elif rate > 0:
        zero = last.started + timedelta(days=last.open / rate)
    return Projection(rate, len(basis), first.started, last.open, last.started, zero)


def _nice_ceiling(value: int) -> int:
    """1, 2, 5, 10, 20, 50 ... at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    power = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return int(step * power)
    return 10 * power  # pragma: no cover - the loop always returns


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def chart(
    points: Sequence[TrendPoint], proj: Projection | None, target: date | None
) -> dict[str, Any]:
    """Pixel geometry of the burn-down chart (open and accepted per run, target, projection)."""
    t0 = points[0].started
    ends = [points[-1].started, t0 + timedelta(days=1)]
    if target is not None:
        ends.append(_midnight(target))
    proj_end: datetime | None = None
    if proj is not None and proj.reaches_zero is not None and proj.open_now > 0:
        proj_end = min(proj.reaches_zero, proj.as_of + timedelta(days=MAX_PROJECTION_DAYS))
        ends.append(proj_end)
    t1 = max(ends)
    ymax = _nice_ceiling(max(max(p.open for p in points), max(p.accepted for p in points), 1))
    span = _days(t0, t1)

    def x(t: datetime) -> int:
        return round(LEFT + _days(t0, t) / span * (RIGHT - LEFT))

    def y(v: float) -> int:
        return round(BOTTOM - v / ymax * (BOTTOM - TOP))

    def series(kind: str, value: str) -> dict[str, Any]:
        pts = [
            {
                "x": x(p.started),
                "y": y(getattr(p, value)),
                "value": getattr(p, value),
                "run_id": p.run_id,
                "date": p.started.date().isoformat(),
                "cls": f"pt pt-{kind}" + ("" if p.complete else " pt-incomplete"),
            }
            for p in points
        ]
        return {"points": pts, "line": " ".join(f"{q['x']},{q['y']}" for q in pts)}

    line: dict[str, Any] | None = None
    if proj is not None and proj_end is not None:
        left_open = proj.open_now - proj.rate_per_day * _days(proj.as_of, proj_end)
        line = {
            "x1": x(proj.as_of),
            "y1": y(proj.open_now),
            "x2": x(proj_end),
            "y2": y(max(0.0, left_open)),
            "clipped": proj_end != proj.reaches_zero,
        }
    ticks = sorted({0, ymax // 2, ymax}) if ymax >= 2 else [0, 1]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": RIGHT,
        "top": TOP,
        "bottom": BOTTOM,
        "open": series("open", "open"),
        "accepted": series("accepted", "accepted"),
        "y_ticks": [{"y": y(v), "label": str(v)} for v in ticks],
        "x_ticks": _date_ticks(t0, t1, x),
        "target": None
        if target is None
        else {"x": x(_midnight(target)), "label": f"target {target.isoformat()}"},
        "projection": line,
    }


def _date_ticks(t0: datetime, t1: datetime, x: Any) -> list[dict[str, Any]]:
    """Dates along the x axis: each midnight from the first run's day to the last day shown,
    every 1, 2, 7, 14, 30 ... days so that at most :data:`MAX_X_TICKS` labels fit."""
    first = _midnight(t0.date())
    days = max(1, math.ceil(_days(first, t1)))
    step = next((s for s in (1, 2, 7, 14, 30, 61, 91, 182) if days / s <= MAX_X_TICKS), 365)
    out = []
    for n in range(0, days + 1, step):
        t = first + timedelta(days=n)
        if t < t0 - timedelta(hours=12) or t > t1:
            continue
        out.append({"x": x(max(t, t0)), "label": t.date().isoformat(), "anchor": "middle"})
    if out:
        out[0]["anchor"] = "start"
        if len(out) > 1:
            out[-1]["anchor"] = "end" if out[-1]["x"] >= x(t1) - 40 else "middle"
    return out


def _verdict(proj: Projection | None, target: date | None) -> dict[str, Any]:
    if proj is None:
        return {
            "state": "none",
            "text": "No projection yet: it needs two complete runs at least a day apart.",
            "rate": "",
            "reaches_zero": "",
        }
    rate = f"{proj.rate_per_day:.1f}"
    basis = f"over the last {proj.runs} complete runs (since {proj.since.date().isoformat()})"
    if proj.open_now == 0:
        return {
            "state": "done",
            "text": "No open findings.",
            "rate": rate,
            "reaches_zero": proj.as_of.date().isoformat(),
        }
    if proj.reaches_zero is None:
        change = "flat" if proj.rate_per_day == 0 else f"up {-proj.rate_per_day:.1f} per day"
        return {
            "state": "rising",
            "text": f"Open findings are not falling ({change} {basis}): "
            "no completion date can be projected.",
            "rate": rate,
            "reaches_zero": "",
        }
    zero = proj.reaches_zero.date()
    text = f"At {rate} fewer open findings per day {basis}, they reach zero on {zero}."
    state = "projected"
    if target is not None:
        delta = (zero - target).days
        state = "on-track" if delta <= 0 else "late"
        text += (
            f" That is {-delta} day(s) before the target date {target.isoformat()}."
            if delta <= 0
            else f" That is {delta} day(s) after the target date {target.isoformat()}."
        )
    return {"state": state, "text": text, "rate": rate, "reaches_zero": zero.isoformat()}


def trend_context(points: Sequence[TrendPoint], target: date | None) -> dict[str, Any]:
    """Plain data for the officers' trend section (empty dict without points)."""
    if not points:
        return {}
    proj = projection(points)
    rows = [
        {
            "run_id": p.run_id,
            "date": p.started.date().isoformat(),
            "complete": p.complete,
            "pruned": p.pruned,
            "open": p.open,
            "accepted": p.accepted,
            "severity": [p.open_by_severity.get(s, 0) for s in SEVERITIES],
            "new": p.changes.get("new"),
            "resolved": p.changes.get("resolved"),
            "regressed": p.changes.get("regressed"),
            "unknown": p.changes.get("unknown"),
        }
        for p in reversed(points[-TABLE_RUNS:])
    ]
    return {
        "runs": len(points),
        "target_date": target.isoformat() if target else "",
        "severities": list(SEVERITIES),
        "chart": chart(points, proj, target),
        "verdict": _verdict(proj, target),
        "rows": rows,
        "by_rule": by_rule(points),
    }


def by_rule(points: Sequence[TrendPoint], runs: int = RULE_RUNS) -> dict[str, Any]:
    """Open and accepted findings per rule in each of the last ``runs`` runs (oldest first).

    A rule is listed when any of those runs has a finding of it; rows are ordered by the latest
    run's open count. ``accepted`` is None for runs whose summary predates the count.
    """
    shown = list(points[-runs:])
    rules: set[str] = set()
    for p in shown:
        rules |= {r for r, n in p.open_by_rule.items() if n}
        rules |= {r for r, n in (p.accepted_by_rule or {}).items() if n}
    latest = shown[-1] if shown else None

    def order(r: str) -> tuple[int, int, str]:
        if latest is None:
            return (0, 0, r)
        return (-latest.open_by_rule.get(r, 0), -(latest.accepted_by_rule or {}).get(r, 0), r)

    return {
        "runs": [
            {"run_id": p.run_id, "date": p.started.date().isoformat(), "complete": p.complete}
            for p in shown
        ],
        "rows": [
            {
                "rule_id": r,
                "cells": [
                    {
                        "open": p.open_by_rule.get(r, 0),
                        "accepted": None
                        if p.accepted_by_rule is None
                        else p.accepted_by_rule.get(r, 0),
                    }
                    for p in shown
                ],
            }
            for r in sorted(rules, key=order)
        ],
        "shown": len(shown),
        "total": len(points),
    }


def trend_frame(points: Iterable[TrendPoint]) -> pl.DataFrame:
    """The trend as a long table for ``trend.csv``: one row per run and dimension value."""
    rows: list[dict[str, Any]] = []
    for p in points:
        base = {"run_id": p.run_id, "started": p.started, "complete": p.complete}
        rows.append(
            {**base, "dimension": "total", "key": "", "open": p.open, "accepted": p.accepted}
        )
        for s in SEVERITIES:
            rows.append(
                {
                    **base,
                    "dimension": "severity",
                    "key": s,
                    "open": p.open_by_severity.get(s, 0),
                    "accepted": p.accepted_by_severity.get(s, 0),
                }
            )
        accepted = p.accepted_by_rule
        for r in sorted(set(p.open_by_rule) | set(accepted or {})):
            rows.append(
                {
                    **base,
                    "dimension": "rule",
                    "key": r,
                    "open": p.open_by_rule.get(r, 0),
                    "accepted": None if accepted is None else accepted.get(r, 0),
                }
            )
        for c, n in sorted(p.changes.items()):
            rows.append({**base, "dimension": "change", "key": c, "count": n})
    schema = _schema(
        {
            "run_id": pl.String,
            "started": pl.Datetime("us", "UTC"),
            "complete": pl.Boolean,
            "dimension": pl.String,
            "key": pl.String,
            "open": pl.Int64,
            "accepted": pl.Int64,
            "count": pl.Int64,  # dimension "change": findings with that history status
        }
    )
    return pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema, orient="row")
