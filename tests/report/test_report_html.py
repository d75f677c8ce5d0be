"""The rendered HTML, parsed with the stdlib html.parser: structure, escaping, CSP, files."""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from support.htmltree import Node, parse
from support.report_sample import (
    BIDI,
    BIDI_SHOWN,
    EXPECTED_ACCEPTED,
    EXPECTED_OPEN,
    FORMULA,
    GROUP_SCRIPT,
    LDAP,
    MANIFEST,
    XSS_IMG,
    XSS_SCRIPT,
    make_context,
)

from accessaudit.errors import AuditError
from accessaudit.report import embed
from accessaudit.report.embed import TABLE_BLOCKS
from accessaudit.report.html import render_html, render_string, templates_dir


@pytest.fixture
def html(context: dict[str, Any]) -> str:
    return render_string(context)


@pytest.fixture
def doc(html: str) -> Node:
    return parse(html)


def test_header_and_completeness(doc: Node) -> None:
    assert doc.by_id("report-title").text() == "Separation audit <b>West Mercia / Warwickshire</b>"
    assert doc.by_id("run-id").text() == "20261126T050000Z"
    assert doc.by_id("generated").text() == "26 Nov 2026, 05:03 UTC"
    [when] = doc.by_id("generated").find_all("time")
    assert when.attrs["datetime"] == "2026-11-26T05:03:00+00:00"
    assert doc.by_id("collection-window").text() == (
        "26 Nov 2026, 05:00:00 to 05:03:00 UTC (3 min 0 s)"
    )
    verdict = doc.by_id("verdict")
    assert verdict.classes() == {"verdict", "verdict-red"}
    assert verdict.find_all("span", "verdict-state")[0].text() == "Red"
    assert verdict.find_all("p", "verdict-headline")[0].text() == (
        "Separation not achieved: 1 critical finding and 2 high findings open."  # a2: accepted
    )
    # the sample gives no organisation names: the ids stand in
    assert verdict.find_all("p", "verdict-detail")[0].text() == (
        "Worst: 1 wmp account reaches WARKS-Domain Admins (warks)."
    )
    banner = doc.by_id("completeness")
    assert "banner-complete" in banner.classes()
    assert doc.by_id("marking-top").text() == "OFFICIAL-SENSITIVE"
    assert doc.by_id("marking-bottom").text() == "OFFICIAL-SENSITIVE"


def test_incomplete_banner_lists_units() -> None:
    manifest = json.loads(json.dumps(MANIFEST))
    manifest["complete"] = False
    manifest["sources"][0]["complete"] = False
    manifest["sources"][0]["units"].append(
        {"name": "members of <b>G</b>", "complete": False, "detail": "no proof", "count": 0}
    )
    doc = parse(render_string(make_context(manifest)))
    banner = doc.by_id("completeness")
    assert "banner-incomplete" in banner.classes()
    assert banner.attrs["role"] == "alert"
    units = [li.text() for li in banner.find_all("li", "incomplete-unit")]
    assert units == ["members of <b>G</b>: no proof"]
    assert [n.tag for n in banner.iter()].count("b") == 0
    assert len(doc.by_id("units").find_all("tr", "unit-bad")) == 1


def test_severity_counts_shown_exactly(doc: Node) -> None:
    table = doc.by_id("severity-counts")
    rows = table.find_all("tbody")[0].find_all("tr")
    shown_open = {r.attrs["data-severity"]: int(r.find_all("td", "open")[0].text()) for r in rows}
    shown_acc = {
        r.attrs["data-severity"]: int(r.find_all("td", "accepted")[0].text()) for r in rows
    }
    assert shown_open == EXPECTED_OPEN
    assert shown_acc == EXPECTED_ACCEPTED
    assert doc.by_id("open-total").text() == "5"
    assert doc.by_id("card-actions").find_all("span", "value")[0].text() == "4"


