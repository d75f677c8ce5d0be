"""The evidence view's rules as run and exceptions register, the export links and the trend by
rule, in the rendered HTML (jinja2 only, parsed with the stdlib parser)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from support.htmltree import Node, parse
from support.report_sample import MANIFEST, RULES, XSS_IMG, XSS_SCRIPT, frames

from accessaudit.report.context import ReportInput, build_context
from accessaudit.report.evidence import RunRule
from accessaudit.report.html import render_string
from accessaudit.report.trend import TrendPoint, by_rule, trend_context, trend_frame

APPROVERS = [
    {"org": "wmp", "name": "Head of Information Security, West Mercia", "date": "2026-10-01"},
    {"org": "warks", "name": XSS_IMG, "date": "2026-10-02"},
]


def _entry(ex_id: str, state: str, expires: str, **kw: Any) -> dict[str, Any]:
    return {
        "id": ex_id,
        "rule": "cross-member",
        "objects": kw.pop("objects", ["warks.bob"]),
        "justification": kw.pop("justification", "Hosted until the split"),
        "agreement": "Transition services agreement, schedule 4, clause 12.3",
        "agreement_ends": kw.pop("agreement_ends", None),
        "expires": expires,
        "ends": kw.pop("ends", expires),
        "approvers": APPROVERS,
        "ticket": kw.pop("ticket", None),
        "state": state,
        "matched": kw.pop("matched", 0),
        "accepted": kw.pop("accepted", 0),
        "line": 1,
    }


REGISTER: dict[str, Any] = {
    "format": 1,
    "path": "/etc/accessaudit/exceptions.toml",
    "sha256": "d" * 64,
    "as_of": "2026-11-26",
    "entries": [
        _entry(
            "EX-1",
            "in-force",
            "2027-03-31",
            objects=["warks.bob", "WMP-Intra*"],
            justification="Bob runs the intranet until the split " + XSS_SCRIPT,
            agreement_ends="2027-01-31",
            ends="2027-01-31",
            ticket="CHG0012345",
            matched=1,
            accepted=1,
        ),
        _entry("EX-2", "expired", "2026-10-31", matched=2),
        _entry("EX-3", "stale", "2027-03-31"),
    ],
    "text": "[[exception]] ...",
}
REGISTER_META = {"path": REGISTER["path"], "sha256": "d" * 64, "entries": 3, "in_force": 1,
                 "expired": 1, "stale": 1, "file": "exceptions.json"}  # fmt: skip


def _rule(rule_id: str, version: str, sha: str, **kw: Any) -> dict[str, Any]:
    doc = next(r for r in RULES if r.id == rule_id) if rule_id != "old-rule" else RULES[0]
    return {
        "id": rule_id,
        "version": version,
        "title": kw.pop("title", doc.title),
        "severity": doc.severity,
        "action": doc.action,
        "rationale": kw.pop("rationale", doc.rationale),
        "remediation": doc.remediation,
        "key": ["account_id", "group_id"],
        "query": kw.pop("query", "SELECT account_id, group_id\nFROM access"),
        "settings": kw.pop("settings", {}),
        "sha256": sha,
        "origin": "built-in",
    }


RULES_AS_RUN: dict[str, Any] = {
    "format": 1,
    "catalogue_sha256": "9" * 64,
    "rules": [
        _rule(
            "cross-member",
            "2.0",
            "1" * 64,
            title="Cross-force membership (as run)",
            rationale="The text this run was evaluated with.",
            query="SELECT account_id, group_id\nFROM access\nWHERE depth = ${depth}",
            settings={"depth": 0},
        ),
        _rule("cross-privileged", "1.0", "3" * 64),
        _rule("nested-cross", "1.0", "4" * 64),
        _rule("attribution-conflict", "1.0", "5" * 64),
        _rule("old-rule", "1.0", "6" * 64, title="A rule retired since"),
    ],
}


def _current(changed: bool) -> list[RunRule]:
    """The catalogue the report is rendered with: the run's, or one changed since."""
    out = []
    for r in RULES_AS_RUN["rules"]:
        if changed and r["id"] == "old-rule":
            continue
        version, sha = r["version"], r["sha256"]
        title = r["title"]
        if changed and r["id"] == "cross-member":
            version, sha, title = "2.1", "2" * 64, "Cross-force membership (current)"
        if changed and r["id"] == "nested-cross":
            sha = "7" * 64  # edited without a version bump
        out.append(
            RunRule(r["id"], title, r["severity"], "", "", r["action"], version=version, sha256=sha)
        )
    if changed:
        out.append(RunRule("new-rule", "New", "low", "", "", "review-attribution", "1.0", "8" * 64))
    return out


