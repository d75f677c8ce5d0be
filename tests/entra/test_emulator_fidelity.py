"""The emulator fails what Graph fails, accepts what Graph documents, and its delta is as untidy
as Graph's (issue 19, item 12). Facts and sources: the docstrings of accessaudit.graphemu.odata
and accessaudit.graphemu.delta."""

from __future__ import annotations

import pytest
from support.entra_data import ROLES, TENANT, oid, session_for

from accessaudit.graphemu import Tenant

USERS = 150


@pytest.fixture
def graph(emu, pki):
    t = emu.add_tenant(Tenant(TENANT))
    users = [
        t.add_user(
            id=oid(f"u{n}"), userPrincipalName=f"u{n}@t", displayName=f"u{n:03d}", department="D"
        )
        for n in range(USERS)
    ]
    a = t.add_group(id=oid("A"), displayName="A")
    b = t.add_group(id=oid("B"), displayName="B")
    t.add_member(a, b)
    for u in users[:30]:
        t.add_member(a, u)
    t.add_member(b, users[40])
    t.add_owner(a, users[41])
    t.add_member(a, t.add_service_principal("Niche RMS", ["Reader"], id=oid("sp")))
    t.add_member(a, t.add_contact(id=oid("c"), displayName="contact"))
    t.add_member(a, t.add_device(id=oid("d"), displayName="laptop"))
    return emu, t, session_for(emu, pki, [*ROLES, "Device.Read.All"])


def error(r):
    return r.status_code, r.json()["error"]["code"], r.json()["error"]["message"]


SORTING = (400, "Request_UnsupportedQuery", "Sorting not supported for current query.")
EVENTUAL = {"ConsistencyLevel": "eventual"}


# --- 1. unsupported query options fail with Graph's status and code -----------------------------


def test_orderby_is_refused_where_graph_refuses_it_and_sorts_where_documented(graph):
    emu, _, s = graph
    g = emu.graph_url
    assert error(s.get(f"{g}/groups/{oid('A')}/members?$orderby=displayName")) == SORTING
    assert error(s.get(f"{g}/users?$orderby=department")) == SORTING
    assert error(s.get(f"{g}/users?$orderby=displayName&$filter=department eq 'D'")) == SORTING
    assert error(s.get(f"{g}/users/delta?$orderby=displayName"))[:2] == (
        400,
        "Request_UnsupportedQuery",
    )
    r = s.get(f"{g}/users?$orderby=displayName desc&$top=3&$select=displayName")
    assert [u["displayName"] for u in r.json()["value"]] == ["u149", "u148", "u147"]
    # with the advanced query parameters, $filter + $orderby (and any property) sort
    r = s.get(
        f"{g}/users?$orderby=userPrincipalName&$filter=department eq 'D'&$count=true&$top=2"
        "&$select=userPrincipalName",
        headers=EVENTUAL,
    )
    assert [u["userPrincipalName"] for u in r.json()["value"]] == ["u0@t", "u100@t"]
    assert r.json()["@odata.count"] == USERS


def test_skip_and_options_without_dollar_are_refused(graph):
    emu, _, s = graph
    g = emu.graph_url
    skip = (400, "Request_BadRequest", "'$skip' is not supported by the service.")
    assert error(s.get(f"{g}/users?$skip=5")) == skip
    assert error(s.get(f"{g}/groups/{oid('A')}/members?$skip=5")) == skip
    for bare in ("select=id", "top=5", "filter=id eq 'x'", "orderby=displayName"):
        name = bare.split("=")[0]
        assert error(s.get(f"{g}/users?{bare}")) == (
            400,
            "Request_BadRequest",
            f"Query option '{name}' is not supported without the '$' prefix on v1.0.",
        )
    # a custom (non-system) query parameter is not an OData option: left alone
    assert len(s.get(f"{g}/users?tracking=1&$top=5").json()["value"]) == 5


def test_batch_depends_on_an_unknown_id_fails_the_batch(graph):
    emu, _, s = graph
    url = f"{emu.graph_url}/$batch"
    r = s.post(
        url,
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": "/users?$top=1"},
                {"id": "2", "method": "GET", "url": "/users?$top=1", "dependsOn": ["9"]},
            ]
        },
    )
    assert error(r) == (400, "BadRequest", "Invalid dependsOn: unknown request id.")
    r = s.post(
        url,
        json={
            "requests": [
                {"id": "a", "method": "GET", "url": "/users?$top=1"},
                {"id": "b", "method": "GET", "url": "/users?$top=1", "dependsOn": ["A"]},
            ]
        },
    )  # ids are case-insensitive (json-batching)
    assert r.status_code == 200
    assert sorted(x["status"] for x in r.json()["responses"]) == [200, 200]


# --- 1. what Graph documents is accepted ---------------------------------------------------------


