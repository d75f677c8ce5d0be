"""A scheduled second run through the stored deltaLinks, with the real pipeline.

Two ``run_audit`` runs against the sample's tenant served by the emulator (the demo's wiring:
the sample's AD directory plus its Entra tenant as an ``entra`` source with ``use_delta``).
Between them a planted cross-force member (a Warwickshire admin in West Mercia's
role-assignable admin group) is removed and a Warwickshire guest is invited into a
West Mercia team. The second run's history has exactly that finding resolved and the guest's
findings new, everything else persisting, and its Entra collection went by the deltaLinks.
"""

from __future__ import annotations

import json
from datetime import timedelta

import polars as pl
from support.entra_data import serve_sample
from support.fixtures import NOW

from accessaudit.pipeline.demo import demo_settings
from accessaudit.pipeline.demo_entra import DEMO_SOURCE, with_entra_source
from accessaudit.pipeline.run import run_audit
from accessaudit.sample.directory import generate
from accessaudit.sample.entra import ENTRA_SOURCE, TENANT_DOMAIN, TENANT_ID
from accessaudit.store.runs import MANIFEST, read_table

ACCOUNTS = 900
GUEST = "0b9d1c8e-5a2f-4e61-9c3d-7f0a1b2c3d4e"


def findings_of(run) -> pl.DataFrame:
    return read_table(run, "findings").select(
        "finding_key", "rule_id", "account_id", "group_id", "member_group_id"
    )


def test_second_run_by_delta_shows_exactly_the_changes(emu, make_cfg, tmp_path):
    sample = generate(seed=7, accounts=ACCOUNTS, now=NOW, entra=True)
    tenant = serve_sample(emu, sample.entra)
    # users go by delta only without signInActivity (not available through delta)
    source = make_cfg(name=DEMO_SOURCE, tenant_id=TENANT_ID, sign_in_activity=False, use_delta=True)
    settings = with_entra_source(
        demo_settings(tmp_path / "data", accounts=ACCOUNTS, seed=7, entra=True), source
    )

    first = run_audit(settings, now=NOW)

    assert first.complete
    before = findings_of(first.run)
    groups = dict(sample.entra["groups"].select("name", "group_id").iter_rows())
    admins, custody = groups["WMP-RA-Tenant-Admins"], groups["WMP-TEAM-Custody"]
    # the planted Warwickshire admin in West Mercia's role-assignable admin group (plant
    # "entra-admin"); still holding a role of its own, so only this finding goes
    [member] = sample.truth.filter(
        (pl.col("rule_id") == "cross-org-privileged-access") & (pl.col("group_id") == admins)
    )["account_id"].to_list()
    [removed_key] = before.filter(
        (pl.col("rule_id") == "cross-org-privileged-access")
        & (pl.col("account_id") == member)
        & (pl.col("group_id") == admins)
    )["finding_key"].to_list()

    tenant.remove_member(admins, member)
    tenant.add_user(
        id=GUEST,
        userPrincipalName=f"rhys.evans_warwickshire.police.uk#EXT#@{TENANT_DOMAIN}",
        displayName="Rhys Evans (Warwickshire)",
        mail="rhys.evans@warwickshire.police.uk",
        mailNickname="rhys.evans_warwickshire.police.uk#EXT#",
        companyName="Warwickshire Police",
        userType="Guest",
        creationType="Invitation",
        externalUserState="PendingAcceptance",
        accountEnabled=True,
    )
    tenant.add_member(custody, GUEST)
    emu.clear_log()

    second = run_audit(settings, now=NOW + timedelta(hours=1))

    assert second.complete
    after = findings_of(second.run)
    new_keys = set(after.filter(pl.col("account_id") == GUEST)["finding_key"])
    new_rules = set(after.filter(pl.col("account_id") == GUEST)["rule_id"])
    assert new_rules == {"cross-org-guest", "cross-org-direct-member"}
    assert after.filter(
        (pl.col("rule_id") == "cross-org-direct-member") & (pl.col("account_id") == GUEST)
    )["group_id"].to_list() == [custody]

    history = read_table(second.run, "findings_history")
    by_status = {
        status: set(keys)
        for status, keys in history.group_by("status").agg(pl.col("finding_key")).iter_rows()
    }
    assert by_status.pop("resolved") == {removed_key}
    assert by_status.pop("new") == new_keys
    assert by_status.pop("persisting") == set(before["finding_key"]) - {removed_key}
    assert by_status == {}
    summary = second.run.manifest["summary"]["changes"]
    assert summary == {
        "new": len(new_keys),
        "persisting": before.height - 1,
        "regressed": 0,
        "resolved": 1,
        "unknown": 0,
        "closed": 0,
    }

    # the Entra source went by its deltaLinks: no full listing, and the units say so
    manifest = json.loads((second.run.path / MANIFEST).read_text())
    [entra] = [s for s in manifest["sources"] if s["name"] == DEMO_SOURCE]
    assert entra["source"] == ENTRA_SOURCE and entra["complete"]
    units = {u["name"]: u["detail"] for u in entra["units"]}
    assert units["users"] == "delta: @odata.deltaLink after 1 page(s); 1 changed, 0 removed"
    assert units["members"] == (
        "delta: @odata.deltaLink after 1 page(s); 1 link(s) added, 1 removed"
    )
    [first_entra] = [s for s in first.run.manifest["sources"] if s["name"] == DEMO_SOURCE]
    targets = [r.target for r in emu.requests("graph")]
    for part in ("users", "groups"):
        token = first_entra["state"][f"{part}_delta_link"].split("$deltatoken=")[1]
        assert [t for t in targets if token in t] == [t for t in targets if f"/{part}/delta" in t]
        assert len([t for t in targets if token in t]) == 1
    assert not [t for t in targets if t.startswith(("/v1.0/users?", "/v1.0/groups?"))]
