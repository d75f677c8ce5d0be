"""The whole job behind ``accessaudit run`` and ``demo``: lock, collect, analyse, write, prune.

Only :mod:`~accessaudit.pipeline.collect` talks to directories and only
:mod:`~accessaudit.pipeline.publish` writes files; the analysis in between is a pure function of
the collected tables (:func:`~accessaudit.pipeline.analyse.analyse`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from accessaudit.config.preflight import check_sources
from accessaudit.config.settings import (
    Settings,
)
from accessaudit.engine.exceptions import load_configured
from accessaudit.engine.rulefile import load_rules
from accessaudit.pipeline.analyse import analyse, rule_overrides
from accessaudit.pipeline.collect import collect_sources, combine
from accessaudit.pipeline.hosts import declared_hosts
from accessaudit.pipeline.progress import Counts, Progress, no_counts, noop
from accessaudit.pipeline.publish import write_run
from accessaudit.pipeline.result import RunResult
from accessaudit.pipeline.rulecheck import check_queries
from accessaudit.report import tracking
from accessaudit.store.retention import prune_runs
from accessaudit.store.runs import (
    RunStore,
)


def run_audit(
    settings: Settings,
    *,
    now: datetime | None = None,
    progress: Progress = noop,
    counts: Counts = no_counts,
    config_path: Path | None = None,
) -> RunResult:
    """The whole job: lock, collect, analyse, write. Raises AuditError subclasses.

    ``progress`` and ``counts`` are told the stages and the objects collected so far (the
    command line shows them as progress bars)."""
    started = now or datetime.now(UTC)
    rules = load_rules(settings.audit.rules_dirs)
    check_queries(rules, rule_overrides(settings, rules))  # fail before touching a server
    declared_hosts(settings)  # ... and so do two sources of one directory declaring two hosts
    check_sources(settings, config_path)  # ... a missing export, CA file or password variable
    tracking.load(settings.audit.data_dir)  # ... and a damaged worklist tracking file
    register = load_configured(settings, [r.id for r in rules])  # ... and so does the register
    store = RunStore(settings.audit.data_dir)
    with store.lock():
        store.prepare()
        previous = store.latest()
        collections = collect_sources(
            settings, now=started, previous=previous, progress=progress, counts=counts
        )
        analysis = analyse(
            combine(collections),
            settings,
            rules,
            as_of=started,
            progress=progress,
            exceptions=register,
        )
        result = write_run(
            store, analysis, collections, settings, started=started, progress=progress
        )
        if settings.audit.keep_runs is not None or settings.audit.keep_days is not None:
            progress("applying retention")
            result.pruned = prune_runs(
                store,
                keep_runs=settings.audit.keep_runs,
                keep_days=settings.audit.keep_days,
                now=started,
            )
        return result
