"""``accessaudit run``: the scheduled audit with its records (audit log, optional JSON job log).

Everything a scheduler's run needs besides the audit itself: the configuration loaded (and the
command line's ``--pseudonymise`` applied), the audit trail's ``start`` / ``finished`` / error
events, the JSON log's stages and outcome, and, when outputs are pseudonymised, the top actions
of the terminal summary pseudonymised too (a cron mail is an output).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path

from accessaudit.config.settings import Settings
from accessaudit.errors import AuditError, ExitCode, error_fields
from accessaudit.pipeline.auditlog import AuditTrail, run_fields
from accessaudit.pipeline.hosts import load_config
from accessaudit.pipeline.joblog import finished_fields, open_log
from accessaudit.pipeline.progress import Counts, Progress, no_counts, noop
from accessaudit.pipeline.result import RunResult
from accessaudit.pipeline.run import run_audit
from accessaudit.report.pseudonymise import from_settings


@dataclass
class JobOutcome:
    """A finished scheduled run: its result, the settings it ran with and its exit code."""

    result: RunResult
    settings: Settings
    exit_code: ExitCode


def with_pseudonymise(settings: Settings, pseudonymise: bool | None) -> Settings:
    """The settings with ``report.pseudonymise`` overridden when the command line says so."""
    if pseudonymise is None:
        return settings
    report = settings.report.model_copy(update={"pseudonymise": pseudonymise})
    return settings.model_copy(update={"report": report})


def run_job(
    config_path: Path,
    *,
    fail_on: str | None = None,
    pseudonymise: bool | None = None,
    json_log: Path | None = None,
    progress: Progress = noop,
    counts: Counts = no_counts,
) -> JobOutcome:
    """Load the configuration, audit, and record the run in the audit log and the JSON log.

    ``fail_on`` defaults to ``audit.fail_on``. A failure is recorded in both logs (an internal
    error too: a scheduler's log must not go silent) and raised again."""
    trail: AuditTrail | None = None
    with open_log(json_log, "run") as log:
        try:
            settings = with_pseudonymise(load_config(config_path), pseudonymise)
            trail = AuditTrail(
                settings.audit.data_dir, "run", config=config_path, settings=settings
            )
            trail.event("start")
            if log:
                log.event("start", config=str(config_path), data_dir=str(settings.audit.data_dir))

            def stage(name: str) -> None:
                progress(name)
                if log:
                    log.stage(name)

            result = run_audit(settings, progress=stage, counts=counts, config_path=config_path)
            code = result.exit_code(fail_on or settings.audit.fail_on.value)
            trail.event("finished", **run_fields(result, int(code)))
            if settings.report.pseudonymise:
                result = _pseudonymised_summary(result, settings)
        except Exception as exc:
            if log:
                log.event("error", **error_fields(exc))
            if trail:
                with contextlib.suppress(AuditError):  # the data directory may be the problem
                    trail.error(exc)
            raise
        if log:
            log.event("finished", **finished_fields(result, int(code)))
    return JobOutcome(result, settings, code)


def _pseudonymised_summary(result: RunResult, settings: Settings) -> RunResult:
    """The result with its top actions pseudonymised for the terminal summary."""
    pseudo = from_settings(settings)
    pseudo.learn_tables(result.analysis.accounts, result.analysis.groups)
    top = pseudo.frame(result.analysis.actions.head(5))
    result.analysis = replace(result.analysis, actions=top)
    return result
