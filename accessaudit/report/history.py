"""Finding history between consecutive runs: new / persisting / regressed / resolved / unknown.

Each run stores ``findings_history.parquet`` (:data:`HISTORY_SCHEMA`): one row per finding key
the audit has ever seen, carried forward from the previous run's history, so the report, the
trend and ``accessaudit runs`` are reproducible from stored runs alone (no run is re-analysed).

Statuses of a key in run N, given its row in run N-1's history:

==============  ==============================================================================
``new``         in run N's findings, never seen before
``persisting``  in run N's findings and open (new / persisting / regressed / unknown) in N-1
``regressed``   in run N's findings, but resolved earlier ("resolved" or "closed" in N-1)
``resolved``    open in N-1, absent from run N, and the absence is *proven*: see below
``unknown``     open in N-1, absent from run N, but the absence is not proven; carried until
                proven, with what it waits for in ``unknown_reason`` (:data:`REASONS`)
``closed``      resolved in an earlier run and still absent (kept to recognise a regression)
==============  ==============================================================================

A finding is *resolved* only when its absence is proven: both runs (N-1 and N) are complete (an
incomplete run is never the baseline that resolves anything, and an incomplete run resolves
nothing) **and** every source its objects came from (the ``source`` column of the accounts and
groups it names) was collected completely in both runs, so a source that was dropped from the
configuration never "resolves" its findings either. A key that is ``unknown`` in N stays open: it
becomes ``persisting`` if it is seen again, and ``resolved`` once two consecutive complete runs
no longer see it. So an item closes only when a later collection confirms it gone, and a
closed item that reappears is "regressed", not "new".

Why a key is ``unknown`` (``unknown_reason``), so the report says what it waits for:

* ``incomplete``: run N did not collect every source completely;
* ``confirm``: run N is complete and collected its sources, but run N-1 did not (so the first
  complete run after an incomplete one shows it unknown, and the next complete run resolves it);
* ``not-collected``: run N is complete but does not collect a source its objects came from.

**Open** has one definition everywhere (the summary, ``accessaudit runs``, the trend, the exit
code, the JSON log, the report): the findings of the run that are not accepted under an
exception, plus the ``unknown`` keys (absent but not proven gone: :func:`open_frame`).

Everything here except :func:`previous_history` is pure polars.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import polars as pl

from accessaudit.model import UTC_TIME, _schema
from accessaudit.store.retention import run_started
from accessaudit.store.runs import RunInfo, read_table

HISTORY_TABLE: Final = "findings_history"


class Change(StrEnum):
    NEW = "new"
    PERSISTING = "persisting"
    REGRESSED = "regressed"
    RESOLVED = "resolved"
    UNKNOWN = "unknown"
    CLOSED = "closed"


#: Statuses of a key that is (or may still be) present.
LIVE: Final = (
    Change.NEW.value,
    Change.PERSISTING.value,
    Change.REGRESSED.value,
    Change.UNKNOWN.value,
)
#: Statuses of a key whose absence was proven.
GONE: Final = (Change.RESOLVED.value, Change.CLOSED.value)
#: Display labels (the report and ``accessaudit runs``).
LABELS: Final[Mapping[str, str]] = {
    "new": "new",
    "persisting": "persisting",
    "regressed": "regressed",
    "resolved": "resolved",
    "unknown": "unknown (not proven gone)",
    "closed": "closed earlier",
}


class Reason(StrEnum):
    """Why a key is ``unknown``: what its absence waits for."""

    INCOMPLETE = "incomplete"
    CONFIRM = "confirm"
    NOT_COLLECTED = "not-collected"


#: ``unknown_reason`` -> what the report shows for an unknown finding (what it waits for).
REASONS: Final[Mapping[str, str]] = {
    "incomplete": "absent from an incomplete collection; resolved after two consecutive "
    "complete runs without it",
    "confirm": "absent in this complete run; resolved when the next complete run confirms",
    "not-collected": "its source was not collected in this run; resolved after two consecutive "
    "complete runs that collect it without it",
}
#: One sentence per status, for the report's history section (a reviewer can quote each).
EXPLANATIONS: Final[Mapping[str, str]] = {
    "new": "New: the finding is in this run and was never seen before.",
    "persisting": "Persisting: the finding is in this run and was still open in the previous run.",
    "regressed": "Regressed: the finding is in this run although an earlier run had proven it "
    "gone.",
    "resolved": "Resolved: the finding is not in this run, and its absence is proven because "
    "this run and the previous one both collected every source of its objects completely.",
    "unknown": "Unknown: the finding is not in this run but its absence is not proven yet "
    "(this run or the previous one was incomplete for its sources), so it still counts as open "
    "until two consecutive complete runs no longer see it.",
    "closed": "Closed earlier: an earlier run proved the finding gone and it has not been seen "
    "since; if it comes back it is regressed, not new.",
}
#: How "open" is counted (the report, ``accessaudit runs`` and the terminal summary say it).
OPEN_DEFINITION: Final = (
    "Open findings are the findings of this run not accepted under an exception, plus the "
    "unknown ones (absent but not proven gone)."
)
_ORDER: Final = {c.value: i for i, c in enumerate(Change)}

HISTORY_SCHEMA: Final = _schema(
    {
        "finding_key": pl.String,
        "rule_id": pl.String,
        "severity": pl.String,
        "status": pl.String,  # Change
        "finding_status": pl.String,  # open / accepted in this run; null when absent
        "first_seen": UTC_TIME,  # start of the first run that saw the key
        "first_seen_run": pl.String,
        "last_seen": UTC_TIME,  # start of the last run that saw the key
        "last_seen_run": pl.String,
        "resolved_run": pl.String,  # the run that last proved it gone (null if never)
        "sources": pl.List(pl.String),  # sources of the objects it names (last seen)
        "account_id": pl.String,  # the objects it names (last seen), for the report
        "group_id": pl.String,
        "member_group_id": pl.String,
        "unknown_reason": pl.String,  # Reason, for status "unknown" (null otherwise)
    }
)

#: Object-id columns of a finding, looked up in accounts / groups for its sources.
_ID_COLUMNS: Final = ("account_id", "group_id", "member_group_id", "via_group_id", "resource_id")


@dataclass(frozen=True)
class RunState:
    """What the history needs to know about one run."""

    run_id: str
    started: datetime
    complete: bool
    #: source (e.g. ``ad:alliance.local``) -> collected completely in this run
    sources: Mapping[str, bool] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> RunState:
        complete: dict[str, bool] = {}
        for s in manifest.get("sources") or []:
            name = str(s.get("source") or s.get("name"))
            complete[name] = complete.get(name, True) and s.get("complete") is True
        run_id = str(manifest.get("run_id"))
        return cls(
            run_id=run_id,
            started=run_started(manifest),
            complete=manifest.get("complete") is True,
            sources=complete,
        )

    def complete_sources(self) -> list[str]:
        return sorted(s for s, ok in self.sources.items() if ok)


def finding_sources(
    findings: pl.DataFrame, accounts: pl.DataFrame, groups: pl.DataFrame
) -> pl.DataFrame:
    """``finding_key`` -> sorted unique ``sources`` of the accounts and groups it names."""
    ids = [c for c in _ID_COLUMNS if c in findings.columns]
    owners = pl.concat(
        [
            accounts.select(pl.col("account_id").alias("_id"), "source"),
            groups.select(pl.col("group_id").alias("_id"), "source"),
        ]
    ).unique("_id", keep="first")
    keys = findings.select("finding_key")
    if not ids:
        return keys.with_columns(sources=pl.lit([], pl.List(pl.String)))
    exploded = (
        findings.select("finding_key", pl.concat_list([pl.col(c) for c in ids]).alias("_id"))
        .explode("_id")
        .drop_nulls("_id")
        .join(owners, on="_id", how="inner")
        .group_by("finding_key")
        .agg(pl.col("source").unique().sort().alias("sources"))
    )
    return keys.join(exploded, on="finding_key", how="left").with_columns(
        pl.col("sources").fill_null(pl.lit([], pl.List(pl.String)))
    )


def _all_in(column: str, allowed: list[str]) -> pl.Expr:
    return (
        pl.col(column)
        .fill_null(pl.lit([], pl.List(pl.String)))
        .list.eval(pl.element().is_in(allowed))
        .list.all()
    )


def _current_rows(findings: pl.DataFrame, sources: pl.DataFrame) -> pl.DataFrame:
    """Run N's findings, one per key, with the objects and sources they name."""
    status_col = pl.col("status") if "status" in findings.columns else pl.lit("open")
    objects = [
        pl.col(c) if c in findings.columns else pl.lit(None, pl.String).alias(c)
        for c in ("account_id", "group_id", "member_group_id")
    ]
    return (
        findings.select(
            "finding_key",
            "rule_id",
            "severity",
            status_col.alias("finding_status"),
            *objects,
        )
        .unique("finding_key", keep="first", maintain_order=True)
        .join(sources, on="finding_key", how="left")
        .with_columns(_cur=pl.lit(True))
    )


