"""Owners of service principals (enterprise applications): read for every service principal in
the shared ``$batch`` queue (``$select=id``, every ``@odata.nextLink`` followed), one collection
unit proven complete or marked incomplete with the reason, the owners on the application's
groups row and as ownership grants, read again in full on delta runs."""

from __future__ import annotations

import polars as pl
from polars.testing import assert_frame_equal
from support.entra_data import TENANT, canonical, oid

from accessaudit.connectors.entra.collect import collect
from accessaudit.graphemu import Fault

NAMES = ("accounts", "groups", "memberships", "grants")
NICHE, PRONTO = oid("sp-niche"), oid("sp-pronto")


def units(result):
    return {u.name: u for u in result.units}


def owners_of(result, app: str) -> list[str]:
    [owners] = result.tables["groups"].filter(group_id=app)["owners"].to_list()
    return list(owners)


def ownership(result) -> list[tuple[str, str]]:
    rows = result.tables["grants"].filter(
        pl.col("resource_id").is_in([NICHE, PRONTO]) & (pl.col("resource_kind") == "ownership")
    )
    return sorted(rows.select("resource_id", "principal_id").iter_rows())


def assert_same(a, b):
    for name in NAMES:
        assert_frame_equal(canonical(a.tables, name), canonical(b.tables, name))


def test_owners_follow_every_next_link(emu, make_cfg, tenant):
    result = collect(make_cfg(page_size=1))

    assert result.complete
    assert owners_of(result, PRONTO) == sorted([oid("cwarks"), NICHE])
    assert ownership(result) == sorted(
        [(NICHE, oid("awilliams")), (PRONTO, oid("cwarks")), (PRONTO, NICHE)]
    )
    pages = [r.target for r in emu.requests("batch-item") if f"/{PRONTO}/owners" in r.target]
    assert len(pages) == 2
    assert pages[0] == f"/servicePrincipals/{PRONTO}/owners?$select=id&$top=1"
    assert "$skiptoken=" in pages[1]
    # Niche RMS: one page; Pronto: two (its second owner on the page its nextLink named)
    assert units(result)["service-principal-owners"].detail == (
        "2 service principal(s): no @odata.nextLink after 3 page(s) in total"
    )


def test_403_on_one_owners_listing_marks_the_unit_incomplete(emu, make_cfg, tenant):
    emu.faults.add(Fault(match=f"/servicePrincipals/{NICHE}/owners", status=403, times=None))

    result = collect(make_cfg())

    got = units(result)
    assert not result.complete
    assert [n for n, u in got.items() if not u.complete] == [
        "service-principal-owners",
        f"service-principal-owners:{NICHE}",
    ]
    assert got["service-principal-owners"].detail == (
        "1 service principal(s) incomplete, see service-principal-owners:<id>"
    )
    assert got["service-principal-owners"].count == 2  # Pronto's two owners were read
    assert got[f"service-principal-owners:{NICHE}"].detail == (
        "HTTP 403 Authorization_RequestDenied: Insufficient privileges to complete the operation."
    )
    # the application is still a row (it has app-role assignments), its owners unknown
    assert owners_of(result, NICHE) == []
    assert ownership(result) == sorted([(PRONTO, oid("cwarks")), (PRONTO, NICHE)])


def test_throttled_owners_listing_is_retried_to_completion(emu, cfg, small_tables):
    emu.faults.add(
        Fault(match=f"/servicePrincipals/{PRONTO}/owners", status=429, retry_after="0", times=2)
    )

    result = collect(cfg)

    assert result.complete
    statuses = [r.status for r in emu.requests("batch-item") if f"/{PRONTO}/owners" in r.target]
    assert statuses == [429, 429, 200]
    assert_same(result, type("R", (), {"tables": small_tables})())


def test_application_deleted_after_listing_is_dropped(emu, make_cfg, tenant):
    emu.faults.add(
        Fault(match=f"/servicePrincipals/{PRONTO}/", status=404, code="Request_ResourceNotFound",
              times=None)
    )  # fmt: skip

    result = collect(make_cfg())

    assert result.complete
    assert PRONTO not in result.tables["groups"]["group_id"].to_list()
    assert ownership(result) == [(NICHE, oid("awilliams"))]


def test_owners_without_app_roles_make_the_application_a_row(emu, make_cfg, tenant):
    daemon = tenant.add_service_principal("Sync daemon", id=oid("sp-daemon"))
    tenant.add_service_principal("Unused", ["Reader"], id=oid("sp-unused"))
    tenant.add_sp_owner(daemon, oid("bcloud"))

    result = collect(make_cfg())

    ids = result.tables["groups"].filter(kind="app-role")["group_id"].to_list()
    assert sorted(ids) == sorted([NICHE, PRONTO, daemon])
    assert owners_of(result, daemon) == [oid("bcloud")]
    assert units(result)["service-principal-owners"].count == 4


def test_delta_run_reads_the_owners_again(emu, make_cfg, tenant):
    """Service principals are not in /groups/delta: their owners are listed in full on every
    run, so an owner removed or added since is seen, and the previous run's owners are not
    carried (no stale ownership grant)."""
    cfg = make_cfg(sign_in_activity=False)
    first = collect(cfg)
    tenant.remove_sp_owner(PRONTO, oid("cwarks"))
    tenant.add_sp_owner(NICHE, oid("bcloud"))
    tenant.delete(oid("awilliams"))  # an owner of Niche RMS, a member and a role holder
    emu.clear_log()

    second = collect(cfg, state=first.state, previous=first.tables)

    assert second.complete
    assert units(second)["users"].detail.startswith("delta: ")
    assert units(second)["groups"].detail.startswith("delta: ")
    assert owners_of(second, NICHE) == [oid("bcloud")]
    assert owners_of(second, PRONTO) == [NICHE]
    assert ownership(second) == sorted([(NICHE, oid("bcloud")), (PRONTO, NICHE)])
    listed = [r.target for r in emu.requests("batch-item") if "/owners" in r.target]
    assert sorted(listed) == sorted(
        f"/servicePrincipals/{sp}/owners?$select=id&$top=999" for sp in (NICHE, PRONTO)
    )
    assert_same(second, collect(make_cfg(sign_in_activity=False, use_delta=False)))
    assert TENANT in second.source
