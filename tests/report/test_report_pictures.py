"""The report's pictures and the evidence pack's per-rule part, on rows built here."""

from __future__ import annotations

from typing import Any

from accessaudit.report.pack import SAMPLES, pack_path, pack_section
from accessaudit.report.pictures import (
    actions_by_force,
    force_matrix,
    rule_results,
    sparkline,
    sparklines,
)
from accessaudit.report.rows import ACTION_COLUMNS, FINDING_COLUMNS


def finding(rule: str, sev: str, p_org: str, r_org: str, status: str = "open") -> list[Any]:
    row = dict.fromkeys(FINDING_COLUMNS)
    row.update(rule_id=rule, severity=sev, principal_org=p_org, resource_org=r_org, status=status)
    row["finding_key"] = f"{rule}/{p_org}/{r_org}/{sev}/{status}"
    return [row[c] for c in FINDING_COLUMNS]


def action(aid: str, org: str, sev: str, resolves: int, apply: str | None) -> list[Any]:
    row = dict.fromkeys(ACTION_COLUMNS)
    row.update(action_id=aid, owning_org=org, severity=sev, resolves=resolves, apply=apply)
    return [row[c] for c in ACTION_COLUMNS]


ROWS = [
    *[finding("nested", "high", "wmp", "warks") for _ in range(40)],
    finding("privileged", "critical", "wmp", "warks"),
    *[finding("nested", "high", "warks", "wmp") for _ in range(3)],
    finding("dormant", "medium", "warks", ""),  # reaches no resource: a review
    finding("shared", "medium", "shared", "wmp"),
    finding("nested", "high", "warks", "wmp", status="accepted"),  # not counted: accepted
]
ORGS = ["wmp", "warks", "shared", "unattributed"]


def test_force_matrix_counts_open_findings_with_the_worst_severity() -> None:
    x = force_matrix(ROWS, ORGS, ["wmp", "warks"])
    assert x["rows"] == ["wmp", "warks", "shared"]
    assert x["cols"] == ["wmp", "warks", "no resource"]
    got = [[(c["n"], c["worst"], c["heat"], c["cross"]) for c in row] for row in x["cells"]]
    assert got == [
        [(0, "", 0, False), (41, "critical", 4, True), (0, "", 0, False)],
        [(3, "high", 1, True), (0, "", 0, False), (1, "medium", 1, False)],  # 3/41: 5-20%
        [(1, "medium", 1, False), (0, "", 0, False), (0, "", 0, False)],
    ]
    assert x["total"] == 46
    assert force_matrix([], ORGS)["total"] == 0


def test_actions_by_force_by_state_and_severity() -> None:
    acts = [
        action("a1", "wmp", "critical", 10, None),
        action("a2", "wmp", "high", 2, "apply does not rewrite security descriptors"),
        action("a3", "wmp", "high", 1, None),
        action("a4", "warks", "medium", 1, None),
    ]
    c = actions_by_force(acts)
    assert [(f["org"], f["total"], f["resolves"]) for f in c["forces"]] == [
        ("wmp", 3, 13),
        ("warks", 1, 1),
    ]
    wmp = c["forces"][0]
    assert [(s["state"], s["n"], s["x"], s["width"]) for s in wmp["segments"]] == [
        ("apply executes it", 2, "0.00", "66.67"),
        ("left to a person", 1, "66.67", "33.33"),
    ]
    assert [(s["severity"], s["n"]) for s in wmp["severity"]] == [("critical", 1), ("high", 2)]
    assert not c["tracked"]
    # the team's own states, where the worklist was imported, take precedence
    t = actions_by_force(acts, {"a1": "Done", "a2": "in progress"})
    assert [(s["state"], s["n"]) for s in t["forces"][0]["segments"]] == [
        ("apply executes it", 1),
        ("in progress", 1),
        ("done", 1),
    ]
    assert t["tracked"]


def test_sparklines_scale_to_the_largest_count() -> None:
    s = sparkline([10, 5, None, 0])
    assert s["points"] == "0.0,2.0 32.0,10.0 96.0,18.0"
    assert s["last"] == {"x": "96.0", "y": "18.0"} and not s["single"]
    assert sparkline([7])["single"] and sparkline([])["points"] == ""
    by_rule = {"rows": [{"rule_id": "r1", "cells": [{"open": 2}, {"open": 1}]}]}
    assert sparklines(by_rule)["r1"]["points"] == "0.0,2.0 96.0,10.0"


def test_a_rule_that_found_nothing_is_listed_as_passed() -> None:
    docs = {r: {"id": r, "title": r} for r in ("privileged", "nested", "guest", "shared")}
    shared_accepted = [finding("shared", "medium", "shared", "wmp", status="accepted")]
    res = rule_results(docs, [*ROWS[:41], *shared_accepted])
    assert [(r["id"], r["result"], r["open"], r["accepted"]) for r in res["rules"]] == [
        ("privileged", "open", 1, 0),
        ("nested", "open", 40, 0),
        ("guest", "passed", 0, 0),
        ("shared", "accepted", 0, 1),
    ]
    assert [r["id"] for r in res["passed"]] == ["guest"]


def test_the_pack_samples_each_rule_in_order() -> None:
    docs = {r: {"id": r} for r in ("privileged", "nested", "guest")}
    got = pack_section(ROWS, docs, lambda f: {"key": f[0]})
    assert [(r["id"], len(r["samples"]), r["more"]) for r in got["rules"]] == [
        ("privileged", 1, 0),
        ("nested", SAMPLES, 44 - SAMPLES),  # 40 + 3 + 1 accepted
        ("guest", 0, 0),
    ]
    assert got["rules"][1]["samples"][0] == {"key": "nested/wmp/warks/high/open"}


def test_the_pack_sits_beside_its_report(tmp_path: Any) -> None:
    assert pack_path(tmp_path / "report.html") == tmp_path / "evidence-pack.html"
    assert pack_path(tmp_path / "march.html") == tmp_path / "march-evidence-pack.html"
