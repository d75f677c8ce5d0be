"""The report's first line: a verdict an officer can repeat in a meeting, and dates a person reads.

The state is red while any critical or high finding is open (separation not achieved), amber
while only lower findings are open or the collection was incomplete (not proven), green when a
complete collection found nothing open. The headline names the worst open case, counted: the
principals of one force that reach one resource of the other through the worst open severity
("2 Warwickshire accounts reach Domain Admins (West Mercia)").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from accessaudit.report.objects import KIND, NAME, Objects
from accessaudit.report.rows import F

_FORMAT_DAY = "%-d %b %Y"


def _parse(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def human_time(value: str | None) -> str:
    """``2026-12-07T23:16:26.817956+00:00`` as ``7 Dec 2026, 23:16 UTC`` (text, if not a time)."""
    t = _parse(value)
    if t is None:
        return str(value or "")
    offset = t.utcoffset()
    zone = "UTC" if offset is not None and offset.total_seconds() == 0 else ""
    return f"{t.strftime(_FORMAT_DAY)}, {t.strftime('%H:%M')} {zone}".rstrip()


def human_span(start: str | None, end: str | None) -> str:
    """A collection window: ``7 Dec 2026, 23:16:18 to 23:16:26 UTC (8 s)``."""
    a, b = _parse(start), _parse(end)
    if a is None or b is None:
        return f"{start or ''} to {end or ''}".strip()
    a, b = a.replace(microsecond=0), b.replace(microsecond=0)  # as shown: whole seconds
    seconds = max(0, int((b - a).total_seconds()))
    took = f"{seconds} s" if seconds < 120 else f"{seconds // 60} min {seconds % 60} s"
    if a.date() == b.date():
        window = f"{a.strftime(_FORMAT_DAY)}, {a:%H:%M:%S} to {b:%H:%M:%S}"
    else:
        window = (
            f"{a.strftime(_FORMAT_DAY)}, {a:%H:%M:%S} to {b.strftime(_FORMAT_DAY)}, {b:%H:%M:%S}"
        )
    return f"{window} UTC ({took})"


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 source``, ``4 sources``: never ``source(s)``."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _worst_case(
    rows: Sequence[Sequence[Any]], objs: Objects, severity: str
) -> tuple[int, str, str, str, str] | None:
    """(principals, their kind, their force, resource name, resource force) of the largest
    group of open findings of ``severity`` that share a force and a resource."""
    groups: Counter[tuple[str, str, str, str]] = Counter()
    seen: set[tuple[Any, ...]] = set()
    for f in rows:
        if f[F["status"]] != "open" or f[F["severity"]] != severity:
            continue
        p, r = f[F["principal"]], f[F["resource"]]
        if p is None or r is None:
            continue
        key = (objs.rows[p][KIND], f[F["principal_org"]], objs.rows[r][NAME], f[F["resource_org"]])
        if (p, *key) not in seen:
            seen.add((p, *key))
            groups[key] += 1
    if not groups:
        return None
    (kind, p_org, name, r_org), n = min(groups.items(), key=lambda kv: (-kv[1], kv[0]))
    return n, kind, p_org, name, r_org


def verdict(
    rows: Sequence[Sequence[Any]],
    objs: Objects,
    org_names: Mapping[str, str] | None,
    *,
    complete: bool,
) -> dict[str, Any]:
    """``state`` (red / amber / green), ``headline`` and ``detail`` for the first screen."""
    names = dict(org_names or {})
    open_by = Counter(f[F["severity"]] for f in rows if f[F["status"]] == "open")
    serious = open_by["critical"] + open_by["high"]
    total = sum(open_by.values())

    def counted(severities: Sequence[str]) -> str:
        parts = [plural(open_by[s], f"{s} finding") for s in severities if open_by[s]]
        return " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)

    worst = next((s for s in ("critical", "high", "medium", "low") if open_by[s]), None)
    case = _worst_case(rows, objs, worst) if worst else None
    detail = ""
    if case is not None:
        n, kind, p_org, name, r_org = case
        who = f"{names.get(p_org, p_org)} {kind}{'' if n == 1 else 's'}"
        verb = "reaches" if n == 1 else "reach"
        detail = f"Worst: {n:,} {who} {verb} {name} ({names.get(r_org, r_org)})."
    if serious:
        state, headline = "red", f"Separation not achieved: {counted(('critical', 'high'))} open."
    elif total:
        lower = counted(("medium", "low", "info"))
        state, headline = "amber", f"Separation nearly achieved: {lower} open."
    elif not complete:
        state, headline = (
            "amber",
            ("Separation not proven: no open finding, but a source was not collected completely."),
        )
    else:
        state, headline = (
            "green",
            ("Separation achieved: no open cross-force access in a complete collection."),
        )
    if not complete and total:
        detail = (detail + " " if detail else "") + "The collection was incomplete: more may exist."
    return {"state": state, "headline": headline, "detail": detail}
