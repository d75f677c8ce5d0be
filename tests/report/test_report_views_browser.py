"""The three views of a real run's report (third of three runs, the last incomplete) in Chromium.

Every check waits for an exact DOM state, never for a time; a screenshot of each view is
written to test-artifacts/ for people to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from support.browser import chromium, open_report
from support.fixtures import NOW
from support.history_runs import CLOUD_GROUPS, settings_for, split, with_edges, without_edges, write

from accessaudit.engine.rulefile import Rule
from accessaudit.pipeline.result import RunResult
from accessaudit.sample.directory import generate
from accessaudit.store.runs import MANIFEST, sha256_file

pytestmark = pytest.mark.browser
#: every run is marked with the shipped example register (EX-2026-001: shared service accounts)
REGISTER = Path(__file__).resolve().parents[2] / "exceptions.example.toml"

ACTION_ROWS = "#worklist-body tr.action-row"
FINDING_ROWS = "#findings-body tr.finding-row"
VIEWS = ("officer", "worklist", "evidence")


@pytest.fixture(scope="module")
def runs(rules: list[Rule], tmp_path_factory: pytest.TempPathFactory) -> list[RunResult]:
    data = tmp_path_factory.mktemp("views") / "data"
    settings = settings_for(data)
    settings = settings.model_copy(
        update={
            "report": settings.report.model_copy(update={"target_date": date(2027, 3, 31)}),
            "audit": settings.audit.model_copy(update={"exceptions_file": REGISTER}),
        }
    )
    base = split(generate(seed=7, accounts=1500, now=NOW))
    r1 = write(data, base, rules, NOW, settings=settings)
    f, groups = r1.analysis.findings, r1.analysis.groups
    direct = f.filter(pl.col("rule_id") == "cross-org-direct-member").sort("finding_key")
    e1, e2 = ((r["group_id"], r["account_id"]) for r in direct.head(2).iter_rows(named=True))
    t2 = without_edges(base, [e1, e2])
    r2 = write(data, t2, rules, NOW + timedelta(days=7), settings=settings)
    partial = with_edges(t2, [e1])
    cloud = groups.filter(pl.col("name") == CLOUD_GROUPS[1])["group_id"].implode()
    partial["memberships"] = partial["memberships"].filter(~pl.col("group_id").is_in(cloud))
    r3 = write(
        data, partial, rules, NOW + timedelta(days=14), cloud_complete=False, settings=settings
    )
    return [r1, r2, r3]


@pytest.fixture(scope="module")
def page(runs: list[RunResult]) -> Iterator[Any]:
    with chromium() as browser:
        assert runs[2].report is not None
        page = open_report(
            browser.new_page(viewport={"width": 1400, "height": 1000}), runs[2].report.as_uri()
        )
        yield page


def count(page: Any, selector: str) -> int:
    return int(page.evaluate("s => document.querySelectorAll(s).length", selector))


def wait_count(page: Any, selector: str, expected: int) -> None:
    page.wait_for_function(
        "([s, n]) => document.querySelectorAll(s).length === n", arg=[selector, expected]
    )


def show(page: Any, view: str) -> None:
    page.click(f'nav.toc a[data-view="{view}"]')
    page.wait_for_function(
        "v => document.documentElement.getAttribute('data-view') === (v || 'all')", arg=view
    )


def visible_views(page: Any) -> list[str]:
    return [v for v in VIEWS if page.is_visible(f"#view-{v}")]


def test_the_officer_view_first_then_one_at_a_time_or_all(
    page: Any, runs: list[RunResult], artifacts_dir: Path
) -> None:
    # opened without a choice: the officer's view, the verdict above it
    assert visible_views(page) == ["officer"]
    assert page.get_attribute('nav.toc a[data-view="officer"]', "aria-current") == "page"
    assert page.is_visible("#verdict")
    page.screenshot(path=str(artifacts_dir / "first-screen-1440.png"))
    page.set_viewport_size({"width": 1024, "height": 900})
    page.screenshot(path=str(artifacts_dir / "first-screen-1024.png"))
    page.set_viewport_size({"width": 1400, "height": 1000})
    for view in VIEWS:
        show(page, view)
        assert visible_views(page) == [view]
        assert page.get_attribute(f'nav.toc a[data-view="{view}"]', "aria-current") == "page"
        page.screenshot(path=str(artifacts_dir / f"views-{view}.png"), full_page=True)
    show(page, "")
    assert visible_views(page) == list(VIEWS)
    assert page.evaluate("window.__xss === undefined")
    assert page.problems == []


def test_officer_view_burndown_and_changes(page: Any, runs: list[RunResult]) -> None:
    show(page, "officer")
    assert page.is_visible("#completeness.banner-incomplete")
    assert count(page, "svg#burndown circle.pt-open") == 3
    assert count(page, "svg#burndown circle.pt-accepted") == 3
    assert count(page, "svg#burndown circle.pt-incomplete") == 2  # open + accepted of run 3
    opens = page.eval_on_selector_all(
        "svg#burndown circle.pt-open", "els => els.map(e => Number(e.dataset.open))"
    )
    assert opens == [r.run.manifest["summary"]["open"] for r in runs]
    assert page.is_visible("#burndown-target")
    changes = runs[2].run.manifest["summary"]["changes"]
    shown = page.eval_on_selector_all(
        "#change-counts .card",
        "els => Object.fromEntries(els.map(e => [e.dataset.change, "
        "Number(e.querySelector('.value').textContent)]))",
    )
    assert shown == {k: changes[k] for k in shown}
    assert changes["resolved"] == 0 and changes["regressed"] > 0 and changes["unknown"] > 0
    assert page.text_content("#changes-previous code") == runs[1].run.run_id
    fresh = changes["new"] + changes["regressed"]  # all open: the accepted ones persist
    assert count(page, "#fresh-items tr.fresh-row") == min(fresh, 10)
    assert count(page, "#unknown-items tr.gone-row") == changes["unknown"]
    # open / accepted by rule in each of the three runs
    runs_shown = page.eval_on_selector_all(
        "#trend-rules th[data-run]", "e => e.map(x => x.dataset.run)"
    )
    assert runs_shown == [r.run.run_id for r in runs]
    shared = page.eval_on_selector_all(
        '#trend-rules tr[data-rule="shared-account-both-forces"] span.accepted',
        "els => els.map(e => Number(e.textContent))",
    )
    assert shared == [r.run.manifest["summary"]["accepted"] for r in runs] and shared[0] > 0


def test_worklist_by_system_of_record(page: Any, runs: list[RunResult]) -> None:
    show(page, "worklist")
    actions = runs[2].analysis.actions.join(
        runs[2].analysis.groups.select("group_id", "mastered"), on="group_id", how="left"
    )
    n_cloud = actions.filter(pl.col("mastered") == "cloud").height
    assert 0 < n_cloud < actions.height
    options = page.eval_on_selector_all("#worklist-system option", "els => els.map(e => e.value)")
    assert options == ["", "ad", "cloud"]
    page.select_option("#worklist-system", "cloud")
    wait_count(page, ACTION_ROWS, min(n_cloud, 100))
    assert count(page, f"{ACTION_ROWS} .chip.sys-cloud") == min(n_cloud, 100)
    page.select_option("#worklist-system", "")
    page.select_option("#worklist-groupby", "system")
    page.wait_for_function(
        "() => document.querySelector('#worklist-body tr.group-row .chip.sys') !== null"
    )
    systems = page.eval_on_selector_all(
        "#worklist-body tr.group-row .chip.sys", "els => els.map(e => e.textContent)"
    )
    assert systems == sorted(systems) and systems[0] == "ad"
    page.fill("#worklist-filter", "Remove-MgGroupMemberByRef")  # Graph commands: cloud groups
    page.wait_for_function(
        "() => /filtered|No matching/.test(document.getElementById('worklist-status').textContent)"
    )
    graph = actions.filter(pl.col("powershell").str.contains("Remove-MgGroupMemberByRef")).height
    assert count(page, ACTION_ROWS) == min(graph, 100)
    assert count(page, f"{ACTION_ROWS} .chip.sys-ad") == 0  # AD groups never get Graph
    page.fill("#worklist-filter", "")
    page.select_option("#worklist-groupby", "force")


def test_evidence_view(page: Any, runs: list[RunResult]) -> None:
    show(page, "evidence")
    regressed = runs[2].run.manifest["summary"]["changes"]["regressed"]
    page.select_option("#findings-change", "regressed")
    wait_count(page, FINDING_ROWS, regressed)
    chips = page.eval_on_selector_all(
        f"{FINDING_ROWS} .chip.change", "els => els.map(e => e.textContent)"
    )
    assert chips == ["regressed"] * regressed
    page.select_option("#findings-change", "")
    assert page.text_content("#previous-run") == runs[1].run.run_id
    assert page.text_content("#previous-manifest") == sha256_file(runs[1].run.path / MANIFEST)
    assert (
        page.text_content("#previous-manifest") == runs[2].run.manifest["previous_manifest_sha256"]
    )
    # the register as it stood, with approvers and expiry, and the findings it accepted
    assert page.is_visible("#exceptions-register")
    row = '#exceptions-register tr.exception-row[data-state="in-force"]'
    assert page.text_content(f"{row} .exception-id") == "EX-2026-001"
    approvers = page.eval_on_selector_all(
        f"{row} .approver-name", "els => els.map(e => e.textContent)"
    )
    assert approvers == [
        "Head of Information Security, West Mercia Police",
        "Head of Information Security, Warwickshire Police",
    ]
    assert page.text_content(f"{row} td.expires").startswith("2027-03-31")
    accepted = runs[2].run.manifest["summary"]["accepted"]
    assert count(page, "#exceptions-accepted tr.accepted-row") == accepted > 0
    assert count(page, "#exceptions-accepted tr.accepted-row .approver-name") == 2 * accepted
    ends = page.eval_on_selector_all(
        "#exceptions-accepted td.ends", "els => els.map(e => e.textContent)"
    )
    assert set(ends) == {"2027-03-31"}
    versions = page.eval_on_selector_all("dd.rule-version", "els => els.length")
    assert versions == len(runs[2].run.manifest["rules"])
    page.emulate_media(media="print")
    assert not page.is_visible("nav.toc") and not page.is_visible("#findings-controls")
    page.emulate_media(media="screen")


def test_printing_renders_every_filtered_finding(page: Any, runs: list[RunResult]) -> None:
    """The pager is hidden in print: beforeprint renders all (filtered) rows, afterprint pages."""
    show(page, "evidence")
    findings = runs[2].analysis.findings
    assert findings.height > 100
    wait_count(page, FINDING_ROWS, 100)
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    assert count(page, FINDING_ROWS) == findings.height
    assert count(page, f"{FINDING_ROWS} details[open]") == findings.height
    page.evaluate("window.dispatchEvent(new Event('afterprint'))")
    assert count(page, FINDING_ROWS) == 100
    high = findings.filter(pl.col("severity") == "high").height
    assert high > 100
    page.select_option("#findings-severity", "high")
    wait_count(page, FINDING_ROWS, 100)
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    assert count(page, FINDING_ROWS) == high
    sev = page.eval_on_selector_all(
        f"{FINDING_ROWS} td:first-child", "e => e.map(x => x.textContent)"
    )
    assert set(sev) == {"high"}
    page.evaluate("window.dispatchEvent(new Event('afterprint'))")
    assert count(page, FINDING_ROWS) == 100
    page.select_option("#findings-severity", "")
    show(page, "")


def test_commands_are_never_wrapped_inside_a_token(page: Any, runs: list[RunResult]) -> None:
    """A PowerShell line read off the screen keeps every token whole (a DN, a SID, a cmdlet):
    a long line scrolls sideways in its block instead of wrapping mid-token."""
    show(page, "worklist")
    page.set_viewport_size({"width": 1024, "height": 900})
    split = page.evaluate(
        """() => {
        const out = [];
        for (const code of document.querySelectorAll('#worklist-body pre.cmd code')) {
            const text = code.firstChild;
            if (!text) continue;
            const re = /\\S+/g;
            for (let m = re.exec(text.textContent); m; m = re.exec(text.textContent)) {
                const r = document.createRange();
                r.setStart(text, m.index);
                r.setEnd(text, m.index + m[0].length);
                const lines = new Set([...r.getClientRects()].map(x => Math.round(x.top)));
                if (lines.size > 1) out.push(m[0]);
            }
        }
        return out;
    }"""
    )
    longest = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('#worklist-body pre.cmd')]"
        ".map(p => p.scrollWidth - p.clientWidth))"
    )
    page.set_viewport_size({"width": 1400, "height": 1000})
    assert split == []
    assert longest > 0  # some commands are longer than their cell: they scroll, not wrap


def test_each_rules_rationale_is_written_once_and_linked_from_its_findings(
    page: Any, runs: list[RunResult]
) -> None:
    show(page, "evidence")
    got = page.evaluate(
        """() => [...document.querySelectorAll('#findings-body tr.finding-row')].map(tr => {
            const a = tr.querySelector('p.rationale a');
            const target = document.getElementById(a.getAttribute('href').slice(1));
            return [tr.querySelector('td:nth-child(3) code.id').textContent,
                    target ? target.id : null, tr.querySelector('p.rationale').textContent];
        })"""
    )
    assert got, "no finding rows"
    for rule_id, target, text in got:
        assert target == f"appendix-{rule_id}"
        assert text == f"Why it matters: rule {rule_id} in the rule appendix"
    # the rationale itself: once per rule, in the appendix
    rationale = next(r.rationale for r in runs[2].analysis.rules if r.id == got[0][0])
    assert (
        page.evaluate(
            "t => document.body.innerText.split(t).length - 1", rationale.strip().split("\n")[0]
        )
        == 1
    )
