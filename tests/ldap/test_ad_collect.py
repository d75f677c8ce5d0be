"""Collecting a seeded Samba AD domain returns exactly the dataset, proven complete."""

from __future__ import annotations

import polars as pl
import pytest
from support.servers.compare import assert_matches
from support.servers.dataset import BIG, FOREIGN_SID, HOSTILE_CN, OLD_SID
from support.servers.seeded import SeededDC

from accessaudit.connectors.ldap.collect import collect, connect, ldap_filter

pytestmark = pytest.mark.servers


def _id(seeded: SeededDC, table: str, column: str, value: str) -> str:
    df = seeded.dataset.tables[table]
    key = "account_id" if table == "accounts" else "group_id"
    return seeded.idmap.ids[df.filter(pl.col(column) == value)[key].item()]


def test_collection_equals_dataset(samba: SeededDC, monkeypatch: pytest.MonkeyPatch) -> None:
    got = collect(samba.source(monkeypatch), now=samba.dataset.now)
    assert got.source == "ad:alliance.local"
    assert got.kind == "ldap"
    assert got.complete, got.units
    names = {u.name for u in got.units}
    assert {"accounts", "groups", "foreign-security-principals", "memberships"} <= names
    assert all("cookie exhausted" in u.detail for u in got.units if u.name == "accounts")
    tables = {name: got.table(name) for name in ("accounts", "groups", "memberships", "grants")}
    assert_matches(tables, samba.expected)
    # times the server sets itself are present and in UTC
    acc = tables["accounts"]
    assert acc["created"].null_count() == 0
    assert acc.schema["created"] == pl.Datetime("us", "UTC")


