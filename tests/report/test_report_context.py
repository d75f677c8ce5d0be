"""build_context: pure, plain data, exact counts, names resolved, hidden characters visible."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import polars as pl
import pytest
from support.report_sample import (
    BIDI_SHOWN,
    EXPECTED_ACCEPTED,
    EXPECTED_OPEN,
    FORMULA,
    GROUP_SCRIPT,
    MANIFEST,
    XSS_SCRIPT,
    frames,
    make_context,
)

from accessaudit.report.context import (
    ACTION_COLUMNS,
    FINDING_COLUMNS,
    OBJECT_COLUMNS,
    SEVERITIES,
    ReportInput,
    build_context,
    visible,
)
from accessaudit.report.evidence import RuleDoc

PLAIN = (str, int, bool, type(None))
EVIDENCE_A4 = ["company:warks", "upn_suffix:wmp"]


def _assert_plain(value: Any, where: str = "context") -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), f"{where}: key {k!r}"
            _assert_plain(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _assert_plain(v, f"{where}[{i}]")
    else:
        assert isinstance(value, PLAIN), f"{where} is {type(value).__name__}"


def test_context_is_plain_data_and_json_serialisable(context: dict[str, Any]) -> None:
    _assert_plain(context)
    json.dumps(context)


def test_context_is_deterministic() -> None:
    assert make_context() == make_context()


def test_severity_counts_exact(context: dict[str, Any]) -> None:
    by_sev = context["summary"]["by_severity"]
    assert [s["severity"] for s in by_sev] == list(SEVERITIES)
    assert {s["severity"]: s["open"] for s in by_sev} == EXPECTED_OPEN
    assert {s["severity"]: s["accepted"] for s in by_sev} == EXPECTED_ACCEPTED
    assert context["summary"]["open_total"] == 5
    assert context["summary"]["accepted_total"] == 1
    assert context["summary"]["findings_total"] == 6


def test_counts_by_rule_and_force(context: dict[str, Any]) -> None:
    by_rule = [(r["rule_id"], r["open"], r["accepted"]) for r in context["summary"]["by_rule"]]
    assert by_rule == [
        ("cross-privileged", 1, 0),
        ("cross-member", 2, 1),
        ("nested-cross", 1, 0),
        ("attribution-conflict", 1, 0),
    ]
    by_force = [
        (f["principal_org"], f["resource_org"], f["open"]) for f in context["summary"]["by_force"]
    ]
    assert by_force == [("wmp", "warks", 4), ("wmp", "", 1)]
    assert context["summary"]["actions_total"] == 4
    assert context["summary"]["actions_resolves"] == 5
    assert context["summary"]["actions_by_org"] == [
        {"org": "warks", "actions": 3, "resolves": 4},
        {"org": "wmp", "actions": 1, "resolves": 1},
    ]


def test_top_items_are_open_and_worst_first(context: dict[str, Any]) -> None:
    top = context["summary"]["top"]
    assert [f["finding_key"] for f in top] == [
        "cross-privileged:a1:g2",
        "cross-member:a3:g1",  # same severity and rule: by principal name ("=" < "D")
        "cross-member:a4:g4",
        "nested-cross:g3:g2",
        "attribution-conflict:a4",
    ]
    assert all(f["status"] == "open" for f in top)


def test_findings_resolve_names_evidence_and_path(context: dict[str, Any]) -> None:
    rows = {f["finding_key"]: f for f in context["findings"]["first_page"]}
    nested = rows["cross-privileged:a1:g2"]
    assert nested["principal_name"] == XSS_SCRIPT
    assert nested["principal_secondary"] == "wmp.alice"
    assert nested["principal_evidence"] == ["company:wmp", "upn_suffix:wmp"]
    assert nested["resource_name"] == "WARKS-Domain Admins"
    assert nested["rule_title"] == "Cross-force privileged access"
    assert nested["rationale"] == "An account of one force holds a privileged group of the other."
    assert [(h["name"], h["org"], h["kind"]) for h in nested["path"]] == [
        (XSS_SCRIPT, "wmp", "account"),
        (GROUP_SCRIPT, "wmp", "group"),
        ("WARKS-Domain Admins", "warks", "group"),
    ]
    assert nested["path_partial"] is False
    direct = rows["cross-member:a3:g1"]
    assert [h["name"] for h in direct["path"]] == [FORMULA, "WARKS-Finance"]
    assert direct["detail"] == FORMULA
    group_finding = rows["nested-cross:g3:g2"]
    assert group_finding["principal_kind"] == "group"
    assert group_finding["principal_name"] == GROUP_SCRIPT
    conflict = rows["attribution-conflict:a4"]
    assert conflict["principal_conflict"] is True
    assert conflict["resource_name"] == "—"
    assert conflict["path"] == []
    assert rows["cross-member:a2:g5"]["status"] == "accepted"


def test_hidden_characters_made_visible_and_flagged(context: dict[str, Any]) -> None:
    rows = {f["finding_key"]: f for f in context["findings"]["first_page"]}
    assert rows["cross-member:a4:g4"]["principal_name"] == BIDI_SHOWN
    assert rows["cross-member:a4:g4"]["hidden"] is True
    assert rows["cross-member:a3:g1"]["hidden"] is False
    assert "\u202e" not in json.dumps(context, ensure_ascii=False)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain", "plain"),
        ("Siân O'Brien", "Siân O'Brien"),
        ("a\u200bb", "a[U+200B]b"),
        ("x\u2066y\u2069", "x[U+2066]y[U+2069]"),
        ("line\nbreak", "line[U+000A]break"),
        ("nul\x00", "nul[U+0000]"),
        ("\ufeffbom", "[U+FEFF]bom"),
        (None, ""),
    ],
)
def test_visible(raw: str | None, shown: str) -> None:
    assert visible(raw) == shown


def test_worklist_grouped_by_force_then_group(context: dict[str, Any]) -> None:
    rows = context["worklist"]["first_page"]
    assert [(a["owning_org"], a["group_name"], a["action_id"]) for a in rows] == [
        # worst group first within a force (critical), then by impact, then by name
        ("warks", "WARKS-Domain Admins", "unnest-group:g2:g3"),
        ("warks", "*)(uid=*", "remove-member:g4:a4"),
        ("warks", "WARKS-Finance", "remove-member:g1:a3"),
        ("wmp", "—", "review-attribution:a4"),
    ]
    assert [a["group_start"] for a in rows] == [True, True, True, True]
    assert rows[0]["member_name"] == GROUP_SCRIPT
    assert rows[0]["resolves"] == 2
    assert rows[2]["member_name"] == FORMULA
    data = context["worklist"]["data"]
    assert data["columns"] == list(ACTION_COLUMNS)
    assert [r[0] for r in data["rows"]] == [a["action_id"] for a in rows]
    assert context["findings"]["data"]["columns"] == list(FINDING_COLUMNS)


def test_script_data_names_objects_once(context: dict[str, Any]) -> None:
    objects = context["objects"]
    assert objects["columns"] == list(OBJECT_COLUMNS)
    # every account and group named by a finding, action or path, exactly once
    ids = sorted(row[0] for row in objects["rows"])
    assert ids == ["a1", "a2", "a3", "a4", "g1", "g2", "g3", "g4", "g5"]
    by_id = {row[0]: row for row in objects["rows"]}
    assert by_id["a4"] == ["a4", BIDI_SHOWN, "wmp.dave", "account", "wmp", EVIDENCE_A4, True]
    assert by_id["g3"][1:5] == [GROUP_SCRIPT, "", "group", "wmp"]
    findings = context["findings"]["data"]
    first = dict(zip(findings["columns"], findings["rows"][0], strict=True))
    assert [objects["rows"][i][0] for i in first["path"]] == ["a1", "g3", "g2"]
    assert objects["rows"][first["principal"]][0] == "a1"
    assert objects["rows"][first["resource"]][0] == "g2"


def test_unknown_ids_become_placeholder_objects() -> None:
    f = frames()
    f["accounts"] = f["accounts"].filter(pl.col("account_id") != "a3")
    ctx = build_context(ReportInput(manifest=MANIFEST, rules=[], title="t", **f))
    rows = {r["finding_key"]: r for r in ctx["findings"]["first_page"]}
    assert rows["cross-member:a3:g1"]["principal_name"] == "a3"
    assert rows["cross-member:a3:g1"]["principal_kind"] == "unknown"
    assert rows["cross-member:a3:g1"]["principal_org"] == "wmp"  # the rule's attribution


def test_page_size_limits_server_rows() -> None:
    ctx = make_context(page_size=2)
    assert len(ctx["worklist"]["first_page"]) == 2
    assert len(ctx["worklist"]["data"]["rows"]) == 4
    assert len(ctx["findings"]["first_page"]) == 2
    assert ctx["worklist"]["total"] == 4


def test_incomplete_sources_listed() -> None:
    manifest = json.loads(json.dumps(MANIFEST))
    manifest["complete"] = False
    manifest["sources"][0]["complete"] = False
    manifest["sources"][0]["units"][1] = {
        "name": "members of WARKS-Finance",
        "complete": False,
        "detail": "range retrieval stopped at 1500",
        "count": 1500,
    }
    ctx = make_context(manifest)
    assert ctx["complete"] is False
    [source] = ctx["incomplete_sources"]
    assert source["name"] == "alliance-ad"
    assert [(u["name"], u["detail"]) for u in source["incomplete_units"]] == [
        ("members of WARKS-Finance", "range retrieval stopped at 1500")
    ]


def test_complete_requires_every_unit() -> None:
    manifest = json.loads(json.dumps(MANIFEST))
    manifest["sources"][0]["units"][0]["complete"] = False
    ctx = make_context(manifest)
    assert ctx["complete"] is False
    assert make_context()["complete"] is True


def test_run_metadata_and_files(context: dict[str, Any]) -> None:
    assert context["run"] == {
        "run_id": "20261126T050000Z",
        "tool_version": "0.1.0",
        "started": "2026-11-26T05:00:00+00:00",
        "finished": "2026-11-26T05:03:00+00:00",
        "generated": "2026-11-26T05:03:00+00:00",
        "config_hash": "c0ffee" * 4,
        "rules_hash": "beef" * 6,
        # what a person reads; the ISO times stay in <time datetime=...>
        "generated_human": "26 Nov 2026, 05:03 UTC",
        "window_human": "26 Nov 2026, 05:00:00 to 05:03:00 UTC (3 min 0 s)",
    }
    assert [f["name"] for f in context["files"]] == ["accounts.parquet", "groups.parquet"]
    assert context["sources"][0]["counts"] == [
        {"name": "accounts", "value": 4},
        {"name": "groups", "value": 5},
        {"name": "memberships", "value": 7},
        {"name": "grants", "value": 0},
    ]


def test_rules_appendix_and_any_rule_like_object() -> None:
    @dataclass(frozen=True)
    class LoadedRule:  # what the rules engine might pass: more attributes than RuleDoc
        id: str
        title: str
        severity: str
        rationale: str
        remediation: str
        action: str
        query: str

    rules = [
        LoadedRule("cross-member", "Cross member", "high", "Why.", "How.", "remove-member", "q")
    ]
    f = frames()
    ctx = build_context(ReportInput(manifest=MANIFEST, rules=rules, title="t", **f))
    ids = [r["id"] for r in ctx["rules"]]
    # documented rules first; rules seen only in findings still get an entry
    assert ids[0] == "cross-member"
    assert sorted(ids) == sorted(
        ["cross-member", "cross-privileged", "nested-cross", "attribution-conflict"]
    )
    assert ctx["rules"][0]["rationale"] == "Why."
    assert ctx["rules"][0]["open"] == 2


def test_empty_run() -> None:
    f = frames()
    ctx = build_context(
        ReportInput(
            manifest={},
            findings=f["findings"].clear(),
            actions=f["actions"].clear(),
            accounts=f["accounts"].clear(),
            groups=f["groups"].clear(),
            paths=pl.DataFrame(schema={"finding_key": pl.String, "path": pl.List(pl.String)}),
            rules=[RuleDoc("r", "R", "info", "", "", "remove-member")],
            title="Empty",
        )
    )
    assert ctx["complete"] is False  # no proof of completeness
    assert ctx["summary"]["open_total"] == 0
    assert ctx["worklist"]["first_page"] == []


def test_worklist_and_top_actions_are_worst_first_whatever_the_force_is_called() -> None:
    """A force's name never puts its medium actions above another force's critical one: the
    report's worklist (groups) and its top-10 box follow severity, then findings resolved."""
    from accessaudit.report.objects import Objects
    from accessaudit.report.rows import A, action_rows, top_actions

    acts = pl.DataFrame(
        {
            "action_id": ["s1", "s2", "w1", "w2", "k1"],
            "kind": ["decide-shared-account"] * 2 + ["unnest-group", "remove-member", "x"],
            "severity": ["medium", "medium", "critical", "high", "high"],
            "owning_org": ["shared", "shared", "wmp", "wmp", "warks"],
            "group_id": ["gs", "gs", "gw", "gw2", "gk"],
            "member_id": ["a1", "a2", "g9", "a3", "a4"],
            "resolves": [1, 1, 261, 1, 5],
            "summary": ["s"] * 5,
            "powershell": ["p"] * 5,
        }
    )
    objs = Objects(pl.DataFrame(), pl.DataFrame(), set())
    rows = action_rows(acts, objs)
    # groups: gw (critical) first, then gk (high, resolves 5), gw2 (high, 1), gs (medium)
    assert [r[A["action_id"]] for r in rows] == ["w1", "k1", "w2", "s1", "s2"]
    assert [r[A["group_actions"]] for r in rows] == [1, 1, 1, 2, 2]
    assert [a[A["action_id"]] for a in top_actions(rows, 3)] == ["w1", "k1", "w2"]
