"""Splits and primary-group moves executed against a real Samba AD DC loaded with the sample
(its mixed group also nested into a group of the movers' force, so the split both nests its new
group and un-nests the mixed one): run -> plan -> apply --execute -> run again -> undo, and a
kill at every step of a split and of a primary-group move, each resumed to the complete change.
"""

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
from ldap3 import MODIFY_ADD
from support.apply_servers import WRITE_ENV, ApplyDC
from support.applyflow import make_plan, same_force, snapshot, writer

from accessaudit.remediation.apply.changes import manual_reason
from accessaudit.remediation.apply.execute import (
    KILL_STEP_ENV,
    apply_plan,
    paths_for,
    plan_changes,
    undo_plan,
)
from accessaudit.remediation.apply.ldap import LdapDirectory

pytestmark = pytest.mark.servers

HERE = Path(__file__).resolve().parent
MIXED = "WMP-PRJ-Joint-Firearms-Licensing"  # the sample's mixed group with Warwickshire movers


def _apply(doc: dict[str, Any], path: Path, d: Any, **kw: Any) -> Any:
    return apply_plan(doc, path, {"ad": d}, max_changes=1000, rate=0, allow_large=True, **kw)


def _state(t: dict[str, pl.DataFrame]) -> tuple[set[tuple[str, str, str]], set[str]]:
    """Every edge with how it is held (member or primaryGroupID), and every group id."""
    return set(t["memberships"].select("group_id", "member_id", "via").iter_rows()), set(
        t["groups"]["group_id"]
    )


