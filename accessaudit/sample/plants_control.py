"""Control paths of the sample: AD security descriptors with their planted truth.

The directory's securable objects (the domain head, CN=System with AdminSDHolder and a group
policy object, the forces' OUs, West Mercia's users, two Warwickshire groups) as ``resources``
and their DACLs as ``aces``, the way a domain controller stores them (analysis.control reads
them): every object has the default entries (Domain Admins full control, Authenticated Users
read) and Domain Admins as owner; inherited entries are copied onto each child with the ID
flag, inherit-only copies on the OUs between. Then the cases, each recorded as truth when
planted:

1. **inherited OU delegation**: Warwickshire's ICT group may reset the password of every user
   below West Mercia's OU (set once on the OU, inherited by each user) -> one
   cross-org-control-container finding on the OU;
2. **a deny that cancels an allow**: one West Mercia user carries an explicit deny of that right
   to the same group, stored before the inherited allow: the user is not reached (the OU's
   reach is one less) and no finding names it;
3. **delegated reset right**: a Warwickshire officer may reset one West Mercia officer's
   password -> cross-org-control-account;
4. **a group of one force with GenericAll on the other's group** -> cross-org-control-group;
5. **DCSync for an alliance service account** (both replication rights on the domain head)
   -> dcsync-outside-admins;
6. **an object owned by the other force** (a Warwickshire group owned by a West Mercia
   officer) -> cross-org-object-owner;
7. **AdminSDHolder**: a Warwickshire officer with GenericAll on it -> cross-org-control-container;
8. **a GPO linked to Warwickshire's OU** that West Mercia's ICT group may edit
   -> cross-org-control-gpo.

Legitimate and not reported: West Mercia's ICT group resetting West Mercia's passwords (the
same inherited delegation, own force), every default entry. People are picked with the
plant's own generator among staff no other plant uses, so every earlier draw is unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Final

import numpy as np
import polars as pl

from accessaudit.model import ACES_SCHEMA, RESOURCES_SCHEMA, conform
from accessaudit.sample.builder import BASE_DN, FORCES, RESERVED_DEPTS, SOURCE, Builder
from accessaudit.transport import adschema as g

WMP, WARKS = FORCES
SYSTEM: Final = f"CN=System,{BASE_DN}"
ADMIN_SD_HOLDER: Final = f"CN=AdminSDHolder,{SYSTEM}"
POLICIES: Final = f"CN=Policies,{SYSTEM}"
GPO: Final = f"CN={{6AC1786C-016F-11D2-945F-00C04FB984F9}},{POLICIES}"
#: raw access masks as stored
GA, GW, CR, READ = 0x10000000, 0x40000000, 0x100, 0x20094
OBJECT_ALLOW, OBJECT_DENY = 5, 6
CI, IO, ID = 0x02, 0x08, 0x10
#: who holds what, by group name (the sample's groups)
HELPDESK: Final = f"{WARKS.prefix}DEPT-ICT"  # Warwickshire ICT: resets West Mercia passwords
OWN_HELPDESK: Final = f"{WMP.prefix}DEPT-ICT"  # West Mercia ICT: its own (legitimate), and a GPO
GROUP_HOLDER: Final = f"{WMP.prefix}DEPT-Roads-Policing"
CONTROLLED: Final = f"{WARKS.prefix}RES-0004"
OWNED: Final = f"{WARKS.prefix}RES-0003"
SERVICE: Final = "svc-backup00"


def _object_id(dn: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "ldap:///" + dn.lower()))


def _parent(dn: str) -> str | None:
    _, _, rest = dn.partition(",")
    return rest or None if dn.lower() != BASE_DN.lower() else None


def _clean(people: pl.DataFrame, org: str, taken: set[str], ou: str) -> pl.DataFrame:
    """Staff of ``org`` in its Users OU that no plant names (never a mover or reserved)."""
    return people.filter(
        (pl.col("org") == org)
        & ~pl.col("mover")
        & ~pl.col("department").is_in(RESERVED_DEPTS[org])
        & ~pl.col("account_id").is_in(list(taken))
        & pl.col("dn").str.ends_with(f",OU=Users,{ou}")
    ).sort("account_id")


def taken_accounts(b: Builder, used: Iterable[str]) -> set[str]:
    """Every account a plant has drawn or named in its truth so far (taken before the
    applications and the tenant plant theirs: the directory is the same with or without them)."""
    out = set(used)
    for frames in (b.truth, b.truth_ids):
        for df in frames:
            if "account_id" in df.columns:
                out.update(df.get_column("account_id").drop_nulls().to_list())
    return out


class _Acl:
    """The rows of ``resources`` and ``aces`` as they are planted."""

    def __init__(self, domain_sid: str) -> None:
        self.admins = f"{domain_sid}-512"
        self.resources: list[dict[str, Any]] = []
        self.aces: list[dict[str, Any]] = []
        self.seq: dict[str, int] = {}
        self.user_resources = pl.DataFrame()
        self.user_aces = pl.DataFrame()

    def obj(self, dn: str, cls: str, rid: str | None = None, subject: str | None = None,
            owner: str | None = None, linked: list[str] | None = None) -> str:  # fmt: skip
        rid = rid or _object_id(dn)
        parent = _parent(dn)
        self.resources.append(
            {"resource_id": rid, "object_class": cls, "path": dn, "subject_id": subject,
             "name": dn.partition(",")[0].partition("=")[2], "owner_sid": owner or self.admins,
             "parent_id": _object_id(parent) if parent else None, "linked_to": linked or []}
        )  # fmt: skip
        self.ace(rid, self.admins, 0xF01FF)  # Domain Admins: full control (a default trustee)
        return rid

    def ace(self, rid: str, sid: str, mask: int, kind: int = 0, flags: int = 0,
            ot: str | None = None, iot: str | None = None) -> None:  # fmt: skip
        seq = self.seq.get(rid, 0)
        self.seq[rid] = seq + 1
        self.aces.append(
            {"resource_id": rid, "seq": seq, "ace_type": kind, "flags": flags, "mask": mask,
             "object_type": ot, "inherited_object_type": iot, "trustee_sid": sid}
        )  # fmt: skip

    def users(
        self,
        users: pl.DataFrame,
        parent: str,
        inherited: tuple[str, ...],
        *,
        explicit: tuple[str, str],
        deny: tuple[str, str],
    ) -> None:
        """Every user below ``parent`` (vectorised): the default entries, ``explicit`` (user,
        trustee: a reset right set on it), ``deny`` (user, trustee: a deny of it stored before
        the inherited ones) and the ``inherited`` trustees' reset right copied from the OU."""
        rid = pl.col("account_id")
        self.user_resources = users.select(
            resource_id=rid, object_class=pl.lit("user"), path="dn", subject_id=rid,
            name=pl.col("dn").str.extract(r"^CN=((?:[^,\\]|\\.)*)", 1),
            owner_sid=pl.lit(self.admins), parent_id=pl.lit(parent),
            linked_to=pl.lit([], pl.List(pl.String)),
        )  # fmt: skip
        ids = users.select(resource_id=rid)
        reset, user = g.USER_FORCE_CHANGE, g.USER
        parts = [
            (0, ids, self.admins, 0xF01FF, 0, 0, None, None),
            (1, ids.filter(pl.col("resource_id") == explicit[0]), explicit[1], CR, OBJECT_ALLOW,
             0, reset, None),
            (2, ids.filter(pl.col("resource_id") == deny[0]), deny[1], CR, OBJECT_DENY, 0, reset,
             None),
            *((3 + k, ids, sid, CR, OBJECT_ALLOW, CI | ID, reset, user)
              for k, sid in enumerate(inherited)),
            (9, ids, "S-1-5-11", READ, 0, 0, None, None),
        ]  # fmt: skip
        frames = [
            part.with_columns(
                _order=pl.lit(order),
                trustee_sid=pl.lit(sid),
                mask=pl.lit(mask, pl.Int64),
                ace_type=pl.lit(kind, pl.Int32),
                flags=pl.lit(flags, pl.Int32),
                object_type=pl.lit(ot, pl.String),
                inherited_object_type=pl.lit(iot, pl.String),
            )
            for order, part, sid, mask, kind, flags, ot, iot in parts
        ]
        self.user_aces = (
            pl.concat(frames)
            .sort("resource_id", "_order")
            .with_columns(seq=pl.int_range(pl.len(), dtype=pl.Int32).over("resource_id"))
            .drop("_order")
        )

    def tables(self) -> dict[str, pl.DataFrame]:
        for rid in list(self.seq):  # Authenticated Users read everything, last
            self.ace(rid, "S-1-5-11", READ)
        src = pl.lit(SOURCE)
        resources = pl.concat(
            [pl.DataFrame(self.resources), self.user_resources], how="diagonal_relaxed"
        ).with_columns(source=src, family=pl.lit("ad-object"), readable=pl.lit(True))
        aces = pl.concat(
            [pl.DataFrame(self.aces, infer_schema_length=None), self.user_aces],
            how="diagonal_relaxed",
        ).with_columns(source=src)
        return {
            "resources": conform(resources, RESOURCES_SCHEMA),
            "aces": conform(aces.sort("resource_id", "seq"), ACES_SCHEMA),
        }


