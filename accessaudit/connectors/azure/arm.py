"""Role assignments and role definitions from Azure Resource Manager.

Per configured subscription and management group (learn.microsoft.com/rest/api/authorization):

* ``GET {scope}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01``:
  for a subscription, every assignment at, above and below it; for a management group with
  ``$filter=atScope()`` (at and above: its subscriptions are listed on their own);
* ``GET {scope}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01``:
  the role names, joined on the role's GUID (the last segment of ``roleDefinitionId``: its
  prefix differs by scope).

Every page's ``nextLink`` is followed until absent (only on the configured endpoint: our token
goes nowhere else). Requests go through the Graph session's client
(:class:`~accessaudit.transport.graph_http.GraphClient`): 401 refreshes the token once, 429 and
5xx honour ``Retry-After`` or back off, within ``max_retries`` and ``time_budget``. The token is
msal's client-credentials token for ``<resource>/.default`` (``https://management.azure.com/
.default``). A scope that fails (403 without Reader, 404 unknown subscription, retries spent) is
an incomplete unit naming the scope and the reason; the others are still read.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import polars as pl

from accessaudit.config.datasources import AzureSource
from accessaudit.config.sources import EntraSource
from accessaudit.connectors.azure.tables import ASSIGNMENT_SCHEMA
from accessaudit.model import CollectionUnit
from accessaudit.transport.graph_auth import PinnedSession, TokenSource
from accessaudit.transport.graph_http import GraphClient, UnitFailed, next_link_loop

MG_SCOPE = "/providers/Microsoft.Management/managementGroups/"


def _as_entra(cfg: AzureSource, base: str) -> EntraSource:
    """The msal/HTTP settings of ``cfg`` in the Entra source's shape: ``graph_url`` is ``base``
    (the token resource for :class:`TokenSource`, the endpoint for :class:`GraphClient`)."""
    return EntraSource(
        kind="entra",
        name=cfg.name,
        tenant_id=cfg.tenant_id,
        client_id=cfg.client_id or "",
        authority_host=cfg.authority_host,
        graph_url=base,
        certificate_file=cfg.certificate_file,
        certificate_thumbprint=cfg.certificate_thumbprint,
        certificate_passphrase_env=cfg.certificate_passphrase_env,
        certificate_passphrase_file=cfg.certificate_passphrase_file,
        certificate_passphrase_keyring=cfg.certificate_passphrase_keyring,
        client_secret_env=cfg.client_secret_env,
        client_secret_file=cfg.client_secret_file,
        client_secret_keyring=cfg.client_secret_keyring,
        ca_file=cfg.ca_file,
        max_retries=cfg.max_retries,
        retry_backoff=cfg.retry_backoff,
        time_budget=cfg.time_budget,
        timeout=cfg.timeout,
    )


class Arm:
    """One ARM session: a token for ARM's audience and the retrying client."""

    def __init__(self, cfg: AzureSource, source: str) -> None:
        self._cfg = cfg
        session = PinnedSession(cfg.ca_file)
        tokens = TokenSource(_as_entra(cfg, cfg.resource.rstrip("/") + "/"), session, source)
        endpoint = _as_entra(cfg, cfg.management_url.rstrip("/"))
        deadline = time.monotonic() + cfg.time_budget
        self.client = GraphClient(endpoint, session, tokens, source, deadline=deadline)

    def list(self, scope: str, what: str, extra: str = "") -> list[dict[str, Any]]:
        """Every item of ``{scope}/providers/Microsoft.Authorization/{what}``, all pages."""
        query = f"api-version={quote(self._cfg.api_version)}{extra}"
        url = self.client.url(f"{scope}/providers/Microsoft.Authorization/{what}?{query}")
        items: list[dict[str, Any]] = []
        asked = {url}
        pages = 0
        while True:
            page = self.client.send("GET", url)
            pages += 1
            items.extend(v for v in page.get("value") or [] if isinstance(v, dict))
            link = page.get("nextLink")
            if not link:
                return items
            self.client.relative(str(link))  # same origin, or refused
            url = str(link)
            if url in asked:
                raise UnitFailed(next_link_loop(pages))
            asked.add(url)


def _rows(assignments: list[dict[str, Any]], names: dict[str, str]) -> list[tuple[Any, ...]]:
    rows = []
    for item in assignments:
        props = item.get("properties") or {}
        role = str(props.get("roleDefinitionId") or "").rsplit("/", 1)[-1].lower()
        rows.append(
            (
                props.get("principalId"),
                props.get("principalType"),
                role,
                names.get(role),
                props.get("scope"),
            )
        )
    return rows


def read_arm(cfg: AzureSource, source: str) -> tuple[pl.DataFrame, list[CollectionUnit]]:
    """Assignments of every configured scope, and one unit per scope."""
    arm = Arm(cfg, source)
    scopes = [(f"/subscriptions/{s}", "") for s in cfg.subscriptions]
    scopes += [(f"{MG_SCOPE}{m}", "&$filter=atScope()") for m in cfg.management_groups]
    rows: list[tuple[Any, ...]] = []
    units: list[CollectionUnit] = []
    for scope, extra in scopes:
        try:
            definitions = arm.list(scope, "roleDefinitions")
            names = {
                str(d.get("name", "")).lower(): str((d.get("properties") or {}).get("roleName"))
                for d in definitions
            }
            found = _rows(arm.list(scope, "roleAssignments", extra), names)
        except UnitFailed as exc:
            units.append(CollectionUnit(f"role assignments {scope}", False, str(exc)))
            continue
        rows += found
        units.append(
            CollectionUnit(
                f"role assignments {scope}",
                True,
                f"{len(found)} assignments, {len(names)} role definitions, no nextLink left",
                len(found),
            )
        )
    frame = pl.DataFrame(rows, schema=ASSIGNMENT_SCHEMA, orient="row")
    return frame, units
