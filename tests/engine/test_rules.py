"""Every rule's embedded examples, and clear one-line errors for broken rule files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from accessaudit.engine.rulefile import Rule, catalogue_hash, load_rule, load_rules
from accessaudit.errors import RuleError
from accessaudit.pipeline.rulecheck import run_examples

CATALOGUE = load_rules()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rule_example" in metafunc.fixturenames:
        cases = [(r, e) for r in CATALOGUE for e in r.examples]
        metafunc.parametrize("rule_example", cases, ids=[f"{r.id}:{e.name}" for r, e in cases])


def test_rule_example(rule_example: tuple[Rule, object]) -> None:
    rule, example = rule_example
    single = Rule(**{**rule.__dict__, "examples": (example,)})
    [result] = run_examples([single])
    assert result.got == result.expected


@pytest.mark.parametrize("rule", CATALOGUE, ids=[r.id for r in CATALOGUE])
def test_every_rule_has_positive_and_negative_examples(rule: Rule) -> None:
    assert any(e.expect for e in rule.examples), "needs an example that fires"
    assert any(not e.expect for e in rule.examples), "needs an example that does not fire"
    assert rule.rationale and rule.remediation and rule.title


def test_catalogue_ids_and_hash() -> None:
    assert {r.id for r in CATALOGUE} >= {
        "cross-org-direct-member",
        "cross-org-nested-access",
        "cross-org-group-nesting",
        "cross-org-privileged-access",
        "mixed-group",
        "unattributed-with-access",
        "conflicting-attribution",
        "inactive-cross-org-access",
    }
    assert catalogue_hash(CATALOGUE) == catalogue_hash(list(reversed(CATALOGUE)))
    assert len(catalogue_hash(CATALOGUE)) == 64


GOOD = (Path(__file__).resolve().parents[2] / "rules" / "mixed-group.toml").read_text()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace('severity = "medium"', 'severity = "medium'), r"mixed-group\.toml: .*line 4"),
        ('colour = "red"\n' + GOOD, r"mixed-group\.toml:1: unknown key 'colour'"),
        (GOOD.replace('severity = "medium"', 'severity = "urgent"'), "unknown severity 'urgent'"),
        (GOOD.replace('action = "split-group"', 'action = "delete"'), "unknown action 'delete'"),
        (GOOD.replace('id = "mixed-group"', 'id = "other"'), "must equal the file name"),
        (GOOD.replace('key = ["group_id"]', 'key = ["colour"]'), "key column 'colour'"),
        (GOOD.replace("${min_members}", "${max_members}"), r"\$\{max_members\}"),
        (
            GOOD.replace('title = "Mixed group used by both forces"\n', ""),
            "missing required key 'title'",
        ),
        (
            GOOD.replace('version = "1.0"\n', ""),
            r"mixed-group\.toml: missing required key 'version' \(add version = \"1\.0\"",
        ),
        (GOOD.replace('version = "1.0"', "version = 1"), r"mixed-group\.toml:2: 'version' must"),
        (GOOD.replace('version = "1.0"', 'version = "v1"'), r"MAJOR\.MINOR, got 'v1'"),
    ],
)
def test_bad_rule_file_names_file(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, "mixed-group", text)
    with pytest.raises(RuleError, match=expected) as err:
        load_rule(path)
    assert str(path) in str(err.value)
    assert "\n" not in err.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # an override reverses what a reviewer reads of the query; the file runs something else
        (
            GOOD.replace("SELECT group_id", "SELECT \u202egroup_id"),
            r"mixed-group\.toml:19:8: hidden character U\+202E",
        ),
        (
            GOOD.replace("SELECT group_id", "SELECT group\u200b_id"),
            r"mixed-group\.toml:19:13: hidden character U\+200B",
        ),
        (
            GOOD.replace('version = "1.0"', 'version = "1.0"\x1b[8m'),
            r"mixed-group\.toml:2:16: hidden character U\+001B",
        ),
    ],
)
def test_hidden_characters_in_a_rule_file_are_refused(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _write(tmp_path, "mixed-group", text)
    with pytest.raises(RuleError, match=expected) as err:
        load_rule(path)
    assert "\n" not in str(err.value) and "TOML escape" in str(err.value)


def test_crlf_rule_file_and_escaped_hostile_example_data_load(tmp_path: Path) -> None:
    """Windows line ends are not hidden characters, and an example may hold a bidi override
    written as a TOML escape: it is data, plain ASCII in the file."""
    text = GOOD.replace("\n", "\r\n")
    path = tmp_path / "mixed-group.toml"
    path.write_bytes(text.encode())
    (tmp_path / "lf").mkdir()
    assert load_rule(path).query == load_rule(_write(tmp_path / "lf", "mixed-group", GOOD)).query
    escaped = GOOD.replace('name = "project group', 'name = "\\u202eproject group')
    assert escaped != GOOD and "\\u202e" in escaped
    rule = load_rule(_write(tmp_path, "mixed-group", escaped))
    assert rule.examples[0].name.startswith("\u202eproject group")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT group_id FROM nowhere", "query failed"),
        ("SELEC group_id FROM composition", "query failed"),
        ("SELECT org AS resource_org FROM groups", "does not return key column 'group_id'"),
        ("SELECT group_id, name FROM groups", "unknown column 'name'"),
    ],
)
def test_bad_sql_names_file(tmp_path: Path, query: str, expected: str) -> None:
    path = _write(tmp_path, "mixed-group", _with_query(query))
    rule = load_rule(path)
    with pytest.raises(RuleError, match=expected) as err:
        run_examples([Rule(**{**rule.__dict__, "examples": (GOOD_EXAMPLE,)})])
    assert str(path) in str(err.value)


def _with_query(query: str) -> str:
    """The good rule file with another query (its settings and examples kept)."""
    head, _, rest = GOOD.partition('query = """')
    return head + f'query = """{query}"""' + rest.split('"""', 1)[1]


