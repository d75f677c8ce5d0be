"""The ``accessaudit`` command line: parse, call the library, print, exit.

Exit codes (stable, documented in the README):

    0  no open findings at or above --fail-on
    1  open findings at or above --fail-on
    2  usage, configuration or runtime error; also an internal error (a bug): one line
       "internal error: <type>: <message>", the traceback only with --debug / ACCESSAUDIT_DEBUG=1
    3  the run finished, but at least one source was not collected completely
    4  another run holds the lock on the data directory
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
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

from accessaudit.errors import AuditError, ConfigError, ExitCode, error_fields
from accessaudit.hidden import HIDDEN_KEEP_LINES

if TYPE_CHECKING:
    from accessaudit.config.settings import Settings
    from accessaudit.store.runs import RunInfo

F = TypeVar("F", bound=Callable[..., Any])
SEVERITIES = ["critical", "high", "medium", "low", "info", "none"]
DEBUG_ENV = "ACCESSAUDIT_DEBUG"
_CONTROL = HIDDEN_KEEP_LINES  # ANSI escapes, CR, backspace, bidi and zero-width characters


def safe(text: object) -> str:
    """Directory text for the terminal: no ANSI escapes, CR/LF or bidi tricks."""
    return _CONTROL.sub("?", str(text)).replace("\n", " ").replace("\r", " ")


def safe_block(text: object) -> str:
    """Multi-line text (a rule's rationale) for the terminal: line breaks kept, every other
    control character (ANSI escapes, CR, backspace, bidi overrides) shown as '?'."""
    return _CONTROL.sub("?", str(text))


def _console(quiet: bool = False) -> Console:
    return Console(stderr=True, quiet=quiet, highlight=False, markup=False, soft_wrap=True)


def fail(exc: AuditError) -> NoReturn:
    """One line on stderr, no traceback, the error's exit code."""
    click.echo(f"accessaudit: error: {safe(exc)}", err=True)
    sys.exit(int(exc.exit_code))


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().params.get("debug"):
        return True
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def internal_error(exc: Exception) -> NoReturn:
    """Anything that is not an AuditError is a bug (or MemoryError, or a library failure nobody
    foresaw): one line and exit 2 like every error, never 1 ("findings", which a scheduler
    treats as success). The traceback goes to stderr only with --debug / ACCESSAUDIT_DEBUG=1:
    the exception's text may quote directory data, so it is never written to a log file."""
    what = type(exc).__name__
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    if first:  # polars puts the failing expression and values on the lines after the first
        what += f": {first[:200]}..." if len(first) > 200 else f": {first}"
    if _debug():
        traceback.print_exception(exc, file=sys.stderr)
        where = "the traceback above"
    else:
        where = f"the traceback printed with --debug or {DEBUG_ENV}=1"
    click.echo(
        f"accessaudit: error: internal error: {safe(what)} (please report; details in {where})",
        err=True,
    )
    sys.exit(int(ExitCode.ERROR))


def handle_errors(fn: F) -> F:
    """Translate every failure into one line and an exit code (the only place)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AuditError as exc:
            fail(exc)
        except KeyboardInterrupt:
            click.echo("accessaudit: interrupted; nothing was written", err=True)
            sys.exit(int(ExitCode.ERROR))
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click's own usage errors and exits: click prints them
        except Exception as exc:
            internal_error(exc)

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
@click.option(
    "--debug",
    is_flag=True,
    help=f"On an internal error (a bug), print its traceback ({DEBUG_ENV}=1 does the same).",
)
def main(debug: bool) -> None:
    """Audit the separation of two organisations' access rights.

    Collects accounts, groups and rights from Active Directory / LDAP, Entra ID and application
    exports, attributes every object to an organisation, finds every cross-organisation access
    and writes the remediation plan and an HTML report.

    Start with:  accessaudit demo
    """
    # Library log records (connector retries, incomplete units) must not reach stderr through
    # logging's last-resort handler: unsanitised, several lines each. What matters is in the
    # manifest, the report and the one warning line; --json-log carries the stages.
    logging.getLogger().addHandler(logging.NullHandler())


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


def _outcome(result: Any, fail_on: str) -> ExitCode:
    from accessaudit.model import Severity

    if not result.complete:
        return ExitCode.INCOMPLETE
    if fail_on != "none" and result.open_at_or_above(Severity(fail_on)):
        return ExitCode.FINDINGS
    return ExitCode.OK


def _finish(result: Any, fail_on: str, console: Console, out: Console) -> NoReturn:
    _print_summary(result, out)
    code = _outcome(result, fail_on)
    if code == ExitCode.INCOMPLETE:
        console.print(
            f"accessaudit: WARNING: collection incomplete: {safe(_incomplete_units(result))};"
            " see the report's banner"
        )
    sys.exit(int(code))


def _incomplete_units(result: Any) -> str:
    """'source: unit (why), ...' for the units a run could not prove complete (first three)."""
    parts = []
    for src in result.run.manifest["sources"]:
        bad = [u for u in src["units"] if not u["complete"]]
        if bad:
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            units = ", ".join(f"{u['name']} ({u['detail']})" for u in bad[:3])
            parts.append(f"{src['name']}: {units}{more}")
    return "; ".join(parts) or "see the manifest"


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
@click.option(
    "--source",
    "source",
    type=click.Choice(["sample", "sample-entra"]),
    default="sample",
    show_default=True,
    help="sample: the whole synthetic estate from memory. sample-entra: its Entra ID tenant "
    "served over HTTPS by the local Graph emulator (127.0.0.1, throwaway CA) and collected "
    "by the real Entra connector (msal + Microsoft Graph).",
)
@fail_on_option("none")
@quiet_option
@handle_errors
def demo(out: Path, accounts: int, seed: int, source: str, fail_on: str, quiet: bool) -> None:
    """Audit the embedded synthetic two-force directory and write the HTML report.

    Example:  accessaudit demo --out ./demo && xdg-open ./demo/report.html
    """
    from accessaudit.pipeline.auditlog import AuditTrail, run_fields
    from accessaudit.pipeline.demo_entra import emulated_sample_tenant, with_entra_source
    from accessaudit.pipeline.run import prepare_demo, run_audit

    console = _console(quiet)
    settings = prepare_demo(out, accounts=accounts, seed=seed)
    trail = AuditTrail(settings.audit.data_dir, "demo", settings=settings)
    trail.event("start")
    console.print(f"accessaudit demo: {accounts} synthetic accounts (seed {seed})")
    with contextlib.ExitStack() as stack:
        if source == "sample-entra":
            tenant = stack.enter_context(emulated_sample_tenant(accounts=accounts, seed=seed))
            settings = with_entra_source(settings, tenant.source)
            console.print(
                f"Entra ID tenant served by the local Graph emulator at {tenant.base_url}; "
                "collected with msal + Microsoft Graph"
            )
        with StageProgress(console) as progress:
            try:
                result = run_audit(settings, progress=progress, counts=progress.count)
            except Exception as exc:
                trail.error(exc)
                raise
    if source == "sample-entra":
        console.print(f"Graph emulator: {tenant.round_trips} Graph round trips")
    trail.event("finished", **run_fields(result, int(_outcome(result, fail_on))))
    if result.report:
        # A stable name beside the runs, for people who just want to open the report: rendered
        # for that place (not copied), so its download links reach into the run folder.
        from accessaudit.pipeline.run import render_report

        run = result.run
        latest = render_report(
            run.path, run.manifest, result.analysis, settings, out / "report.html"
        )
        result.report = latest.resolve()
    _finish(
        result,
        fail_on,
        console,
        Console(quiet=quiet, highlight=False, markup=False, soft_wrap=True),
    )


def pseudonymise_option(fn: F) -> F:
    return click.option(
        "--pseudonymise/--no-pseudonymise",
        default=None,
        help="Replace names, usernames, UPNs, mails, SIDs and DNs in the report and exports by "
        "keyed tokens (default: report.pseudonymise from the config).",
    )(fn)


@main.command()
@config_option
@fail_on_option(None)
@quiet_option
@click.option(
    "--json-log",
    "json_log",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    default=None,
    help="Append one JSON line per stage (and the outcome) to this file; '-' for stderr.",
)
@pseudonymise_option
@handle_errors
def run(
    config_path: Path,
    fail_on: str | None,
    quiet: bool,
    json_log: Path | None,
    pseudonymise: bool | None,
) -> None:
    """Collect every configured source, evaluate the rules, write the run and report.

    Safe unattended: never prompts, one run at a time (exit 4 if another holds the lock),
    exit 3 when a source was incomplete, retention applied after the run.

    Example:  accessaudit run --config /etc/accessaudit/config.toml -q --json-log run.jsonl
    """
    from accessaudit.config.settings import load_settings
    from accessaudit.pipeline.auditlog import AuditTrail, run_fields
    from accessaudit.pipeline.joblog import finished_fields, open_log
    from accessaudit.pipeline.run import run_audit

    console = _console(quiet)
    trail: AuditTrail | None = None
    with open_log(json_log, "run") as log:
        try:
            settings = load_settings(config_path)
            if pseudonymise is not None:
                report = settings.report.model_copy(update={"pseudonymise": pseudonymise})
                settings = settings.model_copy(update={"report": report})
            trail = AuditTrail(
                settings.audit.data_dir, "run", config=config_path, settings=settings
            )
            trail.event("start")
            if log:
                log.event("start", config=str(config_path), data_dir=str(settings.audit.data_dir))
            with StageProgress(console, live=json_log is None) as stages:

                def progress(stage: str) -> None:
                    stages(stage)
                    if log:
                        log.stage(stage)

                result = run_audit(settings, progress=progress, counts=stages.count)
            code = _outcome(result, fail_on or settings.audit.fail_on.value)
            trail.event("finished", **run_fields(result, int(code)))
            if settings.report.pseudonymise:  # the summary below is an output too (cron mail)
                from dataclasses import replace

                from accessaudit.report.pseudonymise import from_settings

                pseudo = from_settings(settings)
                pseudo.learn_tables(result.analysis.accounts, result.analysis.groups)
                top = pseudo.frame(result.analysis.actions.head(5))
                result.analysis = replace(result.analysis, actions=top)
        except Exception as exc:  # an internal error too: a scheduler's log must not go silent
            if log:
                log.event("error", **error_fields(exc))
            if trail:
                with contextlib.suppress(AuditError):  # the data directory may be the problem
                    trail.error(exc)
            raise
        if log:
            log.event("finished", **finished_fields(result, int(code)))
    _finish(
        result,
        fail_on or settings.audit.fail_on.value,
        console,
        Console(quiet=quiet, highlight=False, markup=False, soft_wrap=True),
    )


def _settings_for_run(config_path: Path, run_info: RunInfo) -> Settings:
    """The configuration to re-read a stored run with: the config file when it exists; with no
    file, the demo's settings only for a demo run (sample sources), never for a real estate's
    run (its rule settings and exceptions would silently be the demo's)."""
    from accessaudit.config.settings import load_settings
    from accessaudit.pipeline.run import demo_settings

    if config_path.exists():
        return load_settings(config_path)
    kinds = {str(s.get("kind")) for s in run_info.manifest.get("sources", [])}
    if "sample" in kinds and kinds <= {"sample", "csv"}:
        return demo_settings(run_info.path.resolve().parent.parent)
    raise ConfigError(
        f"config file {config_path} not found; run {run_info.run_id} is not a demo run",
        "pass -c with the configuration the run was made with",
    )


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@config_option
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None)
@pseudonymise_option
@handle_errors
def report(run_dir: Path, config_path: Path, out: Path | None, pseudonymise: bool | None) -> None:
    """Re-render the HTML report of a stored run (nothing is recomputed).

    The run folder is never written to (runs are immutable; `verify` checks them): without
    --out the report goes to ./report-<run id>.html.

    Example:  accessaudit report accessaudit-data/runs/20261126T020000Z --out report.html
    """
    from accessaudit.engine.rulefile import load_rules
    from accessaudit.engine.snapshot import load_snapshot
    from accessaudit.pipeline.run import load_analysis, render_report
    from accessaudit.report.history import previous_history
    from accessaudit.store.runs import EXCEPTIONS_FILE, open_run

    run_info = open_run(run_dir)
    settings = _settings_for_run(config_path, run_info)
    analysis = load_analysis(run_info, load_rules(settings.audit.rules_dirs))
    history = previous_history(run_info)  # the run's own stored history
    manifest: dict[str, Any] = dict(run_info.manifest)
    hidden = settings.report.pseudonymise if pseudonymise is None else pseudonymise
    register: dict[str, Any] | None = None  # default: the run's own exceptions.json
    if hidden:
        from accessaudit.report.pseudonymise import KEY_FILE, Pseudonymiser, load_key

        runs_dir = run_info.path.resolve().parent
        key_file = settings.report.pseudonym_key_file or runs_dir.parent / KEY_FILE
        pseudo = Pseudonymiser(load_key(key_file, runs_dir))
        analysis = pseudo.analysis(analysis)
        history = pseudo.frame(history) if history is not None else None
        manifest = pseudo.manifest(manifest)
        stored = load_snapshot(run_info.path, EXCEPTIONS_FILE)
        register = pseudo.register(stored) if stored is not None else None
    out = out or Path.cwd() / f"report-{run_info.run_id}.html"
    # a pseudonymised report never links a raw run's exports
    raw_exports = hidden and "pseudonymised" not in run_info.manifest
    path = render_report(
        run_info.path,
        manifest,
        analysis,
        settings,
        out,
        history=history,
        register=register,
        link_exports=not raw_exports,
    )
    from accessaudit.pipeline.auditlog import AuditTrail
    from accessaudit.store.runs import sha256_file

    data_dir = run_info.path.resolve().parent.parent
    AuditTrail(data_dir, "report", config=config_path, settings=settings).event(
        "exported",
        run_id=run_info.run_id,
        file=str(path.resolve()),
        sha256=sha256_file(path),
        pseudonymised=hidden,
    )
    click.echo(str(path))


@main.command()
@config_option
@handle_errors
def runs(config_path: Path) -> None:
    """List stored runs with their counts and completeness.

    Example:  accessaudit runs --config config.toml
    """
    from accessaudit.config.settings import load_settings
    from accessaudit.store.runs import RunStore

    settings = load_settings(config_path)
    for r in RunStore(settings.audit.data_dir).runs():
        s = r.manifest.get("summary", {})
        state = "complete" if r.complete else "INCOMPLETE"
        sev = s.get("open_by_severity") or {}
        ch = s.get("changes") or {}
        counts = "  ".join(f"{k} {sev.get(k, '?'):>5}" for k in ("critical", "high"))
        changes = "  ".join(
            f"{k} {ch.get(k, '?'):>5}" for k in ("new", "resolved", "regressed", "unknown")
        )
        click.echo(
            f"{r.run_id}  {state:10}  {s.get('open', '?'):>7} open  {counts}  {changes}  {r.path}"
        )


@main.command()
@click.argument(
    "run_dirs",
    nargs=-1,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
)
@config_option
@handle_errors
def verify(run_dirs: tuple[Path, ...], config_path: Path) -> None:
    """Check stored runs: every file's SHA-256 against the manifest, and the chain of manifests.

    One line per problem (a file changed, missing or extra; a replayed manifest; a broken
    chain) and exit 2; "ok" and exit 0 when intact. Without RUN_DIR, every run of the
    configured data directory.

    Example:  accessaudit verify accessaudit-data/runs/20261126T020000Z
    """
    from accessaudit.config.settings import load_settings
    from accessaudit.store.verify import run_folders
    from accessaudit.store.verify import verify as check

    if run_dirs:
        targets: dict[Path, list[str]] = {}
        for d in run_dirs:
            path = d.resolve()
            targets.setdefault(path.parent.parent, []).append(path.name)
    else:
        targets = {load_settings(config_path).audit.data_dir: []}
    problems = []
    checked = 0
    for data_dir, names in targets.items():
        found = check(data_dir, names or None)
        problems.extend(found)
        checked += len(names) if names else len(run_folders(data_dir))
    for p in problems:
        click.echo(f"accessaudit: verify: {safe(p)}")
    if problems:
        sys.exit(int(ExitCode.ERROR))
    click.echo(f"ok: {checked} run(s) intact, chain verified")


@main.command()
@config_option
@click.option("--dry-run", is_flag=True, help="Only list the runs that would be deleted.")
@handle_errors
def prune(config_path: Path, dry_run: bool) -> None:
    """Apply retention (audit.keep_runs / audit.keep_days) now; `run` does it after each run.

    Example:  accessaudit prune --config config.toml --dry-run
    """
    from accessaudit.config.settings import load_settings
    from accessaudit.store.retention import prune_runs
    from accessaudit.store.runs import RunStore

    settings = load_settings(config_path)
    store = RunStore(settings.audit.data_dir)
    with store.lock():
        gone = prune_runs(
            store,
            keep_runs=settings.audit.keep_runs,
            keep_days=settings.audit.keep_days,
            dry_run=dry_run,
        )
    from accessaudit.pipeline.auditlog import AuditTrail

    AuditTrail(settings.audit.data_dir, "prune", config=config_path, settings=settings).event(
        "pruned", runs=gone, dry_run=dry_run
    )
    verb = "would delete" if dry_run else "deleted"
    for run_id in gone:
        click.echo(f"{verb} {run_id}")
    click.echo(f"{len(gone)} run(s) {verb}")


@main.group()
def rules() -> None:
    """List, show and test the rule catalogue."""


def _load_rules(config_path: Path | None) -> list[Any]:
    from accessaudit.config.settings import load_settings
    from accessaudit.engine.rulefile import load_rules
    from accessaudit.pipeline.rulecheck import check_queries

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
        click.echo(f"{r.id:32} {r.severity.value:9} {r.action.value:27} {safe(r.title)}")


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
    click.echo(f"{r.id}  ({r.severity.value}, action {r.action.value})\n{safe(r.title)}\n")
    click.echo(f"Why:\n{safe_block(r.rationale)}\n\nRemediation:\n{safe_block(r.remediation)}\n")
    if r.settings:
        click.echo("Settings: " + ", ".join(f"{k} = {v}" for k, v in r.settings.items()) + "\n")
    query = safe_block(r.query.strip())
    click.echo(f"Query:\n{query}\n\nExamples: {len(r.examples)}  File: {r.path}")


@rules.command("test")
@_rules_config
@handle_errors
def rules_test(config_path: Path | None) -> None:
    """Run every rule's embedded examples; exit 1 if any fails.

    Example:  accessaudit rules test --config config.toml
    """
    from accessaudit.pipeline.rulecheck import run_examples

    results = run_examples(_load_rules(config_path))
    failed = [r for r in results if not r.passed]
    for r in results:
        mark = "ok  " if r.passed else "FAIL"
        click.echo(f"{mark} {r.rule_id}: {r.example}")
        if not r.passed:
            click.echo(f"       expected {sorted(r.expected)}\n       got      {sorted(r.got)}")
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(int(ExitCode.FINDINGS) if failed else 0)


@main.group()
def exceptions() -> None:
    """Check the exceptions register (accepted, dated, dual-approved cross-force access)."""


@exceptions.command("check")
@config_option
@click.option(
    "--on",
    "on_date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Judge expiry on this date (default: today, UTC).",
)
@handle_errors
def exceptions_check(config_path: Path, on_date: datetime | None) -> None:
    """Validate the register named by audit.exceptions_file; one line per exception.

    Example:  accessaudit exceptions check --config config.toml --on 2027-01-31
    """
    from accessaudit.config.settings import load_settings
    from accessaudit.engine.exceptions import load_configured
    from accessaudit.engine.rulefile import load_rules

    settings = load_settings(config_path)
    register = load_configured(settings, [r.id for r in load_rules(settings.audit.rules_dirs)])
    if register is None:
        raise AuditError("no exceptions register configured", "set audit.exceptions_file")
    today = (on_date or datetime.now(UTC)).date()
    for e in register.entries:
        state = (
            f"in force until {e.ends} ({(e.ends - today).days} days)"
            if e.in_force(today)
            else f"EXPIRED on {e.ends}"
        )
        click.echo(f"{safe(e.id):16} {e.rule:32} {state:34} {safe(e.agreement)}")
    click.echo(f"{len(register.entries)} exception(s); register sha256 {register.sha256}")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@config_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to save the plan (default: ./plan-<run id>.json).",
)
@handle_errors
def plan(run_dir: Path, config_path: Path, out: Path | None) -> None:
    """Save the remediation plan of a stored run, with its what-if and SHA-256.

    The what-if applies every action to the run's snapshot in memory and evaluates the rules
    again: planned findings remaining (0 for a valid plan) and same-force accesses lost
    (collateral, listed in the plan). Exit 0 for a valid plan, 1 otherwise.

    Example:  accessaudit plan accessaudit-data/runs/20261126T020000Z --out plan.json
    """
    from accessaudit.engine.rulefile import load_rules
    from accessaudit.pipeline.run import plan_run
    from accessaudit.remediation.planfile import save_plan
    from accessaudit.store.runs import open_run

    run_info = open_run(run_dir)
    settings = _settings_for_run(config_path, run_info)
    doc = plan_run(run_info, settings, load_rules(settings.audit.rules_dirs))
    path = save_plan(doc, out or Path.cwd() / f"plan-{run_info.run_id}.json")
    w = doc["what_if"]
    click.echo(f"plan {path}  ({len(doc['actions'])} actions, run {run_info.run_id})")
    click.echo(
        f"  what-if: {w['planned_findings']} planned findings, {w['remaining']} remaining, "
        f"{w['new_findings']} new, {w['collateral']} same-force access(es) lost, "
        f"{w['decisions']} finding(s) await a decision  ({w['seconds']:.2f} s)"
    )
    for pair in w["collateral_pairs"][:10]:
        click.echo(
            f"  collateral: {safe(pair['account_id'])} loses {safe(pair['group_id'])} "
            f"({safe(pair['org'])}) by {', '.join(safe(a) for a in pair['action_ids'])}"
        )
    click.echo(f"  {'VALID' if w['valid'] else 'INVALID'}  sha256 {doc['sha256']}")
    sys.exit(0 if w["valid"] else int(ExitCode.FINDINGS))


