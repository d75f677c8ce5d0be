"""Hostile directory text through the real pipeline into every report view and every export.

Three runs of the embedded sample (the last one incomplete) whose names, descriptions,
departments and group names carry the XSS, formula and terminal corpora of :mod:`payloads`;
a site rule and an exceptions register whose free text is hostile too; the report title as
well. Every view of the reports of runs 2 (resolved items) and 3 (unknown items, banner) is
opened in headless Chromium with a tripwire, once as delivered (CSP on) and once with the CSP
bypassed, so escaping alone is proven. The CSV and XLSX exports are re-opened: no formula.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from support.browser import chromium
from support.history_runs import split, without_edges, write
from support.payloads import FORMULA, TERMINAL, XSS

from accessaudit.config.settings import Settings
from accessaudit.engine.rulefile import Rule, load_rules
from accessaudit.pipeline.demo import demo_settings
from accessaudit.pipeline.result import RunResult
from accessaudit.report.exports import FORMULA_TRIGGERS, neutralise_cell, write_xlsx
from accessaudit.sample.directory import generate

NOW = datetime(2026, 11, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
VIEWS = ("officer", "worklist", "evidence", "")
ALL = (*XSS, *FORMULA, *TERMINAL)


def toml_str(value: str) -> str:
    return json.dumps(value)  # a TOML basic string: JSON escapes are TOML escapes


def _site_rule(folder: Path) -> Path:
    """A site rule whose text fields are hostile and whose findings' detail is each account's
    display name (directory text at the start of an export cell)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        'id = "hostile-site-rule"',
        'version = "1.0"',
        f"title = {toml_str(FORMULA[0] + ' ' + XSS[0])}",
        'severity = "low"',
        'action = "review-attribution"',
        f"rationale = {toml_str(' '.join(XSS[:20]))}",
        f"remediation = {toml_str(' '.join(XSS[20:40]))}",
        'key = ["account_id", "group_id"]',
        'query = """',
        "SELECT account_id, CAST(NULL AS VARCHAR) AS group_id, org AS principal_org,",
        "       display_name AS detail",
        "FROM accounts WHERE display_name IS NOT NULL",
        '"""',
        "[[examples]]",
        'name = "an account with a display name"',
        'accounts = [{ id = "a1", org = "wmp", display_name = "A" }]',
        'expect = [["a1", ""]]',
        "[[examples]]",
        'name = "an account without one"',
        'accounts = [{ id = "a1", org = "wmp" }]',
        "expect = []",
    ]
    (folder / "hostile-site-rule.toml").write_text("\n".join(lines) + "\n")
    return folder


def _register(path: Path) -> Path:
    approvers = (
        f'{{ org = "wmp", name = {toml_str(XSS[5])}, date = 2026-10-01 }},'
        f' {{ org = "warks", name = {toml_str(FORMULA[1])}, date = 2026-10-02 }}'
    )
    entries = []
    for n, (expires, objects) in enumerate(
        ((date(2027, 3, 31), "WARKS-*"), (date(2026, 1, 31), "WMP-*"))
    ):
        entries.append(
            "\n".join(
                [
                    "[[exception]]",
                    f'id = "EX-{n}"',
                    'rule = "cross-org-group-owner"',
                    f"objects = [{toml_str(objects)}]",
                    f"justification = {toml_str(XSS[1] + ' ' + TERMINAL[0])}",
                    f"agreement = {toml_str(FORMULA[6])}",
                    f"expires = {expires.isoformat()}",
                    f"approvers = [{approvers}]",
                ]
            )
        )
    path.write_text("\n\n".join(entries) + "\n")
    return path


