"""Two real Samba domains collected in one run: the alliance's shared domain and Warwickshire's
new one, foreign principals (an account and a group), sIDHistory and trusts resolved between
them; the findings equal the truth written here, object by object (precision = recall = 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from support.servers.forest import (
    ALLIANCE,
    AUTHENTICATED_USERS,
    NEW_WARKS,
    NOBODY,
    WARKS_OTHER,
    Forest,
)
from support.servers.load_ad import BIND_PASSWORD

from accessaudit.config.settings import Settings
from accessaudit.pipeline.run import run_audit

pytestmark = pytest.mark.servers

PASSWORD_ENV = "ACCESSAUDIT_TEST_FOREST_PASSWORD"
#: the rules this test is about: everything else fires on Samba's own built-in objects only
RULES = {
    "cross-org-direct-member", "cross-org-nested-access", "cross-org-group-nesting",
    "cross-org-foreign-principal", "foreign-principal-unresolved", "well-known-principal-member",
    "cross-org-trust", "cross-org-trust-sid-filtering-off", "cross-org-sid-history",
}  # fmt: skip


def _source(name: str, seeded: Any, host: str) -> dict[str, object]:
    return {
        "kind": "ldap",
        "name": name,
        "host": host,
        "servers": [seeded.dc.ldaps_url],
        "base_dn": seeded.realm.base_dn,
        "bind_dn": f"auditor@{seeded.realm.realm}",
        "password_env": PASSWORD_ENV,
        "ca_file": str(seeded.dc.pki.ca_file),
        "connect_timeout": 5,
        "receive_timeout": 30,
    }


def _settings(forest: Forest, data: Path) -> Settings:
    return Settings.model_validate(
        {
            "audit": {"data_dir": str(data)},
            "organisations": [
                {
                    "id": "wmp",
                    "name": "West Mercia",
                    "match": {"ou": [f"OU=WMP,{ALLIANCE.base_dn}"]},
                },
                {
                    "id": "warks",
                    "name": "Warwickshire",
                    "match": {
                        "ou": [f"OU=WARKS,{ALLIANCE.base_dn}"],
                        "domain_sid": [NEW_WARKS.domain_sid, WARKS_OTHER],
                    },
                },
            ],
            "sources": [
                _source("alliance", forest.shared, "wmp"),
                _source("new-warks", forest.new, "warks"),
            ],
            "report": {"formats": []},
        }
    )


def test_two_domains_in_one_run_equal_truth(
    forest: Forest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, BIND_PASSWORD)
    result = run_audit(_settings(forest, tmp_path / "data"))
    assert result.complete
    a = result.analysis
    s, n = forest.shared.ids, forest.new.ids
    files, apps = s["WMP-RES-Files"], s["WMP-RES-Apps"]

    # the foreign members became edges to the new domain's objects, by SID
    mem = a.memberships.filter(pl.col("group_id") == files)
    via = dict(zip(mem["member_id"], mem["via"], strict=True))
    assert via[n["nw.bob"]] == via[n["NW-Team"]] == "foreign-principal"
    assert via[n["nw.erin"]] == via[n["nw.frank"]] == "sIDHistory"
    assert set(a.memberships.filter(pl.col("member_kind") == "foreign")["member_id"]) >= {
        f"{WARKS_OTHER}-1105", f"{NOBODY}-1200", AUTHENTICATED_USERS,
    }  # fmt: skip

    reach = [  # Warwickshire accounts reaching West Mercia's groups, and how
        ("nw.bob", 0), ("nw.erin", 0), ("nw.frank", 0), ("nw.carol", 1),
    ]  # fmt: skip
    truth = [
        *[("cross-org-direct-member", n[u], files, None) for u, d in reach if d == 0],
        ("cross-org-direct-member", s["warks.old"], files, None),
        *[("cross-org-nested-access", n[u], apps, None) for u, _ in reach],
        ("cross-org-nested-access", n["nw.carol"], files, None),
        ("cross-org-nested-access", s["warks.old"], apps, None),
        ("cross-org-group-nesting", None, files, n["NW-Team"]),
        ("cross-org-foreign-principal", f"{WARKS_OTHER}-1105", files, None),
        ("cross-org-foreign-principal", f"{WARKS_OTHER}-1105", apps, None),
        ("foreign-principal-unresolved", f"{NOBODY}-1200", files, None),
        ("foreign-principal-unresolved", f"{NOBODY}-1200", apps, None),
        ("well-known-principal-member", AUTHENTICATED_USERS, files, None),
    ]
    want = pl.DataFrame(
        truth, schema=["rule_id", "account_id", "group_id", "member_group_id"], orient="row"
    )
    got = a.findings.filter(pl.col("rule_id").is_in(list(RULES)) & pl.col("resource_id").is_null())
    got = got.select(want.columns)
    assert (
        got.sort(want.columns, nulls_last=True).rows()
        == want.sort(want.columns, nulls_last=True).rows()
    )

    # the trusts: the shared domain lets the new one in unfiltered (critical), the new domain
    # lets the shared one in with quarantine on (high)
    trusts = a.findings.filter(pl.col("rule_id").str.contains("trust"))
    got_trusts = sorted(trusts.select("rule_id", "right", "principal_org", "resource_org").rows())
    assert got_trusts == [
        ("cross-org-trust", f"{NEW_WARKS.realm} -> {ALLIANCE.realm}", "wmp", "warks"),
        ("cross-org-trust-sid-filtering-off", f"{ALLIANCE.realm} -> {NEW_WARKS.realm}", "warks",
         "wmp"),
    ]  # fmt: skip
    acts = a.actions.filter(pl.col("kind").is_in(["quarantine-trust", "remove-trust"]))
    assert sorted(acts["powershell"]) == [
        f"# only once the services hosted across it have moved:\nnetdom trust {NEW_WARKS.realm}"
        f" /domain:{ALLIANCE.realm} /remove /force",
        f"netdom trust {ALLIANCE.realm} /domain:{NEW_WARKS.realm} /quarantine:yes",
    ]
    # the cuts: the foreign principals leave the group by SID (their GUIDs mean nothing in the
    # shared domain), the migrated account's access is its sIDHistory
    sid = forest.new.sids
    cut = a.actions.filter(pl.col("group_id") == files)
    commands = dict(zip(cut["member_id"], cut["powershell"], strict=True))
    assert commands[n["nw.bob"]] == (
        f"Remove-ADGroupMember -Identity '{files}' -Members '{sid['nw.bob']}' -Confirm:$false"
    )
    assert commands[n["NW-Team"]] == (
        f"Remove-ADGroupMember -Identity '{files}' -Members '{sid['NW-Team']}' -Confirm:$false"
    )
    assert commands[n["nw.erin"]].startswith(
        f"# '{n['nw.erin']}' is in '{files}' through a SID in its sIDHistory"
    )
    assert commands[s["warks.old"]] == (
        f"Remove-ADGroupMember -Identity '{files}' -Members '{s['warks.old']}' -Confirm:$false"
    )
    stored = a.extra["trusts"].sort("source")
    assert stored.select("source", "partner", "direction", "sid_filtering").rows() == [
        (f"ad:{ALLIANCE.realm}", NEW_WARKS.realm, "bidirectional", False),
        (f"ad:{NEW_WARKS.realm}", ALLIANCE.realm, "bidirectional", True),
    ]
    assert stored["attribute_names"].to_list() == [[], ["QUARANTINED_DOMAIN"]]
