"""Guarded apply against a real Samba AD DC loaded with the sample: plan -> apply -> collect
again -> apply again -> undo; a crash after k of n writes then resume; refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from apply_servers import WRITE_ENV, ApplyDC
from applyflow import edges, make_plan, same_force, snapshot, writer

from accessaudit.remediation.apply import (
    KILL_ENV,
    ApplyError,
    Change,
    apply_plan,
    paths_for,
    undo_plan,
)
from accessaudit.remediation.planfile import PlanError, load_plan

pytestmark = pytest.mark.servers

HERE = Path(__file__).resolve().parent


def _membership_actions(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in doc["actions"] if a["kind"] in ("remove-member", "unnest-group")]


def _journal(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in paths_for(path)[0].read_text().splitlines()]


def test_apply_resolves_is_idempotent_and_undoes(
    apply_dc: ApplyDC, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    doc, path = make_plan(apply_dc, monkeypatch, tmp_path)
    assert doc["what_if"]["valid"] and doc["what_if"]["remaining"] == 0
    before = snapshot(apply_dc, monkeypatch)
    d = writer(apply_dc, monkeypatch)

    dry = apply_plan(doc, path, {"ad": d}, max_changes=100, rate=0)
    assert d.writes == 0 and dry.writes == 0 and not paths_for(path)[0].exists()
    states = Counter(o.state for o in dry.outcomes)
    refused = {o.action_id: o.reason for o in dry.outcomes if o.state == "refused"}
    # Domain Admins (RID 512) twice, Server Operators (S-1-5-32-549), two primary groups
    assert len(refused) == 5, refused
    assert sum("protected group" in r for r in refused.values()) == 3
    assert sum("primary group" in r for r in refused.values()) == 2
    todo = [a for a in _membership_actions(doc) if a["action_id"] not in refused]
    assert states["dry-run"] == len(todo) > 10

    done = apply_plan(doc, path, {"ad": d}, execute=True, max_changes=100, rate=0)
    assert done.writes == len(todo) == d.writes
    assert done.undo is not None and done.undo.read_text().count("add: member") == len(todo)
    after = snapshot(apply_dc, monkeypatch)
    removed = {(a["group_id"], a["member_id"]) for a in todo}
    assert edges(before) - edges(after) == removed  # exactly the planned edges, by GUID
    assert edges(after) - edges(before) == set()
    resolved = {k for a in todo for k in a["finding_keys"]}
    assert resolved and resolved.isdisjoint(set(after["findings"]["finding_key"]))
    # ... and every finding resolved is one the sample planted (its ids mapped to the server's)
    keys = ["rule_id", "account_id", "group_id", "member_group_id"]
    truth = apply_dc.sample.truth.with_columns(
        [pl.col(c).replace(apply_dc.idmap.ids) for c in keys[1:]]
    )
    planted = set(truth.select(keys).iter_rows())
    fixed = before["findings"].filter(pl.col("finding_key").is_in(list(resolved)))
    assert fixed.height == len(resolved) and set(fixed.select(keys).iter_rows()) <= planted
    # no same-force access lost (the what-if charged none to these actions)
    assert all(a["collateral"] == 0 for a in todo)
    assert same_force(before) - same_force(after) == set()

    again = apply_plan(doc, path, {"ad": d}, execute=True, max_changes=100, rate=0)
    assert again.writes == 0 and d.writes == len(todo)
    assert Counter(o.state for o in again.outcomes)["already"] == len(todo)

    undone = undo_plan(doc, path, {"ad": d})
    assert undone.writes == len(todo)
    restored = snapshot(apply_dc, monkeypatch)
    assert edges(restored) == edges(before)  # set equality by objectGUID


def test_crash_after_k_then_resume_exactly_once(
    apply_dc: ApplyDC, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    doc, path = make_plan(apply_dc, monkeypatch, tmp_path)
    before = snapshot(apply_dc, monkeypatch)
    cfg = apply_dc.source(monkeypatch, write=True)
    k = 4
    child = subprocess.run(
        [sys.executable, str(HERE / "apply_child.py"), str(path), cfg.model_dump_json(), WRITE_ENV],
        env={**os.environ, KILL_ENV: str(k)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == -9, child.stderr
    lines = _journal(path)
    assert Counter(r["state"] for r in lines) == {"intent": k, "done": k - 1}

    d = writer(apply_dc, monkeypatch)
    resumed = apply_plan(doc, path, {"ad": d}, execute=True, max_changes=100, rate=0)
    todo = [o.action_id for o in resumed.outcomes if o.state in ("done", "already")]
    n = len(todo)
    assert resumed.writes == n - k  # the k-th landed before the crash: re-read, not re-written
    done = Counter(r["action_id"] for r in _journal(path) if r["state"] == "done")
    assert set(done) == set(todo) and set(done.values()) == {1}  # every change exactly once
    removed = {(a["group_id"], a["member_id"]) for a in doc["actions"] if a["action_id"] in done}
    assert edges(before) - edges(snapshot(apply_dc, monkeypatch)) == removed


def test_refusals(apply_dc: ApplyDC, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    doc, path = make_plan(apply_dc, monkeypatch, tmp_path)
    d = writer(apply_dc, monkeypatch)
    n = len(_membership_actions(doc))
    with pytest.raises(ApplyError, match=f"makes {n} changes, above the blast-radius cap of 5"):
        apply_plan(doc, path, {"ad": d}, execute=True, max_changes=5)
    assert d.writes == 0
    # named protected groups are allowed; primary groups never are
    da = {
        a["group_id"]
        for a in _membership_actions(doc)
        if (a["target"]["group_sid"] or "").endswith("-512")
    }
    dry = apply_plan(doc, path, {"ad": d}, max_changes=100, allow_protected=da)
    refused = [o.reason for o in dry.outcomes if o.state == "refused"]
    assert len(refused) == 3 and sum("primary group" in r for r in refused) == 2
    # a tampered plan, or one not the approved hash, is refused before anything is read
    tampered = json.loads(path.read_text())
    tampered["actions"][0]["member_id"] = tampered["actions"][1]["member_id"]
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(tampered))
    with pytest.raises(PlanError, match="does not match its hash"):
        load_plan(bad)
    with pytest.raises(PlanError, match="not the approved"):
        load_plan(path, "0" * 64)
    assert load_plan(path, doc["sha256"])["sha256"] == doc["sha256"]
    # drift: the member was removed by someone else since the snapshot -> no-op, no write
    plain = apply_plan(doc, path, {"ad": d}, max_changes=100)
    first_id = next(o.action_id for o in plain.outcomes if o.state == "dry-run")
    first = next(a for a in doc["actions"] if a["action_id"] == first_id)
    d.remove(Change.of(first))
    writes = d.writes
    r = apply_plan(doc, path, {"ad": d}, only_ids=[first["action_id"]], execute=True)
    assert [(o.state, o.reason) for o in r.outcomes] == [("noop", "already absent")]
    assert d.writes == writes