def test_casts_and_relationship_count(graph):
    emu, _, s = graph
    g = emu.graph_url
    a = f"{g}/groups/{oid('A')}"

    def ids(url):
        return sorted(o["id"] for o in s.get(url).json()["value"])

    assert ids(f"{a}/members/microsoft.graph.user") == sorted(oid(f"u{n}") for n in range(30))
    assert ids(f"{a}/members/microsoft.graph.group") == [oid("B")]
    assert ids(f"{a}/members/microsoft.graph.device") == [oid("d")]
    assert ids(f"{a}/owners/microsoft.graph.user") == [oid("u41")]
    assert len(ids(f"{a}/transitiveMembers/microsoft.graph.user")) == 31  # u40 through B
    assert ids(f"{g}/users/{oid('u40')}/transitiveMemberOf/microsoft.graph.group") == sorted(
        [oid("A"), oid("B")]
    )
    assert ids(f"{g}/users/{oid('u40')}/memberOf/microsoft.graph.group") == [oid("B")]
    assert error(s.get(f"{a}/members/graph.user"))[:2] == (400, "Request_UnsupportedQuery")
    assert error(s.get(f"{g}/users/{oid('u1')}/memberOf/microsoft.graph.user"))[:2] == (
        400,
        "Request_UnsupportedQuery",
    )
    # $count segments need ConsistencyLevel: eventual
    assert error(s.get(f"{a}/members/$count")) == (
        400,
        "Request_BadRequest",
        "$count is not currently supported.",
    )
    r = s.get(f"{a}/members/$count", headers=EVENTUAL)
    assert (r.status_code, r.headers["Content-Type"], r.text) == (200, "text/plain", "34")
    assert s.get(f"{a}/members/microsoft.graph.user/$count", headers=EVENTUAL).text == "30"
    assert s.get(f"{a}/transitiveMembers/$count", headers=EVENTUAL).text == "35"


def test_filter_id_in_and_both_delta_spellings(graph):
    emu, _, s = graph
    g = emu.graph_url
    r = s.get(f"{g}/users?$filter=id in ('{oid('u3')}', '{oid('u7')}')&$select=id")
    assert sorted(u["id"] for u in r.json()["value"]) == sorted([oid("u3"), oid("u7")])
    r = s.get(f"{g}/groups?$filter=id in ('{oid('B')}')&$select=id")
    assert [x["id"] for x in r.json()["value"]] == [oid("B")]
    emu.api.tidy_delta()
    seen = []
    for spelling in ("delta", "delta()", "microsoft.graph.delta", "microsoft.graph.delta()"):
        r = s.get(f"{g}/groups/{spelling}?$select=displayName")
        assert r.status_code == 200, spelling
        seen.append([x["id"] for x in r.json()["value"]])
    assert seen == [[oid("A"), oid("B")]] * 4


# --- 2. delta as untidy as Graph's ---------------------------------------------------------------


def delta_round(s, url, headers=None):
    """Every page of a delta round: (entries, page sizes, last page)."""
    entries, sizes = [], []
    while True:
        page = s.get(url, headers=headers).json()
        entries += page["value"]
        sizes.append(len(page["value"]))
        if "@odata.nextLink" not in page:
            return entries, sizes, page
        url = page["@odata.nextLink"]


def test_delta_replays_and_shuffles_by_default_and_tidy_turns_it_off(graph):
    emu, _, s = graph
    url = f"{emu.graph_url}/users/delta?$select=displayName"
    entries, sizes, _ = delta_round(s, url)
    ids = [e["id"] for e in entries]
    in_order = [oid(f"u{n}") for n in range(USERS)]
    assert sizes == [100, 100]  # 150 users + 50 replays (every third), 100 a page
    assert sorted(set(ids)) == sorted(in_order)
    assert len(ids) - len(set(ids)) == 50
    assert list(dict.fromkeys(ids)) != in_order  # out of order
    emu.api.tidy_delta()
    entries, sizes, _ = delta_round(s, url)
    assert [e["id"] for e in entries] == in_order
    assert sizes == [100, 50]


def test_delta_page_size_follows_prefer_maxpagesize_within_graphs_cap(graph):
    emu, _, s = graph
    emu.api.tidy_delta()
    url = f"{emu.graph_url}/users/delta?$select=displayName"
    first = s.get(url, headers={"Prefer": "odata.maxpagesize=40"})
    assert first.headers["Preference-Applied"] == "odata.maxpagesize=40"
    assert len(first.json()["value"]) == 40
    _, sizes, _ = delta_round(s, url, {"Prefer": "odata.maxpagesize=40"})
    assert sizes == [40, 40, 40, 30]
    _, sizes, _ = delta_round(s, url, {"Prefer": "odata.maxpagesize=5000"})
    assert sizes == [150]  # within the cap of 200
    emu.api.delta_max_page_size = 60
    _, sizes, _ = delta_round(s, url, {"Prefer": "odata.maxpagesize=5000"})
    assert sizes == [60, 60, 30]


