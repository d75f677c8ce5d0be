"""The three-view HTML report at 100,000 findings in real headless Chromium, and pseudonymising.

Usage (from the repository root, with the project's virtualenv active)::

    python benchmarks/report_views.py                       # 100,000 findings, 3 page loads
    python benchmarks/report_views.py --smoke               # 10,000 findings, 1 load: CI
    python benchmarks/report_views.py --pseudonymise-accounts 100000
    python benchmarks/report_views.py --findings 1000000 --repeat 1  # the 1M run's scale
    python benchmarks/report_views.py --encoding columnar     # the tables not compressed

What is measured (nothing is asserted):

* building the context (``build_context`` with history and a 30-run trend) and rendering the
  single HTML file: seconds, the memory each step adds to this process (``measure.Meter``:
  peak RSS above the RSS it began with), the file's size and that of its three embedded
  tables (``--encoding``: ``gzip``, the report's columnar JSON gzip'd and base64'd, or
  ``columnar``, the same JSON uncompressed);
* in Chromium (Debian's, driven by playwright; launch flags as in the browser tests): time to
  first render, from navigation start until the worklist and findings tables show their first
  page (the page's own ``performance.now()``, polled every animation frame: the tables are
  live once decoded); the JS heap then, and how many rows the tables put in the DOM;
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
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import polars as pl
from measure import MB, Meter, combine, machine, markdown_table, measured, timed

from accessaudit.model import ACCOUNTS_SCHEMA, ACTIONS_SCHEMA, FINDINGS_SCHEMA, GROUPS_SCHEMA
from accessaudit.report.context import ReportInput, build_context
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
SMOKE_FINDINGS = 10_000


N_ACCOUNTS, N_GROUPS = 20_000, 2_000
ORGS = ["wmp", "warks"]


def _with_schema(
    df: pl.DataFrame, schema: dict[str, Any], keep: tuple[str, ...] = ()
) -> pl.DataFrame:
    """``df`` with a null column for every column of ``schema`` it lacks (but ``keep``)."""
    return df.with_columns(
        pl.lit(None, t).alias(c) for c, t in schema.items() if c not in (*df.columns, *keep)
    )


def _directory() -> tuple[pl.DataFrame, pl.DataFrame]:
    """20,000 accounts and 2,000 groups over two forces (groups mastered in ad, cloud, app)."""
    accounts = pl.DataFrame(
        {
            "source": ["ad:alliance.local"] * N_ACCOUNTS,
            "account_id": [f"a{i:06d}" for i in range(N_ACCOUNTS)],
            "username": [f"user{i}" for i in range(N_ACCOUNTS)],
            "display_name": [f"Person {i}" for i in range(N_ACCOUNTS)],
            "org": [ORGS[i % 2] for i in range(N_ACCOUNTS)],
            "org_evidence": [[f"upn_suffix:{ORGS[i % 2]}"] for i in range(N_ACCOUNTS)],
            "org_conflict": [False] * N_ACCOUNTS,
        }
    )
    groups = pl.DataFrame(
        {
            "source": ["ad:alliance.local"] * N_GROUPS,
            "group_id": [f"g{i:05d}" for i in range(N_GROUPS)],
            "name": [f"{ORGS[i % 2].upper()}-GROUP-{i}" for i in range(N_GROUPS)],
            "mastered": [("ad", "ad", "cloud", "app")[i % 4] for i in range(N_GROUPS)],
            "org": [ORGS[i % 2] for i in range(N_GROUPS)],
            "org_evidence": [[f"name_prefix:{ORGS[i % 2]}"] for i in range(N_GROUPS)],
            "org_conflict": [False] * N_GROUPS,
        }
    )
    return _with_schema(accounts, ACCOUNTS_SCHEMA), _with_schema(groups, GROUPS_SCHEMA)


def _findings(n_findings: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Findings of 8 rules, each with a path of one to four hops; (findings, paths)."""
    rng = random.Random(seed)
    rows, paths = [], []
    for i in range(n_findings):
        a, g = rng.randrange(N_ACCOUNTS), rng.randrange(N_GROUPS)
        hops = [f"g{rng.randrange(N_GROUPS):05d}" for _ in range(rng.randrange(3))]
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
                "principal_org": ORGS[a % 2],
                "resource_org": ORGS[g % 2],
                "detail": f"reaches group {g} through {len(hops)} nested group(s)",
                "status": "open" if i % 50 else "accepted",
            }
        )
        paths.append({"finding_key": key, "path": [f"a{a:06d}", *hops, f"g{g:05d}"]})
    keep = ("finding_key", "rule_id", "severity", "title", "action", "account_id")
    findings = _with_schema(pl.DataFrame(rows), FINDINGS_SCHEMA, keep)
    return findings, pl.DataFrame(
        paths, schema={"finding_key": pl.String, "path": pl.List(pl.String)}
    )


