"""The report's ``apply`` column says what apply will do: on the demo run, every action's reason
(or none) is exactly ``manual_reason`` of the same action in the saved plan."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from accessaudit.pipeline.demo import prepare_demo
from accessaudit.pipeline.planning import save_run_plan
from accessaudit.pipeline.run import run_audit
from accessaudit.remediation.apply.changes import manual_reason


def test_the_reports_apply_column_is_the_plans_manual_reason(tmp_path: Path) -> None:
    run = run_audit(prepare_demo(tmp_path, accounts=600, seed=2)).run
    _, doc = save_run_plan(run.path, tmp_path / "none.toml", tmp_path / "plan.json")
    stored = pl.read_parquet(run.path / "actions.parquet")
    column = dict(stored.select("action_id", "apply").iter_rows())
    planned = {a["action_id"]: manual_reason(a) for a in doc["actions"]}
    assert planned == column
    # both kinds of rows are there: splits and primary-group edges are executed now
    kinds = {a["kind"] for a in doc["actions"] if planned[a["action_id"]] is None}
    assert {"split-group", "remove-member", "unnest-group"} <= kinds
    assert any(v is not None for v in column.values())
