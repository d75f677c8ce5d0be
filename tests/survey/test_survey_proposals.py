"""Proposals on a directory built here: what qualifies, what each moves and conflicts, in which
round, and what never is proposed; the [[matchers]] they become, loaded back."""

from __future__ import annotations

import tomllib
from typing import Any

import polars as pl
import pytest

from accessaudit.analysis import survey as sv
from accessaudit.analysis.attribution import attribute_accounts
from accessaudit.analysis.survey_proposals import Proposal, propose
from accessaudit.config.organisations import Organisation
from accessaudit.config.settings import Settings, parse_settings
from accessaudit.config.survey import AddedMatchers, fragment, toml_string
from accessaudit.errors import ConfigError
from accessaudit.model import ACCOUNTS_SCHEMA, conform

BASE = "DC=corp,DC=test"
A_OU, B_OU, S_OU = f"OU=Alpha,{BASE}", f"OU=Beta,{BASE}", f"OU=Shared,{BASE}"
OLD_OU = f"OU=Alpha Old,{BASE}"


def settings(extra: dict[str, Any] | None = None, survey: dict[str, Any] | None = None) -> Settings:
    data: dict[str, Any] = {
        "organisations": [
            {"id": "a", "name": "Alpha", "match": {"ou": [A_OU], "company": ["Alpha Police"]}},
            {"id": "b", "name": "Beta", "match": {"ou": [B_OU]}},
            {"id": "shared", "name": "Shared", "match": {"ou": [S_OU], "owner": False}},
        ],
        "sources": [{"kind": "sample", "name": "s", "host": "a"}],
        "survey": {"min_share": 0.9, "min_support": 3, **(survey or {})},
        **(extra or {}),
    }
    return parse_settings(data, "", "test.toml")


def table() -> pl.DataFrame:
    rows: list[dict[str, Any]] = []

    def add(n: int, dn: str, upn: str | None, **kw: Any) -> None:
        for _ in range(n):
            i = str(len(rows))
            rows.append({"source": "ad:corp", "account_id": f"u{i:>03}", "username": f"u{i}",
                         "dn": f"CN=u{i},{dn}", "upn": upn and f"u{i}{upn}", **kw})  # fmt: skip

    add(19, A_OU, "@alpha.test")  # 0-18
    add(1, A_OU, "@beta.test")  # 19: Alpha's with Beta's suffix (a mover)
    add(10, B_OU, "@beta.test")  # 20-29
    add(4, f"CN=Users,{BASE}", "@alpha.test")  # 30-33: moved by the suffix
    add(3, f"OU=Users,{OLD_OU}", "@alpha.test")  # 34-36: the old OU, round 2
    add(2, f"CN=Users,{BASE}", "@beta.test", company="Alpha Polise")  # 37-38
    add(3, f"OU=Users,{A_OU}", None, company="Alpha Polise")  # 39-41
    add(4, S_OU, "@corp.test")  # 42-45: shared services
    add(1, f"CN=Users,{BASE}", "@corp.test")  # 46: nobody's, with the shared suffix
    return conform(pl.DataFrame(rows, infer_schema_length=None), ACCOUNTS_SCHEMA)


def proposals(s: Settings) -> tuple[list[Proposal], list[Organisation]]:
    t = table()
    current = attribute_accounts(t, s)
    acc = pl.DataFrame({"id": t["account_id"], "memberships": [1] * t.height,
                        "privileged": [0] * t.height, "grants": [0] * t.height})  # fmt: skip
    survey = sv.survey(current, "accounts", acc)
    return propose(survey, current, s.organisations,
                   min_share=s.survey.min_share, min_support=s.survey.min_support)  # fmt: skip


def test_proposals_with_their_evidence_moves_and_conflicts() -> None:
    got, _ = proposals(settings())
    rows = [(p.signal, p.value, p.org, p.round, p.support, p.holders, p.moves, p.conflicts)
            for p in got]  # fmt: skip
    # @alpha.test: 19 of its 19 attributed holders are a's; the mover in OU=Alpha makes beta's
    # 11 attributed holders 10/11 = 90.9% b's, still above 0.9: proposed, with the mover as its
    # conflict; the old OU in round 2, once @alpha.test attributes all three of its accounts.
    # Largest access moved first (every account here holds one membership).
    assert rows == [
        ("upn_suffix", "@alpha.test", "a", 1, 19, 26, 7, 0),
        ("ou", OLD_OU, "a", 2, 3, 3, 3, 0),
        ("company", "Alpha Polise", "a", 1, 3, 5, 2, 0),
        ("upn_suffix", "@beta.test", "b", 1, 11, 13, 2, 1),
    ]
    by_value = {p.value: p for p in got}
    assert by_value["@alpha.test"].moved == [f"u{i:>03}" for i in range(30, 37)]
    assert by_value["@beta.test"].moved == ["u037", "u038"]
    assert by_value["@beta.test"].conflicting == ["u019"]
    assert by_value["@alpha.test"].reason == (
        "100.0% of the 19 accounts with this upn_suffix attributed by the configuration are a's"
    )
    assert by_value[OLD_OU].reason.endswith("attributed with the earlier proposals are a's")


