"""What ``accessaudit survey`` prints: per kind of object the totals, the coverage by signal, the
buckets largest access at risk first, the OU tree (collapsed where one organisation owns all
below), the conflicts to review and the proposals. Every figure comes from the survey's
document, the one ``--json`` writes; directory text goes through :func:`safe`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from accessaudit.cli.output import safe

#: Buckets shown per kind (the JSON has them all).
TOP_BUCKETS = 25
TOP_OUS = 40


def _orgs(row: Mapping[str, Any]) -> str:
    return ", ".join(f"{safe(o['org'])} {o['objects']}" for o in row["orgs"]) or "-"


def _value(row: Mapping[str, Any]) -> str:
    return "(none)" if row["value"] is None else safe(row["value"])


def _totals(console: Console, kind: str, doc: Mapping[str, Any]) -> None:
    t, a = doc["totals"], doc["after_proposals"]
    console.print(
        f"{kind}: {t['objects']} ({t['with_access']} holding access): attributed "
        f"{t['attributed']}, shared {t['shared']}, unattributed {t['unattributed']} "
        f"({t['unattributed_with_access']} holding access), conflicting {t['conflicting']} "
        f"({t['conflicting_with_access']} holding access)"
    )
    if doc["proposals"]:
        console.print(
            f"  with the {len(doc['proposals'])} proposal(s): unattributed "
            f"{a['unattributed']} ({a['unattributed_with_access']} holding access), "
            f"conflicting {a['conflicting']} ({a['conflicting_with_access']} holding access)"
        )


def _coverage(console: Console, kind: str, doc: Mapping[str, Any]) -> None:
    table = Table(title=f"{kind}: attribution coverage by signal", title_justify="left")
    for col in ("signal", "fires on", "decides", "fires (holding access)", "decides (access)"):
        table.add_column(col, justify="left" if col == "signal" else "right")
    for r in doc["coverage"]:
        table.add_row(
            safe(r["signal"]),
            str(r["fires"]),
            str(r["decides"]),
            str(r["fires_with_access"]),
            str(r["decides_with_access"]),
        )
    console.print(table)


def _buckets(console: Console, kind: str, doc: Mapping[str, Any]) -> None:
    table = Table(
        title=f"{kind}: buckets, largest access at risk first (top {TOP_BUCKETS})",
        title_justify="left",
    )
    for col in ("signal", "value", "objects", "organisations", "unattr.", "confl.",
                "memberships", "privileged", "grants", "at risk"):  # fmt: skip
        table.add_column(
            col, justify="left" if col in ("signal", "value", "organisations") else "right"
        )
    rows = [r for r in doc["buckets"] if r["signal"] != "ou" or not r["collapsed"]]
    for r in rows[:TOP_BUCKETS]:
        table.add_row(
            r["signal"],
            _value(r),
            str(r["objects"]),
            _orgs(r),
            str(r["unattributed"]),
            str(r["conflicting"]),
            str(r["memberships"]),
            str(r["privileged"]),
            str(r["grants"]),
            str(r["access_at_risk"]),
        )
    console.print(table)


def _tree(console: Console, kind: str, doc: Mapping[str, Any]) -> None:
    ous = [r for r in doc["buckets"] if r["signal"] == "ou" and not r["collapsed"]]
    ous.sort(key=lambda r: list(reversed(r["key"].split(","))))
    console.print(f"{kind}: OU tree (collapsed where one organisation owns all below)")
    for r in ous[:TOP_OUS]:
        rdn = r["value"].split(",")[0] if r["depth"] else r["value"]
        console.print(
            f"  {'  ' * int(r['depth'] or 0)}{safe(rdn)}: {r['objects']} [{_orgs(r)}]"
            + (f" unattributed {r['unattributed']}" if r["unattributed"] else "")
            + (f" conflicting {r['conflicting']}" if r["conflicting"] else "")
        )
    if len(ous) > TOP_OUS:
        console.print(f"  ... {len(ous) - TOP_OUS} more OUs in --json")


def _proposals(console: Console, kind: str, doc: Mapping[str, Any]) -> None:
    if doc["conflicts"]:
        console.print(f"{kind}: conflicting, by the signals that disagree (review these)")
        for c in doc["conflicts"][:10]:
            console.print(f"  {c['objects']}: {safe(c['evidence'])}")
    if not doc["proposals"]:
        return
    table = Table(title=f"{kind}: proposed matchers", title_justify="left")
    for col in ("org", "signal", "value", "moves", "holding access", "conflicts", "evidence"):
        table.add_column(
            col, justify="right" if col in ("moves", "holding access", "conflicts") else "left"
        )
    for p in doc["proposals"]:
        moved = ", ".join(safe(m["name"]) for m in p["moved"][:3])
        more = f" +{p['moves'] - 3}" if p["moves"] > 3 else ""
        note = f"; {safe(p['note'])}" if p["note"] else ""
        table.add_row(
            safe(p["org"]),
            p["signal"],
            safe(p["value"]),
            f"{p['moves']} ({moved}{more})",
            str(p["moves_with_access"]),
            str(p["conflicts"]),
            f"{safe(p['reason'])}{note}",
        )
    console.print(table)


def print_survey(console: Console, document: Mapping[str, Any], breaches: list[str]) -> None:
    """The survey on the terminal (see the module docstring)."""
    if not console.is_terminal:  # a file or a pipe: wide enough for the tables' columns
        console.width = max(console.width, 180)
    console.print(f"accessaudit survey: {safe(document['tables'])}, {document['generated']}")
    for kind in ("accounts", "groups"):
        doc = document[kind]
        console.print()
        _totals(console, kind, doc)
        _coverage(console, kind, doc)
        _buckets(console, kind, doc)
        _tree(console, kind, doc)
        _proposals(console, kind, doc)
    for line in breaches:
        console.print(f"check: {line}")
