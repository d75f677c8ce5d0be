"""Real runs (the pipeline without servers, support.history_runs): the rules and the exceptions
register as run are stored in the run folder and hashed in the manifest, the report is rendered
from them (also when re-rendered after the catalogue changed), the summary counts accepted
findings by rule, and every export link of a report resolves to a file on disk."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import polars as pl
import pytest
from support.fixtures import NOW
from support.history_runs import settings_for, split, write
from support.htmltree import parse

from accessaudit.config.settings import Settings
from accessaudit.engine.rulefile import Rule
from accessaudit.engine.snapshot import rules_snapshot
from accessaudit.pipeline.analyse import load_analysis, rule_overrides
from accessaudit.pipeline.publish import render_report
from accessaudit.pipeline.result import RunResult
from accessaudit.report.pseudonymise import Pseudonymiser
from accessaudit.sample.directory import generate
from accessaudit.store.verify import verify

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_REGISTER = ROOT / "exceptions.example.toml"


@pytest.fixture(scope="module")
def made(rules: list[Rule], tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Settings]:
    data = tmp_path_factory.mktemp("evidence") / "data"
    settings = settings_for(data)
    audit = settings.audit.model_copy(update={"exceptions_file": EXAMPLE_REGISTER})
    settings = settings.model_copy(update={"audit": audit})
    return write(data, split(generate(seed=7, accounts=1500, now=NOW)), rules, NOW,
                 settings=settings), settings  # fmt: skip


def hrefs_resolve(report: Path) -> list[str]:
    """The report's download links, each checked to be an existing file."""
    d = parse(report.read_text())
    links = [str(a.attrs["href"]) for a in d.by_id("downloads").find_all("a")]
    assert links
    for href in links:
        assert (report.parent / unquote(href)).is_file(), href
    return links


def test_rules_and_register_stored_hashed_and_verified(
    made: tuple[RunResult, Settings], rules: list[Rule]
) -> None:
    result, settings = made
    run = result.run
    files = run.manifest["files"]
    for name in ("rules.json", "exceptions.json"):
        data = (run.path / name).read_bytes()
        assert files[name]["sha256"] == hashlib.sha256(data).hexdigest()
    stored = json.loads((run.path / "rules.json").read_text())
    assert stored == json.loads(json.dumps(rules_snapshot(rules, rule_overrides(settings, rules))))
    mixed = next(r for r in stored["rules"] if r["id"] == "mixed-group")
    assert mixed["version"] == "1.0" and mixed["origin"] == "built-in"
    assert mixed["settings"]["min_members"] > 0 and "${min_members}" in mixed["query"]
    assert mixed["sha256"] == run.manifest["rules"]["mixed-group"]["sha256"]
    register = json.loads((run.path / "exceptions.json").read_text())
    assert register["sha256"] == hashlib.sha256(EXAMPLE_REGISTER.read_bytes()).hexdigest()
    assert register["sha256"] == run.manifest["exceptions"]["sha256"]
    [entry] = register["entries"]
    assert (entry["id"], entry["state"], entry["expires"]) == ("EX-2026-001", "in-force",
                                                               "2027-03-31")  # fmt: skip
    assert [a["org"] for a in entry["approvers"]] == ["wmp", "warks"]
    accepted = result.analysis.findings.filter(pl.col("status") == "accepted")
    assert entry["accepted"] == accepted.height > 0
    assert verify(run.path.parent.parent) == []


def test_summary_counts_accepted_by_rule(made: tuple[RunResult, Settings]) -> None:
    result, _ = made
    s = result.run.manifest["summary"]
    f = result.analysis.findings
    expected = dict(f.filter(pl.col("status") == "accepted").group_by("rule_id").len().rows())
    assert s["accepted_by_rule"] == expected == {"shared-account-both-forces": s["accepted"]}
    for rule, n in s["by_rule"].items():
        assert s["open_by_rule"].get(rule, 0) + s["accepted_by_rule"].get(rule, 0) == n


