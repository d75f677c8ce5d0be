"""The three views in the rendered HTML: change since the last run, burn-down, evidence."""

from __future__ import annotations

from typing import Any

import pytest
from support.htmltree import Node, parse
from support.report_history_sample import history_context
from support.report_sample import XSS_IMG, XSS_SCRIPT, make_context

from accessaudit.report.history import EXPLANATIONS, OPEN_DEFINITION, REASONS
from accessaudit.report.html import render_string


@pytest.fixture(scope="module")
def ctx() -> dict[str, Any]:
    return history_context()


@pytest.fixture(scope="module")
def doc(ctx: dict[str, Any]) -> Node:
    return parse(render_string(ctx))


def test_changes_context_exact(ctx: dict[str, Any]) -> None:
    c = ctx["changes"]
    assert c["available"] and c["previous_run"] == "20261112T050000Z"
    assert {x["status"]: x["count"] for x in c["counts"]} == {
        "new": 2, "regressed": 1, "resolved": 1, "unknown": 1, "persisting": 3,
    }  # fmt: skip
    # open new / regressed findings, worst first (the accepted new one is not listed)
    assert [(f["finding_key"], f["change"]) for f in c["fresh"]] == [
        ("cross-privileged:a1:g2", "regressed"),
        ("cross-member:a3:g1", "new"),
    ]
    assert [(g["principal"], g["resource"]) for g in c["resolved"]] == [(XSS_IMG, "WARKS-Finance")]
    assert [g["finding_key"] for g in c["unknown"]] == ["cross-member:a1:g4"]
    col = ctx["findings"]["data"]["columns"]
    changes = {r[0]: r[col.index("change")] for r in ctx["findings"]["data"]["rows"]}
    assert changes["cross-privileged:a1:g2"] == "regressed"
    assert changes["attribution-conflict:a4"] == "persisting"
    assert ctx["chain"]["previous_manifest_sha256"] == "e" * 64
    assert ctx["rules_as_run"]["detail"]["cross-member"]["version"] == "3"


def test_views_wrap_the_sections(doc: Node) -> None:
    views = {n.attrs["data-view"]: n for n in doc.find_all("div", "view")}
    assert set(views) == {"officer", "worklist", "evidence"}
    ids = {k: [s.attrs.get("id") for s in v.find_all("section")] for k, v in views.items()}
    assert ids == {
        "officer": ["summary", "changes", "trend", "control-officer", "data-officer"],
        "worklist": ["worklist", "control-worklist", "data-worklist"],
        "evidence": ["findings", "run", "exceptions", "rules", "control-evidence", "data-evidence"],
    }
    nav = [a.attrs.get("href") for a in doc.find_all("nav", "toc")[0].find_all("a")]
    assert nav == ["#view-officer", "#view-worklist", "#view-evidence", "#all"]


def test_burndown_svg_from_summaries(doc: Node) -> None:
    svg = doc.by_id("burndown")
    assert svg.tag == "svg"
    opens = svg.find_all("circle", "pt-open")
    assert [c.attrs["data-open"] for c in opens] == ["9", "7", "5"]
    assert len(svg.find_all("circle", "pt-accepted")) == 3
    assert len(svg.find_all("polyline")) == 2
    assert doc.by_id("burndown-target").text().strip() == "target 2027-03-31"
    assert doc.by_id("burndown-projection").tag == "line"
    # (9 - 5) open / 14 days = 2/7 a day: 5 / (2/7) = 17.5 days after 2026-11-19T05:00
    verdict = doc.by_id("trend-verdict")
    assert verdict.attrs["data-state"] == "on-track"
    assert "reach zero on 2026-12-06" in verdict.text()
    rows = doc.by_id("trend-runs").find_all("tr", "trend-row")
    assert [r.find_all("td", "open")[0].text() for r in rows] == ["5", "7", "9"]


def test_header_and_evidence(doc: Node) -> None:
    since = doc.by_id("since-last").text()
    assert "1 new" not in since and "2 new" in since and "1 resolved" in since
    assert "1 regressed" in since and "1 unknown (not proven gone, still open)" in since
    assert doc.by_id("previous-run").text() == "20261112T050000Z"
    assert doc.by_id("previous-manifest").text() == "e" * 64
    assert doc.by_id("exceptions-none").text().startswith("No exceptions register")
    versions = [n.text() for n in doc.find_all("dd", "rule-version")]
    assert versions == ["3"]
    chips = [n.text() for n in doc.by_id("findings-body").find_all("span", "change")]
    assert sorted(chips) == ["new", "new", "persisting", "persisting", "persisting", "regressed"]
    assert doc.by_id("findings-change").tag == "select"


def test_without_history_nothing_extra_is_rendered() -> None:
    doc = parse(render_string(make_context()))
    ids = {n.attrs.get("id") for n in doc.iter()}
    assert not ids & {"changes", "trend", "burndown", "since-last", "findings-change"}
    # the actions chart's bars (one per owning force) and legend swatches; no burn-down
    assert {s.attrs["class"] for s in doc.find_all("svg")} == {"bar", "swatch"}
    assert "exceptions" in ids  # the register section is always there (placeholder)


def test_hostile_names_in_history_stay_text(ctx: dict[str, Any], doc: Node) -> None:
    resolved = doc.by_id("resolved-items")
    assert XSS_IMG in resolved.text()
    fresh = doc.by_id("fresh-items")
    assert XSS_SCRIPT in fresh.text()
    assert not [n for n in doc.iter() if n.tag in ("img", "iframe") or "onerror" in n.attrs]


def test_statuses_explained_and_unknown_counted_as_open(ctx: dict[str, Any], doc: Node) -> None:
    """Each status in one quotable sentence; the unknown finding says what it waits for and
    counts as open on the first screen."""
    rules = {
        d.attrs["data-status"]: (d.find_all("dt")[0].text(), d.find_all("dd")[0].text())
        for d in doc.by_id("status-rules").find_all("div")
    }
    assert {k: v[1] for k, v in rules.items()} == dict(EXPLANATIONS)
    assert rules["unknown"][0] == "unknown (not proven gone)"
    assert doc.by_id("open-definition").text() == OPEN_DEFINITION
    waits = [td.text() for td in doc.by_id("unknown-items").find_all("td", "waits-for")]
    assert waits == [REASONS["confirm"]]
    reasons = [li.text() for li in doc.by_id("unknown-reasons").find_all("li")]
    assert reasons == [f"1 finding(s): {REASONS['confirm']}"]
    col = ctx["findings"]["data"]["columns"]
    seen_open = sum(1 for r in ctx["findings"]["data"]["rows"] if r[col.index("status")] == "open")
    assert ctx["summary"]["open_total"] == seen_open + 1
    assert ctx["summary"]["open_unknown"] == 1
    card = doc.by_id("card-open")
    assert card.find_all("span", "value")[0].text() == str(seen_open + 1)
    assert doc.by_id("open-unknown").text() == "1"
    high = next(s for s in ctx["summary"]["by_severity"] if s["severity"] == "high")
    high_seen = sum(
        1
        for r in ctx["findings"]["data"]["rows"]
        if r[col.index("status")] == "open" and r[col.index("severity")] == "high"
    )
    assert high["open"] == high_seen + 1  # the unknown finding is high
