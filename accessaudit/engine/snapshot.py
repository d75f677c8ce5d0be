"""What a run records of the rules and the exceptions register it was evaluated with.

Two JSON files in the run folder, listed with their SHA-256 in the manifest like every other
file (so ``accessaudit verify`` covers them):

``rules.json``
    every rule as run: id, version, title, severity, action, rationale, remediation, key, the
    query as written in the rule file, the settings in effect (the rule's own with the config's
    overrides), the file's SHA-256 and where it came from (built-in or a site folder).

``exceptions.json`` (only when ``audit.exceptions_file`` is set)
    the register as it stood: its path, SHA-256 and text (whose UTF-8 bytes hash to that
    SHA-256), the date the run judged expiry on, and per entry its id, rule, objects,
    justification, agreement clause and end, expiry, the day it ends (the earlier of the two),
    approvers (org, name, date), ticket, its state on that date (``in-force``, ``expired``,
    ``stale``: in force but covering nothing) and how many findings it matched and accepted.

``attribution.json``
    how objects were attributed: each organisation's matchers as configured and the precedence
    between them (the report shows each evidence label with the value that matched and the
    pattern it matched, :mod:`accessaudit.report.matched`).

The report's compliance evidence view is rendered from these files, never from the current
rule folder or register, so re-rendering an old run shows what that run was evaluated with.
Runs written before these files existed have neither: readers get ``None``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl

from accessaudit.config.organisations import Organisation
from accessaudit.engine.exceptions import EXPIRED_RULE, STALE_RULE, Register
from accessaudit.engine.rulefile import Rule, builtin_rules_dir, catalogue_hash
from accessaudit.errors import StoreError
from accessaudit.store.runs import EXCEPTIONS_FILE

FORMAT: Final = 1
#: An entry's state on the run's date.
STATES: Final = ("in-force", "expired", "stale")


def _origin(rule: Rule) -> str:
    try:
        builtin = rule.path.resolve().parent == builtin_rules_dir().resolve()
    except OSError:
        builtin = False
    return "built-in" if builtin else str(rule.path)


def rules_snapshot(
    rules: Sequence[Rule], overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """The rules as run (``rules.json``), in id order."""
    out = []
    for r in sorted(rules, key=lambda r: r.id):
        out.append(
            {
                "id": r.id,
                "version": r.version,
                "title": r.title,
                "severity": r.severity.value,
                "action": r.action.value,
                "rationale": r.rationale,
                "remediation": r.remediation,
                "key": list(r.key),
                "query": r.query.strip(),
                "settings": {**r.settings, **((overrides or {}).get(r.id) or {})},
                "sha256": r.sha256,
                "origin": _origin(r),
            }
        )
    return {"format": FORMAT, "catalogue_sha256": catalogue_hash(list(rules)), "rules": out}


def _iso(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def register_snapshot(
    register: Register, findings: pl.DataFrame, *, as_of: datetime
) -> dict[str, Any]:
    """The register as it stood at ``as_of`` (``exceptions.json``), with what each entry did.

    ``findings`` are the run's findings after :func:`~.exceptions.apply_exceptions`.
    """
    today = as_of.date()
    own = findings.filter(
        pl.col("exception_id").is_not_null() & ~pl.col("rule_id").is_in([EXPIRED_RULE, STALE_RULE])
    )
    matched = dict(own.group_by("exception_id").len().iter_rows())
    accepted = dict(
        own.filter(pl.col("status") == "accepted").group_by("exception_id").len().iter_rows()
    )
    stale = set(
        findings.filter(pl.col("rule_id") == STALE_RULE).get_column("exception_id").to_list()
    )
    entries = []
    for e in register.entries:
        state = "expired" if not e.in_force(today) else "stale" if e.id in stale else "in-force"
        entries.append(
            {
                "id": e.id,
                "rule": e.rule,
                "objects": list(e.objects),
                "justification": e.justification,
                "agreement": e.agreement,
                "agreement_ends": _iso(e.agreement_ends),
                "expires": e.expires.isoformat(),
                "ends": e.ends.isoformat(),
                "approvers": [
                    {"org": a.org, "name": a.name, "date": _iso(a.date)} for a in e.approvers
                ],
                "ticket": e.ticket,
                "state": state,
                "matched": int(matched.get(e.id, 0)),
                "accepted": int(accepted.get(e.id, 0)),
                "line": e.line,
            }
        )
    return {
        "format": FORMAT,
        "path": str(register.path),
        "sha256": register.sha256,
        "as_of": today.isoformat(),
        "entries": entries,
        "text": register.text,
    }


def register_manifest(snapshot: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What the manifest records about the register (its hash; the entries are in the file)."""
    if snapshot is None:
        return None
    states = [e["state"] for e in snapshot["entries"]]
    return {
        "path": snapshot["path"],
        "sha256": snapshot["sha256"],
        "entries": len(states),
        **{s.replace("-", "_"): states.count(s) for s in STATES},
        "file": EXCEPTIONS_FILE,
    }


#: Matchers whose values name people or objects (usernames, object ids): a pseudonymised
#: report shows how many there are, never the values.
PERSONAL_MATCHERS: Final = ("ids", "names")


def attribution_snapshot(
    organisations: Sequence[Organisation], precedence: Sequence[str]
) -> dict[str, Any]:
    """How the run attributed objects (``attribution.json``): each organisation's matchers as
    configured (the ones left empty left out) and the precedence between them."""
    orgs = []
    for o in organisations:
        match = {
            k: v
            for k, v in o.match.model_dump(mode="json").items()
            if v not in (None, [], "") and v is not False
        }
        orgs.append({"id": o.id, "name": o.name, "match": match})
    return {"format": FORMAT, "precedence": list(precedence), "organisations": orgs}


def without_personal(snapshot: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``attribution.json`` for a pseudonymised output: ``ids`` / ``names`` as counts."""
    if snapshot is None:
        return None
    orgs = []
    for o in snapshot.get("organisations") or []:
        match = dict(o.get("match") or {})
        for k in PERSONAL_MATCHERS:
            if isinstance(match.get(k), list):
                match[k] = [f"({len(match[k])} value(s), not shown: pseudonymised)"]
        orgs.append({**o, "match": match})
    return {**snapshot, "organisations": orgs}


def to_bytes(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str).encode("utf-8") + b"\n"


def load_snapshot(run_dir: Path, name: str) -> dict[str, Any] | None:
    """A run's ``rules.json``, ``exceptions.json`` or ``attribution.json``; None when the run
    has none (older runs)."""
    path = run_dir / name
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"cannot read {path}: {exc}", "check the run with `accessaudit verify RUN_DIR`"
        ) from None
    if not isinstance(data, dict):
        raise StoreError(f"{path}: not a JSON object", "check the run with `accessaudit verify`")
    return data
