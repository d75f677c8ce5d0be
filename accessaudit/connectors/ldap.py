"""Active Directory and generic LDAP (OpenLDAP) through ldap3, read-only, completeness proven.

``collect(cfg)`` binds to the first reachable server of ``cfg.servers`` (failover in order),
reads accounts, groups and (AD) foreign security principals with explicit attribute allow-lists,
and returns the canonical tables with one :class:`CollectionUnit` per provable piece:

- **paged search** (RFC 2696, 1.2.840.113556.1.4.319): the result code is checked after every
  page and the cookie loop followed to its empty cookie. ldap3's paged generator stops silently on
  ``sizeLimitExceeded``; this loop does not use it.
- **range retrieval** of ``member`` ([MS-ADTS] 3.1.1.3.1.3.3): AD returns at most MaxValRange
  (1500) values per request, so every group is read as ``member;range=0-N`` and followed until a
  range ends in ``-*``. A loop that stops without ``-*`` is an incomplete unit.
- **primary groups**: ``primaryGroupID`` is in neither ``member`` nor ``memberOf``; each account
  gets an edge ``via = "primaryGroupID"`` to the group whose SID is domain SID + that RID.
- **foreign security principals** stay members, identified by their SID.
- members, managers and owners resolve through the extended-DN control to GUIDs, never by
  comparing DN strings; referrals are counted, never chased.

A timeout, a size or time limit, a dropped connection or an unfinished range marks its unit
incomplete, and :func:`collect` raises :class:`IncompleteLdapCollection` (carrying the collection
with every unit) rather than return a partial snapshot as if it were whole.

Transport: LDAPS or StartTLS with ``ssl.CERT_REQUIRED`` and the hostname checked, always; a plain
``ldap://`` simple bind is refused unless ``allow_plaintext`` (lab only). NTLM is not offered:
ldap3's NTLM needs MD4, which OpenSSL 3 lacks, and Samba drops ldap3's NTLM ("Sicily") bind.
Kerberos (SASL GSSAPI) needs the optional ``gssapi`` package and a ticket cache or keytab.

Least privilege: an ordinary domain user (member of Domain Users only, no delegated rights) can
read everything collected here in a default AD; do not use an administrator.
"""

from __future__ import annotations

import contextlib
import math
import re
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl
from ldap3 import BASE, NONE, SASL, SIMPLE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException, LDAPSocketOpenError, LDAPStartTLSError
from ldap3.protocol.microsoft import extended_dn_control
from ldap3.utils.conv import escape_filter_chars

from ..config import LdapSource
from ..errors import AuthError, ConfigError, ConnectError, IncompleteCollection
from ..model import GRANTS_SCHEMA, CollectionUnit, SourceCollection, empty
from . import ldap_decode as dec

PAGED_OID = "1.2.840.113556.1.4.319"
#: A page that brings no entries but another cookie this many times in a row is a cookie loop.
MAX_EMPTY_PAGES = 3
_RANGE_KEY = re.compile(r"^(?P<attr>[^;]+);range=(?P<start>\d+)-(?P<end>\d+|\*)$", re.I)

#: AD bind failure sub-codes (the "data NNN" in the diagnostic message) -> text and hint.
_AD_BIND_CODES: dict[str, tuple[str, str]] = {
    "52e": ("wrong password", "check the password the source's password_env/_file points at"),
    "525": ("no such user", "check bind_dn (a DN, user@domain or DOMAIN\\user)"),
    "530": ("not permitted to log on at this time", "check the account's logon hours"),
    "531": ("not permitted to log on from this workstation", "check userWorkstations"),
    "532": ("password expired", "reset the service account's password"),
    "533": ("account disabled", "enable the bind account in AD"),
    "701": ("account expired", "extend the bind account's accountExpires"),
    "773": ("password must be reset", "set a new password for the bind account"),
    "775": ("account locked out", "unlock the bind account; check for repeated failures"),
}

Progress = Callable[[str, int], None]


class IncompleteLdapCollection(IncompleteCollection):
    """Some units could not be proven complete; ``collection`` holds every unit and table."""

    def __init__(self, message: str, hint: str, collection: SourceCollection) -> None:
        super().__init__(message, hint)
        self.collection = collection


def ldap_filter(template: str, *values: str) -> str:
    """Build a filter from a template with ``{}`` slots; every value is RFC 4515 escaped."""
    return template.format(*(escape_filter_chars(v) for v in values))


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


