"""An AD account out of its *primary group*: apply moves the primary group first.

AD keeps the primary group in the account's ``primaryGroupID`` (a RID), not in the group's
``member``, and refuses a ``primaryGroupID`` naming a group the account is not a member of
(learn.microsoft.com/troubleshoot/windows-server/active-directory/
primary-group-id-attribute-not-changed). So, each step journalled before it is written:

1. ``join-primary``: the account joins the target primary group (Domain Users,
   ``<domain SID>-513``, or the one the plan names in ``target.primary_sid``);
2. ``set-primary``: ``primaryGroupID`` is replaced by the target's RID. The DC then keeps the
   old primary group as an ordinary ``member`` value and drops the target's (Samba's samldb
   and Windows alike), so the account is read again: another ``primaryGroupID`` is a failure;
3. ``leave-old``: the old group's ``member`` value is deleted.

Undo (from the ``prior`` of the intent: the old RID and whether the account was a direct member
of the target before): the account rejoins the old group, ``primaryGroupID`` is set back, and
the target's ``member`` value the DC then adds is deleted if it was not there before.

Refused only where AD would refuse the write: a target primary group that does not exist, is
not a global or universal *security* group, or is in another domain; a target that is the group
being left (the plan must name another).
"""

from __future__ import annotations

from typing import Any

from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE

from accessaudit.errors import AuditError
from accessaudit.remediation.apply.changes import Change, Live
from accessaudit.remediation.apply.ldap_ops import LdapOps

DOMAIN_USERS_RID = 513
#: groupType bits (learn.microsoft.com/windows/win32/adschema/a-grouptype)
GT_BUILTIN, GT_DOMAIN_LOCAL, GT_SECURITY = 0x1, 0x4, 0x80000000


def target_sid(change: Change, account_sid: str | None) -> str | None:
    """The primary group the account moves to: the plan's, else its domain's Domain Users."""
    if change.primary_sid:
        return change.primary_sid
    if not account_sid or not account_sid.startswith("S-1-5-21-"):
        return None
    return f"{account_sid.rsplit('-', 1)[0]}-{DOMAIN_USERS_RID}"


