"""The report in real headless Chromium (Debian's, driven by playwright; no browser download).

Every check waits for an exact DOM state (``wait_for_function``), never for a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from support.browser import chromium
from support.browser import open_report as open_page
from support.report_sample import (
    BIDI_SHOWN,
    EXPECTED_OPEN,
    FORMULA,
    GROUP_SCRIPT,
    MANIFEST,
    RULES,
    XSS_IMG,
    XSS_SCRIPT,
    frames,
    make_context,
)

from accessaudit.report.context import ReportInput, build_context
from accessaudit.report.html import render_html

pytestmark = pytest.mark.browser

ACTION_ROWS = "#worklist-body tr.action-row"
FINDING_ROWS = "#findings-body tr.finding-row"

# Payloads that would set window.__xss if any of them ever became markup or script.
XSS_CORPUS = [
    "<script>window.__xss=1</script>",
    "</script><script>window.__xss=1</script>",
    "</SCRIPT><SCRIPT>window.__xss=1</SCRIPT>",
    "<!--<script>window.__xss=1</script>-->",
    "]]><script>window.__xss=1</script>",
    '"><script>window.__xss=1</script>',
    "'><script>window.__xss=1</script>",
    '"><img src=x onerror="window.__xss=1">',
    "'><img src=x onerror='window.__xss=1'>",
    "<img src=x onerror=window.__xss=1>",
    "<img/src=x/onerror=window.__xss=1>",
    "<svg onload=window.__xss=1>",
    "<svg><script>window.__xss=1</script></svg>",
    "<svg><animate onbegin=window.__xss=1 attributeName=x dur=1s>",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=1>",
    "<body onload=window.__xss=1>",
    "<iframe srcdoc='<script>parent.__xss=1</script>'>",
    "<iframe src=javascript:parent.__xss=1>",
    "<object data=javascript:window.__xss=1>",
    "<embed src=javascript:window.__xss=1>",
    "<a href=javascript:window.__xss=1 id=xss>x</a>",
    "<details open ontoggle=window.__xss=1>",
    "<input autofocus onfocus=window.__xss=1>",
    "<select autofocus onfocus=window.__xss=1>",
    "<textarea autofocus onfocus=window.__xss=1>",
    "<video><source onerror=window.__xss=1>",
    "<audio src=x onerror=window.__xss=1>",
    "<marquee onstart=window.__xss=1>",
    "<style>@import 'javascript:window.__xss=1';</style>",
    "<link rel=import href=data:text/html,<script>window.__xss=1</script>>",
    "<meta http-equiv=refresh content='0;url=javascript:window.__xss=1'>",
    "<base href=javascript:window.__xss=1//>",
    "<form><button formaction=javascript:window.__xss=1>x</button></form>",
    "<template><img src=x onerror=window.__xss=1></template>",
    '<noscript><p title="</noscript><img src=x onerror=window.__xss=1>">',
    "<xmp><img src=x onerror=window.__xss=1></xmp>",
    "<plaintext><img src=x onerror=window.__xss=1>",
    "<title><img src=x onerror=window.__xss=1></title>",
    "<textarea></textarea><img src=x onerror=window.__xss=1>",
    "&lt;img src=x onerror=window.__xss=1&gt;",
    "&#60;img src=x onerror=window.__xss=1&#62;",
    "\\u003cimg src=x onerror=window.__xss=1\\u003e",
    "{{7*7}}<img src=x onerror=window.__xss=1>",
    "${window.__xss=1}",
    "`;window.__xss=1;`",
    "';window.__xss=1;//",
    '";window.__xss=1;//',
    "\u2028window.__xss=1\u2029",
    "\u202e<img src=x onerror=window.__xss=1>",
    "\u200b<script>window.__xss=1</script>",
    "javascript:window.__xss=1",
    "data:text/html,<script>window.__xss=1</script>",
    "__proto__",
    "constructor",
    "*)(uid=*))(|(uid=*",
    '=HYPERLINK("http://x","y")',
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def open_report(browser: Any, tmp_path: Path) -> Iterator[Any]:
    pages: list[Any] = []

    def _open(context: dict[str, Any], *, javascript: bool = True) -> Any:
        out = render_html(context, tmp_path / f"report-{len(pages)}.html")
        ctx = browser.new_context(
            viewport={"width": 1400, "height": 900}, java_script_enabled=javascript
        )
        # every section (no hash opens the officer's view)
        page = open_page(ctx.new_page(), out.as_uri() + "#all", javascript=javascript)
        pages.append(ctx)
        return page

    yield _open
    for ctx in pages:
        ctx.close()


def _count(page: Any, selector: str) -> int:
    return int(page.evaluate("s => document.querySelectorAll(s).length", selector))


def _wait_count(page: Any, selector: str, expected: int) -> None:
    page.wait_for_function(
        "([s, n]) => document.querySelectorAll(s).length === n", arg=[selector, expected]
    )
    assert _count(page, selector) == expected


def test_report_renders_inert_and_counts(
    open_report: Any, context: dict[str, Any], artifacts_dir: Path
) -> None:
    page = open_report(context)
    _wait_count(page, ACTION_ROWS, 4)
    assert page.evaluate("window.__xss === undefined")
    assert page.problems == []  # no CSP violation, no script error, no request
    assert _count(page, "#worklist-body tr.group-row") == 4
    assert _count(page, FINDING_ROWS) == 6
    assert _count(page, "img") == 0
    assert _count(page, "script") == 5
    shown = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#severity-counts tbody tr')]
             .map(r => [r.dataset.severity, Number(r.querySelector('td.open').textContent)]))"""
    )
    assert shown == EXPECTED_OPEN
    assert page.text_content("#worklist-status") == "Showing 1–4 of 4"
    assert page.text_content("#findings-status") == "Showing 1–6 of 6"
    assert page.is_visible("#worklist-filter")
    names = page.eval_on_selector_all(
        f"{FINDING_ROWS} span.principal", "els => els.map(e => e.textContent)"
    )
    assert names[0] == XSS_SCRIPT
    assert set(names) == {XSS_SCRIPT, FORMULA, BIDI_SHOWN, GROUP_SCRIPT, XSS_IMG}
    hops = page.eval_on_selector_all(
        f"{FINDING_ROWS}:first-child li.hop span.name", "els => els.map(e => e.textContent)"
    )
    assert hops == [XSS_SCRIPT, GROUP_SCRIPT, "WARKS-Domain Admins"]
    # the CSP refuses any inline script it was not rendered with
    page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.__csp_breach = 1'; document.body.appendChild(s); }"""
    )
    assert page.evaluate("window.__csp_breach === undefined")
    assert any("Content Security Policy" in p for p in page.problems)
    shot = artifacts_dir / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0


