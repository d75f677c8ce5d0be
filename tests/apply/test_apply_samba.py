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
from ldap3 import MODIFY_REPLACE
from support.apply_servers import WRITE_ENV, ApplyDC
from support.applyflow import (
    edges,
    make_plan,
    managers,
    owners,
    same_force,
    sid_history,
    snapshot,
    writer,
)

from accessaudit.remediation.apply.changes import expand
from accessaudit.remediation.apply.execute import (
    KILL_ENV,
    ApplyError,
    Change,
    apply_plan,
    paths_for,
    plan_changes,
    undo_plan,
)
from accessaudit.remediation.planfile import PlanError, load_plan

pytestmark = pytest.mark.servers

HERE = Path(__file__).resolve().parent
EXPECTED_KINDS = {"remove-member": 18, "unnest-group": 3, "remove-memberships": 2,
                  "remove-owner": 2, "clear-manager": 4, "remove-sid-history": 3}  # fmt: skip
EXPECTED_TODO = 23
EXPECTED_TODO_ACTIONS = 23


EDGE_KINDS = ("remove-member", "unnest-group")


def _membership_actions(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in doc["actions"] if a["kind"] in EDGE_KINDS]


def _simple(doc: dict[str, Any]) -> list[str]:
    """Every change but the splits and primary-group moves (their own test file)."""
    return [c.action_id for c in plan_changes(doc["actions"])[0]
            if c.split is None and c.via != "primaryGroupID"]  # fmt: skip


def _journal(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in paths_for(path)[0].read_text().splitlines()]


def _apply(doc: dict[str, Any], path: Path, d: Any, **kw: Any) -> Any:
    return apply_plan(doc, path, {"ad": d}, max_changes=100, rate=0, allow_large=True, **kw)


