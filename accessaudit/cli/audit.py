"""The audit commands: ``init``, ``demo``, ``run``, ``report`` and ``survey``."""

from __future__ import annotations

from pathlib import Path

import click

from accessaudit.cli.handling import handle_errors
from accessaudit.cli.options import (
    config_option,
    fail_on_option,
    pseudonymise_option,
    quiet_option,
    run_dir_argument,
)
from accessaudit.cli.output import StageProgress, console, finish, stdout
from accessaudit.cli.survey_output import print_survey
from accessaudit.pipeline.demo import run_demo
from accessaudit.pipeline.init import write_starters
from accessaudit.pipeline.job import run_job
from accessaudit.pipeline.rerender import rerender
from accessaudit.pipeline.survey import run_survey


@click.command()
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
    messages = console(quiet)
    messages.print(f"accessaudit demo: {accounts} synthetic accounts (seed {seed})")
    with StageProgress(messages) as progress:
        result = run_demo(
            out,
            accounts=accounts,
            seed=seed,
            source=source,
            fail_on=fail_on,
            progress=progress,
            counts=progress.count,
            notify=progress.note,
        )
    finish(result, fail_on, messages, stdout(quiet))


@click.command()
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
    messages = console(quiet)
    with StageProgress(messages, live=json_log is None) as stages:
        job = run_job(
            config_path,
            fail_on=fail_on,
            pseudonymise=pseudonymise,
            json_log=json_log,
            progress=stages,
            counts=stages.count,
        )
    finish(job.result, fail_on or job.settings.audit.fail_on.value, messages, stdout(quiet))


@click.command()
@run_dir_argument
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
    click.echo(str(rerender(run_dir, config_path, out, pseudonymise)))


@click.command()
@config_option
@click.option("--force", is_flag=True, help="Replace an existing configuration file.")
@handle_errors
def init(config_path: Path, force: bool) -> None:
    """Write a commented configuration to start from (and an example exceptions register).

    Writes config.toml (or --config PATH) owner-only, with every key, its default and what it
    means; it never asks anything and never replaces an existing file without --force. Edit
    the organisations and sources, then check it without collecting anything:
    accessaudit rules list --config config.toml

    Example:  accessaudit init --config /etc/accessaudit/config.toml
    """
    for path in write_starters(config_path, force=force):
        click.echo(f"wrote {path}")
    click.echo(f"next: edit {config_path}, then: accessaudit rules list --config {config_path}")


_FILE = click.Path(path_type=Path, dir_okay=False)


@click.command()
@config_option
@click.option(
    "--run",
    "run_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="Survey this stored run's tables instead of collecting the sources now.",
)
@click.option("--json", "json_out", type=_FILE, default=None, help="Write the survey as JSON.")
@click.option(
    "--proposals", "proposals_out", type=_FILE, default=None, help="Write the proposals as TOML."
)
@click.option(
    "--write",
    is_flag=True,
    help="Append the proposals to the configuration file as [[matchers]] entries (the rest of "
    "the file is left as it is).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Exit 1 when more unattributed or conflicting objects hold access than [survey] allows.",
)
@quiet_option
@handle_errors
def survey(
    config_path: Path,
    run_dir: Path | None,
    json_out: Path | None,
    proposals_out: Path | None,
    write: bool,
    check: bool,
    quiet: bool,
) -> None:
    """How the directory splits by every attribution signal, and what to match next.

    For accounts and groups: OU subtrees, UPN suffixes, mail domains, company values,
    employee-id shapes, name prefixes and sources, each with how the configuration attributes
    it and the access held in it, largest access at risk first; and matchers proposed from the
    data for what is unattributed, each with the objects it moves and the conflicts it makes.
    Files are written owner-only; the configuration changes only with --write.

    Example:  accessaudit survey -c config.toml --json survey.json --proposals proposals.toml
    """
    messages = console(quiet)
    with StageProgress(messages) as progress:
        outcome = run_survey(
            config_path,
            run_dir=run_dir,
            json_out=json_out,
            proposals_out=proposals_out,
            write=write,
            progress=progress,
            counts=progress.count,
        )
    print_survey(stdout(quiet), outcome.document, outcome.breaches if check else [])
    for path in outcome.written:
        messages.print(f"wrote {path}")
    if check and outcome.breaches:
        raise SystemExit(1)