def test_filter_changes_visible_rows(open_report: Any, context: dict[str, Any]) -> None:
    page = open_report(context)
    _wait_count(page, ACTION_ROWS, 4)
    page.fill("#worklist-filter", "hyperlink")
    _wait_count(page, ACTION_ROWS, 1)
    assert page.text_content("#worklist-status") == "Showing 1–1 of 1 (filtered from 4)"
    assert page.text_content(f"{ACTION_ROWS} td:nth-child(3) span.name") == FORMULA
    page.fill("#worklist-filter", "warks")
    _wait_count(page, ACTION_ROWS, 3)
    page.fill("#worklist-filter", "no such thing")
    _wait_count(page, ACTION_ROWS, 0)
    assert page.text_content("#worklist-status") == "No matching rows (of 4)"
    page.fill("#worklist-filter", "")
    _wait_count(page, ACTION_ROWS, 4)
    page.select_option("#worklist-severity", "high")
    _wait_count(page, ACTION_ROWS, 2)
    page.select_option("#worklist-severity", "")
    page.select_option("#worklist-org", "wmp")
    _wait_count(page, ACTION_ROWS, 1)

    page.fill("#findings-filter", "wmp.dave")
    _wait_count(page, FINDING_ROWS, 2)
    page.fill("#findings-filter", "")
    page.select_option("#findings-state", "accepted")
    _wait_count(page, FINDING_ROWS, 1)
    assert page.text_content(f"{FINDING_ROWS} span.principal") == XSS_IMG
    page.select_option("#findings-state", "open")
    _wait_count(page, FINDING_ROWS, 5)


def test_sort_by_column(open_report: Any, context: dict[str, Any]) -> None:
    page = open_report(context)
    _wait_count(page, ACTION_ROWS, 4)
    resolves = f"{ACTION_ROWS} td.num"
    page.click("#worklist-table th[data-key=resolves] button")
    _wait_count(page, "#worklist-body tr.group-row", 0)  # sorted: no grouping rows
    assert page.eval_on_selector_all(resolves, "els => els.map(e => e.textContent)") == [
        "2",
        "1",
        "1",
        "1",
    ]
    assert page.get_attribute("#worklist-table th[data-key=resolves]", "aria-sort") == (
        "descending"
    )
    page.click("#worklist-table th[data-key=severity] button")
    sev = page.eval_on_selector_all(
        f"{ACTION_ROWS} td:first-child .chip", "els => els.map(e => e.textContent)"
    )
    assert sev == ["critical", "high", "high", "low"]
    page.click("#worklist-table th[data-key=severity] button")
    sev = page.eval_on_selector_all(
        f"{ACTION_ROWS} td:first-child .chip", "els => els.map(e => e.textContent)"
    )
    assert sev == ["low", "high", "high", "critical"]
    page.click("#worklist-table th[data-key=severity] button")  # back to grouped order
    _wait_count(page, "#worklist-body tr.group-row", 4)