def _previous_rows(previous: pl.DataFrame | None) -> pl.DataFrame:
    """Run N-1's history, its columns prefixed ``p_`` (empty for the first run)."""
    return (previous if previous is not None else pl.DataFrame(schema=HISTORY_SCHEMA)).select(
        "finding_key",
        p_rule="rule_id",
        p_severity="severity",
        p_status="status",
        p_first="first_seen",
        p_first_run="first_seen_run",
        p_last="last_seen",
        p_last_run="last_seen_run",
        p_resolved="resolved_run",
        p_sources="sources",
        p_account="account_id",
        p_group="group_id",
        p_member_group="member_group_id",
        _prev=pl.lit(True),
    )


def _proven(previous_run: RunState | None, current: RunState) -> pl.Expr:
    """Whether a key's absence is proven: both runs complete, and every source of its objects
    collected completely in both."""
    both_complete = previous_run is not None and previous_run.complete and current.complete
    if both_complete and previous_run is not None:
        return _all_in("p_sources", current.complete_sources()) & _all_in(
            "p_sources", previous_run.complete_sources()
        )
    return pl.lit(both_complete)


def _reason(current: RunState) -> pl.Expr:
    """What an ``unknown`` key waits for (:class:`Reason`), given that its absence in run N is
    not proven: run N's own incompleteness, a source run N did not collect, or else run N-1."""
    if not current.complete:
        return pl.lit(Reason.INCOMPLETE.value)
    return (
        pl.when(_all_in("p_sources", sorted(current.sources)))
        .then(pl.lit(Reason.CONFIRM.value))
        .otherwise(pl.lit(Reason.NOT_COLLECTED.value))
    )


