"""The housekeeping commands' library side: stored runs, verification, retention, the rule
catalogue and the exceptions register (``runs``, ``verify``, ``prune``, ``rules``,
``exceptions check``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from accessaudit.config.preflight import check_sources
from accessaudit.engine.exceptions import Register, load_configured
from accessaudit.engine.rulefile import Rule, load_rules
from accessaudit.errors import AuditError
from accessaudit.pipeline.auditlog import AuditTrail
from accessaudit.pipeline.hosts import load_config
from accessaudit.pipeline.rulecheck import check_queries
from accessaudit.report.trend import open_count
from accessaudit.store.retention import prune_runs
from accessaudit.store.runs import RunInfo, RunStore
from accessaudit.store.timeline import Presence, TimelineEntry, timeline
from accessaudit.store.verify import Problem, run_folders, verify


def list_runs(config_path: Path) -> list[RunInfo]:
    """The configured data directory's stored runs, oldest first."""
    return RunStore(load_config(config_path).audit.data_dir).runs()


@dataclass(frozen=True)
class ListedRun:
    """One line of ``accessaudit runs``: a stored, pruned, missing or damaged run."""

    entry: TimelineEntry
    open: int | None  # by the one definition (unknown findings included); None: no summary
    open_unknown: int | None
    open_by_severity: dict[str, int]
    changes: dict[str, int]

    @property
    def gap(self) -> bool:
        return self.entry.gap


def run_listing(config_path: Path) -> list[ListedRun]:
    """Every run of the configured data directory, oldest first: the stored ones, the ones
    retention deleted (from pruned-runs.jsonl) and the gaps (a run deleted without a ledger
    entry, a run folder without a readable manifest)."""
    out = []
    for e in timeline(load_config(config_path).audit.data_dir):
        s = e.record.get("summary") if e.state in (Presence.STORED, Presence.PRUNED) else None
        summary = s if isinstance(s, dict) else {}
        has = "open" in summary
        out.append(
            ListedRun(
                entry=e,
                open=open_count(summary) if has else None,
                open_unknown=(
                    int(
                        summary.get(
                            "open_unknown", (summary.get("changes") or {}).get("unknown", 0)
                        )
                    )
                    if has
                    else None
                ),
                open_by_severity={
                    k: int(v) for k, v in (summary.get("open_by_severity") or {}).items()
                },
                changes={k: int(v) for k, v in (summary.get("changes") or {}).items()},
            )
        )
    return out


@dataclass(frozen=True)
class Verification:
    """What ``verify`` found: one line per problem, and how many runs were checked."""

    problems: list[Problem]
    checked: int


def verify_runs(run_dirs: tuple[Path, ...], config_path: Path) -> Verification:
    """Check the named run folders (grouped by data directory), or with none every run of the
    configured data directory: files against the manifest, and the chain of manifests."""
    if run_dirs:
        targets: dict[Path, list[str]] = {}
        for d in run_dirs:
            path = d.resolve()
            targets.setdefault(path.parent.parent, []).append(path.name)
    else:
        targets = {load_config(config_path).audit.data_dir: []}
    problems: list[Problem] = []
    checked = 0
    for data_dir, names in targets.items():
        problems.extend(verify(data_dir, names or None))
        checked += len(names) if names else len(run_folders(data_dir))
    return Verification(problems, checked)


def prune_runs_now(config_path: Path, *, dry_run: bool) -> list[str]:
    """Apply retention now, under the run lock; the run ids deleted (or that would be)."""
    settings = load_config(config_path)
    store = RunStore(settings.audit.data_dir)
    with store.lock():
        gone = prune_runs(
            store,
            keep_runs=settings.audit.keep_runs,
            keep_days=settings.audit.keep_days,
            dry_run=dry_run,
        )
    AuditTrail(settings.audit.data_dir, "prune", config=config_path, settings=settings).event(
        "pruned", runs=gone, dry_run=dry_run
    )
    return gone


def rule_catalogue(config_path: Path | None) -> list[Rule]:
    """The built-in rules and, with a config, its site rule folders; every query checked."""
    settings = load_config(config_path) if config_path else None
    if settings is not None:  # every file the sources name is there (secrets: at run time)
        check_sources(settings, config_path, secrets=False)
    rules = load_rules(settings.audit.rules_dirs if settings else [])
    check_queries(rules)
    return rules


def exceptions_register(config_path: Path) -> Register:
    """The exceptions register the configuration names, validated against the rule catalogue."""
    settings = load_config(config_path)
    register = load_configured(settings, [r.id for r in load_rules(settings.audit.rules_dirs)])
    if register is None:
        raise AuditError("no exceptions register configured", "set audit.exceptions_file")
    return register
