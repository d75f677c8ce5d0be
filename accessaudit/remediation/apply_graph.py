"""Graph writes for :mod:`accessaudit.remediation.apply`: cloud-only group memberships.

Uses the Entra connector's own client (msal token source, TLS pinned to the configured CA,
retries honouring Retry-After) with the *write* app of ``[apply]``. Before each change the
group is read (``onPremisesSyncEnabled``: change it in AD; ``DynamicMembership``: change the
rule; mail-enabled non-Microsoft-365: Exchange; ``isAssignableToRole``: refused by design) and
its direct members listed. A 404 on ``DELETE .../members/{id}/$ref`` is "already
removed" only once a re-read confirms it (research: failure modes, Graph eventual consistency).
"""

from __future__ import annotations

import time
from typing import Any

import requests

from ..config import EntraSource
from ..connectors.entra_auth import PinnedSession, TokenSource
from ..connectors.entra_http import GraphClient, GraphFailure, UnitFailed
from ..errors import AuditError
from .apply import Change, Live


class GraphDirectory:
    """Read-before-write and membership writes on one Entra tenant."""

    def __init__(self, client: GraphClient) -> None:
        self.client = client
        self.writes = 0

    @classmethod
    def open(cls, cfg: EntraSource) -> GraphDirectory:
        session: requests.Session = PinnedSession(cfg.ca_file)
        source = f"entra:{cfg.tenant_id} (apply)"
        tokens = TokenSource(cfg, session, source)
        deadline = time.monotonic() + cfg.time_budget
        return cls(GraphClient(cfg, session, tokens, source, deadline=deadline))

    def _get(self, relative: str) -> dict[str, Any] | None:
        try:
            return self.client.send("GET", self.client.url(relative))
        except GraphFailure as exc:
            if exc.status == 404:
                return None
            raise AuditError(f"Graph read {relative} failed: {exc}") from None
        except UnitFailed as exc:
            raise AuditError(f"Graph read {relative} failed: {exc}") from None

    def _is_member(self, change: Change) -> bool:
        try:
            listing = self.client.list_all(f"/groups/{change.group_id}/members?$select=id")
        except UnitFailed as exc:
            raise AuditError(f"Graph listing of {change.group_id} members failed: {exc}") from None
        return any(i.get("id") == change.member_id for i in listing.items)

    def read(self, change: Change) -> Live:
        group = self._get(
            f"/groups/{change.group_id}?$select=id,groupTypes,onPremisesSyncEnabled,"
            "securityIdentifier,mailEnabled,isAssignableToRole"
        )
        member = self._get(f"/users/{change.member_id}?$select=id") or self._get(
            f"/groups/{change.member_id}?$select=id"
        )
        if group is None or member is None:
            return Live(group is not None, member is not None, False)
        types = group.get("groupTypes") or []
        return Live(
            True,
            True,
            self._is_member(change),
            group_sid=group.get("securityIdentifier"),
            synced=bool(group.get("onPremisesSyncEnabled")),
            dynamic="DynamicMembership" in types,
            # Microsoft 365 groups are mail-enabled and changeable; the others are Exchange's
            mail_enabled=bool(group.get("mailEnabled")) and "Unified" not in types,
            role_assignable=bool(group.get("isAssignableToRole")),
        )

    def remove(self, change: Change) -> None:
        url = self.client.url(f"/groups/{change.group_id}/members/{change.member_id}/$ref")
        self.writes += 1
        try:
            self.client.send("DELETE", url)
        except GraphFailure as exc:
            if exc.status == 404 and not self._is_member(change):
                return  # already removed, confirmed by a re-read
            raise AuditError(
                f"Graph DELETE member of {change.group_id} refused: {exc}",
                "check the write app has GroupMember.ReadWrite.All",
            ) from None
        except UnitFailed as exc:
            raise AuditError(f"Graph DELETE member of {change.group_id} failed: {exc}") from None

    def add(self, change: Change) -> None:
        url = self.client.url(f"/groups/{change.group_id}/members/$ref")
        body = {"@odata.id": self.client.url(f"/directoryObjects/{change.member_id}")}
        self.writes += 1
        try:
            self.client.send("POST", url, body=body)
        except GraphFailure as exc:
            if exc.status == 400 and self._is_member(change):
                return  # "One or more added object references already exist"
            raise AuditError(f"Graph POST member to {change.group_id} refused: {exc}") from None
        except UnitFailed as exc:
            raise AuditError(f"Graph POST member to {change.group_id} failed: {exc}") from None

    def undo_text(self, change: Change) -> dict[str, Any]:
        return {
            "method": "POST",
            "url": f"/groups/{change.group_id}/members/$ref",
            "body": {
                "@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{change.member_id}"
            },
            "headers": {"Content-Type": "application/json"},
        }
