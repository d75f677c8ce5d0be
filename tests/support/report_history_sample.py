"""A history and a trend for the small hand-made run of :mod:`support.report_sample`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

from accessaudit.report.history import HISTORY_SCHEMA
from accessaudit.report.trend import point, trend_context
from support.report_sample import MANIFEST, make_context

T0 = datetime(2026, 11, 5, 5, tzinfo=UTC)
TARGET = date(2027, 3, 31)

# (finding_key, status, severity, account_id, group_id) -- the first five are in the findings
HISTORY_ROWS = [
    ("cross-privileged:a1:g2", "regressed", "critical", "a1", "g2"),
    ("cross-member:a3:g1", "new", "high", "a3", "g1"),
    ("cross-member:a4:g4", "persisting", "high", "a4", "g4"),
    ("nested-cross:g3:g2", "persisting", "medium", None, "g2"),
    ("cross-member:a2:g5", "new", "high", "a2", "g5"),
    ("attribution-conflict:a4", "persisting", "low", "a4", None),
    ("cross-member:a2:g1", "resolved", "high", "a2", "g1"),
    ("cross-member:a1:g4", "unknown", "high", "a1", "g4"),
    ("cross-member:a3:g4", "closed", "high", "a3", "g4"),
]


def history() -> pl.DataFrame:
    rows = []
    for key, status, sev, account, group in HISTORY_ROWS:
        gone = status in ("resolved", "unknown", "closed")
        rows.append(
            {
                "finding_key": key,
                "rule_id": key.split(":")[0],
                "severity": sev,
                "status": status,
                "finding_status": None if gone else "open",
                "first_seen": T0 if status != "new" else T0 + timedelta(days=14),
                "first_seen_run": "20261105T050000Z",
                "last_seen": T0 + timedelta(days=7 if gone else 14),
                "last_seen_run": "20261112T050000Z" if gone else "20261119T050000Z",
                "resolved_run": "20261119T050000Z" if status == "resolved" else None,
                "sources": ["ad:alliance.local"],
                "account_id": account,
                "group_id": group,
                "member_group_id": None,
                "unknown_reason": "confirm" if status == "unknown" else None,
            }
        )
    return pl.DataFrame(rows, schema=HISTORY_SCHEMA, orient="row")


def trend_manifests() -> list[dict[str, Any]]:
    """Three runs a week apart (the last is MANIFEST's run), open 9 -> 7 -> 5."""
    out = []
    for i, (n, complete) in enumerate([(9, True), (7, True), (5, True)]):
        started = T0 + timedelta(days=7 * i)
        out.append(
            {
                "run_id": started.strftime("%Y%m%dT%H%M%SZ"),
                "started": started.isoformat(),
                "complete": complete,
                "summary": {
                    "findings": n + 1,
                    "open": n,
                    "accepted": 1,
                    "open_by_severity": {"critical": 1, "high": n - 1},
                    "accepted_by_severity": {"high": 1},
                    "open_by_rule": {"cross-member": n - 1, "cross-privileged": 1},
                    "changes": {"new": 2, "resolved": 4 if i else 0, "regressed": 1},
                },
            }
        )
    return out


def history_context(**kw: Any) -> dict[str, Any]:
    points = [p for m in trend_manifests() if (p := point(m)) is not None]
    manifest = dict(
        MANIFEST,
        previous_run="20261112T050000Z",
        previous_manifest_sha256="e" * 64,
        rules={"cross-member": {"version": "3", "sha256": "f" * 64}},
    )
    return make_context(
        manifest=kw.pop("manifest", manifest),
        history=kw.pop("history", history()),
        trend=kw.pop("trend", trend_context(points, TARGET)),
        **kw,
    )
