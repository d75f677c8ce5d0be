"""Pure: the report's pictures as plain data the templates draw (tables and inline SVG).

* :func:`force_matrix` — who reaches whose resources: principal's force (rows) by resource's
  force (columns), each cell the open findings and the worst severity among them; a cell's
  shade grows with its count (five fixed steps, never a colour from data).
* :func:`actions_by_force` — the remediation actions by owning force, one bar per force split
  by state: the team's tracking status where the worklist was imported
  (:mod:`accessaudit.report.tracking`), else whether ``apply`` executes the action or a person
  must; with the severity mix.
* :func:`sparkline` — a rule's open findings over the last runs as an SVG polyline.
* :func:`rule_results` — every rule as run, with its result: *passed* (checked, nothing
  found), *accepted* (everything found is under an exception) or *open* findings. A rule with
  zero findings is evidence too.

Nothing here reads a file or the clock; ``F`` / ``A`` index the compact finding/action rows of
:mod:`accessaudit.report.rows`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

from accessaudit.report.display import NO_ORG, SEVERITIES, severity_class, severity_rank
from accessaudit.report.rows import A, F

#: Heat steps of a matrix cell: a cell holding at least this share of the largest cell.
HEAT_STEPS: Final = (0.0, 0.05, 0.2, 0.45, 0.75)
#: The column of findings that reach no resource (a review, not access).
NO_RESOURCE: Final = "no resource"
#: Width and height of a sparkline, in SVG units.
SPARK_W: Final = 96
SPARK_H: Final = 20
#: The state of an action nobody has tracked yet, and of one apply can execute / cannot.
NOT_STARTED: Final = "not started"


def _heat(n: int, top: int) -> int:
    if n <= 0 or top <= 0:
        return 0
    share = n / top
    return max(i for i, step in enumerate(HEAT_STEPS) if share >= step) or 1


def force_matrix(
    finding_rows: Sequence[Sequence[Any]], orgs: Sequence[str], real: Sequence[str] = ()
) -> dict[str, Any]:
    """Open findings by principal's force (rows) and resource's force (columns), in the order
    of ``orgs`` (others after them); a cell is ``cross`` when its two forces are two of the
    ``real`` organisations (not shared, not unattributed)."""
    orgs = list(dict.fromkeys(orgs))
    counts: Counter[tuple[str, str]] = Counter()
    worst: dict[tuple[str, str], str] = {}
    for f in finding_rows:
        if f[F["status"]] != "open":
            continue
        key = (f[F["principal_org"]] or NO_ORG, f[F["resource_org"]] or NO_RESOURCE)
        counts[key] += 1
        sev = f[F["severity"]]
        if key not in worst or severity_rank(sev) > severity_rank(worst[key]):
            worst[key] = sev
    present_rows = {p for p, _ in counts}
    present_cols = {r for _, r in counts}
    order = [o for o in orgs if o in present_rows | present_cols]
    rows = [o for o in order if o in present_rows] + sorted(present_rows - set(order))
    cols = [o for o in order if o in present_cols] + sorted(
        present_cols - set(order) - {NO_RESOURCE}
    )
    if NO_RESOURCE in present_cols:
        cols.append(NO_RESOURCE)
    top = max(counts.values(), default=0)
    return {
        "rows": rows,
        "cols": cols,
        "cells": [
            [
                {
                    "n": counts[(p, r)],
                    "heat": _heat(counts[(p, r)], top),
                    "worst": worst.get((p, r), ""),
                    "sev_class": severity_class(worst.get((p, r))),
                    "cross": p != r and p in real and r in real,
                }
                for r in cols
            ]
            for p in rows
        ],
        "total": sum(counts.values()),
    }


def _state(apply: str | None, tracked: Mapping[str, str], action_id: str) -> str:
    status = (tracked.get(action_id) or "").strip().lower()
    if status:
        return status
    return "apply executes it" if not apply else "left to a person"


def actions_by_force(
    action_rows: Sequence[Sequence[Any]], tracked: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Per owning force: its actions by state (bar segments, widths in % of the largest
    force's count) and by severity."""
    tracked = tracked or {}
    by_state: dict[str, Counter[str]] = {}
    by_sev: dict[str, Counter[str]] = {}
    resolves: Counter[str] = Counter()
    for a in action_rows:
        org = a[A["owning_org"]] or NO_ORG
        state = _state(a[A["apply"]], tracked, a[A["action_id"]])
        by_state.setdefault(org, Counter())[state] += 1
        by_sev.setdefault(org, Counter())[a[A["severity"]]] += 1
        resolves[org] += a[A["resolves"]] or 0
    states = sorted({s for c in by_state.values() for s in c}, key=_state_order)
    top = max((sum(c.values()) for c in by_state.values()), default=0)
    forces = []
    for org in sorted(by_state, key=lambda o: (-sum(by_state[o].values()), o)):
        total = sum(by_state[org].values())
        x = 0.0
        segments = []
        for s in states:
            if by_state[org][s]:
                width = round(100 * by_state[org][s] / top, 2)
                segments.append(
                    {
                        "state": s,
                        "n": by_state[org][s],
                        "cls": f"state-{states.index(s) % 6}",
                        "x": f"{x:.2f}",
                        "width": f"{width:.2f}",
                    }
                )
                x += width
        forces.append(
            {
                "org": org,
                "total": total,
                "resolves": resolves[org],
                "segments": segments,
                "severity": [
                    {"severity": s, "n": by_sev[org][s], "sev_class": severity_class(s)}
                    for s in SEVERITIES
                    if by_sev[org][s]
                ],
            }
        )
    return {
        "forces": forces,
        "states": [{"state": s, "cls": f"state-{i % 6}"} for i, s in enumerate(states)],
        "tracked": bool(tracked),
    }