# long: one case after the other, each with its truth
def plant_control(
    b: Builder,
    tables: dict[str, pl.DataFrame],
    people: pl.DataFrame,
    taken: set[str],
    gen: np.random.Generator,
    domain_sid: str,
) -> dict[str, pl.DataFrame]:
    """The ``resources`` and ``aces`` of the directory, with the cases above planted."""
    groups = tables["groups"].select("name", "group_id", "sid", "dn")
    gid = dict(zip(groups["name"], groups["group_id"], strict=True))
    gsid = dict(zip(groups["name"], groups["sid"], strict=True))
    gdn = dict(zip(groups["name"], groups["dn"], strict=True))
    accounts = tables["accounts"]
    wmp_users = _clean(people, WMP.id, taken, WMP.ou)
    warks_users = _clean(people, WARKS.id, taken, WARKS.ou)
    w_pick = wmp_users[gen.choice(wmp_users.height, size=3, replace=False).tolist()]
    k_pick = warks_users[gen.choice(warks_users.height, size=2, replace=False).tolist()]
    (w_target, w_deny, w_owner), (k_reset, k_sdh) = w_pick.rows(named=True), k_pick.rows(named=True)
    acl = _Acl(domain_sid)

    # the domain head: DCSync for the alliance's backup service account (5)
    domain = acl.obj(BASE_DN, "domainDNS")
    acl.ace(domain, "S-1-5-9", CR, OBJECT_ALLOW, ot=g.GET_CHANGES)  # Enterprise DCs: default
    acl.ace(domain, "S-1-5-9", CR, OBJECT_ALLOW, ot=g.GET_CHANGES_ALL)
    svc = accounts.filter(pl.col("username") == SERVICE).row(0, named=True)
    for right in (g.GET_CHANGES, g.GET_CHANGES_ALL):
        acl.ace(domain, svc["sid"], CR, OBJECT_ALLOW, ot=right)
    b.plant_ids("dcsync-outside-admins", "control: DCSync for an alliance service account",
                pl.DataFrame({"account_id": [svc["account_id"]], "resource_id": [domain],
                              "right": ["DCSync"]}))  # fmt: skip

    # CN=System: AdminSDHolder (7) and a GPO linked to Warwickshire's OU (8)
    acl.obj(SYSTEM, "container")
    sdh = acl.obj(ADMIN_SD_HOLDER, "container")
    acl.ace(sdh, k_sdh["sid"], GA)
    b.plant_ids("cross-org-control-container", "control: AdminSDHolder",
                pl.DataFrame({"account_id": [k_sdh["account_id"]], "resource_id": [sdh],
                              "right": ["GenericAll"]}))  # fmt: skip
    acl.obj(POLICIES, "container")
    warks_ou = _object_id(WARKS.ou)
    gpo = acl.obj(GPO, "groupPolicyContainer", linked=[warks_ou])
    acl.ace(gpo, gsid[OWN_HELPDESK], GW)
    b.plant_ids("cross-org-control-gpo", "control: a GPO linked to the other force's OU",
                pl.DataFrame({"member_group_id": [gid[OWN_HELPDESK]], "resource_id": [gpo],
                              "group_id": [warks_ou], "right": ["GenericWrite"]}))  # fmt: skip

    # the forces' OUs; West Mercia's carries both ICT groups' reset right for its users (1)
    acl.obj(WARKS.ou, "organizationalUnit")
    acl.obj(f"OU=Groups,{WARKS.ou}", "organizationalUnit")
    wmp_ou = acl.obj(WMP.ou, "organizationalUnit")
    users_ou = acl.obj(f"OU=Users,{WMP.ou}", "organizationalUnit")
    helpdesks = (gsid[HELPDESK], gsid[OWN_HELPDESK])
    for sid in helpdesks:
        acl.ace(wmp_ou, sid, CR, OBJECT_ALLOW, CI | IO, ot=g.USER_FORCE_CHANGE, iot=g.USER)
        acl.ace(users_ou, sid, CR, OBJECT_ALLOW, CI | IO | ID, ot=g.USER_FORCE_CHANGE, iot=g.USER)
    users = people.filter(pl.col("dn").str.ends_with(f",OU=Users,{WMP.ou}"))
    acl.users(users, users_ou, helpdesks, explicit=(w_target["account_id"], k_reset["sid"]),
              deny=(w_deny["account_id"], helpdesks[0]))  # fmt: skip
    b.plant_ids("cross-org-control-container", "control: inherited OU delegation",
                pl.DataFrame({"member_group_id": [gid[HELPDESK]], "resource_id": [wmp_ou],
                              "right": ["ResetPassword"]}))  # fmt: skip
    b.plant_ids("cross-org-control-account", "control: delegated reset right",
                pl.DataFrame({"account_id": [k_reset["account_id"]],
                              "resource_id": [w_target["account_id"]],
                              "right": ["ResetPassword"]}))  # fmt: skip

    # Warwickshire's groups: one under GenericAll of a West Mercia group (4), one owned (6)
    controlled = acl.obj(gdn[CONTROLLED], "group", rid=gid[CONTROLLED], subject=gid[CONTROLLED])
    acl.ace(controlled, gsid[GROUP_HOLDER], GA)
    b.plant_ids("cross-org-control-group", "control: GenericAll on the other force's group",
                pl.DataFrame({"member_group_id": [gid[GROUP_HOLDER]], "group_id": [controlled],
                              "resource_id": [controlled], "right": ["GenericAll"]}))  # fmt: skip
    owned = acl.obj(gdn[OWNED], "group", rid=gid[OWNED], subject=gid[OWNED], owner=w_owner["sid"])
    b.plant_ids("cross-org-object-owner", "control: owned by the other force",
                pl.DataFrame({"account_id": [w_owner["account_id"]], "resource_id": [owned],
                              "right": ["Owner"]}))  # fmt: skip
    return acl.tables()
