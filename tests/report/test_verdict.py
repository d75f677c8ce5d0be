"""The first screen: a verdict an officer can repeat, and dates a person reads."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from accessaudit.report.objects import Objects
from accessaudit.report.rows import FINDING_COLUMNS, F
from accessaudit.report.verdict import human_span, human_time, plural, verdict

NAMES = {"wmp": "West Mercia Police", "warks": "Warwickshire Police"}


def test_human_dates() -> None:
    assert human_time("2026-12-07T23:16:26.817956+00:00") == "7 Dec 2026, 23:16 UTC"
    assert human_span("2026-12-07T23:16:18.29+00:00", "2026-12-07T23:16:26.81+00:00") == (
        "7 Dec 2026, 23:16:18 to 23:16:26 UTC (8 s)"
    )
    assert human_span("2026-12-07T23:50:00+00:00", "2026-12-08T00:12:30+00:00") == (
        "7 Dec 2026, 23:50:00 to 8 Dec 2026, 00:12:30 UTC (22 min 30 s)"
    )
    assert human_time("garbage") == "garbage"  # shown as it is, never a crash
    assert (plural(1, "source"), plural(4, "source"), plural(1200, "entry", "entries")) == (
        "1 source",
        "4 sources",
        "1,200 entries",
    )


def _objects() -> Objects:
    accounts = pl.DataFrame(
        {"account_id": ["k1", "k2", "k3", "w1"], "display_name": ["K1", "K2", "K3", "W1"]}
    )
    groups = pl.DataFrame({"group_id": ["da", "fire"], "name": ["Domain Admins", "Firearms"]})
    return Objects(accounts, groups, {"k1", "k2", "k3", "w1", "da", "fire"})


def _row(objs: Objects, principal: str, resource: str, severity: str, **over: Any) -> list[Any]:
    row: list[Any] = [None] * len(FINDING_COLUMNS)
    row[F["principal"]] = objs.index[principal]
    row[F["resource"]] = objs.index[resource]
    row[F["severity"]] = severity
    row[F["status"]] = over.get("status", "open")
    row[F["principal_org"]] = over.get("p_org", "warks")
    row[F["resource_org"]] = over.get("r_org", "wmp")
    return row


def test_red_names_the_worst_case_counted() -> None:
    objs = _objects()
    rows = [
        _row(objs, "k1", "da", "critical"),
        _row(objs, "k2", "da", "critical"),
        _row(objs, "k2", "da", "critical"),  # the same account twice counts once
        _row(objs, "k3", "fire", "critical"),
        _row(objs, "w1", "fire", "high", p_org="wmp", r_org="warks"),
        _row(objs, "k3", "da", "critical", status="accepted"),
    ]
    v = verdict(rows, objs, NAMES, complete=True)
    assert v == {
        "state": "red",
        "headline": ("Separation not achieved: 4 critical findings and 1 high finding open."),
        "detail": "Worst: 2 Warwickshire Police accounts reach Domain Admins (West Mercia Police).",
    }


@pytest.mark.parametrize(
    ("severities", "complete", "state", "headline"),
    [
        (["medium", "low"], True, "amber", "Separation nearly achieved: 1 medium finding and "
         "1 low finding open."),
        ([], False, "amber", "Separation not proven: no open finding, but a source was not "
         "collected completely."),
        ([], True, "green", "Separation achieved: no open cross-force access in a complete "
         "collection."),
    ],
)  # fmt: skip
def test_amber_and_green(severities: list[str], complete: bool, state: str, headline: str) -> None:
    objs = _objects()
    rows = [_row(objs, "k1", "fire", s) for s in severities]
    v = verdict(rows, objs, NAMES, complete=complete)
    assert (v["state"], v["headline"]) == (state, headline)


def test_an_incomplete_run_says_more_may_exist() -> None:
    objs = _objects()
    v = verdict([_row(objs, "k1", "da", "critical")], objs, NAMES, complete=False)
    assert v["state"] == "red"
    assert v["detail"] == (
        "Worst: 1 Warwickshire Police account reaches Domain Admins (West Mercia Police). "
        "The collection was incomplete: more may exist."
    )
