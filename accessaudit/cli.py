"""The ``accessaudit`` command line: parse, call the library, print, exit.

Exit codes (stable, documented in the README):

    0  no open findings at or above --fail-on
    1  open findings at or above --fail-on
    2  usage, configuration or runtime error
    3  the run finished, but at least one source was not collected completely
    4  another run holds the lock on the data directory
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from .errors import AuditError, ExitCode

F = TypeVar("F", bound=Callable[..., Any])
SEVERITIES = ["critical", "high", "medium", "low", "info", "none"]
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x1b\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def safe(text: object) -> str:
    """Directory text for the terminal: no ANSI escapes, CR/LF or bidi tricks."""
    return _CONTROL.sub("?", str(text)).replace("\n", " ").replace("\r", " ")


def _console(quiet: bool = False) -> Console:
    return Console(stderr=True, quiet=quiet, highlight=False, markup=False, soft_wrap=True)


def fail(exc: AuditError) -> NoReturn:
    """One line on stderr, no traceback, the error's exit code."""
    click.echo(f"accessaudit: error: {safe(exc)}", err=True)
    sys.exit(int(exc.exit_code))


def handle_errors(fn: F) -> F:
    """Translate every expected failure into one line and an exit code (the only place)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AuditError as exc:
            fail(exc)
        except KeyboardInterrupt:
            click.echo("accessaudit: interrupted; nothing was written", err=True)
            sys.exit(int(ExitCode.ERROR))

    return wrapper  # type: ignore[return-value]


def config_option(fn: F) -> F:
    return click.option(
        "--config",
        "-c",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=Path("config.toml"),
        show_default=True,
        help="Configuration file (see config.example.toml).",
    )(fn)


def fail_on_option(default: str | None) -> Callable[[F], F]:
    return click.option(
        "--fail-on",
        type=click.Choice(SEVERITIES),
        default=default,
        help="Exit 1 when open findings at or above this severity exist "
        "(default: audit.fail_on from the config; 'none' never fails).",
    )


def quiet_option(fn: F) -> F:
    return click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="accessaudit", prog_name="accessaudit")
def main() -> None:
    """Audit the separation of two organisations' access rights.

    Collects accounts, groups and rights from Active Directory / LDAP, Entra ID and application
    exports, attributes every object to an organisation, finds every cross-organisation access
    and writes the remediation plan and an HTML report.

    Start with:  accessaudit demo
    """


class StageProgress:
    """Stages of a run: a live spinner with elapsed time on a terminal, plain lines otherwise.

    Used as ``with StageProgress(console) as progress: run_audit(..., progress=progress)``.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> StageProgress:
        if self.console.is_terminal and not self.console.quiet:
            self.progress = Progress(
                SpinnerColumn(finished_text="done"),
                TextColumn("{task.description}"),
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
        self.task = self.progress.add_task(safe(stage), total=None)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            if self.task is not None:
                self.progress.update(self.task, completed=1, total=1)
            self.progress.stop()


def _finish(result: Any, fail_on: str, console: Console, out: Console) -> NoReturn:
    from .model import Severity

    _print_summary(result, out)
    if not result.complete:
        console.print("accessaudit: WARNING: collection incomplete; see the report's banner")
        sys.exit(int(ExitCode.INCOMPLETE))
    if fail_on != "none" and result.open_at_or_above(Severity(fail_on)):
        sys.exit(int(ExitCode.FINDINGS))
    sys.exit(int(ExitCode.OK))


def _print_summary(result: Any, out: Console) -> None:
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
    table = Table(title=None, show_edge=False, pad_edge=False, box=None)
    table.add_column("severity")
    table.add_column("open findings", justify="right")
    for sev, n in s["by_severity"].items():
        table.add_row(sev, str(n))
    out.print(table)
    out.print(f"  {s['actions']} remediation actions; top by impact:")
    for row in result.analysis.actions.head(5).iter_rows(named=True):
        out.print(f"    [{row['severity']}] {safe(row['summary'])}  (resolves {row['resolves']})")


@main.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("accessaudit-demo"),
    show_default=True,
    help="Folder for the demo's runs and report.",
)
@click.option("--accounts", type=click.IntRange(200, 5_000_000), default=6000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@fail_on_option("none")
@quiet_option
@handle_errors
def demo(out: Path, accounts: int, seed: int, fail_on: str, quiet: bool) -> None:
    """Audit the embedded synthetic two-force directory and write the HTML report.

    Example:  accessaudit demo --out ./demo && xdg-open ./demo/report.html
    """
    from .pipeline import prepare_demo, run_audit

    console = _console(quiet)
    settings = prepare_demo(out, accounts=accounts, seed=seed)
    console.print(f"accessaudit demo: {accounts} synthetic accounts (seed {seed})")
    with StageProgress(console) as progress:
        result = run_audit(settings, progress=progress)
    if result.report:
        # A stable name beside the runs, for people who just want to open the report.
        from .store import atomic_write_bytes

        latest = out / "report.html"
        atomic_write_bytes(latest, result.report.read_bytes())
        result.report = latest.resolve()
    _finish(
        result,
        fail_on,
        console,
        Console(quiet=quiet, highlight=False, markup=False, soft_wrap=True),
    )


@main.command()
@config_option
@fail_on_option(None)
@quiet_option
@handle_errors
def run(config_path: Path, fail_on: str | None, quiet: bool) -> None:
    """Collect every configured source, evaluate the rules, write the run and report.

    Example:  accessaudit run --config /etc/accessaudit/config.toml --fail-on critical
    """
    from .config import load_settings
    from .pipeline import run_audit

    console = _console(quiet)
    settings = load_settings(config_path)
    with StageProgress(console) as progress:
        result = run_audit(settings, progress=progress)
    _finish(
        result,
        fail_on or settings.audit.fail_on.value,
        console,
        Console(quiet=quiet, highlight=False, markup=False, soft_wrap=True),
    )


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@config_option
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None)
@handle_errors
def report(run_dir: Path, config_path: Path, out: Path | None) -> None:
    """Re-render the HTML report of a stored run (nothing is recomputed).

    Example:  accessaudit report accessaudit-data/runs/20261126T020000Z --out report.html
    """
    from .config import load_settings
    from .engine.rulefile import load_rules
    from .pipeline import demo_settings, load_analysis, render_report
    from .store import open_run

    run_info = open_run(run_dir)
    settings = load_settings(config_path) if config_path.exists() else demo_settings(run_dir.parent)
    analysis = load_analysis(run_info, load_rules(settings.audit.rules_dirs))
    path = render_report(run_info.path, run_info.manifest, analysis, settings, out)
    click.echo(str(path))


