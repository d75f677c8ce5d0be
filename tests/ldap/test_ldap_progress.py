"""LDAP collection progress: the pipeline hands the connector a callback called after every page."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest
from support.servers.seeded import SeededSlapd

from accessaudit.pipeline.collect import collect_one


def test_pages_are_counted_up_to_each_unit(
    slapd: SeededSlapd, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: dict[str, list[int]] = defaultdict(list)
    got = collect_one(
        slapd.source(monkeypatch, page_size=400),
        now=datetime.now(UTC),
        counts=lambda unit, n: calls[unit].append(n),
    )
    assert got.complete, got.units
    for unit in ("accounts", "groups"):
        [proof] = [u for u in got.units if u.name == unit]
        assert calls[unit] == sorted(calls[unit]) and calls[unit][-1] == proof.count
    assert len(calls["accounts"]) >= 2  # more than one page of 400
    assert calls["accounts"][0] == 400
