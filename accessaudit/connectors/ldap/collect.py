"""Active Directory and generic LDAP (OpenLDAP) through ldap3, read-only, completeness proven.

``collect(cfg)`` binds to the first reachable server of ``cfg.servers`` (failover in order),
reads accounts, groups and (AD) foreign security principals with explicit attribute allow-lists,
and returns the canonical tables with one :class:`CollectionUnit` per provable piece:

- **paged search** (RFC 2696, 1.2.840.113556.1.4.319): the result code is checked after every
  page and the cookie loop followed to its empty cookie. ldap3's paged generator stops silently on
  ``sizeLimitExceeded``; this loop does not use it.
- **range retrieval** of ``member`` ([MS-ADTS] 3.1.1.3.1.3.3): AD returns at most MaxValRange
  (1500) values per request, so every group is read as ``member;range=0-N`` (every account as
  ``memberOf;range=0-N``) and followed until a range ends in ``-*``, each follow-up naming the
  entry by ``<GUID=...>`` (a DN on generic LDAP). A loop that stops without ``-*`` is an
  incomplete unit.
- **primary groups**: ``primaryGroupID`` is in neither ``member`` nor ``memberOf``; each account
  gets an edge ``via = "primaryGroupID"`` to the group whose SID is domain SID + that RID.
- **foreign security principals** stay members, identified by their SID.
- members, managers and owners resolve through the extended-DN control to GUIDs, never by
  comparing DN strings; referrals are counted, never chased.
- **deleted objects are not members**: AD removes (or, with the recycle bin, deactivates) the
  ``member`` links of a deleted object, and a search without the show-deleted/show-recycled
  controls returns neither deleted objects nor deactivated links; so a deleted member is
  simply absent, never an edge and never counted among the values "not collected".
- **memberOf cross-check**: every account's ``memberOf`` is read too and compared with the
  member side (see :func:`member_of_check`).

A timeout, a size or time limit, a dropped connection or an unfinished range marks its unit
incomplete, and :func:`collect` raises :class:`IncompleteLdapCollection` (carrying the collection
with every unit) rather than return a partial snapshot as if it were whole. ``total_timeout``
starts before the first server is tried, so connecting and binding count against it. Failover
follows ``servers`` in order: an unreachable server is skipped at connect, and a server lost
mid-collection (connection dropped, reset or timed out) sends the whole collection, from the
start, to the next server while time is left; pages from two DCs are never mixed. The servers
given up are named in the collection's state (``failed_over_from``); with none left, the
collection is incomplete.

Entries are read column-wise off ldap3's connection (:mod:`.wire`): ldap3 binds, encodes
every request and decodes every result, but builds no per-entry dicts; the garbage collector is
off for the duration of a collection (100,000 users in ~2x the time of ``ldapsearch``).

Transport: LDAPS or StartTLS with ``ssl.CERT_REQUIRED`` and the hostname checked, always; a plain
``ldap://`` bind, simple or Kerberos, is refused unless ``allow_plaintext`` (lab only). NTLM is
not offered: ldap3's NTLM needs MD4, which OpenSSL 3 lacks, and Samba drops ldap3's NTLM
("Sicily") bind.
Kerberos (SASL GSSAPI) needs the optional ``gssapi`` package and a ticket cache (``KRB5CCNAME``)
or keytab (``KRB5_CLIENT_KTNAME``); name servers as their ``ldap/<host>`` service principal is
named. ldap3's GSSAPI has no SASL security layer and relies on TLS, which Active Directory
accepts over LDAPS and Samba only with ``ldap server require strong auth = allow_sasl_over_tls``.

Least privilege: an ordinary domain user (member of Domain Users only, no delegated rights) can
read everything collected here in a default AD; do not use an administrator.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import polars as pl
from ldap3.core.exceptions import LDAPException
from ldap3.operation.search import parse_filter
from ldap3.utils.conv import escape_filter_chars

from accessaudit.config.sources import LdapSource
from accessaudit.connectors.ldap import acl, ad
from accessaudit.connectors.ldap import decode as dec
from accessaudit.connectors.ldap import generic as gen
from accessaudit.connectors.ldap import trusts as trust
from accessaudit.connectors.ldap.columns import raw_frame
from accessaudit.connectors.ldap.search import Progress, Session, follow_range, range_members
from accessaudit.errors import ConfigError, ConnectError, IncompleteCollection
from accessaudit.model import (
    GRANTS_SCHEMA,
    LAST_LOGON,
    CollectionUnit,
    Signal,
    SourceCollection,
    empty,
)
from accessaudit.transport.ldap import connect

__all__ = [
    "IncompleteLdapCollection",
    "collect",
    "connect",
    "follow_range",
    "ldap_filter",
    "member_of_check",
    "source_name",
]


log = logging.getLogger(__name__)


class IncompleteLdapCollection(IncompleteCollection):
    """Some units could not be proven complete; ``collection`` holds every unit and table."""

    def __init__(self, message: str, hint: str, collection: SourceCollection) -> None:
        super().__init__(message, hint)
        self.collection = collection


def ldap_filter(template: str, *values: str) -> str:
    """Build a filter from a template with ``{}`` slots; every value is RFC 4515 escaped."""
    return template.format(*(_escape_value(v) for v in values))


def _escape_value(value: str) -> str:
    """``* ( ) \\ NUL`` escaped (RFC 4515), and also every non-printable character (as its
    UTF-8 octets) and the spaces at either end: ldap3's filter parser strips whitespace around
    an assertion value (``str.strip``, which also removes ``\\x1c``-``\\x1f``), so such a
    value would otherwise match another one, or nothing (found by the hypothesis test)."""
    out = "".join(
        ch if ch.isprintable() else "".join(f"\\{b:02x}" for b in ch.encode("utf-8"))
        for ch in escape_filter_chars(value)
    )
    body = out.strip(" ")
    if not body:
        return "\\20" * len(out)
    lead = len(out) - len(out.lstrip(" "))
    trail = len(out) - len(out.rstrip(" "))
    return "\\20" * lead + body + "\\20" * trail


def source_name(cfg: LdapSource) -> str:
    """``ad:<dns domain>`` from the base DN's DC components, or ``ldap:<name>``."""
    if cfg.flavour == "ad":
        dcs = [
            v
            for k, _, v in (p.partition("=") for p in cfg.base_dn.split(","))
            if k.strip().lower() == "dc"
        ]
        if dcs:
            return "ad:" + ".".join(d.strip().lower() for d in dcs)
    return f"ldap:{cfg.name}"


