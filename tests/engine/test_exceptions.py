"""The exceptions register: accepted, expired (re-opened), stale, and malformed registers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
from support.fixtures import NOW

from accessaudit.config.settings import Settings
from accessaudit.engine.exceptions import load_register
from accessaudit.engine.rulefile import Rule
from accessaudit.errors import ExceptionsFileError
from accessaudit.pipeline.analyse import Analysis, analyse
from accessaudit.pipeline.demo import prepare_demo
from accessaudit.pipeline.run import run_audit
from accessaudit.sample.builder import Sample
from accessaudit.sample.directory import generate
from accessaudit.store.verify import verify

APPROVERS = """approvers = [
  { org = "wmp", name = "Head of Information Security, West Mercia", date = 2026-10-01 },
  { org = "warks", name = "Head of Information Security, Warwickshire", date = 2026-10-02 },
]"""


def entry(ex_id: str, rule: str, objects: str, expires: str, extra: str = "") -> str:
    return f'''
[[exception]]
id = "{ex_id}"
rule = "{rule}"
objects = {objects}
justification = "West Mercia hosts the service until the split"
agreement = "Transition services agreement, schedule 4, clause 12.3"
expires = {expires}
{extra}
{APPROVERS}
'''


REGISTER = "".join(
    [
        # in force: one shared service account, by a username pattern
        entry("EX-1", "shared-account-both-forces", '["svc-backup*"]', "2027-03-31"),
        # in force: every nested access that runs through West Mercia's Intelligence group
        entry("EX-2", "cross-org-nested-access", '["WMP-DEPT-Intelligence"]', "2027-03-31"),
        # lapsed: the mixed project group's findings are open again
        entry("EX-3", "mixed-group", '["wmp-prj-joint-firearms-licensing"]', "2026-10-31"),
        # covers nothing
        entry("EX-4", "cross-org-direct-member", '["no-such-group"]', "2027-03-31"),
        # the agreement clause ends before the exception does: it lapses with the clause
        entry(
            "EX-5",
            "cross-org-group-nesting",
            '["WMP-LEGACY-*"]',
            "2027-12-31",
            "agreement_ends = 2026-06-30",
        ),
    ]
)


@pytest.fixture(scope="module")
def small() -> Sample:
    return generate(seed=4, accounts=1200, now=NOW)


@pytest.fixture(scope="module")
def marked(
    small: Sample, settings: Settings, rules: list[Rule], tmp_path_factory: pytest.TempPathFactory
) -> Analysis:
    path = tmp_path_factory.mktemp("register") / "exceptions.toml"
    path.write_text(REGISTER)
    configured = settings.model_copy(
        update={"audit": settings.audit.model_copy(update={"exceptions_file": path})}
    )
    return analyse(small.tables, configured, rules, as_of=NOW)


def test_exceptions_mark_findings_never_hide_them(
    marked: Analysis, small: Sample, settings: Settings, rules: list[Rule]
) -> None:
    plain = analyse(small.tables, settings, rules, as_of=NOW).findings
    f = marked.findings
    register_rules = {"expired-exception", "stale-exception"}
    assert set(plain["finding_key"]) == set(
        f.filter(~pl.col("rule_id").is_in(register_rules))["finding_key"]
    )
    names = dict(marked.groups.select("name", "group_id").iter_rows())
    intelligence = names["WMP-DEPT-Intelligence"]
    nested_via = f.filter(
        (pl.col("rule_id") == "cross-org-nested-access") & (pl.col("via_group_id") == intelligence)
    )
    assert nested_via.height > 0
    accepted = f.filter(pl.col("status") == "accepted")
    assert dict(accepted.group_by("exception_id").len().iter_rows()) == {
        "EX-1": 1,
        "EX-2": nested_via.height,
    }
    svc = marked.accounts.filter(pl.col("username").str.starts_with("svc-backup"))["account_id"]
    assert (
        accepted.filter(pl.col("exception_id") == "EX-1")["account_id"].to_list() == svc.to_list()
    )
    # lapsed exceptions re-open their findings, and say which exception lapsed
    reopened = f.filter(
        pl.col("exception_id").is_in(["EX-3", "EX-5"]) & (pl.col("status") == "open")
    )
    assert sorted(reopened["rule_id"].to_list()) == [
        "cross-org-group-nesting",
        "expired-exception",
        "expired-exception",
        "mixed-group",
    ]
    register = f.filter(pl.col("rule_id").is_in(register_rules)).select(
        "finding_key", "severity", "status", "action", "resource_id", "right"
    )
    assert register.sort("finding_key").rows() == [
        ("expired-exception|EX-3", "medium", "open", "review-exception", "EX-3", "mixed-group"),
        (
            "expired-exception|EX-5",
            "medium",
            "open",
            "review-exception",
            "EX-5",
            "cross-org-group-nesting",
        ),
        (
            "stale-exception|EX-4",
            "info",
            "open",
            "review-exception",
            "EX-4",
            "cross-org-direct-member",
        ),
    ]
    detail = dict(f.select("finding_key", "detail").iter_rows())
    assert detail["expired-exception|EX-5"].startswith("the agreement clause ended on 2026-06-30")
    assert detail["expired-exception|EX-3"].startswith("expired on 2026-10-31: 1 finding(s)")
    # every other finding is open and carries no exception
    rest = f.filter(pl.col("exception_id").is_null())
    assert set(rest["status"]) == {"open"}


def test_accepted_findings_get_no_action(marked: Analysis) -> None:
    f, actions = marked.findings, marked.actions
    planned = actions.explode("finding_keys")["finding_keys"]
    open_keys = f.filter(pl.col("status") == "open")["finding_key"]
    assert planned.n_unique() == planned.len() == open_keys.len()
    assert set(planned) == set(open_keys)
    review = actions.filter(pl.col("kind") == "review-exception")
    assert review.height == 3 and set(review["system"]) == {"register"}
    assert review.filter(pl.col("resource_id") == "EX-4")["powershell"].to_list() == [
        "# exceptions register: renew exception EX-4 (new expiry, approved by both forces) "
        "or remove it"
    ]


def test_run_records_register_and_fails_only_on_open_findings(tmp_path: Path) -> None:
    from accessaudit.model import Severity

    settings = prepare_demo(tmp_path / "demo", accounts=600, seed=2)
    sample = generate(seed=2, accounts=600, now=NOW, apps=True, entra=True, domains=True)
    trusts = sample.domains["trusts"]
    unfiltered = trusts.filter(~pl.col("sid_filtering"))["trust_id"].item()
    critical = sample.truth.filter(
        pl.col("rule_id").is_in(
            [
                "cross-org-privileged-access",
                "cross-org-directory-role",
                "cross-org-trust-sid-filtering-off",
                "dcsync-outside-admins",
            ]
        )
    )
    assert critical.height > 0
    register = tmp_path / "exceptions.toml"
    # accept every critical finding: a privileged group, the admins and the tenant's roles
    register.write_text(
        entry("EX-P", "cross-org-privileged-access", '["adm-warks*"]', "2027-01-31")
        + entry("EX-Q", "cross-org-privileged-access", '["WARKS-DEPT-ICT"]', "2027-01-31")
        + entry(
            "EX-R",
            "cross-org-directory-role",
            '["*Administrator @ *", "Security Reader*"]',
            "2027-01-31",
        )
        # the shared domain's unfiltered trust of Warwickshire's new domain (plants_foreign)
        + entry("EX-T", "cross-org-trust-sid-filtering-off", f'["{unfiltered}"]', "2027-01-31")
        # the alliance backup account's replication rights (plants_control)
        + entry("EX-D", "dcsync-outside-admins", '["svc-backup*"]', "2027-01-31")
    )
    configured = settings.model_copy(
        update={"audit": settings.audit.model_copy(update={"exceptions_file": register})}
    )
    result = run_audit(configured, now=NOW)
    f = result.analysis.findings
    assert f.filter(pl.col("severity") == "critical")["status"].unique().to_list() == ["accepted"]
    assert result.open_at_or_above(Severity.CRITICAL) == 0
    assert result.open_at_or_above(Severity.HIGH) > 0
    m = result.run.manifest
    sha = hashlib.sha256(register.read_bytes()).hexdigest()
    assert m["exceptions"] == {
        "path": str(register),
        "sha256": sha,
        "entries": 5,
        "in_force": 5,
        "expired": 0,
        "stale": 0,
        "file": "exceptions.json",
    }
    assert m["summary"]["accepted"] == critical.height
    # the register as it stood, in the run folder and its manifest (so verify covers it)
    stored = result.run.path / "exceptions.json"
    assert (
        m["files"]["exceptions.json"]["sha256"] == hashlib.sha256(stored.read_bytes()).hexdigest()
    )
    snap = json.loads(stored.read_text())
    assert snap["sha256"] == sha and snap["as_of"] == NOW.date().isoformat()
    assert hashlib.sha256(snap["text"].encode()).hexdigest() == sha  # the file's exact text
    by_id = {e["id"]: e for e in snap["entries"]}
    accepted = dict(f.filter(pl.col("status") == "accepted").group_by("exception_id").len().rows())
    assert by_id["EX-P"] == {
        "id": "EX-P",
        "rule": "cross-org-privileged-access",
        "objects": ["adm-warks*"],
        "justification": "West Mercia hosts the service until the split",
        "agreement": "Transition services agreement, schedule 4, clause 12.3",
        "agreement_ends": None,
        "expires": "2027-01-31",
        "ends": "2027-01-31",
        "approvers": [
            {
                "org": "wmp",
                "name": "Head of Information Security, West Mercia",
                "date": "2026-10-01",
            },
            {
                "org": "warks",
                "name": "Head of Information Security, Warwickshire",
                "date": "2026-10-02",
            },
        ],
        "ticket": None,
        "state": "in-force",
        "matched": accepted["EX-P"],
        "accepted": accepted["EX-P"],
        "line": 2,
    }
    assert sum(e["accepted"] for e in snap["entries"]) == critical.height
    data_dir = result.run.path.parent.parent
    assert verify(data_dir) == []
    stored.write_text(stored.read_text().replace("2027-01-31", "2099-01-31"))
    assert [(p.kind, p.name) for p in verify(data_dir)] == [("changed", "exceptions.json")]


GOOD = entry("EX-1", "mixed-group", '["WMP-PRJ-*"]', "2027-03-31")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace('rule = "mixed-group"', 'rule = "mixed-group'), r"exceptions\.toml:4: "),
        ("colour = 1\n" + GOOD, r"exceptions\.toml:1: unknown key 'colour'"),
        (
            GOOD.replace("expires = 2027-03-31", 'expires = "2027-03-31"'),
            r"exceptions\.toml:8: exception 'EX-1': 'expires' must be a date",
        ),
        (
            GOOD.replace('justification = "West Mercia hosts the service until the split"\n', ""),
            r"exceptions\.toml:2: exception 'EX-1': missing required key 'justification'",
        ),
        (
            GOOD.replace('rule = "mixed-group"', 'rule = "mixed-grop"'),
            r"exceptions\.toml:4: exception 'EX-1': unknown rule 'mixed-grop'",
        ),
        (
            GOOD.replace('objects = ["WMP-PRJ-*"]', "objects = []"),
            r"exceptions\.toml:5: exception 'EX-1': 'objects' must be a non-empty list",
        ),
        (
            GOOD.replace('objects = ["WMP-PRJ-*"]', 'objects = ["*"]'),
            r"exceptions\.toml:5: exception 'EX-1': a pattern matching every object",
        ),
        (
            GOOD.replace(
                '  { org = "warks", name = "Head of Information Security, Warwickshire", '
                "date = 2026-10-02 },\n",
                "",
            ),
            r"exceptions\.toml:10: exception 'EX-1': no approver from warks",
        ),
        (
            GOOD.replace('org = "warks"', 'org = "met"'),
            r"exceptions\.toml:10: exception 'EX-1': approver organisation 'met' is not one of",
        ),
        (
            GOOD.replace("expires = 2027-03-31", "expires = 2027-03-31\nreason = 'x'"),
            r"exceptions\.toml:9: exception 'EX-1': unknown key 'reason'",
        ),
        (
            GOOD + GOOD,
            r"exceptions\.toml:16: exception 'EX-1' is defined twice \(first at line 2\)",
        ),
    ],
)
def test_malformed_register_is_one_line_naming_file_and_line(
    tmp_path: Path, text: str, expected: str, rules: list[Rule]
) -> None:
    path = tmp_path / "exceptions.toml"
    path.write_text(text)
    with pytest.raises(ExceptionsFileError, match=expected) as err:
        load_register(path, orgs=["wmp", "warks"], rule_ids=[r.id for r in rules])
    assert "\n" not in str(err.value)
    assert str(path) in err.value.message


def test_missing_register_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ExceptionsFileError, match=r"exceptions register .* not found"):
        load_register(tmp_path / "nope.toml", orgs=["wmp", "warks"])


def test_register_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "exceptions.toml"
    path.write_text(GOOD)
    reg = load_register(path, orgs=["wmp", "warks"], rule_ids=None)
    [e] = reg.entries
    assert (e.id, e.rule, e.objects, e.line) == ("EX-1", "mixed-group", ("WMP-PRJ-*",), 2)
    assert [a.org for a in e.approvers] == ["wmp", "warks"]
    assert reg.sha256 == hashlib.sha256(GOOD.encode()).hexdigest()
    assert e.pattern() == "(?i)^(?:WMP\\-PRJ\\-.*)$"


def test_example_register_is_valid(rules: list[Rule]) -> None:
    root = Path(__file__).resolve().parents[2]
    reg = load_register(
        root / "exceptions.example.toml", orgs=["wmp", "warks"], rule_ids=[r.id for r in rules]
    )
    [e] = reg.entries
    assert e.ends.isoformat() == "2027-03-31" and e.ticket == "CHG0012345"
