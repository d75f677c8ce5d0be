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
  group's direct member count (ranged ``member`` retrieval); undo: ``add: member``. The
  member's primary group is moved first (:mod:`.ldap_primary`);
- ``split-group``: the steps of :mod:`.ldap_split`;
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

from typing import Any

from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE

from accessaudit.config.sources import LdapSource
from accessaudit.errors import AuditError
from accessaudit.model import ActionKind, Via
from accessaudit.remediation.apply.changes import Change, Live
from accessaudit.remediation.apply.ldap_ops import PERMISSIVE_MODIFY
from accessaudit.remediation.apply.ldap_primary import PrimaryMoves, primary_undo_ldif
from accessaudit.remediation.apply.ldap_split import SplitWrites, split_undo_ldif
from accessaudit.transport.ldap import connect
from accessaudit.transport.sid import sid_to_bytes, sid_to_str

A = ActionKind
__all__ = ["PERMISSIVE_MODIFY", "LdapDirectory"]


class LdapDirectory(PrimaryMoves, SplitWrites):
    """Read-before-write and single-value writes on one AD domain; an account's primary group
    moved (:mod:`.ldap_primary`) and a mixed group split (:mod:`.ldap_split`) step by step."""

    @classmethod
    def open(cls, cfg: LdapSource, password: str | None) -> LdapDirectory:
        conn, _ = connect(cfg, password)
        conn.read_only = False  # the connector opens read-only; this is the write credential
        return cls(conn)

    def read(self, change: Change) -> Live:
        if change.kind == A.SPLIT_GROUP.value:
            return self._read_split(change)
        if change.kind == A.REMOVE_OWNER.value:
            return self._read_value(change, "managedBy")
        if change.kind == A.CLEAR_MANAGER.value:
            return self._read_manager(change)
        if change.kind == A.REMOVE_SID_HISTORY.value:
            return self._read_sid_history(change)
        return self._read_member(change)

    def _read_member(self, change: Change) -> Live:
        g = self._base(change.group_id, ["objectSid"])
        m = self._base(change.member_id, ["primaryGroupID", "objectSid"])
        if g is None or m is None:
            return Live(g is not None, m is not None, False)
        sid = self._sid(g)
        pg = (m.get("primaryGroupID") or [b""])[0]
        primary = bool(pg and sid and sid.rsplit("-", 1)[1] == pg.decode())
        size = self._count_members(g["dn"])
        if primary or change.via == Via.PRIMARY_GROUP.value:
            return self._read_primary(change, g, m, size)
        present = self._has(g["dn"], "member", m["dn"])
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

    def _read_sid_history(self, change: Change) -> Live:
        acc = self._base(change.member_id, ["sIDHistory"])
        if acc is None:
            return Live(True, False, False)
        have = {sid_to_str(v) for v in acc.get("sIDHistory") or []}
        return Live(True, True, (change.resource_id or "") in have)

    # --- writes ------------------------------------------------------------------------------

    def _dns(self, change: Change) -> tuple[str, str]:
        g = self._base(change.group_id, ["1.1"])
        m = self._base(change.member_id, ["1.1"])
        if g is None or m is None:
            raise AuditError(f"{change.action_id}: object gone before the write")
        return str(g["dn"]), str(m["dn"])

    def remove(self, change: Change, live: Live | None = None) -> None:
        if change.kind == A.SPLIT_GROUP.value:
            self._execute_split(change)
            return
        if live is not None and live.primary_move:
            self._move_primary(change, live)
            return
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

    def add(self, change: Change, prior: dict[str, Any] | None = None) -> str | None:
        """Put back what the change removed (a note when part of it is left as it is)."""
        if change.kind == A.SPLIT_GROUP.value:
            return self._undo_split(change, prior or {})
        if (prior or {}).get("primary_rid"):
            self._restore_primary(change, prior or {})
            return None
        if change.kind == A.CLEAR_MANAGER.value:
            acc = self._base(change.member_id, ["1.1"])
            mgr = (prior or {}).get("manager", f"<GUID={change.manager_id}>")
            target = self._base(mgr[6:-1], ["1.1"]) if mgr.startswith("<GUID=") else None
            if acc is None or target is None:
                raise AuditError(f"{change.action_id}: account or manager gone; cannot undo")
            self._modify(str(acc["dn"]), {"manager": [(MODIFY_REPLACE, [target["dn"]])]}, "manager")
            return None
        if change.kind == A.REMOVE_SID_HISTORY.value:
            raise AuditError(f"{change.action_id}: sIDHistory cannot be added back over LDAP")
        group_dn, member_dn = self._dns(change)
        if change.kind == A.REMOVE_OWNER.value:
            self._modify(group_dn, {"managedBy": [(MODIFY_REPLACE, [member_dn])]}, "managedBy")
        else:
            self._modify(group_dn, {"member": [(MODIFY_ADD, [member_dn])]}, "member")
        return None

    def undo_text(self, change: Change, prior: dict[str, Any] | None = None) -> dict[str, Any]:
        if change.kind == A.SPLIT_GROUP.value:
            return {"ldif": split_undo_ldif(change, prior or {})}
        if (prior or {}).get("primary_rid"):
            return {"ldif": primary_undo_ldif(change, prior or {})}
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