# --- connecting -------------------------------------------------------------------------------


def _tls(cfg: LdapSource, host: str) -> Tls:
    return Tls(
        validate=ssl.CERT_REQUIRED,
        ca_certs_file=str(cfg.ca_file) if cfg.ca_file else None,
        version=ssl.PROTOCOL_TLS_CLIENT,
        sni=host,
    )


def _describe_tls_failure(url: str, exc: Exception) -> ConnectError:
    text = str(exc)
    if "doesn't match" in text or "match any name" in text or "hostname" in text.lower():
        return ConnectError(
            f"{url}: the server certificate does not name this host",
            "connect by a name in the certificate's subjectAltName (or fix the certificate)",
        )
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return ConnectError(
            f"{url}: the server certificate is not trusted ({_short(text)})",
            "set ca_file to the CA that issued the domain controller's certificate",
        )
    return ConnectError(
        f"{url}: cannot connect: {_short(text)}", "check the address, port and firewall"
    )


def _short(text: str) -> str:
    m = re.search(r"\[SSL: [A-Z_]+\][^'\"\]\)]*", text)
    return (m.group(0) if m else text).strip()[:200]


def _bind_error(url: str, who: str, result: dict[str, Any]) -> AuthError:
    code = result.get("result")
    desc = result.get("description")
    message = str(result.get("message") or "")
    if code == 8:
        return AuthError(
            f"{url}: bind refused: the server requires transport encryption (result 8 {desc})",
            "use ldaps:// or start_tls = true",
        )
    m = re.search(r"data ([0-9a-f]{3})", message)
    if m and m.group(1) in _AD_BIND_CODES:
        what, hint = _AD_BIND_CODES[m.group(1)]
        return AuthError(f"{url}: bind as {who} refused: {what} (AD data {m.group(1)})", hint)
    return AuthError(
        f"{url}: bind as {who} refused: result {code} {desc}: {message.strip()[:200]}",
        "check bind_dn and the password source",
    )


def connect(cfg: LdapSource, password: str | None) -> tuple[Connection, str]:
    """Open and bind a connection to the first server that answers; returns it and its URL.

    Unreachable servers and TLS failures move on to the next server; a refused bind stops at
    once (trying the same wrong password on every DC only locks the account out faster).
    """
    failures: list[ConnectError] = []
    for url in cfg.servers:
        try:
            return _connect_one(cfg, url, password), url
        except ConnectError as exc:
            failures.append(exc)
    if len(failures) == 1:
        raise failures[0]
    raise ConnectError(
        "no LDAP server answered: " + "; ".join(f.message for f in failures),
        failures[-1].hint,
    )


def _connect_one(cfg: LdapSource, url: str, password: str | None) -> Connection:
    m = re.match(r"^(ldaps?)://(\[[^\]]+\]|[^:/]+)(?::(\d+))?/?$", url, re.I)
    if not m:
        raise ConfigError(
            f"server '{url}' is not an ldap:// or ldaps:// URL", "e.g. ldaps://dc1.example.org"
        )
    scheme, host = m.group(1).lower(), m.group(2).strip("[]")
    ldaps = scheme == "ldaps"
    port = int(m.group(3)) if m.group(3) else (636 if ldaps else 389)
    encrypted = ldaps or cfg.start_tls
    if not encrypted and not cfg.allow_plaintext and cfg.auth == "simple":
        raise ConfigError(
            f"refusing a simple bind without TLS to {url}: the password would cross in clear",
            "use ldaps:// or start_tls = true (allow_plaintext = true is for a lab only)",
        )
    tls = _tls(cfg, host) if encrypted else None
    server = Server(
        host, port=port, use_ssl=ldaps, tls=tls, get_info=NONE, connect_timeout=cfg.connect_timeout
    )
    kwargs: dict[str, Any] = {
        "auto_bind": False,
        "auto_range": False,  # ranges are followed and checked here (ldap3 issue 336)
        "auto_referrals": False,  # never chase referrals (anonymously or otherwise)
        "return_empty_attributes": False,  # ldap3 KeyError with auto_range=False otherwise
        "check_names": False,
        "raise_exceptions": False,
        "receive_timeout": max(1, math.ceil(cfg.receive_timeout)),  # ldap3 packs an int
        "read_only": True,
    }
    if cfg.auth == "kerberos":
        try:
            import gssapi  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            raise ConfigError(
                "auth = 'kerberos' needs the Python gssapi package",
                "pip install gssapi (and libkrb5)",
            ) from None
        conn = Connection(server, authentication=SASL, sasl_mechanism="GSSAPI", **kwargs)
        who = "(Kerberos ticket)"
    else:
        who = cfg.bind_dn or "(anonymous)"
        conn = Connection(
            server,
            user=cfg.bind_dn,
            password=password,
            authentication=SIMPLE if cfg.bind_dn else None,
            **kwargs,
        )
    try:
        conn.open()
        if cfg.start_tls and not ldaps and not conn.start_tls():
            raise ConnectError(
                f"{url}: StartTLS refused: {conn.result.get('message')}", "use ldaps://"
            )
    except LDAPStartTLSError as exc:
        raise _describe_tls_failure(url, exc) from None
    except LDAPSocketOpenError as exc:
        raise _describe_tls_failure(url, exc) from None
    except LDAPException as exc:
        raise _describe_tls_failure(url, exc) from None
    try:
        ok = conn.bind()
    except LDAPException as exc:
        raise ConnectError(
            f"{url}: connection lost during bind: {_short(str(exc))}", "retry"
        ) from None
    if not ok:
        conn.unbind()
        raise _bind_error(url, who, conn.result)
    return conn


