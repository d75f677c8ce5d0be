"""What the access control entries of AD objects grant: ``grants`` rows of control.

From the collected ``aces`` (every DACL entry as stored, in stored order) and ``resources``
(the objects, their class, parent and owner), this module derives three kinds of grant:

- **DELEGATION**: a right an ACE gives its trustee over the object, named as the issue and
  BloodHound name them: ``GenericAll``, ``GenericWrite``, ``WriteDacl``, ``WriteOwner``,
  ``AllExtendedRights``, ``ResetPassword`` (User-Force-Change-Password), ``AddMember`` (write
  ``member`` or its Membership property set), ``AddSelf`` (Self-Membership, the validated
  write), ``WriteKeyCredentialLink``, ``WriteRBCD`` (msDS-AllowedToActOnBehalfOfOtherIdentity
  or the User-Account-Restrictions set), ``WriteSPN``, ``WriteGPLink``, ``CreateUser`` /
  ``CreateGroup`` / ``CreateComputer`` (create-child), ``WriteAllProperties``,
  ``AllValidatedWrites``;
- **REPLICATION**: ``DCSync``, a trustee holding both DS-Replication-Get-Changes and
  -Get-Changes-All on a domain head (directly, or by GenericAll / all extended rights);
- **OBJECT_OWNER**: ``Owner``, the descriptor's owner, who may always rewrite the DACL (the
  owner implicitly holds READ_CONTROL and WRITE_DAC: [MS-DTYP] 2.5.3.2).

How entries are read ([MS-ADTS] 5.1.3; measured on Samba 4.17, research notes §1.3-1.4):

- **stored order**: an access check walks the DACL in the order it is stored and the first
  entry that decides a right wins. Samba keeps non-canonical orders, so a deny is honoured only
  when it comes *before* the allow it would cancel, and it cancels for the allow's trustee when
  its own trustee is that trustee, Everyone, Authenticated Users or a group the trustee is in
  (the nested expansion).
- **inheritance as stored on the child**: inherited entries are rewritten on each child by the
  DC; an inherit-only entry (IO) does not apply to the object it is on, every other one does.
  The class filter (``InheritedObjectType``) was applied by the DC when it wrote the child's
  copy, so it is read from the IO flag, not recomputed.
- **generic rights** are mapped (GA = 0xF01FF) before reading, so both forms count.
- **folding**: an inherited entry is reported once, on the container where it is set (the
  nearest ancestor holding the same entry explicitly), with ``reach`` = the objects it reaches
  below; an entry set on the object itself is reported there with ``reach`` null.
- **default trustees** are left out: SELF, CREATOR OWNER, SYSTEM, Enterprise Domain
  Controllers, the builtin operators and administrators, and the domain's protected groups
  (Domain Admins, Enterprise Admins, Domain Controllers, ...: held by the hosting force). They
  are what every AD grants its own administrators, never one force's reach into the other's.

Trustees become ``principal_id`` through the accounts' and groups' ``sid``; a SID no collected
object holds (another forest's, a deleted account's) is kept as the principal itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import polars as pl

from accessaudit.analysis.resources import attribute_resources
from accessaudit.config.organisations import Organisation
from accessaudit.model import (
    ACES_SCHEMA,
    GRANTS_SCHEMA,
    PRIVILEGED_BUILTIN_RIDS,
    PRIVILEGED_DOMAIN_RIDS,
    RESOURCES_SCHEMA,
    ResourceKind,
    conform,
    empty,
)
from accessaudit.transport import adschema as g
from accessaudit.transport import secdesc as sd

#: Well-known trustees that hold rights on every object by default ([MS-DTYP] 2.4.2.4).
DEFAULT_SIDS: Final = frozenset(
    {
        "S-1-3-0",  # CREATOR OWNER
        "S-1-5-10",  # SELF (principal self)
        "S-1-5-18",  # SYSTEM
        "S-1-5-9",  # Enterprise Domain Controllers
        "S-1-5-32-554",  # Pre-Windows 2000 Compatible Access
        "S-1-5-32-560",  # Windows Authorization Access Group
        "S-1-5-32-561",  # Terminal Server License Servers
        *(f"S-1-5-32-{rid}" for rid in PRIVILEGED_BUILTIN_RIDS),
    }
)
#: Domain RIDs of the default trustees: the protected groups plus the read-only DCs (498, 521),
#: Cert Publishers (517) and RAS and IAS Servers (553), which hold their rights by default.
DEFAULT_DOMAIN_RIDS: Final = frozenset({*PRIVILEGED_DOMAIN_RIDS, 498, 517, 521, 553})
#: Trustees every account's token holds: their deny entries apply to everyone.
EVERYONE_SIDS: Final = ("S-1-1-0", "S-1-5-11")

ACCOUNT_CLASSES: Final = (
    "user", "computer", "inetorgperson",
    "msds-groupmanagedserviceaccount", "msds-managedserviceaccount",
)  # fmt: skip
CONTAINER_CLASSES: Final = ("organizationalunit", "container", "domaindns", "builtindomain")
#: the mapped mask of GenericAll on a directory object
FULL: Final = 0xF01FF
#: bits that can give control (everything but reading and listing)
CONTROL_BITS: Final = (
    sd.WRITE_DAC | sd.WRITE_OWNER | sd.DS_WRITE_PROP | sd.DS_SELF | sd.DS_CONTROL_ACCESS
    | sd.DS_CREATE_CHILD | sd.GENERIC_ALL | sd.GENERIC_WRITE
)  # fmt: skip

#: (right, the rights it makes redundant when it survives): reported once, at the widest.
COVERS: Final[dict[str, tuple[str, ...]]] = {
    "GenericWrite": (
        "WriteAllProperties", "AllValidatedWrites", "AddMember", "AddSelf", "WriteSPN",
        "WriteKeyCredentialLink", "WriteRBCD", "WriteGPLink",
    ),
    "WriteAllProperties": (
        "AddMember", "WriteSPN", "WriteKeyCredentialLink", "WriteRBCD", "WriteGPLink",
    ),
    "AllValidatedWrites": ("AddSelf",),
    "AllExtendedRights": ("ResetPassword", "GetChanges", "GetChangesAll"),
}  # fmt: skip
DCSYNC_PARTS: Final = ("GetChanges", "GetChangesAll")
CONTROL_KINDS: Final = (
    ResourceKind.DELEGATION,
    ResourceKind.OBJECT_OWNER,
    ResourceKind.REPLICATION,
)


def is_default_trustee(sid: pl.Expr) -> pl.Expr:
    """True for the trustees every domain grants its own administration to (see module)."""
    rid = sid.str.extract(r"-(\d+)$", 1).cast(pl.Int64, strict=False)
    domain = sid.str.starts_with("S-1-5-21-") & rid.is_in(list(DEFAULT_DOMAIN_RIDS))
    return (sid.is_in(list(DEFAULT_SIDS)) | domain).fill_null(False)


def _rights(m: pl.Expr, ot: pl.Expr, cls: pl.Expr) -> dict[str, pl.Expr]:
    """Each right by name: the condition under which an entry (mapped mask ``m``, object type
    ``ot``, on an object of class ``cls``) gives it."""

    def has(bit: int) -> pl.Expr:
        return (m & bit) != 0

    anyot = ot.is_null()

    def on(*guids: str) -> pl.Expr:
        return anyot | ot.is_in(list(guids))

    account = cls.is_in(list(ACCOUNT_CLASSES))
    group = cls == "group"
    container = cls.is_in(list(CONTAINER_CLASSES))
    head = cls == "domaindns"
    wp, sw, cr, cc = (has(b) for b in (sd.DS_WRITE_PROP, sd.DS_SELF, sd.DS_CONTROL_ACCESS,
                                       sd.DS_CREATE_CHILD))  # fmt: skip
    return {
        "GenericAll": ((m & FULL) == FULL) & anyot,
        "GenericWrite": wp & sw & anyot,
        "WriteDacl": has(sd.WRITE_DAC),
        "WriteOwner": has(sd.WRITE_OWNER),
        "WriteAllProperties": wp & anyot,
        "AllValidatedWrites": sw & anyot,
        "AllExtendedRights": cr & anyot,
        "ResetPassword": account & cr & on(g.USER_FORCE_CHANGE),
        "AddMember": group & wp & on(g.MEMBER, g.MEMBERSHIP_SET),
        "AddSelf": group & sw & on(g.MEMBER),
        "WriteKeyCredentialLink": account & wp & on(g.KEY_CREDENTIAL_LINK),
        "WriteRBCD": account & wp & on(g.RBCD, g.ACCOUNT_RESTRICTIONS_SET),
        "WriteSPN": account & ((wp & on(g.SPN, g.PUBLIC_INFORMATION_SET)) | (sw & on(g.SPN))),
        "WriteGPLink": (cls.is_in(["organizationalunit", "domaindns"])) & wp & on(g.GPLINK),
        "CreateUser": container & cc & on(g.USER),
        "CreateGroup": container & cc & on(g.GROUP),
        "CreateComputer": container & cc & on(g.COMPUTER),
        "GetChanges": head & cr & on(g.GET_CHANGES),
        "GetChangesAll": head & cr & on(g.GET_CHANGES_ALL),
    }


RIGHT_NAMES: Final = tuple(_rights(pl.lit(0), pl.lit(None), pl.lit("")).keys())


def _atoms(entries: pl.LazyFrame) -> pl.LazyFrame:
    """One row per (entry, right it gives): the entries' rights, before deny and folding."""
    m, ot, cls = pl.col("m"), pl.col("object_type"), pl.col("cls")
    rights = _rights(m, ot, cls)
    flags = pl.concat_list(
        [pl.when(cond).then(pl.lit(name)).otherwise(pl.lit(None, pl.String))
         for name, cond in rights.items()]
    ).list.drop_nulls()  # fmt: skip
    return entries.with_columns(right=flags).explode("right").drop_nulls("right")


