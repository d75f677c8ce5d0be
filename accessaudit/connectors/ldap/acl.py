"""Security descriptors of Active Directory objects: the ``resources`` and ``aces`` tables.

One paged search over the domain (same connection, deadline and proof as the rest of the
collection) for the domain head, OUs, containers (AdminSDHolder among them), users, computers,
groups and group policy containers, asking for ``nTSecurityDescriptor`` with the
LDAP_SERVER_SD_FLAGS control at **0x05** (owner + DACL: [MS-ADTS] 3.1.1.3.4.1.11). Without the
control, or with ldap3's default 0x0F (which asks for the SACL too), an ordinary user gets the
entries *without* their descriptor and result success; with 0x05 Domain Users read them (the
owner and the DACL need READ_CONTROL only, which Authenticated Users hold by default).

An entry that still comes back without a descriptor (a deny of READ_CONTROL to the reader) is a
``resources`` row with ``readable`` false and makes the ``security-descriptors`` unit
incomplete, naming the objects: never "no entries". Parsing is :mod:`accessaudit.transport.secdesc`;
what the entries grant is decided by the analysis (``analysis.control``), not here.
"""

from __future__ import annotations

from typing import Final

import polars as pl
from ldap3.protocol.microsoft import security_descriptor_control

from accessaudit.connectors.ldap.decode import extended_dn, utf8
from accessaudit.connectors.ldap.search import Session
from accessaudit.model import ACES_SCHEMA, RESOURCES_SCHEMA, CollectionUnit, conform
from accessaudit.transport.secdesc import parse_many

#: owner (0x1) + DACL (0x4); the group (0x2) is not needed and the SACL (0x8) is refused
SD_FLAGS: Final = 0x05
UNIT: Final = "security-descriptors"
ACL_FILTER: Final = (
    "(|(objectClass=domainDNS)(objectClass=organizationalUnit)(objectClass=container)"
    "(objectClass=user)(objectClass=group)(objectClass=groupPolicyContainer))"
)
ACL_ATTRS: Final = ("nTSecurityDescriptor", "objectClass", "gPLink")
#: The classes whose objects are accounts or groups: their row's ``subject_id`` is their id.
SUBJECT_CLASSES: Final = (
    "user",
    "computer",
    "inetorgperson",
    "group",
    "msds-groupmanagedserviceaccount",
)
#: a DN's first RDN and the rest, split at the first comma that is not escaped
_PARENT_RE: Final = r"^(?:[^,\\]|\\.)*?,(.*)$"
_RDN_VALUE_RE: Final = r"^[^=]*=((?:[^,\\]|\\.)*)"
#: one gPLink entry: [LDAP://<dn>;<options>]
_GPLINK_RE: Final = r"\[LDAP://([^;\]]+);\d+\]"


def collect_acl(s: Session, source: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(resources, aces) of every object the filter reaches; appends the unit."""
    cols = s.paged(
        UNIT,
        ACL_FILTER,
        ACL_ATTRS,
        ad=True,
        extra_controls=security_descriptor_control(sdflags=SD_FLAGS),
    )
    raw = cols.first("nTSecurityDescriptor").to_list()
    heads, entries = parse_many(raw)
    guid, _, dn = extended_dn(pl.col("_ext"))
    base = pl.DataFrame(
        {
            "_ext": cols.dn,
            "classes": cols.lists("objectClass").list.eval(
                pl.element().cast(pl.String, strict=False)
            ),
            "gplink": utf8(cols.first("gPLink")),
        }
    ).with_columns(
        resource_id=guid,
        path=dn,
        object_class=pl.col("classes").list.last(),
    )
    base = base.with_columns(pl.col("classes").list.eval(pl.element().str.to_lowercase()))
    resources = _resources(base, heads, source)
    aces = entries.join(
        resources.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("i"), "resource_id"),
        on="i",
    ).select(
        source=pl.lit(source),
        resource_id="resource_id",
        seq="seq",
        ace_type="ace_type",
        flags="flags",
        mask="mask",
        object_type="object_type",
        inherited_object_type="inherited_object_type",
        trustee_sid="trustee",
    )
    _readable_unit(s, resources, heads)
    return conform(resources, RESOURCES_SCHEMA), conform(aces, ACES_SCHEMA)


def _resources(base: pl.DataFrame, heads: pl.DataFrame, source: str) -> pl.DataFrame:
    lower = pl.col("path").str.to_lowercase()
    df = base.with_columns(
        _lower=lower,
        _parent=lower.str.extract(_PARENT_RE, 1),
        name=pl.col("path").str.extract(_RDN_VALUE_RE, 1),
        subject_id=pl.when(
            pl.col("classes").list.eval(pl.element().is_in(list(SUBJECT_CLASSES))).list.any()
        )
        .then(pl.col("resource_id"))
        .otherwise(None),
        readable=heads.get_column("readable"),
        owner_sid=heads.get_column("owner_sid"),
    )
    ids = df.select(_parent="_lower", parent_id="resource_id")
    df = df.join(ids, on="_parent", how="left", maintain_order="left")
    # a group policy object is linked to the OUs and domains whose gPLink names its DN
    links = (
        df.select(
            linked="resource_id",
            _gpo=pl.col("gplink").str.to_lowercase().str.extract_all(_GPLINK_RE),
        )
        .explode("_gpo")
        .drop_nulls("_gpo")
        .with_columns(_gpo=pl.col("_gpo").str.extract(_GPLINK_RE, 1))
        .join(df.select(_gpo="_lower", resource_id="resource_id"), on="_gpo")
        .group_by("resource_id")
        .agg(linked_to=pl.col("linked").unique().sort())
    )
    df = df.join(links, on="resource_id", how="left", maintain_order="left")
    return df.select(
        source=pl.lit(source),
        resource_id="resource_id",
        family=pl.lit("ad-object"),
        object_class="object_class",
        name="name",
        path="path",
        parent_id="parent_id",
        subject_id="subject_id",
        owner_sid="owner_sid",
        readable="readable",
        linked_to=pl.col("linked_to").fill_null(pl.lit([], pl.List(pl.String))),
    )


def _readable_unit(s: Session, resources: pl.DataFrame, heads: pl.DataFrame) -> None:
    """The paged search proved the objects complete; this unit proves their descriptors."""
    bad = resources.with_columns(error=heads.get_column("error")).filter(~pl.col("readable"))
    if bad.is_empty():
        s.units.append(
            CollectionUnit(
                f"{UNIT}:readable",
                True,
                f"every descriptor of {resources.height} object(s) read (owner + DACL)",
                resources.height,
            )
        )
        return
    first = "; ".join(f"{p} ({e})" for p, e in bad.head(3).select("path", "error").iter_rows())
    more = f" and {bad.height - 3} more" if bad.height > 3 else ""
    s.units.append(
        CollectionUnit(
            f"{UNIT}:readable",
            False,
            f"{bad.height} of {resources.height} descriptor(s) not readable: {first}{more}",
            resources.height - bad.height,
        )
    )
