"""The findings table over 6,000 rows in real headless Chromium: the rows decoded from the
compressed columnar block, filtered, selected and sorted on the columns, only one page of rows
in the DOM, and the row counts a screen reader announces (aria-rowcount / aria-rowindex).

Each expected value is computed here from the rows the test builds. Every check waits for an
exact DOM state, never for a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.browser import chromium, open_report
from support.report_sample import make_context

from accessaudit.report.html import render_html
from accessaudit.report.rows import FINDING_COLUMNS

pytestmark = pytest.mark.browser

N, PEOPLE, GROUPS, PAGE = 6_000, 700, 50, 100
SEVERITIES = ["critical", "high", "medium", "low", "info"]
ROWS = "#findings-body tr.finding-row"


def _table() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The report context with N findings of PEOPLE accounts on GROUPS groups; the findings as
    dicts with every name resolved (the truth the page is checked against)."""
    ctx = make_context(title="t")
    objects = ctx["objects"]["rows"]
    first_person = len(objects)
    objects += [
        [f"p{i}", f"Person {i}", f"user{i}", "account", ("wmp", "warks")[i % 2], [], False]
        for i in range(PEOPLE)
    ]
    first_group = len(objects)
    objects += [
        [f"g{i}", f"GROUP-{i}", "", "group", ("wmp", "warks")[i % 2], [], False]
        for i in range(GROUPS)
    ]
    rule = ctx["findings"]["data"]["rows"][0][1]
    title = ctx["rule_docs"][rule]["title"]
    rows, truth = [], []
    for i in range(N):
        p, g = i % PEOPLE, i % GROUPS
        row = {
            "finding_key": f"k{i:05d}",
            "rule_id": rule,
            "severity": SEVERITIES[i % 5],
            "status": "accepted" if i % 7 == 0 else "open",
            "principal": first_person + p,
            "principal_org": ("wmp", "warks")[p % 2],
            "resource": first_group + g,
            "resource_org": ("wmp", "warks")[g % 2],
            "path": [first_person + p, first_group + g],
            "path_partial": False,
            "depth": 0,
            "detail": "direct member",
            "hidden": False,
            "change": "",
            "first_seen": "",
        }
        rows.append([row[c] for c in FINDING_COLUMNS])
        fields = [
            row["finding_key"], rule, title, row["severity"], row["status"],
            f"Person {p}", f"user{p}", f"p{p}", row["principal_org"],
            f"GROUP-{g}", "", f"g{g}", row["resource_org"], row["detail"],
            f"Person {p}", f"GROUP-{g}",
        ]  # fmt: skip
        truth.append({**row, "i": i, "p": p, "text": "\n".join(fields).lower()})
    ctx["findings"]["data"]["rows"] = rows
    ctx["findings"]["total"] = N
    return ctx, truth


@pytest.fixture(scope="module")
def truth_and_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    ctx, truth = _table()
    out = render_html(ctx, Path(tmp_path_factory.mktemp("table")) / "report.html")
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        open_report(page, out.as_uri() + "#view-evidence")
        yield truth, page


def _status(page: Any, expected: str) -> None:
    page.wait_for_function(
        "t => document.getElementById('findings-status').textContent === t",
        arg=expected,
        timeout=10_000,
    )


def _principals(page: Any) -> list[str]:
    return list(
        page.eval_on_selector_all(f"{ROWS} span.principal", "els => els.map(e => e.textContent)")
    )


def _row_indexes(page: Any) -> list[int]:
    return [
        int(x)
        for x in page.eval_on_selector_all(
            ROWS, "els => els.map(e => e.getAttribute('aria-rowindex'))"
        )
    ]


def test_one_page_of_rows_in_the_dom_with_row_counts(truth_and_page: tuple[Any, Any]) -> None:
    truth, page = truth_and_page
    _status(page, f"Showing 1–{PAGE} of {N}")
    assert page.problems == []
    assert page.evaluate(f"document.querySelectorAll('{ROWS}').length") == PAGE
    assert page.get_attribute("#findings-table", "aria-rowcount") == str(N + 1)
    assert page.get_attribute("#findings-table thead tr", "aria-rowindex") == "1"
    assert _row_indexes(page) == list(range(2, PAGE + 2))
    assert _principals(page) == [f"Person {t['p']}" for t in truth[:PAGE]]
    page.click("#findings-next")
    _status(page, f"Showing {PAGE + 1}–{2 * PAGE} of {N}")
    assert _row_indexes(page) == list(range(PAGE + 2, 2 * PAGE + 2))
    assert _principals(page) == [f"Person {t['p']}" for t in truth[PAGE : 2 * PAGE]]
    page.click("#findings-prev")
    _status(page, f"Showing 1–{PAGE} of {N}")