def _effective(aces: pl.DataFrame, resources: pl.DataFrame) -> pl.LazyFrame:
    """Entries that apply to the object they are stored on and can give control."""
    classes = resources.lazy().select("resource_id", cls=pl.col("object_class").str.to_lowercase())
    allow = pl.col("ace_type").is_in(list(sd.ALLOW_TYPES))
    deny = pl.col("ace_type").is_in(list(sd.DENY_TYPES))
    # CONTROL_BITS holds the generic bits that map to control (GA, GW), so the raw mask is
    # filtered before anything is mapped: most stored entries only read
    entries = (
        aces.lazy()
        .filter(((pl.col("flags") & sd.INHERIT_ONLY) == 0) & ((pl.col("mask") & CONTROL_BITS) != 0))
        .filter(allow | deny)
    )
    # a default trustee's allow is left out; every deny is kept (Everyone's applies to all).
    # Decided once per distinct trustee: a domain has few, on millions of entries
    defaults = (
        entries.select("trustee_sid")
        .unique()
        .filter(is_default_trustee(pl.col("trustee_sid")))
        .with_columns(_default=pl.lit(True))
    )
    return (
        entries.with_columns(deny=deny)
        .join(defaults, on="trustee_sid", how="left")
        .filter(pl.col("deny") | pl.col("_default").is_null())
        .drop("_default")
        .with_columns(m=sd.DS_MAPPING.expr(pl.col("mask")))
        .join(classes, on="resource_id")
        .with_columns(inherited=(pl.col("flags") & sd.INHERITED) != 0)
    )


