"""Foreign views: the SIDs no collected object holds and the groups they reach, and the trusts of
each collected domain with the organisation on the other side."""

from __future__ import annotations

import polars as pl

from accessaudit.engine.views.directory import real, unique_top
from accessaudit.model import TRUSTS_SCHEMA, MemberKind

#: The derived description of each unresolved foreign SID (analysis.foreign.FOREIGN_SCHEMA; the
#: engine does not import the analysis, so the schema is restated here and checked by a test).
FOREIGN_SCHEMA = pl.Schema(
    {
        "sid": pl.String(),
        "domain_sid": pl.String(),
        "well_known": pl.String(),
        "everyone": pl.Boolean(),
        "org": pl.String(),
        "org_evidence": pl.List(pl.String()),
    }
)

#: Domain SIDs attributed by the ``domain_sid`` matcher.
DOMAINS_SCHEMA = pl.Schema({"domain_sid": pl.String(), "org": pl.String()})


def foreign_access(
    mem: pl.LazyFrame, closure: pl.LazyFrame, grp: pl.LazyFrame, foreign: pl.LazyFrame
) -> pl.LazyFrame:
    """Every group an unresolved foreign SID reaches: directly (depth 0) and through the groups
    its direct group is nested in, with the SID's description and both sides' organisations."""
    direct = mem.filter(pl.col("member_kind") == MemberKind.FOREIGN.value).select(
        sid="member_id", via_group_id="group_id"
    )
    up = pl.concat(
        [
            direct.select(
                "sid", "via_group_id", group_id="via_group_id", depth=pl.lit(0, pl.Int32)
            ),
            direct.join(
                closure.select(via_group_id="group_id", group_id="ancestor_id", depth="depth"),
                on="via_group_id",
            ).select("sid", "via_group_id", "group_id", pl.col("depth").cast(pl.Int32)),
        ]
    )
    reached = (
        up.sort("depth", "via_group_id")
        .unique(["sid", "group_id"], keep="first", maintain_order=True)
        .join(
            grp.select(
                "group_id",
                group_org="org",
                group_real="real_org",
                group_privileged="privileged",
                group_scope="scope",
                group_source="source",
            ),
            on="group_id",
        )
    )
    return (
        reached.join(
            foreign.select(
                "sid",
                "domain_sid",
                "well_known",
                "everyone",
                principal_org="org",
                principal_evidence="org_evidence",
            ),
            on="sid",
            how="left",
        )
        .with_columns(
            principal_org=pl.col("principal_org").fill_null("unattributed"),
            everyone=pl.col("everyone").fill_null(False),
            principal_real=real("principal_org"),
        )
        .with_columns(
            cross=pl.col("principal_real")
            & pl.col("group_real")
            & (pl.col("principal_org") != pl.col("group_org"))
        )
    )


def trusts(
    tr: pl.LazyFrame, hosts: pl.LazyFrame, acc: pl.LazyFrame, domains: pl.LazyFrame
) -> pl.LazyFrame:
    """The collected trusts with the organisation of each side.

    ``domain_org``: the declared host of the domain holding the trust (else the organisation
    most of its accounts belong to). ``partner_org``: the declared host of the partner domain
    when it is collected too, else the ``domain_sid`` matcher (``domains``: domain_sid, org),
    else the organisation most accounts of that domain SID (sIDHistory included) belong to.
    ``lets_in``: the partner's principals can be given access here: the domain trusts the
    partner (trustDirection outbound or both ways, [MS-ADTS] 6.1.6.7.12)."""
    host = hosts.select("source", "host_org")
    own = acc.filter(pl.col("sid").str.starts_with("S-1-5-21-")).select(
        "source", "org", domain_sid=pl.col("sid").str.replace(r"-\d+$", "")
    )
    history = acc.select("org", domain_sid="sid_history").explode("domain_sid").drop_nulls()
    history = history.with_columns(pl.col("domain_sid").str.replace(r"-\d+$", ""))
    by_source = unique_top(own, ["source"], "org", "_major")
    collected = (
        own.select("source", "domain_sid")
        .unique()
        .join(host, on="source")
        .select("domain_sid", _collected="host_org")
        .unique("domain_sid")
    )
    matched = domains.select("domain_sid", _matched="org").unique("domain_sid")
    majority = unique_top(
        pl.concat([own.select("domain_sid", "org"), history.select("domain_sid", "org")]),
        ["domain_sid"],
        "org",
        "_seen",
    )
    partner = pl.col("partner_sid")
    return (
        tr.select(TRUSTS_SCHEMA.names())
        .join(host, on="source", how="left")
        .join(by_source, on="source", how="left")
        .join(collected, left_on="partner_sid", right_on="domain_sid", how="left")
        .join(matched, left_on="partner_sid", right_on="domain_sid", how="left")
        .join(majority, left_on="partner_sid", right_on="domain_sid", how="left")
        .with_columns(
            domain_org=pl.coalesce("host_org", "_major", pl.lit("unattributed")),
            partner_org=pl.coalesce("_collected", "_matched", "_seen", pl.lit("unattributed")),
            partner_collected=pl.col("_collected").is_not_null() & partner.is_not_null(),
            lets_in=pl.col("direction").is_in(["outbound", "bidirectional"]),
        )
        .drop("host_org", "_major", "_collected", "_matched", "_seen")
        .with_columns(
            cross=real("domain_org")
            & real("partner_org")
            & (pl.col("domain_org") != pl.col("partner_org"))
        )
    )
