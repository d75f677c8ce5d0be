"""Throttling, dropped connections, expired tokens, missing permissions: each fault either is
retried to a complete collection or ends in an incomplete unit with its reason."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from polars.testing import assert_frame_equal
from support.entra_data import CLIENT_ID, SECRET, TENANT, canonical, oid

from accessaudit.connectors.entra.collect import collect
from accessaudit.errors import ConnectError
from accessaudit.graphemu import READ_ROLES, Fault
from accessaudit.transport.graph_http import parse_retry_after


def units(result):
    return {u.name: u for u in result.units}


def statuses(emu, kind, contains):
    return [r.status for r in emu.requests(kind) if contains in r.target]


def assert_same(result, expected):
    for name in ("accounts", "groups", "memberships", "grants"):
        assert_frame_equal(canonical(result.tables, name), canonical(expected, name))


@pytest.mark.parametrize(
    ("retry_after", "status"),
    [("1", 503), ("0.05", 429), (None, 429), ("past-date", 429), ("0", 504)],
    ids=["integer", "fractional", "absent", "http-date", "gateway-timeout"],
)
def test_throttled_listing_is_retried_to_completion(emu, cfg, small_tables, retry_after, status):
    if retry_after == "past-date":
        retry_after = format_datetime(datetime.now(UTC) - timedelta(seconds=5), usegmt=True)
    if retry_after == "1":
        retry_after = "0"  # an integer value, kept at zero to keep the suite fast
    emu.faults.add(Fault(match="/v1.0/users?", status=status, retry_after=retry_after, times=2))

    result = collect(cfg)

    assert result.complete
    assert statuses(emu, "graph", "/v1.0/users?")[:3] == [status, status, 200]
    assert_same(result, small_tables)


def test_retry_after_parsing():
    now = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("10") == 10.0
    assert parse_retry_after("2.128") == 2.128
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("Sun, 01 Nov 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Sun, 01 Nov 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None


def test_retry_after_beyond_the_budget_marks_the_unit_incomplete(emu, make_cfg, tenant):
    emu.faults.add(Fault(match="/v1.0/servicePrincipals?", status=429, retry_after="120"))

    result = collect(make_cfg(time_budget=20))

    got = units(result)
    assert not result.complete
    assert not got["service-principals"].complete
    assert re.fullmatch(
        r"HTTP 429 TooManyRequests: Retry-After 120 s exceeds the remaining time budget "
        r"\(\d+\.\d s of 20 s\)",
        got["service-principals"].detail,
    )
    assert got["app-role-assignments"].detail == "service principals could not be listed"
    assert got["service-principal-owners"].detail == "service principals could not be listed"
    incomplete = sorted(n for n, u in got.items() if not u.complete)
    assert incomplete == ["app-role-assignments", "service-principal-owners", "service-principals"]
    assert statuses(emu, "graph", "/v1.0/servicePrincipals?") == [429]  # no wait, no retry


def test_retries_are_bounded(emu, make_cfg, tenant):
    emu.faults.add(Fault(match="/v1.0/users?", status=503, retry_after="0", times=None))

    result = collect(make_cfg(max_retries=2))

    got = units(result)
    assert got["users"].detail == (
        "HTTP 503 serviceNotAvailable: The service is temporarily unavailable. "
        "(gave up after 2 retries)"
    )
    assert statuses(emu, "graph", "/v1.0/users?") == [503, 503, 503]
    # no user; the service principal that is a principal comes from its own listing
    assert result.tables["accounts"]["kind"].to_list() == ["service"]
    assert not result.complete


def test_item_level_429_inside_batch_is_retried(emu, cfg, small_tables):
    emu.faults.add(Fault(match="/members", where="batch", status=429, retry_after="0.05", times=3))

    result = collect(cfg)

    assert result.complete
    assert statuses(emu, "batch-item", "/members").count(429) == 3
    assert_same(result, small_tables)


def test_item_level_retry_after_beyond_budget_fails_that_group_only(emu, make_cfg, tenant):
    group = oid("Shared-Team")
    emu.faults.add(
        Fault(match=f"/groups/{group}/owners", where="batch", status=429, retry_after="600")
    )

    result = collect(make_cfg(time_budget=20))

    got = units(result)
    assert not got["owners"].complete
    assert got["owners"].detail == "1 group(s) incomplete, see owners:<group id>"
    assert got[f"owners:{group}"].detail.startswith(
        "HTTP 429 TooManyRequests: Retry-After 600 s exceeds the remaining time budget"
    )
    assert [n for n, u in got.items() if not u.complete] == ["owners", f"owners:{group}"]


def test_dropped_connection_mid_page_is_retried(emu, cfg, small_tables):
    emu.faults.add(Fault(match="/v1.0/users?", action="drop", skip=1))

    result = collect(cfg)

    assert result.complete
    users = [r.target for r in emu.requests("graph") if r.target.startswith("/v1.0/users?")]
    # signInActivity caps pages at 500 users: 3 pages, the cut second one asked twice
    assert len(users) == 4 and users[1] == users[2]
    assert_same(result, small_tables)


def test_dropped_batch_envelope_is_retried(emu, cfg, small_tables):
    emu.faults.add(Fault(match="/v1.0/$batch", action="drop", where="top"))

    result = collect(cfg)

    assert result.complete
    assert_same(result, small_tables)


def test_expired_page_token_restarts_the_listing(emu, make_cfg, tenant, small_tables):
    emu.faults.add(Fault(match="/v1.0/users?", action="expired-page-token", where="top", skip=1))

    result = collect(make_cfg(page_size=400))

    got = units(result)
    assert got["users"].detail == (
        "no @odata.nextLink after 4 page(s), restarted 1x after expired page tokens"
    )
    assert statuses(emu, "graph", "/v1.0/users?") == [200, 400, 200, 200, 200, 200]
    assert_same(result, small_tables)


def test_expired_page_token_inside_batch_restarts_that_group(emu, cfg, small_tables):
    bulk = oid("All-Bulk")
    emu.faults.add(
        Fault(match=f"/groups/{bulk}/members", action="expired-page-token", where="batch", skip=1)
    )

    result = collect(cfg)

    assert result.complete
    targets = [r for r in emu.requests("batch-item") if f"/groups/{bulk}/members" in r.target]
    assert [r.status for r in targets] == [200, 400, 200, 200]
    assert "$skiptoken" not in targets[2].target  # restarted from page 1
    assert_same(result, small_tables)


def test_access_token_expiring_mid_run_is_refreshed(emu, cfg, small_tables):
    emu.faults.add(Fault(match="/roleManagement/directory/roleAssignments", action="expire-token"))

    result = collect(cfg)

    assert result.complete
    assert len(emu.requests("token")) == 2
    assert statuses(emu, "graph", "/roleAssignments") == [401, 200]
    assert_same(result, small_tables)


def test_access_token_expiring_inside_batch_is_refreshed(emu, cfg, small_tables):
    emu.faults.add(Fault(match="/owners", where="batch", action="expire-token"))

    result = collect(cfg)

    assert result.complete
    assert len(emu.requests("token")) == 2
    assert_same(result, small_tables)


def test_401_after_refresh_marks_the_unit_incomplete(emu, cfg):
    emu.faults.add(Fault(match="/v1.0/servicePrincipals?", status=401, times=None))

    result = collect(cfg)

    got = units(result)
    assert got["service-principals"].detail == (
        "HTTP 401 InvalidAuthenticationToken: Access token has expired or is not yet valid. "
        "(after token refresh)"
    )
    assert not result.complete
    assert sorted(n for n, u in got.items() if not u.complete) == [
        "app-role-assignments",
        "service-principal-owners",
        "service-principals",
    ]
    assert len(emu.requests("token")) == 2


def test_missing_permission_skips_the_unit_without_asking(emu, make_cfg, tenant):
    roles = [r for r in READ_ROLES if r != "Application.Read.All"]
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=roles)

    result = collect(make_cfg())

    got = units(result)
    reason = "the token lacks Application.Read.All (grant it and admin consent)"
    assert got["service-principals"].detail == reason
    assert got["app-role-assignments"].detail == reason
    assert got["service-principal-owners"].detail == reason
    assert not [r for r in emu.requests("wire") if "servicePrincipals" in r.target]
    assert not result.complete
    assert result.tables["grants"].filter(resource_kind="app-role").height == 0
    # no application rows at all, so no owners of one: never an empty list taken as complete
    assert result.tables["groups"].filter(kind="app-role").height == 0


def test_403_from_graph_marks_the_unit_incomplete(emu, cfg):
    emu.faults.add(Fault(match="/roleAssignments", status=403, times=None))

    result = collect(cfg)

    got = units(result)
    assert got["role-assignments"].detail == (
        "HTTP 403 Authorization_RequestDenied: Insufficient privileges to complete the operation."
    )
    assert [n for n, u in got.items() if not u.complete] == ["role-assignments"]


def test_limited_information_members_make_the_group_incomplete(emu, make_cfg, tenant):
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=READ_ROLES)  # no OrgContact.Read.All

    result = collect(make_cfg())

    group = oid("WMP-Cloud")
    got = units(result)
    assert [n for n, u in got.items() if not u.complete] == ["members", f"members:{group}"]
    assert got[f"members:{group}"].detail == (
        "1 member(s) returned with limited information (orgContact): grant OrgContact.Read.All"
    )
    edge = result.tables["memberships"].filter(member_id=oid("contact-1"))
    assert edge.select("group_id", "member_kind").rows() == [(group, "foreign")]


def test_hidden_membership_needs_member_read_hidden(emu, make_cfg, tenant):
    group = oid("Shared-Team")
    tenant.objects[group]["visibility"] = "HiddenMembership"

    blocked = collect(make_cfg())
    emu.register_app(
        TENANT,
        CLIENT_ID,
        secret=SECRET,
        roles=[*READ_ROLES, "OrgContact.Read.All", "Member.Read.Hidden"],
    )
    allowed = collect(make_cfg())

    # Graph answers 200 with the members left out; the connector knows the group is hidden
    assert units(blocked)[f"members:{group}"].detail == (
        "hidden membership: grant Member.Read.Hidden to read its members"
    )
    assert blocked.tables["memberships"].filter(group_id=group).height == 0
    assert allowed.complete
    assert allowed.tables["memberships"].filter(group_id=group).height == 2


def test_unreachable_graph_is_a_connect_error(emu, make_cfg, tenant):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    emu.resources.add(f"https://127.0.0.1:{port}")  # the token is for that resource
    cfg = make_cfg(graph_url=f"https://127.0.0.1:{port}/v1.0", max_retries=1)

    with pytest.raises(ConnectError) as err:
        collect(cfg)

    assert err.value.message == (
        f"entra:{TENANT}: cannot reach Microsoft Graph at https://127.0.0.1:{port}/v1.0: "
        "[Errno 111] Connection refused"
    )
    assert "graph_url" in err.value.hint