def test_apply_resolves_is_idempotent_and_undoes(
    apply_dc: ApplyDC, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The issue's loop on the real DC: plan -> apply every executable kind -> collect again ->
    every planned finding of a change made is gone, no same-force access lost -> apply again:
    zero writes -> undo: memberships, owners and managers exactly as before (by objectGUID).
    sIDHistory: refused without --allow-irreversible; with it, Samba refuses the write (it
    allows no sIDHistory change over LDAP), reported as failed, nothing else touched."""
    doc, path = make_plan(apply_dc, monkeypatch, tmp_path)
    assert doc["what_if"]["valid"] and doc["what_if"]["remaining"] == 0
    before = snapshot(apply_dc, monkeypatch)
    d = writer(apply_dc, monkeypatch)
    kinds = Counter(a["kind"] for a in doc["actions"])
    assert {k: kinds[k] for k in (*EDGE_KINDS, "remove-memberships", "remove-owner",
            "clear-manager", "remove-sid-history")} == EXPECTED_KINDS  # fmt: skip

    dry = _apply(doc, path, d)
    assert d.writes == 0 and dry.writes == 0 and not paths_for(path)[0].exists()
    refused = {o.action_id: o.reason for o in dry.outcomes if o.state == "refused"}
    # Domain Admins (RID 512) twice, Server Operators (S-1-5-32-549), three sIDHistory values
    # (irreversible: not without the flag); primary groups are moved (test_apply_split_samba)
    assert Counter(r.split(" ")[0] for r in refused.values()) == {
        "protected": 3, "irreversible": 3}  # fmt: skip
    manual = Counter(o.action_id.split("|")[0] for o in dry.outcomes if o.state == "manual")
    # (no remove-memberships without a membership to strip: such an inactive account's finding
    # goes with the un-nest or role action that removes its access)
    assert manual == {"delete-group": 1, "review-attribution": 36,
                      "decide-shared-account": 8, "resolve-dual-identity": 2}  # fmt: skip
    todo = [o.action_id for o in dry.outcomes if o.state == "dry-run"]
    assert len(todo) == EXPECTED_TODO + 5  # + 2 splits and 3 primary-group changes
    # splits and primary-group moves: test_apply_split_samba; here every other change
    simple = _simple(doc)

    # a group's size for the per-group cap: its direct member values, read range by range
    direct = before["memberships"].filter(pl.col("via") != "primaryGroupID")
    group, n = direct.group_by("group_id").len().sort("len", "group_id", descending=True).row(0)
    member = direct.filter(pl.col("group_id") == group)["member_id"][0]
    probe = Change("size", "remove-member", "ad", group, member, None, None, None, None)
    d.range_step = 7
    assert n > 2 * 7 and d.read(probe).size == n
    d.range_step = 1500
    assert d.read(probe).size == n and d.writes == 0

    done = _apply(doc, path, d, execute=True, only_ids=simple)
    assert done.counts()["done"] == done.writes == d.writes == EXPECTED_TODO
    written = {o.action_id for o in done.outcomes if o.state == "done"}
    after = snapshot(apply_dc, monkeypatch)
    changes, _ = plan_changes(doc["actions"])
    by_id = {c.action_id: c for c in changes}
    of = lambda *k: {(by_id[i].group_id, by_id[i].member_id) for i in written  # noqa: E731
                     if by_id[i].kind in k}  # fmt: skip
    assert edges(before) - edges(after) == of(*EDGE_KINDS)  # exactly these, by objectGUID
    assert edges(after) - edges(before) == set()
    assert owners(before) - owners(after) == of("remove-owner") and owners(after) <= owners(before)
    mgr = {(by_id[i].member_id, by_id[i].manager_id) for i in written if "clear-manager" in i}
    assert managers(before) - managers(after) == mgr and len(mgr) == 4
    assert sid_history(after) == sid_history(before)
    # every finding of an action whose changes were all made is resolved ...
    fully = [a for a in doc["actions"]
             if (ids := [c.action_id for c in expand(a)] if a["action_id"] in
                 {c.action_id.split("#")[0] for c in changes} else [])
             and set(ids) <= written]  # fmt: skip
    resolved = {k for a in fully for k in a["finding_keys"]}
    assert len(fully) == EXPECTED_TODO_ACTIONS and resolved
    assert resolved.isdisjoint(set(after["findings"]["finding_key"]))
    # ... and every one the sample planted (its ids mapped to the server's)
    keys = ["rule_id", "account_id", "group_id", "member_group_id"]
    truth = apply_dc.sample.truth.with_columns(
        [pl.col(c).replace(apply_dc.idmap.ids) for c in keys[1:]]
    )
    planted = set(truth.select(keys).iter_rows())
    fixed = before["findings"].filter(pl.col("finding_key").is_in(list(resolved)))
    assert fixed.height == len(resolved) and set(fixed.select(keys).iter_rows()) <= planted
    # no same-force access lost (set equality of same-force pairs)
    assert same_force(before) == same_force(after)

    again = _apply(doc, path, d, execute=True, only_ids=simple)
    assert again.writes == 0 and d.writes == done.writes
    assert again.count("already") == len(written)

    sid_ids = [a["action_id"] for a in doc["actions"] if a["kind"] == "remove-sid-history"]
    irr = _apply(doc, path, d, execute=True, allow_irreversible=True, only_ids=sid_ids)
    assert irr.writes == 0 and [o.state for o in irr.outcomes] == ["failed"] * 3
    assert all("cannot be created or changed over LDAP" in o.reason for o in irr.outcomes)
    ldif = paths_for(path)[1].read_text()  # written before those writes, covering all
    assert ldif.count("NOT reversible by LDAP") == 3
    assert ldif.count("add: member") == len(of(*EDGE_KINDS))
    assert ldif.count("replace: managedBy") == 2 and ldif.count("replace: manager") == 4

    undone = undo_plan(doc, path, {"ad": d})
    assert undone.writes == len(written) and undone.count("undone") == len(written)
    restored = snapshot(apply_dc, monkeypatch)
    assert edges(restored) == edges(before)  # set equality by objectGUID
    assert owners(restored) == owners(before) and managers(restored) == managers(before)
    assert sid_history(restored) == sid_history(before)
    assert same_force(restored) == same_force(before)


def test_crash_after_k_then_resume_exactly_once(
    apply_dc: ApplyDC, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SIGKILL right after the k-th write (an owner's managedBy removal), before its ``done``:
    the resumed apply re-reads it (gone: done, not re-written) and makes every other change
    exactly once."""
    doc, path = make_plan(apply_dc, monkeypatch, tmp_path)
    before = snapshot(apply_dc, monkeypatch)
    d = writer(apply_dc, monkeypatch)
    simple = set(_simple(doc))
    order = [o.action_id for o in _apply(doc, path, d).outcomes
             if o.state == "dry-run" and o.action_id in simple]  # fmt: skip
    k = next(i for i, a in enumerate(order, 1) if a.startswith("remove-owner"))
    assert 1 < k < len(order)
    cfg = apply_dc.source(monkeypatch, write=True)
    child = subprocess.run(
        [
            sys.executable,
            str(HERE / "apply_child.py"),
            str(path),
            cfg.model_dump_json(),
            WRITE_ENV,
            *order,
        ],
        env={**os.environ, KILL_ENV: str(k)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == -9, child.stderr
    lines = _journal(path)
    assert Counter(r["state"] for r in lines) == {"intent": k, "done": k - 1}
    assert lines[-1]["state"] == "intent" and lines[-1]["action_id"] == order[k - 1]

    resumed = _apply(doc, path, d, execute=True, only_ids=order)
    todo = [o.action_id for o in resumed.outcomes if o.state in ("done", "already")]
    assert sorted(todo) == sorted(order) and d.writes == len(order) - k
    assert resumed.writes == len(order) - k  # the k-th landed: re-read, not re-written
    done = Counter(r["action_id"] for r in _journal(path) if r["state"] == "done")
    assert set(done) == set(order) and set(done.values()) == {1}  # every change exactly once
    by_id = {c.action_id: c for c in plan_changes(doc["actions"])[0]}
    pairs = {k_: {(by_id[i].group_id, by_id[i].member_id) for i in done if by_id[i].kind in k_}
             for k_ in (EDGE_KINDS, ("remove-owner",))}  # fmt: skip
    after = snapshot(apply_dc, monkeypatch)
    assert edges(before) - edges(after) == pairs[EDGE_KINDS]
    assert owners(before) - owners(after) == pairs[("remove-owner",)]
    assert len(managers(before) - managers(after)) == 4


def test_refusals(apply_dc: ApplyDC, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    doc, path = make_plan(apply_dc, monkeypatch, tmp_path)
    d = writer(apply_dc, monkeypatch)
    n = len(plan_changes(doc["actions"])[0])
    assert (
        n == 34
    )  # 21 edges, 3 sIDHistory values, 2 owners, 4 managers, 2 stripped edges, 2 splits
    with pytest.raises(ApplyError, match=rf"\({n} changes\), above the blast-radius cap of 5"):
        apply_plan(doc, path, {"ad": d}, execute=True, max_changes=5)
    assert d.writes == 0
    # named protected groups are allowed; primary groups never are
    da = {
        a["group_id"]
        for a in _membership_actions(doc)
        if (a["target"]["group_sid"] or "").endswith("-512")
    }
    dry = apply_plan(doc, path, {"ad": d}, max_changes=100, allow_protected=da, allow_large=True)
    refused = [o.reason for o in dry.outcomes if o.state == "refused"]
    assert Counter(r.split(" ")[0] for r in refused) == {
        "protected": 1,
        "irreversible": 3,
    }
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
    plain = apply_plan(doc, path, {"ad": d}, max_changes=100, allow_large=True)
    first_id = next(o.action_id for o in plain.outcomes if o.state == "dry-run")
    first = next(a for a in doc["actions"] if a["action_id"] == first_id)
    d.remove(Change.of(first))
    writes = d.writes
    r = apply_plan(doc, path, {"ad": d}, only_ids=[first["action_id"]], execute=True)
    assert [(o.state, o.reason) for o in r.outcomes] == [("noop", "already absent")]
    assert d.writes == writes
    # drift of the other kinds: a manager replaced since the plan is not cleared (drift); an
    # owner replaced since is left alone (the planned value is gone: a no-op)
    admin = "CN=Administrator,CN=Users,DC=alliance,DC=local"
    mgr = next(a for a in doc["actions"] if a["kind"] == "clear-manager")
    own = next(a for a in doc["actions"] if a["kind"] == "remove-owner")
    for obj, attr in ((mgr["member_id"], "manager"), (own["group_id"], "managedBy")):
        assert d.conn.modify(f"<GUID={obj}>", {attr: [(MODIFY_REPLACE, [admin])]}), d.conn.result
    r = apply_plan(doc, path, {"ad": d}, only_ids=[mgr["action_id"], own["action_id"]],
                   execute=True)  # fmt: skip
    states = {o.action_id: (o.state, o.reason) for o in r.outcomes}
    assert states[own["action_id"]] == ("noop", "already absent")
    state, reason = states[mgr["action_id"]]
    assert state == "drift" and reason.startswith("the manager is now ")
    assert reason.endswith(", not the planned one") and d.writes == writes
    assert not d.read(Change.of(own)).is_member
    assert d.conn.search(f"<GUID={own['group_id']}>", f"(managedBy={admin})", "BASE")
    assert len(d.conn.response or []) == 1
