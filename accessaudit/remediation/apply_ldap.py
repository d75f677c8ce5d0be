"""AD writes for :mod:`accessaudit.remediation.apply`: read by objectGUID, remove with
permissive modify.

The connection is opened by the LDAP connector's own code (TLS verified, one-line errors) with
the *write* credential of ``[apply]``, never the audit one. Objects are addressed by
``<GUID=...>`` (the immutable id the plan holds); the DN is only read from the directory.
Permissive modify (1.2.840.113556.1.4.1413, MS-ADTS 3.1.1.3.4.1.8) makes deleting an absent
value, or adding a present one, succeed without change, so a repeated removal is a no-op.
"""

from __future__ import annotations

from typing import Any

from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, Connection
from ldap3.utils.conv import escape_filter_chars

from ..config import LdapSource
from ..connectors.ldap_decode import sid_to_str
from ..connectors.ldap_transport import connect
from ..errors import AuditError, SourceError
from .apply import Change, Live

PERMISSIVE_MODIFY = ("1.2.840.113556.1.4.1413", False, None)


class LdapDirectory:
    """Read-before-write and membership writes on one AD domain."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.writes = 0

    @classmethod
    def open(cls, cfg: LdapSource, password: str | None) -> LdapDirectory:
        conn, _ = connect(cfg, password)
        conn.read_only = False  # the connector opens read-only; this is the write credential
        return cls(conn)

    def _base(self, object_id: str, attrs: list[str]) -> dict[str, Any] | None:
        ok = self.conn.search(f"<GUID={object_id}>", "(objectClass=*)", BASE, attributes=attrs)
        if not ok:
            if self.conn.result.get("result") == 32:  # noSuchObject
                return None
            raise SourceError(f"LDAP read of <GUID={object_id}> failed: {self.conn.result}")
        for entry in self.conn.response or []:
            if entry.get("type") == "searchResEntry":
                return {"dn": entry["dn"], **dict(entry.get("raw_attributes") or {})}
        return None

    def _dns(self, change: Change) -> tuple[str, str] | None:
        g = self._base(change.group_id, ["objectSid"])
        m = self._base(change.member_id, ["primaryGroupID"])
        if g is None or m is None:
            return None
        return str(g["dn"]), str(m["dn"])

    def read(self, change: Change) -> Live:
        g = self._base(change.group_id, ["objectSid"])
        m = self._base(change.member_id, ["primaryGroupID"])
        if g is None or m is None:
            return Live(g is not None, m is not None, False)
        sid_raw = (g.get("objectSid") or [b""])[0]
        sid = sid_to_str(sid_raw) if sid_raw else None
        pg = (m.get("primaryGroupID") or [b""])[0]
        primary = bool(pg and sid and sid.rsplit("-", 1)[1] == pg.decode())
        ok = self.conn.search(
            g["dn"],
            f"(member={escape_filter_chars(m['dn'])})",
            BASE,
            attributes=["1.1"],
        )
        present = ok and any(e.get("type") == "searchResEntry" for e in self.conn.response or [])
        return Live(True, True, present, group_sid=sid, primary=primary)

    def _modify(self, change: Change, op: str) -> None:
        dns = self._dns(change)
        if dns is None:
            raise AuditError(f"{change.action_id}: object gone before the write")
        group_dn, member_dn = dns
        ok = self.conn.modify(
            group_dn, {"member": [(op, [member_dn])]}, controls=[PERMISSIVE_MODIFY]
        )
        self.writes += 1
        if not ok:
            r = self.conn.result
            raise AuditError(
                f"LDAP modify of {group_dn} refused: {r.get('description')} {r.get('message')}",
                "check the write account's rights on the group (Write Members)",
            )

    def remove(self, change: Change) -> None:
        self._modify(change, MODIFY_DELETE)

    def add(self, change: Change) -> None:
        self._modify(change, MODIFY_ADD)

    def undo_text(self, change: Change) -> dict[str, Any]:
        ldif = (
            f"dn: <GUID={change.group_id}>\nchangetype: modify\nadd: member\n"
            f"member: <GUID={change.member_id}>\n-"
        )
        return {"ldif": ldif}
