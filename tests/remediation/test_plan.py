"""Remediation actions: placed at the crossing edge, split for mixed groups, safe commands."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import polars as pl

from accessaudit.analysis.attribution import attribute_groups
from accessaudit.analysis.expand import effective_memberships, finding_paths, group_closure
from accessaudit.config.organisations import Organisation
from accessaudit.config.settings import Settings
from accessaudit.engine.evaluate import build_views, evaluate
from accessaudit.engine.rulefile import Example, Rule
from accessaudit.model import GROUPS_SCHEMA
from accessaudit.pipeline.analyse import Analysis
from accessaudit.pipeline.rulecheck import example_tables
from accessaudit.remediation.commands import ps_quote
from accessaudit.remediation.plan import plan_actions
from accessaudit.remediation.whatif import SIMULATED, WhatIf, what_if

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def plan(
    rules: list[Rule],
    accounts: list[dict[str, Any]],
    groups: list[dict[str, Any]],
    memberships: list[list[str]],
    via: dict[tuple[str, str], str] | None = None,
    organisations: Iterable[Organisation] = (),
) -> tuple[pl.DataFrame, pl.DataFrame]:
    findings, actions, _ = plan_tables(rules, accounts, groups, memberships, via, organisations)
    return findings, actions


def plan_tables(
    rules: list[Rule],
    accounts: list[dict[str, Any]],
    groups: list[dict[str, Any]],
    memberships: list[list[str]],
    via: dict[tuple[str, str], str] | None = None,
    organisations: Iterable[Organisation] = (),
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, pl.DataFrame]]:
    """Findings, actions and the run tables the what-if reads."""
    ex = Example("t", accounts, groups, memberships, [], [], {})
    t = example_tables(ex, NOW)
    mem = t["memberships"]
    if via:
        mem = mem.with_columns(
            via=pl.struct("group_id", "member_id").map_elements(
                lambda s: via.get((s["group_id"], s["member_id"]), "member"), return_dtype=pl.String
            )
        )
    closure = group_closure(mem)
    views = build_views(
        t["accounts"],
        t["groups"],
        mem,
        t["grants"],
        closure=closure,
        effective=effective_memberships(mem, closure),
        as_of=NOW,
    )
    findings = evaluate(rules, views)
    actions = plan_actions(
        findings,
        accounts=t["accounts"],
        groups=t["groups"],
        memberships=mem,
        paths=finding_paths(findings, closure),
        organisations=organisations,
    )
    tables = {**t, "memberships": mem, "group_closure": closure, "findings": findings}
    tables["finding_paths"] = finding_paths(findings, closure)
    tables["effective_memberships"] = effective_memberships(mem, closure)
    return findings, actions, tables


def what_if_of(rules: list[Rule], tables: dict[str, pl.DataFrame], actions: pl.DataFrame) -> WhatIf:
    """The plan applied to the tables, re-expanded and re-evaluated with the same rules."""

    def reevaluate(
        accounts: pl.DataFrame, groups: pl.DataFrame, mem: pl.DataFrame, grants: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        closure = group_closure(mem)
        eff = effective_memberships(mem, closure)
        views = build_views(
            accounts, groups, mem, grants, closure=closure, effective=eff, as_of=NOW
        )
        return evaluate(rules, views), eff

    return what_if(tables, actions, reevaluate)


def kinds(actions: pl.DataFrame) -> dict[tuple[str, str | None, str | None], int]:
    return {
        (k, g, m): n
        for k, g, m, n in actions.select("kind", "group_id", "member_id", "resolves").iter_rows()
    }


def test_nested_access_is_cut_at_the_crossing_edge(rules: list[Rule]) -> None:
    _, actions = plan(
        rules,
        [{"id": f"u{i}", "org": "wmp"} for i in range(4)],
        [
            {"id": "dept", "org": "wmp"},
            {"id": "res", "org": "warks"},
            {"id": "app", "org": "warks"},
        ],
        [["dept", f"u{i}"] for i in range(4)] + [["res", "dept"], ["app", "res"]],
    )
    # one un-nest resolves 4 members x 2 groups of nested access + the nesting finding itself
    assert kinds(actions) == {("unnest-group", "res", "dept"): 9}
    assert actions["severity"].to_list() == ["high"]
    assert actions["powershell"][0] == (
        "Remove-ADGroupMember -Identity 'res' -Members 'dept' -Confirm:$false"
    )


def test_direct_cross_membership_removes_the_member(rules: list[Rule]) -> None:
    _, actions = plan(
        rules,
        [{"id": "u1", "org": "wmp"}, {"id": "k1", "org": "warks"}],
        [{"id": "res", "org": "warks"}, {"id": "app", "org": "warks"}],
        [["res", "u1"], ["res", "k1"], ["app", "res"]],
    )
    assert kinds(actions) == {("remove-member", "res", "u1"): 2}  # direct + nested into app


def test_mixed_group_is_split_not_stripped(rules: list[Rule]) -> None:
    wm = [{"id": f"w{i}", "org": "wmp"} for i in range(5)]
    wk = [{"id": f"k{i}", "org": "warks"} for i in range(5)]
    _, actions = plan(
        rules, wm + wk, [{"id": "prj", "org": "wmp"}], [["prj", a["id"]] for a in wm + wk]
    )
    # the mixed finding + 5 direct findings, one split action
    assert kinds(actions) == {("split-group", "prj", None): 6}
    # no organisations configured: no force's OU or prefix to use (the name says whose it is)
    cmd = actions["powershell"][0].splitlines()
    assert cmd == [
        "$g = New-ADGroup -Name 'prj-WARKS' -SamAccountName 'prj-WARKS' -GroupScope Global "
        "-GroupCategory Security -Description 'Split from prj by accessaudit' -PassThru",
        "Add-ADGroupMember -Identity $g.ObjectGUID -Members 'k0','k1','k2','k3','k4'",
        "Remove-ADGroupMember -Identity 'prj' -Members 'k0','k1','k2','k3','k4' -Confirm:$false",
    ]


def test_mixed_group_nested_across_is_split_and_unnested(rules: list[Rule]) -> None:
    # M (wmp, 5 + 5) nested in R (warks): the warks members keep R through their new group,
    # and M itself leaves R, so the wmp members lose R (12 findings, all resolved, no collateral)
    wm = [{"id": f"w{i}", "org": "wmp"} for i in range(5)]
    wk = [{"id": f"k{i}", "org": "warks"} for i in range(5)]
    groups = [{"id": "M", "org": "wmp"}, {"id": "R", "org": "warks"}]
    mem = [["M", a["id"]] for a in wm + wk] + [["R", "M"]]
    findings, actions, tables = plan_tables(rules, wm + wk, groups, mem)
    assert findings.height == 12
    assert kinds(actions) == {("split-group", "M", None): 12}
    cmd = actions["powershell"][0].splitlines()
    assert "Add-ADGroupMember -Identity 'R' -Members $g.ObjectGUID" in cmd
    assert cmd[-1] == "Remove-ADGroupMember -Identity 'R' -Members 'M' -Confirm:$false"
    assert actions["summary"][0] == (
        "Split mixed group M: move 5 member(s) of warks to new group M-WARKS (joining 1 parent "
        "group(s) of warks); un-nest M from 1 group(s) of the other force"
    )
    w = what_if_of(rules, tables, actions)
    assert w.planned == 12 and w.remaining == [] and w.new == []
    assert w.collateral.height == 0


WM_OU, WK_OU = "OU=West Mercia,DC=alliance,DC=local", "OU=Warwickshire,DC=alliance,DC=local"


def _group(gid: str, org: str, name: str, ou: str) -> dict[str, Any]:
    return {"id": gid, "org": org, "name": name, "dn": f"CN={name},{ou}"}


def test_split_creates_the_group_in_the_movers_force(rules: list[Rule], settings: Settings) -> None:
    wm = [{"id": f"w{i}", "org": "wmp"} for i in range(5)]
    wk = [{"id": f"k{i}", "org": "warks"} for i in range(5)]
    groups = [
        _group("prj", "wmp", "WMP-PRJ-Joint", f"OU=Groups,{WM_OU}"),
        # no Projects OU under Warwickshire: its group goes to the force's own OU
        _group("ops", "wmp", "wmp-OPS-Mixed", f"OU=Projects,{WM_OU}"),
        _group("res", "warks", "WARKS-RES-1", f"OU=Groups,{WK_OU}"),  # warks parent of prj
        _group("app", "wmp", "WMP-APP-1", f"OU=Groups,{WM_OU}"),  # wmp parent of prj
    ]
    mem = [[g, a["id"]] for g in ("prj", "ops") for a in wm + wk] + [["res", "prj"], ["app", "prj"]]
    _, actions, tables = plan_tables(
        rules, wm + wk, groups, mem, organisations=settings.organisations
    )
    split = {r["group_id"]: r["powershell"].splitlines() for r in actions.iter_rows(named=True)}
    assert set(split) == {"prj", "ops"} and set(actions["kind"]) == {"split-group"}
    assert split["prj"][0] == (
        "$g = New-ADGroup -Name 'WARKS-PRJ-Joint' -SamAccountName 'WARKS-PRJ-Joint' "
        f"-GroupScope Global -GroupCategory Security -Path 'OU=Groups,{WK_OU}' "
        "-Description 'Split from WMP-PRJ-Joint by accessaudit' -PassThru"
    )
    # movers by objectGUID into the new group's; the new group into its force's parent only
    assert split["prj"][1:] == [
        "Add-ADGroupMember -Identity $g.ObjectGUID -Members 'k0','k1','k2','k3','k4'",
        "Add-ADGroupMember -Identity 'res' -Members $g.ObjectGUID",
        "Remove-ADGroupMember -Identity 'prj' -Members 'k0','k1','k2','k3','k4' -Confirm:$false",
        "Remove-ADGroupMember -Identity 'res' -Members 'prj' -Confirm:$false",
    ]
    assert "-Name 'WARKS-OPS-Mixed' -SamAccountName 'WARKS-OPS-Mixed'" in split["ops"][0]
    assert f"-Path '{WK_OU}'" in split["ops"][0]
    # the next run's attribution (the configured matchers) gives the new groups to warks
    made = [
        re.search(r"-Name '([^']*)' .* -Path '([^']*)'", lines[0]).groups()  # type: ignore[union-attr]
        for lines in split.values()
    ]
    new = pl.DataFrame(
        [
            {"source": "ad:alliance.local", "group_id": name, "name": name, "dn": f"CN={name},{ou}",
             "kind": "security", "privileged": False, "mastered": "ad", "owners": []}
            for name, ou in made
        ],
        schema=GROUPS_SCHEMA,
    )  # fmt: skip
    assert attribute_groups(new, tables["accounts"], settings)["org"].to_list() == ["warks"] * 2
    w = what_if_of(rules, tables, actions)
    assert w.remaining == [] and w.new == [] and w.collateral.height == 0


def test_split_names_fit_in_64_characters_and_never_clash(
    rules: list[Rule], settings: Settings
) -> None:
    """cn (New-ADGroup -Name) holds at most 64 characters: a long name is cut, and names the cut
    makes equal, or that are taken already, get "-split" and then the group's id."""
    wm = [{"id": f"w{i}", "org": "wmp"} for i in range(5)]
    wk = [{"id": f"k{i}", "org": "warks"} for i in range(5)]
    long = "WMP-PRJ-" + "Operation Kestrel Joint Intelligence Cell " * 2  # 92 characters
    groups = [
        _group("g1", "wmp", long + "A", f"OU=Groups,{WM_OU}"),
        _group("g2", "wmp", long + "B", f"OU=Groups,{WM_OU}"),  # same first 64 as g1's
        _group("g3", "wmp", "WMP-X", f"OU=Groups,{WM_OU}"),
        _group("x", "warks", "WARKS-X", f"OU=Groups,{WK_OU}"),  # g3's name is taken
        _group("x2", "warks", "WARKS-X-split", f"OU=Groups,{WK_OU}"),  # and so is "-split"
    ]
    mem = [[g, a["id"]] for g in ("g1", "g2", "g3") for a in wm + wk]
    _, actions = plan(rules, wm + wk, groups, mem, organisations=settings.organisations)
    names = {
        r["group_id"]: re.search(r"-Name '([^']*)'", r["powershell"]).group(1)  # type: ignore[union-attr]
        for r in actions.iter_rows(named=True)
    }
    new = ("WARKS-PRJ-" + "Operation Kestrel Joint Intelligence Cell " * 2)[:55].rstrip()
    assert names == {
        "g1": new + "-split-g1",  # 64 characters; "<first 58>-split" would be g2's too
        "g2": new + "-split-g2",
        "g3": "WARKS-X-split-g3",
    }
    assert all(len(n) <= 64 for n in names.values())


