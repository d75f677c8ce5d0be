"""Retention policy: exact runs kept and deleted; the newest (complete) run always kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from accessaudit.store.retention import select_for_deletion
from accessaudit.store.runs import RunInfo

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def runs(*spec: tuple[int, bool]) -> list[RunInfo]:
    """(day, complete) -> runs started at T0 + day."""
    out = []
    for day, complete in spec:
        started = T0 + timedelta(days=day)
        run_id = started.strftime("%Y%m%dT%H%M%SZ")
        out.append(
            RunInfo(run_id, Path(run_id), {"started": started.isoformat(), "complete": complete})
        )
    return out


def deleted(rs: list[RunInfo], now_day: int, **policy: int | None) -> list[int]:
    kw = {"keep_runs": None, "keep_days": None, **policy}
    gone = select_for_deletion(rs, now=T0 + timedelta(days=now_day), **kw)
    return [(datetime.strptime(r.run_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) - T0).days
            for r in gone]  # fmt: skip


ALL_COMPLETE = [(0, True), (1, True), (2, True), (3, True), (4, True)]


@pytest.mark.parametrize(
    ("spec", "policy", "expected"),
    [
        (ALL_COMPLETE, {}, []),  # no policy: nothing deleted
        (ALL_COMPLETE, {"keep_runs": 2}, [0, 1, 2]),
        (ALL_COMPLETE, {"keep_runs": 10}, []),
        (ALL_COMPLETE, {"keep_days": 2}, [0, 1]),  # now = day 4: days 2, 3, 4 are kept
        (ALL_COMPLETE, {"keep_runs": 1, "keep_days": 2}, [0, 1]),  # kept if either keeps it
        (ALL_COMPLETE, {"keep_runs": 4, "keep_days": 1}, [0]),
        # the newest complete run (day 1) survives any policy, as does the newest run
        ([(0, True), (1, True), (2, False), (3, False), (4, False)], {"keep_runs": 1}, [0, 2, 3]),
        ([(0, True), (1, True), (2, False), (3, False)], {"keep_days": 1}, [0]),
        ([(0, False), (1, False)], {"keep_runs": 1}, [0]),  # no complete run at all
        ([(0, True)], {"keep_runs": 1, "keep_days": 1}, []),
    ],
)
def test_policy(spec: list[tuple[int, bool]], policy: dict[str, int], expected: list[int]) -> None:
    assert deleted(runs(*spec), now_day=max(d for d, _ in spec), **policy) == expected
