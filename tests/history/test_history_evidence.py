"""History as evidence, on inputs built here: why a finding is unknown, one definition of open
(summary, trend, exit code), the runs a data directory has lost, the register's own findings."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import polars as pl

from accessaudit.engine.exceptions import apply_exceptions, load_register
from accessaudit.errors import ExitCode
from accessaudit.model import FINDINGS_SCHEMA
from accessaudit.pipeline.analyse import Analysis
from accessaudit.pipeline.publish import summarise
from accessaudit.pipeline.result import RunResult
from accessaudit.report.history import (
    HISTORY_SCHEMA,
    RunState,
    open_frame,
    update_history,
)
from accessaudit.report.objects import Objects
from accessaudit.report.rows import F, finding_rows
from accessaudit.report.trend import open_count, point
from accessaudit.store.runs import MANIFEST, RunInfo
from accessaudit.store.timeline import Presence, timeline

T0 = datetime(2026, 11, 1, tzinfo=UTC)
AD, APP = "ad:x", "csv:app"


def previous(rows: list[tuple[str, str, str, list[str]]]) -> pl.DataFrame:
    """(key, status, severity, sources) rows of run 0's history."""
    return pl.DataFrame(
        [
            {
                "finding_key": k,
                "rule_id": k.split("|")[0],
                "severity": sev,
                "status": s,
                "first_seen": T0,
                "first_seen_run": "r0",
                "last_seen": T0,
                "last_seen_run": "r0",
                "sources": src,
            }
            for k, s, sev, src in rows
        ],
        schema=HISTORY_SCHEMA,
        orient="row",
    )