def test_privileged_primary_group_and_inactive(rules: list[Rule]) -> None:
    old = {"id": "old", "org": "warks", "enabled": False, "sid": "S-1-5-21-10-20-30-1105"}
    _, actions = plan(
        rules,
        [{"id": "adm", "org": "warks"}, old],
        [{"id": "da", "org": "wmp", "privileged": True}, {"id": "res", "org": "wmp"}],
        [["da", "adm"], ["res", "old"]],
        via={("res", "old"): "primaryGroupID"},
    )
    got = kinds(actions)
    assert got == {
        ("remove-member", "da", "adm"): 1,
        ("remove-member", "res", "old"): 1,
        ("remove-memberships", None, "old"): 1,
    }
    rows = {r["member_id"] + r["kind"]: r for r in actions.iter_rows(named=True)}
    assert rows["admremove-member"]["severity"] == "critical"
    assert actions["severity"].to_list()[0] == "critical"  # worst first
    # AD refuses a primaryGroupID of a group the account is not in: Domain Users of its domain
    # (its SID without the RID, then 513) first, then the switch, then the old group
    primary = (
        "Add-ADGroupMember -Identity 'S-1-5-21-10-20-30-513' -Members 'old'; "
        "Set-ADUser -Identity 'old' -Replace @{primaryGroupID=513}; "
    )
    assert rows["oldremove-member"]["powershell"] == (
        f"{primary}Remove-ADGroupMember -Identity 'res' -Members 'old' -Confirm:$false"
    )
    assert rows["oldremove-memberships"]["powershell"] == (
        f"{primary}Remove-ADPrincipalGroupMembership -Identity 'old' -MemberOf 'res' "
        "-Confirm:$false"
    )
    assert rows["oldremove-memberships"]["summary"] == (
        "Remove disabled account old from 1 group(s) of the other force"
    )


