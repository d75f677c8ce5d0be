"""Control paths on a real Samba AD DC: every case planted with samba-tool / ldbmodify as an
administrator, collected as an ordinary domain user, and compared with the truth written here:
precision = recall = 100%. A descriptor the audit account may not read is reported incomplete,
never as "no entries"."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from support.servers.control_dc import dsacl, replication, set_owner
from support.servers.seeded import SeededDC, running_copy

from accessaudit.config.settings import Settings
from accessaudit.connectors.ldap.collect import IncompleteLdapCollection, collect
from accessaudit.engine.rulefile import load_rules
from accessaudit.model import SourceCollection
from accessaudit.pipeline.analyse import Analysis, analyse
from accessaudit.pipeline.collect import combine
from accessaudit.transport import adschema as g

pytestmark = pytest.mark.servers

BASE = "DC=alliance,DC=local"
FORCE_A, FORCE_B = f"OU=Force A,{BASE}", f"OU=Force B,{BASE}"
SDH = f"CN=AdminSDHolder,CN=System,{BASE}"
CONTROL_RULES = (
    "cross-org-control-account", "cross-org-control-group", "cross-org-control-container",
    "cross-org-control-gpo", "dcsync-outside-admins", "cross-org-object-owner",
)  # fmt: skip
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _settings(folder: Path, seeded: SeededDC, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Force A hosts the domain (its protected groups, AdminSDHolder, the domain head)."""
    source = seeded.source(monkeypatch).model_dump(mode="json", exclude_none=True)
    return Settings.model_validate(
        {
            "audit": {"data_dir": str(folder)},
            "sources": [{**source, "host": "a"}],
            "organisations": [
                {"id": "a", "name": "Force A", "match": {"ou": [FORCE_A], "owner": False}},
                {"id": "b", "name": "Force B", "match": {"ou": [FORCE_B], "owner": False}},
            ],
        }
    )


@dataclass
class Planted:
    dc: SeededDC
    collection: SourceCollection
    analysis: Analysis

    def sid(self, username: str) -> str:
        acc = self.collection.table("accounts").filter(pl.col("username") == username)
        return str(acc["sid"][0])

    def account(self, username: str) -> str:
        acc = self.collection.table("accounts").filter(pl.col("username") == username)
        return str(acc["account_id"][0])

    def group(self, name: str) -> str:
        grp = self.collection.table("groups").filter(pl.col("name") == name)
        return str(grp["group_id"][0])

    def resource(self, dn: str) -> str:
        res = self.collection.table("resources")
        return str(res.filter(pl.col("path").str.to_lowercase() == dn.lower())["resource_id"][0])


def _collect(seeded: SeededDC, monkeypatch: pytest.MonkeyPatch) -> SourceCollection:
    try:
        return collect(seeded.source(monkeypatch), now=NOW)
    except IncompleteLdapCollection as exc:
        collection: SourceCollection = exc.collection
        return collection


@pytest.fixture(scope="module")
def planted(
    control_template: SeededDC, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Planted]:
    """A running copy with every case planted, collected as the auditor and analysed."""
    seeded = running_copy(control_template, tmp_path_factory.mktemp("control-dc") / "dc")
    monkeypatch = pytest.MonkeyPatch()
    try:
        before = _collect(seeded, monkeypatch)

        def sid(user: str) -> str:
            acc = before.table("accounts").filter(pl.col("username") == user)
            return str(acc["sid"][0])

        nested = before.table("groups").filter(pl.col("name") == "GA-Nested-1")["sid"][0]
        dc = seeded.dc
        # inherited OU delegation: Force A's group resets every user password below Force B
        dsacl(dc, FORCE_B, f"(OA;CIIO;CR;{g.USER_FORCE_CHANGE};{g.USER};{nested})")
        # a deny that cancels it for dave (prepended: stored before the inherited allow)
        dsacl(dc, f"CN=Dave Moved,OU=Users,{FORCE_B}", f"(OD;;CR;{g.USER_FORCE_CHANGE};;{nested})")
        # a delegated reset right: bob (Force A) on frank (Force B)
        dsacl(dc, f"CN=Frank Primary,OU=Users,{FORCE_B}",
              f"(OA;;CR;{g.USER_FORCE_CHANGE};;{sid('bob')})")  # fmt: skip
        # GenericAll for alice (Force A) on Force B's all-staff group
        dsacl(dc, f"CN=GB-All-Staff,OU=Groups,{FORCE_B}", f"(A;;GA;;;{sid('alice')})")
        # allow before deny (Samba keeps the order): the allow wins, hank stays reachable
        dsacl(dc, f"CN=Hank Left,OU=Users,{FORCE_B}", f"(OD;;WP;{g.SPN};;{sid('bob')})")
        dsacl(dc, f"CN=Hank Left,OU=Users,{FORCE_B}", f"(OA;;WP;{g.SPN};;{sid('bob')})")
        # DCSync for Force A's backup service account
        replication(dc, BASE, f"CN=svc-backup,OU=Service,{FORCE_A}")
        # Force B's hank owned by Force A's carol
        set_owner(dc, f"CN=Hank Left,OU=Users,{FORCE_B}", sid("carol"))
        # AdminSDHolder (Force A hosts the domain): GenericAll for Force B's dave
        dsacl(dc, SDH, f"(A;;GA;;;{sid('dave')})")
        after = _collect(seeded, monkeypatch)
        folder = tmp_path_factory.mktemp("control-analysis")
        settings = _settings(folder, seeded, monkeypatch)
        tables = combine([("alliance", after)])
        analysis = analyse(tables, settings, load_rules(), as_of=NOW)
        yield Planted(seeded, after, analysis)
    finally:
        monkeypatch.undo()
        seeded.dc.stop()


