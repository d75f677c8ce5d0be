"""Attribution of guests by their home domain and of service principals by owners and their
application's tenant, on hand-built tables (the Entra connector's side is in tests/entra)."""

from __future__ import annotations

from typing import Any

import polars as pl

from accessaudit.analysis.attribution import attribute_accounts, attribute_groups
from accessaudit.config.settings import Settings
from accessaudit.model import ACCOUNTS_SCHEMA, GRANTS_SCHEMA, GROUPS_SCHEMA

OWN_TENANT = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def settings() -> Settings:
    def org(org_id: str, domain: str, **extra: Any) -> dict[str, Any]:
        match = {"upn_suffix": [f"@{domain}"], "mail_domain": [domain], **extra}
        return {"id": org_id, "name": org_id, "match": match}

    return Settings.model_validate(
        {
            "organisations": [
                org("wmp", "wm.example", name_prefix=["WMP-"]),
                org("warks", "wk.example", name_prefix=["WARKS-"], sources=[f"entra:{OWN_TENANT}"]),
            ],
            "sources": [{"kind": "sample", "name": "s", "host": "wmp"}],
        }
    )


def accounts(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame([{"source": "entra:t", **r} for r in rows], schema=ACCOUNTS_SCHEMA)


def ownership(*pairs: tuple[str, str]) -> pl.DataFrame:
    rows = [
        {"source": "entra:t", "principal_id": o, "resource_id": r, "resource_kind": "ownership"}
        for o, r in pairs
    ]
    return pl.DataFrame(rows, schema=GRANTS_SCHEMA)


def test_a_guests_upn_suffix_is_its_host_tenants_not_its_organisations() -> None:
    """The tenant's domain is West Mercia's: a Warwickshire guest's UPN ends with it, yet it is
    Warwickshire's (its home domain), with no conflict; a member of the tenant stays by UPN."""
    df = attribute_accounts(
        accounts(
            {
                "account_id": "g",
                "upn": "ann_wk.example#EXT#@wm.example",
                "kind": "guest",
                "home_domain": "wk.example",
            },
            {"account_id": "u", "upn": "bob@wm.example", "kind": "user"},
        ),
        settings(),
    )
    rows = {r["account_id"]: r for r in df.iter_rows(named=True)}
    assert (rows["g"]["org"], rows["g"]["org_conflict"]) == ("warks", False)
    assert rows["g"]["org_evidence"] == [
        "upn_suffix:warks (guest home domain from #EXT# UPN)",
        "mail_domain:warks (guest home domain from #EXT# UPN)",
    ]
    assert (rows["u"]["org"], rows["u"]["org_evidence"]) == ("wmp", ["upn_suffix:wmp"])
    assert df.columns == [*ACCOUNTS_SCHEMA.names(), "org", "org_evidence", "org_conflict"]


def test_service_principals_by_owners_and_application_tenant() -> None:
    df = attribute_accounts(
        accounts(
            {"account_id": "k1", "upn": "k1@wk.example", "kind": "user"},
            {"account_id": "w1", "upn": "w1@wm.example", "kind": "user"},
            {"account_id": "bot", "username": "Deploy bot", "kind": "service"},
            {"account_id": "both", "username": "Shared bot", "kind": "service"},
            {
                "account_id": "partner",
                "username": "Partner",
                "kind": "service",
                "app_tenant": OWN_TENANT,
            },
            {"account_id": "legacy", "username": "Legacy", "kind": "service"},
        ),
        settings(),
        ownership(("k1", "bot"), ("k1", "both"), ("w1", "both")),
    )
    got = {
        r["account_id"]: (r["org"], r["org_evidence"], r["org_conflict"])
        for r in df.iter_rows(named=True)
    }
    assert got["bot"] == ("warks", ["owner:warks"], False)
    # owners of both forces: a conflict for a person to decide
    assert got["both"] == ("wmp", ["owner:wmp", "owner:warks"], True)
    assert got["partner"] == ("warks", ["sources:warks (its application's tenant)"], False)
    assert got["legacy"] == ("unattributed", [], False)


def test_an_application_that_is_a_principal_has_the_principals_organisation() -> None:
    acc = attribute_accounts(
        accounts(
            {"account_id": "k1", "upn": "k1@wk.example", "kind": "user"},
            {"account_id": "bot", "username": "Deploy bot", "kind": "service"},
        ),
        settings(),
        ownership(("k1", "bot")),
    )
    groups = pl.DataFrame(
        [
            {"source": "entra:t", "group_id": "bot", "name": "Deploy bot", "kind": "app-role"},
            {"source": "entra:t", "group_id": "app", "name": "WMP-App", "kind": "app-role"},
        ],
        schema=GROUPS_SCHEMA,
    )
    out = attribute_groups(groups, acc, settings())
    assert dict(out.select("group_id", "org").iter_rows()) == {"bot": "warks", "app": "wmp"}
    assert out.filter(group_id="bot")["org_evidence"].to_list() == [["owner:warks"]]
