"""Bookkeeping of one Entra collection: the collection units, their proofs and reasons."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import polars as pl

from accessaudit.config.sources import EntraSource
from accessaudit.model import COLLECTED_SCHEMAS, CollectionUnit, conform
from accessaudit.transport.graph_auth import missing_permission
from accessaudit.transport.graph_http import GraphClient, Listing, UnitFailed

log = logging.getLogger(__name__)

#: Collection units in the order they are reported (per-object units follow).
UNIT_ORDER: Final = (
    "users",
    "sign-in-activity",
    "groups",
    "members",
    "owners",
    "role-definitions",
    "role-assignments",
    "role-eligibility",
    "service-principals",
    "app-role-assignments",
    "service-principal-owners",
    "administrative-units",
    "administrative-unit-members",
)


#: The permission that shows a HiddenMembership group's members, and why a unit lacks them.
HIDDEN_PERMISSION: Final = "Member.Read.Hidden"
HIDDEN_REASON: Final = f"hidden membership: grant {HIDDEN_PERMISSION} to read its members"


def select(fields: tuple[str, ...]) -> str:
    return ",".join(fields)


def proof(listing: Listing) -> str:
    restarts = (
        f", restarted {listing.restarts}x after expired page tokens" if listing.restarts else ""
    )
    return f"no @odata.nextLink after {listing.pages} page(s){restarts}"


def is_limited(item: Mapping[str, Any]) -> bool:
    """ "Limited information": only @odata.type and id, every other property null."""
    others = [v for k, v in item.items() if k not in ("id", "@odata.type")]
    return bool(others) and all(v is None for v in others)


#: Which permission lets the app read members of each type, for limited-information reasons.
_TYPE_PERMISSION: Final = {
    "#microsoft.graph.user": "User.Read.All",
    "#microsoft.graph.group": "GroupMember.Read.All",
    "#microsoft.graph.serviceprincipal": "Application.Read.All",
    "#microsoft.graph.orgcontact": "OrgContact.Read.All",
    "#microsoft.graph.device": "Device.Read.All",
}


def limited_reason(limited: Sequence[Mapping[str, Any]], what: str) -> str:
    """Why a listing with limited-information entries is incomplete, and what to grant."""
    types = sorted({str(i.get("@odata.type")) for i in limited})
    grant = sorted({_TYPE_PERMISSION.get(t.lower(), "Directory.Read.All") for t in types})
    return (
        f"{len(limited)} {what}(s) returned with limited information "
        f"({', '.join(t.rsplit('.', 1)[-1] for t in types)}): grant {' or '.join(grant)}"
    )


class Context:
    """One collection: settings, client, granted permissions, units and next-run state."""

    def __init__(
        self,
        cfg: EntraSource,
        client: GraphClient,
        roles: frozenset[str] | None,
        source: str,
        started: datetime,
        state: Mapping[str, str],
        previous: Mapping[str, pl.DataFrame],
    ) -> None:
        self.cfg = cfg
        self.client = client
        self.roles = roles
        self.source = source
        self.started = started
        self.old_state = state
        self.previous = {
            name: conform(df.filter(pl.col("source") == source), COLLECTED_SCHEMAS[name])
            for name, df in previous.items()
            if name in COLLECTED_SCHEMAS and "source" in df.columns
        }
        self.units: list[CollectionUnit] = []
        self.failed: list[CollectionUnit] = []
        self.state: dict[str, str] = {}
        self.kept: set[str] = set()  # parts whose delta round failed: previous data kept
        self.page = cfg.page_size
        self.raw_groups: list[dict[str, Any]] = []  # the groups listing, for their links
        #: unit -> why a stored deltaLink was not used ("users" / "groups"): said in its detail
        self.resync: dict[str, str] = {}
        self.progress: Callable[[str, int], None] | None = None  # (unit, objects) when done

    def full_because(self, part: str, reason: str | None) -> None:
        """Record why ``part`` is listed in full although a deltaLink was stored."""
        if reason:
            self.resync[part] = reason

    def ok(self, name: str, detail: str, count: int) -> None:
        if name in self.resync:
            detail = f"full collection ({self.resync[name]}): {detail}"
        self.units.append(CollectionUnit(name, True, detail, count))
        if self.progress:
            self.progress(name, count)

    def bad(self, name: str, reason: str, count: int = 0) -> None:
        log.warning("%s: %s incomplete: %s", self.source, name, reason)
        self.units.append(CollectionUnit(name, False, reason, count))

    def lacks(self, part: str) -> str | None:
        missing = missing_permission(part, self.roles)
        return f"the token lacks {missing} (grant it and admin consent)" if missing else None

    def hides_members(self, group: Mapping[str, Any]) -> bool:
        """Whether Graph hides ``group``'s members from this app: a ``HiddenMembership``
        group's members are listed only to apps holding Member.Read.Hidden; others get a 200
        with the hidden members silently left out (group resource, ``visibility``;
        microsoftgraph/microsoft-graph-docs issues #12552, #10109, #12285). The roles are the
        token's, as :func:`..collect._check_permissions` read them; an unreadable token counts
        as lacking it (an empty listing cannot prove the group empty)."""
        hidden = str(group.get("visibility") or "").lower() == "hiddenmembership"
        return hidden and (self.roles is None or HIDDEN_PERMISSION not in self.roles)

    def unit_ok(self, name: str) -> bool:
        """True when ``name`` and every per-object ``name:<id>`` unit are complete."""
        return all(
            u.complete for u in self.units if u.name == name or u.name.startswith(f"{name}:")
        )

    def latest(self, target: str) -> str | None:
        """A deltaLink for "from now on", taken before a full listing so that changes made
        while listing are replayed next time (applying them twice is harmless)."""
        if not self.cfg.use_delta:
            return None
        try:
            link = self.client.list_all(target).last.get("@odata.deltaLink")
        except UnitFailed as failure:
            log.warning(
                "%s: no deltaLink (%s); next run is a full collection", self.source, failure
            )
            return None
        return str(link) if link else None

    def ordered_units(self) -> list[CollectionUnit]:
        order = {name: n for n, name in enumerate(UNIT_ORDER)}
        return sorted(self.units, key=lambda u: order.get(u.name, len(order))) + self.failed
