"""The emulator itself behaves as Microsoft documents (the connector tests rely on it)."""

from __future__ import annotations

import pytest
import requests
from support.entra_data import CLIENT_ID, ROLES, SECRET, TENANT, oid, session_for

from accessaudit.graphemu import READ_ROLES, Fault, Tenant
from accessaudit.graphemu.schema import USER_DEFAULT


@pytest.fixture
def graph(emu, pki):
    t = emu.add_tenant(Tenant(TENANT))
    users = [
        t.add_user(
            id=oid(f"u{n}"), userPrincipalName=f"u{n}@t", displayName=f"u{n}", department="D"
        )
        for n in range(150)
    ]
    a = t.add_group(id=oid("A"), displayName="A")
    b = t.add_group(id=oid("B"), displayName="B")
    t.add_member(a, b)
    t.add_member(b, a)  # a cycle
    for u in users[:30]:
        t.add_member(a, u)
        t.add_member(b, u)
    t.add_member(a, t.add_service_principal("Niche RMS", ["Reader"], id=oid("sp")))
    t.add_member(a, t.add_contact(id=oid("c"), displayName="contact"))
    t.add_member(a, t.add_device(id=oid("d"), displayName="laptop"))
    t.assign_role(users[0], "62e90394-69f5-4237-9190-012177145e10")
    t.assign_role(users[1], "fe930be7-5e62-47db-91af-98c3a49a38b1", eligible=True)
    return emu, t, session_for(emu, pki, [*ROLES, "Device.Read.All"])


def test_top_range_and_absolute_opaque_next_link(graph):
    emu, _, s = graph
    for bad in ("0", "1000", "abc"):
        r = s.get(f"{emu.graph_url}/users?$top={bad}")
        assert r.status_code == 400
        assert r.json()["error"] == {
            "code": "Request_BadRequest",
            "message": f"Invalid page size specified: '{bad}'. "
            "Must be between 1 and 999 inclusive.",
            "innerError": r.json()["error"]["innerError"],
        }
    first = s.get(f"{emu.graph_url}/users?$select=id,department&$top=100").json()
    link = first["@odata.nextLink"]
    assert link.startswith(f"{emu.graph_url}/users?$select=id,department&$top=100&$skiptoken=")
    second = s.get(link).json()
    assert len(first["value"]) == 100 and len(second["value"]) == 50
    assert "@odata.nextLink" not in second
    assert first["@odata.context"] == f"{emu.graph_url}/$metadata#users(id,department)"
    default = s.get(f"{emu.graph_url}/users").json()
    assert len(default["value"]) == 100  # default page size


def test_projection_default_select_and_unsupported(graph):
    emu, _, s = graph
    user = s.get(f"{emu.graph_url}/users?$top=1").json()["value"][0]
    assert sorted(user) == sorted(USER_DEFAULT)
    user = s.get(f"{emu.graph_url}/users?$top=1&$select=accountEnabled,department").json()["value"][
        0
    ]
    assert sorted(user) == ["accountEnabled", "department", "id"]
    r = s.get(f"{emu.graph_url}/users?$select=skills")
    assert (r.status_code, r.json()["error"]["code"]) == (501, "NotImplemented")
    r = s.get(f"{emu.graph_url}/users?$select=favouriteColour")
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "Could not find a property named 'favouriteColour' on type 'microsoft.graph.user'."
    )


def test_sign_in_activity_needs_audit_log_permission(emu, pki):
    t = emu.add_tenant(Tenant(TENANT))
    t.add_user(userPrincipalName="x@t")
    s = session_for(emu, pki, [r for r in READ_ROLES if r != "AuditLog.Read.All"])
    r = s.get(f"{emu.graph_url}/users?$select=id,signInActivity")
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "Authorization_RequestDenied"


