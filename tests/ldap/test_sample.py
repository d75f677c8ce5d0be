"""The embedded sample directory, loaded into real servers and collected back unchanged."""

from __future__ import annotations

import time

import pytest
from support.servers.compare import OPENLDAP_ACCOUNT_COLUMNS as ACCOUNT_COLUMNS
from support.servers.compare import OPENLDAP_GROUP_COLUMNS as GROUP_COLUMNS
from support.servers.compare import assert_matches
from support.servers.seeded import SampleSeeded

from accessaudit.connectors.ldap.collect import collect

pytestmark = pytest.mark.servers


def test_samba_collection_equals_sample(
    sample_servers: SampleSeeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = sample_servers.ad
    started = time.monotonic()
    got = collect(seeded.source(monkeypatch), now=seeded.dataset.now)
    elapsed = time.monotonic() - started
    assert got.complete, [u for u in got.units if not u.complete]
    tables = {n: got.table(n) for n in ("accounts", "groups", "memberships", "grants")}
    assert_matches(tables, seeded.expected)
    n = tables["accounts"].height + tables["groups"].height
    print(
        f"\nsample: seeded in {seeded.idmap.timings['total']:.1f} s; collected {n} objects"
        f" in {elapsed:.2f} s ({n / elapsed:.0f}/s)"
    )


def test_slapd_collection_equals_sample(
    sample_servers: SampleSeeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = sample_servers.ldap
    got = collect(seeded.source(monkeypatch))
    assert got.complete, [u for u in got.units if not u.complete]
    tables = {n: got.table(n) for n in ("accounts", "groups", "memberships", "grants")}
    assert_matches(
        tables, seeded.expected, account_columns=ACCOUNT_COLUMNS, group_columns=GROUP_COLUMNS
    )
