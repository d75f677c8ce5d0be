"""Pure: the rules and the exceptions register of the compliance evidence view, as run.

Both come from the run's own snapshot files (:mod:`accessaudit.engine.snapshot`): ``rules.json``
(each rule's text, query, settings, version and file hash as evaluated) and ``exceptions.json``
(the register as it stood, with approvers, expiry and each entry's state). A re-render of an old
run therefore shows what that run was evaluated with; the current catalogue is only compared
with it, and every difference is listed. Runs written before the snapshots existed fall back to
their manifest (each rule's version and file hash, the register's hash) and say so.

Like :mod:`accessaudit.report.views`, nothing here reads a file or the clock; ``text`` is the
context's display filter (hidden characters made visible).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import polars as pl

from accessaudit.hidden import visible

#: Accepted findings listed in the evidence view (all of them are in the exports).
ACCEPTED_ITEMS: Final = 500
#: An entry's state -> (label, chip class): a fixed set, never from data.
STATES: Final = {
    "in-force": ("in force", "ok"),
    "expired": ("expired: findings open again", "bad"),
    "stale": ("stale: covers no finding", "warn"),
}
_NO_STATE: Final = ("unknown", "warn")


@dataclass(frozen=True)
class RuleDoc:
    """A rule's documentation as the report shows it (appendix, finding evidence)."""

    id: str
    title: str
    severity: str
    rationale: str
    remediation: str
    action: str


@dataclass(frozen=True)
class RunRule(RuleDoc):
    """One rule of ``rules.json``: its documentation and how it ran."""

    version: str = ""
    sha256: str = ""
    query: str = ""
    key: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    origin: str = ""


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def run_rules(snapshot: Mapping[str, Any] | None) -> list[RunRule] | None:
    """The rules of a run's ``rules.json``; None when the run has none."""
    if not isinstance(snapshot, Mapping) or not isinstance(snapshot.get("rules"), list):
        return None
    out = []
    for r in snapshot["rules"]:
        if not isinstance(r, Mapping) or not r.get("id"):
            continue
        settings = r.get("settings")
        out.append(
            RunRule(
                id=_s(r["id"]),
                title=_s(r.get("title")),
                severity=_s(r.get("severity")),
                rationale=_s(r.get("rationale")),
                remediation=_s(r.get("remediation")),
                action=_s(r.get("action")),
                version=_s(r.get("version")),
                sha256=_s(r.get("sha256")),
                query=_s(r.get("query")),
                key=tuple(_s(k) for k in r.get("key") or []),
                settings=dict(settings) if isinstance(settings, Mapping) else {},
                origin=_s(r.get("origin")),
            )
        )
    return out


# --- rules --------------------------------------------------------------------------------------


def _as_run(
    snapshot: list[RunRule] | None, manifest: Mapping[str, Any]
) -> dict[str, tuple[str, str]]:
    """rule id -> (version, file SHA-256) as run: the snapshot, else the manifest's ``rules``."""
    if snapshot is not None:
        return {r.id: (r.version, r.sha256) for r in snapshot}
    recorded = manifest.get("rules")
    if not isinstance(recorded, Mapping):
        return {}
    return {
        str(rid): (_s(m.get("version")), _s(m.get("sha256")))
        for rid, m in recorded.items()
        if isinstance(m, Mapping)
    }


def _differences(
    as_run: Mapping[str, tuple[str, str]], current: Mapping[str, tuple[str, str]]
) -> list[dict[str, str]]:
    out = []
    for rid in sorted(set(as_run) | set(current)):
        run, now = as_run.get(rid), current.get(rid)
        if run == now:
            continue
        if now is None:
            change = "not in the current catalogue"
        elif run is None:
            change = "added to the catalogue since"
        elif run[1] == now[1]:
            continue  # same file, a version read differently: not a change of the rule
        elif run[0] == now[0]:
            change = "rule file changed without a version bump"
        else:
            change = "changed"
        out.append(
            {
                "rule_id": rid,
                "change": change,
                "run_version": run[0] if run else "",
                "current_version": now[0] if now else "",
            }
        )
    return out