def context(**kw: Any) -> dict[str, Any]:
    f = frames()
    f["findings"] = f["findings"].with_columns(
        exception_id=pl.when(pl.col("finding_key") == "cross-member:a2:g5")
        .then(pl.lit("EX-1"))
        .when(pl.col("finding_key") == "cross-member:a4:g4")
        .then(pl.lit("EX-2"))  # lapsed: the finding is open again
    )
    manifest = kw.pop("manifest", dict(MANIFEST, exceptions=REGISTER_META))
    return build_context(
        ReportInput(
            manifest=manifest,
            rules=kw.pop("rules", RULES),
            title="Evidence",
            org_names={"wmp": "West Mercia Police", "warks": "Warwickshire Police"},
            **{**f, **kw},
        )
    )


def doc(**kw: Any) -> Node:
    return parse(render_string(context(**kw)))


def _cells(row: Node) -> list[str]:
    return [" ".join(c.text().split()) for c in row.find_all("td")]


# --- the exceptions register ------------------------------------------------------------------


def test_register_as_it_stood_with_approvers_expiry_and_state() -> None:
    d = doc(register=REGISTER)
    rows = d.by_id("exceptions-register").find_all("tr", "exception-row")
    assert [r.attrs["data-state"] for r in rows] == ["in-force", "expired", "stale"]
    first = _cells(rows[0])
    assert first[0] == "EX-1 ticket CHG0012345"
    assert first[2] == "warks.bob WMP-Intra*"
    assert first[3].startswith("Bob runs the intranet until the split " + XSS_SCRIPT)
    assert "clause 12.3 (clause ends 2027-01-31)" in first[3]
    assert first[4] == "2027-03-31 ends 2027-01-31 with the clause"
    names = [n.text() for n in rows[0].find_all("span", "approver-name")]
    assert names == ["Head of Information Security, West Mercia", XSS_IMG]
    assert "wmp Head of Information Security, West Mercia 2026-10-01" in first[5]
    assert first[6:] == ["in force", "1", "1"]
    assert _cells(rows[1])[6:] == ["expired: findings open again", "2", "0"]
    assert "bad" in rows[1].find_all("span", "chip")[-1].classes()
    assert _cells(rows[2])[6] == "stale: covers no finding"
    count = d.by_id("exceptions-count").text()
    assert count == "3: 1 in force, 1 expired: findings open again, 1 stale: covers no finding"
    # hostile register text stays text
    assert not [n for n in d.iter() if n.tag in ("img", "script") and "src" in n.attrs]
    assert not [n for n in d.iter() if "onerror" in n.attrs]


def test_accepted_findings_carry_justification_approvers_and_expiry() -> None:
    d = doc(register=REGISTER)
    [row] = d.by_id("exceptions-accepted").find_all("tr", "accepted-row")
    cells = _cells(row)
    assert cells[1].startswith("Cross-force group membership cross-member")
    assert cells[2].startswith(XSS_IMG)  # warks.bob's display name, as text
    assert cells[3].startswith("WMP-Intranet")
    assert cells[4] == "EX-1"
    assert cells[5].startswith("Bob runs the intranet") and "clause 12.3" in cells[5]
    names = [n.text() for n in row.find_all("span", "approver-name")]
    assert names == ["Head of Information Security, West Mercia", XSS_IMG]
    assert cells[7] == "2027-01-31"  # the earlier of expiry and the clause's end