def _tokens(
    trustees: pl.LazyFrame,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    effective: pl.DataFrame | None,
    closure: pl.DataFrame | None,
) -> pl.LazyFrame:
    """(trustee_sid, via_sid): the SIDs whose deny entries apply to each trustee."""
    own = trustees.select("trustee_sid", via_sid="trustee_sid")
    everyone = trustees.join(pl.LazyFrame({"via_sid": list(EVERYONE_SIDS)}), how="cross").select(
        "trustee_sid", "via_sid"
    )
    parts = [own, everyone]
    gsid = groups.lazy().select("group_id", via_sid="sid").drop_nulls()
    if effective is not None and not effective.is_empty():
        acc = accounts.lazy().select("account_id", trustee_sid="sid").drop_nulls()
        eff = effective.lazy().select(
            pl.col("account_id").cast(pl.String), pl.col("group_id").cast(pl.String)
        )
        parts.append(
            trustees.join(acc, on="trustee_sid")
            .join(eff, on="account_id")
            .join(gsid, on="group_id")
            .select("trustee_sid", "via_sid")
        )
    if closure is not None and not closure.is_empty():
        grp = groups.lazy().select("group_id", trustee_sid="sid").drop_nulls()
        anc = closure.lazy().select("group_id", ancestor="ancestor_id")
        parts.append(
            trustees.join(grp, on="trustee_sid")
            .join(anc, on="group_id")
            .join(gsid.rename({"group_id": "ancestor"}), on="ancestor")
            .select("trustee_sid", "via_sid")
        )
    return pl.concat(parts).unique()