def test_worklist_rows_server_rendered(doc: Node) -> None:
    body = doc.by_id("worklist-body")
    rows = body.find_all("tr", "action-row")
    assert len(rows) == 4
    groups = [g.find_all("span", "name")[0].text() for g in body.find_all("tr", "group-row")]
    assert groups == ["WARKS-Domain Admins", LDAP, "WARKS-Finance", "—"]
    commands = [r.find_all("code")[0].text() for r in rows]
    assert commands[0] == "Remove-ADGroupMember -Identity 'g2' -Members 'g3' -Confirm:$false"
    assert [r.find_all("td", "num")[0].text() for r in rows] == ["2", "1", "1", "1"]
    assert rows[0].find_all("span", "name")[0].text() == GROUP_SCRIPT
    assert rows[2].find_all("span", "name")[0].text() == FORMULA
    # the controls exist but are hidden until the script runs
    assert "hidden" in doc.by_id("worklist-controls").attrs


def test_findings_with_evidence_and_path(doc: Node) -> None:
    rows = doc.by_id("findings-body").find_all("tr", "finding-row")
    assert len(rows) == 6
    first = rows[0]
    assert first.find_all("span", "principal")[0].text() == XSS_SCRIPT
    assert first.find_all("span", "rule-title")[0].text() == "Cross-force privileged access"
    hops = [li.find_all("span", "name")[0].text() for li in first.find_all("li", "hop")]
    assert hops == [XSS_SCRIPT, GROUP_SCRIPT, "WARKS-Domain Admins"]
    evidence = [li.text() for li in first.find_all("ul", "evidence")[0].find_all("li")]
    assert evidence == ["company:wmp", "upn_suffix:wmp"]
    # the rationale is written once, in the rule appendix; the row links to it
    why = first.find_all("p", "rationale")[0]
    assert why.text() == "Why it matters: rule cross-privileged in the rule appendix"
    assert why.find_all("a")[0].attrs["href"] == "#appendix-cross-privileged"
    assert "An account of one force holds a privileged group" not in first.text()
    statuses = [r.find_all("span", "chip")[1].text() for r in rows]
    assert statuses == ["open"] * 5 + ["accepted"]
    bidi_row = next(r for r in rows if BIDI_SHOWN in r.text())
    assert "hidden characters" in bidi_row.text()


def test_hostile_strings_only_as_text(html: str, doc: Node) -> None:
    # no element or attribute came from data
    assert doc.find_all("img") == []
    assert doc.find_all("b") == []
    scripts = doc.find_all("script")
    assert [s.attrs.get("type") for s in scripts] == ["application/json"] * 4 + [None]
    for node in doc.iter():
        assert not any(name.startswith("on") for name in node.attrs), node
    text = doc.text()
    for hostile in (XSS_SCRIPT, XSS_IMG, FORMULA, GROUP_SCRIPT, LDAP, BIDI_SHOWN):
        assert hostile in text
    assert BIDI not in html
    assert "<script>window" not in html
    assert "<img" not in html


def test_embedded_json_is_script_safe(html: str, doc: Node) -> None:
    blocks = {s.attrs["id"]: s.text() for s in doc.find_all("script") if s.attrs.get("id")}
    assert set(blocks) == {"objects-data", "worklist-data", "findings-data", "report-meta"}
    for raw in blocks.values():
        assert "<" not in raw
        assert ">" not in raw
        assert "&" not in raw
        assert "\u2028" not in raw
        assert "\u2029" not in raw
    # the three tables: base64 of the gzip'd columnar JSON, one JSON string each
    for name in TABLE_BLOCKS:
        assert re.fullmatch(r'"[A-Za-z0-9+/]*={0,2}"', blocks[name]), name
    objects = embed.decode(blocks["objects-data"])
    assert objects["columns"] == ["id", "name", "secondary", "kind", "org", "evidence", "conflict"]
    actions = embed.decode(blocks["worklist-data"])
    member = actions["columns"].index("member")
    names = [objects["rows"][row[member]][1] for row in actions["rows"]]
    assert names == [GROUP_SCRIPT, BIDI_SHOWN, FORMULA, BIDI_SHOWN]
    findings = embed.decode(blocks["findings-data"])
    path = findings["rows"][0][findings["columns"].index("path")]
    assert [objects["rows"][i][1] for i in path] == [
        XSS_SCRIPT,
        GROUP_SCRIPT,
        "WARKS-Domain Admins",
    ]
    meta = json.loads(blocks["report-meta"])
    assert meta["page_size"] == 100
    assert meta["org_class"]["wmp"] == "org-1"


