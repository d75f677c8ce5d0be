"""Entra ID connector: msal (app-only client credentials) + Microsoft Graph v1.0, read-only.

Application permissions (Microsoft Graph, type *Application*, admin consent granted) — exactly
these, all read-only:

* ``User.Read.All`` — users (``/users``, ``/users/delta``);
* ``GroupMember.Read.All`` — groups, direct members and owners (``/groups``, ``/members``,
  ``/owners``, ``/groups/delta``);
* ``RoleManagement.Read.Directory`` — directory-role definitions, assignments and PIM
  eligibility (``/roleManagement/directory/...``);
* ``Application.Read.All`` — service principals, their app-role assignments and their owners
  (``/servicePrincipals``, ``/appRoleAssignedTo``, ``/owners``);
* ``AdministrativeUnit.Read.All`` — administrative units and their members
  (``/directory/administrativeUnits``, ``.../{id}/members``). Microsoft's v1.0 permission tables
  list it as least privileged for both; ``RoleManagement.Read.Directory`` appears only for a
  unit's ``scopedRoleMembers``, so it does not replace it;
* ``AuditLog.Read.All`` — only with ``sign_in_activity = true`` (the tenant also needs P1);
* ``Member.Read.Hidden`` — only if the tenant has hidden-membership groups or units (without
  it Graph answers 200 with their members left out: such a group's ``members:<id>`` unit is
  marked incomplete, never passed off as empty);
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
  none), ``service-principals`` and, for each, its ``app-role-assignments`` and its
  ``service-principal-owners`` (``$select=id``; an owner can add credentials to the application
  and act as it), in the same ``$batch`` queue;
* ``administrative-units`` and the direct ``administrative-unit-members`` of each (in the same
  ``$batch`` queue). Units and service principals, with their members, assignments and owners,
  are listed in full on every run: none of them is covered by ``/groups/delta``.

Canonical mapping: ``accounts.sid`` = onPremisesSecurityIdentifier (the AD objectSid of synced
users), ``username`` = onPremisesSamAccountName or mailNickname, ``kind`` "guest" for guests and
external members (#EXT# UPN, creationType Invitation, externalUserState, userType Guest or an
external identity issuer) with their ``home_domain`` (from mail, the #EXT# UPN or a federated
identity's issuer: ``external.py``), ``last_logon`` = the latest signInActivity time
(``activity_tracked`` and the ``last_logon`` signal only when it was read for every user:
:func:`last_logon_signal`); every
service principal that is a member, an owner or a holder of a role or app role is an account of
kind "service" too (``username`` its displayName, ``app_tenant`` its appOwnerOrganizationId), and
members that are service principals are ``account`` members, devices and org contacts
``foreign``; ``groups.mastered``
"ad" for synced groups, "cloud" otherwise; every service principal holding app-role
assignments or having owners (the enterprise application) and every administrative unit is a
groups row too (kind ``app-role`` / ``administrative-unit``, ``mastered`` and ``scope`` "cloud",
no SID; an application's ``owners`` are its owners, a unit has none), so their organisation is
attributed like a group's and an application's owners are read like a group's; a unit's members
are its memberships;
``grants.right`` is "<role> @ <directoryScopeId>"
(suffix " (eligible)" for PIM eligibility), "<app>: <app role value>" ("default access") or
"owner" (of a group or of a service principal); ``privileged`` marks holders of roles Microsoft
labels privileged; a group's
``membership_rule`` (dynamic groups only), ``role_assignable`` and ``mail_enabled`` are Graph's
membershipRule, isAssignableToRole and mailEnabled (remediation reads them: a dynamic group's
rule, not its members, is changed; a mail-enabled non-Microsoft 365 group is Exchange's).

A unit is complete when its last page had no ``@odata.nextLink``; a unit that cannot be completed
(403, 401 after a token refresh, retries or time budget exhausted, limited-information members)
is returned with ``complete=False`` and the reason — never dropped silently.

Incremental runs: with ``use_delta`` the result's ``state`` holds deltaLinks (only for parts that
were collected completely); passing that ``state`` and the tables of that run (``previous``) back
applies ``/users/delta`` and ``/groups/delta`` changes instead of listing everything. 410 Gone,
``syncStateNotFound``, a link older than 7 days, other selected fields or table columns fall back
to a full collection, whose ``users`` / ``groups`` unit says why. With ``sign_in_activity`` users
are always listed in full (signInActivity is not available through delta); groups still use
theirs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import polars as pl

from accessaudit.config.sources import EntraSource
from accessaudit.connectors.entra import admin_units, delta, directory, grants
from accessaudit.connectors.entra.external import principal_service_accounts
from accessaudit.connectors.entra.tables import (
    CONTAINER_KINDS,
    containers_frame,
    grants_frame,
    mark_privileged,
    memberships_frame,
    ownership_grants,
    privileged_principals,
)
from accessaudit.connectors.entra.units import Context
from accessaudit.errors import AuthError, ConfigError
from accessaudit.model import (
    LAST_LOGON,
    CollectionUnit,
    GroupKind,
    Signal,
    SourceCollection,
)
from accessaudit.transport.graph_auth import (
    NEEDS,
    PinnedSession,
    TokenSource,
    missing_permission,
    token_roles,
    write_permissions,
)
from accessaudit.transport.graph_http import GraphClient

log = logging.getLogger(__name__)

T = TypeVar("T")


def collect(
    cfg: EntraSource,
    *,
    state: Mapping[str, str] | None = None,
    now: datetime | None = None,
    previous: Mapping[str, pl.DataFrame] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> SourceCollection:
    """Collect one Entra tenant into the canonical tables.

    ``state`` is what the previous run returned in :attr:`SourceCollection.state` (deltaLinks)
    and ``previous`` that run's tables; both are needed to collect incrementally. ``now`` fixes
    the collection's start time (and the age check of stored deltaLinks).
    ``progress(unit, objects)`` is called as each unit (users, groups, members ...) completes.

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
        client = GraphClient(
            cfg,
            session,
            tokens,
            source,
            deadline=clock + cfg.time_budget,
            sessions=lambda: PinnedSession(cfg.ca_file),
        )
        ctx = Context(cfg, client, roles, source, started, state or {}, previous or {})
        ctx.progress = progress
        tables = _collect(ctx)
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
        units=ctx.ordered_units(),
        state=ctx.state,
        signals={LAST_LOGON: last_logon_signal(cfg, ctx.units)},
    )