def test_paging(open_report: Any) -> None:
    page = open_report(make_context(page_size=2))
    _wait_count(page, ACTION_ROWS, 2)
    assert page.text_content("#worklist-page") == "Page 1 of 2"
    assert not page.is_visible("#worklist-more")  # the no-script note is hidden
    assert page.is_disabled("#worklist-prev")
    page.click("#worklist-next")
    page.wait_for_function(
        "() => document.getElementById('worklist-page').textContent === 'Page 2 of 2'"
    )
    assert _count(page, ACTION_ROWS) == 2
    assert page.text_content("#worklist-status") == "Showing 3–4 of 4"
    assert page.is_disabled("#worklist-next")
    page.fill("#worklist-filter", "remove-member")
    _wait_count(page, ACTION_ROWS, 2)
    assert page.text_content("#worklist-page") == "Page 1 of 1"


def test_without_javascript_server_rows_are_shown(
    open_report: Any, context: dict[str, Any]
) -> None:
    page = open_report(context, javascript=False)
    assert _count(page, ACTION_ROWS) == 4
    assert _count(page, FINDING_ROWS) == 6
    assert not page.is_visible("#worklist-controls")
    assert page.text_content(f"{ACTION_ROWS} pre.cmd") == (
        "Remove-ADGroupMember -Identity 'g2' -Members 'g3' -Confirm:$false"
    )


def test_xss_corpus_is_inert(open_report: Any, artifacts_dir: Path) -> None:
    assert len(XSS_CORPUS) >= 50
    f = frames()
    n = len(XSS_CORPUS)
    accounts = pl.concat(
        [f["accounts"]]
        + [
            f["accounts"]
            .head(1)
            .with_columns(
                pl.lit(f"x{i}").alias("account_id"),
                pl.lit(p).alias("display_name"),
                pl.lit(p).alias("username"),
                pl.lit([p]).alias("org_evidence"),
            )
            for i, p in enumerate(XSS_CORPUS)
        ]
    )
    findings = pl.concat(
        [
            f["findings"]
            .head(1)
            .with_columns(
                pl.lit(f"k{i}").alias("finding_key"),
                pl.lit(f"x{i}").alias("account_id"),
                pl.lit(p).alias("detail"),
            )
            for i, p in enumerate(XSS_CORPUS)
        ]
    )
    actions = pl.concat(
        [
            f["actions"]
            .head(1)
            .with_columns(
                pl.lit(f"act{i}").alias("action_id"),
                pl.lit(f"x{i}").alias("member_id"),
                pl.lit(p).alias("summary"),
                pl.lit(f"Remove-ADGroupMember -Members '{p}'").alias("powershell"),
            )
            for i, p in enumerate(XSS_CORPUS)
        ]
    )
    paths = pl.DataFrame(
        [{"finding_key": f"k{i}", "path": [f"x{i}", "g3", "g2"]} for i in range(n)],
        schema={"finding_key": pl.String, "path": pl.List(pl.String)},
    )
    manifest = dict(MANIFEST, run_id=XSS_CORPUS[1], config_hash=XSS_CORPUS[7])
    ctx = build_context(
        ReportInput(
            manifest=manifest,
            findings=findings,
            actions=actions,
            accounts=accounts,
            groups=f["groups"],
            paths=paths,
            rules=RULES,
            title=XSS_CORPUS[0],
            marking=XSS_CORPUS[2],
            org_names={"wmp": XSS_CORPUS[3]},
        )
    )
    page = open_report(ctx)
    _wait_count(page, ACTION_ROWS, n)
    assert page.evaluate("window.__xss === undefined")
    for q in ("script", "img", "svg", "onerror"):
        page.fill("#worklist-filter", q)
        page.wait_for_function(
            "() => document.getElementById('worklist-status').textContent.includes('filtered')"
        )
        page.fill("#findings-filter", q)
    page.click("#findings-table th[data-key=principal_name] button")
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    assert page.evaluate("window.__xss === undefined")
    assert page.problems == []
    assert _count(page, "img, iframe, object, embed, math, video, audio") == 0
    # the only SVG elements are the report's own pictures (bars, legend swatches, sparklines)
    ours = "svg.bar, svg.swatch, svg.spark, svg#burndown"
    assert _count(page, "svg") == _count(page, ours) > 0
    page.screenshot(path=str(artifacts_dir / "report-xss-corpus.png"))


ROW_TEXTS = """() => [...document.querySelectorAll(
    '#worklist-body tr, #findings-body tr, #summary table tbody tr')].map(tr =>
    tr.className + ': ' + [...tr.children].map(cell => {
        const words = [];
        const walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        for (let n = walk.nextNode(); n; n = walk.nextNode()) {
            const text = n.textContent.trim();
            if (text && !n.parentElement.closest('button.copy')) words.push(text);
        }
        return words.join(' ');
    }).join(' | '))"""


def test_script_renders_the_same_rows_as_the_server(
    open_report: Any, context: dict[str, Any]
) -> None:
    static = open_report(context, javascript=False).evaluate(ROW_TEXTS)
    page = open_report(context)
    _wait_count(page, ACTION_ROWS, 4)
    assert page.evaluate(ROW_TEXTS) == static
    # summary: top actions 4, severities 5, force matrix 1 (wmp's row), rules 4, top items 5;
    # worklist 4 group rows + 4 actions; findings 6
    assert len(static) == 4 + 5 + 1 + 4 + 5 + 8 + 6