# --- searching --------------------------------------------------------------------------------


@dataclass
class _Session:
    conn: Connection
    cfg: LdapSource
    url: str
    deadline: float
    progress: Progress | None = None
    units: list[CollectionUnit] = field(default_factory=list)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def paged(
        self, unit: str, search_filter: str, attrs: Sequence[str], *, ad: bool
    ) -> list[dec.RawEntry]:
        """Paged subtree search; records a unit proving (or not) that it reached the end."""
        controls = [extended_dn_control()] if ad else None
        entries: list[dec.RawEntry] = []
        cookie: bytes | None = None
        pages = refs = empty_pages = 0
        while True:
            left = self.remaining()
            if left <= 0:
                return self._fail(
                    unit,
                    entries,
                    f"total time limit {self.cfg.total_timeout:.0f} s reached after {pages} pages",
                )
            try:
                self.conn.search(
                    self.cfg.base_dn,
                    search_filter,
                    SUBTREE,
                    attributes=list(attrs),
                    paged_size=self.cfg.page_size,
                    paged_cookie=cookie,
                    controls=controls,
                    time_limit=max(1, int(left)),
                )
            except LDAPException as exc:
                return self._fail(
                    unit, entries, f"connection failed after {pages} pages: {_short(str(exc))}"
                )
            pages += 1
            result = self.conn.result
            before = len(entries)
            for item in self.conn.response or ():
                if item.get("type") == "searchResEntry":
                    entries.append((item["dn"], item["raw_attributes"]))
                else:
                    refs += 1
            if result.get("result") != 0:
                return self._fail(
                    unit,
                    entries,
                    f"page {pages}: result {result.get('result')} {result.get('description')}"
                    f" {str(result.get('message') or '').strip()[:120]}".rstrip(),
                )
            if self.progress:
                self.progress(unit, len(entries))
            control = (result.get("controls") or {}).get(PAGED_OID) or {}
            cookie = (control.get("value") or {}).get("cookie") or None
            if not cookie:
                break
            empty_pages = empty_pages + 1 if len(entries) == before else 0
            if empty_pages >= MAX_EMPTY_PAGES:
                return self._fail(
                    unit,
                    entries,
                    f"cookie loop: {empty_pages} empty pages in a row, each with a new cookie",
                )
        detail = f"paged search: {pages} page(s), cookie exhausted, every page result success"
        if refs:
            detail += f"; {refs} referral(s) not followed"
        self.units.append(CollectionUnit(unit, True, detail, len(entries)))
        return entries

    def _fail(self, unit: str, entries: list[dec.RawEntry], detail: str) -> list[dec.RawEntry]:
        self.units.append(CollectionUnit(unit, False, detail, len(entries)))
        return entries

    def fetch_range(self, dn: str, attr: str, start: int) -> tuple[str | None, list[bytes]]:
        """One base-scope request for ``attr;range=start-(start+range_size-1)``."""
        end = start + self.cfg.range_size - 1
        if self.remaining() <= 0:
            raise TimeoutError(f"total time limit of {self.cfg.total_timeout:.0f} s reached")
        self.conn.search(
            dn,
            "(objectClass=*)",
            BASE,
            attributes=[f"{attr};range={start}-{end}"],
            controls=[extended_dn_control()],
            time_limit=max(1, int(self.remaining())),
        )
        result = self.conn.result
        if result.get("result") != 0:
            raise RuntimeError(f"result {result.get('result')} {result.get('description')}")
        for item in self.conn.response or ():
            if item.get("type") == "searchResEntry":
                for key, values in item["raw_attributes"].items():
                    if key.lower().split(";")[0] == attr.lower():
                        return key, list(values or [])
        return None, []


