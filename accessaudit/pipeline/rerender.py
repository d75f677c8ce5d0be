"""``accessaudit report``: re-render the HTML report of a stored run (nothing is recomputed).

The run folder is never written to (runs are immutable). The report is rendered from the run's
own tables, history, rule and register snapshots, pseudonymised when asked with the data
directory's key, and recorded in the audit log as an export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accessaudit.config.settings import Settings
from accessaudit.engine.rulefile import load_rules
from accessaudit.engine.snapshot import load_snapshot
from accessaudit.errors import ConfigError
from accessaudit.pipeline.analyse import load_analysis, pseudonymised
from accessaudit.pipeline.auditlog import AuditTrail
from accessaudit.pipeline.demo import demo_settings
from accessaudit.pipeline.hosts import load_config
from accessaudit.pipeline.publish import render_report
from accessaudit.report.history import previous_history
from accessaudit.report.pack import pack_path
from accessaudit.report.pseudonymise import KEY_FILE, Pseudonymiser, load_key
from accessaudit.store.runs import EXCEPTIONS_FILE, RunInfo, open_run, sha256_file


def settings_for_run(config_path: Path, run_info: RunInfo) -> Settings:
    """The configuration to re-read a stored run with: the config file when it exists; with no
    file, the demo's settings only for a demo run (sample sources), never for a real estate's
    run (its rule settings and exceptions would silently be the demo's)."""
    if config_path.exists():
        return load_config(config_path)
    from accessaudit.sample.entra import ENTRA_SOURCE

    sources = [s for s in run_info.manifest.get("sources", []) if isinstance(s, dict)]
    # `demo --source sample-entra` collects the sample's own tenant through the emulator
    kinds = {
        "sample"
        if s.get("kind") == "entra" and s.get("source") == ENTRA_SOURCE
        else str(s.get("kind"))
        for s in sources
    }
    if "sample" in kinds and kinds <= {"sample", "csv"}:
        # with its tenant's source: the demo's tenant-wide roles are judged by its declared host
        return demo_settings(run_info.path.resolve().parent.parent, entra=True)
    raise ConfigError(
        f"config file {config_path} not found; run {run_info.run_id} is not a demo run",
        "pass -c with the configuration the run was made with",
    )


def rerender(run_dir: Path, config_path: Path, out: Path | None, pseudonymise: bool | None) -> Path:
    """Render ``run_dir``'s report to ``out`` (default ``./report-<run id>.html``); returns it.

    ``pseudonymise`` defaults to ``report.pseudonymise``. A pseudonymised report of a run whose
    exports are raw names them without linking them."""
    run_info = open_run(run_dir)
    settings = settings_for_run(config_path, run_info)
    analysis = load_analysis(run_info, load_rules(settings.audit.rules_dirs))
    history = previous_history(run_info)  # the run's own stored history
    manifest: dict[str, Any] = dict(run_info.manifest)
    hidden = settings.report.pseudonymise if pseudonymise is None else pseudonymise
    register: dict[str, Any] | None = None  # default: the run's own exceptions.json
    if hidden:
        runs_dir = run_info.path.resolve().parent
        key_file = settings.report.pseudonym_key_file or runs_dir.parent / KEY_FILE
        pseudo = Pseudonymiser(load_key(key_file, runs_dir))
        analysis = pseudonymised(analysis, pseudo)
        history = pseudo.frame(history) if history is not None else None
        manifest = pseudo.manifest(manifest)
        stored = load_snapshot(run_info.path, EXCEPTIONS_FILE)
        register = pseudo.register(stored) if stored is not None else None
    out = out or Path.cwd() / f"report-{run_info.run_id}.html"
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
    data_dir = run_info.path.resolve().parent.parent
    AuditTrail(data_dir, "report", config=config_path, settings=settings).event(
        "exported",
        run_id=run_info.run_id,
        file=str(path.resolve()),
        sha256=sha256_file(path),
        # the evidence pack written beside it discloses the same run
        pack_file=str(pack_path(path).resolve()),
        pack_sha256=sha256_file(pack_path(path)),
        pseudonymised=hidden,
    )
    return path