def _actions(n_actions: int) -> pl.DataFrame:
    """Remove-member actions with their PowerShell."""
    rows = []
    for i in range(n_actions):
        group, member = f"g{(i * 7) % N_GROUPS:05d}", f"a{i % N_ACCOUNTS:06d}"
        rows.append(
            {
                "action_id": f"remove-member|{group}|a{i:06d}",
                "kind": "remove-member",
                "severity": SEVERITIES[i % 5],
                "group_id": group,
                "member_id": member,
                "member_kind": "account",
                "owning_org": ORGS[(i * 7) % N_GROUPS % 2],
                "resolves": 1 + i % 9,
                "finding_keys": [],
                "summary": f"Remove user{i % N_ACCOUNTS} from GROUP-{(i * 7) % N_GROUPS}",
                "powershell": f"Remove-ADGroupMember -Identity '{group}' "
                f"-Members '{member}' -Confirm:$false",
            }
        )
    return pl.DataFrame(rows, schema=ACTIONS_SCHEMA)


def _history(findings: pl.DataFrame) -> pl.DataFrame:
    """The findings' history: mostly persisting, some new or regressed, first seen up to 90
    days ago."""
    n = findings.height
    statuses = ["persisting"] * 8 + ["new", "regressed"]
    history = pl.DataFrame(
        {
            "finding_key": findings["finding_key"],
            "rule_id": findings["rule_id"],
            "severity": findings["severity"],
            "status": [statuses[i % 10] for i in range(n)],
            "finding_status": findings["status"],
            "first_seen": [NOW - timedelta(days=i % 90) for i in range(n)],
        }
    )
    return _with_schema(history, HISTORY_SCHEMA).select(list(HISTORY_SCHEMA))