def follow_range(
    attr: str,
    first_key: str,
    first_values: list[bytes],
    fetch: Callable[[int], tuple[str | None, list[bytes]]],
    max_requests: int = 1_000_000,
) -> tuple[list[bytes], bool, str, int]:
    """Follow ``attr;range=a-b`` answers until one ends in ``-*``.

    ``fetch(start)`` asks for the next window and returns (attribute key, values). Returns
    (values, complete, detail, requests). Incomplete when a window starts anywhere but where the
    previous ended, a window holds a different count than its bounds say, no range comes back
    before ``-*``, or fetching fails.
    """
    values = list(first_values)
    key: str | None = first_key
    requests = 1
    expected = 0
    while True:
        if key is None:
            return (
                values,
                False,
                f"range stopped at {expected} without a final '-*' range",
                requests,
            )
        m = _RANGE_KEY.match(key)
        if not m:
            if key.lower() == attr.lower() and expected == 0:
                return values, True, "server returned the attribute unranged", requests
            return values, False, f"unexpected attribute '{key}' at {expected}", requests
        start, end = int(m.group("start")), m.group("end")
        if start != expected:
            return values, False, f"range gap: asked from {expected}, got {key}", requests
        if end == "*":
            return values, True, f"range ended in -* after {requests} request(s)", requests
        got = len(values) - start
        if int(end) < start or got != int(end) - start + 1:
            return values, False, f"range {key} carried {got} value(s)", requests
        expected = int(end) + 1
        if requests >= max_requests:
            return values, False, f"gave up after {requests} range requests", requests
        try:
            key, more = fetch(expected)
        except (LDAPException, RuntimeError, TimeoutError) as exc:
            return (
                values,
                False,
                f"range request from {expected} failed: {_short(str(exc))}",
                requests,
            )
        requests += 1
        values.extend(more)


def _range_members(s: _Session, entries: list[dec.RawEntry], attr: str) -> pl.DataFrame:
    """Member values of every group (``dn``, ``value``, ``via``), ranges followed to the end."""
    dns: list[str] = []
    values: list[bytes] = []
    via: list[str] = []
    prefix = attr.lower() + ";range="
    for dn, raw in entries:
        key = next(
            (k for k in raw if k.lower().startswith(prefix) or k.lower() == attr.lower()), None
        )
        if key is None:
            continue
        vals = list(raw[key] or [])
        if key.lower().endswith("-*") or key.lower() == attr.lower():
            got, ok, detail, n = vals, True, "", 1
        else:
            bare = dec.extended_dn_one(dn)[2]

            def fetch(start: int, dn: str = bare) -> tuple[str | None, list[bytes]]:
                return s.fetch_range(dn, attr, start)

            got, ok, detail, n = follow_range(attr, key, vals, fetch)
            s.units.append(
                CollectionUnit(f"members:{dec.extended_dn_one(dn)[0]}", ok, detail, len(got))
            )
        dns.extend([dn] * len(got))
        values.extend(got)
        via.extend(["range" if n > 1 else "member"] * len(got))
    return pl.DataFrame(
        {
            "dn": pl.Series(dns, dtype=pl.String),
            "value": pl.Series(values, dtype=pl.Binary).cast(pl.String),
            "via": pl.Series(via, dtype=pl.String),
        }
    )


# --- collecting -------------------------------------------------------------------------------


def _filter(base: str, extra: str | None) -> str:
    # ``user_filter`` / ``group_filter`` come from the operator's config and are filters, not
    # values: they are combined, never escaped (values built here go through ldap_filter()).
    return f"(&{base}{extra})" if extra else base


