"""Scheduled second runs through stored deltaLinks: exactly the changes, nothing else."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import polars as pl
from polars.testing import assert_frame_equal
from support.entra_data import AU_ID, canonical, oid

from accessaudit.connectors.entra.collect import collect
from accessaudit.graphemu import Fault

NAMES = ("accounts", "groups", "memberships", "grants")


def assert_same(a, b):
    for name in NAMES:
        assert_frame_equal(canonical(a.tables, name), canonical(b.tables, name))


def diff(before: pl.DataFrame, after: pl.DataFrame, keys: list[str]):
    """(rows only in ``after``, rows only in ``before``) over all columns."""
    return (
        after.join(before, on=after.columns, how="anti", nulls_equal=True).sort(keys),
        before.join(after, on=before.columns, how="anti", nulls_equal=True).sort(keys),
    )


def test_second_run_shows_exactly_the_removed_member_and_the_added_guest(emu, make_cfg, tenant):
    cfg = make_cfg(sign_in_activity=False)  # signInActivity is not available through delta
    first = collect(cfg)
    tenant.remove_member(oid("WMP-RES-1"), oid("awilliams"))
    guest = tenant.add_user(
        id=oid("guest-new"),
        userPrincipalName="mallory_other.org#EXT#@alliance.onmicrosoft.com",
        displayName="Mallory",
        mail="mallory@other.org",
        mailNickname="mallory_other.org#EXT#",
        userType="Guest",
        creationType="Invitation",
        externalUserState="PendingAcceptance",
    )
    tenant.add_member(oid("WMP-Cloud"), guest)
    emu.clear_log()

    second = collect(cfg, state=first.state, previous=first.tables)

    added, removed = diff(first.tables["memberships"], second.tables["memberships"], ["group_id"])
    assert added.select("group_id", "member_id", "member_kind").rows() == [
        (oid("WMP-Cloud"), guest, "account")
    ]
    assert removed.select("group_id", "member_id").rows() == [(oid("WMP-RES-1"), oid("awilliams"))]
    added, removed = diff(first.tables["accounts"], second.tables["accounts"], ["account_id"])
    assert added.select("account_id", "kind", "upn").rows() == [
        (guest, "guest", "mallory_other.org#EXT#@alliance.onmicrosoft.com")
    ]
    assert removed.height == 0
    for name in ("groups", "grants"):
        assert_frame_equal(canonical(second.tables, name), canonical(first.tables, name))
    units = {u.name: u.detail for u in second.units}
    assert units["users"] == "delta: @odata.deltaLink after 1 page(s); 1 changed, 0 removed"
    assert units["members"] == "delta: @odata.deltaLink after 1 page(s); 1 link(s) added, 1 removed"
    assert second.complete
    # incremental: no users/groups listing and no per-group member requests
    targets = [r.target for r in emu.requests("graph")] + [
        r.target for r in emu.requests("batch-item")
    ]
    assert not [t for t in targets if t.startswith(("/v1.0/users?", "/v1.0/groups?"))]
    assert not [t for t in targets if t.startswith("/groups/")]  # no per-group requests
    # administrative units are not in /groups/delta: listed in full, one members request
    assert [t for t in targets if "/members" in t] == [
        f"/directory/administrativeUnits/{AU_ID}/members?$select=id,displayName&$top=999"
    ]
    assert second.state["users_delta_link"] != first.state["users_delta_link"]
    # and the result is what a full collection of the changed tenant gives
    assert_same(second, collect(make_cfg(sign_in_activity=False, use_delta=False)))


def test_delta_pages_slices_replays_deletions_and_owners(emu, make_cfg, tenant):
    emu.api.delta_page_size = 2
    emu.api.delta_members_per_entry = 3
    emu.api.delta_replay = True
    cfg = make_cfg(sign_in_activity=False)
    first = collect(cfg)
    new_group = tenant.add_group(id=oid("New-Big"), displayName="New-Big", description="x")
    for n in range(10):
        tenant.add_member(new_group, oid(f"bulk{n:04d}"))
    tenant.add_owner(new_group, oid("cwarks"))
    tenant.delete(oid("bcloud"))  # member, owner and eligible role holder
    tenant.update(oid("ddisabled"), department="Moved", accountEnabled=True)
    tenant.update(oid("Newsletter"), displayName="Newsletter (renamed)")
    tenant.remove_owner(oid("Shared-Team"), oid("awilliams"))
    tenant.delete(oid("WMP-Cloud"), reason="deleted")

    second = collect(cfg, state=first.state, previous=first.tables)

    assert second.complete
    assert_same(second, collect(make_cfg(sign_in_activity=False, use_delta=False)))
    groups = second.tables["groups"]
    assert groups.filter(group_id=new_group)["owners"].to_list() == [[oid("cwarks")]]
    assert oid("WMP-Cloud") not in groups["group_id"].to_list()
    assert oid("bcloud") not in second.tables["memberships"]["member_id"].to_list()


def test_gone_delta_link_falls_back_to_a_full_collection(emu, make_cfg, tenant):
    cfg = make_cfg(sign_in_activity=False)
    first = collect(cfg)
    tenant.remove_member(oid("Shared-Team"), oid("cwarks"))
    for part in ("users", "groups"):
        token = first.state[f"{part}_delta_link"].split("$deltatoken=")[1]
        emu.faults.add(Fault(match=token, action="delta-reset"))
    emu.clear_log()

    second = collect(cfg, state=first.state, previous=first.tables)

    units = {u.name: u.detail for u in second.units}
    why = "full collection (deltaLink refused: HTTP 410 resyncRequired): "
    assert units["users"] == why + "no @odata.nextLink after 2 page(s)"
    assert units["groups"] == why + "no @odata.nextLink after 1 page(s)"
    assert units["members"].startswith("6 group(s): no @odata.nextLink")
    assert [r.status for r in emu.requests("graph") if "/delta?" in r.target] == [
        410,
        200,
        410,
        200,
    ]
    assert set(second.state) == set(first.state)
    assert_same(second, collect(make_cfg(sign_in_activity=False, use_delta=False)))


def aged(link: str, days: int = 8) -> str:
    """``link`` with its sync state made ``days`` old on the server's side (the emulator's
    deltatoken carries the time its state was taken), while the stored link stays recent."""
    head, token = link.split("$deltatoken=")
    state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    state["t"] -= days * 86400
    raw = base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")
    return f"{head}$deltatoken={raw}"


def test_sync_state_not_found_falls_back_to_a_full_collection(emu, make_cfg, tenant):
    """Graph has dropped the sync state behind a stored deltaLink (400 syncStateNotFound): the
    part is collected in full, the unit says why, and the next run has a fresh link."""
    cfg = make_cfg(sign_in_activity=False)
    first = collect(cfg)
    tenant.remove_member(oid("Shared-Team"), oid("cwarks"))
    state = {**first.state}
    for part in ("users", "groups"):
        state[f"{part}_delta_link"] = aged(first.state[f"{part}_delta_link"])
    emu.clear_log()

    second = collect(cfg, state=state, previous=first.tables)

    deltas = [r for r in emu.requests("graph") if "/delta?" in r.target]
    assert [(r.target.split("?")[0], r.status) for r in deltas] == [
        ("/v1.0/users/delta", 400),  # the aged link
        ("/v1.0/users/delta", 200),  # $deltatoken=latest, before the full listing
        ("/v1.0/groups/delta", 400),
        ("/v1.0/groups/delta", 200),
    ]
    assert all("$deltatoken=latest" in r.target for r in deltas if r.status == 200)
    assert [r.target.split("?")[0] for r in emu.requests("graph")].count("/v1.0/users") == 2
    units = {u.name: u.detail for u in second.units}
    why = "full collection (deltaLink refused: HTTP 400 syncStateNotFound): "
    assert units["users"] == why + "no @odata.nextLink after 2 page(s)"
    assert units["groups"] == why + "no @odata.nextLink after 1 page(s)"
    assert second.complete
    assert_same(second, collect(make_cfg(sign_in_activity=False, use_delta=False)))
    team = second.tables["memberships"].filter(group_id=oid("Shared-Team"))
    assert oid("cwarks") not in team["member_id"].to_list()
    for part in ("users", "groups"):  # fresh links from this run, used next time
        assert second.state[f"{part}_delta_link"] != state[f"{part}_delta_link"]
        assert second.state[f"{part}_delta_obtained"] == second.started.isoformat()
    third = collect(cfg, state=second.state, previous=second.tables)
    assert {u.name: u.detail for u in third.units}["users"].startswith("delta: ")


def test_links_older_than_seven_days_are_not_used(emu, make_cfg, tenant):
    cfg = make_cfg(sign_in_activity=False)
    first = collect(cfg)
    later = first.started + timedelta(days=7, minutes=1)

    second = collect(cfg, state=first.state, previous=first.tables, now=later)

    old = first.state["users_delta_link"].split("$deltatoken=")[1]
    assert not [r for r in emu.requests("graph") if old in r.target]
    units = {u.name: u.detail for u in second.units}
    for part in ("users", "groups"):
        obtained = first.state[f"{part}_delta_obtained"]
        assert units[part].startswith(
            f"full collection (the stored deltaLink is older than 7 days (obtained {obtained})): "
            "no @odata.nextLink"
        )
    assert second.state["users_delta_obtained"] == later.isoformat()


def test_without_previous_tables_the_run_is_full(emu, make_cfg, tenant):
    cfg = make_cfg(sign_in_activity=False)
    first = collect(cfg)

    second = collect(cfg, state=first.state)

    assert {u.name: u.detail for u in second.units}["users"].startswith(
        "full collection (the previous run's tables are not available): no @odata.nextLink"
    )
    assert_same(first, second)


def test_incomplete_part_stores_no_delta_link(emu, make_cfg, tenant):
    emu.faults.add(Fault(match=f"/groups/{oid('Newsletter')}/members", status=403, times=None))

    result = collect(make_cfg(sign_in_activity=False))

    assert not result.complete
    assert "users_delta_link" in result.state
    assert "groups_delta_link" not in result.state


def test_failed_delta_round_keeps_previous_tables_and_link(emu, make_cfg, tenant):
    cfg = make_cfg(sign_in_activity=False, max_retries=1)
    first = collect(cfg)
    token = first.state["users_delta_link"].split("$deltatoken=")[1]
    emu.faults.add(Fault(match=token, status=503, retry_after="0", times=None))

    second = collect(cfg, state=first.state, previous=first.tables)

    unit = next(u for u in second.units if u.name == "users")
    assert not unit.complete
    assert unit.detail.startswith("delta round failed (HTTP 503 serviceNotAvailable")
    assert unit.detail.endswith("; previous users kept")
    assert second.state["users_delta_link"] == first.state["users_delta_link"]
    assert second.state["users_delta_obtained"] == first.state["users_delta_obtained"]
    groups = next(u for u in second.units if u.name == "groups")
    assert groups.complete and groups.detail.startswith("delta: ")  # the groups round went on
    assert_frame_equal(canonical(second.tables, "accounts"), canonical(first.tables, "accounts"))


def test_sign_in_activity_lists_users_but_uses_the_groups_delta(emu, make_cfg, tenant):
    cfg = make_cfg()
    first = collect(cfg)
    assert "users_delta_link" in first.state  # kept for runs without sign-in activity
    tenant.add_member(oid("Role-Admins"), oid("cwarks"))

    second = collect(cfg, state=first.state, previous=first.tables)

    units = {u.name: u.detail for u in second.units}
    assert units["users"] == "no @odata.nextLink after 3 page(s)"
    assert units["members"] == "delta: @odata.deltaLink after 1 page(s); 1 link(s) added, 0 removed"
    assert_same(second, collect(make_cfg(use_delta=False)))
