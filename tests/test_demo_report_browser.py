"""The demo's report opened in real headless Chromium: inert hostile text, exact counts."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from support.browser import chromium

from accessaudit.pipeline.demo import demo_settings
from accessaudit.pipeline.run import run_audit
from accessaudit.sample.directory import generate

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.mark.browser
def test_demo_report_in_chromium(tmp_path: Path) -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    result = run_audit(demo_settings(tmp_path, accounts=2000, seed=5), now=now)
    truth = generate(seed=5, accounts=2000, now=now, domains=True).truth
    expected = {
        sev: int(
            truth.join(
                result.analysis.findings.select("rule_id", "severity").unique(), on="rule_id"
            )
            .filter(pl.col("severity") == sev)
            .height
        )
        for sev in ("critical", "high", "medium", "low", "info")
    }
    assert result.report is not None
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(result.report.as_uri() + "#all")  # every section
        page.wait_for_load_state("load")
        # the page script decodes its tables asynchronously (DecompressionStream): wait for it
        page.wait_for_function("document.documentElement.classList.contains('js')")
        assert page.evaluate("() => window.__xss") is None
        shown = {
            sev: int(page.text_content(f'#severity-counts tr[data-severity="{sev}"] td.open') or -1)
            for sev in expected
        }
        assert shown == expected
        assert int(page.text_content("#open-total") or -1) == truth.height
        # hostile names from the directory are shown as text, never run: find the action on
        # the group named with a script tag through the worklist filter
        page.fill("#worklist-filter", "<script>window.__xss=1</script>")
        page.wait_for_timeout(300)
        hits = page.locator("#worklist-body tr:not(.group-row)", has_text="window.__xss=1")
        assert hits.count() >= 1
        assert page.evaluate("() => window.__xss") is None
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "demo-report.png"), full_page=False)
    shutil.rmtree(tmp_path, ignore_errors=True)