def test_filter_and_select_over_every_row(truth_and_page: tuple[Any, Any]) -> None:
    truth, page = truth_and_page
    hits = [t for t in truth if "person 12" in t["text"]]
    assert len(hits) == 11 * 9  # Person 12 and 120-129, 8 or 9 rows each
    page.fill("#findings-filter", "Person 12")
    _status(page, f"Showing 1–{len(hits)} of {len(hits)} (filtered from {N})")
    assert page.get_attribute("#findings-table", "aria-rowcount") == str(len(hits) + 1)
    assert _principals(page) == [f"Person {t['p']}" for t in hits]
    high = [t for t in hits if t["severity"] == "high"]
    page.select_option("#findings-severity", "high")
    _status(page, f"Showing 1–{len(high)} of {len(high)} (filtered from {N})")
    assert _principals(page) == [f"Person {t['p']}" for t in high]
    # a group's id is searched too (the resource column and the path); case does not matter
    page.fill("#findings-filter", "G46")
    g46 = [t for t in truth if t["severity"] == "high" and "g46" in t["text"]]
    assert len(g46) == len([t for t in truth if t["i"] % 50 == 46]) == N // 50
    _status(page, f"Showing 1–{PAGE} of {len(g46)} (filtered from {N})")
    assert _principals(page) == [f"Person {t['p']}" for t in g46[:PAGE]]
    page.fill("#findings-filter", "")
    page.select_option("#findings-severity", "")
    accepted = [t for t in truth if t["status"] == "accepted"]
    page.select_option("#findings-state", "accepted")
    _status(page, f"Showing 1–{PAGE} of {len(accepted)} (filtered from {N})")
    assert _principals(page) == [f"Person {t['p']}" for t in accepted[:PAGE]]
    page.select_option("#findings-state", "")
    _status(page, f"Showing 1–{PAGE} of {N}")


def test_sort_by_name_and_severity(truth_and_page: tuple[Any, Any]) -> None:
    truth, page = truth_and_page
    name_button = "#findings-table th[data-key=principal_name] button"
    page.click(name_button)  # ascending, numbers in names by value (Person 2 before Person 10)
    by_name = sorted(truth, key=lambda t: (t["p"], t["i"]))
    page.wait_for_function(
        "n => document.querySelector('#findings-body span.principal').textContent === n",
        arg=f"Person {by_name[0]['p']}",
    )
    assert _principals(page) == [f"Person {t['p']}" for t in by_name[:PAGE]]
    page.click(name_button)  # descending: ties stay in the report's order
    by_name_desc = sorted(truth, key=lambda t: (-t["p"], t["i"]))
    page.wait_for_function(
        "n => document.querySelector('#findings-body span.principal').textContent === n",
        arg=f"Person {by_name_desc[0]['p']}",
    )
    assert _principals(page) == [f"Person {t['p']}" for t in by_name_desc[:PAGE]]
    assert page.get_attribute("#findings-table th[data-key=principal_name]", "aria-sort") == (
        "descending"
    )
    page.click("#findings-table th[data-key=severity] button")  # worst first
    worst = sorted(truth, key=lambda t: (SEVERITIES.index(t["severity"]), t["i"]))
    page.wait_for_function(
        "() => document.querySelector('#findings-table th[data-key=severity]')"
        ".getAttribute('aria-sort') === 'descending'"
    )
    assert _principals(page) == [f"Person {t['p']}" for t in worst[:PAGE]]
    chips = page.eval_on_selector_all(
        f"{ROWS} td:first-child span.chip", "els => els.map(e => e.textContent)"
    )
    assert chips == ["critical"] * PAGE
    assert page.problems == []
