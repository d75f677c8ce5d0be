"""analysis.control and analysis.resources on tables built here, the truth written beside them."""

from __future__ import annotations

from typing import Any

import polars as pl

from accessaudit.analysis.control import control_grants
from accessaudit.analysis.resources import attribute_resources
from accessaudit.config.organisations import Matchers, Organisation
from accessaudit.model import ACCOUNTS_SCHEMA, ACES_SCHEMA, GROUPS_SCHEMA, RESOURCES_SCHEMA
from accessaudit.transport import adschema as g

DOM = "S-1-5-21-1-2-3"
T = f"{DOM}-1105"  # trustee account "t"
U = f"{DOM}-1106"  # another account "u"
G = f"{DOM}-1200"  # group "grp" (t is a member)
FOREIGN = "S-1-5-21-9-9-9-1500"
GA, CR, WP, WD = 0x10000000, 0x100, 0x20, 0x40000


def _frame(rows: list[dict[str, Any]], schema: pl.Schema) -> pl.DataFrame:
    return pl.DataFrame([{"source": "ad:x", **r} for r in rows], schema=schema, strict=False)


def _accounts() -> pl.DataFrame:
    return _frame([{"account_id": "t", "sid": T}, {"account_id": "u", "sid": U}], ACCOUNTS_SCHEMA)


def _groups() -> pl.DataFrame:
    return _frame([{"group_id": "grp", "sid": G}], GROUPS_SCHEMA)


def _res(
    rid: str, cls: str, parent: str | None = None, owner: str = f"{DOM}-512"
) -> dict[str, Any]:
    return {"resource_id": rid, "family": "ad-object", "object_class": cls, "name": rid,
            "path": f"CN={rid},DC=x", "parent_id": parent, "owner_sid": owner,
            "readable": True}  # fmt: skip


def _ace(rid: str, seq: int, trustee: str, mask: int, ace_type: int = 0, flags: int = 0,
         ot: str | None = None, iot: str | None = None) -> dict[str, Any]:  # fmt: skip
    return {"resource_id": rid, "seq": seq, "ace_type": ace_type, "flags": flags, "mask": mask,
            "object_type": ot, "inherited_object_type": iot, "trustee_sid": trustee}  # fmt: skip


def _grants(
    resources: list[dict[str, Any]],
    aces: list[dict[str, Any]],
    effective: pl.DataFrame | None = None,
) -> set[tuple[Any, ...]]:
    out = control_grants(
        _frame(aces, ACES_SCHEMA),
        _frame(resources, RESOURCES_SCHEMA),
        _accounts(),
        _groups(),
        effective=effective,
    )
    return {
        (
            r["principal_id"],
            r["resource_id"],
            r["resource_kind"],
            r["right"],
            r["deny"],
            r["inherited"],
            r["reach"],
        )
        for r in out.iter_rows(named=True)
    }


def test_explicit_rights_named_at_their_widest() -> None:
    resources = [_res("alice", "user"), _res("grp1", "group"), _res("pc", "computer")]
    aces = [
        _ace("alice", 0, T, CR, ace_type=5, ot=g.USER_FORCE_CHANGE),  # reset password
        _ace("alice", 1, T, WP, ace_type=5, ot=g.KEY_CREDENTIAL_LINK),
        _ace("grp1", 0, T, GA),  # raw generic: mapped to 0xF01FF
        _ace("grp1", 1, T, WP, ace_type=5, ot=g.MEMBER),  # covered by GenericAll
        _ace("pc", 0, FOREIGN, 0xF01FF & ~0x100),  # everything but extended rights
        _ace("pc", 1, "S-1-5-18", GA),  # SYSTEM: a default trustee
        _ace("pc", 2, f"{DOM}-512", GA),  # Domain Admins: a default trustee
        _ace("pc", 3, "S-1-5-11", 0x20094),  # Authenticated Users: read only
    ]
    assert _grants(resources, aces) == {
        ("t", "alice", "delegation", "ResetPassword", False, False, None),
        ("t", "alice", "delegation", "WriteKeyCredentialLink", False, False, None),
        ("t", "grp1", "delegation", "GenericAll", False, False, None),
        (FOREIGN, "pc", "delegation", "GenericWrite", False, False, None),
        (FOREIGN, "pc", "delegation", "WriteDacl", False, False, None),
        (FOREIGN, "pc", "delegation", "WriteOwner", False, False, None),
    }


def test_deny_before_allow_cancels_for_the_trustees_token_and_after_it_does_not() -> None:
    resources = [_res("bob", "user"), _res("carol", "user"), _res("dave", "user")]
    effective = pl.DataFrame({"account_id": ["t"], "group_id": ["grp"]})
    reset = g.USER_FORCE_CHANGE
    aces = [
        # bob: a deny to a group t is in, stored before t's allow: cancelled
        _ace("bob", 0, G, CR, ace_type=6, ot=reset),
        _ace("bob", 1, T, CR, ace_type=5, ot=reset),
        # carol: the allow is stored first (Samba keeps that order): the allow wins
        _ace("carol", 0, T, CR, ace_type=5, ot=reset),
        _ace("carol", 1, T, CR, ace_type=6, ot=reset),
        # dave: a deny of WP on one attribute takes GenericAll's name, not its other parts
        _ace("dave", 0, "S-1-1-0", WP, ace_type=6, ot=g.KEY_CREDENTIAL_LINK),
        _ace("dave", 1, U, GA),
    ]
    u_on_dave = ("WriteDacl", "WriteOwner", "AllValidatedWrites", "AllExtendedRights",
                 "WriteRBCD", "WriteSPN")  # fmt: skip
    assert _grants(resources, aces, effective) == {
        ("grp", "bob", "delegation", "ResetPassword", True, False, None),
        ("t", "carol", "delegation", "ResetPassword", False, False, None),
        ("t", "carol", "delegation", "ResetPassword", True, False, None),
        ("S-1-1-0", "dave", "delegation", "WriteKeyCredentialLink", True, False, None),
        *(("u", "dave", "delegation", r, False, False, None) for r in u_on_dave),
    }