def test_members_types_casing_and_transitive_members(graph):
    emu, _, s = graph
    members = s.get(f"{emu.graph_url}/groups/{oid('A')}/members?$top=999").json()["value"]
    types = sorted({m["@odata.type"] for m in members})
    assert types == [
        "#microsoft.graph.device",
        "#microsoft.graph.group",
        "#microsoft.graph.orgContact",
        "#microsoft.graph.servicePrincipal",
        "#microsoft.graph.user",
    ]
    transitive = s.get(f"{emu.graph_url}/groups/{oid('A')}/transitiveMembers?$top=999").json()
    ids = [m["id"] for m in transitive["value"]]
    assert len(ids) == len(set(ids)) == 34  # B, 30 users, sp, contact, device; cycle-safe
    users = s.get(f"{emu.graph_url}/groups/{oid('A')}/members/microsoft.graph.user").json()
    assert len(users["value"]) == 30
    r = s.get(f"{emu.graph_url}/groups/{oid('A')}/transitiveMembers/microsoft.graph.application")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "Request_UnsupportedQuery")
    emu.api.omit_service_principals = True  # the documented v1.0 known issue
    members = s.get(f"{emu.graph_url}/groups/{oid('A')}/members?$top=999").json()["value"]
    assert "#microsoft.graph.servicePrincipal" not in {m["@odata.type"] for m in members}


def test_limited_information_members(emu, pki):
    t = emu.add_tenant(Tenant(TENANT))
    g = t.add_group(id=oid("G"), displayName="G")
    t.add_member(g, t.add_contact(id=oid("c"), displayName="contact"))
    s = session_for(emu, pki, READ_ROLES)
    member = s.get(f"{emu.graph_url}/groups/{g}/members?$select=id,displayName").json()["value"][0]
    assert member == {
        "@odata.type": "#microsoft.graph.orgContact",
        "id": oid("c"),
        "displayName": None,
    }


def test_error_envelope_and_headers(graph):
    emu, _, s = graph
    r = s.get(f"{emu.graph_url}/users/{oid('nobody')}", headers={"client-request-id": "abc-123"})
    body = r.json()["error"]
    assert r.status_code == 404
    assert body["code"] == "Request_ResourceNotFound"
    assert body["message"] == (
        f"Resource '{oid('nobody')}' does not exist or one of its queried reference-property "
        "objects are not present."
    )
    assert sorted(body["innerError"]) == ["client-request-id", "date", "request-id"]
    assert body["innerError"]["client-request-id"] == "abc-123"
    assert r.headers["client-request-id"] == "abc-123"
    assert r.headers["request-id"] == body["innerError"]["request-id"]
    for name in ("x-ms-ags-diagnostic", "x-ms-resource-unit", "Strict-Transport-Security"):
        assert name in r.headers
    r = requests.get(f"{emu.graph_url}/users", verify=str(emu.pki.ca_file), timeout=10)
    assert r.status_code == 401
    assert r.json()["error"]["message"] == "Access token is empty."
    assert r.headers["WWW-Authenticate"].startswith("Bearer realm=")


def test_throttling_body(graph):
    emu, _, s = graph
    emu.faults.add(Fault(match="/users", status=429, retry_after="2.128"))
    r = s.get(f"{emu.graph_url}/users")
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "2.128"
    error = r.json()["error"]
    assert error["code"] == "TooManyRequests"
    assert {k: error["innerError"][k] for k in ("code", "status", "message")} == {
        "code": "429",
        "status": "429",
        "message": "Please retry after",
    }


def test_batch_rules(graph):
    emu, _, s = graph
    url = f"{emu.graph_url}/$batch"

    def batch(items):
        return s.post(url, json={"requests": items})

    many = batch([{"id": str(n), "method": "GET", "url": "/users?$top=1"} for n in range(21)])
    assert many.status_code == 400
    dupes = batch([{"id": "1", "method": "GET", "url": "/users"}] * 2)
    assert dupes.status_code == 400
    absolute = batch([{"id": "1", "method": "GET", "url": f"{emu.graph_url}/users"}])
    assert (absolute.status_code, absolute.json()["error"]["message"]) == (
        400,
        "Invalid batch payload format.",
    )
    r = batch(
        [
            {"id": "1", "method": "GET", "url": "/v1.0/users"},
            {"id": "2", "method": "GET", "url": "/users?$top=1", "dependsOn": ["1"]},
            {"id": "3", "method": "GET", "url": "/users?$top=1"},
        ]
    )
    assert r.status_code == 200
    answers = r.json()["responses"]
    assert [a["id"] for a in answers] == ["3", "2", "1"]  # "any order": here reversed
    by_id = {a["id"]: a for a in answers}
    assert by_id["1"]["status"] == 400
    assert by_id["1"]["body"]["error"]["message"] == "Resource not found for the segment 'v1.0'."
    assert by_id["2"]["status"] == 424
    assert by_id["3"]["status"] == 200
    assert by_id["3"]["body"]["@odata.nextLink"].startswith(f"{emu.graph_url}/users?")
    emu.faults.add(Fault(match="/users", where="batch", status=429, retry_after="7"))
    r = batch([{"id": "a", "method": "GET", "url": "/users?$top=1"}])
    answer = r.json()["responses"][0]
    assert (r.status_code, answer["status"], answer["headers"]["Retry-After"]) == (200, 429, "7")