def test_delta_tracks_selected_properties_only(graph):
    emu, t, s = graph
    emu.api.tidy_delta()
    _, _, last = delta_round(s, f"{emu.graph_url}/users/delta?$select=displayName")
    link = last["@odata.deltaLink"]
    t.update(oid("u1"), department="Elsewhere")  # outside $select: not returned
    t.update(oid("u2"), displayName="Two", department="Elsewhere")
    entries, _, last = delta_round(s, link)
    assert entries == [{"id": oid("u2"), "displayName": "Two"}]
    # without $select every property is tracked
    _, _, plain = delta_round(s, f"{emu.graph_url}/users/delta")
    t.update(oid("u1"), department="Moved again")
    entries, _, _ = delta_round(s, plain["@odata.deltaLink"])
    assert [e["id"] for e in entries] == [oid("u1")]


def test_delta_filter_id_eq_is_honoured_and_kept_in_the_tokens(graph):
    emu, t, s = graph
    emu.api.tidy_delta()
    g = emu.graph_url
    two = f"id eq '{oid('u1')}' or id eq '{oid('u2')}'"
    entries, _, last = delta_round(s, f"{g}/users/delta?$select=displayName&$filter={two}")
    assert [e["id"] for e in entries] == [oid("u1"), oid("u2")]
    t.update(oid("u1"), displayName="One")
    t.update(oid("u3"), displayName="Three")
    entries, _, _ = delta_round(s, last["@odata.deltaLink"])
    assert entries == [{"id": oid("u1"), "displayName": "One"}]
    many = " or ".join(f"id eq '{oid(f'u{n}')}'" for n in range(51))
    assert error(s.get(f"{g}/users/delta?$filter={many}"))[:2] == (400, "Request_UnsupportedQuery")
    assert error(s.get(f"{g}/users/delta?$filter=displayName eq 'u001'"))[:2] == (
        400,
        "Request_UnsupportedQuery",
    )


def test_delta_omits_never_set_properties(graph):
    emu, t, s = graph
    emu.api.tidy_delta()
    t.add_user(id=oid("plain"), userPrincipalName="plain@t", displayName="Plain")
    t.add_user(id=oid("nulled"), userPrincipalName="n@t", displayName="N", jobTitle=None)
    two = f"id eq '{oid('plain')}' or id eq '{oid('nulled')}'"
    url = f"{emu.graph_url}/users/delta?$select=displayName,jobTitle&$filter={two}"
    entries, _, _ = delta_round(s, url)
    assert entries == [
        {"id": oid("plain"), "displayName": "Plain"},
        {"id": oid("nulled"), "displayName": "N", "jobTitle": None},
    ]
    # a plain listing still writes the selected property as null
    r = s.get(f"{emu.graph_url}/users/{oid('plain')}?$select=jobTitle")
    assert r.json()["jobTitle"] is None


# --- 2. the connector under Graph's untidy delta -------------------------------------------------


def test_connector_delta_round_is_exact_under_replays_shuffles_and_small_pages(
    emu, make_cfg, tenant
):
    from polars.testing import assert_frame_equal
    from support.entra_data import canonical

    from accessaudit.connectors.entra.collect import collect

    assert emu.api.delta_replay and emu.api.delta_out_of_order  # Graph's untidiness, by default
    emu.api.delta_page_size = 3
    emu.api.delta_members_per_entry = 4  # Newsletter's 20 new members over 5 entries
    cfg = make_cfg(sign_in_activity=False)
    first = collect(cfg)
    tenant.add_member(oid("WMP-RES-1"), oid("bulk0001"))  # added and removed in one round
    tenant.remove_member(oid("WMP-RES-1"), oid("bulk0001"))
    tenant.remove_member(oid("Shared-Team"), oid("cwarks"))  # removed and added back
    tenant.add_member(oid("Shared-Team"), oid("cwarks"))
    for n in range(20):
        tenant.add_member(oid("Newsletter"), oid(f"bulk{n + 100:04d}"))
    tenant.update(oid("awilliams"), jobTitle="Inspector")  # outside the connector's $select
    tenant.update(oid("ddisabled"), department="Moved")
    tenant.delete(oid("bulk0002"))
    emu.clear_log()

    second = collect(cfg, state=first.state, previous=first.tables)

    pages = [r for r in emu.requests("graph") if "/delta" in r.target]
    assert len(pages) >= 4  # pages of 3 entries, replays included
    units = {u.name: u.detail for u in second.units}
    assert units["users"].endswith("; 1 changed, 1 removed")  # ddisabled; awilliams untracked
    assert second.complete
    full = collect(make_cfg(sign_in_activity=False, use_delta=False))
    for name in ("accounts", "groups", "memberships", "grants"):
        assert_frame_equal(canonical(second.tables, name), canonical(full.tables, name))
    members = second.tables["memberships"]
    assert members.filter(group_id=oid("Newsletter")).height == 21
    assert members.filter(group_id=oid("Shared-Team"), member_id=oid("cwarks")).height == 1
    assert members.filter(group_id=oid("WMP-RES-1"), member_id=oid("bulk0001")).height == 0