def test_many_pages(samba: SeededDC, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight pages and more; Samba sends the same cookie on every page of a search."""
    got = collect(samba.source(monkeypatch, page_size=200), now=samba.dataset.now)
    assert got.complete, got.units
    accounts = next(u for u in got.units if u.name == "accounts")
    pages = -(-accounts.count // 200)
    assert pages >= 8
    assert accounts.detail.startswith(
        f"paged search: {pages} page(s), cookie exhausted, every page result success"
    )  # Samba may add "; 1 referral(s) not followed" (a naming context below the base)
    assert accounts.count == len(samba.dataset.tables["accounts"]) + 7  # + Samba's own


def test_primary_group_edges(samba: SeededDC, monkeypatch: pytest.MonkeyPatch) -> None:
    mem = collect(samba.source(monkeypatch), now=samba.dataset.now).table("memberships")
    frank = _id(samba, "accounts", "username", "frank")
    primary = _id(samba, "groups", "name", "GA-Primary")
    users = _id(samba, "groups", "name", "Domain Users")
    pc = _id(samba, "accounts", "username", "PC0001$")
    computers = _id(samba, "groups", "name", "Domain Computers")
    edges = set(mem.select("group_id", "member_id", "via").iter_rows())
    assert (primary, frank, "primaryGroupID") in edges
    assert (computers, pc, "primaryGroupID") in edges
    assert not any(g == users and m == frank for g, m, _ in edges)  # moved off Domain Users
    n_users = mem.filter((pl.col("group_id") == users) & (pl.col("via") == "primaryGroupID"))
    assert n_users.height >= BIG - 1


def test_foreign_security_principal_member(
    samba: SeededDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    mem = collect(samba.source(monkeypatch), now=samba.dataset.now).table("memberships")
    nested1 = _id(samba, "groups", "name", "GA-Nested-1")
    fsp = mem.filter(pl.col("member_kind") == "foreign")
    assert (nested1, FOREIGN_SID, "member") in set(
        fsp.select("group_id", "member_id", "via").iter_rows()
    )


def test_group_above_1500_members_read_by_ranges(
    samba: SeededDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = collect(samba.source(monkeypatch, range_size=500), now=samba.dataset.now)
    big = _id(samba, "groups", "name", "GB-All-Staff")
    edges = got.table("memberships").filter(pl.col("group_id") == big)
    assert edges.height == BIG
    assert set(edges["via"]) == {"range"}
    unit = next(u for u in got.units if u.name == f"members:{big}")
    assert unit.complete and unit.count == BIG
    assert unit.detail == "range ended in -* after 4 request(s)"  # 0-499 ... 1500-*
    small_groups = got.table("memberships").filter(pl.col("group_id") != big)
    assert "range" not in set(small_groups["via"])


def test_decoded_attributes(samba: SeededDC, monkeypatch: pytest.MonkeyPatch) -> None:
    got = collect(samba.source(monkeypatch), now=samba.dataset.now)
    acc = got.table("accounts")
    grp = got.table("groups")

    def row(username: str) -> dict[str, object]:
        return acc.filter(pl.col("username") == username).row(0, named=True)

    assert row("dave")["sid_history"] == [OLD_SID]
    assert row("alice")["manager_id"] == _id(samba, "accounts", "username", "bob")
    assert row("carol")["enabled"] is False
    assert row("alice")["enabled"] is True
    assert row("adm-erin")["privileged"] is True
    assert (row("PC0001$")["kind"], row("svc-backup")["kind"], row("bob")["kind"]) == (
        "computer", "service", "user",
    )  # fmt: skip
    assert row("evil1")["display_name"] == HOSTILE_CN
    groups = {r["name"]: r for r in grp.iter_rows(named=True)}
    assert groups["Domain Admins"]["privileged"] and groups["Administrators"]["privileged"]
    assert groups["Administrators"]["scope"] == "builtin"
    assert (groups["GA-Newsletter"]["kind"], groups["GA-Newsletter"]["scope"]) == (
        "distribution", "universal",
    )  # fmt: skip
    assert groups["GA-Managed"]["managed_by"] == _id(samba, "accounts", "username", "bob")
    assert groups["GA-Managed"]["owners"] == [groups["GA-Managed"]["managed_by"]]


def test_account_expiry_disables(samba: SeededDC, monkeypatch: pytest.MonkeyPatch) -> None:
    """accountExpires 0 / 0x7FFFFFFFFFFFFFFF mean never; a date in the past disables."""
    from datetime import UTC, datetime

    from accessaudit.connectors.ldap.decode import filetime_expr

    values = pl.Series(
        [
            0,
            0x7FFFFFFFFFFFFFFF,
            133_000_000_000_000_000,
            -1,
            0x7FFFFFFEFFFFFFFF,
            2650467743990000000,
        ],
        dtype=pl.Int64,
    )
    out = pl.select(filetime_expr(pl.lit(values))).to_series().to_list()  # to Python: no overflow
    assert out[0] is None and out[1] is None and out[3] is None
    assert out[2] == datetime(2022, 6, 18, 4, 26, 40, tzinfo=UTC)
    assert out[4] is None  # year 30828: another "never" seen in real directories
    assert out[5] == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_hostile_value_in_filter_matches_exactly_one(
    samba: SeededDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn, _ = connect(samba.source(monkeypatch), "Aud1tor!Passw0rd-Test")
    try:
        flt = ldap_filter("(&(objectClass=user)(displayName={}))", HOSTILE_CN)
        assert flt == "(&(objectClass=user)(displayName=Evil \\2a\\28\\29\\5c User))"
        conn.search("DC=alliance,DC=local", flt, attributes=["sAMAccountName"])
        assert conn.result["result"] == 0
        hits = [e for e in conn.response if e["type"] == "searchResEntry"]
        assert [h["raw_attributes"]["sAMAccountName"] for h in hits] == [[b"evil1"]]
        # a binary value with NUL bytes (a SID) escapes to \\00 and matches exactly one object
        conn.search("DC=alliance,DC=local", "(sAMAccountName=dave)", attributes=["objectSid"])
        raw_sid = conn.response[0]["raw_attributes"]["objectSid"][0]
        assert b"\x00" in raw_sid
        from ldap3.utils.conv import escape_filter_chars

        conn.search("DC=alliance,DC=local", f"(objectSid={escape_filter_chars(raw_sid)})")
        assert len([e for e in conn.response if e["type"] == "searchResEntry"]) == 1
    finally:
        conn.unbind()


def test_ldap_filter_escapes_every_metacharacter() -> None:
    assert ldap_filter("(cn={})", "a*b(c)d\\e\x00f") == "(cn=a\\2ab\\28c\\29d\\5ce\\00f)"
    assert ldap_filter("(|(cn={})(sn={}))", "john)(uid=*", "x") == (
        "(|(cn=john\\29\\28uid=\\2a)(sn=x))"
    )