def last_logon_signal(cfg: EntraSource, units: list[CollectionUnit]) -> Signal:
    """Whether this collection knows who signed in when: only when signInActivity was read with
    every user (the ``sign-in-activity`` unit is complete). Without ``sign_in_activity``, without
    AuditLog.Read.All, or in a tenant without Entra ID P1 (403
    Authentication_RequestFromNonPremiumTenantOrB2CTenant) a user with no sign-in is not "never
    signed in": dormancy is unknown."""
    if not cfg.sign_in_activity:
        return Signal(False, "sign_in_activity = false: signInActivity not read")
    unit = next((u for u in units if u.name == "sign-in-activity"), None)
    if unit is None:
        return Signal(False, "signInActivity not read: users were not listed in full")
    if not unit.complete:
        return Signal(False, f"signInActivity not read: {unit.detail}")
    return Signal(True, "signInActivity: the latest interactive, non-interactive or successful")


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
            "grant User.Read.All, GroupMember.Read.All, RoleManagement.Read.Directory, "
            "Application.Read.All and AdministrativeUnit.Read.All (type Application) and grant "
            "admin consent",
        )
    for part in NEEDS:
        missing = missing_permission(part, roles)
        if missing and (part != "sign-in-activity" or cfg.sign_in_activity):
            log.warning("%s: token lacks %s: %s will be incomplete", source, missing, part)