def _surviving(
    atoms: pl.LazyFrame,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    effective: pl.DataFrame | None,
    closure: pl.DataFrame | None,
) -> pl.LazyFrame:
    """The allow rights no earlier deny entry cancels (stored order, per object and right;
    GenericAll and GenericWrite fall with any part of them denied)."""
    allows = atoms.filter(~pl.col("deny"))
    denies = atoms.filter(pl.col("deny")).select(
        "resource_id", via_sid="trustee_sid", d_seq="seq", d_right="right"
    )
    tokens = _tokens(allows.select("trustee_sid").unique(), accounts, groups, effective, closure)
    candidates = (
        allows.select("resource_id", "trustee_sid", "seq", "right")
        .join(tokens, on="trustee_sid")
        .join(denies, on=["resource_id", "via_sid"])
        .filter(pl.col("d_seq") < pl.col("seq"))
    )
    right, denied = pl.col("right"), pl.col("d_right")
    # a deny entry gives the narrow rights of its wide ones too (see _rights), so a wide allow
    # falls with any part of it denied, a narrow one with its own name
    cancels = (denied == right) | (right == "GenericAll")
    for wide, narrow in COVERS.items():
        cancels = cancels | ((right == wide) & denied.is_in(list(narrow)))
    cancelled = (
        candidates.filter(cancels).select("resource_id", "trustee_sid", "seq", "right").unique()
    )
    return allows.join(cancelled, on=["resource_id", "trustee_sid", "seq", "right"], how="anti")


def _ancestors(resources: pl.DataFrame, of: pl.DataFrame, max_depth: int = 64) -> pl.DataFrame:
    """(resource_id, ancestor_id, depth) for the objects in ``of`` (depth 1 = parent)."""
    parent = resources.select("resource_id", ancestor_id="parent_id").drop_nulls()
    level = of.select("resource_id").unique().join(parent, on="resource_id")
    out = [level.with_columns(depth=pl.lit(1, pl.Int32))]
    for depth in range(2, max_depth + 1):
        level = level.join(
            parent.rename({"resource_id": "ancestor_id", "ancestor_id": "next"}),
            on="ancestor_id",
        ).select("resource_id", ancestor_id="next")
        if level.is_empty():
            break
        out.append(level.with_columns(depth=pl.lit(depth, pl.Int32)))
    return pl.concat(out)