def test_run_without_a_register_snapshot_says_so() -> None:
    d = doc()  # the manifest records the register, the run folder has no exceptions.json
    assert d.by_id("exceptions-no-snapshot").text().startswith("This run was made before")
    assert d.by_id("exceptions-count").text() == "3"
    [row] = d.by_id("exceptions-accepted").find_all("tr", "accepted-row")
    assert _cells(row)[4:6] == ["EX-1", "not in the stored register"]
    none = parse(render_string(context(manifest=MANIFEST)))
    assert none.by_id("exceptions-none").text().startswith("No exceptions register")


# --- the rules as run --------------------------------------------------------------------------


def test_rules_shown_as_run_not_as_now() -> None:
    d = doc(rule_snapshot=RULES_AS_RUN, rules=_current(changed=True))
    assert d.by_id("rules-source").attrs["data-source"] == "snapshot"
    art = d.by_id("appendix-cross-member")
    assert "Cross-force membership (as run)" in art.find_all("h3")[0].text()
    assert "The text this run was evaluated with." in art.text()
    assert art.find_all("dd", "rule-version")[0].text() == "2.0"
    assert art.find_all("code", "hash")[0].text() == "1" * 64
    query = art.find_all("pre", "query")[0].text()
    assert query == "SELECT account_id, group_id\nFROM access\nWHERE depth = ${depth}"
    assert "depth = 0" in art.find_all("p", "rule-settings")[0].text()
    assert "(current)" not in d.by_id("rules").text()
    assert d.by_id("appendix-old-rule")  # retired since, still shown: it ran
    changes = [_cells(r) for r in d.by_id("rules-changed").find_all("tr", "rule-change")]
    assert changes == [
        ["cross-member", "changed", "2.0", "2.1"],
        ["nested-cross", "rule file changed without a version bump", "1.0", "1.0"],
        ["new-rule", "added to the catalogue since", "—", "1.0"],
        ["old-rule", "not in the current catalogue", "1.0", "—"],
    ]


def test_hidden_characters_in_a_stored_query_are_shown() -> None:
    """A rules.json from elsewhere (the loader refuses such rule files) cannot make the query a
    reviewer reads differ from the one that ran: hidden characters show as [U+XXXX]."""
    tricked = dict(RULES_AS_RUN["rules"][0], query="SELECT\u202e account_id\u200b\nFROM access")
    snapshot = dict(RULES_AS_RUN, rules=[tricked, *RULES_AS_RUN["rules"][1:]])
    art = doc(rule_snapshot=snapshot, rules=_current(changed=False)).by_id("appendix-cross-member")
    query = art.find_all("pre", "query")[0].text()
    assert query == "SELECT[U+202E] account_id[U+200B]\nFROM access"


def test_same_catalogue_no_warning() -> None:
    d = doc(rule_snapshot=RULES_AS_RUN, rules=_current(changed=False))
    ids = {n.attrs.get("id") for n in d.iter()}
    assert "rules-changed" not in ids
    assert d.by_id("rules-unchanged").text().startswith("The current rule catalogue is the one")


def test_old_run_without_rules_json_compares_its_manifest() -> None:
    recorded = {r["id"]: {"version": r["version"], "sha256": r["sha256"]} for r in
                RULES_AS_RUN["rules"]}  # fmt: skip
    d = doc(manifest=dict(MANIFEST, rules=recorded), rules=_current(changed=True))
    assert d.by_id("rules-source").attrs["data-source"] == "manifest"
    art = d.by_id("appendix-cross-member")
    assert art.find_all("dd", "rule-version")[0].text() == "2.0"  # the run's version
    assert "(current)" in art.text()  # the only text there is: the current one, and it says so
    assert "shows the current texts" in d.by_id("rules-changed").text()


# --- export links ------------------------------------------------------------------------------

FILES = {n: {"sha256": "0" * 64, "bytes": 1} for n in (
    "findings.csv", "actions.xlsx", "findings.json", "rules.json", "exceptions.json",
    "manifest.json", "accounts.parquet", "report.html")}  # fmt: skip