@main.command("apply")
@click.argument("plan_path", type=click.Path(path_type=Path, dir_okay=False))
@config_option
@click.option("--execute", is_flag=True, help="Make the changes (default: a dry run).")
@click.option(
    "--sha256",
    "approved",
    default=None,
    help="The plan hash the approver saw (printed by `plan`); required with --execute.",
)
@click.option(
    "--only-ids",
    "only_ids",
    multiple=True,
    help="Only these action ids, or one edge ACTION_ID#GROUP_ID of a remove-memberships "
    "(repeatable).",
)
@click.option(
    "--max-changes",
    type=click.IntRange(1),
    default=None,
    help="Blast-radius cap (default: apply.max_changes); exceeding it refuses the apply.",
)
@click.option(
    "--allow-protected",
    "allow_protected",
    multiple=True,
    help="A protected group (id or SID) this apply may change (repeatable).",
)
@click.option("--undo", is_flag=True, help="Add back what this plan's journal records as done.")
@click.option(
    "--allow-irreversible",
    is_flag=True,
    help="Also make changes no write can undo (sIDHistory removal: re-adding needs ADMT).",
)
@click.option(
    "--allow-large",
    is_flag=True,
    help="Go ahead although a group loses more than apply.max_group_fraction of its members.",
)
@handle_errors
def apply_cmd(
    plan_path: Path,
    config_path: Path,
    execute: bool,
    approved: str | None,
    only_ids: tuple[str, ...],
    max_changes: int | None,
    allow_protected: tuple[str, ...],
    undo: bool,
    allow_irreversible: bool,
    allow_large: bool,
) -> None:
    """Apply a saved plan's changes (AD, Graph): dry run unless --execute.

    Executed: member removals and un-nestings, an inactive account's cross memberships, group
    owners (managedBy / Entra owners), directory-role and app-role assignments, managers, and,
    with --allow-irreversible, sIDHistory values. Left to a person, each with its reason
    printed: splits (they create groups), guest deletions (apply never deletes people), group
    deletions, PIM eligibilities and every decision.

    Guarded: the plan must match its SHA-256 (and --sha256); each object is read again before
    its change (drift skipped); protected groups (by SID/RID), primary groups, synced and
    dynamic groups through Graph are refused; a group losing more than max_group_fraction of
    its members refuses the apply (--allow-large); an undo file and a journal are written
    before the first write; a second run resumes from the journal. One line per action; exit 0
    when nothing was refused, skipped or failed, 1 otherwise, 2 when the apply was refused.
    Every apply is recorded in the audit log (start, and its counts when finished).

    Example:  accessaudit apply plan.json -c config.toml --execute --sha256 3f5a...
    """
    from accessaudit.config.settings import load_settings
    from accessaudit.pipeline.auditlog import AuditTrail
    from accessaudit.remediation.apply.execute import apply_plan, plan_changes, undo_plan
    from accessaudit.remediation.apply.open import open_directories
    from accessaudit.remediation.planfile import PlanError, load_plan

    if (execute or undo) and not approved:
        raise PlanError(
            "--execute and --undo need --sha256", "pass the plan hash the approver signed off"
        )
    doc = load_plan(plan_path, approved)
    settings = load_settings(config_path)
    mode = "undo" if undo else "executed" if execute else "dry run"
    trail = AuditTrail(settings.audit.data_dir, "apply", config=config_path, settings=settings)
    trail.event("start", plan=str(plan_path.resolve()), plan_sha256=doc["sha256"], mode=mode)
    try:
        changes, _ = plan_changes(doc["actions"], only_ids)
        dirs = open_directories(settings, {c.system for c in changes})
        if undo:
            result = undo_plan(doc, plan_path, dirs)
        else:
            result = apply_plan(
                doc,
                plan_path,
                dirs,
                execute=execute,
                only_ids=only_ids,
                max_changes=max_changes or settings.apply.max_changes,
                allow_protected=allow_protected,
                allow_irreversible=allow_irreversible,
                max_group_fraction=settings.apply.max_group_fraction,
                allow_large=allow_large,
                rate=settings.apply.rate_per_second,
                max_failures=settings.apply.max_failures,
            )
    except Exception as exc:
        with contextlib.suppress(AuditError):
            trail.error(exc)
        raise
    for o in result.outcomes:
        click.echo(f"{o.state:8} {safe(o.action_id)}" + (f": {safe(o.reason)}" if o.reason else ""))
    counts = result.counts()
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    click.echo(f"{mode}: {result.writes} write(s); {summary}")
    if result.undo:
        click.echo(f"  undo file: {result.undo}  journal: {result.journal}")
    code = 0 if result.clean else int(ExitCode.FINDINGS)
    trail.event("finished", **apply_fields(result, doc["sha256"], mode, code))
    sys.exit(code)


def apply_fields(result: Any, plan_sha256: str, mode: str, exit_code: int) -> dict[str, Any]:
    """The audit-log fields of a finished apply: what was altered, and where its undo is."""
    c = result.counts()
    return {
        "exit_code": exit_code,
        "mode": mode,
        "plan_sha256": plan_sha256,
        "writes": result.writes,
        "done": c.get("done", 0) + c.get("undone", 0),
        "noop": c.get("noop", 0) + c.get("already", 0),
        "skipped": sum(c.get(s, 0) for s in ("drift", "refused", "manual", "irreversible")),
        "failed": c.get("failed", 0),
        "journal": str(result.journal.resolve()) if result.journal else None,
        "undo": [str(p.resolve()) for p in (result.undo, result.undo_graph) if p],
    }
