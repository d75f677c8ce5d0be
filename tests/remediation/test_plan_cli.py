"""`accessaudit plan` on a demo run: the saved plan's shape, its hash and the what-if."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from accessaudit.cli import main
from accessaudit.remediation.planfile import load_plan, plan_hash


def test_plan_of_demo_run_is_valid(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(main, ["demo", "--out", str(tmp_path / "demo"), "--accounts", "600", "-q"])
    assert r.exit_code == 0, r.output
    [run] = sorted((tmp_path / "demo" / "runs").iterdir())
    out = tmp_path / "plan.json"
    r = runner.invoke(main, ["plan", str(run), "--out", str(out), "-c", str(tmp_path / "none")])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert r.output.strip().endswith(f"VALID  sha256 {doc['sha256']}")
    assert doc["sha256"] == plan_hash(doc) == load_plan(out)["sha256"]
    assert doc["run_id"] == run.name and len(doc["run_manifest_sha256"]) == 64
    w = doc["what_if"]
    assert w["valid"] and w["remaining"] == 0 and w["remaining_keys"] == []
    assert w["planned_findings"] > 0 and w["new_findings"] == 0
    assert w["collateral"] == len(w["collateral_pairs"])
    # the sample plants no access whose removal needs same-force access taken away: a plan that
    # strips dormant accounts of their own force's groups (427 lost at 6k) fails here
    assert w["collateral"] == 0
    actions = doc["actions"]
    # every action credited with a finding has a command line that runs (an application's role
    # or a dynamic group's rule is changed by hand: its line is the instruction)
    for x in actions:
        lines = [ln.strip() for ln in (x["powershell"] or "").splitlines()]
        in_app = [ln for ln in lines if ln] and all(
            ln.startswith("# In application ") for ln in lines if ln
        )  # an inactive account's disabled application logins: removed in the application
        by_hand = x["system"] == "app" or x["target"].get("membership_rule") or in_app
        if x["resolves"] and not by_hand:
            assert any(ln and not ln.startswith("#") for ln in lines), x
    # a split's new group goes to the movers' force, as the demo's matchers attribute groups
    # (the pipeline hands the configured organisations to the planner)
    splits = {x["owning_org"]: x["powershell"] for x in actions if x["kind"] == "split-group"}
    assert set(splits) == {"wmp", "warks"}
    assert "-Name 'WARKS-PRJ-Joint-Firearms-Licensing'" in splits["wmp"]
    assert "-Path 'OU=Groups,OU=Warwickshire,DC=alliance,DC=local'" in splits["wmp"]
    assert "-Name 'WMP-PRJ-Major-Crime-Review'" in splits["warks"]
    assert "-Path 'OU=Groups,OU=West Mercia,DC=alliance,DC=local'" in splits["warks"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert len(actions) == manifest["summary"]["actions"]
    a = actions[0]
    assert {
        "action_id",
        "batch_id",
        "kind",
        "system",
        "finding_keys",
        "collateral",
        "target",
    } <= set(a)
    assert set(a["target"]) == {
        "group_sid", "group_dn", "group_mastered", "group_source",
        "member_sid", "member_dn", "member_source", "via",
    }  # fmt: skip
    # every collateral pair is charged to actions of the plan, and counted on them
    ids = {x["action_id"]: x for x in actions}
    for pair in w["collateral_pairs"]:
        assert pair["action_ids"] and all(i in ids for i in pair["action_ids"])
    assert sum(x["collateral"] for x in actions) >= w["collateral"]
    # batches: one system and one kind each, at most 25 actions
    batches: dict[str, list[dict[str, object]]] = {}
    for x in actions:
        batches.setdefault(x["batch_id"], []).append(x)
    assert all(
        len(b) <= 25 and len({(y["system"], y["kind"]) for y in b}) == 1 for b in batches.values()
    )


def test_a_real_runs_plan_and_report_need_its_config(tmp_path: Path) -> None:
    # with no config file the demo's settings are used for a demo run only: a real estate's
    # run re-read with the demo's rule settings and exceptions would be silently wrong
    runner = CliRunner()
    r = runner.invoke(main, ["demo", "--out", str(tmp_path / "demo"), "--accounts", "300", "-q"])
    assert r.exit_code == 0, r.output
    [run] = sorted((tmp_path / "demo" / "runs").iterdir())
    path = run / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["sources"][0]["kind"] = "ldap"
    path.write_text(json.dumps(manifest))
    missing = tmp_path / "config.toml"
    for command in (["plan", str(run), "--out", str(tmp_path / "p.json")], ["report", str(run)]):
        r = runner.invoke(main, [*command, "-c", str(missing)])
        assert r.exit_code == 2, r.output
        assert r.output == (
            f"accessaudit: error: config file {missing} not found; run {run.name} is not a demo "
            "run (pass -c with the configuration the run was made with)\n"
        )
        assert not (tmp_path / "p.json").exists()


def test_a_sample_entra_demo_run_is_a_demo_run_for_plan_and_report(tmp_path: Path) -> None:
    """`demo --source sample-entra` collects the sample's tenant through the emulator: its run
    is read with the demo's settings like any demo run; a real tenant's run never is."""
    from accessaudit.errors import ConfigError
    from accessaudit.pipeline.rerender import settings_for_run
    from accessaudit.sample.entra import ENTRA_SOURCE
    from accessaudit.store.runs import RunInfo

    def run_of(*sources: dict[str, str]) -> RunInfo:
        path = tmp_path / "data" / "runs" / "20261208T000000Z"
        return RunInfo("20261208T000000Z", path, {"sources": list(sources)})

    sample = {"kind": "sample", "source": "ad:alliance.local"}
    demo = run_of(sample, {"kind": "entra", "source": ENTRA_SOURCE}, {"kind": "csv"})
    settings = settings_for_run(tmp_path / "missing.toml", demo)
    assert [o.id for o in settings.organisations][:2] == ["wmp", "warks"]
    real = run_of(sample, {"kind": "entra", "source": "entra:0f2a56c1-98d4-4b43-9e0e-6c3a1b2f7d10"})
    with pytest.raises(ConfigError, match="is not a demo run"):
        settings_for_run(tmp_path / "missing.toml", real)
