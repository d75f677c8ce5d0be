"""Load and validate rule files: one TOML file per rule, file name = rule id.

A rule file holds data only::

    id = "cross-org-direct-member"          # must equal the file name
    version = "1.0"                         # MAJOR.MINOR (see below)
    title = "..."                           # one line
    severity = "high"                       # critical | high | medium | low | info
    action = "remove-member"                # an ActionKind
    rationale = "..."                       # why it matters (shown in reports)
    remediation = "..."                     # what to do
    key = ["account_id", "group_id"]        # columns that identify a finding (stable ids)
    query = "SELECT ... FROM access ..."    # polars SQL over the views (docs/rule-views.md)
    [settings]                              # parameters, ${name} in the query; config overrides
                                            # (name = default, or {default, min, max})
    [[examples]]                            # tiny inputs and the exact key tuples expected
    name = "..."
    accounts = [{id = "a1", org = "wmp"}]
    groups = [{id = "g1", org = "warks"}]
    memberships = [["g1", "a1"]]            # [group, member] (+ "disabled": a disabled login)
    grants = [["a1", "role", "directory-role", "Global Administrator @ /"]]
    hosts = {example = "wmp"}               # source -> its declared host (default: none)
    expect = [["a1", "g1"]]                 # [] for a negative example

At least one positive example (``expect`` lists findings) and one negative example
(``expect = []``) are required: every rule is tested both ways, by ``accessaudit rules test``
and by pytest.

Every error is a :class:`RuleError` naming the file and, where tomllib gives one, the line.

``version`` is required: each run records it (manifest and ``rules.json``) so a reviewer can
tell which text of a rule produced a finding. Bump the major when the query, key, severity or
default settings change (what the rule finds, how its findings are keyed or ranked), the
minor for wording and examples only. The file's SHA-256 is recorded as well, so an edit that
forgot the bump still shows.
"""

from __future__ import annotations

import functools
import hashlib
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from accessaudit.engine.rulesettings import SettingSpec, declared
from accessaudit.errors import RuleError
from accessaudit.hidden import HIDDEN_KEEP_LINES
from accessaudit.model import FINDINGS_SCHEMA, ActionKind, Severity

REQUIRED = (
    *("id", "version", "title", "severity", "action", "rationale", "remediation", "key"),
    "query",
)
OPTIONAL = ("settings", "examples", "tags")
#: ``version``: MAJOR.MINOR (digits), e.g. "1.0" or "2.3".
VERSION_PATTERN = re.compile(r"\d+\.\d+")
EXAMPLE_KEYS = {
    *("name", "accounts", "groups", "memberships", "grants", "expect", "settings", "hosts"),
    "trusts",
    "domains",
    "resources",
}
#: Columns a rule query may return (the engine adds finding_key, rule_id, severity, title, action).
OUTPUT_COLUMNS = tuple(
    c
    for c in FINDINGS_SCHEMA.names()
    if c not in ("finding_key", "rule_id", "severity", "title", "action")
)
_PLACEHOLDER = re.compile(r"\$\{([a-z_][a-z0-9_]*)\}")
_E = TypeVar("_E", bound=StrEnum)