def _filter(base: str, extra: str | None) -> str:
    # ``user_filter`` / ``group_filter`` come from the operator's config and are filters, not
    # values: they are combined, never escaped (values built here go through ldap_filter()).
    if not extra:
        return base
    try:
        parse_filter(extra, None, False, False, None, False)
    except LDAPException as exc:
        raise ConfigError(
            f"invalid LDAP filter {extra!r}: {exc}",
            "a filter is parenthesised, e.g. (department=CID); escape values with \\2a \\28 \\29",
        ) from None
    return f"(&{base}{extra})"


def member_of_check(
    member_side: pl.Series, member_of_side: pl.Series, member_of_values: int
) -> tuple[bool, str]:
    """Compare the member-side account edges with the accounts' own ``memberOf``.

    ``member_side`` holds the :func:`~.decode.edge_code` (group row, account row packed in
    one integer: at a million values, pairs of id strings would cost several times the memory for
    the same answer) of every account member read from ``member`` (or its ranges) of a collected
    group; ``member_of_side`` the same for every ``memberOf`` value of a collected account that
    names a collected group; ``member_of_values`` counts the ``memberOf`` values returned at
    all. So only edges both sides can show are compared: primary-group edges are in neither
    ``member`` nor ``memberOf``; foreign security principals and groups as members have no
    ``memberOf`` here; ``memberOf`` values naming groups outside the base or filters are left
    out.

    The two sides are separate reads (accounts first, then groups), so they disagree only when
    the directory changed in between, or when a replica has one half of a link update and not
    yet the other. Either way the snapshot is not one consistent state of the directory, so a
    disagreement makes the memberships unit **incomplete** (the run says so and no finding is
    marked resolved), with the counts in its proof; the edges themselves are kept as ``member``
    gave them, never dropped. A server that returns no ``memberOf`` at all (OpenLDAP without the
    memberof overlay, or an account not allowed to read it) cannot be cross-checked: the proof
    says so and the unit is not failed for it. Nor is the check made when a unit it rests on is
    incomplete (a page or a range missing): that unit fails the collection already, and its
    missing values are no sign of a change (see ``_memberships_unit``).

    Returns (agreed, one-line proof).
    """
    member = member_side.unique().to_frame("code")
    member_of = member_of_side.unique().to_frame("code")
    if member_of_values == 0 and member.height > 0:
        return True, (
            f"memberOf not returned by the server: {member.height} account edge(s)"
            " not cross-checked"
        )
    both = member.join(member_of, on="code", how="inner").height
    only_member = member.height - both
    only_of = member_of.height - both
    if only_member == 0 and only_of == 0:
        return True, f"memberOf agrees on all {both} account edge(s)"
    return False, (
        f"memberOf disagrees with member on {only_member + only_of} account edge(s)"
        f" ({only_member} only in member, {only_of} only in memberOf; {both} agree):"
        " the directory changed during collection (or replication is behind)"
    )


