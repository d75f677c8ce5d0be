"""Attribution: evidence for every matcher, precedence, conflicts, unattributed, owners."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from accessaudit.analysis.attribution import attribute_accounts, attribute_groups
from accessaudit.config.settings import Settings
from accessaudit.model import ACCOUNTS_SCHEMA, GROUPS_SCHEMA


def settings(**extra: Any) -> Settings:
    return Settings.model_validate(
        {
            "organisations": [
                {
                    "id": "wmp",
                    "name": "West Mercia",
                    "match": {
                        "ou": ["OU=West Mercia,DC=a,DC=l"],
                        "upn_suffix": ["@wm.example"],
                        "mail_domain": ["wm.example"],
                        "company": ["West Mercia Police"],
                        "employee_id": r"^1\d{6}$",
                        "name_prefix": ["WMP-"],
                        "privileged_groups": True,
                        "ids": ["S-1-5-21-1-2-3-9999"],
                    },
                },
                {
                    "id": "warks",
                    "name": "Warwickshire",
                    "match": {
                        "ou": ["OU=Warwickshire,DC=a,DC=l"],
                        "upn_suffix": ["@wk.example"],
                        "mail_domain": ["wk.example"],
                        "company": ["Warwickshire Police"],
                        "employee_id": r"^2\d{6}$",
                        "name_prefix": ["WARKS-"],
                        "sources": ["csv:athena"],
                    },
                },
                {
                    "id": "shared",
                    "name": "Shared",
                    "match": {
                        "ou": ["OU=Shared Services,DC=a,DC=l"],
                        "names": ["Domain Users"],
                        "owner": False,
                    },
                },
            ],
            "sources": [{"kind": "sample", "name": "s", "host": "wmp"}],
            **extra,
        }
    )


def accounts(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"source": "ad:x", "sid": f"S-1-5-21-1-2-3-{i}", **r} for i, r in enumerate(rows)],
        schema=ACCOUNTS_SCHEMA,
    )


def test_consistent_signals_give_org_with_all_evidence() -> None:
    df = attribute_accounts(
        accounts(
            {
                "account_id": "a",
                "dn": "CN=A,OU=Users,OU=West Mercia,DC=a,DC=l",
                "upn": "a@WM.example",
                "mail": "a.b@wm.example",
                "company": "west mercia police",
                "employee_id": "1000001",
                "username": "abc",
            }
        ),
        settings(),
    )
    row = df.row(0, named=True)
    assert row["org"] == "wmp" and row["org_conflict"] is False
    assert row["org_evidence"] == [
        "employee_id:wmp",
        "company:wmp",
        "ou:wmp",
        "upn_suffix:wmp",
        "mail_domain:wmp",
    ]


def test_mover_is_conflicting_and_precedence_decides() -> None:
    mover = {
        "account_id": "m",
        "dn": "CN=M,OU=Users,OU=West Mercia,DC=a,DC=l",
        "upn": "m@wm.example",
        "mail": "m@wk.example",
        "company": "Warwickshire Police",
        "employee_id": "2000001",
    }
    row = attribute_accounts(accounts(mover), settings()).row(0, named=True)
    assert (row["org"], row["org_conflict"]) == ("warks", True)
    assert set(row["org_evidence"]) == {
        "employee_id:warks",
        "company:warks",
        "ou:wmp",
        "upn_suffix:wmp",
        "mail_domain:warks",
    }
    ou_first = settings(attribution={"precedence": ["ou", "upn_suffix"]})
    assert attribute_accounts(accounts(mover), ou_first)["org"].to_list() == ["wmp"]


def test_no_signal_is_unattributed_and_ou_needs_a_boundary() -> None:
    df = attribute_accounts(
        accounts(
            {"account_id": "x", "dn": "CN=x,CN=Users,DC=a,DC=l", "upn": "x@a.l"},
            # "OU=Not West Mercia" must not match the suffix "OU=West Mercia,..."
            {"account_id": "y", "dn": "CN=y,OU=Not West Mercia,DC=a,DC=l"},
            {"account_id": "z", "dn": None, "mail": "z@evilwm.example"},
        ),
        settings(),
    )
    assert df["org"].to_list() == ["unattributed"] * 3
    assert df["org_evidence"].to_list() == [[], [], []]


def test_explicit_ids_override() -> None:
    df = attribute_accounts(
        accounts({"account_id": "q", "dn": "CN=q,CN=Users,DC=a,DC=l"}),
        settings(),
    ).with_columns()
    assert df["org"].to_list() == ["unattributed"]
    df = attribute_accounts(
        pl.DataFrame(
            [{"source": "ad:x", "account_id": "q", "sid": "S-1-5-21-1-2-3-9999"}],
            schema=ACCOUNTS_SCHEMA,
        ),
        settings(),
    )
    assert df["org"].to_list() == ["wmp"]


@pytest.mark.parametrize(
    ("group", "org", "conflict"),
    [
        (
            {"name": "WMP-RES-1", "dn": "CN=WMP-RES-1,OU=Groups,OU=West Mercia,DC=a,DC=l"},
            "wmp",
            False,
        ),
        (
            {"name": "WMP-RES-2", "dn": "CN=WMP-RES-2,OU=Groups,OU=Warwickshire,DC=a,DC=l"},
            "warks",
            True,
        ),
        (
            {
                "name": "Domain Admins",
                "dn": "CN=Domain Admins,CN=Users,DC=a,DC=l",
                "privileged": True,
            },
            "wmp",
            False,
        ),
        ({"name": "Domain Users", "dn": "CN=Domain Users,CN=Users,DC=a,DC=l"}, "shared", False),
        ({"name": "Legacy", "dn": "CN=Legacy,CN=Users,DC=a,DC=l"}, "unattributed", False),
        ({"name": "Legacy", "dn": None, "managed_by": "owner-k"}, "warks", False),
        ({"name": "athena: Officer", "source": "csv:athena"}, "warks", False),
    ],
)
def test_groups(group: dict[str, Any], org: str, conflict: bool) -> None:
    owner = attribute_accounts(
        accounts({"account_id": "owner-k", "upn": "o@wk.example"}), settings()
    )
    row = {"source": "ad:x", "group_id": "g", "privileged": False, **group}
    out = attribute_groups(pl.DataFrame([row], schema=GROUPS_SCHEMA), owner, settings())
    assert (out["org"][0], out["org_conflict"][0]) == (org, conflict)
