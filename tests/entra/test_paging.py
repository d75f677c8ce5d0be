"""The connector's paging helper resends ``ConsistencyLevel: eventual`` on every page.

Graph does not carry request headers over to ``@odata.nextLink`` requests (paging.md): an
advanced query (``$count=true`` with ``endsWith``) whose second page lacks the header is
refused, and the emulator checks it on every page as Graph does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from accessaudit.config.sources import EntraSource
from accessaudit.transport.graph_auth import PinnedSession, TokenSource
from accessaudit.transport.graph_http import GraphClient, GraphFailure

EVENTUAL = {"ConsistencyLevel": "eventual"}
#: An advanced query: endsWith needs ConsistencyLevel: eventual and $count=true.
QUERY = "/users?$filter=endsWith(mail,'@westmercia.police.uk')&$count=true&$select=id,mail&$top=100"


@pytest.fixture
def client(cfg: EntraSource) -> Iterator[GraphClient]:
    session = PinnedSession(cfg.ca_file)
    try:
        tokens = TokenSource(cfg, session, "test")
        yield GraphClient(cfg, session, tokens, "test", deadline=time.monotonic() + 30)
    finally:
        session.close()


def test_consistency_level_is_resent_on_every_page(emu, tenant, client) -> None:
    expected = sorted(
        u["id"]
        for u in tenant.of_type("user")
        if str(u.get("mail") or "").lower().endswith("@westmercia.police.uk")
    )
    assert len(expected) > 1000  # more than ten pages of 100
    emu.clear_log()

    listing = client.list_all(QUERY, headers=EVENTUAL)

    assert listing.pages == -(-len(expected) // 100)
    assert sorted(i["id"] for i in listing.items) == expected
    pages = emu.requests("graph")
    assert len(pages) == listing.pages and all(r.status == 200 for r in pages)
    assert sum("$skiptoken=" in r.target for r in pages) == listing.pages - 1


def test_a_next_page_without_the_header_is_refused(tenant, client) -> None:
    """The control: the emulator enforces the header per page, so the test above proves the
    helper resent it (a client sending it on page 1 only fails on page 2)."""
    first = client.send("GET", client.url(QUERY), headers=EVENTUAL)
    assert first["@odata.count"] > 1000
    link = first["@odata.nextLink"]

    with pytest.raises(GraphFailure) as err:
        client.send("GET", link)

    assert (err.value.status, err.value.code) == (400, "Request_UnsupportedQuery")
    assert "ConsistencyLevel" in err.value.message
    with pytest.raises(GraphFailure) as err:
        client.list_all(QUERY)  # and without it at all, page 1 is refused
    assert err.value.code == "Request_UnsupportedQuery"
    # the same next link with the header is served
    assert client.send("GET", link, headers=EVENTUAL)["value"]
