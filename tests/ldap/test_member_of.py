"""memberOf as a cross-check of the member side, deleted members, and range follow-ups by GUID.

The directory is changed *during* a collection (from its progress callback, between the read
of the accounts and the read of the groups), the way a busy domain changes under an audit: by
another client, in another thread (the suite's recorder counts writes made with the package on
the call stack as the tool's own, and the tool never writes).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import ldap3
import polars as pl
import pytest
from support.servers import load_ad
from support.servers.dataset import BIG
from support.servers.samba import BASE_DN
from support.servers.seeded import SeededDC, SeededSlapd

from accessaudit.connectors.ldap.collect import IncompleteLdapCollection, collect
from accessaudit.model import CollectionUnit

pytestmark = pytest.mark.servers

NEWSLETTER = f"CN=GA-Newsletter,OU=Groups,OU=Force A,{BASE_DN}"


def _id(seeded: SeededDC, table: str, column: str, value: str) -> str:
    df = seeded.dataset.tables[table]
    key = "account_id" if table == "accounts" else "group_id"
    return seeded.idmap.ids[df.filter(pl.col(column) == value)[key].item()]


def _unit(units: list[CollectionUnit], name: str) -> CollectionUnit:
    return next(u for u in units if u.name == name)


def another_client(change: Callable[[], None]) -> None:
    """Run ``change`` as another client of the directory would: in its own thread, now."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            change()
        except BaseException as exc:  # handed back to the test
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]


def test_member_of_agrees(samba: SeededDC, monkeypatch: pytest.MonkeyPatch) -> None:
    got = collect(samba.source(monkeypatch), now=samba.dataset.now)
    unit = _unit(got.units, "memberships")
    assert unit.complete
    member_edges = got.table("memberships").filter(
        (pl.col("member_kind") == "account") & (pl.col("via") != "primaryGroupID")
    )
    assert member_edges.height > BIG
    assert unit.detail.endswith(f"memberOf agrees on all {member_edges.height} account edge(s)")