def _hostile(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Every account and group carries a payload (cycling through the corpora)."""
    t = dict(tables)
    acc, grp = t["accounts"], t["groups"]
    a = pl.Series([ALL[i % len(ALL)] for i in range(acc.height)], dtype=pl.String)
    g = pl.Series([ALL[(i * 7) % len(ALL)] for i in range(grp.height)], dtype=pl.String)
    t["accounts"] = acc.with_columns(
        display_name=a, department=a, username=pl.col("username") + " " + a
    )
    t["groups"] = grp.with_columns(description=g, name=pl.col("name") + " " + g)
    return t


@pytest.fixture(scope="module")
def hostile_runs(tmp_path_factory: pytest.TempPathFactory) -> list[RunResult]:
    folder = tmp_path_factory.mktemp("hostile")
    data = folder / "data"
    base = demo_settings(data)
    settings = base.model_copy(
        update={
            "audit": base.audit.model_copy(
                update={
                    "exceptions_file": _register(folder / "exceptions.toml"),
                    "rules_dirs": [_site_rule(folder / "site-rules")],
                }
            ),
            "report": base.report.model_copy(
                update={"title": XSS[2] + FORMULA[2], "target_date": date(2027, 3, 31)}
            ),
        }
    )
    Settings.model_validate(settings.model_dump())
    rules: list[Rule] = load_rules(settings.audit.rules_dirs)
    t1 = _hostile(split(generate(seed=7, accounts=600, now=NOW)))
    r1 = write(data, t1, rules, NOW, settings=settings)
    direct = r1.analysis.findings.filter(pl.col("rule_id") == "cross-org-direct-member")
    edges = [(r["group_id"], r["account_id"]) for r in direct.head(5).iter_rows(named=True)]
    t2 = without_edges(t1, edges)
    r2 = write(data, t2, rules, NOW + timedelta(days=7), settings=settings)
    r3 = write(data, t2, rules, NOW + timedelta(days=14), cloud_complete=False, settings=settings)
    assert r2.run.manifest["summary"]["changes"]["resolved"] >= 5
    assert not r3.run.complete
    return [r1, r2, r3]


# --- the browser --------------------------------------------------------------------------------

TRIPWIRE_STATE = """() => ({
    xss: window.__xss,
    handlers: [...document.querySelectorAll('*')].filter(e =>
        [...e.attributes].some(a => a.name.toLowerCase().startsWith('on'))).length,
    js_links: [...document.querySelectorAll('a[href], area[href]')].filter(a =>
        !['file:', 'http:', 'https:', 'mailto:', ''].includes(a.protocol) ||
        a.getAttribute('href').trim().toLowerCase().startsWith('javascript')).length,
    embedded: document.querySelectorAll(
        'img, iframe, object, embed, video, audio, math, base, form, link, template, textarea,'
        + ' input:not(#findings-filter):not(#worklist-filter), button[formaction],'
        + ' meta[http-equiv=refresh], noscript').length,
    scripts: [...document.querySelectorAll('script')].filter(s =>
        s.type !== 'application/json').length,
    csp: !!document.querySelector('meta[http-equiv="Content-Security-Policy"]'),
})"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _exercise(page: Any) -> None:
    """Every view, every details element open, every filter fed payload fragments, sorting."""
    for view in VIEWS:
        link = f'nav.toc a[data-view="{view}"]' if view else None
        if link and page.query_selector(link):
            page.click(link)
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        for box in page.query_selector_all("input[type=search], input[type=text]"):
            if box.is_visible():
                for needle in ("script", "onerror", "=cmd", "\u202e", ""):
                    box.fill(needle)
        for button in page.query_selector_all("th button")[:6]:
            if button.is_visible():
                button.click()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("bypass_csp", [False, True], ids=["csp", "no-csp"])
def test_every_view_of_every_report_is_inert(
    hostile_runs: list[RunResult], browser: Any, bypass_csp: bool
) -> None:
    assert len(XSS) >= 50
    for result in hostile_runs[1:]:
        assert result.report is not None
        html = result.report.read_text(encoding="utf-8")
        assert '<meta http-equiv="Content-Security-Policy"' in html
        context = browser.new_context(bypass_csp=bypass_csp, java_script_enabled=True)
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m, p=problems: p.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e, p=problems: p.append(f"pageerror: {e}"))
        page.on("dialog", lambda d, p=problems: (p.append(f"dialog: {d.message}"), d.dismiss()))
        page.on("request", lambda r, p=problems: r.url.startswith("file:") or p.append(r.url))
        page.goto(result.report.as_uri() + "#all")  # every section, every payload on show
        page.wait_for_load_state("load")
        # the page script decodes its tables asynchronously (DecompressionStream): wait for it
        page.wait_for_function("document.documentElement.classList.contains('js')")
        _exercise(page)
        state = page.evaluate(TRIPWIRE_STATE)
        assert state == {
            "xss": None,
            "handlers": 0,
            "js_links": 0,
            "embedded": 0,
            "scripts": 1,  # the report's own, hashed in its CSP
            "csp": True,
        }, (result.run.run_id, state)
        assert problems == [], problems
        # the payloads are there, as text: what a reviewer must be able to read
        text = page.evaluate("document.body.innerText")
        assert sum(1 for p in XSS if p.strip() and p.strip() in text) >= 20
        context.close()