def test_in_run_report_shows_register_accepted_findings_and_rules(
    made: tuple[RunResult, Settings],
) -> None:
    result, _ = made
    assert result.report is not None
    d = parse(result.report.read_text())
    [row] = d.by_id("exceptions-register").find_all("tr", "exception-row")
    assert row.attrs["data-state"] == "in-force"
    names = [n.text() for n in row.find_all("span", "approver-name")]
    assert names == [
        "Head of Information Security, West Mercia Police",
        "Head of Information Security, Warwickshire Police",
    ]
    assert "ends 2027-03-31" not in row.text()  # expiry first, the clause ends later
    accepted = d.by_id("exceptions-accepted").find_all("tr", "accepted-row")
    assert len(accepted) == result.run.manifest["summary"]["accepted"]
    for r in accepted:
        assert r.find_all("td", "ends")[0].text() == "2027-03-31"
        assert "West Mercia runs backup and print" in r.text()
    assert d.by_id("rules-source").attrs["data-source"] == "snapshot"
    assert d.by_id("rules-unchanged")
    assert len(d.find_all("pre", "query")) == len(result.run.manifest["rules"])
    assert hrefs_resolve(result.report) == [
        "actions.csv", "actions.xlsx", "findings.csv", "findings.json", "history.csv", "trend.csv",
    ]  # fmt: skip


def test_rerender_after_the_catalogue_changed(
    made: tuple[RunResult, Settings], rules: list[Rule], tmp_path: Path
) -> None:
    """`report` of an old run: the rules as they were, the change named, links from elsewhere."""
    result, settings = made
    changed = [
        dataclasses.replace(r, version="1.1", sha256="0" * 64, title="Changed since")
        if r.id == "mixed-group"
        else r
        for r in rules
    ]
    out = tmp_path / "shared" / "copy.html"
    out.parent.mkdir()
    render_report(result.run.path, result.run.manifest, load_analysis(result.run, changed),
                  settings, out)  # fmt: skip
    d = parse(out.read_text())
    art = d.by_id("appendix-mixed-group")
    assert "Changed since" not in art.text()
    assert art.find_all("dd", "rule-version")[0].text() == "1.0"
    changes = [
        [c.text() for c in r.find_all("td")]
        for r in d.by_id("rules-changed").find_all("tr", "rule-change")
    ]
    assert changes == [["mixed-group", "changed", "1.0", "1.1"]]
    assert d.by_id("exceptions-register").find_all("tr", "exception-row")
    links = hrefs_resolve(out)
    assert all(h.startswith("../") and f"/data/runs/{result.run.run_id}/" in h for h in links)


def _run_dir(out: Path) -> Path:
    [run] = [p for p in (out / "runs").iterdir() if not p.name.startswith(".")]
    return run


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accessaudit", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_copy_and_report_out_links_resolve(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    p = cli("demo", "--accounts", "400", "--out", str(out), "--fail-on", "none", "-q")
    assert p.returncode == 0, p.stderr
    run = _run_dir(out)
    beside = hrefs_resolve(out / "report.html")
    assert beside and all(h.startswith(f"runs/{run.name}/") for h in beside)
    assert not [h for h in hrefs_resolve(run / "report.html") if "/" in h]
    elsewhere = tmp_path / "reports" / "again.html"
    elsewhere.parent.mkdir()
    p = cli("report", str(run), "--out", str(elsewhere))
    assert p.returncode == 0, p.stderr
    hrefs_resolve(elsewhere)
    # a pseudonymised report of a run whose exports are raw names them but never links them
    p = cli("report", str(run), "--pseudonymise", "--out", str(tmp_path / "pseudo.html"))
    assert p.returncode == 0, p.stderr
    downloads = parse((tmp_path / "pseudo.html").read_text()).by_id("downloads")
    assert downloads.find_all("a") == [] and "not pseudonymised" in downloads.text()


def test_pseudonymised_register_shows_no_names() -> None:
    p = Pseudonymiser(bytes(range(32)))
    p.learn_tables(
        pl.DataFrame({"username": ["jsmith"], "display_name": ["Jo Smith"]}),
        pl.DataFrame({"name": ["WMP-Finance"]}),
    )
    entry: dict[str, Any] = {
        "id": "EX-1",
        "objects": ["jsmith*", "WMP-Finance"],
        "justification": "Jo Smith keeps WMP-Finance until the split",
        "agreement": "TSA clause 4",
        "approvers": [{"org": "wmp", "name": "Jo Smith", "date": "2026-10-01"}],
    }
    shown = p.register({"sha256": "d" * 64, "entries": [entry], "text": "jsmith"})
    [e] = shown["entries"]
    assert e["objects"] == [p.token("pattern", "jsmith*"), p.token("group", "WMP-Finance")]
    assert "Jo Smith" not in e["justification"] and "WMP-Finance" not in e["justification"]
    assert e["approvers"] == [{"org": "wmp", "name": p.token("name", "Jo Smith"),
                               "date": "2026-10-01"}]  # fmt: skip
    assert shown["text"] == "" and shown["sha256"] == "d" * 64
