"""Fuzzed configuration, rule and exceptions files: every malformed file is one AuditError line
naming the file, never another exception (hypothesis).

Each file starts from a valid one (config.example.toml, every built-in rule file, an exceptions
register) and is mutated the way files really break: a line deleted, duplicated or truncated,
a value swapped for a value of another type, random text or bytes inserted, the file cut
short; plus whole documents of random TOML.
"""

from __future__ import annotations

import json
import tomllib
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accessaudit.config.settings import load_settings
from accessaudit.engine.exceptions import load_register
from accessaudit.engine.rulefile import load_rules
from accessaudit.errors import AuditError
from accessaudit.pipeline.rulecheck import check_queries

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "config.example.toml").read_text(encoding="utf-8")
RULES = sorted((ROOT / "rules").glob("*.toml"))
REGISTER = """\
[[exception]]
id = "EX-2026-001"
rule = "cross-org-direct-member"
objects = ["WARKS-RES-0003", "jsmith*"]
justification = "West Mercia hosts Warwickshire's control room until the split"
agreement = "Transition services agreement, schedule 4, clause 12.3"
agreement_ends = 2027-06-30
expires = 2027-03-31
ticket = "CHG-1234"
approvers = [
  { org = "wmp", name = "Head of Information Security, West Mercia", date = 2026-10-01 },
  { org = "warks", name = "Head of Information Security, Warwickshire", date = 2026-10-02 },
]
"""
EXAMPLES = 150
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=20),
    st.dates(),
    st.datetimes(),
    st.just([]),
    st.just({}),
    st.lists(st.text(max_size=5), max_size=3),
)


def toml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{}"
    assert isinstance(value, date), value  # dates and datetimes
    return value.isoformat()


@st.composite
def mutated(draw: st.DrawFn, text: str) -> bytes:
    """``text`` broken in one to three of the ways real files break."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        how = draw(
            st.sampled_from(["delete", "duplicate", "retype", "insert", "truncate", "rekey", "cut"])
        )
        if not lines:
            break
        line = lines[i]
        if how == "delete":
            del lines[i]
        elif how == "duplicate":
            lines.insert(i, line)
        elif how == "retype" and "=" in line:
            key = line.split("=", 1)[0]
            lines[i] = f"{key}= {toml_scalar(draw(scalars))}"
        elif how == "insert":
            lines.insert(i, draw(st.text(max_size=30)))
        elif how == "truncate":
            lines[i] = line[: draw(st.integers(0, len(line)))]
        elif how == "rekey" and "=" in line:
            value = line.split("=", 1)[1]
            lines[i] = f"{draw(st.from_regex(r'[a-z_]{1,12}', fullmatch=True))} ={value}"
        elif how == "cut":
            lines = lines[:i]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if draw(st.booleans()) and draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    return data


@st.composite
def random_toml(draw: st.DrawFn) -> bytes:
    keys = st.from_regex(r"[a-z_]{1,10}", fullmatch=True)
    body = draw(st.dictionaries(keys, scalars, max_size=6))
    tables = draw(st.dictionaries(keys, st.dictionaries(keys, scalars, max_size=4), max_size=3))
    text = "".join(f"{k} = {toml_scalar(v)}\n" for k, v in body.items())
    for name, values in tables.items():
        if name in body:
            continue
        text += f"[{name}]\n" + "".join(f"{k} = {toml_scalar(v)}\n" for k, v in values.items())
    return text.encode()


def check_error(exc: AuditError, path: Path) -> None:
    text = str(exc)
    assert "\n" not in text and "\r" not in text, text
    assert str(path) in text or path.name in text, text
    assert exc.message, text


# --- config.toml ---------------------------------------------------------------------------------


def _config(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(data)
    try:
        settings = load_settings(path)
    except AuditError as exc:
        check_error(exc, path)
        return
    assert settings.sources  # a mutation that is still a valid config loads


@pytest.mark.slow
@FUZZ
@given(data=st.one_of(mutated(EXAMPLE), random_toml()))
def test_fuzzed_config_files(tmp_path: Path, data: bytes) -> None:
    _config(tmp_path, data)


# --- rule files ----------------------------------------------------------------------------------


def _rule(tmp_path: Path, data: bytes) -> None:
    folder = tmp_path / "site"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    path = folder / "site-rule.toml"
    path.write_bytes(data)
    try:
        rules = load_rules([folder])
        check_queries(rules)
    except AuditError as exc:
        check_error(exc, path)


def _as_site_rule(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text.replace(f'id = "{path.stem}"', 'id = "site-rule"', 1)


@pytest.mark.slow
@FUZZ
@given(
    data=st.one_of(
        st.sampled_from(RULES).flatmap(lambda p: mutated(_as_site_rule(p))), random_toml()
    )
)
def test_fuzzed_rule_files(tmp_path: Path, data: bytes) -> None:
    _rule(tmp_path, data)


@pytest.mark.parametrize(
    "table", ["accounts", "groups", "memberships", "grants", "expect", "settings"]
)
def test_example_table_of_the_wrong_type(tmp_path: Path, table: str) -> None:
    example = {"accounts": "[]", "groups": "[]", "memberships": "[]", "grants": "[]"}
    example["expect"] = "[]"
    example[table] = "0"
    lines = [
        'id = "site-rule"',
        'version = "1.0"',
        'title = "t"',
        'severity = "low"',
        'action = "review-attribution"',
        'rationale = "r"',
        'remediation = "r"',
        'key = ["account_id", "group_id"]',
        'query = "SELECT account_id, CAST(NULL AS VARCHAR) AS group_id FROM accounts"',
        "[[examples]]",
        'name = "x"',
        *(f"{k} = {v}" for k, v in example.items()),
    ]
    path = tmp_path / "site" / "site-rule.toml"
    path.parent.mkdir()
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(AuditError) as err:
        load_rules([path.parent])
    check_error(err.value, path)


def test_the_unmutated_rule_files_load_as_site_rules(tmp_path: Path) -> None:
    for path in RULES:
        _rule(tmp_path, _as_site_rule(path).encode())
        assert load_rules([tmp_path / "site"])[-1].id == "site-rule"


# --- exceptions registers ------------------------------------------------------------------------


def _register(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "exceptions.toml"
    path.write_bytes(data)
    rule_ids = [p.stem for p in RULES]
    try:
        register = load_register(path, orgs=["wmp", "warks"], rule_ids=rule_ids)
    except AuditError as exc:
        check_error(exc, path)
        return
    for entry in register.entries:
        assert entry.id and entry.rule in rule_ids


@pytest.mark.slow
@FUZZ
@given(data=st.one_of(mutated(REGISTER * 2), random_toml()))
def test_fuzzed_exceptions_registers(tmp_path: Path, data: bytes) -> None:
    _register(tmp_path, data)


def test_the_unmutated_register_loads(tmp_path: Path) -> None:
    tomllib.loads(REGISTER)
    _register(tmp_path, REGISTER.encode())
