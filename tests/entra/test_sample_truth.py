"""The sample's Entra tenant collected through the emulator with the real msal equals the sample's
tables exactly (the members of a group larger than 999 and a dynamic group's rule included), and
with the sample's AD tables the pipeline's findings equal the planted truth.

Enterprise applications and administrative units travel as Graph serves them — service
principals (``/servicePrincipals``, ``appRoleAssignedTo``) and administrative units
(``/directory/administrativeUnits``, ``.../members``) — and come back as the groups rows (kind
``app-role`` / ``administrative-unit``) whose organisation the rules read.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from polars.testing import assert_frame_equal
from support.entra_data import SORT_KEYS, canonical, serve_sample
from support.fixtures import NOW
from support.truth import assert_matches_truth

from accessaudit.connectors.entra.collect import collect
from accessaudit.model import SourceCollection
from accessaudit.pipeline.analyse import analyse
from accessaudit.pipeline.collect import combine
from accessaudit.pipeline.demo import demo_settings
from accessaudit.sample.directory import generate
from accessaudit.sample.entra import ENTRA_SOURCE, TENANT_ID
from accessaudit.sample.entra_messy import HIDDEN


def test_sample_tenant_through_graph_gives_exactly_the_planted_truth(
    emu, make_cfg, rules, tmp_path
):
    sample = generate(seed=7, accounts=1800, now=NOW, entra=True)
    served = sample.entra
    tenant = serve_sample(emu, served)
    kinds = dict(served["groups"].select("group_id", "kind").iter_rows())
    graph_type = {"app-role": "servicePrincipal", "administrative-unit": "administrativeUnit"}
    assert sorted(graph_type.get(k, "group") for k in kinds.values()) == sorted(
        tenant.type_of(g) for g in kinds
    )
    assert {"servicePrincipal", "administrativeUnit"} <= {tenant.type_of(g) for g in kinds}

    groups = dict(served["groups"].select("name", "group_id").iter_rows())
    big = groups["WMP-All-Staff"]
    assert served["memberships"].filter(pl.col("group_id") == big).height > 999
    dynamic = served["groups"].filter(pl.col("membership_rule").is_not_null())["group_id"]
    assert dynamic.to_list() == [groups["WMP-DYN-Response"]]
    assert tenant.objects[dynamic[0]]["groupTypes"] == ["DynamicMembership"]

    result = collect(make_cfg(tenant_id=TENANT_ID))

    assert result.source == ENTRA_SOURCE
    assert result.complete, [u for u in result.units if not u.complete]
    for name in SORT_KEYS:
        assert_frame_equal(canonical(result.tables, name), canonical(served, name))
    # the large group's members over two pages of $top=999
    pages = [r for r in emu.requests("batch-item") if f"/groups/{big}/members" in r.target]
    assert len(pages) == 2 and "$skiptoken=" in pages[1].target
    # every application and unit came from its own endpoint, none from /groups
    paths = {r.target.split("?")[0] for r in emu.requests("graph") + emu.requests("batch-item")}
    containers = [g for g, k in kinds.items() if k in graph_type]
    assert {p for p in paths if p.split("/")[-2] in containers} == {
        path
        for g in containers
        for path in (
            [f"/servicePrincipals/{g}/appRoleAssignedTo", f"/servicePrincipals/{g}/owners"]
            if kinds[g] == "app-role"
            else [f"/directory/administrativeUnits/{g}/members"]
        )
    }

    # with the sample's AD directory, as the pipeline combines its sources
    now = datetime.now(UTC)
    directory = SourceCollection(sample.source, "sample", now, now, dict(sample.tables))
    tables = combine([("alliance", directory), ("alliance-entra", result)])
    settings = demo_settings(tmp_path, accounts=1800, seed=7, entra=True)
    analysis = analyse(tables, settings, rules, as_of=NOW)

    assert_matches_truth(analysis.findings, sample.truth)  # precision and recall 100%
    planted = sample.truth.filter(pl.col("plant").str.starts_with("entra-"))
    assert planted.height == 33  # + 1: the guest in the hidden-membership group, read with
    # Member.Read.Hidden
    [hidden] = planted.filter(plant="entra-hidden").to_dicts()
    assert (hidden["rule_id"], hidden["group_id"]) == ("cross-org-direct-member", groups[HIDDEN])
    assert tenant.objects[groups[HIDDEN]]["visibility"] == "HiddenMembership"
    # read from the applications' and units' rows: 5 app roles across the line, 3 AU scopes (one
    # through the unit's Warwickshire team), 1 application owned by the other force (its
    # service principal's owners)
    assert planted.filter(pl.col("group_id").is_in(containers)).height == 9
    [owner] = planted.filter(plant="entra-app-owner").to_dicts()
    assert owner["rule_id"] == "cross-org-group-owner"
    assert kinds[owner["group_id"]] == "app-role"
    assert owner["account_id"] in tenant.sp_owners[owner["group_id"]]
    # its remediation: remove that owner of the service principal, through Graph
    [action] = analysis.actions.filter(
        (pl.col("group_id") == owner["group_id"]) & (pl.col("member_id") == owner["account_id"])
    ).to_dicts()
    assert (action["kind"], action["system"]) == ("remove-owner", "cloud")
    assert action["graph"] == (
        f"DELETE /servicePrincipals/{owner['group_id']}/owners/{owner['account_id']}/$ref"
    )
    assert action["powershell"] == (
        f"Remove-MgServicePrincipalOwnerByRef -ServicePrincipalId '{owner['group_id']}' "
        f"-DirectoryObjectId '{owner['account_id']}'"
    )
    # the same-force owners of both applications are collected, and are no finding
    app_owners = served["groups"].filter(kind="app-role").explode("owners")["owners"]
    assert app_owners.len() == 3
    legit = sample.legitimate.filter(kind="entra-app-owner")
    assert legit.height == 2
    touching = analysis.findings.join(
        legit.select("account_id", "group_id"), on=["account_id", "group_id"]
    )
    assert touching.height == 0
    # the dynamic group's member: its plan says to change the rule (shown), not a $ref DELETE
    [swept] = planted.filter(plant="entra-dynamic")["account_id"].to_list()
    [action] = analysis.actions.filter(
        (pl.col("group_id") == groups["WMP-DYN-Response"]) & (pl.col("member_id") == swept)
    ).to_dicts()
    rule = served["groups"].filter(group_id=groups["WMP-DYN-Response"])["membership_rule"][0]
    assert action["kind"] == "remove-member" and action["system"] == "cloud"
    assert action["powershell"].startswith("# dynamic group: change its membership rule")
    assert action["powershell"].endswith(f"current rule: {rule}")
    assert action["graph"].startswith(f"PATCH /groups/{groups['WMP-DYN-Response']} ")