def _collect(ctx: Context) -> dict[str, pl.DataFrame]:
    """Every unit in turn; the per-object listings of all parts share one $batch queue."""
    users_link = groups_link = None
    if ctx.cfg.use_delta:
        if not ctx.cfg.sign_in_activity:  # signInActivity is not available through delta
            users_link, why = delta.usable_link(ctx.old_state, "users", ctx.started, ctx.previous)
            ctx.full_because("users", why)
        groups_link, why = delta.usable_link(ctx.old_state, "groups", ctx.started, ctx.previous)
        ctx.full_because("groups", why)
    # With requests in flight at once, the listings nothing waits for run aside: a full users
    # listing (one nextLink chain: ~100 sequential pages at 100k users), roles, service
    # principals and administrative units. A users delta round goes first and in line: the
    # groups' delta round needs its removals.
    aside = ctx.cfg.max_concurrency > 1
    client = ctx.client
    users = _Part(client, aside and not users_link, directory.users, ctx, users_link)
    roles = _Part(client, aside, grants.directory_roles, ctx)
    principals = _Part(client, aside, grants.service_principals, ctx)
    admin = _Part(client, aside, admin_units.administrative_units, ctx)
    parts: list[_Part[Any]] = [users, roles, principals, admin]
    try:
        gone_users = set() if users.aside else users.result()[1]
        groups, memberships, owners, new_groups_link, jobs = directory.groups(
            ctx, groups_link, gone_users
        )
        role_rows, templates = roles.result()
        service_principals, app_jobs = principals.result()
        units, unit_jobs = admin.result()
        queue = jobs + app_jobs + unit_jobs
        results = ctx.client.list_many(queue) if queue else {}
        accounts, _, new_users_link = users.result()
    finally:
        for part in parts:
            part.join()
    if jobs:
        groups, memberships, owners = directory.links(ctx, groups, jobs, results)
    app_rows = grants.app_role_assignments(ctx, service_principals, results) if app_jobs else []
    sp_owners = (
        grants.service_principal_owners(ctx, service_principals, results) if app_jobs else {}
    )
    if unit_jobs:
        unit_rows, unit_edges = admin_units.unit_members(ctx, units, results)
    else:
        unit_rows = containers_frame([], GroupKind.ADMIN_UNIT, ctx.source)
        unit_edges = memberships_frame([], ctx.source)
    apps = grants.applications(ctx, service_principals, app_rows, sp_owners)
    groups, memberships = _with_containers(groups, memberships, [apps, unit_rows], unit_edges)
    ownership = ownership_grants(owners) + ownership_grants(sp_owners)
    table = grants_frame(role_rows + app_rows + ownership, ctx.source)
    accounts = principal_service_accounts(
        accounts, service_principals, memberships, table, ctx.source
    )
    accounts, groups = mark_privileged(accounts, groups, privileged_principals(table, templates))
    _save_links(
        ctx,
        {"users": new_users_link, "groups": new_groups_link},
        {"users": ("users",), "groups": ("groups", "members", "owners")},
    )
    return {"accounts": accounts, "groups": groups, "memberships": memberships, "grants": table}


class _Part(Generic[T]):
    """One part of the collection: run in a thread of its own from the start (``aside``), or
    in line when its result is first asked for (the sequential order of requests)."""

    def __init__(self, client: GraphClient, aside: bool, fn: Callable[..., T], *args: Any) -> None:
        self.aside = aside
        self._client = client
        self._fn, self._args = fn, args
        self._out: tuple[T] | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if aside:
            self._thread = threading.Thread(target=self._run, name="graph-part", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            self._out = (self._fn(*self._args),)
        except BaseException as exc:  # raised in the collecting thread by result()
            self._error = exc
        finally:
            self._client.release_session()  # this thread's own session

    def result(self) -> T:
        if self._thread is None and self._out is None:
            self._out = (self._fn(*self._args),)
        self.join()
        if self._error is not None:
            raise self._error
        assert self._out is not None
        return self._out[0]

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()


def _with_containers(
    groups: pl.DataFrame, memberships: pl.DataFrame, rows: list[pl.DataFrame], edges: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Groups and memberships with this run's applications and administrative units.

    Neither is covered by ``/groups/delta``, so both are listed in full on every run; a delta
    round starts from the previous run's tables, whose applications (with their owners) and
    units (and the units' member links) are replaced here."""
    old = groups.filter(pl.col("kind").is_in(CONTAINER_KINDS)).get_column("group_id").to_list()
    groups = pl.concat([groups.filter(~pl.col("group_id").is_in(old)), *rows], how="vertical")
    kept = memberships.filter(~pl.col("group_id").is_in(old))
    memberships = pl.concat([kept, edges], how="vertical").sort("group_id", "member_id")
    return groups, memberships


def _save_links(
    ctx: Context, links: Mapping[str, str | None], units: Mapping[str, tuple[str, ...]]
) -> None:
    """State for the next run: a part's deltaLink only if the part was collected completely
    (else the next run must list everything again), or the old link unchanged when its delta
    round failed (nothing was applied, so it is still the right place to start from)."""
    if not ctx.cfg.use_delta:
        return
    for part, link in links.items():
        if part in ctx.kept:
            ctx.state[f"{part}_delta_link"] = ctx.old_state[f"{part}_delta_link"]
            ctx.state[f"{part}_delta_obtained"] = ctx.old_state[f"{part}_delta_obtained"]
        elif link and all(ctx.unit_ok(u) for u in units[part]):
            ctx.state[f"{part}_delta_link"] = link
            ctx.state[f"{part}_delta_obtained"] = ctx.started.isoformat()
    if ctx.state:
        ctx.state["delta_fields"] = delta.FIELDS
