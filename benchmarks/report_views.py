"""The three-view HTML report at 100,000 findings in real headless Chromium, and pseudonymising.

Usage (from the repository root, with the project's virtualenv active)::

    python benchmarks/report_views.py                       # 100,000 findings, 3 page loads
    python benchmarks/report_views.py --findings 10000 --repeat 1 --smoke
    python benchmarks/report_views.py --pseudonymise-accounts 100000

What is measured (nothing is asserted):

* building the context (``build_context`` with history and a 30-run trend) and rendering the
  single HTML file, its size;
* in Chromium (Debian's, driven by playwright; launch flags as in the browser tests): time to
  first render, from navigation start until the worklist and findings tables show their first
  page (the page's own ``performance.now()``, polled every animation frame); the JS heap then;
* time for each interaction, from the event until the table's status line changes (measured in
  the page with a MutationObserver): the free-text filter (which waits 150 ms after the last
  keystroke above 5,000 rows, shown apart), a severity select, grouping the worklist by system
  of record, a column sort, the next page, switching to the evidence view;
* ``--pseudonymise-accounts N``: the pseudonymiser on the sample audited at N accounts.

The findings are synthetic but shaped like the sample's: 20,000 accounts, 2,000 groups, two
forces, paths of one to four hops, one action per five findings.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import polars as pl

from accessaudit.model import ACCOUNTS_SCHEMA, ACTIONS_SCHEMA, FINDINGS_SCHEMA, GROUPS_SCHEMA
from accessaudit.report.context import build_context
from accessaudit.report.evidence import RuleDoc
from accessaudit.report.history import HISTORY_SCHEMA
from accessaudit.report.html import render_html
from accessaudit.report.trend import point, trend_context

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SEVERITIES = ["critical", "high", "medium", "low", "info"]
RULES = [
    RuleDoc(f"rule-{i}", f"Rule {i}", SEVERITIES[i % 5], "why", "what to do", "remove-member")
    for i in range(8)
]
NOW = datetime(2026, 11, 26, 5, tzinfo=UTC)


def frames(n_findings: int, seed: int = 7) -> dict[str, pl.DataFrame]:
    rng = random.Random(seed)
    n_accounts, n_groups = 20_000, 2_000
    orgs = ["wmp", "warks"]
    accounts = pl.DataFrame(
        {
            "source": ["ad:alliance.local"] * n_accounts,
            "account_id": [f"a{i:06d}" for i in range(n_accounts)],
            "username": [f"user{i}" for i in range(n_accounts)],
            "display_name": [f"Person {i}" for i in range(n_accounts)],
            "org": [orgs[i % 2] for i in range(n_accounts)],
            "org_evidence": [[f"upn_suffix:{orgs[i % 2]}"] for i in range(n_accounts)],
            "org_conflict": [False] * n_accounts,
        }
    )
    accounts = accounts.with_columns(
        pl.lit(None, t).alias(c) for c, t in ACCOUNTS_SCHEMA.items() if c not in accounts.columns
    )
    groups = pl.DataFrame(
        {
            "source": ["ad:alliance.local"] * n_groups,
            "group_id": [f"g{i:05d}" for i in range(n_groups)],
            "name": [f"{orgs[i % 2].upper()}-GROUP-{i}" for i in range(n_groups)],
            "mastered": [("ad", "ad", "cloud", "app")[i % 4] for i in range(n_groups)],
            "org": [orgs[i % 2] for i in range(n_groups)],
            "org_evidence": [[f"name_prefix:{orgs[i % 2]}"] for i in range(n_groups)],
            "org_conflict": [False] * n_groups,
        }
    )
    groups = groups.with_columns(
        pl.lit(None, t).alias(c) for c, t in GROUPS_SCHEMA.items() if c not in groups.columns
    )
    rows, paths = [], []
    for i in range(n_findings):
        a, g = rng.randrange(n_accounts), rng.randrange(n_groups)
        hops = [f"g{rng.randrange(n_groups):05d}" for _ in range(rng.randrange(3))]
        key = f"rule-{i % 8}|a{a:06d}|g{g:05d}|{i}"
        rows.append(
            {
                "finding_key": key,
                "rule_id": f"rule-{i % 8}",
                "severity": SEVERITIES[i % 8 % 5],
                "title": f"Rule {i % 8}",
                "action": "remove-member",
                "account_id": f"a{a:06d}",
                "group_id": f"g{g:05d}",
                "via_group_id": hops[0] if hops else None,
                "depth": len(hops),
                "principal_org": orgs[a % 2],
                "resource_org": orgs[g % 2],
                "detail": f"reaches group {g} through {len(hops)} nested group(s)",
                "status": "open" if i % 50 else "accepted",
            }
        )
        paths.append({"finding_key": key, "path": [f"a{a:06d}", *hops, f"g{g:05d}"]})
    findings = pl.DataFrame(rows).with_columns(
        pl.lit(None, t).alias(c)
        for c, t in FINDINGS_SCHEMA.items()
        if c not in ("finding_key", "rule_id", "severity", "title", "action", "account_id")
        and c not in rows[0]
    )
    actions = pl.DataFrame(
        [
            {
                "action_id": f"remove-member|g{(i * 7) % n_groups:05d}|a{i:06d}",
                "kind": "remove-member",
                "severity": SEVERITIES[i % 5],
                "group_id": f"g{(i * 7) % n_groups:05d}",
                "member_id": f"a{i % n_accounts:06d}",
                "member_kind": "account",
                "owning_org": orgs[(i * 7) % n_groups % 2],
                "resolves": 1 + i % 9,
                "finding_keys": [],
                "summary": f"Remove user{i % n_accounts} from GROUP-{(i * 7) % n_groups}",
                "powershell": f"Remove-ADGroupMember -Identity 'g{(i * 7) % n_groups:05d}' "
                f"-Members 'a{i % n_accounts:06d}' -Confirm:$false",
            }
            for i in range(n_findings // 5)
        ],
        schema=ACTIONS_SCHEMA,
    )
    statuses = ["persisting"] * 8 + ["new", "regressed"]
    history = pl.DataFrame(
        {
            "finding_key": findings["finding_key"],
            "rule_id": findings["rule_id"],
            "severity": findings["severity"],
            "status": [statuses[i % 10] for i in range(n_findings)],
            "finding_status": findings["status"],
            "first_seen": [NOW - timedelta(days=i % 90) for i in range(n_findings)],
        }
    ).with_columns(
        pl.lit(None, t).alias(c)
        for c, t in HISTORY_SCHEMA.items()
        if c not in ("finding_key", "rule_id", "severity", "status", "finding_status", "first_seen")
    )
    return {
        "accounts": accounts,
        "groups": groups,
        "findings": findings,
        "actions": actions,
        "paths": pl.DataFrame(paths, schema={"finding_key": pl.String, "path": pl.List(pl.String)}),
        "history": history.select(list(HISTORY_SCHEMA)),
    }


def trend(n_findings: int) -> dict[str, Any]:
    manifests = []
    for i in range(30):
        started = NOW - timedelta(days=29 - i)
        open_ = int(n_findings * (1.6 - 0.02 * i))
        manifests.append(
            {
                "run_id": started.strftime("%Y%m%dT%H%M%SZ"),
                "started": started.isoformat(),
                "complete": i % 9 != 4,
                "summary": {"findings": open_, "open": open_, "by_severity": {"high": open_}},
            }
        )
    points = [p for m in manifests if (p := point(m)) is not None]
    return trend_context(points, date(2027, 3, 31))


FIRST_RENDER = """() => new Promise(resolve => {
  const done = () => document.getElementById('worklist-status').textContent &&
                     document.getElementById('findings-status').textContent;
  const tick = () => done() ? resolve(performance.now()) : requestAnimationFrame(tick);
  tick();
})"""

# Time from an action until the status line of `prefix`'s table changes.
INTERACT = """async ([prefix, action]) => {
  const status = document.getElementById(prefix + '-status');
  const before = status.textContent;
  const changed = new Promise(resolve => {
    const obs = new MutationObserver(() => { obs.disconnect(); resolve(performance.now()); });
    obs.observe(status, {childList: true, characterData: true, subtree: true});
  });
  const q = s => document.querySelector(s);
  const set = (sel, value, type) => {
    const el = q(sel);
    el.value = value;
    el.dispatchEvent(new Event(type, {bubbles: true}));
  };
  const t0 = performance.now();
  const actions = {
    'filter': () => set('#' + prefix + '-filter', 'person 1234', 'input'),
    'unfilter': () => set('#' + prefix + '-filter', '', 'input'),
    'severity': () => set('#' + prefix + '-severity', 'high', 'change'),
    'severity-all': () => set('#' + prefix + '-severity', '', 'change'),
    'group-system': () => set('#worklist-groupby', 'system', 'change'),
    'sort': () => q('#' + prefix + '-table th[data-key=severity] button').click(),
    'next': () => q('#' + prefix + '-next').click(),
  };
  actions[action]();
  const t1 = await changed;
  return {ms: t1 - t0, before, after: status.textContent};
}"""


VIEW_SWITCH = """() => new Promise(resolve => {
  const t0 = performance.now();
  document.querySelector('nav.toc a[data-view="evidence"]').click();
  const officer = document.getElementById('view-officer');
  const tick = () => officer.hidden ? resolve(performance.now() - t0) : requestAnimationFrame(tick);
  tick();
})"""


def browser_figures(report: Path, repeat: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        out.setdefault(name, []).append(value)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        for _ in range(repeat):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(report.as_uri(), wait_until="commit")
            first = page.evaluate(FIRST_RENDER)
            add("first render (ms)", first)
            nav = page.evaluate(
                "() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
            )
            add("DOMContentLoaded (ms)", nav)
            heap = page.evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : 0")
            add("JS heap after load (MB)", heap / 2**20)
            for prefix, action, label in [
                ("worklist", "filter", "worklist text filter incl. 150 ms debounce (ms)"),
                ("worklist", "unfilter", "worklist clear filter incl. debounce (ms)"),
                ("findings", "filter", "findings text filter incl. 150 ms debounce (ms)"),
                ("findings", "unfilter", "findings clear filter incl. debounce (ms)"),
                ("findings", "severity", "findings severity select (ms)"),
                ("findings", "severity-all", "findings severity back to all (ms)"),
                ("worklist", "group-system", "worklist group by system of record (ms)"),
                ("findings", "sort", "findings sort by severity (ms)"),
                ("findings", "next", "findings next page (ms)"),
            ]:
                r = page.evaluate(INTERACT, [prefix, action])
                add(label, r["ms"])
            ms = page.evaluate(VIEW_SWITCH)
            add("switch to the evidence view (ms)", ms)
            page.close()
        browser.close()
    return out


def pseudonymise_figures(accounts: int) -> dict[str, float]:
    from accessaudit.engine.rulefile import load_rules
    from accessaudit.pipeline.run import analyse, collect_sources, combine, prepare_demo
    from accessaudit.report.pseudonymise import Pseudonymiser

    with tempfile.TemporaryDirectory() as tmp:
        settings = prepare_demo(Path(tmp), accounts=accounts, seed=7)
        analysis = analyse(
            combine(collect_sources(settings, now=NOW)), settings, load_rules(), as_of=NOW
        )
        t0 = time.perf_counter()
        Pseudonymiser(bytes(32)).analysis(analysis)
        return {
            "accounts rows": analysis.accounts.height,
            "findings": analysis.findings.height,
            "pseudonymise all output tables (s)": time.perf_counter() - t0,
        }


@click.command()
@click.option("--findings", "n_findings", type=int, default=100_000, show_default=True)
@click.option("--repeat", type=int, default=3, show_default=True)
@click.option("--smoke", is_flag=True, help="10,000 findings, one page load.")
@click.option("--pseudonymise-accounts", type=int, default=0, help="Also time the pseudonymiser.")
def main(n_findings: int, repeat: int, smoke: bool, pseudonymise_accounts: int) -> None:
    if smoke:
        n_findings, repeat = 10_000, 1
    t0 = time.perf_counter()
    f = frames(n_findings)
    t1 = time.perf_counter()
    ctx = build_context(
        manifest={"run_id": NOW.strftime("%Y%m%dT%H%M%SZ"), "complete": True, "sources": []},
        findings=f["findings"],
        actions=f["actions"],
        accounts=f["accounts"],
        groups=f["groups"],
        paths=f["paths"],
        rules=RULES,
        title="benchmark",
        history=f["history"],
        trend=trend(n_findings),
    )
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        report = render_html(ctx, Path(tmp) / "report.html")
        t3 = time.perf_counter()
        size = report.stat().st_size
        py = sys.version.split()[0]
        print(f"{n_findings:,} findings, {f['actions'].height:,} actions, python {py}")
        print(f"  synthetic tables        {t1 - t0:8.2f} s")
        print(f"  build_context           {t2 - t1:8.2f} s")
        print(f"  render_html             {t3 - t2:8.2f} s")
        print(f"  report.html             {size / 2**20:8.1f} MB")
        figures = browser_figures(report, repeat)
    print(f"Chromium, median of {repeat} page load(s):")
    for name, values in figures.items():
        print(f"  {name:55} {statistics.median(values):9.1f}")
    if pseudonymise_accounts:
        for name, value in pseudonymise_figures(pseudonymise_accounts).items():
            print(f"  {name:55} {value:9.2f}")


if __name__ == "__main__":
    main()
