"""Remediation actions: placed at the crossing edge, split for mixed groups, safe commands."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl

from accessaudit.analysis.expand import effective_memberships, group_closure
from accessaudit.engine.evaluate import build_views, evaluate, example_tables
from accessaudit.engine.rulefile import Example, Rule
from accessaudit.pipeline import Analysis
from accessaudit.remediation.commands import ps_quote
from accessaudit.remediation.plan import plan_actions

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def plan(
    rules: list[Rule],
    accounts: list[dict[str, Any]],
    groups: list[dict[str, Any]],
    memberships: list[list[str]],
    via: dict[tuple[str, str], str] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
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
        findings, accounts=t["accounts"], groups=t["groups"], memberships=mem, closure=closure
    )
    return findings, actions


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
    cmd = actions["powershell"][0]
    assert cmd.startswith("New-ADGroup -Name 'prj-WARKS' -GroupScope Global")
    assert "Add-ADGroupMember -Identity 'prj-WARKS' -Members 'k0','k1','k2','k3','k4'" in cmd


def test_privileged_primary_group_and_inactive(rules: list[Rule]) -> None:
    _, actions = plan(
        rules,
        [{"id": "adm", "org": "warks"}, {"id": "old", "org": "warks", "enabled": False}],
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
    assert rows["oldremove-member"]["powershell"].startswith(
        "Set-ADUser -Identity 'old' -Replace @{primaryGroupID=513}; Remove-ADGroupMember"
    )
    assert rows["oldremove-memberships"]["powershell"] == (
        "Remove-ADPrincipalGroupMembership -Identity 'old' -MemberOf 'res' -Confirm:$false"
    )


def test_every_finding_has_exactly_one_action(analysis: Analysis) -> None:
    keys = analysis.actions.explode("finding_keys")["finding_keys"]
    assert keys.n_unique() == keys.len() == analysis.findings.height
    assert analysis.actions["resolves"].sum() == analysis.findings.height
    assert analysis.actions["powershell"].null_count() == 0
    assert analysis.actions["action_id"].n_unique() == analysis.actions.height


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
    from accessaudit.pipeline import prepare_demo, run_audit

    result = run_audit(prepare_demo(tmp_path, accounts=600, seed=2))
    acts = result.analysis.actions
    ghost = acts.filter(pl.col("member_id") == "csv:niche:user:niche.ghost0")["powershell"]
    assert ghost.to_list() == [
        "# In application csv:niche: user niche.ghost0 matches no directory account; "
        "identify its owner or remove the user"
    ]
    role = acts.filter(pl.col("group_id").str.starts_with("csv:athena:role:"))
    assert role.height == 4
    assert all(
        c.startswith("# In application csv:athena: remove role Athena") for c in role["powershell"]
    )