def test_line_separators_escaped_in_json() -> None:
    ctx = make_context(title="t")
    ctx["objects"]["rows"][0][1] = "a\u2028b\u2029c</script>"
    html = render_string(ctx)
    assert embed.blocks(html)["objects-data"]["rows"][0][1] == "a\u2028b\u2029c</script>"
    # uncompressed (the benchmark's comparison), the columnar JSON is escaped as |tojson does
    plain = render_string(ctx, compress=False)
    block = re.search(r'id="objects-data">(.*?)</script>', plain, re.S)
    assert block is not None
    assert "\\u2028" in block.group(1)
    assert "\\u2029" in block.group(1)
    assert "\\u003c/script\\u003e" in block.group(1)
    assert embed.decode(block.group(1))["rows"][0][1] == "a\u2028b\u2029c</script>"


def _sha(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def test_csp_hashes_match_inline_blocks(doc: Node) -> None:
    [meta] = [m for m in doc.find_all("meta") if m.attrs.get("http-equiv")]
    assert meta.attrs["http-equiv"] == "Content-Security-Policy"
    csp = meta.attrs["content"] or ""
    [inline] = [s for s in doc.find_all("script") if "type" not in s.attrs]
    [style] = doc.find_all("style")
    assert csp == (
        "default-src 'none'; "
        f"style-src 'sha256-{_sha(style.text())}'; "
        f"script-src 'sha256-{_sha(inline.text())}'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    assert "unsafe-inline" not in csp
    assert inline.text() == (templates_dir() / "report.js").read_text()


def test_run_evidence_and_rules_appendix(doc: Node) -> None:
    assert doc.by_id("config-hash").text() == "c0ffee" * 4
    assert doc.by_id("rules-hash").text() == "beef" * 6
    files = [
        [td.text() for td in tr.find_all("td")]
        for tr in doc.by_id("files").find_all("tbody")[0].find_all("tr")
    ]
    assert files == [
        ["accounts.parquet", "a" * 64, "1234", "4"],
        ["groups.parquet", "b" * 64, "2345", "5"],
    ]
    assert len(doc.by_id("sources").find_all("tr", "source-row")) == 1
    rules = doc.by_id("rules").find_all("article", "rule")
    assert [r.attrs["id"] for r in rules] == [
        "appendix-cross-privileged",
        "appendix-cross-member",
        "appendix-nested-cross",
        "appendix-attribution-conflict",
    ]
    assert rules[1].find_all("p", "prose")[1].text() == "Remove the member."


def test_first_page_only_without_script_when_large() -> None:
    doc = parse(render_string(make_context(page_size=2)))
    assert len(doc.by_id("worklist-body").find_all("tr", "action-row")) == 2
    assert len(doc.by_id("findings-body").find_all("tr", "finding-row")) == 2
    assert "first 2 of 4 actions" in doc.by_id("worklist-more").text()
    assert "first 2 of 6 findings" in doc.by_id("findings-more").text()


def test_render_html_writes_owner_only_file(context: dict[str, Any], tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        out = render_html(context, tmp_path / "report.html")
    finally:
        os.umask(old)
    assert out == tmp_path / "report.html"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    assert out.read_text(encoding="utf-8") == render_string(context)


def test_templates_dir_is_checkout_reports() -> None:
    assert templates_dir() == Path(__file__).resolve().parents[2] / "reports"


def test_templates_dir_prefers_installed_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = tmp_path / "_data" / "reports"
    installed.mkdir(parents=True)
    (installed / "report.html.j2").write_text("installed")
    monkeypatch.setattr(importlib.resources, "files", lambda package: tmp_path)
    assert templates_dir() == installed


def test_template_override_dir(context: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "report.css").write_text("body { color: #123456; }")
    doc = parse(render_string(context, [tmp_path]))
    [style] = doc.find_all("style")
    assert style.text() == "body { color: #123456; }"
    [meta] = [m for m in doc.find_all("meta") if m.attrs.get("http-equiv")]
    assert f"'sha256-{_sha('body { color: #123456; }')}'" in (meta.attrs["content"] or "")


def test_asset_that_closes_its_element_is_refused(context: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "report.js").write_text("var x = '</SCRIPT><script>alert(1)';")
    with pytest.raises(AuditError, match=r"report\.js"):
        render_string(context, [tmp_path])