def test_primary_group_domain_sid_from_the_group_or_the_domain(rules: list[Rule]) -> None:
    _, actions = plan(
        rules,
        [{"id": "a", "org": "warks"}, {"id": "b", "org": "warks"}],
        [
            {"id": "g", "org": "wmp", "sid": "S-1-5-21-7-8-9-1300"},
            {"id": "h", "org": "wmp"},
        ],
        [["g", "a"], ["h", "b"]],
        via={("g", "a"): "primaryGroupID", ("h", "b"): "primaryGroupID"},
    )
    cmds = dict(actions.select("member_id", "powershell").iter_rows())
    assert cmds["a"].startswith("Add-ADGroupMember -Identity 'S-1-5-21-7-8-9-513' -Members 'a'; ")
    assert cmds["b"].startswith(
        "Add-ADGroupMember -Identity \"$((Get-ADDomain).DomainSID.Value)-513\" -Members 'b'; "
    )


def test_inactive_account_is_credited_to_the_action_that_cuts_its_access(
    rules: list[Rule],
) -> None:
    # d1 (dormant) and d3 (disabled) reach res through dept (the un-nest cuts it); d3 is also
    # a direct member of res2 (its own remove-member); d2 (disabled) only directly in res
    accounts: list[dict[str, Any]] = [
        *({"id": f"u{i}", "org": "wmp"} for i in range(3)),
        {"id": "d1", "org": "wmp", "days_inactive": 400},
        {"id": "d2", "org": "wmp", "enabled": False},
        {"id": "d3", "org": "wmp", "enabled": False},
    ]
    groups = [{"id": "dept", "org": "wmp"}, {"id": "res", "org": "warks"},
              {"id": "res2", "org": "warks"}]  # fmt: skip
    mem = [["dept", m] for m in ("u0", "u1", "u2", "d1", "d3")]
    mem += [["res", "dept"], ["res", "d2"], ["res2", "d3"]]
    findings, actions, tables = plan_tables(rules, accounts, groups, mem)
    assert kinds(actions) == {
        ("unnest-group", "res", "dept"): 8,  # nesting + 5 nested + d1's and d3's inactivity
        ("remove-member", "res", "d2"): 1,
        ("remove-member", "res2", "d3"): 1,
        ("remove-memberships", None, "d2"): 1,
    }
    keys = dict(actions.select("action_id", "finding_keys").iter_rows())
    assert "inactive-cross-org-access|d1" in keys["unnest-group|res|dept||"]
    strip = actions.filter(pl.col("kind") == "remove-memberships").row(0, named=True)
    assert strip["powershell"] == (
        "Remove-ADPrincipalGroupMembership -Identity 'd2' -MemberOf 'res' -Confirm:$false"
    )
    assert strip["summary"] == "Remove disabled account d2 from 1 group(s) of the other force"
    assert_actions_do_what_they_claim(actions)
    w = what_if_of(rules, tables, actions)
    assert w.planned == findings.height and w.remaining == [] and w.collateral.height == 0


