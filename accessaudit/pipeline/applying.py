"""``accessaudit apply``: a saved plan executed (or dry-run, or undone) against the directories,
recorded in the audit log."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accessaudit.config.settings import ApplySettings
from accessaudit.errors import AuditError, ExitCode
from accessaudit.pipeline.auditlog import AuditTrail
from accessaudit.pipeline.hosts import load_config
from accessaudit.remediation.apply.execute import ApplyReport, apply_plan, plan_changes, undo_plan
from accessaudit.remediation.apply.open import open_directories
from accessaudit.remediation.apply.preview import LIVE_CHECKS, Preview, preview_plan
from accessaudit.remediation.planfile import PlanError, load_plan

__all__ = ["LIVE_CHECKS", "ApplyOptions", "ApplyOutcome", "Preview", "apply_saved_plan"]


@dataclass(frozen=True)
class ApplyOptions:
    """The command line's choices for one apply."""

    execute: bool = False
    approved: str | None = None  # the plan hash the approver saw
    only_ids: tuple[str, ...] = ()
    max_changes: int | None = None  # default: apply.max_changes
    allow_protected: tuple[str, ...] = ()
    undo: bool = False
    allow_irreversible: bool = False
    allow_large: bool = False

    @property
    def mode(self) -> str:
        return "undo" if self.undo else "executed" if self.execute else "dry run"


@dataclass(frozen=True)
class ApplyOutcome:
    result: ApplyReport
    mode: str
    exit_code: int  # 0 when nothing was refused, skipped or failed, 1 otherwise


def apply_saved_plan(plan_path: Path, config_path: Path, opts: ApplyOptions) -> ApplyOutcome:
    """Check the plan's hash, open the directories its changes need and apply, dry-run or undo
    it; the audit log records the start, any error and the counts when finished."""
    if (opts.execute or opts.undo) and not opts.approved:
        raise PlanError(
            "--execute and --undo need --sha256", "pass the plan hash the approver signed off"
        )
    doc = load_plan(plan_path, opts.approved)
    settings = load_config(config_path)
    trail = AuditTrail(settings.audit.data_dir, "apply", config=config_path, settings=settings)
    trail.event("start", plan=str(plan_path.resolve()), plan_sha256=doc["sha256"], mode=opts.mode)
    try:
        changes, _ = plan_changes(doc["actions"], opts.only_ids)
        dirs = open_directories(settings, {c.system for c in changes})
        if opts.undo:
            result = undo_plan(doc, plan_path, dirs)
        else:
            result = apply_plan(
                doc,
                plan_path,
                dirs,
                execute=opts.execute,
                only_ids=opts.only_ids,
                max_changes=opts.max_changes or settings.apply.max_changes,
                allow_protected=opts.allow_protected,
                allow_irreversible=opts.allow_irreversible,
                max_group_fraction=settings.apply.max_group_fraction,
                allow_large=opts.allow_large,
                rate=settings.apply.rate_per_second,
                max_failures=settings.apply.max_failures,
            )
    except Exception as exc:
        with contextlib.suppress(AuditError):
            trail.error(exc)
        raise
    code = 0 if result.clean else int(ExitCode.FINDINGS)
    trail.event("finished", **apply_fields(result, doc["sha256"], opts.mode, code))
    return ApplyOutcome(result, opts.mode, code)


def apply_fields(
    result: ApplyReport, plan_sha256: str, mode: str, exit_code: int
) -> dict[str, Any]:
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


def preview_saved_plan(
    plan_path: Path, config_path: Path | None, opts: ApplyOptions
) -> tuple[dict[str, Any], Preview]:
    """What ``apply`` would do with the saved plan, from the plan alone: no credentials, no
    directory. The configuration, when the file exists, only gives the blast-radius cap."""
    if opts.execute or opts.undo:
        raise PlanError(
            "--preview reads the plan only: it cannot be combined with --execute or --undo",
            "drop --preview to apply",
        )
    doc = load_plan(plan_path, opts.approved)
    cap = opts.max_changes
    if cap is None and config_path is not None and config_path.is_file():
        cap = load_config(config_path).apply.max_changes
    preview = preview_plan(
        doc,
        only_ids=opts.only_ids,
        allow_protected=opts.allow_protected,
        max_changes=cap or ApplySettings().max_changes,
    )
    return doc, preview
