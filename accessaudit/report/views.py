"""Pure: the parts of the report context for the three views that are not one run's findings.

* officers: change since the last run (from the run's stored ``findings_history``) and the
  trend (from :mod:`accessaudit.report.trend`);
* compliance reviewers: the chain to the previous run, the rules as run and the exceptions
  register as it stood (:mod:`accessaudit.report.evidence`), pseudonymisation;
* the identity team: the export links, relative to where the report is written.

:func:`accessaudit.report.context.build_context` calls :func:`views_context` and merges the
result into the context; like it, nothing here reads a file or the clock. Finding rows and
object names come in through callbacks, so this module does not depend on the context's
internals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

import polars as pl

from accessaudit.model import SEVERITY_RANK, Severity
from accessaudit.report.evidence import RunRule, exceptions_context, rules_context
from accessaudit.report.history import EXPLANATIONS, LABELS, OPEN_DEFINITION, REASONS, Change
from accessaudit.store.runs import ATTRIBUTION_FILE, EXCEPTIONS_FILE, RULES_FILE

#: Items listed per change kind in the officers' view.
CHANGE_ITEMS: Final = 10
#: Resolved / unknown findings listed (the full list is history.csv).
GONE_ITEMS: Final = 20
#: Run records in the run folder that are not downloads for the worklist.
RECORD_FILES: Final = frozenset({"manifest.json", RULES_FILE, EXCEPTIONS_FILE, ATTRIBUTION_FILE})
#: Chip classes of the systems of record (groups' ``mastered``): a fixed set, never from data.
SYSTEM_CLASS: Final = {
    "ad": "sys-ad",
    "cloud": "sys-cloud",
    "app": "sys-app",
    "register": "sys-register",
}
_RANK: Final = {s.value: SEVERITY_RANK[s] for s in Severity}
_SHOWN_CHANGES: Final = (
    Change.NEW.value,
    Change.REGRESSED.value,
    Change.RESOLVED.value,
    Change.UNKNOWN.value,
    Change.PERSISTING.value,
)


def change_map(history: pl.DataFrame | None) -> dict[str, tuple[str, str]]:
    """finding_key -> (history status, first-seen date) for the findings present in the run."""
    if history is None or history.is_empty():
        return {}
    present = history.filter(
        pl.col("status").is_in([Change.NEW.value, Change.PERSISTING.value, Change.REGRESSED.value])
    )
    first = present.get_column("first_seen").dt.date().cast(pl.String).fill_null("")
    return dict(
        zip(
            present.get_column("finding_key").to_list(),
            zip(present.get_column("status").to_list(), first.to_list(), strict=True),
            strict=True,
        )
    )


def gone_rows(history: pl.DataFrame | None, limit: int = GONE_ITEMS) -> pl.DataFrame:
    """Resolved and unknown findings of this run, worst first (at most ``limit`` of each)."""
    if history is None or history.is_empty():
        return pl.DataFrame()
    rows = history.filter(pl.col("status").is_in([Change.RESOLVED.value, Change.UNKNOWN.value]))
    return (
        rows.with_columns(_r=pl.col("severity").replace_strict(_RANK, default=-1))
        .sort("status", "_r", "rule_id", "finding_key", descending=[False, True, False, False])
        .group_by("status", maintain_order=True)
        .head(limit)
        .drop("_r")
    )


def gone_ids(gone: pl.DataFrame) -> set[str]:
    """Object ids the resolved/unknown rows name (the context must know their names)."""
    ids: set[str] = set()
    for c in ("account_id", "group_id", "member_group_id"):
        if c in gone.columns:
            ids.update(gone.get_column(c).drop_nulls().to_list())
    return ids


#: What an unknown finding of a history stored before ``unknown_reason`` waits for.
_LEGACY_REASON: Final = "absent from an incomplete collection (or after one)"


def _waits_for(row: Mapping[str, Any]) -> str:
    """What a resolved / unknown row of the history waits for ("" once resolved)."""
    if row["status"] != Change.UNKNOWN.value:
        return ""
    return REASONS.get(str(row.get("unknown_reason")), _LEGACY_REASON)


def _reason_counts(history: pl.DataFrame) -> list[tuple[str, int]]:
    """(unknown_reason, keys) of the unknown keys, in :data:`REASONS` order."""
    if "unknown_reason" not in history.columns:
        return []
    unknown = history.filter(pl.col("status") == Change.UNKNOWN.value)
    counts = dict(unknown.group_by("unknown_reason").len().iter_rows())
    return [(k, int(counts[k])) for k in REASONS if counts.get(k)]


def _changes(
    history: pl.DataFrame | None,
    gone: pl.DataFrame,
    finding_rows: Sequence[Sequence[Any]],
    col: Mapping[str, int],
    view: Callable[[Sequence[Any]], dict[str, Any]],
    name: Callable[[str | None], str],
    sev_class: Callable[[str | None], str],
    manifest: Mapping[str, Any],
) -> dict[str, Any]:
    if history is None:
        return {"available": False}
    counts = {c.value: 0 for c in Change}
    for status, n in history.group_by("status").len().iter_rows():
        counts[str(status)] = int(n)
    fresh = [
        f
        for f in finding_rows
        if f[col["change"]] in (Change.NEW.value, Change.REGRESSED.value)
        and f[col["status"]] == "open"
    ]
    # rows are sorted open first, worst first: regressions before new within a severity
    fresh.sort(key=lambda f: (-_RANK.get(f[col["severity"]], -1), f[col["change"]] != "regressed"))
    gone_items = [
        {
            "status": r["status"],
            "label": LABELS[r["status"]],
            "waits_for": _waits_for(r),
            "rule_id": r["rule_id"] or "",
            "severity": r["severity"] or "",
            "sev_class": sev_class(r["severity"]),
            "principal": name(r["account_id"] or r["member_group_id"]),
            "resource": name(r["group_id"]),
            "finding_key": r["finding_key"],
            "last_seen_run": r["last_seen_run"] or "",
            "first_seen_run": r["first_seen_run"] or "",
        }
        for r in gone.iter_rows(named=True)
    ]
    return {
        "available": True,
        "previous_run": str(manifest.get("previous_run") or ""),
        "counts": [{"status": s, "label": LABELS[s], "count": counts[s]} for s in _SHOWN_CHANGES],
        "explanations": [
            {"status": c.value, "label": LABELS[c.value], "text": EXPLANATIONS[c.value]}
            for c in Change
        ],
        "reasons": [
            {"reason": k, "count": n, "text": REASONS[k]} for k, n in _reason_counts(history)
        ],
        "open_definition": OPEN_DEFINITION,
        "by_status": counts,
        "fresh_total": len(fresh),
        "fresh": [view(f) for f in fresh[:CHANGE_ITEMS]],
        "resolved": [g for g in gone_items if g["status"] == Change.RESOLVED.value],
        "unknown": [g for g in gone_items if g["status"] == Change.UNKNOWN.value],
    }


def views_context(
    *,
    manifest: Mapping[str, Any],
    findings: pl.DataFrame,
    history: pl.DataFrame | None,
    gone: pl.DataFrame,
    trend: Mapping[str, Any] | None,
    finding_rows: Sequence[Sequence[Any]],
    columns: Mapping[str, int],
    view: Callable[[Sequence[Any]], dict[str, Any]],
    name: Callable[[str | None], str],
    sev_class: Callable[[str | None], str],
    text: Callable[[Any], str],
    run_rules: list[RunRule] | None = None,
    current_rules: Sequence[Any] = (),
    register: Mapping[str, Any] | None = None,
    exports_href: str | None = "",
    exports_dir: str = "",
) -> dict[str, Any]:
    """Context keys for the officers' and reviewers' views (merged into build_context's).

    ``run_rules``: the run's ``rules.json``; ``current_rules``: the catalogue the report is
    rendered with (compared with it); ``register``: the run's ``exceptions.json``;
    ``exports_href``: the exports' URL prefix relative to the report (None: not linkable,
    ``exports_dir`` names their folder instead, or nothing when they must not be linked).
    """
    pseudo = manifest.get("pseudonymised")
    accepted = [view(f) for f in finding_rows if f[columns["status"]] != "open"]
    files = [
        text(name)
        for name in sorted(manifest.get("files") or {})
        if name.endswith((".csv", ".xlsx", ".json")) and name not in RECORD_FILES
    ]
    return {
        "changes": _changes(history, gone, finding_rows, columns, view, name, sev_class, manifest),
        "trend": dict(trend or {}),
        "chain": {
            "previous_run": text(manifest.get("previous_run") or ""),
            "previous_manifest_sha256": text(manifest.get("previous_manifest_sha256") or ""),
        },
        "rules_as_run": rules_context(run_rules, current_rules, manifest, text),
        "exceptions": exceptions_context(register, manifest, findings, accepted, text),
        "system_class": dict(SYSTEM_CLASS),
        "downloads": {
            "files": [
                {"name": n, "href": None if exports_href is None else exports_href + quote(n)}
                for n in files
            ],
            "linked": exports_href is not None,
            "beside": exports_href == "",
            "folder": text(exports_dir),
        },
        "pseudonymised": text(pseudo.get("key_id", "")) if isinstance(pseudo, Mapping) else "",
    }
