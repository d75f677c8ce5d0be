"""Users, groups, direct members and owners: full listings or delta rounds."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

import polars as pl

from accessaudit.connectors.entra import delta
from accessaudit.connectors.entra.tables import (
    CONTAINER_KINDS,
    GROUP_SELECT,
    LINK_SELECT,
    USER_SELECT,
    accounts_frame,
    groups_frame,
    member_kind,
    memberships_frame,
)
from accessaudit.connectors.entra.units import (
    HIDDEN_REASON,
    Context,
    is_limited,
    limited_reason,
    proof,
    select,
)
from accessaudit.model import UTC_TIME, CollectionUnit
from accessaudit.transport.graph_http import GraphFailure, Listing, UnitFailed

log = logging.getLogger(__name__)

#: Graph codes that mean "this deltaLink can no longer be used: resynchronise".
_RESYNC: Final = frozenset({"syncStateNotFound", "resyncRequired", "Request_BadRequest"})

Users = tuple[pl.DataFrame, set[str], str | None]
Groups = tuple[pl.DataFrame, pl.DataFrame, dict[str, list[str]], str | None, list[tuple[str, str]]]


def refused(failure: GraphFailure) -> str:
    """Why a deltaLink was not applied, for the unit's detail (Graph's message is long)."""
    return f"deltaLink refused: HTTP {failure.status} {failure.code}".strip()


# --- users --------------------------------------------------------------------------------


def users(ctx: Context, link: str | None) -> Users:
    lacks = ctx.lacks("users")
    if lacks:
        ctx.bad("users", lacks)
        return accounts_frame([], ctx.source, sign_in=False), set(), None
    if link:
        done = users_delta(ctx, link)
        if done is not None:
            return done
    return users_full(ctx)


def users_delta(ctx: Context, link: str) -> Users | None:
    """A delta round from ``link`` applied to the previous users; None when Graph refused the
    link and a full collection has to resynchronise."""
    try:
        listing = ctx.client.list_all(link)
    except GraphFailure as failure:
        if failure.status != 410 and failure.code not in _RESYNC:
            return users_stale(ctx, str(failure), link)
        log.info("%s: users deltaLink rejected (%s): full collection", ctx.source, failure)
        ctx.full_because("users", refused(failure))
        return None
    except UnitFailed as failure:
        return users_stale(ctx, str(failure), link)
    folded = delta.fold(listing.items)
    fresh = accounts_frame(folded.changed.values(), ctx.source, sign_in=False)
    table = delta.apply_rows(ctx.previous["accounts"], "account_id", folded, fresh)
    # delta rounds carry no signInActivity: sign-ins kept from an earlier run would be stale
    table = table.with_columns(last_logon=pl.lit(None, UTC_TIME), activity_tracked=pl.lit(False))
    ctx.ok(
        "users",
        f"delta: @odata.deltaLink after {listing.pages} page(s); "
        f"{len(folded.changed)} changed, {len(folded.removed)} removed",
        table.height,
    )
    return table, folded.removed, listing.last.get("@odata.deltaLink")


def users_full(ctx: Context) -> Users:
    """Every user, with sign-in activity when the source asks for it and may read it."""
    new_link = ctx.latest(delta.USERS_LATEST)
    fields: tuple[str, ...] = USER_SELECT
    sign_in = ctx.cfg.sign_in_activity
    if sign_in:
        lacks_audit = ctx.lacks("sign-in-activity")
        if lacks_audit:
            ctx.bad("sign-in-activity", lacks_audit)
            sign_in = False
        else:
            fields = (*USER_SELECT, "signInActivity")
    try:
        listing = ctx.client.list_all(f"/users?$select={select(fields)}&$top={ctx.page}")
    except GraphFailure as failure:
        if not sign_in or failure.status != 403:
            ctx.bad("users", str(failure))
            return accounts_frame([], ctx.source, sign_in=False), set(), None
        # No P1 licence (Authentication_RequestFromNonPremiumTenantOrB2CTenant): collect
        # users without sign-in activity and say so.
        ctx.bad("sign-in-activity", str(failure))
        return users_plain(ctx, new_link)
    except UnitFailed as failure:
        ctx.bad("users", str(failure))
        return accounts_frame([], ctx.source, sign_in=False), set(), None
    if sign_in:
        ctx.ok(
            "sign-in-activity",
            "signInActivity selected on every users page",
            len(listing.items),
        )
    ctx.ok("users", proof(listing), len(listing.items))
    return accounts_frame(listing.items, ctx.source, sign_in=sign_in), set(), new_link


def users_plain(ctx: Context, new_link: str | None) -> Users:
    try:
        listing = ctx.client.list_all(f"/users?$select={select(USER_SELECT)}&$top={ctx.page}")
    except UnitFailed as failure:
        ctx.bad("users", str(failure))
        return accounts_frame([], ctx.source, sign_in=False), set(), None
    ctx.ok("users", proof(listing), len(listing.items))
    return accounts_frame(listing.items, ctx.source, sign_in=False), set(), new_link


def users_stale(ctx: Context, reason: str, link: str) -> Users:
    """The delta round failed: keep the previous users, say so, keep the old link."""
    table = ctx.previous["accounts"]
    ctx.bad("users", f"delta round failed ({reason}); previous users kept", table.height)
    ctx.kept.add("users")
    return table, set(), link


def groups(ctx: Context, link: str | None, gone_users: set[str]) -> Groups:
    empty_groups = groups_frame([], {}, ctx.source)
    empty_members = memberships_frame([], ctx.source)
    lacks = ctx.lacks("groups")
    if lacks:
        for name in ("groups", "members", "owners"):
            ctx.bad(name, lacks)
        return empty_groups, empty_members, {}, None, []
    if link:
        try:
            listing = ctx.client.list_all(link)
        except GraphFailure as failure:
            if failure.status != 410 and failure.code not in _RESYNC:
                return groups_stale(ctx, str(failure), link)
            log.info("%s: groups deltaLink rejected (%s): full collection", ctx.source, failure)
            ctx.full_because("groups", refused(failure))
        except UnitFailed as failure:
            return groups_stale(ctx, str(failure), link)
        else:
            return groups_delta(ctx, listing, gone_users)
    new_link = ctx.latest(delta.GROUPS_LATEST)
    try:
        listing = ctx.client.list_all(f"/groups?$select={select(GROUP_SELECT)}&$top={ctx.page}")
    except UnitFailed as failure:
        for name in ("groups", "members", "owners"):
            ctx.bad(name, str(failure) if name == "groups" else "groups could not be listed")
        return empty_groups, empty_members, {}, None, []
    ctx.ok("groups", proof(listing), len(listing.items))
    ctx.raw_groups = listing.items
    fields = select(LINK_SELECT)
    jobs = [
        (f"m:{g['id']}", f"/groups/{g['id']}/members?$select={fields}&$top={ctx.page}")
        for g in listing.items
    ]
    # "Owners are currently not available ... for groups synchronized from an on-premises
    # environment" (group-list-owners): skip those requests.
    jobs += [
        (f"o:{g['id']}", f"/groups/{g['id']}/owners?$select={fields}&$top={ctx.page}")
        for g in listing.items
        if not g.get("onPremisesSyncEnabled")
    ]
    return empty_groups, empty_members, {}, new_link, jobs


def links(
    ctx: Context,
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
    hidden = {g["id"] for g in ctx.raw_groups if ctx.hides_members(g)}
    for key, _ in jobs:
        kind, group_id = key.split(":", 1)
        result = results.get(key, UnitFailed("not collected"))
        if kind == "m" and group_id in hidden and not isinstance(result, UnitFailed):
            # Graph answers 200 with the members left out: never an empty "complete" group
            failed["m"].append((group_id, HIDDEN_REASON))
            continue
        if isinstance(result, GraphFailure) and result.code == "Request_ResourceNotFound":
            vanished.add(group_id)  # deleted since the listing (ROADtools issue #22)
            continue
        if isinstance(result, UnitFailed):
            failed[kind].append((group_id, str(result)))
            continue
        counts[kind][0] += 1
        counts[kind][1] += result.pages
        counts[kind][2] += len(result.items)
        limited = [i for i in result.items if is_limited(i)]
        if kind == "m":
            edges.extend(
                (group_id, str(i.get("id")), member_kind(i.get("@odata.type")))
                for i in result.items
            )
        else:
            owners[group_id] = [str(i.get("id")) for i in result.items]
        if limited:
            what = "member" if kind == "m" else "owner"
            failed[kind].append((group_id, limited_reason(limited, what)))
    for group_id in sorted(vanished - _confirmed_deleted(ctx, vanished)):
        failed["m"].append((group_id, "members answered 404, but the group still exists"))
        vanished.discard(group_id)
    live = [g for g in ctx.raw_groups if g["id"] not in vanished]
    groups = groups_frame(live, owners, ctx.source)
    memberships = memberships_frame((e for e in edges if e[0] not in vanished), ctx.source)
    for kind, unit in (("m", "members"), ("o", "owners")):
        groups_done, pages, links = counts[kind]
        note = (
            f"; {len(vanished)} group(s) deleted during collection dropped"
            if vanished and kind == "m"
            else ""
        )
        if failed[kind]:
            ctx.bad(
                unit,
                f"{len(failed[kind])} group(s) incomplete, see {unit}:<group id>{note}",
                links,
            )
            ctx.failed.extend(CollectionUnit(f"{unit}:{g}", False, r) for g, r in failed[kind])
        elif groups_done == 0 and kind == "o":
            ctx.ok(unit, "no cloud groups (synced groups have no owners in Entra)", 0)
        else:
            proof = f"no @odata.nextLink after {pages} page(s) in total"
            ctx.ok(unit, f"{groups_done} group(s): {proof}{note}", links)
    return groups, memberships, owners


def _confirmed_deleted(ctx: Context, group_ids: set[str]) -> set[str]:
    """The groups whose deletion a fresh read confirms (404 again). A 404 on a group's members
    can also come from replication lag while the group exists: dropping it then would make its
    access look removed (Prowler issue #1907)."""
    gone = set()
    for group_id in sorted(group_ids):
        try:
            ctx.client.send("GET", ctx.client.url(f"/groups/{group_id}?$select=id"))
        except GraphFailure as failure:
            if failure.code == "Request_ResourceNotFound":
                gone.add(group_id)
        except UnitFailed:
            pass
    return gone


def groups_delta(ctx: Context, listing: Listing, gone_users: set[str]) -> Groups:
    folded = delta.fold(listing.items)
    previous = ctx.previous["groups"]
    fresh = groups_frame(folded.changed.values(), {}, ctx.source)
    table = delta.apply_rows(previous, "group_id", folded, fresh)
    # only Graph groups' owners: the applications' owners are read again with them (entra.py)
    owners = delta.apply_owners(
        graph_groups(previous), folded, table.get_column("group_id").to_list()
    )
    table = delta.with_owners(table, owners)
    memberships, added, removed = delta.apply_memberships(
        ctx.previous["memberships"], folded, folded.removed | gone_users, ctx.source
    )
    proof = f"delta: @odata.deltaLink after {listing.pages} page(s)"
    ctx.ok(
        "groups",
        f"{proof}; {len(folded.changed)} changed, {len(folded.removed)} removed",
        table.height,
    )
    # members@delta leaves a hidden membership out, as the members listing does
    hidden = sorted(i for i, g in folded.changed.items() if ctx.hides_members(g))
    if hidden:
        ctx.bad("members", f"{len(hidden)} group(s) incomplete, see members:<group id>")
        ctx.failed.extend(CollectionUnit(f"members:{g}", False, HIDDEN_REASON) for g in hidden)
    else:
        ctx.ok("members", f"{proof}; {added} link(s) added, {removed} removed", memberships.height)
    ctx.ok(
        "owners",
        f"{proof}; {sum(1 for a in folded.owners.values() if a)} added, "
        f"{sum(1 for a in folded.owners.values() if not a)} removed",
        sum(map(len, owners.values())),
    )
    return table, memberships, owners, listing.last.get("@odata.deltaLink"), []


def groups_stale(ctx: Context, reason: str, link: str) -> Groups:
    groups, memberships = ctx.previous["groups"], ctx.previous["memberships"]
    ctx.kept.add("groups")
    ctx.bad("groups", f"delta round failed ({reason}); previous groups kept", groups.height)
    ctx.bad("members", "groups delta round failed; previous members kept", memberships.height)
    ctx.bad("owners", "groups delta round failed; previous owners kept")
    owners = {
        g: list(o) for g, o in graph_groups(groups).select("group_id", "owners").iter_rows() if o
    }
    return groups, memberships, owners, link, []


def graph_groups(groups: pl.DataFrame) -> pl.DataFrame:
    """The rows of Graph groups: not the applications and administrative units, which are
    listed in full (with their owners and members) on every run, delta or not."""
    return groups.filter(~pl.col("kind").is_in(CONTAINER_KINDS))
