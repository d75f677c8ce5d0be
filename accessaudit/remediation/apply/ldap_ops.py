"""The LDAP reads and writes every AD change of ``apply`` is made of: objects by objectGUID or
SID, a value compared by the DC, a group's ``member`` values range by range, one modify with
permissive modify, an object added or deleted.

Objects are addressed by ``<GUID=...>`` / ``<SID=...>`` (the immutable ids the plan holds); DNs
are only read from the directory. Permissive modify (1.2.840.113556.1.4.1413, MS-ADTS
3.1.1.3.4.1.8) makes deleting an absent value, or adding a present one, succeed without change,
so a repeated write is a no-op.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from ldap3 import BASE, Connection
from ldap3.utils.conv import escape_filter_chars

from accessaudit.errors import AuditError, SourceError
from accessaudit.remediation.apply.changes import NoSteps, StepLog
from accessaudit.transport.sid import sid_to_str

PERMISSIVE_MODIFY = ("1.2.840.113556.1.4.1413", False, None)
_RANGE = re.compile(r"^member;range=(\d+)-(\d+|\*)$", re.I)
#: values per modify when a change adds or deletes many members at once
CHUNK = 500


class LdapOps:
    """One AD domain's connection, with the reads and writes apply's changes are made of."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.writes = 0
        self.range_step = 1500  # AD's default MaxValRange
        self.steps: StepLog = NoSteps()
        self._domain: str | None = None

    # --- reads -------------------------------------------------------------------------------

    def _entry(self, base: str, attrs: list[str], what: str) -> dict[str, Any] | None:
        ok = self.conn.search(base, "(objectClass=*)", BASE, attributes=attrs)
        if not ok:
            if self.conn.result.get("result") == 32:  # noSuchObject
                return None
            raise SourceError(f"LDAP read of {what} failed: {self.conn.result}")
        for entry in self.conn.response or []:
            if entry.get("type") == "searchResEntry":
                return {"dn": entry["dn"], **dict(entry.get("raw_attributes") or {})}
        return None

    def _base(self, object_id: str | None, attrs: list[str]) -> dict[str, Any] | None:
        if not object_id:
            return None
        return self._entry(f"<GUID={object_id}>", attrs, f"<GUID={object_id}>")

    def _by_sid(self, sid: str, attrs: list[str]) -> dict[str, Any] | None:
        return self._entry(f"<SID={sid}>", attrs, f"<SID={sid}>")

    def _has(self, dn: str, attr: str, value: str) -> bool:
        """Whether ``dn``'s ``attr`` holds ``value`` (compared by the DC, not by us)."""
        ok = self.conn.search(
            dn, f"({attr}={escape_filter_chars(value)})", BASE, attributes=["1.1"]
        )
        return bool(ok) and any(e.get("type") == "searchResEntry" for e in self.conn.response or [])

    def _members(self, dn: str) -> list[str]:
        """Direct ``member`` values, read in ranges of ``range_step`` (MS-ADTS 3.1.1.3.1.3.3:
        the DC answers ``member;range=low-high``, the last range with ``high`` = ``*``)."""
        out: list[str] = []
        low = 0
        while True:
            want = f"member;range={low}-{low + self.range_step - 1}"
            ok = self.conn.search(dn, "(objectClass=*)", BASE, attributes=[want])
            if not ok:
                raise SourceError(f"LDAP read of the members of {dn} failed: {self.conn.result}")
            raw: dict[str, Any] = {}
            for e in self.conn.response or []:
                if e.get("type") == "searchResEntry":
                    raw = dict(e.get("raw_attributes") or {})
            hit = next(((k, m) for k in raw if (m := _RANGE.match(k))), None)
            if hit is None:  # no ranged answer: every value (or none) came at once
                return out + [v.decode() for v in raw.get("member") or []]
            key, m = hit
            out += [v.decode() for v in raw[key]]
            if m.group(2) == "*":
                return out
            low = int(m.group(2)) + 1

    def _count_members(self, dn: str) -> int:
        return len(self._members(dn))

    def _search_guid(self, dn: str) -> str | None:
        ok = self.conn.search(dn, "(objectClass=*)", BASE, attributes=["objectGUID"])
        for e in (self.conn.response or []) if ok else []:
            raw = (dict(e.get("raw_attributes") or {}).get("objectGUID") or [b""])[0]
            if e.get("type") == "searchResEntry" and len(raw) == 16:
                return str(uuid.UUID(bytes_le=raw))
        return None

    def _dn_of(self, object_id: str) -> str | None:
        e = self._base(object_id, ["1.1"])
        return None if e is None else str(e["dn"])

    @staticmethod
    def _sid(entry: dict[str, Any]) -> str | None:
        raw = (entry.get("objectSid") or [b""])[0]
        return sid_to_str(raw) if raw else None

    def domain_dn(self) -> str:
        """The domain's naming context (rootDSE ``defaultNamingContext``)."""
        if self._domain is None:
            e = self._entry("", ["defaultNamingContext"], "the rootDSE")
            values = (e or {}).get("defaultNamingContext") or [b""]
            self._domain = values[0].decode()
        return self._domain

    # --- writes ------------------------------------------------------------------------------

    def _refused(self, what: str, dn: str) -> AuditError:
        r = self.conn.result
        said = str(r.get("message") or "").strip()[:200]
        return AuditError(
            f"LDAP {what} of {dn} refused: {r.get('description')} {said}",
            "check the write account's rights on the object",
            outside=[dn, said],
        )

    def _modify(self, dn: str, changes: dict[str, Any], what: str) -> None:
        ok = self.conn.modify(dn, changes, controls=[PERMISSIVE_MODIFY])
        self.writes += 1
        if not ok:
            raise self._refused(f"modify ({what})", dn)

    def _add_object(self, dn: str, classes: list[str], attrs: dict[str, Any]) -> None:
        ok = self.conn.add(dn, classes, attrs)
        self.writes += 1
        if not ok:
            raise self._refused("add", dn)

    def _delete_object(self, dn: str) -> None:
        ok = self.conn.delete(dn)
        self.writes += 1
        if not ok:
            raise self._refused("delete", dn)

    def _values(self, dn: str, attr: str, op: str, values: list[str], step: str) -> None:
        """Add or delete ``values`` of ``attr`` in chunks of :data:`CHUNK`, each chunk one
        journalled step."""
        for i in range(0, len(values), CHUNK):
            chunk = values[i : i + CHUNK]
            self.steps.before(step, {"values": len(chunk)})
            self._modify(dn, {attr: [(op, chunk)]}, attr)
            self.steps.after()
