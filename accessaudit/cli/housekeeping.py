"""The stored runs' commands: ``runs``, ``verify`` and ``prune``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from accessaudit.cli.handling import handle_errors
from accessaudit.cli.options import config_option
from accessaudit.cli.output import safe
from accessaudit.errors import ExitCode
from accessaudit.pipeline.admin import ListedRun, prune_runs_now, run_listing, verify_runs
from accessaudit.store.timeline import Presence


@click.command()
@config_option
@handle_errors
def runs(config_path: Path) -> None:
    """List every run: stored ones with their counts and completeness, the ones retention
    pruned (pruned-runs.jsonl), and gaps: a run deleted without a ledger entry (MISSING) or a
    run folder without a readable manifest (DAMAGED). Open counts include the unknown findings
    (absent but not proven gone). Exit 2 when there is a gap, else 0.

    Example:  accessaudit runs --config config.toml
    """
    listing = run_listing(config_path)
    click.echo(runs_header())
    for r in listing:
        click.echo(safe(_run_line(r)))
    gaps = [r.entry for r in listing if r.gap]
    if gaps:
        named = ", ".join(f"{g.run_id} ({g.state.value})" for g in gaps[:3]) + (
            f" and {len(gaps) - 3} more" if len(gaps) > 3 else ""
        )
        click.echo(
            f"accessaudit: runs: {len(gaps)} gap(s) in the stored record: {safe(named)};"
            " run `accessaudit verify`",
            err=True,
        )
        sys.exit(int(ExitCode.ERROR))


#: The columns of ``runs``: (header, width); the counts right-aligned under their headers.
_COUNTS: tuple[tuple[str, int], ...] = (
    ("open", 7),
    ("unknown", 8),
    ("critical", 9),
    ("high", 6),
    ("new", 6),
    ("resolved", 9),
    ("regressed", 10),
)
_RUN, _STATE = 16, 10


def runs_header() -> str:
    """The header line of ``runs``: the open count includes the unknown findings."""
    counts = "".join(f"{h:>{w}}" for h, w in _COUNTS)
    return f"{'run':{_RUN}}  {'state':{_STATE}}{counts}  folder, or what happened"


def _run_line(r: ListedRun) -> str:
    e = r.entry
    blank = " " * sum(w for _, w in _COUNTS)
    if e.state == Presence.MISSING:
        return (
            f"{e.run_id:{_RUN}}  {'MISSING':{_STATE}}{blank}  deleted without a pruned-runs.jsonl"
            f" entry (run {e.named_by} names it as its previous run)"
        )
    if e.state == Presence.DAMAGED:
        return (
            f"{e.run_id:{_RUN}}  {'DAMAGED':{_STATE}}{blank}  no readable manifest.json: {e.path}"
        )
    values = {
        "open": r.open,
        "unknown": r.open_unknown,
        "critical": r.open_by_severity.get("critical"),
        "high": r.open_by_severity.get("high"),
        **{k: r.changes.get(k) for k in ("new", "resolved", "regressed")},
    }
    counts = "".join(f"{'?' if values[h] is None else values[h]:>{w}}" for h, w in _COUNTS)
    if e.state == Presence.PRUNED:
        when = str(e.record.get("pruned_at") or "?")[:10]
        return f"{e.run_id:{_RUN}}  {'pruned':{_STATE}}{counts}  deleted by retention {when}"
    state = "complete" if e.complete else "INCOMPLETE"
    return f"{e.run_id:{_RUN}}  {state:{_STATE}}{counts}  {e.path}"


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