def frames(n_findings: int, seed: int = 7) -> dict[str, pl.DataFrame]:
    """The report's input tables, synthetic but shaped like the sample's."""
    accounts, groups = _directory()
    findings, paths = _findings(n_findings, seed)
    return {
        "accounts": accounts,
        "groups": groups,
        "findings": findings,
        "actions": _actions(n_findings // 5),
        "paths": paths,
        "history": _history(findings),
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


#: (table, action, figure) for each interaction timed after a page load, in this order.
INTERACTIONS = [
    ("worklist", "filter", "worklist text filter incl. 150 ms debounce (ms)"),
    ("worklist", "unfilter", "worklist clear filter incl. debounce (ms)"),
    ("findings", "filter", "findings text filter incl. 150 ms debounce (ms)"),
    ("findings", "unfilter", "findings clear filter incl. debounce (ms)"),
    ("findings", "severity", "findings severity select (ms)"),
    ("findings", "severity-all", "findings severity back to all (ms)"),
    ("worklist", "group-system", "worklist group by system of record (ms)"),
    ("findings", "sort", "findings sort by severity (ms)"),
    ("findings", "next", "findings next page (ms)"),
]


def page_load(page: Any, report: Path) -> dict[str, float]:
    """Load ``report`` in ``page``, then every interaction and the view switch; the figures."""
    page.goto(report.as_uri(), wait_until="commit")
    out = {"first render (ms)": page.evaluate(FIRST_RENDER)}
    out["DOMContentLoaded (ms)"] = page.evaluate(
        "() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
    )
    heap = page.evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : 0")
    out["JS heap after load (MB)"] = heap / MB
    out["table rows in the DOM"] = page.evaluate(
        "() => document.querySelectorAll('#worklist-body tr, #findings-body tr').length"
    )
    for prefix, action, label in INTERACTIONS:
        out[label] = page.evaluate(INTERACT, [prefix, action])["ms"]
    out["switch to the evidence view (ms)"] = page.evaluate(VIEW_SWITCH)
    return out


def _block_sizes(html: str) -> dict[str, int]:
    """Characters of each embedded table block."""
    out = {}
    for name in ("objects-data", "worklist-data", "findings-data"):
        start = html.find(f'id="{name}">')
        out[name] = html.find("</script>", start) - start - len(f'id="{name}">')
    return out


def browser_figures(report: Path, repeat: int) -> dict[str, float]:
    """``repeat`` page loads of ``report`` in headless Chromium; the median of each figure."""
    from playwright.sync_api import sync_playwright

    loads = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        for _ in range(repeat):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            loads.append(page_load(page, report))
            page.close()
        browser.close()
    return combine(loads, median=loads[0])


def pseudonymise_figures(accounts: int) -> dict[str, float]:
    from accessaudit.engine.rulefile import load_rules
    from accessaudit.pipeline.analyse import analyse, pseudonymised
    from accessaudit.pipeline.collect import collect_sources, combine
    from accessaudit.pipeline.demo import prepare_demo
    from accessaudit.report.pseudonymise import Pseudonymiser

    with tempfile.TemporaryDirectory() as tmp:
        settings = prepare_demo(Path(tmp), accounts=accounts, seed=7)
        analysis = analyse(
            combine(collect_sources(settings, now=NOW)), settings, load_rules(), as_of=NOW
        )
        with timed() as t:
            pseudonymised(analysis, Pseudonymiser(bytes(32)))
        return {
            "accounts rows": analysis.accounts.height,
            "findings": analysis.findings.height,
            "pseudonymise all output tables (s)": t.seconds,
        }


@click.command()
@click.option("--findings", "n_findings", type=int, default=100_000, show_default=True)
@click.option("--repeat", type=int, default=3, show_default=True)
@click.option("--smoke", is_flag=True, help=f"{SMOKE_FINDINGS:,} findings, one page load (CI).")
@click.option("--pseudonymise-accounts", type=int, default=0, help="Also time the pseudonymiser.")
@click.option(
    "--encoding",
    type=click.Choice(["gzip", "columnar"]),
    default="gzip",
    show_default=True,
    help="The embedded tables: columnar JSON gzip'd (the report's) or uncompressed.",
)
def main(
    n_findings: int, repeat: int, smoke: bool, pseudonymise_accounts: int, encoding: str
) -> None:
    """Render the report at ``--findings`` findings and time it in headless Chromium.

    Example: python benchmarks/report_views.py --findings 10000 --repeat 1
    """
    if smoke:
        n_findings, repeat = SMOKE_FINDINGS, 1
    meter, rows = Meter(), []
    with measured(meter) as m:
        f = frames(n_findings)
    rows.append(("synthetic tables (s)", f"{m.seconds:.2f}", f"+{m.grew / MB:,.0f}"))
    with measured(meter) as m:
        ctx = build_context(
            ReportInput(
                manifest={
                    "run_id": NOW.strftime("%Y%m%dT%H%M%SZ"),
                    "complete": True,
                    "sources": [],
                },
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
        )
    rows.append(("build_context (s)", f"{m.seconds:.2f}", f"+{m.grew / MB:,.0f}"))
    with tempfile.TemporaryDirectory() as tmp:
        with measured(meter) as m:
            report = render_html(ctx, Path(tmp) / "report.html", compress=encoding == "gzip")
        rows.append(("render_html (s)", f"{m.seconds:.2f}", f"+{m.grew / MB:,.0f}"))
        rows.append(("report.html (MB)", f"{report.stat().st_size / MB:.1f}", ""))
        text = report.read_text(encoding="utf-8")
        for name, size in _block_sizes(text).items():
            rows.append((f"{name} block (MB)", f"{size / MB:.2f}", ""))
        figures = browser_figures(report, repeat)
    rows += [(name, f"{value:.1f}", "") for name, value in figures.items()]
    if pseudonymise_accounts:
        pseudo = pseudonymise_figures(pseudonymise_accounts)
        rows += [(name, f"{value:,.2f}", "") for name, value in pseudo.items()]
    print(f"{n_findings:,} findings, {f['actions'].height:,} actions; {machine()}")
    print(f"embedded tables: {encoding}; Chromium figures: median of {repeat} page load(s)\n")
    print(markdown_table(("figure", "value", "+MB (Python)"), rows, right=(1, 2)))


if __name__ == "__main__":
    main()
