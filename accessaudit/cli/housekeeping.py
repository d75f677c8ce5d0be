"""The stored runs' commands: ``runs``, ``verify`` and ``prune``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from accessaudit.cli.handling import handle_errors
from accessaudit.cli.options import config_option
from accessaudit.cli.output import safe
from accessaudit.errors import ExitCode
from accessaudit.pipeline.admin import list_runs, prune_runs_now, verify_runs


@click.command()
@config_option
@handle_errors
def runs(config_path: Path) -> None:
    """List stored runs with their counts and completeness.

    Example:  accessaudit runs --config config.toml
    """
    for r in list_runs(config_path):
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


@click.command()
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
    found = verify_runs(run_dirs, config_path)
    for p in found.problems:
        click.echo(f"accessaudit: verify: {safe(p)}")
    if found.problems:
        sys.exit(int(ExitCode.ERROR))
    click.echo(f"ok: {found.checked} run(s) intact, chain verified")


@click.command()
@config_option
@click.option("--dry-run", is_flag=True, help="Only list the runs that would be deleted.")
@handle_errors
def prune(config_path: Path, dry_run: bool) -> None:
    """Apply retention (audit.keep_runs / audit.keep_days) now; `run` does it after each run.

    Example:  accessaudit prune --config config.toml --dry-run
    """
    gone = prune_runs_now(config_path, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for run_id in gone:
        click.echo(f"{verb} {run_id}")
    click.echo(f"{len(gone)} run(s) {verb}")
