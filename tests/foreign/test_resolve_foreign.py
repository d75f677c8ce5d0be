"""Foreign principals and sIDHistory resolved by SID across sources (analysis.foreign), the
domain_sid matcher, well-known SIDs and trust rows: data built here, truth computed here."""

from __future__ import annotations

import polars as pl

from accessaudit.analysis.attribution import attribute_accounts, attribute_groups
from accessaudit.analysis.foreign import (
    FOREIGN_SCHEMA,
    WELL_KNOWN_SIDS,
    domain_orgs,
    foreign_principals,
    resolve_foreign,
)
from accessaudit.config.organisations import Matchers, Organisation
from accessaudit.config.settings import Settings
from accessaudit.connectors.ldap.trusts import trust_rows
from accessaudit.engine.views import foreign as views_foreign
from accessaudit.model import ACCOUNTS_SCHEMA, GROUPS_SCHEMA, MEMBERSHIPS_SCHEMA, conform

OLD, NEW, GONE = "S-1-5-21-1-1-1", "S-1-5-21-2-2-2", "S-1-5-21-9-9-9"


def _acc(rows: list[dict[str, object]]) -> pl.DataFrame:
    return conform(pl.DataFrame(rows), ACCOUNTS_SCHEMA)


def _grp(rows: list[dict[str, object]]) -> pl.DataFrame:
    return conform(pl.DataFrame(rows), GROUPS_SCHEMA)


def _mem(rows: list[tuple[str, str, str, str, str]]) -> pl.DataFrame:
    cols = ["source", "group_id", "member_id", "member_kind", "via"]
    return conform(pl.DataFrame(rows, schema=cols, orient="row"), MEMBERSHIPS_SCHEMA)


ACCOUNTS = _acc(
    [
        {"source": "ad:old", "account_id": "old1", "sid": f"{OLD}-1000", "sid_history": []},
        {"source": "ad:new", "account_id": "bob", "sid": f"{NEW}-1100", "sid_history": []},
        # migrated from old1, and carrying a SID of a domain that no longer exists
        {
            "source": "ad:new",
            "account_id": "erin",
            "sid": f"{NEW}-1101",
            "sid_history": [f"{OLD}-1000", f"{GONE}-500"],
        },
        # an Entra copy synced from bob carries bob's SID: never the principal
        {"source": "entra:t", "account_id": "bob-cloud", "sid": f"{NEW}-1100", "sid_history": []},
        # holds the SID of an old-domain group in its history
        {
            "source": "ad:new",
            "account_id": "gail",
            "sid": f"{NEW}-1102",
            "sid_history": [f"{OLD}-2001"],
        },
    ]
)
GROUPS = _grp(
    [
        {"source": "ad:old", "group_id": "files", "sid": f"{OLD}-2000"},
        {"source": "ad:old", "group_id": "legacy", "sid": f"{OLD}-2001"},
        {"source": "ad:new", "group_id": "team", "sid": f"{NEW}-2000"},
    ]
)
MEMBERSHIPS = _mem(
    [
        ("ad:old", "files", f"{NEW}-1100", "foreign", "member"),  # bob by his FSP
        ("ad:old", "files", f"{NEW}-2000", "foreign", "member"),  # the new domain's team
        ("ad:old", "files", f"{GONE}-500", "foreign", "member"),  # only erin's history holds it
        ("ad:old", "files", f"{GONE}-777", "foreign", "member"),  # nobody holds it
        ("ad:old", "files", "S-1-5-11", "foreign", "member"),  # Authenticated Users
        ("ad:old", "apps", "old1", "account", "member"),  # erin's former account's own group
        ("ad:old", "files", "old1", "account", "primaryGroupID"),  # not carried by history
        ("ad:new", "team", "bob", "account", "member"),
    ]
)


def test_resolve_foreign_turns_fsps_and_sid_history_into_edges() -> None:
    got = resolve_foreign(MEMBERSHIPS, ACCOUNTS, GROUPS)
    rows = set(got.select("group_id", "member_id", "member_kind", "via").iter_rows())
    assert rows == {
        ("files", "bob", "account", "foreign-principal"),
        ("files", "team", "group", "foreign-principal"),
        ("files", "erin", "account", "sIDHistory"),  # the retired domain's FSP is erin
        ("apps", "erin", "account", "sIDHistory"),  # old1's direct group (not its primary one)
        ("legacy", "gail", "account", "sIDHistory"),  # a group's SID in the history
        ("files", f"{GONE}-777", "foreign", "member"),
        ("files", "S-1-5-11", "foreign", "member"),
        ("apps", "old1", "account", "member"),
        ("files", "old1", "account", "primaryGroupID"),
        ("team", "bob", "account", "member"),
    }
    assert got.height == len(rows)
    assert got.columns == MEMBERSHIPS.columns
    # each edge keeps the source of the group it is in
    assert set(got.filter(pl.col("group_id") == "files")["source"]) == {"ad:old"}


