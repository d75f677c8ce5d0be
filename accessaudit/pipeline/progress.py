"""How a run reports its stages and the objects collected so far (the command line draws them)."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]

#: ``counts(source_name, unit, objects_so_far)`` while a source is collected: per unit (e.g.
#: accounts, groups, rows), non-decreasing, the last call of a unit giving its final count.
Counts = Callable[[str, str, int], None]

UnitCounts = Callable[[str, int], None]


def noop(_: str) -> None:
    return None


def no_counts(_source: str, _unit: str, _n: int) -> None:
    return None