def findings(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    """(key, severity, status) findings of the current run."""
    return pl.DataFrame(
        [
            {"finding_key": k, "rule_id": k.split("|")[0], "severity": sev, "status": st}
            for k, sev, st in rows
        ],
        schema=dict.fromkeys(("finding_key", "rule_id", "severity", "status"), pl.String),
    )


def state(run_id: str, day: int, complete: bool, **sources: bool) -> RunState:
    return RunState(run_id, T0 + timedelta(days=day), complete, sources)


PREV = previous(
    [
        ("r1|a", "persisting", "high", [AD]),
        ("r1|b", "persisting", "critical", [AD]),
        ("r2|c", "persisting", "medium", [APP]),
        ("r1|d", "unknown", "high", [AD]),
    ]
)


def reasons(h: pl.DataFrame) -> dict[str, tuple[str, str | None]]:
    return {k: (s, r) for k, s, r in h.select("finding_key", "status", "unknown_reason").rows()}


def test_an_unknown_finding_says_what_it_waits_for() -> None:
    f = findings([("r1|a", "high", "open")])
    src = f.select("finding_key", sources=pl.lit([AD], pl.List(pl.String)))
    # this run is incomplete: nothing absent is proven gone
    h = update_history(PREV, state("p", 1, True, **{AD: True, APP: True}), f, src,
                       state("c", 2, False, **{AD: False, APP: True}))  # fmt: skip
    assert reasons(h) == {
        "r1|a": ("persisting", None),
        "r1|b": ("unknown", "incomplete"),
        "r2|c": ("unknown", "incomplete"),
        "r1|d": ("unknown", "incomplete"),
    }
    # this run is complete, the previous one was not: the next complete run confirms
    h = update_history(PREV, state("p", 1, False, **{AD: False, APP: True}), f, src,
                       state("c", 2, True, **{AD: True, APP: True}))  # fmt: skip
    assert reasons(h) == {
        "r1|a": ("persisting", None),
        "r1|b": ("unknown", "confirm"),
        "r2|c": ("unknown", "confirm"),
        "r1|d": ("unknown", "confirm"),
    }
    # this run is complete but does not collect the application any more
    h = update_history(PREV, state("p", 1, True, **{AD: True, APP: True}), f, src,
                       state("c", 2, True, **{AD: True}))  # fmt: skip
    assert reasons(h) == {
        "r1|a": ("persisting", None),
        "r1|b": ("resolved", None),
        "r2|c": ("unknown", "not-collected"),
        "r1|d": ("resolved", None),
    }


def confirm_history() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Run 2 (complete) after an incomplete run 1: two findings seen (one accepted), b and d
    absent and unknown."""
    f = findings([("r1|a", "high", "open"), ("r2|c", "medium", "accepted")])
    src = f.select("finding_key", sources=pl.lit([AD], pl.List(pl.String)))
    h = update_history(PREV, state("p", 1, False, **{AD: False}), f, src,
                       state("c", 2, True, **{AD: True}))  # fmt: skip
    return f, h


def test_open_counts_unknown_findings_in_the_summary() -> None:
    f, h = confirm_history()
    o = open_frame(f, h)
    assert sorted(o.select("finding_key", "unknown").rows()) == [
        ("r1|a", False),
        ("r1|b", True),
        ("r1|d", True),
    ]
    actions = pl.DataFrame(schema={"action_id": pl.String})
    s = summarise(f, actions, h)
    assert (s["findings"], s["open"], s["open_unknown"], s["accepted"]) == (2, 3, 2, 1)
    assert s["open_by_severity"] == {"critical": 1, "high": 2, "medium": 0, "low": 0, "info": 0}
    assert s["open_by_rule"] == {"r1": 3}
    assert s["accepted_by_rule"] == {"r2": 1}
    assert s["changes"]["unknown"] == 2
    # the trend reads the same number, and adds the unknown ones to summaries written before
    assert open_count(s) == 3
    old = {"open": 1, "accepted": 1, "findings": 2, "changes": {"unknown": 2}}
    assert open_count(old) == 3
    p = point({"run_id": "20261103T000000Z", "complete": True, "summary": old})
    assert p is not None and (p.open, p.accepted) == (3, 1)
    p = point({"run_id": "20261103T000000Z", "complete": True, "summary": s})
    assert p is not None and (p.open, p.accepted) == (3, 1)


def result_with(summary: dict[str, Any]) -> RunResult:
    info = RunInfo("20261103T000000Z", Path("/nonexistent"), {"complete": True, "summary": summary})
    # the exit code reads the stored summary only
    return RunResult(info, cast(Analysis, None), None)


def test_the_exit_code_counts_unknown_findings() -> None:
    f, h = confirm_history()
    s = summarise(f, pl.DataFrame(schema={"action_id": pl.String}), h)
    r = result_with(s)
    # the only critical finding is unknown (absent, not proven gone): it still fails the run
    assert r.exit_code("critical") == ExitCode.FINDINGS
    assert r.exit_code("high") == ExitCode.FINDINGS
    seen_only = {**s, "open_by_severity": {"high": 1}}
    assert result_with(seen_only).exit_code("critical") == ExitCode.OK
    assert r.exit_code("none") == ExitCode.OK


def write_manifest(folder: Path, run_id: str, previous: str | None, **extra: Any) -> None:
    folder.mkdir(parents=True)
    body = {"run_id": run_id, "previous_run": previous, "complete": True, "files": {}, **extra}
    (folder / MANIFEST).write_text(json.dumps(body))


def test_timeline_marks_pruned_missing_and_damaged_runs(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    ids = [f"202611{d:02d}T050000Z" for d in range(1, 7)]
    ledger = {"run_id": ids[0], "previous_run": None, "complete": True, "summary": {"open": 4}}
    (tmp_path / "pruned-runs.jsonl").write_text(json.dumps(ledger) + "\n")
    write_manifest(runs / ids[1], ids[1], ids[0])
    # ids[2] was deleted by hand: ids[3] still names it
    write_manifest(runs / ids[3], ids[3], ids[2])
    write_manifest(runs / ids[4], ids[4], ids[3])
    (runs / ids[5]).mkdir()  # a run folder without its manifest
    (runs / ".tmp-20261107T050000Z-1").mkdir()  # a run being written: not a run yet
    got = [(e.run_id, e.state, e.named_by) for e in timeline(tmp_path)]
    assert got == [
        (ids[0], Presence.PRUNED, None),
        (ids[1], Presence.STORED, None),
        (ids[2], Presence.MISSING, ids[3]),
        (ids[3], Presence.STORED, None),
        (ids[4], Presence.STORED, None),
        (ids[5], Presence.DAMAGED, None),
    ]
    assert [e.gap for e in timeline(tmp_path)] == [False, False, True, False, False, True]
    shutil.rmtree(runs / ids[5])
    shutil.rmtree(runs / ids[4])  # the newest run: nothing names it, so it cannot be seen here
    shutil.rmtree(runs / ids[1])  # named only by the missing run: one gap, shown once
    states = {e.run_id: e.state for e in timeline(tmp_path)}
    assert states == {
        ids[0]: Presence.PRUNED,
        ids[2]: Presence.MISSING,
        ids[3]: Presence.STORED,
    }
    assert timeline(tmp_path / "nothing-here") == []


REGISTER = """[[exception]]
id = "EX-9"
rule = "cross-org-direct-member"
objects = ["u-*", "g-cid"]
justification = "kept during the transition"
agreement = "TSA schedule 2"
expires = 2026-01-31
approvers = [
  { org = "wmp", name = "Head of Information Security, West Mercia", date = 2025-10-01 },
  { org = "warks", name = "Head of Information Security, Warwickshire", date = 2025-10-02 },
]
"""


def register_findings(tmp_path: Path, pairs: list[tuple[str, str]]) -> pl.DataFrame:
    """An expired exception covering one direct-member finding per (principal, resource) force
    pair given."""
    path = tmp_path / "exceptions.toml"
    path.write_text(REGISTER)
    reg = load_register(path, orgs=["wmp", "warks"])
    f = pl.DataFrame(
        [
            {
                **dict.fromkeys(FINDINGS_SCHEMA.names()),
                "finding_key": f"cross-org-direct-member|u-{i}|g-{i}",
                "rule_id": "cross-org-direct-member",
                "severity": "high",
                "action": "remove-member",
                "account_id": f"u-{i}",
                "group_id": f"g-{i}",
                "principal_org": p,
                "resource_org": r,
                "status": "open",
            }
            for i, (p, r) in enumerate(pairs)
        ],
        schema={**FINDINGS_SCHEMA, "status": pl.String},
    )
    accounts = pl.DataFrame(
        {"account_id": [f"u-{i}" for i in range(len(pairs))]},
        schema_overrides={"account_id": pl.String},
    ).with_columns(username="account_id", upn=pl.lit(None, pl.String), display_name="account_id")
    groups = pl.DataFrame(
        {"group_id": [f"g-{i}" for i in range(len(pairs))]},
        schema_overrides={"group_id": pl.String},
    ).with_columns(name="group_id")
    as_of = datetime.combine(date(2026, 12, 7), datetime.min.time(), UTC)
    out = apply_exceptions(f, reg, as_of=as_of, accounts=accounts, groups=groups)
    return out.filter(pl.col("rule_id") == "expired-exception")


def test_the_expired_exception_names_its_exception_rule_and_forces(tmp_path: Path) -> None:
    one = register_findings(tmp_path, [("warks", "wmp"), ("warks", "wmp")]).row(0, named=True)
    assert (one["resource_id"], one["right"], one["exception_id"]) == (
        "EX-9",
        "cross-org-direct-member",
        "EX-9",
    )
    assert (one["principal_org"], one["resource_org"]) == ("warks", "wmp")
    assert one["detail"] == (
        "expired on 2026-01-31: 2 finding(s) of cross-org-direct-member open again;"
        " exception EX-9, forces warks → wmp (TSA schedule 2)"
    )
    both = register_findings(tmp_path, [("warks", "wmp"), ("wmp", "warks")]).row(0, named=True)
    assert (both["principal_org"], both["resource_org"]) == (None, None)
    assert both["detail"].endswith("forces warks → wmp, wmp → warks (TSA schedule 2)")
    # the report names the exception and its rule, with the forces, not "— unattributed"
    frame = register_findings(tmp_path, [("warks", "wmp")])
    objs = Objects(pl.DataFrame(), pl.DataFrame(), set())
    [row] = finding_rows(frame, {}, objs)
    assert objs.name(row[F["principal"]]) == "exception EX-9"
    assert objs.name(row[F["resource"]]) == "rule cross-org-direct-member"
    assert (row[F["principal_org"]], row[F["resource_org"]]) == ("warks", "wmp")


def test_an_expired_exception_that_covers_nothing_names_its_objects_forces(
    tmp_path: Path,
) -> None:
    path = tmp_path / "exceptions.toml"
    path.write_text(REGISTER)
    reg = load_register(path, orgs=["wmp", "warks"])
    empty = pl.DataFrame(schema={**FINDINGS_SCHEMA, "status": pl.String})
    accounts = pl.DataFrame(
        {"account_id": ["u-7", "x-1"], "username": ["u-7", "x-1"], "org": ["warks", "wmp"]}
    ).with_columns(upn=pl.lit(None, pl.String), display_name="username")
    groups = pl.DataFrame({"group_id": ["g1", "g2"], "name": ["G-CID", "G-other"],
                           "org": ["wmp", "warks"]})  # fmt: skip
    as_of = datetime(2026, 12, 7, tzinfo=UTC)
    out = apply_exceptions(empty, reg, as_of=as_of, accounts=accounts, groups=groups)
    row = out.row(0, named=True)
    assert (row["rule_id"], row["principal_org"], row["resource_org"]) == (
        "expired-exception",
        "warks",
        "wmp",
    )
    assert row["detail"] == (
        "expired on 2026-01-31: 0 finding(s) of cross-org-direct-member open again;"
        " exception EX-9, forces warks → wmp (TSA schedule 2)"
    )