def test_change_between_reads_is_incomplete(
    fresh_samba: SeededDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alice joins and Bob leaves the newsletter after the accounts were read (so their
    memberOf is the old state) and before the groups are (so member is the new one)."""
    admin = load_ad.admin_connection(fresh_samba.dc)
    alice = _id(fresh_samba, "accounts", "username", "alice")
    bob = _id(fresh_samba, "accounts", "username", "bob")

    def change() -> None:
        admin.modify(NEWSLETTER, {"member": [(ldap3.MODIFY_ADD, [f"<GUID={alice}>"])]})
        admin.modify(NEWSLETTER, {"member": [(ldap3.MODIFY_DELETE, [f"<GUID={bob}>"])]})

    def change_after_accounts(unit: str, count: int) -> None:
        if unit == "accounts":  # one page (page_size above the account count)
            another_client(change)

    with pytest.raises(IncompleteLdapCollection) as err:
        collect(
            fresh_samba.source(monkeypatch, page_size=5000),
            now=fresh_samba.dataset.now,
            progress=change_after_accounts,
        )
    admin.unbind()
    collection = err.value.collection
    assert _unit(collection.units, "accounts").detail.startswith("paged search: 1 page(s)")
    unit = _unit(collection.units, "memberships")
    assert not unit.complete
    assert "memberOf disagrees with member on 2 account edge(s) (1 only in member," in unit.detail
    assert "1 only in memberOf;" in unit.detail and "directory changed during" in unit.detail
    assert [u.name for u in collection.units if not u.complete] == ["memberships"]
    assert "memberships (" in err.value.message
    # the edges are what member said, not dropped and not merged with memberOf
    newsletter = _id(fresh_samba, "groups", "name", "GA-Newsletter")
    edges = collection.table("memberships").filter(pl.col("group_id") == newsletter)
    assert edges["member_id"].to_list() == [alice]


def test_deleted_member_is_no_edge(fresh_samba: SeededDC, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deleted account leaves no member value behind: no edge, nothing 'not collected'."""
    evil = _id(fresh_samba, "accounts", "username", "evil1")
    dave = _id(fresh_samba, "accounts", "username", "dave")
    before = collect(fresh_samba.source(monkeypatch), now=fresh_samba.dataset.now)
    member_ids = set(before.table("memberships")["member_id"])
    assert {evil, dave} <= member_ids
    admin = load_ad.admin_connection(fresh_samba.dc)
    for guid in (evil, dave):  # dave is in the >1,500-member group too
        admin.search(f"<GUID={guid}>", "(objectClass=*)", ldap3.BASE, attributes=["cn"])
        assert admin.delete(admin.response[0]["dn"])
    admin.unbind()
    got = collect(fresh_samba.source(monkeypatch, range_size=500), now=fresh_samba.dataset.now)
    assert got.complete, [u for u in got.units if not u.complete]
    mem = got.table("memberships")
    assert not {evil, dave} & set(mem["member_id"])
    assert before.table("memberships").height - mem.height == 5  # evil1: 2 edges, dave: 3
    unit = _unit(got.units, "memberships")
    assert "; 0 member value(s) point at objects not collected" in unit.detail
    big = _id(fresh_samba, "groups", "name", "GB-All-Staff")
    assert _unit(got.units, f"members:{big}").count == BIG - 1


def test_range_follow_up_finds_a_renamed_group(
    fresh_samba: SeededDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The >1,500-member group is renamed and moved after its first range window was read:
    follow-ups name it by <GUID=...>, so they still find it (by DN they would get noSuchObject)."""
    admin = load_ad.admin_connection(fresh_samba.dc)
    big = _id(fresh_samba, "groups", "name", "GB-All-Staff")
    moved: list[str] = []

    def rename() -> None:
        admin.search(f"<GUID={big}>", "(objectClass=*)", ldap3.BASE, attributes=["cn"])
        dn = admin.response[0]["dn"]
        assert admin.modify_dn(
            dn, "CN=GB-All-Staff (renamed)", new_superior=f"OU=Groups,OU=Force A,{BASE_DN}"
        )
        moved.append(dn)

    def rename_after_groups(unit: str, count: int) -> None:
        if unit == "groups" and not moved:
            another_client(rename)

    got = collect(
        fresh_samba.source(monkeypatch, range_size=500),
        now=fresh_samba.dataset.now,
        progress=rename_after_groups,
    )
    admin.unbind()
    assert moved
    assert got.complete, [u for u in got.units if not u.complete]
    unit = _unit(got.units, f"members:{big}")
    assert unit.detail == "range ended in -* after 4 request(s)" and unit.count == BIG
    edges = got.table("memberships").filter(pl.col("group_id") == big)
    assert edges.height == BIG and set(edges["via"]) == {"range"}


def test_openldap_member_of_agrees(slapd: SeededSlapd, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenLDAP's memberof overlay keeps memberOf: the generic mapping cross-checks it too."""
    got = collect(slapd.source(monkeypatch))
    unit = _unit(got.units, "memberships")
    accounts_edges = got.table("memberships").filter(pl.col("member_kind") == "account")
    assert unit.complete
    assert unit.detail.endswith(f"memberOf agrees on all {accounts_edges.height} account edge(s)")


@pytest.mark.parametrize(
    ("member_of", "proof"),
    [
        ("", "memberOf not mapped (attribute_map member_of = ''): not cross-checked"),
        ("seeAlso", "memberOf not returned by the server: {n} account edge(s) not cross-checked"),
    ],
)
def test_openldap_without_member_of(
    slapd: SeededSlapd, monkeypatch: pytest.MonkeyPatch, member_of: str, proof: str
) -> None:
    """No memberof overlay (here: an attribute no entry has) or the check turned off: nothing
    to compare, said in the proof, and the collection stays complete."""
    cfg = slapd.source(monkeypatch, attribute_map={"kind": "employeeType", "member_of": member_of})
    got = collect(cfg)
    assert got.complete
    n = got.table("memberships").filter(pl.col("member_kind") == "account").height
    assert _unit(got.units, "memberships").detail.endswith(proof.format(n=n))
