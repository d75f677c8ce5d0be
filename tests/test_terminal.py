"""What an officer reads in the terminal after a run: each source in its own words, open and
accepted apart, why the exit code is what it is, and progress that fits 80 columns."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
from rich.console import Console

from accessaudit.cli.output import StageProgress, _counts_text, exit_reason, print_summary
from accessaudit.errors import ExitCode
from accessaudit.model import Severity
from accessaudit.pipeline.demo import prepare_demo
from accessaudit.pipeline.result import RunResult
from accessaudit.pipeline.run import run_audit


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return run_audit(prepare_demo(tmp_path_factory.mktemp("term"), accounts=600, seed=7))


def _text(result: RunResult) -> str:
    buf = io.StringIO()
    print_summary(result, Console(file=buf, width=120, color_system=None))
    return buf.getvalue()


def test_counts_in_each_source_kinds_own_words() -> None:
    assert _counts_text("ldap", {"accounts": 1200, "groups": 40, "memberships": 9000}) == (
        "1,200 accounts, 40 groups, 9,000 memberships"
    )
    # an application export: its users (two of them matching no directory account), its roles
    assert _counts_text(
        "csv", {"accounts": 2, "groups": 4, "memberships": 26, "principals": 24}
    ) == ("24 users (2 matching no directory account), 4 roles, 26 role assignments")
    assert _counts_text("smb", {"resources": 310, "grants": 55}) == (
        "310 folders and shares, 55 entries"
    )
    assert _counts_text("exchange", {"resources": 3, "grants": 7}) == ("3 mailboxes, 7 permissions")


def test_summary_of_the_demo(demo_run: RunResult) -> None:
    text = _text(demo_run)
    summary = demo_run.run.manifest["summary"]
    niche = next(s for s in demo_run.run.manifest["sources"] if s["name"] == "niche")
    users = niche["counts"]["principals"]
    assert users > niche["counts"]["accounts"]  # most users match a directory account
    assert (
        f"source niche (csv, complete): {users:,} users "
        f"({niche['counts']['accounts']:,} matching no directory account)"
    ) in text
    assert f"{summary['accepted']} accepted under an exception" in text
    assert "the first (worst, then most resolved):" in text
    assert "top by impact" not in text


def test_the_exit_code_is_explained(demo_run: RunResult) -> None:
    high = demo_run.open_at_or_above(Severity.HIGH)
    assert high > 0
    code = demo_run.exit_code("high")
    assert code == ExitCode.FINDINGS
    assert exit_reason(demo_run, "high", code) == (
        f"exit 1: {high:,} open finding(s) at or above high (--fail-on high)"
    )
    assert exit_reason(demo_run, "none", demo_run.exit_code("none")) == "exit 0: --fail-on none"


def test_progress_fits_80_columns_with_its_time(tmp_path: Path) -> None:
    """On an 80-column terminal every stage line keeps its state and elapsed time; the
    count is cut first (rich used to drop the time column and cut the stage's name)."""
    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=True, color_system=None)
    with StageProgress(console) as progress:
        progress("collecting alliance-entra (sample)")
        for unit, n in (("accounts", 588), ("groups", 14), ("memberships", 439)):
            progress.count("entra", unit, n)
        time.sleep(1.1)
        progress("correlating athena on username")
    final = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", buf.getvalue()).split("\r")[-1]
    lines = [ln.rstrip() for ln in final.splitlines() if ln.strip()]
    assert len(lines) == 2
    assert all(len(ln) <= 80 for ln in lines)
    first = r"done 0:00:0[1-9] collecting alliance-entra \(sample\) +1,041 collected"
    assert re.match(first, lines[0])
    assert re.match(r"done 0:00:00 correlating athena on username$", lines[1])
