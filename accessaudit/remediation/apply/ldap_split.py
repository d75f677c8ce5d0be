"""A mixed AD group split by ``apply``, step by step, each step journalled before it is written.

The plan's ``target.split`` (:func:`accessaudit.remediation.planfile.build_plan`) names the new
group (name, sAMAccountName, OU, scope, description), the movers, the movers' same-force parents
and the other force's parents the split group leaves. The steps, in order:

1. ``create``: the new group (``CN=<name>,<OU>``; the domain's ``CN=Users`` when the plan has no
   OU for the movers' force, as New-ADGroup without ``-Path``);
2. ``add-movers``: the movers join it (in chunks of :data:`~.ldap_ops.CHUNK` values);
3. ``nest``: it joins each of the movers' same-force parents;
4. the new group is read again: a mover or parent missing fails the change *before* anything
   is taken away, so nobody loses the access they keep;
5. ``remove-movers``: the movers leave the mixed group;
6. ``unnest``: the mixed group leaves each of the other force's parents.

Every step is idempotent (permissive modify; the group is created once and found again by its
sAMAccountName, where it is this plan's only if its DN and description are the planned ones), so
a run killed at any step is read again and completed from where it stopped. The read says what
is left (``is_member``: any mover still in the mixed group, or the mixed group still in one of
those parents) and what the undo needs (``prior``: the movers and parents as they were).

Undo puts the movers back into the mixed group and the mixed group back into the parents it
left, then deletes the new group only if it is still as created (its members among the movers,
its parents among the planned ones, its description the plan's); otherwise it is left in place
and the undo says so.
"""

from __future__ import annotations

from typing import Any

from ldap3 import MODIFY_ADD, MODIFY_DELETE, SUBTREE
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from accessaudit.errors import AuditError
from accessaudit.remediation.apply.changes import Change, Live
from accessaudit.remediation.apply.ldap_ops import CHUNK, LdapOps

#: groupType of a security group by scope (learn.microsoft.com/windows/win32/adschema/
#: a-grouptype: 0x80000000 security, 0x2 global, 0x4 domain local, 0x8 universal)
GROUP_TYPE = {"global": -2147483646, "domain-local": -2147483644, "universal": -2147483640}


def _low(values: list[str]) -> set[str]:
    return {v.lower() for v in values}


