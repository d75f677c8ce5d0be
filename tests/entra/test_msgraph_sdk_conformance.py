"""Microsoft's own ``msgraph-sdk`` lists the sample tenant from the emulator, and every count it
gets equals the tables the connector collected from the same emulator (issue 19, item 12).

The SDK is a second, independent client: its request builders spell the routes their own way
(``/users/delta()``, ``members/$count``, ``$select`` lists, ``ConsistencyLevel`` headers), so a
route or option the emulator accepts only in the connector's spelling fails here. Its token comes
from the emulator's token endpoint through msal (:class:`MsalCredential`, an azure-core
``AsyncTokenCredential``), over TLS checked against the test CA: nothing is mocked. A test
dependency only (``pyproject.toml`` extras ``test``), never imported by the tool.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msal
import polars as pl
import requests
from azure.core.credentials import AccessToken
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.headers_collection import HeadersCollection
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from support.entra_data import CLIENT_ID, SECRET, serve_sample
from support.fixtures import NOW

from accessaudit.connectors.entra.collect import collect
from accessaudit.sample.directory import generate
from accessaudit.sample.entra import TENANT_ID
from accessaudit.sample.entra_messy import COMMAND, DUTY, OPERATIONS

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class MsalCredential:
    """An azure-core async token credential whose tokens msal gets from the emulator."""

    def __init__(self, authority: str, ca_file: str) -> None:
        self.http = requests.Session()
        self.http.verify = ca_file
        self.http.trust_env = False
        self.app = msal.ConfidentialClientApplication(
            CLIENT_ID,
            authority=authority,
            client_credential=SECRET,
            instance_discovery=False,
            http_client=self.http,
        )

    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        token = self.app.acquire_token_for_client(list(scopes))
        assert "access_token" in token, token.get("error")
        return AccessToken(token["access_token"], int(time.time()) + int(token["expires_in"]))

    async def close(self) -> None:
        self.http.close()

    async def __aenter__(self) -> MsalCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def sdk_client(emu: Any, pki: Any, http: httpx.AsyncClient) -> GraphServiceClient:
    credential = MsalCredential(emu.authority(TENANT_ID), str(pki.ca_file))
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=[GRAPH_SCOPE], allowed_hosts=["127.0.0.1"], is_cae_enabled=False
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = emu.graph_url
    return GraphServiceClient(request_adapter=adapter)


async def every_page(
    first: Awaitable[Any], more: Callable[[str], Awaitable[Any]]
) -> tuple[list[Any], str | None]:
    """Every item of a collection (following nextLinks) and the final deltaLink, if any."""
    page = await first
    items = list(page.value or [])
    while page.odata_next_link:
        page = await more(page.odata_next_link)
        items += page.value or []
    return items, getattr(page, "odata_delta_link", None)


def follow(builder: Any) -> Callable[[str], Awaitable[Any]]:
    """A nextLink reader of a request builder."""
    return lambda url: builder.with_url(url).get()


def config(**query: Any) -> RequestConfiguration[Any]:
    cfg: RequestConfiguration[Any] = RequestConfiguration()
    cfg.query_parameters = type("Q", (), query)()  # the builders read attributes by name
    return cfg


async def sdk_counts(client: GraphServiceClient) -> dict[str, Any]:
    """What the SDK lists: counts per route, per group and per application."""
    users, _ = await every_page(
        client.users.get(config(select=["id"], top=999)),
        follow(client.users),
    )
    delta_users, delta_link = await every_page(
        client.users.delta.get(config(select=["displayName"])),
        follow(client.users.delta),
    )
    groups, _ = await every_page(
        client.groups.get(config(select=["id"], top=999)),
        follow(client.groups),
    )
    members: dict[str, int] = {}
    counted: dict[str, int] = {}
    owners: dict[str, int] = {}
    eventual: RequestConfiguration[Any] = RequestConfiguration()
    eventual.headers = HeadersCollection()
    eventual.headers.add("ConsistencyLevel", "eventual")
    for group in groups:
        one = client.groups.by_group_id(group.id)
        items, _ = await every_page(
            one.members.get(config(select=["id"], top=999)),
            follow(one.members),
        )
        members[group.id] = len(items)
        counted[group.id] = int(await one.members.count.get(eventual) or 0)
        items, _ = await every_page(
            one.owners.get(config(select=["id"], top=999)),
            follow(one.owners),
        )
        owners[group.id] = len(items)
    units, _ = await every_page(
        client.directory.administrative_units.get(),
        follow(client.directory.administrative_units),
    )
    for unit in units:
        one_unit = client.directory.administrative_units.by_administrative_unit_id(unit.id)
        items, _ = await every_page(
            one_unit.members.get(),
            follow(one_unit.members),
        )
        members[unit.id] = len(items)
    apps, _ = await every_page(
        client.service_principals.get(),
        follow(client.service_principals),
    )
    assigned: dict[str, int] = {}
    for sp in apps:
        one_sp = client.service_principals.by_service_principal_id(sp.id)
        items, _ = await every_page(
            one_sp.app_role_assigned_to.get(),
            follow(one_sp.app_role_assigned_to),
        )
        assigned[sp.id] = len(items)
    directory = client.role_management.directory
    assignments, _ = await every_page(
        directory.role_assignments.get(), follow(directory.role_assignments)
    )
    eligible, _ = await every_page(
        directory.role_eligibility_schedules.get(),
        follow(directory.role_eligibility_schedules),
    )
    return {
        "users": len(users),
        "delta users": len({u.id for u in delta_users}),
        "delta link": delta_link,
        "groups": len(groups),
        "members": members,
        "members/$count": counted,
        "owners": owners,
        "units": len(units),
        "service principals": len(apps),
        "app-role assignments": {k: v for k, v in assigned.items() if v},
        "role assignments": len(assignments),
        "role eligibilities": len(eligible),
    }


def table_counts(tables: dict[str, pl.DataFrame]) -> dict[str, Any]:
    """The same counts from the connector's canonical tables."""
    accounts, groups = tables["accounts"], tables["groups"]
    memberships, grants = tables["memberships"], tables["grants"]
    graph_groups = groups.filter(~pl.col("kind").is_in(["app-role", "administrative-unit"]))
    per_group = dict(memberships.group_by("group_id").len().iter_rows())
    roles = grants.filter(resource_kind="directory-role")
    app_roles = grants.filter(resource_kind="app-role")
    owners = dict(graph_groups.select("group_id", pl.col("owners").list.len()).iter_rows())
    members = {g: per_group.get(g, 0) for g in graph_groups["group_id"]}
    units = groups.filter(kind="administrative-unit")["group_id"]
    return {
        "users": accounts.filter(pl.col("kind") != "service").height,
        "delta users": accounts.filter(pl.col("kind") != "service").height,
        "groups": graph_groups.height,
        "members": members | {u: per_group.get(u, 0) for u in units},
        "members/$count": members,
        "owners": owners,
        "units": units.len(),
        # enterprise applications (groups rows) and service principals that are principals
        "service principals": len(
            set(groups.filter(kind="app-role")["group_id"])
            | set(accounts.filter(kind="service")["account_id"])
        ),
        "app-role assignments": dict(app_roles.group_by("resource_id").len().iter_rows()),
        "role assignments": roles.filter(~pl.col("right").str.ends_with(" (eligible)")).height,
        "role eligibilities": roles.filter(pl.col("right").str.ends_with(" (eligible)")).height,
    }


