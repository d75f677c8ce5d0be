"""The emulator's latency and throttling models, and the connector's AIMD pace (no timings)."""

from __future__ import annotations

import pytest

from accessaudit.graphemu.latency import (
    QUOTA,
    Bucket,
    Delays,
    Latency,
    Throttle,
    app_of,
    request_cost,
    tenant_size,
)
from accessaudit.transport.graph_pool import Aimd


@pytest.mark.parametrize(
    ("method", "target", "cost"),
    [
        ("GET", "/v1.0/users?$top=999", 2),
        ("GET", "/v1.0/users?$select=id,displayName&$top=999", 1),
        ("GET", "/v1.0/users/delta?$select=id", 1),
        ("GET", "/v1.0/groups?$select=id&$top=999", 1),  # groups is not listed: 1, never < 1
        ("GET", "/v1.0/groups/g1/members?$top=999", 3),
        ("GET", "/v1.0/groups/g1/members?$select=id&$top=999", 2),
        ("GET", "/v1.0/groups/g1/members?$select=id&$top=5", 1),
        ("GET", "/v1.0/groups/g1/transitiveMembers", 5),
        ("GET", "/v1.0/groups/g1/transitiveMembers?$expand=manager", 6),
        ("GET", "/v1.0/groups/g1/owners?$select=id&$top=999", 1),
        ("GET", "/v1.0/servicePrincipals/s1/appRoleAssignments", 2),
        ("GET", "/v1.0/servicePrincipals/s1/appRoleAssignedTo?$top=999", 1),
        ("GET", "/v1.0/users/u1/memberOf", 2),
        ("GET", "/v1.0/me/transitiveMemberOf", 2),
        ("GET", "/v1.0/subscribedSkus", 3),
        ("GET", "/v1.0/roleManagement/directory/roleAssignments", 1),
        ("POST", "/v1.0/directoryObjects/getByIds", 3),
        ("POST", "/v1.0/users/u1/checkMemberGroups", 4),
        ("POST", "/v1.0/groups", 1),
    ],
)
def test_request_costs_follow_the_documented_table(method, target, cost):
    assert request_cost(method, target) == cost


def test_tenant_sizes_and_quotas():
    sizes = [tenant_size(n) for n in (0, 49, 50, 500, 501, 100_000)]
    assert sizes == ["S", "S", "M", "M", "L", "L"]
    assert QUOTA == {"S": 3500, "M": 5000, "L": 8000}
    assert Throttle().capacity(20) == 3500
    assert Throttle().capacity(100_000) == 8000
    assert Throttle(size="M").capacity(100_000) == 5000
    assert Throttle(quota=40).capacity(100_000) == 40
    assert Throttle().budget(100_000, 30.0) == 8000 + 30 * 800
    with pytest.raises(ValueError, match="tenant size"):
        Throttle(size="XL")
    with pytest.raises(ValueError, match="quota"):
        Throttle(quota=0)


def test_bucket_pays_refills_and_says_when():
    bucket = Bucket(capacity=100.0, tokens=100.0, at=0.0, window=10.0)  # 10 RU/s
    assert bucket.take(60, now=0.0) is None
    assert bucket.tokens == 40.0
    assert bucket.take(50, now=0.0) == pytest.approx(1.0)  # 10 RU short at 10 RU/s
    assert bucket.tokens == 40.0  # a refused request costs nothing
    assert bucket.take(50, now=1.0) is None
    assert bucket.tokens == pytest.approx(0.0)
    assert bucket.take(1, now=1000.0) is None
    assert bucket.tokens == 99.0  # never above capacity


def test_throttle_answers_with_headers_per_app_and_tenant():
    now = [0.0]
    throttle = Throttle(quota=5, window=1.0, clock=lambda: now[0])  # 5 RU/s
    users = lambda: 10  # noqa: E731
    first = throttle.charge("t1", "app", users, "GET", "/v1.0/groups/g/members?$top=999")
    assert (first.cost, first.retry_after) == (3, None)
    assert first.headers == {"x-ms-resource-unit": "3"}
    second = throttle.charge("t1", "app", users, "GET", "/v1.0/groups/g/members?$top=999")
    assert second.retry_after == pytest.approx(0.2)  # 2 RU left, 1 short at 5 RU/s
    assert second.headers == {
        "Retry-After": "0.200",
        "x-ms-throttle-scope": "Tenant_Application/ReadWrite/app/t1",
        "x-ms-throttle-information": "ResourceUnitLimitExceeded",
    }
    # another app in the same tenant has a bucket of its own
    other = throttle.charge("t1", "app2", users, "GET", "/v1.0/groups?$select=id")
    assert other.retry_after is None
    near = throttle.charge("t1", "app", users, "GET", "/v1.0/groups?$select=id")
    assert near.headers == {"x-ms-resource-unit": "1"}  # 80% used: not past 0.8
    full = throttle.charge("t1", "app", users, "GET", "/v1.0/groups?$select=id")
    assert full.headers == {"x-ms-resource-unit": "1", "x-ms-throttle-limit-percentage": "1.0"}
    assert (throttle.charged, throttle.refused, throttle.units) == (4, 1, 6)


def test_delays_are_seeded_and_add_the_items():
    model = Latency(ms=100, jitter_ms=20, item_ms=2, seed=7)
    one, two = Delays(model), Delays(model)
    draws = [one.delay(items) for items in (0, 20, 5)]
    assert draws == [two.delay(items) for items in (0, 20, 5)]
    assert 0.08 <= draws[0] <= 0.12
    assert 0.12 <= draws[1] <= 0.16  # + 20 items x 2 ms
    slept: list[float] = []
    Delays(Latency(ms=50), sleep=slept.append).wait(3)
    assert slept == [0.05]
    Delays(Latency(), sleep=slept.append).wait()
    assert slept == [0.05]  # no delay, no sleep
    with pytest.raises(ValueError, match="jitter_ms <= ms"):
        Latency(ms=10, jitter_ms=20)


def test_app_of_reads_the_appid_claim_only():
    import base64
    import json

    payload = base64.urlsafe_b64encode(json.dumps({"appid": "a-1"}).encode()).rstrip(b"=")
    assert app_of(f"Bearer h.{payload.decode()}.s") == "a-1"
    assert app_of("Bearer not-a-jwt") == ""
    assert app_of("") == ""


def test_aimd_halves_once_per_round_trip_and_grows_after_a_run():
    pace = Aimd(4, run=3)
    assert pace.limit == 4
    pace.throttled(sent_at=float("inf"))  # sent after any cut
    assert (pace.limit, pace.cuts) == (2, 1)
    pace.throttled(sent_at=float("-inf"))  # sent before that cut: no second cut
    assert (pace.limit, pace.cuts) == (2, 1)
    pace.throttled(sent_at=float("inf"))
    pace.throttled(sent_at=float("inf"))
    assert (pace.limit, pace.lowest) == (1, 1)  # never below one
    for _ in range(3):
        pace.succeeded()
    assert pace.limit == 2
    for _ in range(2 * 3 + 3):
        pace.succeeded()
    assert pace.limit == 4  # never above the maximum
    with pytest.raises(ValueError):
        Aimd(0)