def test_never_shared_never_the_domain_head_never_a_partly_grounded_container() -> None:
    got, _ = proposals(settings())
    values = {p.value for p in got}
    assert "@corp.test" not in values  # 4/4 shared holders: sharing is a decision
    # CN=Users after round 1: 4 of its 7 accounts are a's, 2 conflicting, u046 has no signal:
    # proposing it would hand u046 to a on no evidence of its own
    assert BASE not in values and f"CN=Users,{BASE}" not in values
    assert f"OU=Users,{OLD_OU}" not in values  # the higher OU is proposed instead


def test_a_spelling_variant_is_named() -> None:
    got, _ = proposals(settings())
    variant = [p for p in got if p.signal == "company"]
    # "Alpha Polise": 3 attributed holders (OU=Users under Alpha), all a's; 2 unattributed
    assert [(p.value, p.org, p.moved, p.note) for p in variant] == [
        ("Alpha Polise", "a", ["u037", "u038"], "spelling variant of 'Alpha Police'")
    ]


def test_min_support_and_min_share_hold_proposals_back() -> None:
    got, _ = proposals(settings(survey={"min_support": 12}))
    assert [(p.signal, p.value) for p in got] == [("upn_suffix", "@alpha.test")]
    got, _ = proposals(settings(survey={"min_share": 0.95}))
    assert "@beta.test" not in {p.value for p in got}


def test_applied_proposals_attribute_what_they_said_they_move() -> None:
    s = settings()
    got, orgs = proposals(s)
    after = attribute_accounts(table(), s.model_copy(update={"organisations": orgs}))
    moved = {i for p in got for i in p.moved}
    orgs_after = dict(zip(after["account_id"], after["org"], strict=True))
    assert {orgs_after[i] for i in moved} <= {"a", "b"}
    assert sorted(after.filter(pl.col("org") == "unattributed")["account_id"]) == ["u046"]


def test_fragment_loads_back_as_matchers_merged_into_the_organisations() -> None:
    got, _ = proposals(settings())
    text = fragment([(p.added(), ["a comment"]) for p in got], "heading")
    data = tomllib.loads(text)
    assert [m["org"] for m in data["matchers"]] == ["a", "a", "a", "b"]
    s = settings({"matchers": data["matchers"]})
    alpha = next(o for o in s.organisations if o.id == "a")
    assert alpha.match.upn_suffix == ["@alpha.test"]
    assert alpha.match.ou == [A_OU, OLD_OU]


def test_toml_strings_escape_directory_text() -> None:
    hostile = 'x"\\\n\r\t\x7f\u202e\u200b\U0001f600 ok'
    text = f"v = {toml_string(hostile)}\n"
    assert "\n" not in text[:-1] and "\u202e" not in text and "\u200b" not in text
    assert tomllib.loads(text)["v"] == hostile
    entry = AddedMatchers(org="a", company=[hostile])
    assert tomllib.loads(fragment([(entry, ["c\nomment"])], "h\u202e"))["matchers"][0][
        "company"
    ] == [hostile]


def test_added_matchers_merge_employee_patterns_and_refuse_unknown_organisations() -> None:
    s = settings({"matchers": [{"org": "b", "employee_id": r"^2\d{6}$"},
                               {"org": "b", "employee_id": r"^WK\d{5}$"}]})  # fmt: skip
    beta = next(o for o in s.organisations if o.id == "b")
    assert beta.match.employee_id == r"(?:^2\d{6}$)|(?:^WK\d{5}$)"
    with pytest.raises(ConfigError, match=r"matchers\[0\]\.org: 'c' is not a configured"):
        settings({"matchers": [{"org": "c", "ou": ["OU=X"]}]})
    with pytest.raises(ConfigError, match=r"matchers\[0\]\.employee_id: polars cannot"):
        settings({"matchers": [{"org": "a", "employee_id": r"(?=x)"}]})