class PrimaryMoves(LdapOps):
    """Read, move and put back an account's primary group."""

    def _read_primary(
        self, change: Change, g: dict[str, Any], m: dict[str, Any], size: int
    ) -> Live:
        old_sid = self._sid(g)
        old_rid = (old_sid or "").rsplit("-", 1)[-1]
        pg = (m.get("primaryGroupID") or [b""])[0].decode()
        present = self._has(g["dn"], "member", m["dn"])
        moved = pg != old_rid
        if moved:  # an ordinary member now (another primary group since the plan, or resumed)
            return Live(True, True, present, group_sid=old_sid, primary_move=True, size=size)
        tsid = target_sid(change, self._sid(m))
        t = self._by_sid(tsid, ["groupType", "objectSid"]) if tsid else None
        refusal = _refusal(tsid, t, old_sid, self._sid(m))
        if refusal or t is None:
            return Live(
                True,
                True,
                True,
                group_sid=old_sid,
                primary=True,
                primary_move=True,
                size=size,
                refusal=refusal,
            )
        prior = {
            "primary_rid": old_rid,
            "target_sid": tsid,
            "target_member": self._has(t["dn"], "member", m["dn"]),
        }
        return Live(
            True,
            True,
            True,
            group_sid=old_sid,
            primary=True,
            primary_move=True,
            size=size,
            prior=prior,
        )

    def _move_primary(self, change: Change, live: Live) -> None:
        """The three steps of the module doc; each skipped when already made (a resumed run)."""
        g = self._base(change.group_id, ["objectSid"])
        m = self._base(change.member_id, ["primaryGroupID", "objectSid"])
        if g is None or m is None:
            raise AuditError(f"{change.action_id}: object gone before the write")
        old_rid = (self._sid(g) or "").rsplit("-", 1)[-1]
        if (m.get("primaryGroupID") or [b""])[0].decode() == old_rid:
            tsid = str(live.prior.get("target_sid") or target_sid(change, self._sid(m)))
            t = self._by_sid(tsid, ["objectSid"])
            if t is None:
                raise AuditError(f"{change.action_id}: the target primary group {tsid} is gone")
            rid = tsid.rsplit("-", 1)[1]
            if not self._has(t["dn"], "member", m["dn"]):  # Samba refuses a second link
                self.steps.before("join-primary", {"group": tsid})
                self._modify(t["dn"], {"member": [(MODIFY_ADD, [m["dn"]])]}, "member")
                self.steps.after()
            self.steps.before("set-primary", {"primaryGroupID": rid})
            self._modify(m["dn"], {"primaryGroupID": [(MODIFY_REPLACE, [rid])]}, "primaryGroupID")
            self.steps.after()
            again = self._base(change.member_id, ["primaryGroupID"]) or {}
            now = (again.get("primaryGroupID") or [b""])[0].decode()
            if now != rid:
                raise AuditError(
                    f"{change.action_id}: primaryGroupID is {now or 'unreadable'} after it was "
                    f"set to {rid}; the old group's edge is left in place"
                )
        self.steps.before("leave-old", {"group": change.group_id})
        self._modify(g["dn"], {"member": [(MODIFY_DELETE, [m["dn"]])]}, "member")
        self.steps.after()

    def _restore_primary(self, change: Change, prior: dict[str, Any]) -> None:
        g = self._base(change.group_id, ["1.1"])
        m = self._base(change.member_id, ["primaryGroupID"])
        tsid = str(prior.get("target_sid") or "")
        t = self._by_sid(tsid, ["1.1"]) if tsid else None
        if g is None or m is None or t is None:
            raise AuditError(f"{change.action_id}: account or group gone; cannot undo")
        if not self._has(g["dn"], "member", m["dn"]):
            self._modify(g["dn"], {"member": [(MODIFY_ADD, [m["dn"]])]}, "member")
        rid = str(prior["primary_rid"])
        self._modify(m["dn"], {"primaryGroupID": [(MODIFY_REPLACE, [rid])]}, "primaryGroupID")
        if not prior.get("target_member"):
            self._modify(t["dn"], {"member": [(MODIFY_DELETE, [m["dn"]])]}, "member")


def _refusal(
    tsid: str | None, t: dict[str, Any] | None, old_sid: str | None, account_sid: str | None
) -> str:
    """Why AD would refuse to make ``tsid`` the account's primary group ("": it would not)."""
    if tsid is None:
        return "no target primary group: the account's SID names no domain (name one in the plan)"
    if tsid == old_sid:
        return f"the target primary group {tsid} is the group being left: name another"
    if t is None:
        return f"the target primary group {tsid} does not exist"
    if account_sid and tsid.rsplit("-", 1)[0] != account_sid.rsplit("-", 1)[0]:
        return f"AD takes a primary group of the account's own domain only, not {tsid}"
    gt = int((t.get("groupType") or [b"0"])[0]) & 0xFFFFFFFF
    if not gt & GT_SECURITY or gt & (GT_DOMAIN_LOCAL | GT_BUILTIN):
        return f"AD takes only a global or universal security group as primary group, not {tsid}"
    return ""


def primary_undo_ldif(change: Change, prior: dict[str, Any]) -> str:
    """The LDIF putting the old primary group back (the steps of the undo, in order)."""
    member = f"<GUID={change.member_id}>"
    lines = [
        f"dn: <GUID={change.group_id}>\nchangetype: modify\nadd: member\nmember: {member}\n-",
        f"\ndn: {member}\nchangetype: modify\nreplace: primaryGroupID\n"
        f"primaryGroupID: {prior.get('primary_rid', '<old RID>')}\n-",
    ]
    if not prior.get("target_member"):
        lines.append(
            f"\ndn: <SID={prior.get('target_sid', '<target SID>')}>\nchangetype: modify\n"
            f"delete: member\nmember: {member}\n-"
        )
    return "\n".join(lines)
