"""What the command line shows: terminal-safe text, live stage progress and the run summary."""

from __future__ import annotations

import sys
from typing import NoReturn

from rich.console import Console
from rich.progress import (
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column, Table

from accessaudit.errors import ExitCode
from accessaudit.hidden import HIDDEN_KEEP_LINES
from accessaudit.model import Severity
from accessaudit.pipeline.result import RunResult

_CONTROL = HIDDEN_KEEP_LINES  # ANSI escapes, CR, backspace, bidi and zero-width characters


def safe(text: object) -> str:
    """Directory text for the terminal: no ANSI escapes, CR/LF or bidi tricks."""
    return _CONTROL.sub("?", str(text)).replace("\n", " ").replace("\r", " ")


def safe_block(text: object) -> str:
    """Multi-line text (a rule's rationale) for the terminal: line breaks kept, every other
    control character (ANSI escapes, CR, backspace, bidi overrides) shown as '?'."""
    return _CONTROL.sub("?", str(text))


def console(quiet: bool = False) -> Console:
    """The console for messages and progress (stderr)."""
    return Console(stderr=True, quiet=quiet, highlight=False, markup=False, soft_wrap=True)


def stdout(quiet: bool = False) -> Console:
    """The console for the run summary (stdout)."""
    return Console(quiet=quiet, highlight=False, markup=False, soft_wrap=True)


class StageProgress:
    """Stages of a run: on a terminal one live line per stage (spinner, bar, elapsed time) with,
    while a source is collected, its objects so far per unit; plain stage lines otherwise.

    Used as ``with StageProgress(console) as p: run_audit(..., progress=p, counts=p.count)``.
    Nothing live off a terminal, with --quiet, or with ``live=False`` (--json-log runs: the log
    is the record, and on stderr it must stay one JSON object per line).
    """

    def __init__(self, console: Console, *, live: bool = True) -> None:
        self.console = console
        self.live = live
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.counts: dict[str, int] = {}  # unit -> objects so far, for the current stage

    def __enter__(self) -> StageProgress:
        if self.live and self.console.is_terminal and not self.console.quiet:
            # fixed widths, so rich never drops the time column on a narrow terminal: "done
            # 0:00:01 " (13), the stage (up to 40), its count (the rest, at least 12)
            stage_width = max(20, min(40, self.console.width - 13 - 12 - 2))
            detail_width = max(12, self.console.width - 13 - stage_width - 2)
            self.progress = Progress(
                # no bar (a stage's total is not known): on an 80-column terminal the stage,
                # its count and its time fit on one line; the count is cut first
                SpinnerColumn(finished_text="done"),
                TimeElapsedColumn(),
                TextColumn(
                    "{task.description}",
                    table_column=Column(no_wrap=True, overflow="ellipsis", width=stage_width),
                ),
                TextColumn(
                    "{task.fields[detail]}",
                    markup=False,
                    table_column=Column(no_wrap=True, overflow="ellipsis", width=detail_width),
                ),
                console=self.console,
            )
            self.progress.start()
        return self

    def __call__(self, stage: str) -> None:
        if self.progress is None:
            self.console.print(f"  - {safe(stage)}")
            return
        if self.task is not None:
            self.progress.update(self.task, completed=1, total=1)
        self.counts = {}
        self.task = self.progress.add_task(safe(stage), total=None, detail="")

    def note(self, text: str) -> None:
        """A message between the stages (the demo's emulator address, its round trips)."""
        self.console.print(text)

    def count(self, source: str, unit: str, objects: int) -> None:
        """``objects`` of ``unit`` collected so far from ``source`` (the stage being shown)."""
        if self.progress is None or self.task is None:
            return
        self.counts[unit] = objects
        shown = [f"{safe(u)} {n:,}" for u, n in self.counts.items()]  # in the order they began
        if len(shown) > 4:  # the first unit (accounts / users) and the latest two
            shown = [shown[0], "...", *shown[-2:]]
        total = sum(self.counts.values())
        self.progress.update(self.task, detail=f"{total:,} collected: {', '.join(shown)}")

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            if self.task is not None:
                self.progress.update(self.task, completed=1, total=1)
            self.progress.stop()


def finish(result: RunResult, fail_on: str, messages: Console, out: Console) -> NoReturn:
    """Print the summary (and the incomplete units' warning) and exit with the run's code."""
    print_summary(result, out)
    code = result.exit_code(fail_on)
    out.print(exit_reason(result, fail_on, code))
    if code == ExitCode.INCOMPLETE:
        messages.print(
            f"accessaudit: WARNING: collection incomplete: {safe(result.incomplete_units())};"
            " see the report's banner"
        )
    sys.exit(int(code))


#: What a source's counts are, in its own words: an application export lists users and roles.
_COUNT_WORDS = {
    "exchange": ("mailboxes", "permissions"),
    "smb": ("folders and shares", "entries"),
    "azure": ("scopes", "role assignments"),
}


def _counts_text(kind: str, counts: dict[str, int]) -> str:
    """``12 accounts, 3 groups, 40 memberships``, or the source kind's own nouns: an
    application export's users (``accounts`` there are only the users matching no directory
    account), roles and role assignments; a data source's objects and entries."""
    n = {k: int(v) for k, v in counts.items()}
    if kind == "csv":
        users = n.get("principals", n.get("accounts", 0))
        return (
            f"{users:,} users ({n.get('accounts', 0):,} matching no directory account), "
            f"{n.get('groups', 0):,} roles, {n.get('memberships', 0):,} role assignments"
        )
    if kind in _COUNT_WORDS:
        objects, entries = _COUNT_WORDS[kind]
        return f"{n.get('resources', 0):,} {objects}, {n.get('grants', 0):,} {entries}"
    return (
        f"{n.get('accounts', 0):,} accounts, {n.get('groups', 0):,} groups, "
        f"{n.get('memberships', 0):,} memberships"
    )


def exit_reason(result: RunResult, fail_on: str, code: int) -> str:
    """One line saying which exit code the run ends with, and why."""
    if code == ExitCode.INCOMPLETE:
        return "exit 3: a source was not collected completely (nothing it lacks is resolved)"
    if fail_on == "none":
        return "exit 0: --fail-on none"
    n = result.open_at_or_above(Severity(fail_on))
    if code == ExitCode.FINDINGS:
        return f"exit 1: {n:,} open finding(s) at or above {fail_on} (--fail-on {fail_on})"
    return f"exit 0: no open finding at or above {fail_on} (--fail-on {fail_on})"


def print_summary(result: RunResult, out: Console) -> None:
    m = result.run.manifest
    s = m["summary"]
    out.print(f"Run {m['run_id']}  ({'complete' if m['complete'] else 'INCOMPLETE'})")
    out.print(f"  run folder: {result.run.path.resolve()}")
    if result.report:
        out.print(f"  report:     {result.report}")
    for src in m["sources"]:
        state = "complete" if src["complete"] else "INCOMPLETE"
        out.print(
            f"  source {safe(src['name'])} ({src['kind']}, {state}): "
            + _counts_text(src["kind"], src["counts"])
        )
        last_logon = (src.get("signals") or {}).get("last_logon") or {}
        if last_logon.get("recorded") is False and src["kind"] != "csv":  # as the report's banner
            out.print(
                f"    last sign-in not recorded ({safe(last_logon.get('detail'))}): "
                "dormancy unknown, no dormancy findings or disable actions"
            )
    unknown = int(s.get("open_unknown", 0))
    out.print(
        f"  {s['open']} open findings ({unknown} of them unknown: absent but not proven gone),"
        f" {s['accepted']} accepted under an exception"
    )
    table = Table(title=None, show_edge=False, pad_edge=False, box=None)
    table.add_column("severity")
    table.add_column("open findings", justify="right")
    for sev, n in s["open_by_severity"].items():
        table.add_row(sev, str(n))
    out.print(table)
    out.print(f"  {s['actions']} remediation actions; the first (worst, then most resolved):")
    for row in result.analysis.actions.head(5).iter_rows(named=True):
        out.print(f"    [{row['severity']}] {safe(row['summary'])}  (resolves {row['resolves']})")