def _state_order(state: str) -> tuple[int, str]:
    fixed = ("apply executes it", "left to a person", NOT_STARTED, "in progress", "done")
    return (fixed.index(state), "") if state in fixed else (len(fixed), state)


def sparkline(values: Sequence[int | None]) -> dict[str, Any]:
    """Points of a polyline over ``values`` (oldest first; None: no count), and the last."""
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    top = max((v for _, v in known), default=0)
    step = SPARK_W / max(1, len(values) - 1)
    pts = [
        (round(i * step, 1), round(SPARK_H - 2 - (SPARK_H - 4) * (v / top if top else 0), 1))
        for i, v in known
    ]
    return {
        "points": " ".join(f"{x},{y}" for x, y in pts),
        "last": {"x": str(pts[-1][0]), "y": str(pts[-1][1])} if pts else None,
        "width": SPARK_W,
        "height": SPARK_H,
        "single": len(pts) == 1,
    }


def sparklines(by_rule: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Rule id -> the sparkline of its open findings in the trend's findings-by-rule rows."""
    return {
        row["rule_id"]: sparkline([c.get("open") for c in row.get("cells", [])])
        for row in by_rule.get("rows", [])
    }


def rule_results(
    docs: Mapping[str, Mapping[str, Any]], finding_rows: Sequence[Sequence[Any]]
) -> dict[str, Any]:
    """Every rule as run with its result (see the module docstring), worst first."""
    opened = Counter(f[F["rule_id"]] for f in finding_rows if f[F["status"]] == "open")
    accepted = Counter(f[F["rule_id"]] for f in finding_rows if f[F["status"]] != "open")
    rules = []
    for rid, d in docs.items():
        n_open, n_acc = opened[rid], accepted[rid]
        result = "open" if n_open else "accepted" if n_acc else "passed"
        rules.append({**d, "open": n_open, "accepted": n_acc, "result": result})
    return {
        "rules": rules,
        "passed": [r for r in rules if r["result"] == "passed"],
        "failed": [r for r in rules if r["result"] != "passed"],
    }
