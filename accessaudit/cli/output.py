"""What the command line shows: terminal-safe text, live stage progress and the run summary."""

from __future__ import annotations

import sys
from typing import NoReturn

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column, Table

from accessaudit.errors import ExitCode
from accessaudit.hidden import HIDDEN_KEEP_LINES
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
            self.progress = Progress(
                SpinnerColumn(finished_text="done"),
                TextColumn("{task.description}"),
                BarColumn(bar_width=20),
                TextColumn(
                    "{task.fields[detail]}",
                    markup=False,
                    table_column=Column(no_wrap=True, overflow="ellipsis", max_width=72),
                ),
                TimeElapsedColumn(),
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
    if code == ExitCode.INCOMPLETE:
        messages.print(
            f"accessaudit: WARNING: collection incomplete: {safe(result.incomplete_units())};"
            " see the report's banner"
        )
    sys.exit(int(code))


def print_summary(result: RunResult, out: Console) -> None:
    m = result.run.manifest
    s = m["summary"]
    out.print(f"Run {m['run_id']}  ({'complete' if m['complete'] else 'INCOMPLETE'})")
    out.print(f"  run folder: {result.run.path.resolve()}")
    if result.report:
        out.print(f"  report:     {result.report}")
    for src in m["sources"]:
        c = src["counts"]
        state = "complete" if src["complete"] else "INCOMPLETE"
        out.print(
            f"  source {safe(src['name'])} ({src['kind']}, {state}): {c['accounts']} accounts, "
            f"{c['groups']} groups, {c['memberships']} memberships"
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
    out.print(f"  {s['actions']} remediation actions; top by impact:")
    for row in result.analysis.actions.head(5).iter_rows(named=True):
        out.print(f"    [{row['severity']}] {safe(row['summary'])}  (resolves {row['resolves']})")
