"""Several $batch requests in flight: the same tables as one at a time, under latency, the
throttling model (per-item 429s) and injected 429s; the time budget still holds."""

from __future__ import annotations

import threading
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal
from support.entra_data import CLIENT_ID, ROLES, SECRET, TENANT, oid

from accessaudit.connectors.entra.collect import collect
from accessaudit.graphemu import Fault, GraphEmulator, Tenant
from accessaudit.graphemu.latency import Latency, Pace, Throttle

GROUPS = 45


def build(emu: GraphEmulator) -> tuple[Tenant, set[tuple[str, str]], set[tuple[str, str]]]:
    """45 groups of 0-8 members (one of 1,200: two pages), owners on every third, two
    applications; returns the tenant and its true (group, member) and (group, owner) pairs."""
    t = emu.add_tenant(Tenant(TENANT))
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=ROLES)
    users = [
        t.add_user(id=oid(f"u{n}"), userPrincipalName=f"u{n}@t", displayName=f"u{n}")
        for n in range(1200)
    ]
    members: set[tuple[str, str]] = set()
    owners: set[tuple[str, str]] = set()
    for g in range(GROUPS):
        gid = t.add_group(id=oid(f"g{g}"), displayName=f"g{g}")
        chosen = users if g == 7 else users[g % 9 : g % 9 + g % 9]
        for u in chosen:
            t.add_member(gid, u)
            members.add((gid, u))
        if g % 3 == 0:
            t.add_owner(gid, users[g])
            owners.add((gid, users[g]))
    for s in range(2):
        sp = t.add_service_principal(f"app{s}", ["Reader"], id=oid(f"sp{s}"))
        t.assign_app_role(users[s], sp, t.objects[sp]["appRoles"][0]["id"])
    return t, members, owners


def _in_flight(emu: GraphEmulator) -> list[int]:
    """Count the $batch requests the emulator is answering at once; [peak]."""
    peak = [0]
    now = [0]
    lock = threading.Lock()
    dispatch = emu._dispatch

    def counted(h: Any) -> None:
        batch = h.path == "/v1.0/$batch"
        if batch:
            with lock:
                now[0] += 1
                peak[0] = max(peak[0], now[0])
        try:
            dispatch(h)
        finally:
            if batch:
                with lock:
                    now[0] -= 1

    emu._dispatch = counted  # type: ignore[method-assign]
    return peak


def test_concurrent_collection_equals_sequential_under_throttling(emu, make_cfg):
    _, members, owners = build(emu)
    sequential = collect(make_cfg(max_concurrency=1, sign_in_activity=False))
    assert sequential.complete

    # real-world pace: latency with jitter, a small fast bucket (members cost 2 RU: the queue
    # needs ~110 RU, the bucket holds 30 and refills 60 RU/s), and injected per-item 429s
    throttle = Throttle(quota=30, window=0.5)
    emu.pace = Pace(Latency(ms=20, jitter_ms=10, item_ms=0.5, seed=3), throttle)
    emu.faults.add(Fault(match="/members", where="batch", status=429, retry_after="0.05", times=6))
    emu.clear_log()
    peak = _in_flight(emu)
    concurrent = collect(make_cfg(max_concurrency=4, sign_in_activity=False))

    assert concurrent.complete, [u for u in concurrent.units if not u.complete]
    items = emu.requests("batch-item")
    assert sum(r.status == 429 for r in items) > 6  # the model's and the injected ones
    assert throttle.refused > 0
    assert peak[0] >= 2  # envelopes really overlapped
    for name in ("accounts", "groups", "memberships", "grants"):
        assert_frame_equal(concurrent.tables[name], sequential.tables[name])
    assert concurrent.units == sequential.units  # same units, proofs and counts, same order
    # and both equal the truth built above
    got = set(concurrent.tables["memberships"].select("group_id", "member_id").iter_rows())
    assert got == members
    owned = concurrent.tables["grants"].filter(pl.col("resource_kind") == "ownership")
    assert set(owned.select("resource_id", "principal_id").iter_rows()) == owners
    assert concurrent.tables["accounts"].height == 1200  # the applications hold no role: no account
    assert concurrent.tables["memberships"].height == len(members)


def test_concurrent_listings_stop_at_the_time_budget(emu, make_cfg):
    build(emu)
    # a bucket that refills 0.03 RU/s: every throttled item's Retry-After outlasts the budget
    emu.pace = Pace(throttle=Throttle(quota=30, window=1000.0))

    result = collect(make_cfg(max_concurrency=4, time_budget=5.0, sign_in_activity=False))

    units = {u.name: u for u in result.units}
    assert not units["members"].complete
    reasons = {u.detail for u in result.units if u.name.startswith("members:")}
    # throttled ones: "Retry-After ... exceeds the remaining time budget"; the ones still
    # queued then: "time budget of 5 s exhausted"
    assert reasons and all("time budget" in r for r in reasons)
    assert any("exceeds the remaining time budget" in r for r in reasons)
    alive = [t.name for t in threading.enumerate() if t.name.startswith("graph-")]
    assert alive == []  # no worker outlives the collection


def test_a_dropped_connection_fails_its_listings_cleanly(emu, make_cfg):
    build(emu)
    emu.faults.add(Fault(match="/members", where="batch", action="drop", times=None))

    result = collect(make_cfg(max_concurrency=4, max_retries=1, sign_in_activity=False))

    units = {u.name: u for u in result.units}
    assert units["users"].complete and units["groups"].complete
    assert not units["members"].complete
    reasons = {u.detail for u in result.units if u.name.startswith("members:")}
    assert reasons and all("connection to 127.0.0.1" in r for r in reasons)
    assert [t.name for t in threading.enumerate() if t.name.startswith("graph-")] == []