def _memberships_unit(
    s: Session, edges: str, memberships: pl.DataFrame, check: Callable[[], tuple[bool, str]]
) -> CollectionUnit:
    complete = all(u.complete for u in s.units)
    agreed, proof = (
        check() if complete else (False, "memberOf not cross-checked: a unit is incomplete")
    )
    return CollectionUnit(
        "memberships",
        complete and agreed,
        f"{edges}; {proof}",
        memberships.height,
    )


def _collect_ad(s: Session, source: str, now: datetime) -> dict[str, pl.DataFrame]:
    cfg = s.cfg
    member_of_attr = f"memberOf;range=0-{cfg.range_size - 1}"
    acct_raw = s.paged(
        "accounts",
        _filter("(objectClass=user)", cfg.user_filter),
        [*ad.AD_ACCOUNT_ATTRS, member_of_attr],
        ad=True,
    )
    member_attr = f"member;range=0-{cfg.range_size - 1}"
    grp_raw = s.paged(
        "groups",
        _filter("(objectClass=group)", cfg.group_filter),
        [*ad.AD_GROUP_ATTRS, member_attr],
        ad=True,
    )
    fsp_raw = s.paged(
        "foreign-security-principals",
        "(objectClass=foreignSecurityPrincipal)",
        ["objectSid"],
        ad=True,
    )
    accounts = ad.ad_accounts(
        raw_frame(acct_raw, ad.AD_ACCOUNT_ATTRS, ad.AD_MULTI_ATTRS, ad.AD_SID_ATTRS),
        source,
        now,
    )
    groups = ad.ad_groups(raw_frame(grp_raw, ad.AD_GROUP_ATTRS), source)
    fsp_ids = ad.ad_fsp_ids(fsp_raw.dn)
    members = range_members(s, grp_raw, "member")
    members = members.with_columns(group_id=groups.get_column("group_id").gather(members["i"]))
    memberships, unresolved, codes = ad.ad_memberships(source, groups, members, accounts, fsp_ids)
    member_of = range_members(s, acct_raw, "memberOf", "member-of")
    member_of_codes = ad.ad_member_of(member_of, groups)
    s.units.append(
        _memberships_unit(
            s,
            f"{memberships.height} direct edges incl. primary groups; "
            f"{unresolved} member value(s) point at objects not collected"
            " (contacts, filtered or unreadable)",
            memberships,
            lambda: member_of_check(codes, member_of_codes, member_of.height),
        )
    )
    resources, aces = acl.collect_acl(s, source)  # owners and DACLs: connectors/ldap/acl.py
    trusts = trust.collect_trusts(s, source)  # trustedDomain objects: connectors/ldap/trusts.py
    return {
        "accounts": dec.finish_accounts(accounts),
        "groups": dec.finish_groups(groups),
        "memberships": memberships,
        "grants": empty(GRANTS_SCHEMA),
        "resources": resources,
        "aces": aces,
        "trusts": trusts,
    }


def _collect_openldap(s: Session, source: str) -> dict[str, pl.DataFrame]:
    cfg = s.cfg
    amap = {**gen.OPENLDAP_ACCOUNT_MAP, **cfg.attribute_map}
    gmap = {**gen.OPENLDAP_GROUP_MAP, **cfg.group_attribute_map}
    member_of_attr = amap.pop("member_of", "")
    a_attrs = sorted({v for v in amap.values() if v})
    g_attrs = sorted({v for v in gmap.values() if v})
    acct_raw = s.paged(
        "accounts",
        _filter("(objectClass=inetOrgPerson)", cfg.user_filter),
        [*a_attrs, member_of_attr] if member_of_attr else a_attrs,
        ad=False,
    )
    grp_raw = s.paged(
        "groups", _filter("(objectClass=groupOfNames)", cfg.group_filter), g_attrs, ad=False
    )
    accounts = gen.openldap_accounts(raw_frame(acct_raw, a_attrs), amap, source)
    groups = gen.openldap_groups(raw_frame(grp_raw, g_attrs), gmap, source)
    if "manager_id" in accounts.columns:
        accounts = gen.resolve_dn_refs(accounts, "manager_id", accounts, "account_id")
    if "managed_by" in groups.columns:
        groups = gen.resolve_dn_refs(groups, "managed_by", accounts, "account_id")
        groups = groups.with_columns(
            owners=pl.when(pl.col("managed_by").is_null())
            .then(pl.lit([], pl.List(pl.String)))
            .otherwise(pl.concat_list([pl.col("managed_by")]))
        )
    member_attr = gmap["member"]
    members = range_members(s, grp_raw, member_attr)
    members = members.with_columns(group_id=groups.get_column("group_id").gather(members["i"]))
    memberships, unresolved, codes = gen.openldap_memberships(source, groups, members, accounts)
    edges = (
        f"{memberships.height} direct edges; {unresolved} member value(s) name DNs not collected"
    )
    if member_of_attr:
        member_of = range_members(s, acct_raw, member_of_attr, "member-of")
        member_of_codes = gen.openldap_member_of(member_of, groups)
        s.units.append(
            _memberships_unit(
                s,
                edges,
                memberships,
                lambda: member_of_check(codes, member_of_codes, member_of.height),
            )
        )
    else:
        unmapped = "memberOf not mapped (attribute_map member_of = ''): not cross-checked"
        s.units.append(_memberships_unit(s, edges, memberships, lambda: (True, unmapped)))
    return {
        "accounts": dec.finish_accounts(accounts),
        "groups": dec.finish_groups(groups),
        "memberships": memberships,
        "grants": empty(GRANTS_SCHEMA),
    }


