"""Entra ID connector: msal (app-only client credentials) + Microsoft Graph v1.0, read-only.

Application permissions (Microsoft Graph, type *Application*, admin consent granted) — exactly
these, all read-only:

* ``User.Read.All`` — users (``/users``, ``/users/delta``);
* ``GroupMember.Read.All`` — groups, direct members and owners (``/groups``, ``/members``,
  ``/owners``, ``/groups/delta``);
* ``RoleManagement.Read.Directory`` — directory-role definitions, assignments and PIM
  eligibility (``/roleManagement/directory/...``);
* ``Application.Read.All`` — service principals and their app-role assignments
  (``/servicePrincipals``, ``/appRoleAssignedTo``);
* ``AuditLog.Read.All`` — only with ``sign_in_activity = true`` (the tenant also needs P1);
* ``Member.Read.Hidden`` — only if the tenant has hidden-membership groups;
* ``OrgContact.Read.All`` / ``Device.Read.All`` — only if groups have contacts / devices as
  members (without them those members come back with "limited information").

At start the token's ``roles`` claim is read: any write permission (``*.ReadWrite.*``, ...) makes
the connector refuse to run unless ``allow_write_permissions = true``; a missing permission marks
the affected collection units incomplete (with the permission to grant) and is logged.

What is collected, and how each collection unit is proven complete:

* ``users`` — ``$select`` of the audit fields, ``$top=999``, every ``@odata.nextLink`` followed;
* ``groups``, then the **direct** ``members`` and ``owners`` of every group, packed 20 to a
  ``$batch`` request (owners are skipped for on-premises synced groups, which have none in
  Entra: group-list-owners);
* ``role-definitions``, ``role-assignments``, ``role-eligibility`` (PIM; a tenant without P2 has
  none), ``service-principals`` and their ``app-role-assignments``.

A unit is complete when its last page had no ``@odata.nextLink``; a unit that cannot be completed
(403, 401 after a token refresh, retries or time budget exhausted, limited-information members)
is returned with ``complete=False`` and the reason — never dropped silently.

Incremental runs: with ``use_delta`` the result's ``state`` holds deltaLinks (only for parts that
were collected completely); passing that ``state`` and the tables of that run (``previous``) back
applies ``/users/delta`` and ``/groups/delta`` changes instead of listing everything. 410 Gone,
``syncStateNotFound``, a link older than 7 days or different selected fields fall back to a full
collection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from ..config import EntraSource
from ..errors import AuthError, ConfigError
from ..model import COLLECTED_SCHEMAS, CollectionUnit, SourceCollection, conform
from . import entra_delta as delta
from .entra_auth import (
    NEEDS,
    PinnedSession,
    TokenSource,
    missing_permission,
    token_roles,
    write_permissions,
)
from .entra_http import GraphClient, GraphFailure, Listing, UnitFailed
from .entra_tables import (
    GROUP_SELECT,
    LINK_SELECT,
    USER_SELECT,
    accounts_frame,
    app_role_grants,
    grants_frame,
    groups_frame,
    mark_privileged,
    member_kind,
    memberships_frame,
    ownership_grants,
    privileged_principals,
    role_grants,
)

log = logging.getLogger(__name__)

#: Graph codes that mean "this deltaLink can no longer be used: resynchronise".
_RESYNC = frozenset({"syncStateNotFound", "resyncRequired", "Request_BadRequest"})
#: Collection units in the order they are reported (objects' own units follow).
UNIT_ORDER = (
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
)
#: Which permission lets the app read members of each type, for limited-information reasons.
_TYPE_PERMISSION = {
    "#microsoft.graph.user": "User.Read.All",
    "#microsoft.graph.group": "GroupMember.Read.All",
    "#microsoft.graph.serviceprincipal": "Application.Read.All",
    "#microsoft.graph.orgcontact": "OrgContact.Read.All",
    "#microsoft.graph.device": "Device.Read.All",
}


def collect(
    cfg: EntraSource,
    *,
    state: Mapping[str, str] | None = None,
    now: datetime | None = None,
    previous: Mapping[str, pl.DataFrame] | None = None,
) -> SourceCollection:
    """Collect one Entra tenant into the canonical tables.

    ``state`` is what the previous run returned in :attr:`SourceCollection.state` (deltaLinks)
    and ``previous`` that run's tables; both are needed to collect incrementally. ``now`` fixes
    the collection's start time (and the age check of stored deltaLinks).

    Raises :class:`~accessaudit.errors.ConfigError` (credential settings),
    :class:`~accessaudit.errors.ConnectError` (authority or Graph unreachable, TLS) and
    :class:`~accessaudit.errors.AuthError` (token refused, write permissions, no permissions).
    """
    started = now or datetime.now(UTC)
    clock = time.monotonic()
    source = f"entra:{cfg.tenant_id}"
    for name, url in (("authority_host", cfg.authority_host), ("graph_url", cfg.graph_url)):
        if not url.startswith("https://"):
            raise ConfigError(f"source {cfg.name}: {name} {url} is not an https URL", "use https")
    session = PinnedSession(cfg.ca_file)
    try:
        tokens = TokenSource(cfg, session, source)
        roles = token_roles(tokens.token)
        _check_permissions(cfg, roles, source, tokens.host)
        client = GraphClient(cfg, session, tokens, source, deadline=clock + cfg.time_budget)
        run = _Run(cfg, client, roles, source, started, state or {}, previous or {})
        tables = run.collect()
    finally:
        session.close()
    finished = started + timedelta(seconds=time.monotonic() - clock)
    log.info("%s: %d Graph round trips", source, client.round_trips)
    return SourceCollection(
        source=source,
        kind="entra",
        started=started,
        finished=finished,
        tables=tables,
        units=run.units,
        state=run.state,
    )


def _check_permissions(
    cfg: EntraSource, roles: frozenset[str] | None, source: str, host: str
) -> None:
    if roles is None:
        log.warning("%s: the access token is not a readable JWT; permissions left to Graph", source)
        return
    writes = write_permissions(roles)
    if writes and not cfg.allow_write_permissions:
        raise AuthError(
            f"{source}: the app's token from {host} grants write permission(s) "
            f"{', '.join(writes)}; accessaudit only reads",
            "remove them from the app registration's API permissions, or set "
            "allow_write_permissions = true",
        )
    if not roles:
        raise AuthError(
            f"{source}: the token from {host} carries no application permissions",
            "grant User.Read.All, GroupMember.Read.All, RoleManagement.Read.Directory and "
            "Application.Read.All (type Application) and grant admin consent",
        )
    for part in NEEDS:
        missing = missing_permission(part, roles)
        if missing and (part != "sign-in-activity" or cfg.sign_in_activity):
            log.warning("%s: token lacks %s: %s will be incomplete", source, missing, part)


def _select(fields: tuple[str, ...]) -> str:
    return ",".join(fields)


def _proof(listing: Listing) -> str:
    restarts = (
        f", restarted {listing.restarts}x after expired page tokens" if listing.restarts else ""
    )
    return f"no @odata.nextLink after {listing.pages} page(s){restarts}"


def _limited(item: Mapping[str, Any]) -> bool:
    """ "Limited information": only @odata.type and id, every other property null."""
    others = [v for k, v in item.items() if k not in ("id", "@odata.type")]
    return bool(others) and all(v is None for v in others)


class _Run:
    """One collection: the units, in order, and what they yielded."""

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

    # --- bookkeeping --------------------------------------------------------------------------

    def ok(self, name: str, detail: str, count: int) -> None:
        self.units.append(CollectionUnit(name, True, detail, count))

    def bad(self, name: str, reason: str, count: int = 0) -> None:
        log.warning("%s: %s incomplete: %s", self.source, name, reason)
        self.units.append(CollectionUnit(name, False, reason, count))

    def lacks(self, part: str) -> str | None:
        missing = missing_permission(part, self.roles)
        return f"the token lacks {missing} (grant it and admin consent)" if missing else None

    # --- the whole run ------------------------------------------------------------------------

    def collect(self) -> dict[str, pl.DataFrame]:
        users_link = groups_link = None
        if self.cfg.use_delta:
            if not self.cfg.sign_in_activity:  # signInActivity is not available through delta
                users_link = delta.usable_link(self.old_state, "users", self.started, self.previous)
            groups_link = delta.usable_link(self.old_state, "groups", self.started, self.previous)
        accounts, gone_users, new_users_link = self.users(users_link)
        groups, memberships, owners, new_groups_link, jobs = self.groups(groups_link, gone_users)
        role_rows, templates = self.directory_roles()
        service_principals, app_jobs = self.service_principals()
        results = self.client.list_many(jobs + app_jobs) if jobs or app_jobs else {}
        if jobs:
            groups, memberships, owners = self.links(groups, jobs, results)
        app_rows = self.app_role_assignments(service_principals, results) if app_jobs else []
        grants = grants_frame(role_rows + app_rows + ownership_grants(owners), self.source)
        accounts, groups = mark_privileged(
            accounts, groups, privileged_principals(grants, templates)
        )
        order = {name: n for n, name in enumerate(UNIT_ORDER)}
        self.units.sort(key=lambda u: order.get(u.name, len(order)))
        self.units.extend(self.failed)
        self.save_links(
            {"users": new_users_link, "groups": new_groups_link},
            {"users": ("users",), "groups": ("groups", "members", "owners")},
        )
        return {
            "accounts": accounts,
            "groups": groups,
            "memberships": memberships,
            "grants": grants,
        }

    def save_links(
        self, links: Mapping[str, str | None], units: Mapping[str, tuple[str, ...]]
    ) -> None:
        """State for the next run: a part's deltaLink only if the part was collected
        completely (else the next run must list everything again), or the old link unchanged
        when its delta round failed (nothing was applied, so it is still the right start)."""
        if not self.cfg.use_delta:
            return
        for part, link in links.items():
            if part in self.kept:
                self.state[f"{part}_delta_link"] = self.old_state[f"{part}_delta_link"]
                self.state[f"{part}_delta_obtained"] = self.old_state[f"{part}_delta_obtained"]
            elif link and all(self.unit_ok(u) for u in units[part]):
                self.state[f"{part}_delta_link"] = link
                self.state[f"{part}_delta_obtained"] = self.started.isoformat()
        if self.state:
            self.state["delta_fields"] = delta.FIELDS

    def unit_ok(self, name: str) -> bool:
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

    # --- users --------------------------------------------------------------------------------

    def users(self, link: str | None) -> tuple[pl.DataFrame, set[str], str | None]:
        lacks = self.lacks("users")
        if lacks:
            self.bad("users", lacks)
            return accounts_frame([], self.source, sign_in=False), set(), None
        if link:
            try:
                listing = self.client.list_all(link)
            except GraphFailure as failure:
                if failure.status != 410 and failure.code not in _RESYNC:
                    return self.users_stale(str(failure), link)
                log.info("%s: users deltaLink rejected (%s): full collection", self.source, failure)
            except UnitFailed as failure:
                return self.users_stale(str(failure), link)
            else:
                folded = delta.fold(listing.items)
                fresh = accounts_frame(folded.changed.values(), self.source, sign_in=False)
                table = delta.apply_rows(self.previous["accounts"], "account_id", folded, fresh)
                self.ok(
                    "users",
                    f"delta: @odata.deltaLink after {listing.pages} page(s); "
                    f"{len(folded.changed)} changed, {len(folded.removed)} removed",
                    table.height,
                )
                return table, folded.removed, listing.last.get("@odata.deltaLink")
        new_link = self.latest(delta.USERS_LATEST)
        fields: tuple[str, ...] = USER_SELECT
        sign_in = self.cfg.sign_in_activity
        if sign_in:
            lacks_audit = self.lacks("sign-in-activity")
            if lacks_audit:
                self.bad("sign-in-activity", lacks_audit)
                sign_in = False
            else:
                fields = (*USER_SELECT, "signInActivity")
        try:
            listing = self.client.list_all(f"/users?$select={_select(fields)}&$top={self.page}")
        except GraphFailure as failure:
            if not sign_in or failure.status != 403:
                self.bad("users", str(failure))
                return accounts_frame([], self.source, sign_in=False), set(), None
            # No P1 licence (Authentication_RequestFromNonPremiumTenantOrB2CTenant): collect
            # users without sign-in activity and say so.
            self.bad("sign-in-activity", str(failure))
            sign_in = False
            return self.users_plain(new_link)
        except UnitFailed as failure:
            self.bad("users", str(failure))
            return accounts_frame([], self.source, sign_in=False), set(), None
        if sign_in:
            self.ok(
                "sign-in-activity",
                "signInActivity selected on every users page",
                len(listing.items),
            )
        self.ok("users", _proof(listing), len(listing.items))
        return accounts_frame(listing.items, self.source, sign_in=sign_in), set(), new_link

    def users_plain(self, new_link: str | None) -> tuple[pl.DataFrame, set[str], str | None]:
        try:
            listing = self.client.list_all(
                f"/users?$select={_select(USER_SELECT)}&$top={self.page}"
            )
        except UnitFailed as failure:
            self.bad("users", str(failure))
            return accounts_frame([], self.source, sign_in=False), set(), None
        self.ok("users", _proof(listing), len(listing.items))
        return accounts_frame(listing.items, self.source, sign_in=False), set(), new_link

    def users_stale(self, reason: str, link: str) -> tuple[pl.DataFrame, set[str], str | None]:
        """The delta round failed: keep the previous users, say so, keep the old link."""
        table = self.previous["accounts"]
        self.bad("users", f"delta round failed ({reason}); previous users kept", table.height)
        self.kept.add("users")
        return table, set(), link

    # --- groups, members, owners --------------------------------------------------------------

    def groups(
        self, link: str | None, gone_users: set[str]
    ) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, list[str]], str | None, list[tuple[str, str]]]:
        empty_groups = groups_frame([], {}, self.source)
        empty_members = memberships_frame([], self.source)
        lacks = self.lacks("groups")
        if lacks:
            for name in ("groups", "members", "owners"):
                self.bad(name, lacks)
            return empty_groups, empty_members, {}, None, []
        if link:
            try:
                listing = self.client.list_all(link)
            except GraphFailure as failure:
                if failure.status != 410 and failure.code not in _RESYNC:
                    return self.groups_stale(str(failure), link)
                log.info(
                    "%s: groups deltaLink rejected (%s): full collection", self.source, failure
                )
            except UnitFailed as failure:
                return self.groups_stale(str(failure), link)
            else:
                return self.groups_delta(listing, gone_users)
        new_link = self.latest(delta.GROUPS_LATEST)
        try:
            listing = self.client.list_all(
                f"/groups?$select={_select(GROUP_SELECT)}&$top={self.page}"
            )
        except UnitFailed as failure:
            for name in ("groups", "members", "owners"):
                self.bad(name, str(failure) if name == "groups" else "groups could not be listed")
            return empty_groups, empty_members, {}, None, []
        self.ok("groups", _proof(listing), len(listing.items))
        self.raw_groups = listing.items
        select = _select(LINK_SELECT)
        jobs = [
            (f"m:{g['id']}", f"/groups/{g['id']}/members?$select={select}&$top={self.page}")
            for g in listing.items
        ]
        # "Owners are currently not available ... for groups synchronized from an on-premises
        # environment" (group-list-owners): skip those requests.
        jobs += [
            (f"o:{g['id']}", f"/groups/{g['id']}/owners?$select={select}&$top={self.page}")
            for g in listing.items
            if not g.get("onPremisesSyncEnabled")
        ]
        return empty_groups, empty_members, {}, new_link, jobs

    def links(
        self,
        _groups: pl.DataFrame,
        jobs: list[tuple[str, str]],
        results: Mapping[str, Listing | UnitFailed],
    ) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, list[str]]]:
        """Members and owners of every listed group, from the batched listings."""
        edges: list[tuple[str, str, str]] = []
        owners: dict[str, list[str]] = {}
        vanished: set[str] = set()
        counts = {"m": [0, 0, 0], "o": [0, 0, 0]}  # groups, pages, links
        failed: dict[str, list[tuple[str, str]]] = {"m": [], "o": []}
        for key, _ in jobs:
            kind, group_id = key.split(":", 1)
            result = results.get(key, UnitFailed("not collected"))
            if isinstance(result, GraphFailure) and result.code == "Request_ResourceNotFound":
                vanished.add(group_id)  # deleted since the listing (ROADtools issue #22)
                continue
            if isinstance(result, UnitFailed):
                failed[kind].append((group_id, str(result)))
                continue
            counts[kind][0] += 1
            counts[kind][1] += result.pages
            counts[kind][2] += len(result.items)
            limited = [i for i in result.items if _limited(i)]
            if kind == "m":
                edges.extend(
                    (group_id, str(i.get("id")), member_kind(i.get("@odata.type")))
                    for i in result.items
                )
            else:
                owners[group_id] = [str(i.get("id")) for i in result.items]
            if limited:
                types = sorted({str(i.get("@odata.type")) for i in limited})
                grant = sorted(
                    {_TYPE_PERMISSION.get(t.lower(), "Directory.Read.All") for t in types}
                )
                failed[kind].append(
                    (
                        group_id,
                        f"{len(limited)} {'member' if kind == 'm' else 'owner'}(s) returned with "
                        f"limited information ({', '.join(t.rsplit('.', 1)[-1] for t in types)}): "
                        f"grant {' or '.join(grant)}",
                    )
                )
        live = [g for g in self.raw_groups if g["id"] not in vanished]
        groups = groups_frame(live, owners, self.source)
        memberships = memberships_frame((e for e in edges if e[0] not in vanished), self.source)
        for kind, unit in (("m", "members"), ("o", "owners")):
            groups_done, pages, links = counts[kind]
            note = (
                f"; {len(vanished)} group(s) deleted during collection dropped"
                if vanished and kind == "m"
                else ""
            )
            if failed[kind]:
                self.bad(
                    unit,
                    f"{len(failed[kind])} group(s) incomplete, see {unit}:<group id>{note}",
                    links,
                )
                self.failed.extend(CollectionUnit(f"{unit}:{g}", False, r) for g, r in failed[kind])
            elif groups_done == 0 and kind == "o":
                self.ok(unit, "no cloud groups (synced groups have no owners in Entra)", 0)
            else:
                proof = f"no @odata.nextLink after {pages} page(s) in total"
                self.ok(unit, f"{groups_done} group(s): {proof}{note}", links)
        return groups, memberships, owners

    def groups_delta(
        self, listing: Listing, gone_users: set[str]
    ) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, list[str]], str | None, list[tuple[str, str]]]:
        folded = delta.fold(listing.items)
        previous = self.previous["groups"]
        fresh = groups_frame(folded.changed.values(), {}, self.source)
        table = delta.apply_rows(previous, "group_id", folded, fresh)
        owners = delta.apply_owners(previous, folded, table.get_column("group_id").to_list())
        table = delta.with_owners(table, owners)
        memberships, added, removed = delta.apply_memberships(
            self.previous["memberships"], folded, folded.removed | gone_users, self.source
        )
        proof = f"delta: @odata.deltaLink after {listing.pages} page(s)"
        self.ok(
            "groups",
            f"{proof}; {len(folded.changed)} changed, {len(folded.removed)} removed",
            table.height,
        )
        self.ok("members", f"{proof}; {added} link(s) added, {removed} removed", memberships.height)
        self.ok(
            "owners",
            f"{proof}; {sum(1 for a in folded.owners.values() if a)} added, "
            f"{sum(1 for a in folded.owners.values() if not a)} removed",
            sum(map(len, owners.values())),
        )
        return table, memberships, owners, listing.last.get("@odata.deltaLink"), []

    def groups_stale(
        self, reason: str, link: str
    ) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, list[str]], str | None, list[tuple[str, str]]]:
        groups, memberships = self.previous["groups"], self.previous["memberships"]
        self.kept.add("groups")
        self.bad("groups", f"delta round failed ({reason}); previous groups kept", groups.height)
        self.bad("members", "groups delta round failed; previous members kept", memberships.height)
        self.bad("owners", "groups delta round failed; previous owners kept")
        owners = {g: list(o) for g, o in groups.select("group_id", "owners").iter_rows() if o}
        return groups, memberships, owners, link, []

    # --- directory roles ----------------------------------------------------------------------

    def directory_roles(self) -> tuple[list[tuple[str, str, str, str]], dict[str, str | None]]:
        lacks = self.lacks("roles")
        if lacks:
            self.bad("role-definitions", lacks)
            self.bad("role-assignments", lacks)
            names: dict[str, str] = {}
            templates: dict[str, str | None] = {}
            rows: list[tuple[str, str, str, str]] = []
        else:
            names, templates = {}, {}
            try:
                listing = self.client.list_all("/roleManagement/directory/roleDefinitions")
            except UnitFailed as failure:
                self.bad("role-definitions", f"{failure}; role names shown as ids")
            else:
                for d in listing.items:
                    names[str(d.get("id"))] = str(d.get("displayName") or d.get("id"))
                    templates[str(d.get("id"))] = d.get("templateId")
                self.ok("role-definitions", _proof(listing), len(listing.items))
            try:
                listing = self.client.list_all("/roleManagement/directory/roleAssignments")
            except UnitFailed as failure:
                self.bad("role-assignments", str(failure))
                rows = []
            else:
                rows = role_grants(listing.items, names, eligible=False)
                self.ok("role-assignments", _proof(listing), len(listing.items))
        if self.cfg.role_eligibility:
            rows += self.role_eligibility(names)
        return rows, templates

    def role_eligibility(self, names: Mapping[str, str]) -> list[tuple[str, str, str, str]]:
        lacks = self.lacks("role-eligibility")
        if lacks:
            self.bad("role-eligibility", lacks)
            return []
        try:
            listing = self.client.list_all(
                "/roleManagement/directory/roleEligibilityScheduleInstances"
            )
        except GraphFailure as failure:
            if failure.code == "AadPremiumLicenseRequired":
                self.ok(
                    "role-eligibility",
                    "tenant has no Entra ID P2: PIM eligibility does not exist",
                    0,
                )
            else:
                self.bad("role-eligibility", str(failure))
            return []
        except UnitFailed as failure:
            self.bad("role-eligibility", str(failure))
            return []
        self.ok("role-eligibility", _proof(listing), len(listing.items))
        return role_grants(listing.items, names, eligible=True)

    # --- app roles ----------------------------------------------------------------------------

    def service_principals(self) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        lacks = self.lacks("applications")
        if lacks:
            self.bad("service-principals", lacks)
            self.bad("app-role-assignments", lacks)
            return [], []
        try:
            listing = self.client.list_all(
                f"/servicePrincipals?$select=id,displayName,appRoles&$top={self.page}"
            )
        except UnitFailed as failure:
            self.bad("service-principals", str(failure))
            self.bad("app-role-assignments", "service principals could not be listed")
            return [], []
        self.ok("service-principals", _proof(listing), len(listing.items))
        jobs = [
            (f"a:{sp['id']}", f"/servicePrincipals/{sp['id']}/appRoleAssignedTo?$top={self.page}")
            for sp in listing.items
        ]
        if not jobs:
            self.ok("app-role-assignments", "no service principals", 0)
        return listing.items, jobs

    def app_role_assignments(
        self, service_principals: list[dict[str, Any]], results: Mapping[str, Listing | UnitFailed]
    ) -> list[tuple[str, str, str, str]]:
        rows: list[tuple[str, str, str, str]] = []
        failed: list[tuple[str, str]] = []
        pages = 0
        for sp in service_principals:
            result = results.get(f"a:{sp['id']}", UnitFailed("not collected"))
            if isinstance(result, GraphFailure) and result.code == "Request_ResourceNotFound":
                continue  # deleted since the listing
            if isinstance(result, UnitFailed):
                failed.append((str(sp["id"]), str(result)))
                continue
            pages += result.pages
            rows += app_role_grants(result.items, sp)
        if failed:
            self.bad(
                "app-role-assignments",
                f"{len(failed)} service principal(s) incomplete, see app-role-assignments:<id>",
                len(rows),
            )
            self.failed.extend(
                CollectionUnit(f"app-role-assignments:{s}", False, r) for s, r in failed
            )
        else:
            self.ok(
                "app-role-assignments",
                f"{len(service_principals)} service principal(s): no @odata.nextLink after "
                f"{pages} page(s) in total",
                len(rows),
            )
        return rows