def _executable(command: str | None) -> bool:
    lines = (command or "").splitlines()
    return any(x.strip() and not x.strip().startswith("#") for x in lines)


def assert_actions_do_what_they_claim(actions: pl.DataFrame) -> None:
    """Every action credited with a finding changes something: at least one command line that
    runs (an application's role, changed by hand in the application, is an instruction), and a
    remove-memberships strips at least one membership."""
    for a in actions.filter(pl.col("resolves") > 0).iter_rows(named=True):
        if a["system"] != "app":
            assert _executable(a["powershell"]), a
        if a["kind"] == "remove-memberships":
            assert "Remove-" in a["powershell"], a


def test_every_finding_has_exactly_one_action(analysis: Analysis) -> None:
    keys = analysis.actions.explode("finding_keys")["finding_keys"]
    assert keys.n_unique() == keys.len() == analysis.findings.height
    assert analysis.actions["resolves"].sum() == analysis.findings.height
    assert analysis.actions["powershell"].null_count() == 0
    assert analysis.actions["action_id"].n_unique() == analysis.actions.height


def test_demo_plan_does_what_it_claims(
    analysis: Analysis, rules: list[Rule], settings: Settings
) -> None:
    """On the demo sample: every crediting action has a command that runs, no action is a
    comment or a lone Disable-ADAccount claiming a finding, and the plan applied in memory
    leaves no planned finding and takes no same-force access."""
    from support.fixtures import NOW as SAMPLE_NOW

    from accessaudit.pipeline.analyse import rule_overrides

    acts = analysis.actions
    assert_actions_do_what_they_claim(acts)
    strips = acts.filter(pl.col("kind") == "remove-memberships")["powershell"]
    assert not any(p.startswith(("#", "Disable-ADAccount")) for p in strips)
    assert acts.filter(pl.col("kind").is_in(list(SIMULATED)))["resolves"].sum() > 0
    tables = {
        "accounts": analysis.accounts,
        "groups": analysis.groups,
        "memberships": analysis.memberships,
        "grants": analysis.grants,
        "group_closure": analysis.closure,
        "effective_memberships": analysis.effective,
        "findings": analysis.findings,
        "finding_paths": analysis.paths,
    }
    overrides = rule_overrides(settings, rules)

    def reevaluate(
        accounts: pl.DataFrame, groups: pl.DataFrame, mem: pl.DataFrame, grants: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        closure = group_closure(mem)
        eff = effective_memberships(mem, closure)
        views = build_views(
            accounts, groups, mem, grants, closure=closure, effective=eff, as_of=SAMPLE_NOW
        )
        return evaluate(rules, views, overrides), eff

    w = what_if(tables, acts, reevaluate)
    assert w.planned > 0 and w.remaining == [] and w.new == [] and w.collateral.height == 0


def test_demo_plan_cuts_planted_nestings(analysis: Analysis) -> None:
    names = dict(analysis.groups.select("group_id", "name").iter_rows())
    top = [
        (r["kind"], names.get(r["member_id"]), names.get(r["group_id"]), r["resolves"])
        for r in analysis.actions.filter(pl.col("kind") == "unnest-group").iter_rows(named=True)
    ]
    assert [(k, m, g) for k, m, g, _ in top] == [
        ("unnest-group", "WARKS-DEPT-ICT", "Server Operators"),
        ("unnest-group", "WMP-DEPT-Intelligence", "WARKS-RES-0001"),
        ("unnest-group", "WARKS-DEPT-CID", "WMP-RES-0001"),
    ]


def test_command_quoting_neutralises_hostile_names() -> None:
    s = pl.Series(["O'Brien", "a\u2019b", "x\n; Remove-ADUser y", "\u202eevil"])
    got = pl.select(ps_quote(pl.lit(s))).to_series().to_list()
    assert got == ["'O''Brien'", "'a\u2019\u2019b'", "'x; Remove-ADUser y'", "'evil'"]


def test_application_commands(tmp_path) -> None:
    from accessaudit.pipeline.demo import prepare_demo
    from accessaudit.pipeline.run import run_audit

    result = run_audit(prepare_demo(tmp_path, accounts=600, seed=2))
    acts = result.analysis.actions
    ghost = acts.filter(pl.col("member_id") == "csv:niche:user:niche.ghost0")["powershell"]
    assert ghost.to_list() == [
        "# In application csv:niche: user niche.ghost0 matches no directory account; "
        "identify its owner or remove the user"
    ]
    role = acts.filter(pl.col("group_id").str.starts_with("csv:athena:role:"))
    assert role.height == 4
    # the role as the application writes it (its application is the source named before it)
    assert all(
        c.startswith("# In application csv:athena: remove role ") for c in role["powershell"]
    )
    named = {c.split(": remove role ")[1].split(" from user ")[0] for c in role["powershell"]}
    assert named <= {"Case Officer", "Reviewer", "Admin"}
