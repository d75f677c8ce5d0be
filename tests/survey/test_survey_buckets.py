"""The survey's buckets, access figures, OU tree and coverage on tables built here, with every
expected figure counted from the rows below."""

from __future__ import annotations

from typing import Any

import polars as pl

from accessaudit.analysis import survey as sv
from accessaudit.analysis.attribution import attribute_accounts, attribute_groups
from accessaudit.analysis.expand import group_closure
from accessaudit.config.settings import Settings, parse_settings
from accessaudit.model import (
    ACCOUNTS_SCHEMA,
    GRANTS_SCHEMA,
    GROUPS_SCHEMA,
    MEMBERSHIPS_SCHEMA,
    conform,
)

BASE = "DC=corp,DC=test"
A_OU = f"OU=Alpha,{BASE}"
B_OU = f"OU=Beta,{BASE}"


def settings(extra: dict[str, Any] | None = None) -> Settings:
    data: dict[str, Any] = {
        "organisations": [
            {"id": "a", "name": "Alpha", "match": {"ou": [A_OU]}},
            {"id": "b", "name": "Beta", "match": {"ou": [B_OU]}},
        ],
        "sources": [{"kind": "sample", "name": "s", "host": "a"}],
        **(extra or {}),
    }
    return parse_settings(data, "", "test.toml")


def account(i: str, dn: str, **kw: Any) -> dict[str, Any]:
    return {"source": "ad:corp", "account_id": i, "sid": f"S-1-5-21-1-2-3-{i}", "username": i,
            "dn": dn, "kind": "user", "enabled": True, **kw}  # fmt: skip


def accounts_table() -> pl.DataFrame:
    rows = [
        # Alpha: three in OU=Users, one in OU=Admins
        account("1", f"CN=one,OU=Users,{A_OU}", upn="one@alpha.test", employee_id="1000001"),
        account("2", f"CN=two,OU=Users,{A_OU}", upn="two@alpha.test", employee_id="1000002"),
        account("3", f"CN=th\\,ree,OU=Users,{A_OU}", upn="three@ALPHA.test", company="Alpha Co"),
        account("4", f"CN=four,OU=Admins,{A_OU}", upn="four@alpha.test", employee_id="AB123"),
        # Beta: one, with Alpha's UPN suffix
        account("5", f"CN=five,OU=Users,{B_OU}", upn="five@alpha.test", employee_id="2000001"),
        # nobody's: CN=Users
        account("6", f"CN=six,CN=Users,{BASE}", upn="six@beta.test", company=" Alpha Co "),
        account("7", f"CN=seven,CN=Users,{BASE}", username="svc-seven"),
    ]
    return conform(pl.DataFrame(rows, infer_schema_length=None), ACCOUNTS_SCHEMA)


def groups_table() -> pl.DataFrame:
    rows = [
        {"source": "ad:corp", "group_id": "g1", "sid": "S-1-5-21-1-2-3-900", "name": "A-Files",
         "dn": f"CN=A-Files,{A_OU}", "privileged": False},
        {"source": "ad:corp", "group_id": "g2", "sid": "S-1-5-21-1-2-3-512",
         "name": "Domain Admins", "dn": f"CN=Domain Admins,CN=Users,{BASE}", "privileged": True},
        {"source": "ad:corp", "group_id": "g3", "sid": "S-1-5-21-1-2-3-513",
         "name": "Domain Users", "dn": f"CN=Domain Users,CN=Users,{BASE}", "privileged": False},
    ]  # fmt: skip
    return conform(pl.DataFrame(rows), GROUPS_SCHEMA)


def memberships_table() -> pl.DataFrame:
    edges = [
        ("g1", "1", "account", "member"),
        ("g1", "6", "account", "member"),
        ("g2", "g1", "group", "member"),  # A-Files nested into Domain Admins
        ("g2", "5", "account", "member"),
        *(("g3", str(i), "account", "primaryGroupID") for i in range(1, 8)),
    ]
    return conform(
        pl.DataFrame(
            [
                {"source": "ad:corp", "group_id": g, "member_id": m, "member_kind": k, "via": v}
                for g, m, k, v in edges
            ]
        ),
        MEMBERSHIPS_SCHEMA,
    )


def grants_table() -> pl.DataFrame:
    rows = [{"source": "ad:corp", "principal_id": "7", "resource_id": "r1",
             "resource_kind": "delegation", "right": "GenericAll"}]  # fmt: skip
    return conform(pl.DataFrame(rows), GRANTS_SCHEMA)


def surveyed() -> tuple[sv.Survey, sv.Survey, pl.DataFrame]:
    s = settings()
    accounts = attribute_accounts(accounts_table(), s, grants_table())
    groups = attribute_groups(groups_table(), accounts, s)
    priv = sv.privileged_groups(groups, group_closure(memberships_table()))
    acc = sv.access(accounts["account_id"], "account", memberships_table(), grants_table(), priv)
    gacc = sv.group_access(groups["group_id"], memberships_table(), grants_table(), priv)
    return sv.survey(accounts, "accounts", acc), sv.survey(groups, "groups", gacc), accounts


def bucket(s: sv.Survey, signal: str, key: str | None) -> dict[str, Any]:
    got = s.buckets.filter(
        (pl.col("signal") == signal)
        & (pl.col("key").is_null() if key is None else pl.col("key") == key)
    )
    assert got.height == 1, (signal, key)
    return got.row(0, named=True)