def test_msgraph_sdk_lists_the_sample_tenant_as_the_connector_collected_it(emu, pki, make_cfg):
    """Also: the sample's nested groups, org contact member and Directory Readers role arrive
    as planted (issue 19 item 12, the messier tenant)."""
    sample = generate(seed=7, accounts=900, now=NOW, entra=True)
    serve_sample(emu, sample.entra)
    result = collect(make_cfg(tenant_id=TENANT_ID))
    assert result.complete, [u for u in result.units if not u.complete]

    async def run() -> dict[str, Any]:
        tls = ssl.create_default_context(cafile=str(pki.ca_file))
        async with httpx.AsyncClient(verify=tls, trust_env=False) as http:
            return await sdk_counts(sdk_client(emu, pki, http))

    got = asyncio.run(run())

    # the sample's messy corners came through the connector as planted
    assert (
        messy_corners(result.tables)
        == messy_corners(sample.entra)
        == {
            "nested": [
                ("WMP-Operations", "WMP-Ops-Command", "group"),
                ("WMP-Operations", "contact", "foreign"),
                ("WMP-Ops-Command", "WMP-Ops-Duty", "group"),
            ],
            "duty members": 5,
            "readers": 1,
            "reader privileged": [False],
        }
    )

    assert got.pop("delta link").startswith(f"{emu.graph_url}/users/delta()?$deltatoken=")
    expected = table_counts(result.tables)
    assert got == expected
    # the SDK's own spellings reached the emulator and none was refused
    targets = [r for r in emu.requests("graph") if r.status != 200]
    assert targets == []
    spelled = {r.target.split("?")[0].rsplit("/", 1)[-1] for r in emu.requests("graph")}
    assert {"delta()", "$count"} <= spelled
    assert sum(expected["members"].values()) == result.tables["memberships"].height


def messy_corners(tables: dict[str, pl.DataFrame]) -> dict[str, Any]:
    """The sample's untidy corners (accessaudit.sample.entra_messy) as the tables hold them."""
    ids = dict(tables["groups"].select("name", "group_id").iter_rows())
    names = {v: k for k, v in ids.items()}
    edges = tables["memberships"].filter(
        pl.col("group_id").is_in([ids[OPERATIONS], ids[COMMAND], ids[DUTY]])
    )
    nested = sorted(
        (names[g], names.get(m, "contact" if k == "foreign" else "account"), k)
        for g, m, k in edges.select("group_id", "member_id", "member_kind").iter_rows()
        if k != "account"
    )
    readers = tables["grants"].filter(pl.col("right") == "Directory Readers @ /")
    holder = tables["accounts"].filter(pl.col("account_id").is_in(readers["principal_id"]))
    return {
        "nested": nested,
        "duty members": edges.filter(group_id=ids[DUTY], member_kind="account").height,
        "readers": readers.height,
        "reader privileged": holder["privileged"].to_list(),
    }
