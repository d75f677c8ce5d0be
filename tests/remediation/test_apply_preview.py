"""``apply PLAN --preview``: every change and its guards from the plan alone, offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from accessaudit.remediation.apply.preview import LIVE_CHECKS, preview_plan
from accessaudit.remediation.planfile import FORMAT, plan_hash, save_plan

DOMAIN = "S-1-5-21-1-2-3"


def _action(action_id: str, kind: str, system: str = "ad", **target: Any) -> dict[str, Any]:
    return {
        "action_id": action_id,
        "kind": kind,
        "system": system,
        "group_id": target.pop("group_id", "g-" + action_id),
        "member_id": target.pop("member_id", "m-" + action_id),
        "resource_id": target.pop("resource_id", None),
        "right": None,
        "target": {
            "group_sid": target.pop("group_sid", f"{DOMAIN}-1200"),
            "group_dn": f"CN=G {action_id},OU=WMP,DC=alliance,DC=local",
            "member_dn": f"CN=M {action_id},OU=WARKS,DC=alliance,DC=local",
            **target,
        },
    }


SPLIT = {
    "name": "WARKS-PRJ-X",
    "sam": "WARKS-PRJ-X",
    "ou": "OU=Groups,OU=WARKS,DC=alliance,DC=local",
    "scope": "global",
    "description": "Split from WMP-PRJ-X by accessaudit",
    "members": ["u1", "u2", "u3"],
    "parents": ["p1"],
    "unnest": ["q1", "q2"],
}


def _plan() -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": FORMAT,
        "run_id": "20261207T000000Z",
        "run_manifest_sha256": "0" * 64,
        "created": "2026-12-07T00:00:00+00:00",
        "as_of": "2026-12-07T00:00:00+00:00",
        "what_if": {},
        "actions": [
            _action("a1-plain", "remove-member", via="member"),
            _action("a2-primary", "remove-member", via="primaryGroupID"),
            _action("a3-admins", "unnest-group", group_sid=f"{DOMAIN}-512", via="member"),
            _action("a4-split", "split-group"),
            _action("a5-sidh", "remove-sid-history", resource_id=f"{DOMAIN}-1105"),
            _action("a6-cloud", "remove-member", system="cloud", group_sid=None),
            _action("a7-split", "split-group", split=SPLIT),
        ],
    }
    doc["sha256"] = plan_hash(doc)
    return doc


def test_preview_lists_every_change_with_its_guards() -> None:
    preview = preview_plan(_plan(), max_changes=3)
    got = [(ln.action_id, ln.state) for ln in preview.lines]
    assert got == [
        ("a1-plain", "write"),
        ("a2-primary", "write"),
        ("a5-sidh", "write"),
        ("a6-cloud", "write"),
        ("a7-split", "write"),
        ("a3-admins", "refused"),
        ("a4-split", "manual"),
    ]
    lines = {ln.action_id: ln for ln in preview.lines}
    assert lines["a1-plain"].write == (
        "AD: delete member CN=M a1-plain,OU=WARKS,DC=alliance,DC=local "
        "from CN=G a1-plain,OU=WMP,DC=alliance,DC=local"
    )
    assert lines["a1-plain"].guards == (
        LIVE_CHECKS,
        "counts toward apply.max_group_fraction of its group",
    )
    assert lines["a2-primary"].write == (
        "AD: add CN=M a2-primary,OU=WARKS,DC=alliance,DC=local to Domain Users "
        "(<domain SID>-513), set its primaryGroupID to it, read it again, then delete member "
        "CN=M a2-primary,OU=WARKS,DC=alliance,DC=local from "
        "CN=G a2-primary,OU=WMP,DC=alliance,DC=local"
    )
    assert "primary group: refused where AD would refuse the target group" in (
        lines["a2-primary"].guards
    )
    # 1 group + 3 members in + 1 parent + 3 members out + 2 parents left
    assert lines["a7-split"].write == (
        "AD: create group WARKS-PRJ-X in OU=Groups,OU=WARKS,DC=alliance,DC=local, add 3 "
        "member(s), nest it into 1 group(s), read it again, then delete those members from "
        "CN=G a7-split,OU=WMP,DC=alliance,DC=local and CN=G a7-split,OU=WMP,DC=alliance,"
        "DC=local from 2 group(s) of the other force; each step journalled (10 writes)"
    )
    assert (
        lines["a3-admins"].write == f"protected group {DOMAIN}-512 (name it with --allow-protected)"
    )
    assert "irreversible: runs only with --allow-irreversible; no undo by LDAP" in (
        lines["a5-sidh"].guards
    )
    assert lines["a6-cloud"].write == "Graph: DELETE /groups/g-a6-cloud/members/m-a6-cloud/$ref"
    assert lines["a4-split"].write == (
        "split-group without a recorded new group (a plan older than this apply): by hand"
    )
    # writes: 1 + 3 (primary move) + 1 + 1 + 10 (split)
    assert (preview.writes, preview.over_cap) == (16, True)
    assert preview_plan(_plan(), max_changes=16).over_cap is False
    # naming the protected group lets its change through, as apply would
    allowed = preview_plan(_plan(), allow_protected=[f"{DOMAIN}-512"])
    assert {ln.action_id: ln.state for ln in allowed.lines}["a3-admins"] == "write"
    only = preview_plan(_plan(), only_ids=["a1-plain", "a4-split"])
    assert [(ln.action_id, ln.state) for ln in only.lines] == [
        ("a1-plain", "write"),
        ("a4-split", "manual"),
    ]


def test_preview_runs_offline_without_a_config(tmp_path: Path) -> None:
    """No config.toml, no credentials, no directory: the plan alone."""
    plan = save_plan(_plan(), tmp_path / "plan.json")
    p = subprocess.run(
        [sys.executable, "-m", "accessaudit", "apply", str(plan), "--preview"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    assert p.returncode == 1, p.stderr  # refusals and manual actions: not a clean apply
    assert p.stderr == ""
    out = p.stdout.splitlines()
    assert out[0] == f"preview of plan {_plan()['sha256'][:16]}... (run 20261207T000000Z)"
    assert out[1] == f"  nothing is read or written; apply will {LIVE_CHECKS}"
    assert out[2].startswith("write    a1-plain  ad    AD: delete member CN=M a1-plain")
    assert out[2].endswith("| counts toward apply.max_group_fraction of its group")
    assert [line.split()[0] for line in out[2:-1]] == [
        *("write", "write", "write", "write", "write", "refused", "manual"),
    ]
    assert out[-1] == "preview: 16 write(s), 1 refused, 1 left to a person; within the cap of 50"


def test_preview_cannot_be_combined_with_execute(tmp_path: Path) -> None:
    plan = save_plan(_plan(), tmp_path / "plan.json")
    p = subprocess.run(
        [
            *(sys.executable, "-m", "accessaudit", "apply", str(plan)),
            *("--preview", "--execute", "--sha256", _plan()["sha256"]),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "--preview reads the plan only" in p.stderr