def _collect_from(session: Session, source: str, now: datetime) -> dict[str, pl.DataFrame]:
    """One whole collection over ``session``'s connection, which is closed afterwards."""
    # Millions of small values are allocated and none is part of a cycle: the cyclic garbage
    # collector would only rescan them (20-40% of the time measured with it on).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        if session.cfg.flavour == "ad":
            return _collect_ad(session, source, now)
        return _collect_openldap(session, source)
    finally:
        if gc_was_enabled:
            gc.enable()
        with contextlib.suppress(LDAPException):
            session.conn.unbind()


def last_logon_signal(cfg: LdapSource) -> Signal:
    """Whether the directory records logons: AD always (lastLogonTimestamp); generic LDAP only
    through a ``last_logon`` attribute in ``attribute_map``."""
    if cfg.flavour == "ad":
        return Signal(True, "lastLogonTimestamp (replicated every 9-14 days)")
    attr = {**gen.OPENLDAP_ACCOUNT_MAP, **cfg.attribute_map}.get(LAST_LOGON)
    if attr:
        return Signal(True, f"attribute {attr} (attribute_map last_logon)")
    return Signal(False, "no last_logon attribute in attribute_map")


def collect(
    cfg: LdapSource, *, now: datetime | None = None, progress: Progress | None = None
) -> SourceCollection:
    """Collect one directory; raise :class:`IncompleteLdapCollection` unless every unit is proven.

    ``now`` decides which ``accountExpires`` values have passed (``enabled`` is False for them);
    ``progress(unit, entries_so_far)`` is called after every page.
    """
    now = now or datetime.now(UTC)
    started = datetime.now(UTC)
    password = cfg.password.resolve() if cfg.password and cfg.auth == "simple" else None
    deadline = time.monotonic() + cfg.total_timeout  # connect and bind count against it
    source = source_name(cfg)
    servers = list(cfg.servers)
    failovers: list[str] = []
    while True:
        try:
            conn, url = connect(cfg, password, deadline=deadline, servers=servers)
        except ConnectError as exc:
            if not failovers:
                raise
            raise ConnectError(
                f"{failovers[-1]} (lost mid-collection), then {exc.message}", exc.hint
            ) from None
        session = Session(conn, cfg, url, deadline, progress)
        tables = _collect_from(session, source, now)
        rest = servers[servers.index(url) + 1 :]
        if session.lost is None or not rest or time.monotonic() >= deadline:
            break
        # Lost mid-collection: start again, whole, on the next server. Pages from two DCs are
        # never mixed (replication lag would make the snapshot match neither).
        failovers.append(f"{url}: {session.lost}")
        log.warning("%s: %s lost mid-collection; starting again on %s", source, url, rest[0])
        servers = rest
    state = {"server": url}
    if failovers:
        state["failed_over_from"] = "; ".join(failovers)
    collection = SourceCollection(
        source=source,
        kind="ldap",
        started=started,
        finished=datetime.now(UTC),
        tables=tables,
        units=session.units,
        state=state,
        signals={LAST_LOGON: last_logon_signal(cfg)},
    )
    failed = [u for u in session.units if not u.complete]
    if failed:
        names = ", ".join(f"{u.name} ({u.detail})" for u in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        raise IncompleteLdapCollection(
            f"{source}: collection incomplete from {url}: {names}{more}",
            "rerun when the server is reachable; check time limits and the server's size limits",
            collection,
        )
    return collection