def _change(proven: pl.Expr) -> pl.Expr:
    """A key's status in run N (:class:`Change`), from whether run N and N-1 saw it."""
    seen, known = pl.col("_cur"), pl.col("_prev")
    live = pl.col("p_status").is_in(LIVE)
    return (
        pl.when(seen & ~known)
        .then(pl.lit(Change.NEW.value))
        .when(seen & live)
        .then(pl.lit(Change.PERSISTING.value))
        .when(seen)
        .then(pl.lit(Change.REGRESSED.value))
        .when(live & proven)
        .then(pl.lit(Change.RESOLVED.value))
        .when(live)
        .then(pl.lit(Change.UNKNOWN.value))
        .otherwise(pl.lit(Change.CLOSED.value))
    )


def update_history(
    previous: pl.DataFrame | None,
    previous_run: RunState | None,
    findings: pl.DataFrame,
    sources: pl.DataFrame,
    current: RunState,
) -> pl.DataFrame:
    """Run N's history from run N-1's history and run N's findings (pure).

    ``previous`` is N-1's history (None for the first run); ``sources`` is
    :func:`finding_sources` of run N's findings.
    """
    j = (
        _current_rows(findings, sources)
        .join(_previous_rows(previous), on="finding_key", how="full", coalesce=True)
        .with_columns(pl.col("_cur").fill_null(False), pl.col("_prev").fill_null(False))
    )
    seen = pl.col("_cur")
    now = pl.lit(current.started, UTC_TIME)
    run_id = pl.lit(current.run_id)
    out = j.with_columns(status=_change(_proven(previous_run, current))).select(
        "finding_key",
        pl.coalesce("rule_id", "p_rule").alias("rule_id"),
        pl.coalesce("severity", "p_severity").alias("severity"),
        "status",
        pl.when(seen).then(pl.col("finding_status")).alias("finding_status"),
        pl.coalesce("p_first", now).alias("first_seen"),
        pl.coalesce("p_first_run", run_id).alias("first_seen_run"),
        pl.when(seen).then(now).otherwise(pl.col("p_last")).alias("last_seen"),
        pl.when(seen).then(run_id).otherwise(pl.col("p_last_run")).alias("last_seen_run"),
        pl.when(pl.col("status") == Change.RESOLVED.value)
        .then(run_id)
        .otherwise(pl.col("p_resolved"))
        .alias("resolved_run"),
        pl.when(seen).then(pl.col("sources")).otherwise(pl.col("p_sources")).alias("sources"),
        *[
            pl.when(seen).then(pl.col(c)).otherwise(pl.col(p)).alias(c)
            for c, p in (
                ("account_id", "p_account"),
                ("group_id", "p_group"),
                ("member_group_id", "p_member_group"),
            )
        ],
        pl.when(pl.col("status") == Change.UNKNOWN.value)
        .then(_reason(current))
        .otherwise(pl.lit(None, pl.String))
        .alias("unknown_reason"),
    )
    return (
        out.with_columns(_o=pl.col("status").replace_strict(_ORDER, return_dtype=pl.Int8))
        .sort("_o", "finding_key")
        .drop("_o")
        .select([pl.col(n).cast(t) for n, t in HISTORY_SCHEMA.items()])
    )