@dataclass(frozen=True)
class Example:
    name: str
    accounts: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    memberships: list[list[str]]
    grants: list[Any]  # [principal, resource, resource_kind, right] (or a table of those)
    expect: list[tuple[str, ...]]
    settings: dict[str, Any]
    #: source -> the organisation declared to host it (an example's rows are of source
    #: "example" unless they say otherwise); a source left out has no declared host
    hosts: dict[str, str] = field(default_factory=dict)
    #: trustedDomain rows (TRUSTS_SCHEMA columns: partner, partner_sid, direction ...)
    trusts: list[dict[str, Any]] = field(default_factory=list)
    #: attributed resources (AD objects ...): id, org, class, name, path, subject, linked_to
    resources: list[dict[str, Any]] = field(default_factory=list)
    #: domain SID -> organisation, as organisations' ``domain_sid`` matchers list them
    domains: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: Severity
    action: ActionKind
    rationale: str
    remediation: str
    key: tuple[str, ...]
    query: str
    path: Path
    settings: dict[str, Any] = field(default_factory=dict)
    #: each setting's type and range (:mod:`accessaudit.engine.rulesettings`)
    setting_specs: dict[str, SettingSpec] = field(default_factory=dict)
    examples: tuple[Example, ...] = ()
    version: str = "1.0"
    sha256: str = ""

    def sql(self, overrides: dict[str, Any] | None = None) -> str:
        """The query with ``${name}`` settings substituted as SQL literals."""
        values = {**self.settings, **(overrides or {})}

        def literal(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in values:
                raise RuleError(f"{self.path}: query uses ${{{name}}} but [settings] has no {name}")
            v = values[name]
            if isinstance(v, bool):
                return "TRUE" if v else "FALSE"
            if isinstance(v, int | float):
                return repr(v)
            return "'" + str(v).replace("'", "''") + "'"

        return _PLACEHOLDER.sub(literal, self.query)


def builtin_rules_dir() -> Path:
    """``rules/`` of a checkout, or the copy force-included in an installed wheel."""
    installed = Path(str(resources.files("accessaudit"))) / "_data" / "rules"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / "rules"


def _refuse_hidden(path: Path, text: str) -> None:
    """A rule file holds no character that does not show (bidi override, zero-width, control):
    the query reviewers read must be the query that runs ("Trojan Source"). Hostile test data
    in examples is written as TOML escapes (``"\\u202e"``), which are plain ASCII in the file.
    (CR never reaches here: ``read_text`` turns CRLF and CR into LF.)"""
    for m in HIDDEN_KEEP_LINES.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        column = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
        raise RuleError(
            f"{path}:{line}:{column}: hidden character U+{ord(m.group()):04X} in a rule file",
            "delete it, or write it as a TOML escape (\\uXXXX) inside example data",
        )


def _read(path: Path) -> tuple[str, dict[str, Any]]:
    """The rule file's text and its parsed TOML."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"{path}: cannot read rule file: {exc}") from None
    _refuse_hidden(path, text)
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{path}: {exc}", "fix the TOML syntax") from None


def _line_of(where: str, text: str, key: str) -> str:
    """``file:line`` of the line that sets ``key`` (or opens its table), else the file."""
    m = re.search(rf"^\s*\[*\s*{re.escape(key)}\b", text, re.M)
    return f"{where}:{text.count(chr(10), 0, m.start()) + 1}" if m else where


def _check_keys(data: dict[str, Any], path: Path, line_of: Callable[[str], str]) -> None:
    """Known keys only, every required one, non-empty strings, a MAJOR.MINOR version and an id
    equal to the file name."""
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise RuleError(
            f"{line_of(unknown[0])}: unknown key '{unknown[0]}'",
            f"allowed: {', '.join(REQUIRED + OPTIONAL)}",
        )
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        hint = 'add version = "1.0" (bump it when the rule changes)'
        hint = hint if missing[0] == "version" else ""
        raise RuleError(f"{path}: missing required key '{missing[0]}'", hint)
    for k in ("id", "title", "severity", "action", "rationale", "remediation", "query"):
        if not isinstance(data[k], str) or not data[k].strip():
            raise RuleError(f"{line_of(k)}: '{k}' must be a non-empty string")
    version = data["version"]
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        raise RuleError(
            f"{line_of('version')}: 'version' must be a string MAJOR.MINOR, got {version!r}",
            'write it quoted, e.g. version = "1.0"; bump it when the rule changes',
        )
    if data["id"] != path.stem:
        raise RuleError(
            f"{line_of('id')}: id '{data['id']}' must equal the file name '{path.stem}'"
        )


def _choice(enum: type[_E], key: str, value: str, line_of: Callable[[str], str]) -> _E:
    try:
        return enum(value)
    except ValueError:
        raise RuleError(
            f"{line_of(key)}: unknown {key} '{value}'", f"use one of {[e.value for e in enum]}"
        ) from None


def _key(key: Any, line_of: Callable[[str], str]) -> tuple[str, ...]:
    """``key``: a non-empty list of findings columns."""
    if not isinstance(key, list) or not key or not all(isinstance(k, str) for k in key):
        raise RuleError(f"{line_of('key')}: 'key' must be a non-empty list of column names")
    bad = [k for k in key if k not in OUTPUT_COLUMNS]
    if bad:
        raise RuleError(
            f"{line_of('key')}: key column '{bad[0]}' is not a findings column",
            f"use columns of {OUTPUT_COLUMNS}",
        )
    return tuple(key)


def load_rule(path: Path) -> Rule:
    """Parse and validate one rule file."""
    text, data = _read(path)
    where = str(path)
    line_of = functools.partial(_line_of, where, text)
    _check_keys(data, path, line_of)
    severity = _choice(Severity, "severity", data["severity"], line_of)
    action = _choice(ActionKind, "action", data["action"], line_of)
    key = _key(data["key"], line_of)
    settings, specs = declared(data.get("settings", {}), line_of)
    examples = _examples(data.get("examples", []), where, line_of("examples"), len(key))
    rule = Rule(
        id=data["id"],
        title=data["title"].strip(),
        severity=severity,
        action=action,
        rationale=data["rationale"].strip(),
        remediation=data["remediation"].strip(),
        key=key,
        query=data["query"],
        path=path,
        settings=settings,
        setting_specs=specs,
        examples=examples,
        version=data["version"],
        sha256=hashlib.sha256(text.encode()).hexdigest(),
    )
    rule.sql()  # every placeholder has a setting
    return rule


def _examples(raw: Any, path: str, where: str, key_len: int) -> tuple[Example, ...]:
    """The rule's examples: at least one positive (it must find something) and one negative
    (a near miss it must not find), so that every rule is tested both ways."""
    if not isinstance(raw, list):
        raise RuleError(
            f"{where}: 'examples' must be an array of tables", "write each one as [[examples]]"
        )
    examples = tuple(_example(e, i, where, key_len) for i, e in enumerate(raw))
    if not any(e.expect for e in examples):
        raise RuleError(
            f"{path}: no positive example (an [[examples]] entry whose expect lists findings)",
            'add an [[examples]] case the rule must find, with expect = [["...", ...]]',
        )
    if all(e.expect for e in examples):
        raise RuleError(
            f"{path}: no negative example (an [[examples]] entry with expect = [])",
            "add an [[examples]] near miss the rule must not find, with expect = []",
        )
    return examples


def _check_example_shape(raw: Any, index: int, where: str) -> None:
    """A table of known keys with ``name`` and ``expect``, arrays and a ``settings`` table."""
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: examples[{index}] must be a table")
    unknown = sorted(set(raw) - EXAMPLE_KEYS)
    if unknown:
        raise RuleError(
            f"{where}: examples[{index}]: unknown key '{unknown[0]}'",
            f"allowed: {sorted(EXAMPLE_KEYS)}",
        )
    if "name" not in raw or "expect" not in raw:
        raise RuleError(f"{where}: examples[{index}] needs 'name' and 'expect'")
    for table in ("accounts", "groups", "memberships", "grants", "expect", "trusts", "resources"):
        if not isinstance(raw.get(table, []), list):
            raise RuleError(
                f"{where}: examples[{index}] ({raw['name']}): '{table}' must be an array",
                f"write {table} = [ ... ] (an empty array is [])",
            )
    if not isinstance(raw.get("settings", {}), dict):
        raise RuleError(f"{where}: examples[{index}] ({raw['name']}): 'settings' must be a table")
    hosts = raw.get("hosts", {})
    if not isinstance(hosts, dict) or not all(isinstance(v, str) for v in hosts.values()):
        raise RuleError(
            f"{where}: examples[{index}] ({raw['name']}): 'hosts' must be a table of "
            "source = organisation",
            'write hosts = { example = "wmp" }',
        )


def _check_example_rows(raw: dict[str, Any], at: str, key_len: int) -> None:
    """``expect`` rows of ``key_len`` values, [group, member] pairs, four-value grants."""
    for row in raw["expect"]:
        if not isinstance(row, list) or len(row) != key_len:
            raise RuleError(f"{at}: each expect row is a list of {key_len} key values")
    for m in raw.get("memberships", []):
        if not (isinstance(m, list) and (len(m) == 2 or m[2:] == ["disabled"])):
            raise RuleError(
                f"{at}: memberships are [group, member] pairs "
                '(or [group, member, "disabled"] for a login the application has disabled)'
            )
    for g in raw.get("grants", []):
        if not (isinstance(g, list) and len(g) == 4) and not isinstance(g, dict):
            raise RuleError(f"{at}: grants are [principal, resource, resource_kind, right]")


def _example(raw: Any, index: int, where: str, key_len: int) -> Example:
    _check_example_shape(raw, index, where)
    _check_example_rows(raw, f"{where}: examples[{index}] ({raw['name']})", key_len)
    return Example(
        name=str(raw["name"]),
        accounts=list(raw.get("accounts", [])),
        groups=list(raw.get("groups", [])),
        memberships=[[str(v) for v in m] for m in raw.get("memberships", [])],
        grants=list(raw.get("grants", [])),
        expect=[tuple("" if v is None else str(v) for v in row) for row in raw["expect"]],
        settings=dict(raw.get("settings", {})),
        hosts={str(k): str(v) for k, v in raw.get("hosts", {}).items()},
        trusts=list(raw.get("trusts", [])),
        resources=list(raw.get("resources", [])),
        domains={str(k): str(v) for k, v in raw.get("domains", {}).items()},
    )


def load_rules(dirs: list[Path] | None = None) -> list[Rule]:
    """The built-in catalogue plus site folders; a site rule may not reuse a built-in id."""
    folders = [builtin_rules_dir(), *(dirs or [])]
    rules: dict[str, Rule] = {}
    for folder in folders:
        if not folder.is_dir():
            raise RuleError(
                f"rule folder {folder} not found", "check audit.rules_dirs in the config"
            )
        for path in sorted(folder.glob("*.toml")):
            rule = load_rule(path)
            if rule.id in rules:
                raise RuleError(
                    f"{path}: rule id '{rule.id}' already defined in {rules[rule.id].path}"
                )
            rules[rule.id] = rule
    return list(rules.values())


def catalogue_hash(rules: list[Rule]) -> str:
    """SHA-256 over the rule files' hashes, in id order (recorded in every manifest)."""
    h = hashlib.sha256()
    for r in sorted(rules, key=lambda r: r.id):
        h.update(f"{r.id}:{r.sha256}\n".encode())
    return h.hexdigest()
