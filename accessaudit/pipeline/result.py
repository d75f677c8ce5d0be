"""What a finished run returns to its caller (the command line, the audit and job logs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from accessaudit.errors import ExitCode
from accessaudit.model import SEVERITY_RANK, Severity
from accessaudit.pipeline.analyse import Analysis
from accessaudit.store.runs import RunInfo


@dataclass
class RunResult:
    """A stored run with its analysis, the report written (if any) and the runs pruned after it."""

    run: RunInfo
    analysis: Analysis
    report: Path | None
    pruned: list[str] = field(default_factory=list)  # runs deleted by retention afterwards

    @property
    def complete(self) -> bool:
        return self.run.complete

    def open_at_or_above(self, severity: Severity) -> int:
        """Open findings at or above ``severity``, by the one definition of open (the run's
        findings not accepted, plus the unknown ones: the summary's ``open_by_severity``)."""
        worse = [s.value for s, r in SEVERITY_RANK.items() if r >= SEVERITY_RANK[severity]]
        counts = (self.run.manifest.get("summary") or {}).get("open_by_severity")
        if counts is None:  # a result without a summary: the findings alone
            f = self.analysis.findings.filter(pl.col("status") == "open")
            return int(f.filter(pl.col("severity").is_in(worse)).height)
        return sum(int(counts.get(s, 0)) for s in worse)

    def exit_code(self, fail_on: str) -> ExitCode:
        """3 when a source was incomplete, else 1 when open findings at or above ``fail_on``
        exist ('none' never fails), else 0 (the documented exit codes of ``run`` and ``demo``)."""
        if not self.complete:
            return ExitCode.INCOMPLETE
        if fail_on != "none" and self.open_at_or_above(Severity(fail_on)):
            return ExitCode.FINDINGS
        return ExitCode.OK

    def incomplete_units(self) -> str:
        """'source: unit (why), ...' for the units the run could not prove complete (first
        three per source)."""
        parts = []
        for src in self.run.manifest["sources"]:
            bad = [u for u in src["units"] if not u["complete"]]
            if bad:
                more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
                units = ", ".join(f"{u['name']} ({u['detail']})" for u in bad[:3])
                parts.append(f"{src['name']}: {units}{more}")
        return "; ".join(parts) or "see the manifest"