def test_access_counts_direct_memberships_privileged_through_nesting_and_grants() -> None:
    accounts, _, _ = surveyed()
    got = {r["id"]: (r["memberships"], r["privileged"], r["grants"], r["holds_access"])
           for r in accounts.objects.iter_rows(named=True)}  # fmt: skip
    # primary groups never count; A-Files reaches Domain Admins by nesting
    assert got == {
        "1": (1, 1, 0, True),
        "2": (0, 0, 0, False),
        "3": (0, 0, 0, False),
        "4": (0, 0, 0, False),
        "5": (1, 1, 0, True),
        "6": (1, 1, 0, True),
        "7": (0, 0, 1, True),
    }


def test_statuses_and_totals() -> None:
    accounts, _, _ = surveyed()
    assert sv.totals(accounts.objects) == {
        "objects": 7, "with_access": 4,
        "attributed": 5, "shared": 0, "unattributed": 2, "conflicting": 0,
        "attributed_with_access": 2, "shared_with_access": 0,
        "unattributed_with_access": 2, "conflicting_with_access": 0,
    }  # fmt: skip


def test_ou_tree_counts_every_container_and_collapses_below_one_owner() -> None:
    accounts, _, _ = surveyed()
    head = bucket(accounts, "ou", BASE.lower())
    assert (head["objects"], head["depth"], head["unattributed"]) == (7, 0, 2)
    assert head["orgs"] == [{"org": "a", "objects": 4}, {"org": "b", "objects": 1}]
    alpha = bucket(accounts, "ou", A_OU.lower())
    assert (alpha["objects"], alpha["depth"], alpha["collapsed"]) == (4, 1, False)
    users = bucket(accounts, "ou", f"ou=users,{A_OU}".lower())
    # an escaped comma in the object's own name does not split it
    assert (users["objects"], users["depth"], users["collapsed"]) == (3, 2, True)
    assert bucket(accounts, "ou", f"ou=admins,{A_OU}".lower())["collapsed"] is True
    cn_users = bucket(accounts, "ou", f"cn=users,{BASE}".lower())
    assert (cn_users["objects"], cn_users["unattributed"], cn_users["collapsed"]) == (2, 2, False)
    # at risk: memberships and grants of the two unattributed accounts (6: 1, 7: 1)
    assert (cn_users["access_at_risk"], cn_users["open_with_access"]) == (2, 2)


def test_signal_buckets_are_keyed_as_the_matchers_compare() -> None:
    accounts, _, _ = surveyed()
    alpha = bucket(accounts, "upn_suffix", "@alpha.test")
    assert (alpha["objects"], alpha["value"]) == (5, "@alpha.test")
    assert alpha["orgs"] == [{"org": "a", "objects": 4}, {"org": "b", "objects": 1}]
    company = bucket(accounts, "company", "alpha co")  # case-insensitive, as compared
    assert (company["objects"], company["unattributed"]) == (1, 0)
    spaced = bucket(accounts, "company", " alpha co ")  # a matcher for "Alpha Co" misses it
    assert (spaced["objects"], spaced["unattributed"], spaced["value"]) == (1, 1, " Alpha Co ")
    assert bucket(accounts, "employee_id", r"^1\d{6}$")["objects"] == 2
    assert bucket(accounts, "employee_id", r"^2\d{6}$")["objects"] == 1
    assert bucket(accounts, "employee_id", r"^AB\d{3}$")["objects"] == 1
    assert bucket(accounts, "employee_id", None)["objects"] == 3  # no staff number
    assert bucket(accounts, "name_prefix", "svc-")["objects"] == 1
    assert bucket(accounts, "mail_domain", None)["objects"] == 7


def test_buckets_come_largest_access_at_risk_first() -> None:
    accounts, _, _ = surveyed()
    risk = accounts.buckets["access_at_risk"].to_list()
    assert risk == sorted(risk, reverse=True)
    assert accounts.buckets.row(0, named=True)["access_at_risk"] == 2


def test_groups_members_and_privilege() -> None:
    _, groups, _ = surveyed()
    got = {
        r["id"]: (r["memberships"], r["privileged"]) for r in groups.objects.iter_rows(named=True)
    }
    assert got == {"g1": (2, 1), "g2": (2, 1), "g3": (0, 0)}  # primary-group members left out
    assert bucket(groups, "ou", f"cn=users,{BASE}".lower())["unattributed"] == 2


def test_coverage_by_signal_from_the_evidence() -> None:
    _, _, accounts = surveyed()
    holds = pl.Series([True, False, False, False, True, True, True])
    cov = sv.coverage(accounts, holds)
    assert cov.to_dicts() == [
        {"signal": "ou", "fires": 5, "decides": 5, "fires_with_access": 2,
         "decides_with_access": 2},
    ]  # fmt: skip


def test_conflicts_by_the_signals_that_disagree() -> None:
    s = settings()
    orgs = [o.model_dump() for o in s.organisations]
    orgs[0]["match"]["upn_suffix"] = ["@alpha.test"]
    s2 = settings({"organisations": orgs})
    accounts = attribute_accounts(accounts_table(), s2)
    assert sv.conflicts(accounts).to_dicts() == [{"evidence": "ou:b, upn_suffix:a", "objects": 1}]
