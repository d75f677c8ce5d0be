"""``accessaudit demo``: the embedded synthetic two-force estate as a configured audit."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from accessaudit.config.settings import Settings
from accessaudit.pipeline.auditlog import AuditTrail, run_fields
from accessaudit.pipeline.demo_entra import emulated_sample_tenant, with_entra_source
from accessaudit.pipeline.progress import Counts, Progress, no_counts, noop
from accessaudit.pipeline.publish import render_report
from accessaudit.pipeline.result import RunResult
from accessaudit.pipeline.run import run_audit


def demo_settings(
    out: Path,
    *,
    accounts: int = 6000,
    seed: int = 7,
    apps: dict[str, Path] | None = None,
    entra: bool = False,
) -> Settings:
    """Settings for ``accessaudit demo``: the embedded sample (its Entra tenant, its
    application exports)."""
    from accessaudit.sample.apps import app_sources
    from accessaudit.sample.directory import SAMPLE_HOST, sample_settings_dict

    sample = {"kind": "sample", "seed": seed, "accounts": accounts, "host": SAMPLE_HOST}
    tenant = [{**sample, "name": "alliance-entra", "part": "entra"}] if entra else []
    return Settings.model_validate(
        {
            **sample_settings_dict(),
            "audit": {"data_dir": str(out)},
            "sources": [
                # the shared domain with each force's new domain beside it (plants_foreign)
                {**sample, "name": "alliance", "domains": True},
                *tenant,
                *app_sources(apps or {}),
            ],
            "report": {
                "title": "Access separation audit - West Mercia / Warwickshire (synthetic demo)",
                "formats": ["html", "csv", "json", "xlsx"],
            },
        }
    )


def prepare_demo(out: Path, *, accounts: int = 6000, seed: int = 7) -> Settings:
    """Write the sample's application exports under ``out/exports`` and return the settings
    (the directory, its Entra tenant and the two applications)."""
    from accessaudit.sample.apps import write_app_exports
    from accessaudit.sample.directory import generate

    sample = generate(seed=seed, accounts=accounts, apps=True)
    paths = write_app_exports(sample, out / "exports")
    return demo_settings(out, accounts=accounts, seed=seed, apps=paths, entra=True)


def run_demo(
    out: Path,
    *,
    accounts: int,
    seed: int,
    source: str,
    fail_on: str,
    progress: Progress = noop,
    counts: Counts = no_counts,
    notify: Callable[[str], None] = noop,
) -> RunResult:
    """``accessaudit demo``: prepare the sample's settings and exports under ``out``, audit it
    (with ``source="sample-entra"`` its Entra tenant is served by the local Graph emulator and
    collected by the real connector), record it in the audit log and render ``out/report.html``.

    ``notify`` is told what the user should know besides the stages (the emulator's address and
    its round trips)."""
    settings = prepare_demo(out, accounts=accounts, seed=seed)
    trail = AuditTrail(settings.audit.data_dir, "demo", settings=settings)
    trail.event("start")
    with contextlib.ExitStack() as stack:
        tenant = None
        if source == "sample-entra":
            tenant = stack.enter_context(emulated_sample_tenant(accounts=accounts, seed=seed))
            settings = with_entra_source(settings, tenant.source)
            notify(
                f"Entra ID tenant served by the local Graph emulator at {tenant.base_url}; "
                "collected with msal + Microsoft Graph"
            )
        try:
            result = run_audit(settings, progress=progress, counts=counts)
        except Exception as exc:
            trail.error(exc)
            raise
    if tenant is not None:
        notify(f"Graph emulator: {tenant.round_trips} Graph round trips")
    trail.event("finished", **run_fields(result, int(result.exit_code(fail_on))))
    if result.report:
        # A stable name beside the runs, for people who just want to open the report: rendered
        # for that place (not copied), so its download links reach into the run folder.
        run = result.run
        latest = render_report(
            run.path, run.manifest, result.analysis, settings, out / "report.html"
        )
        result.report = latest.resolve()
    return result
