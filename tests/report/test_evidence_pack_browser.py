"""The demo's evidence pack printed by real headless Chromium: at most 50 A4 pages, no script,
every rule with its result and samples, the matrix's counts those of the run."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from support.browser import chromium
from support.htmltree import parse

from accessaudit.pipeline.demo import demo_settings
from accessaudit.pipeline.run import run_audit
from accessaudit.report.pack import SAMPLES

pytestmark = pytest.mark.browser
MAX_PAGES = 50


def test_the_demo_evidence_pack_prints_to_at_most_50_pages(
    tmp_path: Path, artifacts_dir: Path
) -> None:
    result = run_audit(demo_settings(tmp_path), now=datetime(2026, 11, 1, tzinfo=UTC))
    assert result.report is not None
    pack = result.report.with_name("evidence-pack.html")
    assert pack.stat().st_mode & 0o777 == 0o600
    assert "evidence-pack.html" in result.run.manifest["files"]  # verify covers it
    text = pack.read_text(encoding="utf-8")
    tree = parse(text)
    assert not tree.find_all("script")  # nothing runs in the pack
    [csp] = [
        m.attrs["content"] or ""
        for m in tree.find_all("meta")
        if m.attrs.get("http-equiv") == "Content-Security-Policy"
    ]
    assert "script-src" not in csp and "default-src 'none'" in csp

    findings = result.analysis.findings
    by_rule = dict(findings.group_by("rule_id").len().iter_rows())
    rules = {r.id for r in result.analysis.rules}
    articles = tree.find_all("article", "pack-rule")
    ids = [str(a.attrs["id"]).removeprefix("pack-") for a in articles]
    assert sorted(ids) == sorted(rules)
    for rid, a in zip(ids, articles, strict=True):
        n = by_rule.get(rid, 0)
        rows = [t for t in a.find_all("tr") if t.find_all("td")]
        assert len(rows) == min(n, SAMPLES), rid
        assert (a.attrs["data-result"] == "passed") == (n == 0), rid

    # the matrix: open findings by (principal's force, resource's force)
    opened = findings.filter(pl.col("status") == "open")
    cross = opened.filter((pl.col("principal_org") == "warks") & (pl.col("resource_org") == "wmp"))
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 794, "height": 1123})
        page.goto(pack.as_uri())
        page.wait_for_load_state("load")
        cell = page.locator(
            "#force-matrix tbody tr", has=page.locator("th .chip", has_text="warks")
        )
        col = page.eval_on_selector_all(
            "#force-matrix thead th", "ths => ths.map(t => t.textContent.trim())"
        ).index("wmp")
        assert int(cell.locator("td").nth(col - 1).get_attribute("data-n") or -1) == cross.height
        page.screenshot(path=str(artifacts_dir / "evidence-pack-cover.png"))
        page.emulate_media(media="print")
        pdf = page.pdf(format="A4", print_background=True)
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    (artifacts_dir / "evidence-pack.pdf").write_bytes(pdf)
    assert 5 <= pages <= MAX_PAGES, pages

    # the report's evidence view points to it
    report = result.report.read_text(encoding="utf-8")
    assert 'href="evidence-pack.html"' in report