def test_nothing_to_resolve_leaves_the_memberships_as_they_are() -> None:
    plain = MEMBERSHIPS.filter(pl.col("member_kind") != "foreign")
    accounts = ACCOUNTS.with_columns(sid_history=pl.lit([], pl.List(pl.String)))
    assert resolve_foreign(plain, accounts, GROUPS).equals(plain)


def test_foreign_principals_named_and_attributed_by_domain() -> None:
    resolved = resolve_foreign(MEMBERSHIPS, ACCOUNTS, GROUPS)
    orgs = [
        Organisation(id="wmp", name="W", match=Matchers()),
        Organisation(id="warks", name="K", match=Matchers(domain_sid=[GONE])),
    ]
    got = foreign_principals(resolved, orgs)
    assert got.schema == FOREIGN_SCHEMA == views_foreign.FOREIGN_SCHEMA
    assert got.rows() == [
        ("S-1-5-11", None, "Authenticated Users", True, "unattributed", []),
        (f"{GONE}-777", GONE, None, False, "warks", ["domain_sid:warks"]),
    ]
    assert foreign_principals(resolved, [])["org"].to_list() == ["unattributed"] * 2
    assert WELL_KNOWN_SIDS["S-1-1-0"] == "Everyone"
    assert domain_orgs(orgs).rows() == [(GONE, "warks")]


def test_domain_sid_matcher_attributes_accounts_and_groups_of_the_domain() -> None:
    settings = Settings.model_validate(
        {
            "organisations": [
                {"id": "wmp", "name": "W", "match": {"domain_sid": [OLD]}},
                {"id": "warks", "name": "K", "match": {"domain_sid": [NEW]}},
            ],
            "sources": [{"kind": "sample", "name": "s"}],
        }
    )
    acc = attribute_accounts(ACCOUNTS, settings)
    assert dict(zip(acc["account_id"], acc["org"], strict=True)) == {
        "old1": "wmp", "bob": "warks", "erin": "warks", "bob-cloud": "warks", "gail": "warks",
    }  # fmt: skip
    assert acc.filter(pl.col("account_id") == "bob")["org_evidence"].to_list() == [
        ["domain_sid:warks"]
    ]
    grp = attribute_groups(GROUPS, acc, settings)
    assert grp["org"].to_list() == ["wmp", "wmp", "warks"]


def test_trust_rows_decode_direction_type_and_sid_filtering() -> None:
    raw = pl.DataFrame(
        {
            "_ext": [
                "<GUID=11111111-1111-1111-1111-111111111111>;CN=a.local,CN=System,DC=x",
                "<GUID=22222222-2222-2222-2222-222222222222>;CN=b.local,CN=System,DC=x",
                "<GUID=33333333-3333-3333-3333-333333333333>;CN=c.local,CN=System,DC=x",
            ],
            "partner": ["a.local", "b.local", "c.local"],
            "flat_name": ["A", "B", "C"],
            "partner_sid": [OLD, NEW, GONE],
            "_dir": ["3", "2", "1"],
            "_type": ["2", "2", "1"],
            # quarantined; forest trust (filters); forest treated as external (does not)
            "_attr": ["4", "8", str(0x48 | 0x1)],
        }
    )
    got = trust_rows(raw, "ad:x")
    assert got.select(
        "trust_id", "direction", "trust_type", "transitive", "sid_filtering", "attribute_names"
    ).rows() == [
        ("11111111-1111-1111-1111-111111111111", "bidirectional", "uplevel", True, True,
         ["QUARANTINED_DOMAIN"]),
        ("22222222-2222-2222-2222-222222222222", "outbound", "uplevel", True, True,
         ["FOREST_TRANSITIVE"]),
        ("33333333-3333-3333-3333-333333333333", "inbound", "downlevel", False, False,
         ["NON_TRANSITIVE", "FOREST_TRANSITIVE", "TREAT_AS_EXTERNAL"]),
    ]  # fmt: skip
    assert got["source"].to_list() == ["ad:x"] * 3


def test_trust_view_names_both_sides() -> None:
    trusts = trust_rows(
        pl.DataFrame(
            {
                "_ext": ["<GUID=11111111-1111-1111-1111-111111111111>;CN=n,CN=System,DC=x"],
                "partner": ["new.local"],
                "flat_name": ["NEW"],
                "partner_sid": [NEW],
                "_dir": ["2"],
                "_type": ["2"],
                "_attr": ["0"],
            }
        ),
        "ad:old",
    )
    acc = ACCOUNTS.with_columns(
        org=pl.when(pl.col("source") == "ad:old").then(pl.lit("wmp")).otherwise(pl.lit("warks"))
    )
    hosts = pl.DataFrame({"source": ["ad:old"], "host_org": ["wmp"]})
    none = pl.DataFrame(schema=views_foreign.DOMAINS_SCHEMA)
    got = views_foreign.trusts(trusts.lazy(), hosts.lazy(), acc.lazy(), none.lazy()).collect()
    assert got.select(
        "domain_org", "partner_org", "partner_collected", "lets_in", "cross"
    ).rows() == [("wmp", "warks", False, True, True)]
