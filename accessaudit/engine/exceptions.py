"""The exceptions register: cross-force access accepted for now, each tied to an agreement.

One TOML file (``audit.exceptions_file``), one ``[[exception]]`` table per accepted case::

    [[exception]]
    id = "EX-2026-004"                          # unique in the register
    rule = "cross-org-direct-member"            # the rule whose findings it accepts
    objects = ["WARKS-RES-0003", "jsmith*"]     # object ids, or glob patterns (* ?) over the ids
                                                # and names of the objects a finding involves
    justification = "West Mercia hosts Warwickshire's control room until the split"
    agreement = "Transition services agreement, schedule 4, clause 12.3"
    agreement_ends = 2027-06-30                 # optional: the clause's end date
    expires = 2027-03-31                        # a TOML date: accepted up to and including it
    approvers = [
      { org = "wmp", name = "Head of Information Security, West Mercia", date = 2026-10-01 },
      { org = "warks", name = "Head of Information Security, Warwickshire", date = 2026-10-02 },
    ]

A finding is covered by an exception when its rule is the exception's rule and any of its
objects (account, group, nested or via group, resource; by id, username, UPN, display name,
group name or right) matches any of the exception's patterns (case-insensitive).

Exceptions *mark*, never hide (ScubaGear omissions, SailPoint mitigations): a covered finding
gets ``status = "accepted"`` and ``exception_id``. An exception is in force up to and including
the earlier of ``expires`` and ``agreement_ends``; after that its findings are ``open`` again
(``exception_id`` still says which exception lapsed) and the exception itself is a finding,
``expired-exception``. An exception in force that covers nothing is reported as
``stale-exception`` (info): the access it was written for is gone, or its patterns are wrong.

Approvers: at least one from every real organisation of the config (a dual sign-off). Every
problem in the file is an :class:`~accessaudit.errors.ExceptionsFileError` naming the file and
the line.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl

from accessaudit.config.settings import Settings
from accessaudit.errors import ExceptionsFileError
from accessaudit.model import ActionKind, Severity

REQUIRED: Final = ("id", "rule", "objects", "justification", "agreement", "approvers", "expires")
OPTIONAL: Final = ("agreement_ends", "ticket")
APPROVER_KEYS: Final = ("org", "name", "date", "role")
EXPIRED_RULE: Final = "expired-exception"
STALE_RULE: Final = "stale-exception"


@dataclass(frozen=True)
class Approver:
    org: str
    name: str
    date: date | None = None


@dataclass(frozen=True)
class Entry:
    """One accepted exception."""

    id: str
    rule: str
    objects: tuple[str, ...]
    justification: str
    agreement: str
    approvers: tuple[Approver, ...]
    expires: date
    agreement_ends: date | None = None
    ticket: str | None = None
    line: int = 0

    @property
    def ends(self) -> date:
        """The last day the exception is in force."""
        return min(self.expires, self.agreement_ends or self.expires)

    def in_force(self, on: date) -> bool:
        return on <= self.ends

    def pattern(self) -> str:
        """One case-insensitive regular expression (Rust syntax) matching any of the objects."""
        return "(?i)^(?:" + "|".join(glob_regex(o) for o in self.objects) + ")$"


@dataclass(frozen=True)
class Register:
    path: Path
    sha256: str
    entries: tuple[Entry, ...]
    text: str = ""  # the file as read (its UTF-8 bytes hash to sha256): the run's snapshot


def glob_regex(glob: str) -> str:
    """``*`` any text, ``?`` one character, everything else literal."""
    out = []
    for ch in glob:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return "".join(out)


# --- loading ------------------------------------------------------------------------------


def load_register(
    path: Path, *, orgs: Sequence[str], rule_ids: Iterable[str] | None = None
) -> Register:
    """Read and validate the register; ``orgs``: the real organisations that must all approve."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ExceptionsFileError(
            f"exceptions register {path} not found", "check audit.exceptions_file in the config"
        ) from None
    except OSError as exc:
        raise ExceptionsFileError(
            f"cannot read exceptions register {path}: {exc.strerror}"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ExceptionsFileError(
            f"{path}: not UTF-8 (byte {exc.start})", "save the file as UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column \d+\)", msg)
        where = f"{path}:{m.group(1)}" if m else str(path)
        msg = msg.replace(m.group(0), "").strip() if m else msg
        raise ExceptionsFileError(f"{where}: {msg}", "fix the TOML syntax") from None
    entries = _entries(data, text, str(path), list(orgs), set(rule_ids) if rule_ids else None)
    return Register(path, hashlib.sha256(raw).hexdigest(), entries, text)


def _header_lines(text: str) -> list[int]:
    """Line numbers of the ``[[exception]]`` headers, in order."""
    return [
        text.count("\n", 0, m.start()) + 1
        for m in re.finditer(r"^[ \t]*\[\[[ \t]*exception[ \t]*\]\]", text, re.M)
    ]


def _key_line(text: str, start: int, end: int | None, key: str) -> int:
    lines = text.splitlines()
    stop = end - 1 if end else len(lines)
    for n in range(start, stop + 1):
        if n - 1 < len(lines) and re.match(rf"^\s*{re.escape(key)}\s*=", lines[n - 1]):
            return n
    return start


def _entries(
    data: dict[str, Any], text: str, origin: str, orgs: list[str], rule_ids: set[str] | None
) -> tuple[Entry, ...]:
    unknown = sorted(set(data) - {"exception"})
    if unknown:
        m = re.search(rf"^[ \t]*\[*[ \t]*{re.escape(unknown[0])}\b", text, re.M)
        line = text.count("\n", 0, m.start()) + 1 if m else 1
        raise ExceptionsFileError(
            f"{origin}:{line}: unknown key '{unknown[0]}'",
            "the register holds only [[exception]] tables",
        )
    raw = data.get("exception", [])
    if not isinstance(raw, list):
        raise ExceptionsFileError(f"{origin}: 'exception' must be [[exception]] tables")
    headers = _header_lines(text)
    out: list[Entry] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        start = headers[i] if i < len(headers) else 1
        end = headers[i + 1] if i + 1 < len(headers) else None

        def fail(key: str | None, msg: str, hint: str = "", _s: int = start, _e: Any = end) -> Any:
            line = _key_line(text, _s, _e, key) if key else _s
            raise ExceptionsFileError(f"{origin}:{line}: {msg}", hint)

        entry = _entry(item, fail, orgs, rule_ids, start)
        if entry.id in seen:
            fail("id", f"exception '{entry.id}' is defined twice (first at line {seen[entry.id]})")
        seen[entry.id] = start
        out.append(entry)
    return tuple(out)


def _entry(item: Any, fail: Any, orgs: list[str], rule_ids: set[str] | None, line: int) -> Entry:
    if not isinstance(item, dict):
        fail(None, "an exception must be a table")
    name = str(item.get("id", "?"))
    label = f"exception '{name}'"
    unknown = sorted(set(item) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        fail(
            unknown[0],
            f"{label}: unknown key '{unknown[0]}'",
            f"allowed: {', '.join(REQUIRED + OPTIONAL)}",
        )
    missing = [k for k in REQUIRED if k not in item]
    if missing:
        fail(None, f"{label}: missing required key '{missing[0]}'")
    for key in ("id", "rule", "justification", "agreement"):
        if not isinstance(item[key], str) or not item[key].strip():
            fail(key, f"{label}: '{key}' must be a non-empty string")
    if rule_ids is not None and item["rule"] not in rule_ids:
        fail("rule", f"{label}: unknown rule '{item['rule']}'", "see `accessaudit rules list`")
    objects = item["objects"]
    if (
        not isinstance(objects, list)
        or not objects
        or not all(isinstance(o, str) and o.strip() for o in objects)
    ):
        fail("objects", f"{label}: 'objects' must be a non-empty list of ids or patterns")
    if any(o.strip() in ("*", "**") for o in objects):
        fail(
            "objects",
            f"{label}: a pattern matching every object is not an exception",
            "name the objects the agreement covers",
        )
    expires = _date(item["expires"], "expires", label, fail)
    ends = (
        _date(item["agreement_ends"], "agreement_ends", label, fail)
        if "agreement_ends" in item
        else None
    )
    approvers = _approvers(item["approvers"], label, fail, orgs)
    ticket = item.get("ticket")
    if ticket is not None and not isinstance(ticket, str):
        fail("ticket", f"{label}: 'ticket' must be a string")
    return Entry(
        id=item["id"].strip(),
        rule=item["rule"].strip(),
        objects=tuple(o.strip() for o in objects),
        justification=item["justification"].strip(),
        agreement=item["agreement"].strip(),
        approvers=approvers,
        expires=expires,
        agreement_ends=ends,
        ticket=ticket,
        line=line,
    )


def _date(value: Any, key: str, label: str, fail: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    fail(key, f"{label}: '{key}' must be a date", f"write it unquoted: {key} = 2027-03-31")
    raise AssertionError  # unreachable: fail raises


def _approvers(value: Any, label: str, fail: Any, orgs: list[str]) -> tuple[Approver, ...]:
    if not isinstance(value, list) or not value:
        fail(
            "approvers",
            f"{label}: 'approvers' must list one approver of each force",
            'approvers = [{ org = "...", name = "..." }, ...]',
        )
    out = []
    for a in value:
        if not isinstance(a, dict):
            fail("approvers", f"{label}: each approver is a table with org and name")
        unknown = sorted(set(a) - set(APPROVER_KEYS))
        if unknown:
            fail(
                "approvers",
                f"{label}: approver key '{unknown[0]}' unknown",
                f"allowed: {', '.join(APPROVER_KEYS)}",
            )
        org, name = a.get("org"), a.get("name")
        if not isinstance(org, str) or not isinstance(name, str) or not name.strip():
            fail("approvers", f"{label}: each approver needs an org and a name")
        if org not in orgs:
            fail("approvers", f"{label}: approver organisation '{org}' is not one of {orgs}")
        when = a.get("date")
        if when is not None and not isinstance(when, date):
            fail("approvers", f"{label}: an approver's date must be a date")
        out.append(Approver(org, name.strip(), when if isinstance(when, date) else None))
    missing = [o for o in orgs if o not in {a.org for a in out}]
    if missing:
        fail(
            "approvers",
            f"{label}: no approver from {', '.join(missing)}",
            "an exception needs the sign-off of every force",
        )
    return tuple(out)


# --- applying -----------------------------------------------------------------------------

_EXCEPTION_TITLES: Final = {
    EXPIRED_RULE: ("Accepted exception has expired", Severity.MEDIUM),
    STALE_RULE: ("Accepted exception matches no finding", Severity.INFO),
}


def _tokens(findings: pl.DataFrame, accounts: pl.DataFrame, groups: pl.DataFrame) -> pl.DataFrame:
    """(finding_key, rule_id, value): every id and name of the objects each finding involves."""
    ids = ("account_id", "group_id", "member_group_id", "via_group_id", "resource_id")
    long = pl.concat(
        [
            findings.select("finding_key", "rule_id", value=pl.col(c).cast(pl.String))
            for c in (*ids, "right")
        ]
    ).drop_nulls("value")
    acc_names = accounts.select(
        value="account_id", name=pl.concat_list("username", "upn", "display_name")
    )
    grp_names = groups.select(value="group_id", name=pl.concat_list("name"))
    names = (
        long.join(pl.concat([acc_names, grp_names]).unique("value"), on="value")
        .explode("name")
        .select("finding_key", "rule_id", value="name")
        .drop_nulls("value")
    )
    return pl.concat([long, names]).unique()


def apply_exceptions(
    findings: pl.DataFrame,
    register: Register | None,
    *,
    as_of: datetime,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
) -> pl.DataFrame:
    """Mark covered findings accepted; add expired-exception and stale-exception findings.

    ``findings`` has the findings columns and ``status``; the result adds ``exception_id``.
    """
    base = findings.with_columns(
        status=pl.lit("open") if "status" not in findings.columns else pl.col("status"),
        exception_id=pl.lit(None, pl.String),
    )
    if register is None or not register.entries:
        return base
    today = as_of.date()
    rules = {e.rule for e in register.entries}
    tokens = _tokens(base.filter(pl.col("rule_id").is_in(list(rules))), accounts, groups)
    matches = []
    for order, e in enumerate(register.entries):
        keys = (
            tokens.filter((pl.col("rule_id") == e.rule) & pl.col("value").str.contains(e.pattern()))
            .select("finding_key")
            .unique()
        )
        matches.append(
            keys.with_columns(
                exception_id=pl.lit(e.id),
                _expired=pl.lit(not e.in_force(today)),
                _order=pl.lit(order),
            )
        )
    matched = pl.concat(matches)
    # an exception in force wins over a lapsed one; then the first in the register
    best = matched.sort("_expired", "_order").unique("finding_key", keep="first")
    out = (
        base.drop("exception_id")
        .join(best, on="finding_key", how="left")
        .with_columns(
            status=pl.when(pl.col("exception_id").is_not_null() & ~pl.col("_expired"))
            .then(pl.lit("accepted"))
            .otherwise(pl.col("status")),
        )
        .drop("_expired", "_order")
    )
    counts = dict(matched.group_by("exception_id").len().iter_rows())
    forces = _forces(matched, base)
    for e in register.entries:  # an exception that covers nothing now: its objects' forces
        if e.id not in forces:
            forces[e.id] = _object_forces(e, accounts, groups)
    extra = _register_findings(register, today, counts, out.schema, forces)
    return pl.concat([out, extra]).sort("rule_id", "finding_key")


def _forces(matched: pl.DataFrame, findings: pl.DataFrame) -> dict[str, list[tuple[str, str]]]:
    """Exception id -> the (principal force, resource force) pairs of the findings it covers."""
    orgs = [c for c in ("principal_org", "resource_org") if c in findings.columns]
    if len(orgs) < 2:
        return {}
    pairs = (
        matched.select("finding_key", "exception_id")
        .join(findings.select("finding_key", *orgs), on="finding_key")
        .with_columns(pl.col(c).fill_null("unattributed") for c in orgs)
        .unique(["exception_id", *orgs])
        .sort("exception_id", *orgs)
    )
    out: dict[str, list[tuple[str, str]]] = {}
    for ex, p, r in pairs.select("exception_id", *orgs).iter_rows():
        out.setdefault(str(ex), []).append((str(p), str(r)))
    return out


def _object_forces(e: Entry, accounts: pl.DataFrame, groups: pl.DataFrame) -> list[tuple[str, str]]:
    """The forces of the accounts and groups an exception's patterns name (when it covers no
    finding): (force of the accounts, force of the groups), "" where it names none."""

    def orgs(df: pl.DataFrame, columns: tuple[str, ...]) -> list[str]:
        present = [c for c in columns if c in df.columns]
        if "org" not in df.columns or not present:
            return []
        hit = pl.any_horizontal(
            pl.col(c).cast(pl.String).str.contains(e.pattern()).fill_null(False) for c in present
        )
        return sorted(set(df.filter(hit)["org"].drop_nulls().to_list()))

    principals = orgs(accounts, ("account_id", "username", "upn", "display_name"))
    resources = orgs(groups, ("group_id", "name"))
    if not principals and not resources:
        return []
    return [(p, r) for p in principals or [""] for r in resources or [""]]


def _forces_text(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(f"{p or '?'} → {r or '?'}" for p, r in pairs) if pairs else "unknown"


def _register_findings(
    register: Register,
    today: date,
    counts: dict[str, int],
    schema: pl.Schema,
    forces: dict[str, list[tuple[str, str]]] | None = None,
) -> pl.DataFrame:
    """The register's own findings: each names the exception (``resource_id``), its rule
    (``right``) and the forces of the findings it covers (``principal_org`` / ``resource_org``
    when they are one pair, and in ``detail``)."""
    rows = []
    for e in register.entries:
        n = counts.get(e.id, 0)
        pairs = (forces or {}).get(e.id, [])
        principal_orgs = {p for p, _ in pairs if p}
        resource_orgs = {r for _, r in pairs if r}
        if not e.in_force(today):
            rule = EXPIRED_RULE
            why = "the agreement clause ended" if e.ends != e.expires else "expired"
            detail = (
                f"{why} on {e.ends.isoformat()}: {n} finding(s) of {e.rule} open again;"
                f" exception {e.id}, forces {_forces_text(pairs)} ({e.agreement})"
            )
        elif n == 0:
            rule = STALE_RULE
            detail = f"in force until {e.ends.isoformat()} but covers no finding of {e.rule}"
        else:
            continue
        title, severity = _EXCEPTION_TITLES[rule]
        rows.append(
            {
                "finding_key": f"{rule}|{e.id}",
                "rule_id": rule,
                "severity": severity.value,
                "title": title,
                "action": ActionKind.REVIEW_EXCEPTION.value,
                "resource_id": e.id,
                "right": e.rule,
                "principal_org": next(iter(principal_orgs)) if len(principal_orgs) == 1 else None,
                "resource_org": next(iter(resource_orgs)) if len(resource_orgs) == 1 else None,
                "detail": detail,
                "status": "open",
                "exception_id": e.id,
            }
        )
    return pl.DataFrame([{c: r.get(c) for c in schema.names()} for r in rows], schema=schema)


def load_configured(settings: Settings, rule_ids: Iterable[str]) -> Register | None:
    """The register named by ``audit.exceptions_file``, validated; None when none is set."""
    path = settings.audit.exceptions_file
    if path is None:
        return None
    return load_register(path, orgs=settings.real_orgs, rule_ids=rule_ids)
