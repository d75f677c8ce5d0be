"""The remediation commands: ``plan`` (save a run's plan with its what-if) and ``apply``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from accessaudit.cli.handling import handle_errors
from accessaudit.cli.options import config_option, run_dir_argument
from accessaudit.cli.output import safe
from accessaudit.errors import ExitCode
from accessaudit.pipeline.applying import (
    LIVE_CHECKS,
    ApplyOptions,
    Preview,
    apply_saved_plan,
    preview_saved_plan,
)
from accessaudit.pipeline.planning import save_run_plan
from accessaudit.pipeline.worklists import import_tracking


@click.command()
@run_dir_argument
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
    path, doc = save_run_plan(run_dir, config_path, out)
    w = doc["what_if"]
    click.echo(f"plan {path}  ({len(doc['actions'])} actions, run {doc['run_id']})")
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


@click.command("apply")
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
    "--preview",
    is_flag=True,
    help="List every change and its guards from the plan alone: no config, no credentials, "
    "no directory read.",
)
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
    preview: bool,
) -> None:
    """Apply a saved plan's changes (AD, Graph): dry run unless --execute.

    --preview lists, from the plan alone, every change, the write it makes and its guards
    (no configuration, credentials or directory needed): what a change board reviews.

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
    opts = ApplyOptions(
        execute=execute,
        approved=approved,
        only_ids=only_ids,
        max_changes=max_changes,
        allow_protected=allow_protected,
        undo=undo,
        allow_irreversible=allow_irreversible,
        allow_large=allow_large,
    )
    if preview:
        _print_preview(*preview_saved_plan(plan_path, config_path, opts))
    outcome = apply_saved_plan(plan_path, config_path, opts)
    result = outcome.result
    for o in result.outcomes:
        click.echo(f"{o.state:8} {safe(o.action_id)}" + (f": {safe(o.reason)}" if o.reason else ""))
    summary = ", ".join(f"{n} {s}" for s, n in result.counts().items())
    click.echo(f"{outcome.mode}: {result.writes} write(s); {summary}")
    if result.undo:
        click.echo(f"  undo file: {result.undo}  journal: {result.journal}")
    sys.exit(outcome.exit_code)


def _print_preview(doc: dict[str, Any], preview: Preview) -> None:
    """One line per change (guards beyond the live checks after ``|``), then the totals; exit 0
    when apply would write every change, 1 otherwise."""
    click.echo(f"preview of plan {doc['sha256'][:16]}... (run {safe(str(doc.get('run_id')))})")
    click.echo(f"  nothing is read or written; apply will {LIVE_CHECKS}")
    for line in preview.lines:
        extra = [g for g in line.guards if g != LIVE_CHECKS]
        click.echo(
            f"{line.state:8} {safe(line.action_id)}  {line.system or '-':5} {safe(line.write)}"
            + (f"  | {'; '.join(extra)}" if extra else "")
        )
    c = preview.counts()
    cap = (
        f"over the cap of {preview.max_changes}: apply would refuse (--max-changes, or batches "
        "with --only-ids)"
        if preview.over_cap
        else f"within the cap of {preview.max_changes}"
    )
    click.echo(
        f"preview: {preview.writes} write(s), {c.get('refused', 0)} refused, "
        f"{c.get('manual', 0)} left to a person; {cap}"
    )
    clean = not preview.over_cap and not c.get("refused") and not c.get("manual")
    sys.exit(0 if clean else int(ExitCode.FINDINGS))


@click.group()
def worklist() -> None:
    """The identity team's worklist (actions.xlsx) between runs."""


@worklist.command("import")
@click.argument("workbook", type=click.Path(path_type=Path, dir_okay=False))
@config_option
@handle_errors
def import_cmd(workbook: Path, config_path: Path) -> None:
    """Keep the tracking columns of an edited actions.xlsx for every later export.

    Reads status, owner, ticket, done and notes from every sheet with an action_id column and
    stores them in the data directory (tracking.json). Each later run writes them back into
    actions.xlsx, actions.csv and findings.json beside the same action ids. A row whose
    tracking cells are all empty changes nothing, so an older copy never clears newer notes.

    Example:  accessaudit worklist import ~/actions-edited.xlsx --config config.toml
    """
    updated, tracked, path = import_tracking(config_path, workbook)
    click.echo(f"{updated} action(s) updated from {safe(str(workbook))}")
    click.echo(f"{tracked} action(s) tracked in {safe(str(path))}")