def test_advanced_queries(graph):
    emu, _, s = graph
    r = s.get(f"{emu.graph_url}/users/$count")
    assert (r.status_code, r.json()["error"]["message"]) == (
        400,
        "$count is not currently supported.",
    )
    r = s.get(f"{emu.graph_url}/users/$count", headers={"ConsistencyLevel": "eventual"})
    assert (r.status_code, r.text) == (200, "150")
    assert "@odata.count" not in s.get(f"{emu.graph_url}/users?$count=true").json()
    eventual = {"ConsistencyLevel": "eventual"}
    first = s.get(f"{emu.graph_url}/users?$count=true", headers=eventual).json()
    assert first["@odata.count"] == 150
    assert "@odata.count" not in s.get(first["@odata.nextLink"], headers=eventual).json()
    r = s.get(f'{emu.graph_url}/users?$search="displayName:u1"')
    assert (r.status_code, r.json()["error"]["code"]) == (400, "Request_UnsupportedQuery")
    ends = "$filter=endsWith(userPrincipalName,'9@t')"
    assert s.get(f"{emu.graph_url}/users?{ends}").status_code == 400
    r = s.get(f"{emu.graph_url}/users?{ends}&$count=true", headers=eventual)
    assert r.json()["@odata.count"] == 15


def test_directory_roles_lists_activated_roles_only(graph):
    emu, _, s = graph
    roles = s.get(f"{emu.graph_url}/directoryRoles").json()
    assert [r["displayName"] for r in roles["value"]] == ["Global Administrator"]
    assert "@odata.nextLink" not in roles
    members = s.get(f"{emu.graph_url}/directoryRoles/{roles['value'][0]['id']}/members").json()
    assert [m["id"] for m in members["value"]] == [oid("u0")]


def test_expand_members_is_capped(graph):
    emu, _, s = graph
    page = s.get(f"{emu.graph_url}/groups?$expand=members&$top=999").json()
    a = next(g for g in page["value"] if g["id"] == oid("A"))
    assert len(a["members"]) == 20  # of 34; no nextLink for the expanded collection


def test_delta_latest_and_initial_round(graph):
    emu, t, s = graph
    emu.api.tidy_delta()  # exact entries: no replays, change order
    latest = s.get(f"{emu.graph_url}/groups/delta?$select=displayName,members&$deltatoken=latest")
    assert latest.json()["value"] == []
    link = latest.json()["@odata.deltaLink"]
    t.remove_member(oid("A"), oid("u0"))
    changes = s.get(link).json()
    assert changes["value"] == [
        {
            "id": oid("A"),
            "displayName": "A",
            "members@delta": [
                {
                    "@odata.type": "#microsoft.graph.user",
                    "id": oid("u0"),
                    "@removed": {"reason": "deleted"},
                }
            ],
        }
    ]
    assert "@odata.deltaLink" in changes
    initial = s.get(f"{emu.graph_url}/groups/delta?$select=displayName,members").json()
    a = next(g for g in initial["value"] if g["id"] == oid("A") and "displayName" in g)
    assert len(a["members@delta"]) == 33