def _without_examples(expect: str | None) -> str:
    """The good rule file keeping only its examples whose ``expect`` is ``expect`` (None: no
    examples at all)."""
    head, *examples = GOOD.split("[[examples]]")
    kept = [e for e in examples if expect is not None and f"expect = {expect}" in e]
    return head + "".join(f"[[examples]]{e}" for e in kept)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_without_examples(None), "no positive example"),
        (_without_examples("[]"), "no positive example"),
        (_without_examples('[["'), "no negative example"),
    ],
)
def test_rule_needs_positive_and_negative_examples(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _write(tmp_path, "mixed-group", text)
    with pytest.raises(RuleError) as err:
        load_rule(path)
    assert err.value.message.startswith(f"{path}: {expected} ")
    assert "\n" not in str(err.value)
    with pytest.raises(RuleError, match=expected):  # a site rule is refused the same way
        load_rules([tmp_path])


def test_examples_must_be_an_array_of_tables(tmp_path: Path) -> None:
    text = _without_examples(None).replace("[settings]", "examples = 3\n[settings]")
    with pytest.raises(RuleError, match=r"mixed-group\.toml:\d+: 'examples' must be an array"):
        load_rule(_write(tmp_path, "mixed-group", text))


GOOD_EXAMPLE = load_rule(
    Path(__file__).resolve().parents[2] / "rules" / "mixed-group.toml"
).examples[0]


def test_site_rules_cannot_reuse_builtin_id(tmp_path: Path) -> None:
    _write(tmp_path, "mixed-group", GOOD)
    with pytest.raises(RuleError, match="already defined"):
        load_rules([tmp_path])


def test_missing_site_folder(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match=r"rule folder .* not found"):
        load_rules([tmp_path / "nope"])


def test_every_builtin_rule_declares_its_version() -> None:
    for path in sorted((Path(__file__).resolve().parents[2] / "rules").glob("*.toml")):
        assert re.search(r'^version = "\d+\.\d+"$', path.read_text(), re.M), path.name


def test_site_rule_is_loaded(tmp_path: Path) -> None:
    _write(tmp_path, "site-mixed", GOOD.replace('id = "mixed-group"', 'id = "site-mixed"'))
    ids = [r.id for r in load_rules([tmp_path])]
    assert "site-mixed" in ids and "mixed-group" in ids


def test_failing_example_is_reported(tmp_path: Path) -> None:
    text = GOOD.replace('expect = [["prj"]]', 'expect = [["not-this"]]')
    [bad] = [
        r for r in run_examples([load_rule(_write(tmp_path, "mixed-group", text))]) if not r.passed
    ]
    assert bad.expected == frozenset({("not-this",)})
    assert bad.got == frozenset({("prj",)})


def test_bad_sql_is_caught_before_any_collection(tmp_path: Path) -> None:
    from accessaudit.pipeline.rulecheck import check_queries

    rule = load_rule(_write(tmp_path, "mixed-group", _with_query("SELECT group_id FROM nowhere")))
    with pytest.raises(RuleError, match=r"mixed-group\.toml: query failed"):
        check_queries([rule])
    check_queries(CATALOGUE)  # the shipped catalogue plans cleanly
