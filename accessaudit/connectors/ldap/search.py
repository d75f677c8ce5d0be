"""Paged search and range retrieval whose completeness is checked, not assumed.

:class:`Session` wraps one bound connection with the source's limits. :meth:`Session.paged`
checks the result code after every page and follows the cookie to its end (ldap3's paged
generator stops silently on ``sizeLimitExceeded``); :func:`follow_range` follows
``member;range=a-b`` answers until one ends in ``-*`` and says why when it cannot. Every search
records a :class:`CollectionUnit` with its proof, or with what went wrong.

Range follow-ups on Active Directory name the group by ``<GUID=...>`` ([MS-ADTS] 3.1.1.3.1.2.4,
an extended DN as search base), not by its DN: a group renamed or moved between the first page
and the follow-up is still found, and no DN string is re-escaped on the way. Generic LDAP has
no such form; there the DN the server sent is the base.

Time limits: ``total_timeout`` covers connect and bind too (the deadline starts before the first
server is tried); every wait is capped by what is left of it, so a stalled server ends the
search at the deadline, not up to one ``receive_timeout`` later. A unit that ran out of time says
"total time limit"; one whose server went quiet for ``receive_timeout`` says "no data from the
server".
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from ldap3 import BASE, SUBTREE, Connection
from ldap3.core.exceptions import LDAPException
from ldap3.protocol.microsoft import extended_dn_control
from ldap3.protocol.rfc2696 import paged_search_control

from accessaudit.config.sources import LdapSource
from accessaudit.connectors.ldap import decode as dec
from accessaudit.connectors.ldap import wire
from accessaudit.connectors.ldap.columns import Columns
from accessaudit.model import CollectionUnit, Via
from accessaudit.transport.ldap import short

PAGED_OID = "1.2.840.113556.1.4.319"
#: A page that brings no entries but another cookie this many times in a row is a cookie loop.
MAX_EMPTY_PAGES = 3
_RANGE_KEY = re.compile(r"^(?P<attr>[^;]+);range=(?P<start>\d+)-(?P<end>\d+|\*)$", re.I)

Progress = Callable[[str, int], None]


class _Unfinished(Exception):
    """A paged search stopped before its end; the message says where and why."""


@dataclass
class Session:
    conn: Connection
    cfg: LdapSource
    url: str
    deadline: float
    progress: Progress | None = None
    units: list[CollectionUnit] = field(default_factory=list)
    #: the first transport failure (connection dropped, reset, timed out): another server of
    #: ``cfg.servers`` may do better, which a size limit or a bad range would not
    lost: str | None = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def paged(
        self,
        unit: str,
        search_filter: str,
        attrs: Sequence[str],
        *,
        ad: bool,
        extra_controls: Sequence[Any] = (),
    ) -> Columns:
        """Paged subtree search; records a unit proving (or not) that it reached the end.

        Entries arrive column-wise (:mod:`.wire`): no per-entry objects. A page that fails
        part-way is dropped whole, so the count is of entries on complete pages.
        ``extra_controls`` are sent with every page (e.g. the SD-flags control).
        """
        controls = [*([extended_dn_control()] if ad else []), *extra_controls]
        cols = Columns(attrs)
        cookie: bytes | None = None
        seen: dict[bytes, int] = {}  # digest of each page's DNs -> its page number
        pages = empty_pages = 0
        try:
            while True:
                before = cols.n
                cols.page_digest()  # the DNs of this page only
                result = self._page(search_filter, cols, controls, cookie, pages)
                pages += 1
                # Samba sends the same cookie on every page, so a loop shows as a page of
                # entries the server already sent, not as a repeated cookie.
                page = cols.page_digest()
                if result.get("result") != 0:
                    raise _Unfinished(
                        f"page {pages}: result {result.get('result')} {result.get('description')}"
                        f" {str(result.get('message') or '').strip()[:120]}".rstrip()
                    )
                if self.progress:
                    self.progress(unit, cols.n)
                control = (result.get("controls") or {}).get(PAGED_OID) or {}
                cookie = (control.get("value") or {}).get("cookie") or None
                if not cookie:
                    break
                if cols.n > before and page in seen:
                    raise _Unfinished(f"cookie loop: page {pages} repeats page {seen[page]}")
                seen[page] = pages
                empty_pages = empty_pages + 1 if cols.n == before else 0
                if empty_pages >= MAX_EMPTY_PAGES:
                    raise _Unfinished(
                        f"cookie loop: {empty_pages} empty pages in a row, each with a new cookie"
                    )
        except _Unfinished as exc:
            return self._fail(unit, cols, str(exc))
        detail = f"paged search: {pages} page(s), cookie exhausted, every page result success"
        if cols.references:
            detail += f"; {cols.references} referral(s) not followed"
        self.units.append(CollectionUnit(unit, True, detail, cols.n))
        return cols

    def _page(
        self,
        search_filter: str,
        cols: Columns,
        controls: list[Any],
        cookie: bytes | None,
        pages: int,
    ) -> dict[str, Any]:
        """The page after ``cookie`` read into ``cols``; ldap3's dict of its searchResDone.

        Raises :class:`_Unfinished` when time is up or the connection fails; the entries of a
        page that failed part-way are taken out of ``cols`` again.
        """
        left = self.remaining()
        if left <= 0:
            raise _Unfinished(
                f"total time limit {self.cfg.total_timeout:g} s reached after {pages} pages"
            )
        before = cols.n
        paging = paged_search_control(False, self.cfg.page_size, cookie)
        try:
            return wire.search(
                self.conn,
                self.cfg.base_dn,
                search_filter,
                SUBTREE,
                cols,
                controls=[*controls, paging],
                time_limit=max(1, int(left)),
                deadline=self.deadline,
            )
        except wire.DeadlineReached:
            cols.rollback(before)
            raise _Unfinished(
                f"total time limit {self.cfg.total_timeout:g} s reached after {pages} pages"
                " (while receiving)"
            ) from None
        except LDAPException as exc:
            cols.rollback(before)
            self.lost = self.lost or short(str(exc))
            raise _Unfinished(f"connection failed after {pages} pages: {short(str(exc))}") from None

    def _fail(self, unit: str, cols: Columns, detail: str) -> Columns:
        self.units.append(CollectionUnit(unit, False, detail, cols.n))
        return cols

    def fetch_range(self, base: str, attr: str, start: int) -> tuple[str | None, list[bytes]]:
        """One base-scope request for ``attr;range=start-(start+range_size-1)`` of the entry
        at ``base`` (``<GUID=...>`` on AD); returns the attribute key answered and its values.

        Read by the same column reader as the pages, so the same deadline caps its waits.
        """
        end = start + self.cfg.range_size - 1
        left = self.remaining()
        if left <= 0:
            raise TimeoutError(self._deadline_text())
        cols = Columns([f"{attr};range={start}-{end}"])
        try:
            result = wire.search(
                self.conn,
                base,
                "(objectClass=*)",
                BASE,
                cols,
                controls=[extended_dn_control()] if self.cfg.flavour == "ad" else [],
                time_limit=max(1, int(left)),
                deadline=self.deadline,
            )
        except wire.DeadlineReached:
            raise TimeoutError(self._deadline_text()) from None
        except LDAPException as exc:
            self.lost = self.lost or short(str(exc))
            raise
        if result.get("result") != 0:
            raise RuntimeError(f"result {result.get('result')} {result.get('description')}")
        if cols.ranged:  # attr;range=a-b or a-*: the answer to a follow-up
            _, key, values = cols.ranged[0]
            return key, values
        values = cols.exploded(attr).get_column("v").to_list()
        return (attr, values) if values else (None, [])

    def _deadline_text(self) -> str:
        return f"total time limit of {self.cfg.total_timeout:g} s reached"


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


def range_members(s: Session, cols: Columns, attr: str, unit: str = "members") -> pl.DataFrame:
    """Every value of ``attr`` of every entry: ``i`` (the entry number), ``value``, ``via``.

    Entries answered whole (``member`` or ``member;range=0-*``) come straight from the columns;
    an entry answered with a partial range is followed to its final ``-*`` range and recorded
    as a unit of its own (``<unit>:<guid>``, or ``<unit>:<dn>`` without GUIDs), complete or not.
    """
    plain = cols.exploded(attr).select("i", value=pl.col("v"), via=pl.lit(Via.MEMBER.value))
    rows: list[pl.DataFrame] = [plain]
    if cols.ranged:
        dns = cols.dn
        for i, key, first in cols.ranged:
            guid, _, bare = dec.extended_dn_one(dns[i])
            base = f"<GUID={guid}>" if guid is not None else bare

            def fetch(start: int, base: str = base) -> tuple[str | None, list[bytes]]:
                return s.fetch_range(base, attr, start)

            got, ok, detail, n = follow_range(attr, key, first, fetch)
            s.units.append(CollectionUnit(f"{unit}:{guid or bare}", ok, detail, len(got)))
            via = Via.RANGE.value if n > 1 else Via.MEMBER.value
            rows.append(
                pl.DataFrame(
                    {
                        "i": pl.Series([i] * len(got), dtype=pl.UInt32),
                        "value": pl.Series(got, dtype=pl.Binary),
                        "via": pl.Series([via] * len(got), dtype=pl.String),
                    }
                )
            )
    out = pl.concat(rows, rechunk=True)
    return out.with_columns(value=dec.utf8(out.get_column("value")))