def test_token_endpoint_errors(emu, pki):
    emu.add_tenant(Tenant(TENANT))
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET)
    url = f"{emu.base_url}/{TENANT}/oauth2/v2.0/token"
    form = {"client_id": CLIENT_ID, "client_secret": SECRET, "grant_type": "client_credentials"}
    r = requests.post(url, data=form | {"scope": "User.Read"}, verify=str(pki.ca_file), timeout=10)
    body = r.json()
    assert (r.status_code, body["error"], body["error_codes"]) == (400, "invalid_scope", [70011])
    assert body["error_description"].startswith("AADSTS70011: ")
    assert "\r\nTrace ID: " in body["error_description"]
    r = requests.post(
        url,
        data=form | {"grant_type": "password", "scope": "x/.default"},
        verify=str(pki.ca_file),
        timeout=10,
    )
    assert r.json()["error"] == "unsupported_grant_type"
    r = requests.post(
        url,
        data={
            "client_id": CLIENT_ID,
            "grant_type": "client_credentials",
            "scope": "https://graph.microsoft.com/.default",
        },
        verify=str(pki.ca_file),
        timeout=10,
    )
    assert (r.status_code, r.json()["error_codes"]) == (401, [7000218])


def test_member_of_and_transitive_member_of(graph):
    emu, t, s = graph
    outer = t.add_group(id=oid("Outer"), displayName="Outer")
    t.add_member(outer, oid("A"))
    direct = s.get(f"{emu.graph_url}/users/{oid('u0')}/memberOf").json()["value"]
    assert sorted(e["displayName"] for e in direct) == ["A", "B", "Global Administrator"]
    assert {e["@odata.type"] for e in direct} == {
        "#microsoft.graph.group",
        "#microsoft.graph.directoryRole",
    }
    nested = s.get(f"{emu.graph_url}/users/{oid('u0')}/transitiveMemberOf").json()["value"]
    assert sorted(e["displayName"] for e in nested) == ["A", "B", "Global Administrator", "Outer"]


def test_service_principal_owners_listing(emu, pki):
    """serviceprincipal-list-owners: a directoryObject collection (users and service principals
    with their @odata.type), paged by $top, $select per entry, in $batch too; Application.Read.All
    needed (403 Authorization_RequestDenied without it); limited information for owners of a
    type the app may not read."""
    t = emu.add_tenant(Tenant(TENANT))
    owners = [t.add_user(id=oid(f"o{n}"), userPrincipalName=f"o{n}@t", displayName=f"o{n}")
              for n in range(3)]  # fmt: skip
    app = t.add_service_principal("Niche RMS", ["Reader"], id=oid("sp"))
    daemon = t.add_service_principal("Sync daemon", id=oid("sp-daemon"))
    lonely = t.add_service_principal("Nobody's", id=oid("sp-lonely"))
    for owner in [*owners, daemon]:
        t.add_sp_owner(app, owner)
    s = session_for(emu, pki, ROLES)
    url = f"{emu.graph_url}/servicePrincipals/{app}/owners"

    first = s.get(f"{url}?$select=id&$top=3").json()
    assert first["@odata.context"] == f"{emu.graph_url}/$metadata#directoryObjects"
    assert first["value"] == [{"@odata.type": "#microsoft.graph.user", "id": o} for o in owners]
    assert first["@odata.nextLink"].startswith(f"{url}?$select=id&$top=3&$skiptoken=")
    second = s.get(first["@odata.nextLink"]).json()
    assert second["value"] == [{"@odata.type": "#microsoft.graph.servicePrincipal", "id": daemon}]
    assert "@odata.nextLink" not in second
    named = s.get(f"{url}?$select=id,displayName").json()["value"]
    assert [o["displayName"] for o in named] == ["o0", "o1", "o2", "Sync daemon"]
    users = s.get(f"{url}/microsoft.graph.user").json()
    assert users["@odata.context"] == f"{emu.graph_url}/$metadata#users"
    assert [o["id"] for o in users["value"]] == owners
    assert s.get(f"{emu.graph_url}/servicePrincipals/{lonely}/owners").json()["value"] == []
    r = s.get(f"{url}?$top=1000")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "Request_BadRequest")
    r = s.get(f"{emu.graph_url}/servicePrincipals/{oid('nothing')}/owners")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "Request_ResourceNotFound")
    r = s.get(f"{emu.graph_url}/servicePrincipals/{owners[0]}/owners")  # a user, not an SP
    assert r.status_code == 404

    batch = s.post(
        f"{emu.graph_url}/$batch",
        json={"requests": [{"id": "1", "method": "GET", "url": f"/servicePrincipals/{app}/owners"
                            "?$select=id&$top=999"}]},
    ).json()["responses"]  # fmt: skip
    assert batch[0]["status"] == 200
    assert [o["id"] for o in batch[0]["body"]["value"]] == [*owners, daemon]

    no_apps = session_for(emu, pki, [r for r in READ_ROLES if r != "Application.Read.All"])
    r = no_apps.get(f"{url}?$select=id")
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "Authorization_RequestDenied"
    no_users = session_for(emu, pki, ["Application.Read.All"])
    limited = no_users.get(f"{url}?$select=id,displayName").json()["value"]
    assert limited[0] == {"@odata.type": "#microsoft.graph.user", "id": owners[0],
                          "displayName": None}  # fmt: skip
    assert limited[3]["displayName"] == "Sync daemon"


