"""apply_plan with an in-memory directory: journal, resume, undo, cap, rate, breaker, lock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from accessaudit.errors import AuditError
from accessaudit.remediation.apply.execute import (
    ApplyError,
    Change,
    Live,
    apply_plan,
    paths_for,
    plan_lock,
    undo_plan,
)
from accessaudit.remediation.planfile import FORMAT, plan_hash, save_plan

PROTECTED = "S-1-5-21-1-2-3-512"


def _ids(c: Change) -> tuple[str, str]:
    """The group and member of a membership change (both always set for one)."""
    assert c.group_id is not None and c.member_id is not None, c
    return c.group_id, c.member_id


class Memory:
    """A directory of group -> members; ``fail`` makes removals raise."""

    def __init__(self, members: dict[str, set[str]], sids: dict[str, str] | None = None) -> None:
        self.members = members
        self.sids = sids or {}
        self.writes: list[tuple[str, str, str]] = []
        self.fail = False

    def read(self, c: Change) -> Live:
        if c.group_id not in self.members:
            return Live(False, True, False)
        return Live(True, True, c.member_id in self.members[c.group_id], self.sids.get(c.group_id))

    def remove(self, c: Change, live: Live) -> None:
        if self.fail:
            raise AuditError("refused by the server")
        group, member = _ids(c)
        self.writes.append(("remove", group, member))
        self.members[group].discard(member)

    def add(self, c: Change, prior: dict[str, Any]) -> None:
        group, member = _ids(c)
        self.writes.append(("add", group, member))
        self.members[group].add(member)

    def undo_text(self, c: Change, prior: dict[str, Any]) -> dict[str, Any]:
        return {"ldif": f"dn: <GUID={c.group_id}>\nadd: member\nmember: <GUID={c.member_id}>"}


def _plan(
    tmp_path: Path, pairs: list[tuple[str, str]], via: str = "member"
) -> tuple[dict[str, Any], Path]:
    actions = [
        {"action_id": f"a{i}", "kind": "remove-member", "system": "ad", "group_id": g,
         "member_id": m, "finding_keys": [], "target": {"via": via}}
        for i, (g, m) in enumerate(pairs)
    ] + [{"action_id": "s", "kind": "split-group", "system": "ad", "group_id": "G9"}]  # fmt: skip
    doc: dict[str, Any] = {"format": FORMAT, "actions": actions}
    doc["sha256"] = plan_hash(doc)
    return doc, save_plan(doc, tmp_path / "plan.json")


def _journal(path: Path) -> list[tuple[str, str]]:
    lines = paths_for(path)[0].read_text().splitlines()
    return [(r["action_id"], r["state"]) for r in map(json.loads, lines)]


def test_resume_after_torn_journal_and_undo(tmp_path: Path) -> None:
    d = Memory({"G1": {"u1", "u2"}, "G2": {"u3"}})
    doc, path = _plan(tmp_path, [("G1", "u1"), ("G1", "u2"), ("G2", "u3")])
    # a crash after the second write landed, with its "done" torn mid-line
    d.members["G1"] -= {"u1", "u2"}
    jp = paths_for(path)[0]
    recs = [("a0", "intent"), ("a0", "done"), ("a1", "intent")]
    jp.write_text(
        "".join(
            json.dumps({"plan_sha256": doc["sha256"], "action_id": a, "state": s}) + "\n"
            for a, s in recs
        )
        + '{"plan_sha256": "'
    )
    r = apply_plan(doc, path, {"ad": d}, execute=True, rate=0)
    assert [(o.action_id, o.state) for o in r.outcomes] == [
        ("s", "manual"), ("a0", "already"), ("a1", "done"), ("a2", "done"),
    ]  # fmt: skip
    assert d.writes == [("remove", "G2", "u3")] and r.writes == 1
    undo_plan(doc, path, {"ad": d})
    assert d.members == {"G1": {"u1", "u2"}, "G2": {"u3"}}
    assert undo_plan(doc, path, {"ad": d}).writes == 0  # undone once
    # after an undo the plan can be applied again
    assert apply_plan(doc, path, {"ad": d}, execute=True, rate=0).writes == 3


def test_other_plans_journal_is_refused(tmp_path: Path) -> None:
    doc, path = _plan(tmp_path, [("G1", "u1")])
    paths_for(path)[0].write_text(json.dumps({"plan_sha256": "x", "action_id": "a0"}) + "\n")
    with pytest.raises(ApplyError, match="belongs to another plan"):
        apply_plan(doc, path, {"ad": Memory({"G1": {"u1"}})}, execute=True)


def test_cap_refusals_drift_rate_breaker_lock(tmp_path: Path) -> None:
    pairs = [("G1", f"u{i}") for i in range(6)] + [("DA", "u0"), ("GONE", "u0")]
    d = Memory({"G1": {f"u{i}" for i in range(6)}, "DA": {"u0"}}, {"DA": PROTECTED})
    doc, path = _plan(tmp_path, pairs)
    with pytest.raises(ApplyError, match="8 changes, above the blast-radius cap of 7"):
        apply_plan(doc, path, {"ad": d}, execute=True, max_changes=7)
    with pytest.raises(ApplyError, match="no write connection"):
        apply_plan(doc, path, {}, execute=True)
    slept: list[float] = []
    r = apply_plan(doc, path, {"ad": d}, only_ids=["a0", "a1", "a2", "a6", "a7"], execute=True,
                   rate=2.0, sleep=slept.append)  # fmt: skip
    states = {o.action_id: (o.state, o.reason) for o in r.outcomes}
    assert states["a6"][0] == "refused" and PROTECTED in states["a6"][1]
    assert states["a7"] == ("drift", "group no longer exists")
    assert [states[a][0] for a in ("a0", "a1", "a2")] == ["done"] * 3
    assert len(slept) == 2 and all(0 < s <= 0.5 for s in slept)  # 2 writes/s
    assert d.members["DA"] == {"u0"}
    d.fail = True
    r = apply_plan(doc, path, {"ad": d}, execute=True, max_failures=2, rate=0)
    assert [o.state for o in r.outcomes if o.state == "failed"] == ["failed", "failed"]
    with plan_lock(path), pytest.raises(ApplyError, match="another apply"):
        apply_plan(doc, path, {"ad": d}, execute=True)


def test_primary_group_refused(tmp_path: Path) -> None:
    d = Memory({"G1": {"u1"}})
    doc, path = _plan(tmp_path, [("G1", "u1")], via="primaryGroupID")
    r = apply_plan(doc, path, {"ad": d}, execute=True)
    assert [(o.state, o.reason[:29]) for o in r.outcomes if o.action_id == "a0"] == [
        ("refused", "the member's primary group (c")
    ]
    assert d.writes == [] and not paths_for(path)[1].exists()  # no write, so no undo file


def test_fuzzed_plans_never_write_protected_or_primary(tmp_path: Path) -> None:
    """500 random plans over protected (by RID / builtin SID), ordinary and primary-group
    edges: no write ever touches a protected group or a primary-group edge."""
    import random

    from accessaudit.model import PRIVILEGED_BUILTIN_RIDS, PRIVILEGED_DOMAIN_RIDS

    rng = random.Random(5)
    dom = "S-1-5-21-11-22-33"
    sids = [f"{dom}-{r}" for r in PRIVILEGED_DOMAIN_RIDS]
    sids += [f"S-1-5-32-{r}" for r in PRIVILEGED_BUILTIN_RIDS]
    sids += [f"{dom}-{r}" for r in (513, 1100, 1101, 2000, 4242)]  # not protected
    for n in range(500):
        groups = {f"G{i}": rng.choice(sids) for i in range(6)}
        pairs = [
            (rng.choice(list(groups)), f"u{rng.randrange(5)}") for _ in range(rng.randrange(1, 8))
        ]
        primary = {p for p in pairs if rng.random() < 0.2}
        actions = [
            {"action_id": f"a{i}", "kind": "remove-member", "system": "ad", "group_id": g,
             "member_id": m, "target": {"via": "primaryGroupID" if (g, m) in primary else "member"}}
            for i, (g, m) in enumerate(pairs)
        ]  # fmt: skip
        doc: dict[str, Any] = {"format": FORMAT, "actions": actions}
        doc["sha256"] = plan_hash(doc)
        folder = tmp_path / str(n)
        folder.mkdir()
        path = save_plan(doc, folder / "plan.json")
        d = Memory({g: {f"u{i}" for i in range(5)} for g in groups}, groups)
        apply_plan(doc, path, {"ad": d}, execute=True, rate=0, max_changes=100)
        for _, g, m in d.writes:
            sid = groups[g]
            assert (g, m) not in primary
            rid = int(sid.rsplit("-", 1)[1])
            assert rid not in (PRIVILEGED_BUILTIN_RIDS if "-32-" in sid else PRIVILEGED_DOMAIN_RIDS)
