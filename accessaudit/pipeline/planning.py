"""``accessaudit plan``: a stored run's actions with the what-if of all of them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from accessaudit.analysis.expand import effective_memberships, group_closure
from accessaudit.config.settings import Settings
from accessaudit.engine.evaluate import build_views, evaluate
from accessaudit.engine.rulefile import Rule, load_rules
from accessaudit.model import ActionKind
from accessaudit.pipeline.analyse import rule_overrides
from accessaudit.pipeline.hosts import declared_hosts
from accessaudit.pipeline.rerender import settings_for_run
from accessaudit.remediation import split
from accessaudit.remediation.crossing import split_unnests
from accessaudit.remediation.planfile import build_plan, save_plan
from accessaudit.remediation.whatif import what_if
from accessaudit.store.runs import MANIFEST, RunInfo, open_run, read_table, sha256_file


def plan_run(run: RunInfo, settings: Settings, rules: list[Rule]) -> dict[str, Any]:
    """The saved-plan document of a stored run: its actions with the what-if of all of them
    (the plan applied to the run's snapshot, expanded and evaluated again with the same rules
    and the same attribution)."""
    names = ("accounts", "groups", "memberships", "grants", "group_closure",
             "effective_memberships", "findings", "actions", "finding_paths",
             "resources")  # fmt: skip
    t = {name: read_table(run, name) for name in names}
    as_of = datetime.fromisoformat(str(run.manifest["started"]))
    overrides = rule_overrides(settings, rules)
    hosts = declared_hosts(settings)

    def reevaluate(
        accounts: pl.DataFrame,
        groups: pl.DataFrame,
        memberships: pl.DataFrame,
        grants: pl.DataFrame,
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        closure = group_closure(memberships)
        effective = effective_memberships(memberships, closure)
        views = build_views(
            accounts,
            groups,
            memberships,
            grants,
            closure=closure,
            effective=effective,
            as_of=as_of,
            hosts=hosts,
            resources=t["resources"],
        )
        return evaluate(rules, views, overrides), effective

    result = what_if(t, t["actions"], reevaluate)
    splits = split.describe(
        t["actions"].filter(pl.col("kind") == ActionKind.SPLIT_GROUP.value),
        accounts=t["accounts"],
        groups=t["groups"],
        memberships=t["memberships"],
        unnests=split_unnests(
            t["actions"], t["findings"], t["finding_paths"], t["groups"], t["memberships"]
        ),
        places=split.places(settings.organisations),
    )
    return build_plan(
        run.run_id,
        sha256_file(run.path / MANIFEST),
        t["actions"],
        accounts=t["accounts"],
        groups=t["groups"],
        memberships=t["memberships"],
        whatif=result,
        as_of=as_of,
        findings=t["findings"],
        splits=splits,
    )


def save_run_plan(
    run_dir: Path, config_path: Path, out: Path | None
) -> tuple[Path, dict[str, Any]]:
    """Build the plan of the stored run ``run_dir`` and save it to ``out`` (default
    ``./plan-<run id>.json``); the saved path and the plan document."""
    run_info = open_run(run_dir)
    settings = settings_for_run(config_path, run_info)
    doc = plan_run(run_info, settings, load_rules(settings.audit.rules_dirs))
    return save_plan(doc, out or Path.cwd() / f"plan-{run_info.run_id}.json"), doc
