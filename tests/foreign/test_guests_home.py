"""B2B guests resolved to their account in another collected tenant (analysis.foreign.
guests_at_home): data built here, truth computed here."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from accessaudit.analysis.foreign import guests_at_home
from accessaudit.config.settings import Settings
from accessaudit.engine.rulefile import load_rules
from accessaudit.model import (
    ACCOUNTS_SCHEMA,
    GRANTS_SCHEMA,
    GROUPS_SCHEMA,
    MEMBERSHIPS_SCHEMA,
    conform,
)
from accessaudit.pipeline.analyse import analyse

NOW = datetime(2026, 11, 1, tzinfo=UTC)
A, B = "entra:tenant-a", "entra:tenant-b"

SETTINGS = Settings.model_validate(
    {
        "organisations": [
            {"id": "wmp", "name": "W", "match": {"upn_suffix": ["@wmp.example"]}},
            {"id": "warks", "name": "K", "match": {"upn_suffix": ["@warks.example"]}},
        ],
        "sources": [{"kind": "sample", "name": "s"}],
    }
)


def _accounts() -> pl.DataFrame:
    rows = [
        # tenant B's own staff
        {"source": B, "account_id": "b-jane", "upn": "jane@warks.example",
         "mail": "jane.doe@warks.example"},
        {"source": B, "account_id": "b-tom", "upn": "tom@warks.example", "mail": None},
        # guests in tenant A: home domains no matcher lists (a new tenant's onmicrosoft name)
        {"source": A, "account_id": "g-jane", "upn": "jane.doe_newk.example#EXT#@a.example",
         "mail": "Jane.Doe@warks.example", "home_domain": "newk.example", "kind": "guest"},
        {"source": A, "account_id": "g-tom", "upn": "tom_newk.example#EXT#@a.example",
         "mail": "tom@warks.example", "home_domain": "newk.example", "kind": "guest"},
        # a guest whose own signal says West Mercia, though its home account is Warwickshire's
        {"source": A, "account_id": "g-odd", "upn": "x_wmp.example#EXT#@a.example",
         "mail": "jane.doe@warks.example", "home_domain": "wmp.example", "kind": "guest"},
        # a guest of nobody collected
        {"source": A, "account_id": "g-none", "upn": "z_else.example#EXT#@a.example",
         "mail": "z@else.example", "home_domain": "else.example", "kind": "guest"},
    ]  # fmt: skip
    return conform(pl.DataFrame(rows), ACCOUNTS_SCHEMA).with_columns(enabled=pl.lit(True))


def test_guests_take_their_home_accounts_organisation() -> None:
    from accessaudit.analysis.attribution import attribute_accounts

    got = guests_at_home(attribute_accounts(_accounts(), SETTINGS))
    rows = {r["account_id"]: r for r in got.to_dicts()}
    # by mail (case-insensitive) and by UPN
    assert rows["g-jane"]["org"] == rows["g-tom"]["org"] == "warks"
    assert rows["g-jane"]["org_evidence"] == [f"home_account:warks ({B})"]
    assert rows["g-jane"]["org_conflict"] is False
    # its own signal stays first; the home account's disagrees: conflicting
    assert rows["g-odd"]["org"] == "wmp" and rows["g-odd"]["org_conflict"] is True
    assert f"home_account:warks ({B})" in rows["g-odd"]["org_evidence"]
    assert rows["g-none"]["org"] == "unattributed"
    assert (rows["b-jane"]["org"], rows["b-jane"]["org_evidence"]) == (
        "warks",
        ["upn_suffix:warks"],
    )


def test_a_resolved_guest_in_the_other_forces_group_is_a_finding() -> None:
    groups = conform(
        pl.DataFrame(
            {
                "source": [A],
                "group_id": ["wmp-team"],
                "name": ["WMP team"],
                "mastered": ["cloud"],
                "privileged": [False],
                "kind": ["security"],
            }
        ),
        GROUPS_SCHEMA,
    )
    memberships = conform(
        pl.DataFrame(
            {"source": [A, A], "group_id": ["wmp-team"] * 2, "member_id": ["g-jane", "b-tom"],
             "member_kind": ["account"] * 2, "via": ["graph"] * 2}
        ),
        MEMBERSHIPS_SCHEMA,
    )  # fmt: skip
    wmp, warks = SETTINGS.organisations
    named = wmp.model_copy(update={"match": wmp.match.model_copy(update={"names": ["WMP team"]})})
    settings = SETTINGS.model_copy(update={"organisations": [named, warks]})
    tables = {
        "accounts": _accounts(),
        "groups": groups,
        "memberships": memberships,
        "grants": pl.DataFrame(schema=GRANTS_SCHEMA),
    }
    a = analyse(tables, settings, load_rules(), as_of=NOW)
    direct = a.findings.filter(pl.col("rule_id") == "cross-org-direct-member")
    # the guest, known as Warwickshire's only through its home account, and tenant B's own
    assert sorted(direct["account_id"]) == ["b-tom", "g-jane"]
    guest = a.findings.filter(pl.col("rule_id") == "cross-org-guest")
    assert guest["account_id"].to_list() == ["g-jane"]
