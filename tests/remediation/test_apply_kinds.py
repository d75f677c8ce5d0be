"""apply_plan over the kinds beyond membership, with an in-memory directory: which actions run
and which stay manual (with the reason), remove-memberships expanded and journalled per edge,
the prior journalled and used by undo, irreversible changes behind a flag, the per-group cap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from accessaudit.remediation.apply.changes import IRREVERSIBLE_NOTE
from accessaudit.remediation.apply.execute import (
    ApplyError,
    Change,
    Live,
    apply_plan,
    paths_for,
    plan_changes,
    undo_plan,
)
from accessaudit.remediation.planfile import FORMAT, plan_hash, save_plan


class Values:
    """object id -> set of values (members of a group, owners, SIDs of a history, roles)."""

    def __init__(self, values: dict[str, set[str]]) -> None:
        self.values = values
        self.writes: list[tuple[str, str, str]] = []

    def _key(self, c: Change) -> tuple[str, str]:
        if c.kind == "remove-sid-history":
            return str(c.member_id), str(c.resource_id)
        if c.kind == "remove-role-assignment":
            return f"role:{c.resource_id}@{c.scope}", str(c.member_id)
        if c.kind == "remove-owner":
            return f"owners:{c.group_id}", str(c.member_id)
        return str(c.group_id), str(c.member_id)

    def read(self, c: Change) -> Live:
        obj, value = self._key(c)
        if obj not in self.values:
            return Live(False, True, False)
        present = value in self.values[obj]
        prior = {"assignments": [f"id-{value}"]} if present and "role:" in obj else {}
        return Live(True, True, present, size=len(self.values[obj]), prior=prior)

    def remove(self, c: Change, live: Live) -> None:
        obj, value = self._key(c)
        self.writes.append(("remove", obj, value))
        self.values[obj].discard(value)

    def add(self, c: Change, prior: dict[str, Any]) -> None:
        obj, value = self._key(c)
        self.writes.append(("add", obj, value))
        assert c.kind != "remove-role-assignment" or prior == {"assignments": [f"id-{value}"]}
        self.values[obj].add(value)

    def undo_text(self, c: Change, prior: dict[str, Any]) -> dict[str, Any]:
        obj, value = self._key(c)
        text = f"add back {value} to {obj} {json.dumps(prior, sort_keys=True)}"
        return {"ldif": f"# {text}", "requests": [{"method": "POST", "url": text}]}


def _plan(tmp_path: Path, actions: list[dict[str, Any]]) -> tuple[dict[str, Any], Path]:
    doc: dict[str, Any] = {"format": FORMAT, "actions": actions}
    doc["sha256"] = plan_hash(doc)
    return doc, save_plan(doc, tmp_path / "plan.json")


def _a(aid: str, kind: str, **kw: Any) -> dict[str, Any]:
    return {"action_id": aid, "kind": kind, "system": "ad", "target": {}, **kw}


ACTIONS = [
    _a("own", "remove-owner", group_id="G1", member_id="boss"),
    _a("sid", "remove-sid-history", member_id="u1", resource_id="S-1-5-21-9-9-9-1104"),
    _a(
        "role",
        "remove-role-assignment",
        member_id="u2",
        resource_id="R1",
        right="Helpdesk Administrator @ /",
        system="cloud",
    ),
    _a(
        "pim",
        "remove-role-assignment",
        member_id="u2",
        resource_id="R2",
        right="Global Administrator @ / (eligible)",
        system="cloud",
    ),
    _a(
        "strip",
        "remove-memberships",
        member_id="u3",
        target={
            "strip": [
                {"group_id": "G2", "group_sid": None, "via": "member"},
                {"group_id": "G3", "group_sid": None, "via": "member"},
            ]
        },
    ),
    _a("split", "split-group", group_id="G4"),
    _a("guest", "remove-guest", member_id="g1", system="cloud"),
    _a("del", "delete-group", group_id="G5"),
]


def _directory() -> Values:
    return Values(
        {
            "owners:G1": {"boss"},
            "u1": {"S-1-5-21-9-9-9-1104"},
            "role:R1@/": {"u2"},
            "G2": {"u3", "a", "b"},
            "G3": {"u3", "c", "d", "e"},
        }
    )


def test_executable_and_manual_kinds(tmp_path: Path) -> None:
    changes, manual = plan_changes(ACTIONS)
    assert [(c.action_id, c.kind, c.group_id) for c in changes] == [
        ("own", "remove-owner", "G1"),
        ("sid", "remove-sid-history", None),
        ("role", "remove-role-assignment", None),
        ("strip#G2", "remove-member", "G2"),
        ("strip#G3", "remove-member", "G3"),
    ]
    assert {o.action_id: o.reason.split(":")[0] for o in manual} == {
        "pim": "PIM eligibility",
        "split": "split-group without a recorded new group (a plan older than this apply)",
        "guest": "remove-guest deletes a person's account",
        "del": "delete-group deletes an object a write cannot restore",
    }
    # --only-ids picks an action (all its edges) or one expanded edge
    assert [c.action_id for c in plan_changes(ACTIONS, ["strip"])[0]] == ["strip#G2", "strip#G3"]
    assert [c.action_id for c in plan_changes(ACTIONS, ["strip#G3"])[0]] == ["strip#G3"]
    # a remove-memberships without recorded edges (an older plan) is left to a person
    old = _a("x", "remove-memberships", member_id="u3")
    assert plan_changes([old])[1][0].reason.startswith("remove-memberships without recorded")


def test_apply_undo_and_irreversible(tmp_path: Path) -> None:
    d = _directory()
    doc, path = _plan(tmp_path, ACTIONS)
    dry = apply_plan(doc, path, {"ad": d, "cloud": d}, rate=0)
    states = {o.action_id: (o.state, o.reason) for o in dry.outcomes}
    assert states["sid"] == (
        "refused",
        f"irreversible ({IRREVERSIBLE_NOTE}); pass --allow-irreversible to make it",
    )
    assert states["role"] == ("dry-run", "would remove-role-assignment (1 assignment(s))")
    assert [states[a][0] for a in ("own", "strip#G2", "strip#G3")] == ["dry-run"] * 3
    assert d.writes == []

    r = apply_plan(doc, path, {"ad": d, "cloud": d}, execute=True, rate=0)
    assert r.writes == 4 and r.counts() == {"done": 4, "manual": 4, "refused": 1}
    assert d.values["u1"] == {"S-1-5-21-9-9-9-1104"}  # not without the flag
    r = apply_plan(doc, path, {"ad": d, "cloud": d}, execute=True, rate=0, allow_irreversible=True)
    assert r.writes == 1 and r.counts() == {"already": 4, "done": 1, "manual": 4}
    assert [o.reason for o in r.outcomes if o.state == "done"] == [IRREVERSIBLE_NOTE]
    assert d.values == {"owners:G1": set(), "u1": set(), "role:R1@/": set(),
                        "G2": {"a", "b"}, "G3": {"c", "d", "e"}}  # fmt: skip
    journal = [json.loads(x) for x in paths_for(path)[0].read_text().splitlines()]
    intents = {j["action_id"]: j.get("prior") for j in journal if j["state"] == "intent"}
    assert intents == {"own": None, "role": {"assignments": ["id-u2"]}, "strip#G2": None,
                       "strip#G3": None, "sid": None}  # fmt: skip
    ldif = paths_for(path)[1].read_text()
    assert f"# sid: {IRREVERSIBLE_NOTE}" in ldif and "S-1-5-21-9-9-9-1104" in ldif

    u = undo_plan(doc, path, {"ad": d, "cloud": d})
    assert u.writes == 4 and u.counts() == {"irreversible": 1, "undone": 4} and not u.clean
    assert d.values == {"owners:G1": {"boss"}, "u1": set(), "role:R1@/": {"u2"},
                        "G2": {"u3", "a", "b"}, "G3": {"u3", "c", "d", "e"}}  # fmt: skip


def test_group_cap(tmp_path: Path) -> None:
    d = Values({"G1": {"u1", "u2", "u3", "u4"}, "G2": {"u1", "u2", "u3"}})
    actions = [
        _a(f"{g}-{m}", "remove-member", group_id=g, member_id=m)
        for g, ms in (("G1", ["u1", "u2"]), ("G2", ["u1", "u2"]))
        for m in ms
    ]
    doc, path = _plan(tmp_path, actions)
    # 2 of 4 is half (allowed); 2 of 3 is more than half
    with pytest.raises(
        ApplyError, match=r"more than 50% of the members of 1 group\(s\): G2 \(2 of 3"
    ):
        apply_plan(doc, path, {"ad": d}, execute=True, rate=0)
    assert d.writes == [] and not paths_for(path)[0].exists()
    with pytest.raises(ApplyError, match="1 group"):
        apply_plan(doc, path, {"ad": d}, rate=0)  # the dry run says so too
    r = apply_plan(doc, path, {"ad": d}, execute=True, rate=0, max_group_fraction=0.7)
    assert r.writes == 4
    d2 = Values({"G1": {"u1", "u2"}})
    (tmp_path / "two").mkdir()
    doc2, path2 = _plan(tmp_path / "two", actions[:2])
    with pytest.raises(ApplyError, match=r"G1 \(2 of 2 members\)"):
        apply_plan(doc2, path2, {"ad": d2}, execute=True, rate=0)
    assert apply_plan(doc2, path2, {"ad": d2}, execute=True, rate=0, allow_large=True).writes == 2


def test_plan_records_what_apply_needs(tmp_path: Path) -> None:
    """The saved plan carries, per remove-memberships, exactly the edges the what-if removed
    for it, and per clear-manager the manager the run saw: apply writes what was simulated."""
    import polars as pl

    from accessaudit.engine.rulefile import load_rules
    from accessaudit.pipeline.demo import demo_settings
    from accessaudit.pipeline.planning import plan_run
    from accessaudit.pipeline.run import run_audit
    from accessaudit.remediation.whatif import removed_edges
    from accessaudit.store.runs import read_table

    s = demo_settings(tmp_path / "data", accounts=300)
    s = s.model_copy(update={"report": s.report.model_copy(update={"formats": ["json"]})})
    run = run_audit(s).run
    doc = plan_run(run, s, load_rules())
    names = (
        "accounts",
        "groups",
        "memberships",
        "group_closure",
        "findings",
        "actions",
        "finding_paths",
    )
    t = {n: read_table(run, n) for n in names}
    simulated = removed_edges(t["actions"], t).filter(
        pl.col("action_id").str.starts_with("remove-memberships|")
    )
    recorded = {
        (c.action_id.split("#")[0], c.group_id, c.member_id)
        for c in plan_changes(doc["actions"])[0]
        if "#" in c.action_id
    }
    assert recorded == set(simulated.iter_rows()) and len(recorded) == 2
    strips = [a for a in doc["actions"] if a["kind"] == "remove-memberships"]
    assert sorted(len(a["target"]["strip"]) for a in strips) == [1, 1]  # none without an edge
    managers = dict(t["accounts"].select("account_id", "manager_id").iter_rows())
    clears = [a for a in doc["actions"] if a["kind"] == "clear-manager"]
    assert len(clears) == 4
    assert all(a["target"]["manager_id"] == managers[a["member_id"]] for a in clears)
    assert all(a["target"]["manager_id"] for a in clears)


def test_group_cap_counts_earlier_batches(tmp_path: Path) -> None:
    """Batches of --only-ids cannot empty a group the cap protects: what this plan removed in
    earlier runs counts against the group's size before the plan."""
    d = Values({"G": {"u1", "u2", "u3", "u4"}})
    actions = [_a(f"a{i}", "remove-member", group_id="G", member_id=f"u{i}") for i in (1, 2, 3)]
    doc, path = _plan(tmp_path, actions)
    assert apply_plan(doc, path, {"ad": d}, only_ids=["a1", "a2"], execute=True).writes == 2
    # alone, 1 of the 2 left is half (allowed); with the 2 removed before, 3 of 4 is not
    with pytest.raises(ApplyError, match=r"G \(3 of 4 members, 2 removed earlier by this plan\)"):
        apply_plan(doc, path, {"ad": d}, only_ids=["a3"], execute=True)
    assert d.values["G"] == {"u3", "u4"}
    undo_plan(doc, path, {"ad": d})  # undone: no longer counted
    assert apply_plan(doc, path, {"ad": d}, only_ids=["a3"], execute=True).writes == 1