def _collect_ad(s: _Session, source: str, now: datetime) -> dict[str, pl.DataFrame]:
    cfg = s.cfg
    acct_raw = s.paged(
        "accounts", _filter("(objectClass=user)", cfg.user_filter), dec.AD_ACCOUNT_ATTRS, ad=True
    )
    member_attr = f"member;range=0-{cfg.range_size - 1}"
    grp_raw = s.paged(
        "groups",
        _filter("(objectClass=group)", cfg.group_filter),
        [*dec.AD_GROUP_ATTRS, member_attr],
        ad=True,
    )
    fsp_raw = s.paged(
        "foreign-security-principals",
        "(objectClass=foreignSecurityPrincipal)",
        ["objectSid"],
        ad=True,
    )
    accounts = dec.ad_accounts(
        dec.raw_frame(acct_raw, dec.AD_ACCOUNT_ATTRS, dec.AD_SID_ATTRS), source, now
    )
    groups = dec.ad_groups(dec.raw_frame(grp_raw, dec.AD_GROUP_ATTRS), source)
    fsp_ids = dec.ad_fsp_ids(fsp_raw)
    members = _range_members(s, grp_raw, "member")
    members = members.with_columns(group_id=dec.extended_dn(pl.col("dn"))[0])
    memberships, unresolved = dec.ad_memberships(source, groups, members, accounts, fsp_ids)
    s.units.append(
        CollectionUnit(
            "memberships",
            all(u.complete for u in s.units),
            f"{memberships.height} direct edges incl. primary groups; "
            f"{unresolved} member value(s) point at objects not collected"
            " (contacts, filtered or unreadable)",
            memberships.height,
        )
    )
    return {
        "accounts": dec.finish_accounts(accounts),
        "groups": dec.finish_groups(groups),
        "memberships": memberships,
        "grants": empty(GRANTS_SCHEMA),
    }


def _collect_openldap(s: _Session, source: str) -> dict[str, pl.DataFrame]:
    cfg = s.cfg
    amap = {**dec.OPENLDAP_ACCOUNT_MAP, **cfg.attribute_map}
    gmap = {**dec.OPENLDAP_GROUP_MAP, **cfg.group_attribute_map}
    a_attrs = sorted({v for v in amap.values() if v})
    g_attrs = sorted({v for v in gmap.values() if v})
    acct_raw = s.paged(
        "accounts", _filter("(objectClass=inetOrgPerson)", cfg.user_filter), a_attrs, ad=False
    )
    grp_raw = s.paged(
        "groups", _filter("(objectClass=groupOfNames)", cfg.group_filter), g_attrs, ad=False
    )
    accounts = dec.openldap_accounts(dec.raw_frame(acct_raw, a_attrs), amap, source)
    groups = dec.openldap_groups(dec.raw_frame(grp_raw, g_attrs), gmap, source)
    if "manager_id" in accounts.columns:
        accounts = dec.resolve_dn_refs(accounts, "manager_id", accounts, "account_id")
    if "managed_by" in groups.columns:
        groups = dec.resolve_dn_refs(groups, "managed_by", accounts, "account_id")
        groups = groups.with_columns(
            owners=pl.when(pl.col("managed_by").is_null())
            .then(pl.lit([], pl.List(pl.String)))
            .otherwise(pl.concat_list([pl.col("managed_by")]))
        )
    member_attr = gmap["member"]
    raw = dec.raw_frame(grp_raw, [member_attr])
    members = (
        pl.DataFrame({"dn": raw.get_column("dn"), "value": raw.get_column(member_attr)})
        .explode("value")
        .filter(pl.col("value").is_not_null())
        .with_columns(pl.col("value").cast(pl.String), via=pl.lit("member"))
        .join(groups.select("dn", "group_id"), on="dn", how="left")
    )
    memberships, unresolved = dec.openldap_memberships(source, groups, members, accounts)
    s.units.append(
        CollectionUnit(
            "memberships",
            all(u.complete for u in s.units),
            f"{memberships.height} direct edges;"
            f" {unresolved} member value(s) name DNs not collected",
            memberships.height,
        )
    )
    return {
        "accounts": dec.finish_accounts(accounts),
        "groups": dec.finish_groups(groups),
        "memberships": memberships,
        "grants": empty(GRANTS_SCHEMA),
    }


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
    conn, url = connect(cfg, password)
    source = source_name(cfg)
    session = _Session(conn, cfg, url, time.monotonic() + cfg.total_timeout, progress)
    try:
        if cfg.flavour == "ad":
            tables = _collect_ad(session, source, now)
        else:
            tables = _collect_openldap(session, source)
    finally:
        with contextlib.suppress(LDAPException):
            conn.unbind()
    collection = SourceCollection(
        source=source,
        kind="ldap",
        started=started,
        finished=datetime.now(UTC),
        tables=tables,
        units=session.units,
        state={"server": url},
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