@main.command()
@config_option
@handle_errors
def runs(config_path: Path) -> None:
    """List stored runs with their counts and completeness.

    Example:  accessaudit runs --config config.toml
    """
    from .config import load_settings
    from .store import RunStore

    settings = load_settings(config_path)
    for r in RunStore(settings.audit.data_dir).runs():
        s = r.manifest.get("summary", {})
        state = "complete" if r.complete else "INCOMPLETE"
        click.echo(f"{r.run_id}  {state:10}  {s.get('open', '?'):>7} open  {r.path}")


@main.group()
def rules() -> None:
    """List, show and test the rule catalogue."""


def _load_rules(config_path: Path | None) -> list[Any]:
    from .config import load_settings
    from .engine.evaluate import check_queries
    from .engine.rulefile import load_rules

    dirs = load_settings(config_path).audit.rules_dirs if config_path else []
    rules = load_rules(dirs)
    check_queries(rules)
    return rules


_rules_config = click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Also load the site rule folders named in this config.",
)


@rules.command("list")
@_rules_config
@handle_errors
def rules_list(config_path: Path | None) -> None:
    """One line per rule: id, severity, action, title.

    Example:  accessaudit rules list
    """
    for r in _load_rules(config_path):
        click.echo(f"{r.id:32} {r.severity.value:9} {r.action.value:20} {r.title}")


@rules.command("show")
@click.argument("rule_id")
@_rules_config
@handle_errors
def rules_show(rule_id: str, config_path: Path | None) -> None:
    """Print one rule with its documentation and query.

    Example:  accessaudit rules show cross-org-nested-access
    """
    found = {r.id: r for r in _load_rules(config_path)}
    if rule_id not in found:
        raise AuditError(f"no rule '{rule_id}'", "see `accessaudit rules list`")
    r = found[rule_id]
    click.echo(f"{r.id}  ({r.severity.value}, action {r.action.value})\n{r.title}\n")
    click.echo(f"Why:\n{r.rationale}\n\nRemediation:\n{r.remediation}\n")
    if r.settings:
        click.echo("Settings: " + ", ".join(f"{k} = {v}" for k, v in r.settings.items()) + "\n")
    click.echo(f"Query:\n{r.query.strip()}\n\nExamples: {len(r.examples)}  File: {r.path}")


@rules.command("test")
@_rules_config
@handle_errors
def rules_test(config_path: Path | None) -> None:
    """Run every rule's embedded examples; exit 1 if any fails.

    Example:  accessaudit rules test --config config.toml
    """
    from .engine.evaluate import run_examples

    results = run_examples(_load_rules(config_path))
    failed = [r for r in results if not r.passed]
    for r in results:
        mark = "ok  " if r.passed else "FAIL"
        click.echo(f"{mark} {r.rule_id}: {r.example}")
        if not r.passed:
            click.echo(f"       expected {sorted(r.expected)}\n       got      {sorted(r.got)}")
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(int(ExitCode.FINDINGS) if failed else 0)