class SplitWrites(LdapOps):
    """Read, execute and undo a split of a mixed AD group."""

    def _new_dn(self, s: dict[str, Any]) -> str:
        ou = s.get("ou") or f"CN=Users,{self.domain_dn()}"
        return f"CN={escape_rdn(str(s['name']))},{ou}"

    def _find_new(self, s: dict[str, Any]) -> dict[str, Any] | None:
        """The group holding the planned sAMAccountName now, with its DN and description."""
        f = f"(&(objectClass=group)(sAMAccountName={escape_filter_chars(str(s['sam']))}))"
        ok = self.conn.search(
            self.domain_dn(), f, SUBTREE, attributes=["description", "objectGUID"]
        )
        for e in (self.conn.response or []) if ok else []:
            if e.get("type") == "searchResEntry":
                return {"dn": e["dn"], **dict(e.get("raw_attributes") or {})}
        return None

    def _ours(self, s: dict[str, Any], new: dict[str, Any]) -> bool:
        desc = (new.get("description") or [b""])[0].decode()
        return str(new["dn"]).lower() == self._new_dn(s).lower() and desc == s["description"]

    def _dn_map(self, ids: list[str]) -> dict[str, str]:
        """id -> DN of those of ``ids`` that still exist."""
        return {i: dn for i in ids if (dn := self._dn_of(i)) is not None}

    def _read_split(self, change: Change) -> Live:
        s = change.split or {}
        g = self._base(change.group_id, ["objectSid"])
        if g is None:
            return Live(False, True, False)
        sid = self._sid(g)
        in_g = _low(self._members(g["dn"]))
        movers = self._dn_map(list(s["members"]))
        moved = sorted(i for i, dn in movers.items() if dn.lower() in in_g)
        unnest = self._dn_map(list(s["unnest"]))
        left = sorted(p for p, dn in unnest.items() if self._has(dn, "member", g["dn"]))
        sizes = {change.group_id or "": len(in_g)}
        sizes |= {p: self._count_members(dn) for p, dn in unnest.items()}
        live = Live(
            True,
            True,
            bool(moved or left),
            group_sid=sid,
            size=len(in_g),
            sizes=sizes,
            prior={"moved": moved, "left": left},
        )
        new = self._find_new(s)
        if new is not None and not self._ours(s, new):
            return Live(
                True,
                True,
                True,
                group_sid=sid,
                drift=f"a group named {s['sam']} exists already, not this plan's",
            )
        ou = s.get("ou")
        if new is None and ou and self._entry(str(ou), ["1.1"], str(ou)) is None:
            return Live(
                True,
                True,
                True,
                group_sid=sid,
                refusal=f"the new group's OU {ou} does not exist: create it, or plan again",
            )
        return live

    def _execute_split(self, change: Change) -> None:
        """The steps of the module doc, each skipped when already made."""
        s = change.split or {}
        g = self._base(change.group_id, ["1.1"])
        if g is None:
            raise AuditError(f"{change.action_id}: the split group is gone before the write")
        movers = list(self._dn_map(list(s["members"])).values())
        parents = list(self._dn_map(list(s["parents"])).values())
        new = self._find_new(s)
        if new is None:
            dn = self._new_dn(s)
            self.steps.before("create", {"dn": dn})
            attrs = {
                "sAMAccountName": s["sam"],
                "description": s["description"],
                "groupType": GROUP_TYPE.get(str(s.get("scope")), GROUP_TYPE["global"]),
            }
            self._add_object(dn, ["top", "group"], attrs)
            self.steps.after()
            new = self._find_new(s)
            if new is None:
                raise AuditError(
                    f"{change.action_id}: the new group {dn} is not found after it was created"
                )
        elif not self._ours(s, new):
            raise AuditError(
                f"{change.action_id}: a group named {s['sam']} exists, not this plan's"
            )
        new_dn = str(new["dn"])
        have = _low(self._members(new_dn))
        self._values(
            new_dn, "member", MODIFY_ADD, [m for m in movers if m.lower() not in have], "add-movers"
        )
        for p in parents:
            if not self._has(p, "member", new_dn):
                self.steps.before("nest", {"parent": p})
                self._modify(p, {"member": [(MODIFY_ADD, [new_dn])]}, "member")
                self.steps.after()
        self._verify(change, new_dn, movers, parents)
        in_g = _low(self._members(g["dn"]))
        self._values(
            g["dn"],
            "member",
            MODIFY_DELETE,
            [m for m in movers if m.lower() in in_g],
            "remove-movers",
        )
        for q in self._dn_map(list(s["unnest"])).values():
            if self._has(q, "member", g["dn"]):
                self.steps.before("unnest", {"parent": q})
                self._modify(q, {"member": [(MODIFY_DELETE, [g["dn"]])]}, "member")
                self.steps.after()

    def _verify(self, change: Change, new_dn: str, movers: list[str], parents: list[str]) -> None:
        have = _low(self._members(new_dn))
        lost = [m for m in movers if m.lower() not in have]
        unnested = [p for p in parents if not self._has(p, "member", new_dn)]
        if lost or unnested:
            raise AuditError(
                f"{change.action_id}: the new group {new_dn} lacks {len(lost)} mover(s) and "
                f"{len(unnested)} parent(s) after the writes; nothing was taken from the split "
                "group",
                "check the write account's rights, then run apply again to resume",
                outside=[new_dn],
            )

    def _undo_split(self, change: Change, prior: dict[str, Any]) -> str | None:
        s = change.split or {}
        g = self._base(change.group_id, ["1.1"])
        if g is None:
            raise AuditError(f"{change.action_id}: the split group is gone; cannot undo")
        # only the values missing: Samba refuses a link that exists, permissive modify or not
        in_g = _low(self._members(g["dn"]))
        moved = [
            dn
            for dn in self._dn_map(list(prior.get("moved", s["members"]))).values()
            if dn.lower() not in in_g
        ]
        for i in range(0, len(moved), CHUNK):
            self._modify(g["dn"], {"member": [(MODIFY_ADD, moved[i : i + CHUNK])]}, "member")
        for q in self._dn_map(list(prior.get("left", s["unnest"]))).values():
            if not self._has(q, "member", g["dn"]):
                self._modify(q, {"member": [(MODIFY_ADD, [g["dn"]])]}, "member")
        new = self._find_new(s)
        if new is None:
            return None
        if not self._ours(s, new):
            return f"a group named {s['sam']} is not this plan's: left in place"
        new_dn = str(new["dn"])
        movers = _low(list(self._dn_map(list(s["members"])).values()))
        parents = _low(list(self._dn_map(list(s["parents"])).values()))
        e = self._entry(new_dn, ["memberOf"], new_dn) or {}
        member_of = _low([v.decode() for v in e.get("memberOf") or []])
        if not _low(self._members(new_dn)) <= movers or not member_of <= parents:
            return f"the new group {s['name']} was changed since it was created: left in place"
        self._delete_object(new_dn)
        return None


def split_undo_ldif(change: Change, prior: dict[str, Any]) -> str:
    """The LDIF putting the split group back (the new group's deletion as a note: apply deletes
    it only if it is still as created)."""
    s = change.split or {}
    g = f"<GUID={change.group_id}>"
    moved = prior.get("moved", s.get("members", []))
    out = [
        f"dn: {g}\nchangetype: modify\nadd: member\n"
        + "".join(f"member: <GUID={m}>\n" for m in moved)
        + "-"
    ]
    out += [
        f"\ndn: <GUID={p}>\nchangetype: modify\nadd: member\nmember: {g}\n-"
        for p in prior.get("left", s.get("unnest", []))
    ]
    out.append(
        f"\n# then delete the new group {s.get('name')} (sAMAccountName {s.get('sam')}) if it "
        "is still as created:\n# dn: CN=...\n# changetype: delete"
    )
    return "\n".join(out)
