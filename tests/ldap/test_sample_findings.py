"""Findings through the real servers equal the sample's planted ground truth, exactly.

The sample (``accessaudit.sample.directory``, seed 7) is seeded into Samba and slapd, collected
back with ``ldap.collect`` and audited by the same pure analysis as the in-memory demo. The
generator's truth (its ids mapped to the ids the servers assigned) must equal the findings:
precision and recall 100%, including primary-group, >1,500-member, nested, privileged-by-RID and
cycle cases.

A real domain controller also holds objects the sample never had (Administrator, krbtgt, the
built-in groups...). Those carry no attribution signal, so the only findings they may cause are
``unattributed-with-access`` on exactly those objects, listed below for Samba 4.17.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from support.fixtures import TRUTH_KEYS
from support.servers.ids import IdMap
from support.servers.seeded import SampleSeeded

from accessaudit.connectors.ldap.collect import collect
from accessaudit.engine.rulefile import load_rules
from accessaudit.pipeline.analyse import Analysis, analyse
from accessaudit.pipeline.demo import demo_settings
from accessaudit.sample.builder import Sample

pytestmark = pytest.mark.servers

#: What `samba-tool domain provision` (4.17) creates that has memberships, plus our bind user.
SAMBA_OWN_ACCOUNTS = {"Administrator", "Guest", "krbtgt", "DC1$", "dns-dc1", "auditor"}
SAMBA_OWN_GROUPS = {
    "Cert Publishers",
    "Denied RODC Password Replication Group",
    "Domain Guests",
    "Guests",
    "IIS_IUSRS",
    "Pre-Windows 2000 Compatible Access",
    "Read-only Domain Controllers",
    "Users",
    "Windows Authorization Access Group",
}


#: Rules of the sample's security descriptors (plants_control), which the servers do not hold.
CONTROL_RULES = (
    "cross-org-control-account",
    "cross-org-control-group",
    "cross-org-control-container",
    "cross-org-control-gpo",
    "cross-org-object-owner",
    "dcsync-outside-admins",
)


#: Rules of the sample's data paths (plants_data: a file share, mailboxes, Azure scopes), which
#: are not directory objects: the servers hold none of them either.
DATA_RULES = (
    "cross-org-share-access",
    "cross-org-share-read",
    "cross-org-mailbox-access",
    "cross-org-mailbox-read",
    "cross-org-azure-role",
    "cross-org-azure-reader",
)


def _truth(sample: Sample, idmap: IdMap, truth: pl.DataFrame | None = None) -> pl.DataFrame:
    """The planted findings with the sample's ids replaced by the server's.

    A dual identity is an unordered pair, reported on the smaller account id of the two (the
    rule pairs ``account_id < other_id``): after mapping, the pair is ordered again.
    """
    truth = sample.truth if truth is None else truth
    # the sample's security descriptors are not loaded into the servers (tests/control plants
    # its own on Samba), nor its data paths (tests/datapaths serves its own): expected in memory
    truth = truth.filter(~pl.col("rule_id").is_in([*CONTROL_RULES, *DATA_RULES]))
    mapped = truth.with_columns(
        [pl.col(c).replace(idmap.ids) for c in (*TRUTH_KEYS[1:], "resource_id")]
    )
    pair = pl.col("rule_id") == "dual-identity"
    return mapped.with_columns(
        account_id=pl.when(pair)
        .then(pl.min_horizontal("account_id", "resource_id"))
        .otherwise("account_id"),
        resource_id=pl.when(pair)
        .then(pl.max_horizontal("account_id", "resource_id"))
        .otherwise("resource_id"),
    )


def _analyse(tables: dict[str, pl.DataFrame], sample: Sample, tmp_path: Path) -> Analysis:
    return analyse(tables, demo_settings(tmp_path), load_rules(), as_of=sample.now)


def _names(analysis: Analysis) -> dict[str, str]:
    acc = analysis.accounts.select("account_id", "username").iter_rows()
    grp = analysis.groups.select("group_id", "name").iter_rows()
    return dict([*acc, *grp])


def assert_same_keys(got: pl.DataFrame, want: pl.DataFrame, names: dict[str, str]) -> None:
    """Exact equality of finding keys, reporting differences by object name."""
    got, want = got.select(TRUTH_KEYS), want.select(TRUTH_KEYS)
    missed = want.join(got, on=TRUTH_KEYS, how="anti", nulls_equal=True)
    extra = got.join(want, on=TRUTH_KEYS, how="anti", nulls_equal=True)

    def show(df: pl.DataFrame) -> list[tuple[str | None, ...]]:
        return [(r[0], *(names.get(v, v) if v else None for v in r[1:])) for r in df.head(8).rows()]

    assert missed.height == 0, f"planted but not found ({missed.height}): {show(missed)}"
    assert extra.height == 0, f"found but not planted ({extra.height}): {show(extra)}"
    assert got.height == want.height, "duplicate finding keys"


def _group_id(sample: Sample, idmap: IdMap, name: str) -> str:
    groups = sample.tables["groups"]
    return idmap.ids[groups.filter(pl.col("name") == name)["group_id"].item()]


def test_samba_findings_equal_planted_truth(
    sample_servers: SampleSeeded, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sample, seeded = sample_servers.sample, sample_servers.ad
    # range_size 1500 = AD's MaxValRange: the 1,557 members of WMP-ALL-Staff take two requests
    got = collect(seeded.source(monkeypatch, range_size=1500), now=sample.now)
    assert got.complete, [u for u in got.units if not u.complete]
    assert got.source == sample.source == "ad:alliance.local"
    tables = {n: got.table(n) for n in ("accounts", "groups", "memberships", "grants")}

    # the hard cases are really in what was collected
    mem = tables["memberships"]
    all_staff = _group_id(sample, seeded.idmap, "WMP-ALL-Staff")
    unit = next(u for u in got.units if u.name == f"members:{all_staff}")
    assert (unit.complete, unit.count, unit.detail) == (
        True, 1557, "range ended in -* after 2 request(s)",
    )  # fmt: skip
    assert set(mem.filter(pl.col("group_id") == all_staff)["via"]) == {"range"}
    pg_target = _group_id(sample, seeded.idmap, "WMP-RES-0002")
    pg = mem.filter((pl.col("group_id") == pg_target) & (pl.col("via") == "primaryGroupID"))
    assert pg.height == 2  # the two planted Warwickshire accounts
    cycle = [_group_id(sample, seeded.idmap, f"WMP-CYC-{c}") for c in "ABC"]
    nest = mem.filter(pl.col("group_id").is_in(cycle) & pl.col("member_id").is_in(cycle))
    assert nest.height == 3

    analysis = _analyse(tables, sample, tmp_path)
    names = _names(analysis)
    findings = analysis.findings
    # our objects, and the SIDs of the sample's foreign principals (findings name them)
    foreign = sample.tables["memberships"].filter(pl.col("member_kind") == "foreign")
    known = [*seeded.idmap.ids.values(), *foreign["member_id"]]
    ours = pl.all_horizontal([pl.col(c).is_null() | pl.col(c).is_in(known) for c in TRUTH_KEYS[1:]])
    assert_same_keys(findings.filter(ours), _truth(sample, seeded.idmap), names)

    theirs = findings.filter(~ours)
    assert set(theirs["rule_id"]) == {"unattributed-with-access"}
    assert {names[a] for a in theirs["account_id"].drop_nulls()} == SAMBA_OWN_ACCOUNTS
    assert {names[g] for g in theirs["group_id"].drop_nulls()} == SAMBA_OWN_GROUPS
    assert theirs.height == len(SAMBA_OWN_ACCOUNTS) + len(SAMBA_OWN_GROUPS)

    # every kind of plant is among the findings that matched
    plants = set(sample.truth["plant"])
    assert {"primary-group", "warks-domain-admins", "ict-server-operators", "mover"} <= plants
    by_rule = dict(findings.filter(ours).group_by("rule_id").len().iter_rows())
    want = _truth(sample, seeded.idmap)
    assert by_rule == dict(want.group_by("rule_id").len().iter_rows())
    privileged = findings.filter(pl.col("rule_id") == "cross-org-privileged-access")
    server_ops = _group_id(sample, seeded.idmap, "Server Operators")  # S-1-5-32-549: by RID
    assert server_ops in set(privileged["group_id"])
    truth = _truth(sample, seeded.idmap)
    on_staff = findings.filter(pl.col("group_id") == all_staff).height
    assert on_staff == truth.filter(pl.col("group_id") == all_staff).height > 0


def test_slapd_findings_equal_truth_where_expressible(
    sample_servers: SampleSeeded, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """OpenLDAP through the generic mapping (inetOrgPerson / groupOfNames).

    What that data model cannot express, and what it does to the findings:

    - **SIDs**: no objectSid, so no group is privileged by its well-known RID. The planted
      cross-force members of Domain Admins / Administrators / Server Operators are therefore not
      ``cross-org-privileged-access``; and as the "privileged_groups" matcher is the only signal
      attributing those built-in groups, they are *unattributed*: their cross-force members and
      the ICT group nested into Server Operators are not cross-force, and each built-in group
      that has members is an ``unattributed-with-access`` finding instead.
    - **Account state** (userAccountControl, lastLogonTimestamp): every account is enabled and
      never logged on; created (createTimestamp) is the load time, after the audit date, so no
      account is dormant and no ``inactive-cross-org-access`` finding is possible.
    - **sIDHistory** (SIDs again): no ``cross-org-sid-history`` finding is possible.
    - **Primary groups**: loaded as plain ``member`` values; the findings are the same.
    - **Foreign security principals** (SIDs again) are not loaded: the retired domain's two are
      no ``foreign-principal-unresolved`` finding.

    Everything else must equal the planted truth exactly.
    """
    sample, seeded = sample_servers.sample, sample_servers.ldap
    got = collect(seeded.source(monkeypatch), now=sample.now)
    assert got.complete, [u for u in got.units if not u.complete]
    tables = {n: got.table(n) for n in ("accounts", "groups", "memberships", "grants")}
    analysis = _analyse(tables, sample, tmp_path)

    truth = sample.truth
    sid_dependent = pl.col("rule_id").is_in(
        [
            "cross-org-privileged-access",
            "cross-org-sid-history",
            "inactive-cross-org-access",
            "foreign-principal-unresolved",  # foreign members are not loaded (no SIDs)
        ]
    ) | (
        (pl.col("rule_id") == "cross-org-group-nesting")
        & (pl.col("plant") == "ict-server-operators")
    )
    dropped = dict(truth.filter(sid_dependent).group_by("rule_id").len().iter_rows())
    assert dropped == {
        "cross-org-group-nesting": 1,  # WARKS-DEPT-ICT in Server Operators
        "cross-org-privileged-access": 108,
        "cross-org-sid-history": 3,
        "foreign-principal-unresolved": 4,  # the retired domain's two FSPs and their parents
        "inactive-cross-org-access": 23,
    }
    groups, mem = sample.tables["groups"], sample.tables["memberships"]
    with_members = pl.concat([mem["group_id"], mem["member_id"]]).implode()
    builtin = groups.filter(pl.col("privileged") & pl.col("group_id").is_in(with_members))
    assert set(builtin["name"]) == {
        "Administrators", "Backup Operators", "Domain Admins", "Enterprise Admins",
        "Server Operators",
    }  # fmt: skip
    unattributed = builtin.select(
        rule_id=pl.lit("unattributed-with-access"),
        account_id=pl.lit(None, pl.String),
        group_id="group_id",
        member_group_id=pl.lit(None, pl.String),
        resource_id=pl.lit(None, pl.String),
    )
    expressible = truth.filter(~sid_dependent).select(*TRUTH_KEYS, "resource_id")
    want = _truth(sample, seeded.idmap, pl.concat([expressible, unattributed]))
    assert_same_keys(analysis.findings, want, _names(analysis))
