"""Control over AD objects: who holds which right over which object, and across which line.

Built from the control grants (``grants`` rows of kind delegation, object-owner and
replication, derived by :mod:`accessaudit.analysis.control`) and the attributed ``resources``
(each AD object with its organisation). One row per (holder, object, kind of grant), the rights
named together; a group holder carries the number of accounts that hold the rights through it
(its effective members). An object no organisation claims that is part of the domain itself
(the domain head, anything under CN=System such as AdminSDHolder, CN=Builtin) belongs to the
organisation declared to host the directory.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from accessaudit.model import RESOURCES_SCHEMA, ResourceKind

CONTROL_KINDS: Final = (
    ResourceKind.DELEGATION.value,
    ResourceKind.OBJECT_OWNER.value,
    ResourceKind.REPLICATION.value,
)
CONTAINER_CLASSES: Final = ("organizationalUnit", "container", "domainDNS", "builtinDomain")
#: The attributed resources' columns (the collected ones plus org, org_evidence, org_conflict).
ATTRIBUTED_RESOURCES: Final = pl.Schema(
    {
        **RESOURCES_SCHEMA,
        "org": pl.String(),
        "org_evidence": pl.List(pl.String()),
        "org_conflict": pl.Boolean(),
    }
)
_SPECIAL = ("shared", "unattributed")


def _real(col: pl.Expr) -> pl.Expr:
    return (col.is_not_null() & ~col.is_in(list(_SPECIAL))).fill_null(False)


def resources_view(resources: pl.LazyFrame, hosts: pl.LazyFrame) -> pl.LazyFrame:
    """The attributed resources, the domain's own objects given to its declared host."""
    path = pl.col("path").str.to_lowercase()
    domain_own = (pl.col("object_class") == "domainDNS") | path.str.contains(
        r"(^|,)cn=(system|builtin),dc="
    )
    return (
        resources.join(hosts.select("source", "host_org"), on="source", how="left")
        .with_columns(
            org=pl.when(~_real(pl.col("org")) & domain_own & pl.col("host_org").is_not_null())
            .then(pl.col("host_org"))
            .otherwise(pl.col("org"))
        )
        .drop("host_org")
        .with_columns(real_org=_real(pl.col("org")))
    )


def control(
    grants: pl.LazyFrame,
    resources: pl.LazyFrame,
    principals: pl.LazyFrame,
    eff: pl.LazyFrame,
) -> pl.LazyFrame:
    """One row per (holder, object, resource_kind): see the catalogue."""
    held = grants.filter(
        pl.col("resource_kind").is_in(list(CONTROL_KINDS)) & ~pl.col("deny").fill_null(False)
    )
    rows = held.group_by("principal_id", "resource_id", "resource_kind").agg(
        rights=pl.col("right").unique().sort().str.join(", "),
        inherited=pl.col("inherited").fill_null(False).all(),
        reach=pl.col("reach").fill_null(1).max(),
    )
    members = (
        eff.group_by("group_id")
        .agg(members=pl.col("account_id").n_unique().cast(pl.Int64))
        .select(pl.col("group_id").cast(pl.String).alias("principal_id"), "members")
    )
    subject_grants = (
        grants.group_by("principal_id")
        .agg(subject_grants=pl.len().cast(pl.Int64))
        .rename({"principal_id": "subject_id"})
    )
    res = resources.select(
        "resource_id",
        "object_class",
        "subject_id",
        "linked_to",
        resource_name="name",
        resource_path="path",
        resource_org="org",
        resource_real="real_org",
    )
    subject_type = principals.select(subject_id="principal_id", subject_type="principal_type")
    return (
        rows.join(res, on="resource_id")
        .join(principals, on="principal_id", how="left")
        .join(members, on="principal_id", how="left")
        .join(subject_type, on="subject_id", how="left")
        .join(subject_grants, on="subject_id", how="left")
        .with_columns(
            principal_type=pl.col("principal_type").fill_null("sid"),
            principal_real=pl.col("principal_real").fill_null(False),
            members=pl.when(pl.col("principal_type") == "group").then(
                pl.col("members").fill_null(0)
            ),
            subject_grants=pl.col("subject_grants").fill_null(0),
            container=pl.col("object_class").is_in(list(CONTAINER_CLASSES)),
        )
        .with_columns(
            cross=pl.col("principal_real")
            & pl.col("resource_real")
            & (pl.col("principal_org") != pl.col("resource_org")).fill_null(False)
        )
        .select(
            "principal_id",
            "principal_type",
            "principal_org",
            "principal_real",
            "members",
            "resource_id",
            "resource_kind",
            "object_class",
            "resource_name",
            "resource_path",
            "resource_org",
            "resource_real",
            "container",
            "subject_id",
            "subject_type",
            "subject_grants",
            "rights",
            "inherited",
            "reach",
            "linked_to",
            "cross",
        )
    )


def gpo_control(control_rows: pl.LazyFrame, resources: pl.LazyFrame) -> pl.LazyFrame:
    """Control over group policy objects, one row per (holder, GPO, OU or domain it is linked
    to), with the linked object's organisation."""
    linked = resources.select(
        linked_id="resource_id",
        linked_name="name",
        linked_path="path",
        linked_org="org",
        linked_real="real_org",
    )
    return (
        control_rows.filter(pl.col("object_class") == "groupPolicyContainer")
        .explode("linked_to")
        .rename({"linked_to": "linked_id"})
        .drop_nulls("linked_id")
        .join(linked, on="linked_id")
        .with_columns(
            cross=pl.col("principal_real")
            & pl.col("linked_real")
            & (pl.col("principal_org") != pl.col("linked_org")).fill_null(False)
        )
        .select(
            "principal_id",
            "principal_type",
            "principal_org",
            "members",
            "resource_id",
            "resource_kind",
            "resource_name",
            "rights",
            "linked_id",
            "linked_name",
            "linked_path",
            "linked_org",
            "cross",
        )
    )


def control_views(
    grants: pl.LazyFrame,
    resources: pl.DataFrame | None,
    hosts: pl.LazyFrame,
    principals: pl.LazyFrame,
    eff: pl.LazyFrame,
) -> dict[str, pl.LazyFrame]:
    """The control views by name: ``resources``, ``control``, ``control_gpo``."""
    if resources is None:
        resources = pl.DataFrame(schema=ATTRIBUTED_RESOURCES)
    elif "org" not in resources.columns:  # a run stored before resources were attributed
        resources = resources.with_columns(
            org=pl.lit("unattributed"),
            org_evidence=pl.lit([], pl.List(pl.String)),
            org_conflict=pl.lit(False),
        )
    res = resources_view(resources.lazy(), hosts)
    rows = control(grants, res, principals, eff)
    return {"resources": res, "control": rows, "control_gpo": gpo_control(rows, res)}
