"""Paged search and range retrieval whose completeness is checked, not assumed.

:class:`Session` wraps one bound connection with the source's limits. :meth:`Session.paged`
checks the result code after every page and follows the cookie to its end (ldap3's paged
generator stops silently on ``sizeLimitExceeded``); :func:`follow_range` follows
``member;range=a-b`` answers until one ends in ``-*`` and says why when it cannot. Every search
records a :class:`CollectionUnit` with its proof, or with what went wrong.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import polars as pl
from ldap3 import BASE, SUBTREE, Connection
from ldap3.core.exceptions import LDAPException
from ldap3.protocol.microsoft import extended_dn_control

from ..config import LdapSource
from ..model import CollectionUnit
from . import ldap_decode as dec
from .ldap_transport import short

PAGED_OID = "1.2.840.113556.1.4.319"
#: A page that brings no entries but another cookie this many times in a row is a cookie loop.
MAX_EMPTY_PAGES = 3
_RANGE_KEY = re.compile(r"^(?P<attr>[^;]+);range=(?P<start>\d+)-(?P<end>\d+|\*)$", re.I)

Progress = Callable[[str, int], None]


@dataclass
class Session:
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
                    unit, entries, f"connection failed after {pages} pages: {short(str(exc))}"
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
                f"range request from {expected} failed: {short(str(exc))}",
                requests,
            )
        requests += 1
        values.extend(more)


def range_members(s: Session, entries: list[dec.RawEntry], attr: str) -> pl.DataFrame:
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