def test_inherited_entries_fold_onto_the_ou_where_they_are_set() -> None:
    """As Samba stores them: the OU keeps its inherit-only entries (raw GA), each child holds
    the effective copy (user: A;ID;0xF01FF, group: OA;CIID;WP;member) or an inherit-only one."""
    resources = [
        _res("ou", "organizationalUnit"),
        _res("sub", "organizationalUnit", parent="ou"),
        _res("u1", "user", parent="ou"),
        _res("u2", "user", parent="sub"),
        _res("g1", "group", parent="sub"),
    ]
    io, ci, inh = 0x08, 0x02, 0x10
    aces = [
        _ace("ou", 0, T, GA, ace_type=5, flags=ci | io, iot=g.USER),
        _ace("ou", 1, T, WP, ace_type=5, flags=ci | io, ot=g.MEMBER, iot=g.GROUP),
        _ace("sub", 0, T, GA, ace_type=5, flags=ci | io | inh, iot=g.USER),
        _ace("sub", 1, T, WP, ace_type=5, flags=ci | io | inh, ot=g.MEMBER, iot=g.GROUP),
        _ace("u1", 0, T, 0xF01FF, flags=inh),
        _ace("u1", 1, T, GA, ace_type=5, flags=ci | io | inh, iot=g.USER),
        _ace("u2", 0, T, 0xF01FF, flags=inh),
        _ace("g1", 0, T, WP, ace_type=5, flags=ci | inh, ot=g.MEMBER, iot=g.GROUP),
        _ace("g1", 1, T, GA, ace_type=5, flags=ci | io | inh, iot=g.USER),
    ]
    assert _grants(resources, aces) == {
        ("t", "ou", "delegation", "GenericAll", False, True, 2),
        ("t", "ou", "delegation", "AddMember", False, True, 1),
    }


def test_dcsync_needs_both_rights_on_the_domain_head() -> None:
    resources = [_res("dom", "domainDNS"), _res("dom2", "domainDNS")]
    aces = [
        _ace("dom", 0, T, CR, ace_type=5, ot=g.GET_CHANGES),
        _ace("dom", 1, T, CR, ace_type=5, ot=g.GET_CHANGES_ALL),
        _ace("dom", 2, U, CR, ace_type=5, ot=g.GET_CHANGES),  # half the pair
        _ace("dom", 3, "S-1-5-9", CR, ace_type=5, ot=g.GET_CHANGES_ALL),  # Enterprise DCs
        _ace("dom2", 0, G, CR),  # all extended rights: both
    ]
    assert _grants(resources, aces) == {
        ("t", "dom", "replication", "DCSync", False, False, None),
        ("grp", "dom2", "replication", "DCSync", False, False, None),
        ("grp", "dom2", "delegation", "AllExtendedRights", False, False, None),
    }


def test_owners_other_than_the_domains_administrators() -> None:
    resources = [
        _res("a", "user", owner=U),
        _res("b", "group", owner=f"{DOM}-512"),  # Domain Admins
        _res("c", "group", owner="S-1-5-32-544"),  # Administrators
        _res("d", "organizationalUnit", owner=FOREIGN),
    ]
    assert _grants(resources, []) == {
        ("u", "a", "object-owner", "Owner", False, False, None),
        (FOREIGN, "d", "object-owner", "Owner", False, False, None),
    }


def test_resources_attributed_by_subject_then_ou_then_path_prefix() -> None:
    orgs = [
        Organisation(
            id="wmp", name="W", match=Matchers(ou=["OU=W,DC=x"], path_prefix=["\\\\fs1\\wmp$"])
        ),
        Organisation(id="warks", name="K", match=Matchers(ou=["OU=K,DC=x"])),
    ]
    resources = _frame(
        [
            {"resource_id": "r1", "path": "CN=a,OU=K,DC=x", "subject_id": "acc-w"},
            {"resource_id": "r2", "path": "CN=b,OU=K,DC=x", "subject_id": "acc-x"},
            {"resource_id": "r3", "path": "\\\\FS1\\WMP$\\case"},
            {"resource_id": "r4", "path": "CN=c,DC=x"},
            {"resource_id": "r5", "path": "CN=d,OU=W,DC=x", "subject_id": "grp-k"},
        ],
        RESOURCES_SCHEMA,
    )
    accounts = pl.DataFrame({"account_id": ["acc-w", "acc-x"], "org": ["wmp", "unattributed"]})
    groups = pl.DataFrame({"group_id": ["grp-k"], "org": ["warks"]})
    got = attribute_resources(resources, accounts, groups, orgs, ["ids", "ou", "path_prefix"])
    assert got.select("resource_id", "org", "org_evidence", "org_conflict").rows() == [
        ("r1", "wmp", ["subject:wmp"], False),
        ("r2", "warks", ["ou:warks"], False),
        ("r3", "wmp", ["path_prefix:wmp"], False),
        ("r4", "unattributed", [], False),
        ("r5", "warks", ["subject:warks"], False),
    ]