def rules_context(
    snapshot: list[RunRule] | None,
    current: Sequence[Any],
    manifest: Mapping[str, Any],
    text: Callable[[Any], str],
) -> dict[str, Any]:
    """Each rule's version, hash, query and settings as run, and how the catalogue changed.

    ``current`` are the rules the report was rendered with; loaded rule files carry
    ``version`` and ``sha256`` and are compared with the run's, anything else is not.
    """
    as_run = _as_run(snapshot, manifest)
    comparable = [r for r in current if getattr(r, "sha256", "")]
    now = {str(r.id): (str(getattr(r, "version", "")), str(r.sha256)) for r in comparable}
    differences = _differences(as_run, now) if comparable and as_run else []
    detail: dict[str, dict[str, Any]] = {}
    for rid, (version, sha) in as_run.items():
        detail[text(rid)] = {
            "version": text(version),
            "sha256": text(sha),
            **{"query": "", "key": [], "settings": [], "origin": ""},
        }
    for r in snapshot or []:
        detail[text(r.id)] = {
            "version": text(r.version),
            "sha256": text(r.sha256),
            # rule-file text (autoescaped, lines kept); a rules.json from elsewhere may hide
            # characters the loader refuses in rule files: shown as [U+XXXX]
            "query": visible(r.query, keep_lines=True),
            "key": [text(k) for k in r.key],
            "settings": [{"name": text(k), "value": text(v)} for k, v in r.settings.items()],
            "origin": text(r.origin),
        }
    return {
        "source": "snapshot" if snapshot is not None else "manifest" if as_run else "current",
        "detail": detail,
        "compared": bool(comparable and as_run),
        "differences": [{k: text(v) for k, v in d.items()} for d in differences],
    }


# --- the exceptions register ------------------------------------------------------------------


def _approvers(value: Any, text: Callable[[Any], str]) -> list[dict[str, str]]:
    return [
        {"org": text(a.get("org")), "name": text(a.get("name")), "date": text(a.get("date"))}
        for a in value or []
        if isinstance(a, Mapping)
    ]


def _entry(e: Mapping[str, Any], text: Callable[[Any], str]) -> dict[str, Any]:
    label, cls = STATES.get(_s(e.get("state")), _NO_STATE)
    return {
        "id": text(e.get("id")),
        "rule": text(e.get("rule")),
        "objects": [text(o) for o in e.get("objects") or []],
        "justification": text(e.get("justification")),
        "agreement": text(e.get("agreement")),
        "agreement_ends": text(e.get("agreement_ends")),
        "expires": text(e.get("expires")),
        "ends": text(e.get("ends") or e.get("expires")),
        "approvers": _approvers(e.get("approvers"), text),
        "ticket": text(e.get("ticket")),
        "state": text(e.get("state")),
        "state_label": label,
        "state_class": cls,
        "matched": int(e.get("matched") or 0),
        "accepted": int(e.get("accepted") or 0),
    }


def exceptions_context(
    register: Mapping[str, Any] | None,
    manifest: Mapping[str, Any],
    findings: pl.DataFrame,
    accepted: Sequence[Mapping[str, Any]],
    text: Callable[[Any], str],
) -> dict[str, Any]:
    """The register as it stood (``exceptions.json``) and the accepted findings with theirs.

    ``accepted`` are the accepted findings' views (names resolved), worst first; their
    exception's justification, approvers and expiry come from the register.
    """
    meta = manifest.get("exceptions")
    meta = meta if isinstance(meta, Mapping) else {}
    snap = register if isinstance(register, Mapping) else {}
    entries = [_entry(e, text) for e in snap.get("entries") or [] if isinstance(e, Mapping)]
    by_id = {e["id"]: e for e in entries}
    exception_of: dict[str, str] = {}
    if {"finding_key", "exception_id"} <= set(findings.columns):
        marked = findings.filter(pl.col("exception_id").is_not_null())
        exception_of = dict(marked.select("finding_key", "exception_id").iter_rows())
    rows = []
    for f in accepted[:ACCEPTED_ITEMS]:
        ex_id = text(exception_of.get(f["finding_key"]))
        e = by_id.get(ex_id)
        rows.append(
            {
                **{k: f[k] for k in ("finding_key", "rule_id", "rule_title", "severity")},
                **{k: f[k] for k in ("sev_class", "principal_name", "principal_org")},
                **{k: f[k] for k in ("resource_name", "resource_org")},
                "exception_id": ex_id,
                "known": e is not None,
                "justification": e["justification"] if e else "",
                "agreement": e["agreement"] if e else "",
                "approvers": e["approvers"] if e else [],
                "ends": e["ends"] if e else "",
            }
        )
    states = {s: sum(1 for e in entries if e["state"] == s) for s in STATES}
    return {
        "configured": bool(snap) or bool(meta),
        "snapshot": bool(snap),
        "register": {
            "path": text(snap.get("path") or meta.get("path")),
            "sha256": text(snap.get("sha256") or meta.get("sha256")),
            "as_of": text(snap.get("as_of")),
            "entries": len(entries) if snap else int(meta.get("entries") or 0),
            "states": [
                {"state": s, "label": STATES[s][0], "count": n} for s, n in states.items() if n
            ],
        },
        "entries": entries,
        "accepted_total": len(accepted),
        "accepted": rows,
    }