def _fold(kept: pl.DataFrame, aces: pl.DataFrame, resources: pl.DataFrame) -> pl.DataFrame:
    """Inherited rights onto the container where their entry is set, with ``reach``."""
    key = ["trustee_sid", "m", "_ot"]  # the object type with "" for none: nulls never join
    kept = kept.with_columns(_ot=pl.col("object_type").fill_null(""))
    inherited = kept.filter(pl.col("inherited"))
    direct = kept.filter(~pl.col("inherited")).select(
        "resource_id", "trustee_sid", "right", inherited=pl.lit(False), reach=pl.lit(None, pl.Int64)
    )
    if inherited.is_empty():
        return direct
    explicit = (
        aces.lazy()
        .filter(
            ((pl.col("flags") & sd.INHERITED) == 0)
            & ((pl.col("flags") & sd.CONTAINER_INHERIT) != 0)
            & pl.col("ace_type").is_in(list(sd.ALLOW_TYPES))
        )
        .with_columns(m=sd.DS_MAPPING.expr(pl.col("mask")), _ot=pl.col("object_type").fill_null(""))
        .select(*key, ancestor_id="resource_id")
        .unique()
        .collect()
    )
    ancestors = _ancestors(resources, inherited)
    origin = (
        inherited.select("resource_id", *key)
        .unique()
        .join(ancestors, on="resource_id")
        .join(explicit, on=["ancestor_id", *key])
        .sort("depth")
        .unique(["resource_id", *key], keep="first")
        .select("resource_id", *key, origin="ancestor_id")
    )
    placed = inherited.join(origin, on=["resource_id", *key], how="left")
    folded = (
        placed.filter(pl.col("origin").is_not_null())
        .group_by("origin", "trustee_sid", "right")
        .agg(reach=pl.col("resource_id").n_unique().cast(pl.Int64))
        .select(
            resource_id="origin",
            trustee_sid="trustee_sid",
            right="right",
            inherited=pl.lit(True),
            reach="reach",
        )
    )
    unplaced = placed.filter(pl.col("origin").is_null()).select(
        "resource_id", "trustee_sid", "right", inherited=pl.lit(True), reach=pl.lit(None, pl.Int64)
    )
    return pl.concat([direct, folded, unplaced], how="vertical_relaxed")


def _widest(rows: pl.DataFrame) -> pl.DataFrame:
    """Drop a right another surviving right of the same trustee and object already covers."""
    keys = ["resource_id", "trustee_sid", "inherited"]
    held = rows.group_by(keys).agg(_held=pl.col("right"))
    rows = rows.join(held, on=keys)
    covered = pl.lit(False)
    every = [r for r in RIGHT_NAMES if r != "GenericAll"]
    covered = covered | (pl.col("_held").list.contains("GenericAll") & pl.col("right").is_in(every))
    for wide, narrow in COVERS.items():
        covered = covered | (pl.col("_held").list.contains(wide) & pl.col("right").is_in(narrow))
    return rows.filter(~covered).drop("_held")


def _principals(accounts: pl.DataFrame, groups: pl.DataFrame) -> pl.DataFrame:
    return (
        pl.concat(
            [
                accounts.select(trustee_sid="sid", principal_id="account_id"),
                groups.select(trustee_sid="sid", principal_id="group_id"),
            ]
        )
        .drop_nulls("trustee_sid")
        .unique("trustee_sid", keep="first")
    )