def baseline_history(findings: pl.DataFrame, sources: pl.DataFrame, run: RunState) -> pl.DataFrame:
    """A history for a run stored before histories existed: every finding seen in that run."""
    return update_history(None, None, findings, sources, run).with_columns(
        status=pl.lit(Change.PERSISTING.value)
    )


def previous_history(run: RunInfo | None) -> pl.DataFrame | None:
    """The stored history of ``run`` (rebuilt from its findings if it predates histories)."""
    if run is None:
        return None
    if (run.path / f"{HISTORY_TABLE}.parquet").is_file():
        return read_table(run, HISTORY_TABLE)
    findings = read_table(run, "findings")
    sources = finding_sources(findings, read_table(run, "accounts"), read_table(run, "groups"))
    return baseline_history(findings, sources, RunState.from_manifest(run.manifest))


def change_counts(history: pl.DataFrame | None) -> dict[str, int]:
    """Rows per status (every status present, zero if none)."""
    counts = {c.value: 0 for c in Change}
    if history is not None:
        for status, n in history.group_by("status").len().iter_rows():
            counts[str(status)] = int(n)
    return counts


def history_for_run(
    previous: RunInfo | None,
    findings: pl.DataFrame,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    manifest: Mapping[str, Any],
) -> pl.DataFrame:
    """The history of the run being written (``manifest``: its run_id, started, complete and
    sources) after the stored run ``previous`` (None for the first run)."""
    return update_history(
        previous_history(previous),
        RunState.from_manifest(previous.manifest) if previous is not None else None,
        findings,
        finding_sources(findings, accounts, groups),
        RunState.from_manifest(manifest),
    )


def with_history(findings: pl.DataFrame, history: pl.DataFrame) -> pl.DataFrame:
    """``findings`` plus ``history_status``, ``first_seen`` and ``last_seen`` (for exports)."""
    return findings.join(
        history.select(
            "finding_key", pl.col("status").alias("history_status"), "first_seen", "last_seen"
        ),
        on="finding_key",
        how="left",
    )


def unknown_rows(history: pl.DataFrame | None) -> pl.DataFrame:
    """The keys of ``history`` that are absent but not proven gone (``unknown``): they count as
    open (``rule_id``, ``severity``, ``finding_key``)."""
    if history is None or "status" not in history.columns:
        return pl.DataFrame(schema=dict.fromkeys(("finding_key", "rule_id", "severity"), pl.String))
    return history.filter(pl.col("status") == Change.UNKNOWN.value).select(
        "finding_key", "rule_id", "severity"
    )


def open_frame(findings: pl.DataFrame, history: pl.DataFrame | None) -> pl.DataFrame:
    """Every open finding of a run by the one definition of "open": the run's findings not
    accepted under an exception, plus the unknown keys of its history (``finding_key``,
    ``rule_id``, ``severity``, ``unknown``)."""
    status = pl.col("status") if "status" in findings.columns else pl.lit("open")
    seen = findings.filter(status == "open").select(
        pl.col("finding_key").cast(pl.String),
        pl.col("rule_id").cast(pl.String),
        pl.col("severity").cast(pl.String),
        unknown=pl.lit(False),
    )
    return pl.concat([seen, unknown_rows(history).with_columns(unknown=pl.lit(True))])