def _links(d: Node) -> list[tuple[str | None, str]]:
    return [(a.attrs.get("href"), a.text()) for a in d.by_id("downloads").find_all("a")]


def test_export_links_relative_to_the_report() -> None:
    manifest = dict(MANIFEST, files=FILES)
    beside = doc(manifest=manifest)
    assert _links(beside) == [
        ("actions.xlsx", "actions.xlsx"),
        ("findings.csv", "findings.csv"),
        ("findings.json", "findings.json"),
    ]  # run records (rules.json, exceptions.json, manifest.json) are not downloads
    assert "beside this report" in beside.by_id("downloads").text()
    demo = doc(manifest=manifest, exports_href="runs/20261126T050000Z/")
    assert _links(demo)[0][0] == "runs/20261126T050000Z/actions.xlsx"
    assert "beside this report" not in demo.by_id("downloads").text()


def test_exports_not_linkable_name_their_folder() -> None:
    manifest = dict(MANIFEST, files=FILES)
    d = doc(manifest=manifest, exports_href=None, exports_dir="D:\\audit\\runs\\20261126T050000Z")
    assert _links(d) == []
    assert d.by_id("downloads-folder").text() == "D:\\audit\\runs\\20261126T050000Z"
    raw = doc(manifest=manifest, exports_href=None, exports_dir="")
    assert _links(raw) == [] and "not pseudonymised" in raw.by_id("downloads").text()


# --- trend by rule -----------------------------------------------------------------------------

T0 = datetime(2026, 11, 1, 5, tzinfo=UTC)


def _point(i: int, accepted: bool = True) -> TrendPoint:
    return TrendPoint(
        run_id=f"run{i:02d}",
        started=T0 + timedelta(days=i),
        complete=i != 10,
        open=20 - i,
        accepted=2,
        open_by_rule={"cross-member": 12 - i, "nested-cross": 8, "gone-rule": int(i < 3)},
        accepted_by_rule={"cross-member": 2} if accepted else None,
    )


def test_trend_by_rule_all_runs_capped_to_the_last_eight() -> None:
    points = [_point(i, accepted=i > 4) for i in range(12)]
    t = by_rule(points)
    assert (t["shown"], t["total"]) == (8, 12)
    assert [r["run_id"] for r in t["runs"]] == [f"run{i:02d}" for i in range(4, 12)]
    assert [r["rule_id"] for r in t["rows"]] == ["nested-cross", "cross-member"]  # gone-rule: 0
    member = t["rows"][1]["cells"]
    assert [(c["open"], c["accepted"]) for c in member] == [(8, None)] + [
        (12 - i, 2) for i in range(5, 12)
    ]


def test_trend_by_rule_table_rendered() -> None:
    points = [_point(i) for i in range(12)]
    d = doc(trend=trend_context(points, None))
    table = d.by_id("trend-rules")
    heads = [th.attrs.get("data-run") for th in table.find_all("th") if th.attrs.get("data-run")]
    assert heads == [f"run{i:02d}" for i in range(4, 12)]
    rows = {r.attrs["data-rule"]: _cells(r) for r in table.find_all("tr", "trend-rule")}
    assert rows["cross-member"] == [f"{12 - i} / 2" for i in range(4, 12)]
    assert rows["nested-cross"] == ["8 / 0"] * 8
    assert "The last 8 of 12 runs" in d.by_id("trend-rules-note").text()
    incomplete = [th.attrs["data-run"] for th in table.find_all("th", "trend-incomplete")]
    assert incomplete == ["run10"]


def test_trend_csv_has_accepted_by_rule() -> None:
    rows = trend_frame([_point(5), _point(1, accepted=False)]).filter(
        pl.col("dimension") == "rule", pl.col("key") == "cross-member"
    )
    assert rows.select("run_id", "open", "accepted").rows() == [
        ("run05", 7, 2),
        ("run01", 11, None),
    ]