def _nest_mixed(seeded: ApplyDC, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Nest the mixed group into a Warwickshire group (a cross-force nesting the split must
    keep for its movers and take away from the rest); (mixed id, parent id)."""
    t = snapshot(seeded, monkeypatch)
    g = t["groups"]
    [mixed] = g.filter(pl.col("name") == MIXED)["group_id"].to_list()
    parent = (
        g.filter((pl.col("org") == "warks") & pl.col("name").str.starts_with("WARKS-RES-"))
        .sort("name")["group_id"]
        .to_list()[0]
    )
    d = writer(seeded, monkeypatch)
    assert d.conn.modify(f"<GUID={parent}>", {"member": [(MODIFY_ADD, [d._dn_of(mixed)])]}), (
        d.conn.result
    )
    return str(mixed), str(parent)


def _collateral(seeded: ApplyDC, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, str]:
    """A same-force access only through the other force: a Warwickshire account in a West
    Mercia group (one member of the other force: not mixed) nested into a Warwickshire group.
    The plan removes the member and un-nests the group, so the account loses its own force's
    group: the what-if's collateral. (account, West Mercia group, Warwickshire group)."""
    t = snapshot(seeded, monkeypatch)
    g, m = t["groups"], t["memberships"]
    res = g.filter(pl.col("name").str.contains("-RES-")).sort("name")
    a = t["accounts"]
    warks_accounts = a.filter(pl.col("org") == "warks")["account_id"].to_list()
    # in no finding, and no Warwickshire member yet
    f = t["findings"]
    busy = set(m.filter(pl.col("member_id").is_in(warks_accounts))["group_id"])
    for col in ("group_id", "member_group_id", "via_group_id"):
        busy |= set(f[col].drop_nulls().cast(pl.String)) if col in f.columns else set()
    free = res.filter((pl.col("org") == "wmp") & ~pl.col("group_id").is_in(list(busy)))
    assert free.height, res.select("name", "org")
    wmp = free["group_id"][0]
    warks = res.filter(pl.col("org") == "warks")["group_id"].to_list()[1]
    reach = set(
        t["effective"]
        .filter(pl.col("group_id").cast(pl.String) == warks)["account_id"]
        .cast(pl.String)
    )
    acc = a.filter(
        (pl.col("org") == "warks") & (pl.col("kind") == "user")
        & ~pl.col("account_id").is_in(list(reach))
    ).sort("username")["account_id"][0]  # fmt: skip
    d = writer(seeded, monkeypatch)
    for group, member in ((warks, wmp), (wmp, acc)):
        change = {"member": [(MODIFY_ADD, [d._dn_of(member)])]}
        assert d.conn.modify(f"<GUID={group}>", change), d.conn.result
    return str(acc), str(wmp), str(warks)


def _complete(t: dict[str, pl.DataFrame], a: dict[str, Any]) -> None:
    """The split of action ``a`` is complete in the directory as collected."""
    s = a["target"]["split"]
    m = t["memberships"]
    [new] = t["groups"].filter(pl.col("name") == s["name"])["group_id"].to_list()
    members = set(m.filter(pl.col("group_id") == new)["member_id"])
    parents = lambda x: set(m.filter(pl.col("member_id") == x)["group_id"])  # noqa: E731
    assert members == set(s["members"]) and parents(new) == set(s["parents"])
    assert set(m.filter(pl.col("group_id") == a["group_id"])["member_id"]).isdisjoint(members)
    assert parents(a["group_id"]).isdisjoint(s["unnest"])


def test_loop_executes_splits_and_primary_moves_and_undoes(
    apply_dc: ApplyDC, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One apply --execute leaves no planned finding but the decisions (and the sIDHistory
    values Samba will not remove over LDAP); same-force losses equal the what-if's list; undo
    restores every edge, primaryGroupIDs included, and deletes the new groups."""
    mixed, parent = _nest_mixed(apply_dc, monkeypatch)
    account, _, warks = _collateral(apply_dc, monkeypatch)
    doc, path = make_plan(apply_dc, monkeypatch, tmp_path)
    assert doc["what_if"]["valid"] and doc["what_if"]["remaining"] == 0
    predicted = {(p["account_id"], p["group_id"]) for p in doc["what_if"]["collateral_pairs"]}
    assert (account, warks) in predicted
    splits = {a["group_id"]: a for a in doc["actions"] if a["kind"] == "split-group"}
    assert len(splits) == 2 and manual_reason(splits[mixed]) is None
    s = splits[mixed]["target"]["split"]
    assert (s["name"], s["ou"], s["parents"], s["unnest"]) == (
        "WARKS-PRJ-Joint-Firearms-Licensing",
        "OU=Groups,OU=Warwickshire,DC=alliance,DC=local",
        [parent],
        [parent],
    )
    assert len(s["members"]) == 12
    primary = [c for c in plan_changes(doc["actions"])[0] if c.via == "primaryGroupID"]
    assert len(primary) == 3  # two planted accounts; one of them also stripped (same edge)
    before = snapshot(apply_dc, monkeypatch)
    d = writer(apply_dc, monkeypatch)
    protected = [
        a["group_id"]
        for a in doc["actions"]
        if (a["target"].get("group_sid") or "").rsplit("-", 1)[-1] in ("512", "549")
    ]
    done = _apply(doc, path, d, execute=True, allow_protected=protected)
    # sIDHistory: irreversible, refused without --allow-irreversible (and Samba refuses any
    # sIDHistory change over LDAP: test_apply_samba)
    refused = [o.reason for o in done.outcomes if o.state == "refused"]
    assert len(refused) == 3 and all(r.startswith("irreversible") for r in refused)
    changes = plan_changes(doc["actions"])[0]
    # two edges planned twice find them gone the second time: a primary edge (its account's
    # remove-member and its strip) and a mover's edge to the mixed group (the split and the
    # mover's strip)
    manual_n = sum(1 for a in doc["actions"] if manual_reason(a))
    assert done.counts() == {"done": len(changes) - 5, "noop": 2, "refused": 3, "manual": manual_n}
    assert {o.reason for o in done.outcomes if o.state == "noop"} == {"already absent"}
    after = snapshot(apply_dc, monkeypatch)
    for a in splits.values():
        _complete(after, a)
    pg = after["memberships"].filter(pl.col("via") == "primaryGroupID")
    moved = {c.member_id for c in primary}
    users = pg.filter(pl.col("member_id").is_in(list(moved)))["group_id"].to_list()
    assert len(users) == 2 and set(users) == {
        after["groups"].filter(pl.col("sid").str.ends_with("-513"))["group_id"][0]
    }
    # every planned finding is resolved but the decisions and Samba's sIDHistory
    planned = {k for a in doc["actions"] for k in a["finding_keys"]}
    left = planned & set(after["findings"]["finding_key"])
    manual = {k for a in doc["actions"] if manual_reason(a) for k in a["finding_keys"]}
    assert Counter(k.split("|")[0] for k in left - manual) == {"cross-org-sid-history": 3}
    assert {a["kind"] for a in doc["actions"] if manual_reason(a)} == {
        *("delete-group", "review-attribution", "decide-shared-account", "resolve-dual-identity")
    }
    cross = after["findings"].filter(pl.col("rule_id").str.starts_with("cross-org"))
    assert set(cross["finding_key"]) <= manual | (left - manual)
    # same-force losses: exactly the what-if's list
    lost = same_force(before) - same_force(after)
    assert lost == predicted and len(lost) == 2  # the planted account's, in its own force
    # gained: only the movers' access to their new groups (the same-force groups they reach
    # through it they reached through the mixed group before)
    new_groups = {
        a["group_id"]: after["groups"].filter(pl.col("name") == a["target"]["split"]["name"])[
            "group_id"
        ][0]
        for a in splits.values()
    }
    gained = {
        (m, new_groups[g]) for g, a in splits.items() for m in a["target"]["split"]["members"]
    }
    assert same_force(after) - same_force(before) == gained

    undone = undo_plan(doc, path, {"ad": d})
    assert undone.count("undone") == done.count("done") and not any(
        o.reason for o in undone.outcomes
    )
    restored = snapshot(apply_dc, monkeypatch)
    assert _state(restored) == _state(before)  # edge for edge, via included; new groups gone


def _child(
    seeded: ApplyDC, monkeypatch: pytest.MonkeyPatch, path: Path, k: int, ids: list[str]
) -> None:
    cfg = seeded.source(monkeypatch, write=True)
    p = subprocess.run(
        [sys.executable, str(HERE / "apply_child.py"), str(path), cfg.model_dump_json(),
         WRITE_ENV, *ids],
        env={**os.environ, KILL_STEP_ENV: str(k)},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert p.returncode == -9, p.stderr


def test_kill_at_every_step_resumes_to_the_complete_change(
    apply_dc: ApplyDC, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The split (create, add the movers, nest, remove the movers, un-nest) and the primary-group
    move (join Domain Users, set primaryGroupID, leave the old group) killed after each step:
    the journal's last line is that step, a second apply completes the change, and undo puts
    the directory back as it was (the next kill point starts from the first state)."""
    mixed, _ = _nest_mixed(apply_dc, monkeypatch)
    doc, path = make_plan(apply_dc, monkeypatch, tmp_path)
    before = _state(snapshot(apply_dc, monkeypatch))
    split = next(a for a in doc["actions"] if a["group_id"] == mixed)
    move = next(a for a in doc["actions"] if a["target"].get("via") == "primaryGroupID")
    d: LdapDirectory = writer(apply_dc, monkeypatch)
    cases = [(split, ["create", "add-movers", "nest", "remove-movers", "unnest"]),
             (move, ["join-primary", "set-primary", "leave-old"])]  # fmt: skip
    for action, steps in cases:
        for k, step in enumerate(steps, 1):
            _child(apply_dc, monkeypatch, path, k, [action["action_id"]])
            lines = [json.loads(x) for x in paths_for(path)[0].read_text().splitlines()]
            mine = [r for r in lines if r["action_id"] == action["action_id"]]
            assert mine[-1]["state"] == "step" and mine[-1]["reason"] == step
            resumed = _apply(doc, path, d, execute=True, only_ids=[action["action_id"]])
            assert [o.state for o in resumed.outcomes] in (["done"],), resumed.outcomes
            if k == len(steps):  # the last write had landed: read again, nothing left
                assert resumed.writes == 0
            c = plan_changes([action])[0][0]
            assert d.read(c).is_member is False  # nothing left to do: complete
            if action is split:
                _complete(snapshot(apply_dc, monkeypatch), split)
            undone = undo_plan(doc, path, {"ad": d})
            assert [o.state for o in undone.outcomes] == ["undone"], undone.outcomes
    assert _state(snapshot(apply_dc, monkeypatch)) == before