def test_service_principal_owner_writes(emu, pki):
    """serviceprincipal-delete-owners (Application.ReadWrite.All) and -post-owners
    (Application.ReadWrite.All with Directory.Read.All): users and service principals only, the
    last owner removable, duplicates and absent owners refused; not a group change, so
    /groups/delta does not report it; a deleted owner leaves the list."""
    t = emu.add_tenant(Tenant(TENANT))
    user = t.add_user(id=oid("o0"), userPrincipalName="o0@t", displayName="o0")
    other = t.add_user(id=oid("o1"), userPrincipalName="o1@t", displayName="o1")
    group = t.add_group(id=oid("G"), displayName="G")
    app = t.add_service_principal("Niche RMS", id=oid("sp"))
    t.add_sp_owner(app, user)
    base = f"{emu.graph_url}/servicePrincipals/{app}/owners"

    def ref(object_id: str) -> dict[str, str]:
        return {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"}

    read = session_for(emu, pki, ROLES)
    delta = read.get(f"{emu.graph_url}/groups/delta?$select=displayName,owners&$deltatoken=latest")
    link = delta.json()["@odata.deltaLink"]
    only_app = session_for(emu, pki, ["Application.ReadWrite.All"])
    assert only_app.post(f"{base}/$ref", json=ref(other)).status_code == 403  # + Directory.Read.All
    writer = session_for(emu, pki, ["Application.ReadWrite.All", "Directory.Read.All"])
    assert writer.post(f"{base}/$ref", json=ref(other)).status_code == 204
    assert writer.post(f"{base}/$ref", json=ref(app)).status_code == 204  # itself
    r = writer.post(f"{base}/$ref", json=ref(other))
    assert (r.status_code, r.json()["error"]["message"]) == (
        400,
        "One or more added object references already exist for the following modified "
        "properties: 'owners'.",
    )
    assert writer.post(f"{base}/$ref", json=ref(group)).status_code == 400
    assert t.sp_owners[app] == [user, other, app]
    assert only_app.delete(f"{base}/{other}/$ref").status_code == 204
    assert writer.delete(f"{base}/{app}/$ref").status_code == 204
    r = writer.delete(f"{base}/{other}/$ref")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "Request_ResourceNotFound")
    assert writer.delete(f"{base}/{user}/$ref").status_code == 204  # the last owner too
    assert t.sp_owners[app] == []
    reader = session_for(emu, pki, READ_ROLES)
    assert reader.delete(f"{base}/{user}/$ref").status_code == 403
    assert reader.post(f"{base}/$ref", json=ref(user)).status_code == 403
    assert read.get(link).json()["value"] == []  # service principals are not groups
    t.add_sp_owner(app, other)
    t.delete(other)
    assert t.sp_owners[app] == []
    assert [(m, p.rsplit("/", 2)[-2]) for m, p in emu.writes.log] == [
        ("POST", "owners"), ("POST", "owners"), ("DELETE", other), ("DELETE", app),
        ("DELETE", user)]  # fmt: skip