def test_every_planted_control_right_is_found_and_nothing_else(planted: Planted) -> None:
    p = planted
    f = p.analysis.findings.filter(pl.col("rule_id").is_in(CONTROL_RULES))
    got = set(
        f.select(
            "rule_id", "account_id", "member_group_id", "group_id", "resource_id", "right"
        ).iter_rows()
    )
    truth = {
        ("cross-org-control-container", None, p.group("GA-Nested-1"), None,
         p.resource(FORCE_B), "ResetPassword"),
        ("cross-org-control-account", p.account("bob"), None, None, p.account("frank"),
         "ResetPassword"),
        ("cross-org-control-group", p.account("alice"), None, p.group("GB-All-Staff"),
         p.group("GB-All-Staff"), "GenericAll"),
        ("cross-org-control-account", p.account("bob"), None, None, p.account("hank"),
         "WriteSPN"),
        ("dcsync-outside-admins", p.account("svc-backup"), None, None, p.resource(BASE), "DCSync"),
        ("cross-org-object-owner", p.account("carol"), None, None, p.account("hank"), "Owner"),
        ("cross-org-control-container", p.account("dave"), None, None, p.resource(SDH),
         "GenericAll"),
    }  # fmt: skip
    assert got == truth  # precision = recall = 100%


def test_inheritance_is_folded_with_its_reach_and_the_deny_honoured(planted: Planted) -> None:
    grants = planted.analysis.grants
    nested = planted.group("GA-Nested-1")
    ou = grants.filter(
        (pl.col("principal_id") == nested) & (pl.col("resource_id") == planted.resource(FORCE_B))
    )
    users_below = planted.collection.table("resources").filter(
        (pl.col("object_class") == "user") & pl.col("path").str.ends_with(f",{FORCE_B}")
    )
    # every user object below Force B but dave, whose deny comes first
    assert ou.select("right", "deny", "inherited", "reach").rows() == [
        ("ResetPassword", False, True, users_below.height - 1)
    ]
    on_dave = grants.filter(pl.col("resource_id") == planted.account("dave"))
    assert on_dave.select("principal_id", "right", "deny").rows() == [
        (nested, "ResetPassword", True)
    ]


def test_collected_as_an_ordinary_user_every_descriptor_read(planted: Planted) -> None:
    units = {u.name: u for u in planted.collection.units}
    assert units["security-descriptors"].complete
    readable = units["security-descriptors:readable"]
    res = planted.collection.table("resources")
    assert readable.complete and readable.count == res.height
    assert res["readable"].all() and res.height > 1500
    classes = {"domainDNS", "organizationalUnit", "user", "group", "computer", "container"}
    assert set(res["object_class"]) >= classes | {"groupPolicyContainer"}
    # user, group and computer objects are their accounts and groups (subject_id)
    subjects = res.filter(pl.col("subject_id").is_not_null())
    ids = set(planted.collection.table("accounts")["account_id"]) | set(
        planted.collection.table("groups")["group_id"]
    )
    assert set(subjects["subject_id"]) <= ids
    assert (subjects["subject_id"] == subjects["resource_id"]).all()


def test_an_unreadable_descriptor_is_incomplete_not_empty(
    planted: Planted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deny of READ_CONTROL to the auditor hides one descriptor (run last: it changes the
    module's DC)."""
    target = f"CN=bulk0007,OU=Bulk,{FORCE_B}"
    dsacl(planted.dc.dc, target, f"(D;;RC;;;{planted.sid('auditor')})")
    collection = _collect(planted.dc, monkeypatch)
    unit = {u.name: u for u in collection.units}["security-descriptors:readable"]
    assert not unit.complete and not collection.complete
    assert unit.detail.startswith("1 of ") and target in unit.detail
    res = collection.table("resources")
    hidden = res.filter(pl.col("path") == target)
    assert hidden.select("readable", "owner_sid").rows() == [(False, None)]
    assert (
        collection.table("aces")
        .filter(pl.col("resource_id") == hidden["resource_id"][0])
        .is_empty()
    )
