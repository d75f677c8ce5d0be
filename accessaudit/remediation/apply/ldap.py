"""AD writes for :mod:`accessaudit.remediation.apply.execute`: read by objectGUID, remove one
value with permissive modify.

The connection is opened by the LDAP connector's own code (TLS verified, one-line errors) with
the *write* credential of ``[apply]``, never the audit one. Objects are addressed by
``<GUID=...>`` (the immutable id the plan holds); DNs are only read from the directory. Every
write deletes one *value* (``member``, ``managedBy``, ``manager``, ``sIDHistory``), never the
whole attribute, so a value someone set since the plan is left alone. Permissive modify
(1.2.840.113556.1.4.1413, MS-ADTS 3.1.1.3.4.1.8) makes deleting an absent value, or adding a
present one, succeed without change, so a repeated write is a no-op.

Per kind, what is read and what the undo puts back:

- ``remove-member``: the group's SID, the member's ``primaryGroupID``, whether the member DN is
  in ``member`` (a base search with an equality filter, so the DC compares DNs), and the
  group's direct member count (ranged ``member`` retrieval); undo: ``add: member``;
- ``remove-owner``: whether ``managedBy`` is the owner's DN; undo: ``replace: managedBy``;
- ``clear-manager``: the account's ``manager`` and that manager's objectGUID: another manager
  than the planned one is drift; undo: ``replace: manager``;
- ``remove-sid-history``: whether the SID is among ``sIDHistory``; no LDAP undo (adding
  sIDHistory takes ``DsAddSidHistory``). Windows AD lets an administrator delete a value over
  LDAP (what ``Set-ADUser -Remove @{sIDHistory=...}`` sends); a Samba DC refuses every
  sIDHistory change over LDAP (``unwillingToPerform``: "sidHistory ... cannot be created or
  changed over LDAP!"), which apply reports as a failed change.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, Connection
from ldap3.utils.conv import escape_filter_chars

from accessaudit.config.sources import LdapSource
from accessaudit.errors import AuditError, SourceError
from accessaudit.model import ActionKind
from accessaudit.remediation.apply.changes import Change, Live
from accessaudit.transport.ldap import connect
from accessaudit.transport.sid import sid_to_bytes, sid_to_str

A = ActionKind
PERMISSIVE_MODIFY = ("1.2.840.113556.1.4.1413", False, None)
_RANGE = re.compile(r"^member;range=(\d+)-(\d+|\*)$", re.I)


class LdapDirectory:
    """Read-before-write and single-value writes on one AD domain."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.writes = 0
        self.range_step = 1500  # AD's default MaxValRange

    @classmethod
    def open(cls, cfg: LdapSource, password: str | None) -> LdapDirectory:
        conn, _ = connect(cfg, password)
        conn.read_only = False  # the connector opens read-only; this is the write credential
        return cls(conn)

    # --- reads -------------------------------------------------------------------------------

    def _base(self, object_id: str | None, attrs: list[str]) -> dict[str, Any] | None:
        if not object_id:
            return None
        ok = self.conn.search(f"<GUID={object_id}>", "(objectClass=*)", BASE, attributes=attrs)
        if not ok:
            if self.conn.result.get("result") == 32:  # noSuchObject
                return None
            raise SourceError(f"LDAP read of <GUID={object_id}> failed: {self.conn.result}")
        for entry in self.conn.response or []:
            if entry.get("type") == "searchResEntry":
                return {"dn": entry["dn"], **dict(entry.get("raw_attributes") or {})}
        return None

    def _has(self, dn: str, attr: str, value: str) -> bool:
        """Whether ``dn``'s ``attr`` holds ``value`` (compared by the DC, not by us)."""
        ok = self.conn.search(
            dn, f"({attr}={escape_filter_chars(value)})", BASE, attributes=["1.1"]
        )
        return bool(ok) and any(e.get("type") == "searchResEntry" for e in self.conn.response or [])

    def _count_members(self, dn: str) -> int:
        """Direct ``member`` values, read in ranges of ``range_step`` (MS-ADTS 3.1.1.3.1.3.3:
        the DC answers ``member;range=low-high``, the last range with ``high`` = ``*``)."""
        total, low = 0, 0
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
                return total + len(raw.get("member") or [])
            key, m = hit
            total += len(raw[key])
            if m.group(2) == "*":
                return total
            low = int(m.group(2)) + 1

    def read(self, change: Change) -> Live:
        if change.kind == A.REMOVE_OWNER.value:
            return self._read_value(change, "managedBy")
        if change.kind == A.CLEAR_MANAGER.value:
            return self._read_manager(change)
        if change.kind == A.REMOVE_SID_HISTORY.value:
            return self._read_sid_history(change)
        return self._read_member(change)

    def _read_member(self, change: Change) -> Live:
        g = self._base(change.group_id, ["objectSid"])
        m = self._base(change.member_id, ["primaryGroupID"])
        if g is None or m is None:
            return Live(g is not None, m is not None, False)
        sid_raw = (g.get("objectSid") or [b""])[0]
        sid = sid_to_str(sid_raw) if sid_raw else None
        pg = (m.get("primaryGroupID") or [b""])[0]
        primary = bool(pg and sid and sid.rsplit("-", 1)[1] == pg.decode())
        present = self._has(g["dn"], "member", m["dn"])
        size = self._count_members(g["dn"])
        return Live(True, True, present, group_sid=sid, primary=primary, size=size)

    def _read_value(self, change: Change, attr: str) -> Live:
        g = self._base(change.group_id, ["objectSid"])
        m = self._base(change.member_id, ["objectGUID"])
        if g is None or m is None:
            return Live(g is not None, m is not None, False)
        sid_raw = (g.get("objectSid") or [b""])[0]
        present = self._has(g["dn"], attr, m["dn"])
        return Live(
            True,
            True,
            present,
            group_sid=sid_to_str(sid_raw) if sid_raw else None,
            prior={attr: f"<GUID={change.member_id}>"} if present else {},
        )

    def _read_manager(self, change: Change) -> Live:
        acc = self._base(change.member_id, ["manager"])
        if acc is None:
            return Live(True, False, False)
        dn = (acc.get("manager") or [b""])[0].decode()
        if not dn:
            return Live(True, True, False)
        mgr = self._search_guid(dn)
        if change.manager_id and mgr != change.manager_id:
            return Live(True, True, True, drift=f"the manager is now {mgr}, not the planned one")
        return Live(True, True, True, prior={"manager": f"<GUID={mgr}>", "manager_dn": dn})

    def _search_guid(self, dn: str) -> str | None:
        ok = self.conn.search(dn, "(objectClass=*)", BASE, attributes=["objectGUID"])
        for e in (self.conn.response or []) if ok else []:
            raw = (dict(e.get("raw_attributes") or {}).get("objectGUID") or [b""])[0]
            if e.get("type") == "searchResEntry" and len(raw) == 16:
                return str(uuid.UUID(bytes_le=raw))
        return None

    def _read_sid_history(self, change: Change) -> Live:
        acc = self._base(change.member_id, ["sIDHistory"])
        if acc is None:
            return Live(True, False, False)
        have = {sid_to_str(v) for v in acc.get("sIDHistory") or []}
        return Live(True, True, (change.resource_id or "") in have)

    # --- writes ------------------------------------------------------------------------------

    def _modify(self, dn: str, changes: dict[str, Any], what: str) -> None:
        ok = self.conn.modify(dn, changes, controls=[PERMISSIVE_MODIFY])
        self.writes += 1
        if not ok:
            r = self.conn.result
            said = str(r.get("message") or "").strip()[:200]
            raise AuditError(
                f"LDAP modify ({what}) of {dn} refused: {r.get('description')} {said}",
                "check the write account's rights on the object",
                outside=[dn, said],
            )

    def _dns(self, change: Change) -> tuple[str, str]:
        g = self._base(change.group_id, ["1.1"])
        m = self._base(change.member_id, ["1.1"])
        if g is None or m is None:
            raise AuditError(f"{change.action_id}: object gone before the write")
        return str(g["dn"]), str(m["dn"])

    def remove(self, change: Change, live: Live | None = None) -> None:
        if change.kind == A.CLEAR_MANAGER.value:
            acc = self._base(change.member_id, ["1.1"])
            dn = (live.prior if live else {}).get("manager_dn")
            if acc is None or not dn:
                raise AuditError(f"{change.action_id}: account or manager gone before the write")
            self._modify(str(acc["dn"]), {"manager": [(MODIFY_DELETE, [dn])]}, "manager")
            return
        if change.kind == A.REMOVE_SID_HISTORY.value:
            acc = self._base(change.member_id, ["1.1"])
            if acc is None:
                raise AuditError(f"{change.action_id}: account gone before the write")
            value = sid_to_bytes(change.resource_id or "")
            delete = {"sIDHistory": [(MODIFY_DELETE, [value])]}
            self._modify(str(acc["dn"]), delete, "sIDHistory")
            return
        group_dn, member_dn = self._dns(change)
        attr = "managedBy" if change.kind == A.REMOVE_OWNER.value else "member"
        self._modify(group_dn, {attr: [(MODIFY_DELETE, [member_dn])]}, attr)

    def add(self, change: Change, prior: dict[str, Any] | None = None) -> None:
        if change.kind == A.CLEAR_MANAGER.value:
            acc = self._base(change.member_id, ["1.1"])
            mgr = (prior or {}).get("manager", f"<GUID={change.manager_id}>")
            target = self._base(mgr[6:-1], ["1.1"]) if mgr.startswith("<GUID=") else None
            if acc is None or target is None:
                raise AuditError(f"{change.action_id}: account or manager gone; cannot undo")
            self._modify(str(acc["dn"]), {"manager": [(MODIFY_REPLACE, [target["dn"]])]}, "manager")
            return
        if change.kind == A.REMOVE_SID_HISTORY.value:
            raise AuditError(f"{change.action_id}: sIDHistory cannot be added back over LDAP")
        group_dn, member_dn = self._dns(change)
        if change.kind == A.REMOVE_OWNER.value:
            self._modify(group_dn, {"managedBy": [(MODIFY_REPLACE, [member_dn])]}, "managedBy")
        else:
            self._modify(group_dn, {"member": [(MODIFY_ADD, [member_dn])]}, "member")

    def undo_text(self, change: Change, prior: dict[str, Any] | None = None) -> dict[str, Any]:
        if change.kind == A.CLEAR_MANAGER.value:
            mgr = (prior or {}).get("manager", f"<GUID={change.manager_id}>")
            ldif = (
                f"dn: <GUID={change.member_id}>\nchangetype: modify\nreplace: manager\n"
                f"manager: {mgr}\n-"
            )
        elif change.kind == A.REMOVE_OWNER.value:
            ldif = (
                f"dn: <GUID={change.group_id}>\nchangetype: modify\nreplace: managedBy\n"
                f"managedBy: <GUID={change.member_id}>\n-"
            )
        else:
            ldif = (
                f"dn: <GUID={change.group_id}>\nchangetype: modify\nadd: member\n"
                f"member: <GUID={change.member_id}>\n-"
            )
        return {"ldif": ldif}