def test_reports_escape_every_payload_in_the_markup(hostile_runs: list[RunResult]) -> None:
    """No payload appears verbatim outside text: every '<' of directory text is escaped."""
    for result in hostile_runs:
        assert result.report is not None
        html = result.report.read_text(encoding="utf-8")
        for payload in XSS:
            if "<" in payload:
                assert payload not in html, payload


# --- the spreadsheets -----------------------------------------------------------------------------


def _csv_cells(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_csv_exports_have_no_formula(hostile_runs: list[RunResult]) -> None:
    assert len(FORMULA) >= 20
    seen: set[str] = set()
    for result in hostile_runs:
        for name in ("findings.csv", "actions.csv", "history.csv", "trend.csv"):
            rows = _csv_cells(result.run.path / name)
            for row in rows:
                for cell in row:
                    if cell and cell[0] in FORMULA_TRIGGERS:
                        assert _is_number(cell), (name, cell)
                    seen.update(p for p in FORMULA if cell == neutralise_cell(p))
    # the payloads reached the exports (so the check above had something to check)
    assert len(seen) >= 15, sorted(set(FORMULA) - seen)


def _xlsx_check(path: Path) -> set[str]:
    """No formula cell, numeric columns numeric; the text cells (for the caller)."""
    from openpyxl import load_workbook

    wb = load_workbook(path)
    texts: set[str] = set()
    numeric_columns = 0
    for ws in wb.worksheets:
        header = [c.value for c in ws[1]]
        for col, name in enumerate(header, start=1):
            cells = [ws.cell(row=r, column=col) for r in range(2, ws.max_row + 1)]
            cells = [c for c in cells if c.value is not None]
            assert all(c.data_type != "f" for c in cells), (ws.title, name)
            if cells and all(isinstance(c.value, int | float) for c in cells):
                numeric_columns += 1
                assert all(c.data_type == "n" for c in cells)
            texts.update(str(c.value) for c in cells if c.data_type == "s")
    assert numeric_columns >= 1  # e.g. resolves / depth: still numbers, not text
    for value in texts:
        assert not value or value[0] not in FORMULA_TRIGGERS, value
    return texts


def test_xlsx_exports_have_no_formula_and_numbers_stay_numbers(
    hostile_runs: list[RunResult], tmp_path: Path
) -> None:
    for result in hostile_runs:
        _xlsx_check(result.run.path / "actions.xlsx")
    # the findings, whose detail column starts with every payload, through the same writer
    findings = hostile_runs[0].analysis.findings
    texts = _xlsx_check(write_xlsx({"findings": findings}, tmp_path / "findings.xlsx"))
    seen = {p for p in FORMULA if neutralise_cell(p)[:32_767] in texts}
    assert len(seen) >= 15, sorted(set(FORMULA) - seen)


def test_json_export_keeps_the_raw_text(hostile_runs: list[RunResult]) -> None:
    """JSON is not a spreadsheet: values stay exactly as the directory holds them."""
    data = json.loads((hostile_runs[0].run.path / "findings.json").read_text(encoding="utf-8"))
    text = json.dumps(data, ensure_ascii=False)
    assert any(p in text for p in FORMULA if p.isprintable())