def control_grants(
    aces: pl.DataFrame,
    resources: pl.DataFrame,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    *,
    effective: pl.DataFrame | None = None,
    closure: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """``grants`` rows (GRANTS_SCHEMA plus ``source``) of delegation, replication and owners."""
    ad = resources.filter(pl.col("family") == "ad-object")
    if ad.is_empty():
        return empty(GRANTS_SCHEMA)
    atoms = _atoms(_effective(aces, ad))
    kept = _surviving(atoms, accounts, groups, effective, closure).collect()
    replication = (
        kept.filter(pl.col("right").is_in(list(DCSYNC_PARTS)))
        .group_by("resource_id", "trustee_sid")
        .agg(n=pl.col("right").n_unique(), inherited=pl.col("inherited").all())
        .filter(pl.col("n") == len(DCSYNC_PARTS))
        .select(
            "resource_id",
            "trustee_sid",
            right=pl.lit("DCSync"),
            inherited="inherited",
            reach=pl.lit(None, pl.Int64),
            kind=pl.lit(ResourceKind.REPLICATION.value),
        )
    )
    # the widest right per object first, then folded: on an OU, GenericAll over its users does
    # not hide AddMember over its groups
    delegation = _fold(
        _widest(kept.filter(~pl.col("right").is_in(list(DCSYNC_PARTS)))), aces, ad
    ).with_columns(kind=pl.lit(ResourceKind.DELEGATION.value))
    owner_sids = ad.select("owner_sid").drop_nulls().unique()
    others = owner_sids.filter(~is_default_trustee(pl.col("owner_sid")))
    owners = ad.join(others, on="owner_sid", how="semi").select(
        "resource_id",
        trustee_sid="owner_sid",
        right=pl.lit("Owner"),
        inherited=pl.lit(False),
        reach=pl.lit(None, pl.Int64),
        kind=pl.lit(ResourceKind.OBJECT_OWNER.value),
    )
    denied = (
        atoms.filter(pl.col("deny") & ~is_default_trustee(pl.col("trustee_sid")))
        .select("resource_id", "trustee_sid", "right", "inherited")
        .unique()
        .collect()
        .with_columns(reach=pl.lit(None, pl.Int64), kind=pl.lit(ResourceKind.DELEGATION.value))
    )
    rows = pl.concat(
        [
            replication.with_columns(deny=pl.lit(False)),
            delegation.with_columns(deny=pl.lit(False)),
            owners.with_columns(deny=pl.lit(False)),
            denied.with_columns(deny=pl.lit(True)),
        ],
        how="diagonal_relaxed",
    )
    out = (
        rows.join(ad.select("resource_id", "source"), on="resource_id")
        .join(_principals(accounts, groups), on="trustee_sid", how="left")
        .select(
            "source",
            principal_id=pl.coalesce("principal_id", "trustee_sid"),
            resource_id="resource_id",
            resource_kind="kind",
            right="right",
            deny="deny",
            inherited="inherited",
            reach="reach",
        )
        .unique()
        .sort("resource_id", "principal_id", "resource_kind", "right", "deny", "inherited")
    )
    return conform(out, GRANTS_SCHEMA)


def derive_control(
    tables: Mapping[str, pl.DataFrame],
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    *,
    effective: pl.DataFrame,
    closure: pl.DataFrame,
    organisations: Sequence[Organisation],
    precedence: Sequence[str],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(attributed resources, grants with the control grants of every AD object).

    The collected grants of kinds this module derives are replaced, not added to, so a snapshot
    analysed twice (a stored run's tables) has each grant once."""
    resources = tables.get("resources")
    resources = empty(RESOURCES_SCHEMA) if resources is None else resources
    aces = tables.get("aces")
    aces = empty(ACES_SCHEMA) if aces is None else aces
    attributed = attribute_resources(resources, accounts, groups, organisations, precedence)
    derived = control_grants(
        aces, resources, accounts, groups, effective=effective, closure=closure
    )
    kinds = [k.value for k in CONTROL_KINDS]
    ad_sources = resources.filter(pl.col("family") == "ad-object").get_column("source").unique()
    kept = tables["grants"].filter(
        ~(pl.col("resource_kind").is_in(kinds) & pl.col("source").is_in(ad_sources.implode()))
    )
    return attributed, pl.concat([kept, derived], how="vertical_relaxed")
