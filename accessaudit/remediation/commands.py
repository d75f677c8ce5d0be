"""Render actions as the exact command an identity team runs (vectorised polars strings).

Objects are named by their immutable id (objectGUID / Entra object id), never by a display name,
so a command cannot be redirected by a hostile or duplicated name. Where a name must appear (a
new group's name, a comment), it is sanitised: control and bidi characters removed, single quotes
(including the typographic ones PowerShell also treats as quotes) doubled.

- AD-mastered objects: PowerShell ActiveDirectory module (``Remove-ADGroupMember`` ...).
- Cloud-only Entra groups: Microsoft Graph PowerShell (``Remove-MgGroupMemberByRef``), which
  issues ``DELETE /groups/{id}/members/{id}/$ref``.
- Application roles from CSV exports: a comment naming the application change to make.
"""

from __future__ import annotations

import polars as pl

from ..model import SPECIAL_ORGS, ActionKind, MemberKind, Via

_UNSAFE = r"[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"


def ps_quote(expr: pl.Expr) -> pl.Expr:
    """A PowerShell single-quoted string literal of ``expr``."""
    cleaned = expr.cast(pl.String).str.replace_all(_UNSAFE, "")
    cleaned = cleaned.str.replace_all(r"(['\u2018\u2019\u201a\u201b])", "$1$1")
    return pl.concat_str([pl.lit("'"), cleaned, pl.lit("'")])


def comment_text(expr: pl.Expr) -> pl.Expr:
    """Text safe to put after ``#`` on one line."""
    return expr.cast(pl.String).str.replace_all(_UNSAFE, " ")


def _quoted_list(col: str) -> pl.Expr:
    return pl.col(col).list.eval(ps_quote(pl.element())).list.join(",")


def render_commands(
    actions: pl.DataFrame,
    *,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
    findings: pl.DataFrame,
) -> pl.DataFrame:
    """Add ``summary`` and ``powershell`` to ``actions`` (group_id, member_id, kind ...)."""
    g = groups.select(
        "group_id",
        _g_name="name",
        _g_dn="dn",
        _g_scope="scope",
        _g_mastered="mastered",
        _g_org="org",
        _g_source="source",
    ).unique("group_id")
    names = pl.concat(
        [
            accounts.select(
                member_id="account_id", _m_name="username", _m_enabled="enabled", _m_source="source"
            ),
            groups.select(
                member_id="group_id",
                _m_name="name",
                _m_enabled=pl.lit(None, pl.Boolean),
                _m_source="source",
            ),
        ]
    ).unique("member_id")
    via = (
        memberships.select("group_id", member_id="member_id", _via="via")
        .filter(pl.col("_via") == Via.PRIMARY_GROUP.value)
        .unique(["group_id", "member_id"])
    )
    # Split: the other organisation's direct members, to move into the new group.
    acc_org = accounts.select(member_id="account_id", _a_org="org")
    movers = (
        memberships.filter(pl.col("member_kind") == MemberKind.ACCOUNT.value)
        .select("group_id", "member_id")
        .join(acc_org, on="member_id")
        .join(g.select("group_id", "_g_org"), on="group_id")
        .filter(
            ~pl.col("_a_org").is_in(list(SPECIAL_ORGS)) & (pl.col("_a_org") != pl.col("_g_org"))
        )
        .group_by("group_id")
        .agg(_split_members=pl.col("member_id").unique().sort(), _split_org=pl.col("_a_org").min())
    )
    # Remove-memberships: the direct groups through which the account reaches the other force.
    strip = (
        findings.filter(
            pl.col("account_id").is_not_null()
            & pl.col("via_group_id").is_not_null()
            & (pl.col("kind") != ActionKind.REMOVE_MEMBERSHIPS.value)
        )
        .group_by(member_id="account_id")
        .agg(_strip=pl.col("via_group_id").unique().sort())
    )
    a = (
        actions.join(g, on="group_id", how="left")
        .join(names, on="member_id", how="left")
        .join(via, on=["group_id", "member_id"], how="left")
        .join(movers, on="group_id", how="left")
        .join(strip, on="member_id", how="left")
    )
    kind = pl.col("kind")
    gq = ps_quote(pl.col("group_id"))
    mq = ps_quote(pl.col("member_id"))
    cloud = pl.col("_g_mastered") == "cloud"
    app = pl.col("_g_mastered") == "app"
    remove_ad = pl.concat_str(
        [
            pl.lit("Remove-ADGroupMember -Identity "),
            gq,
            pl.lit(" -Members "),
            mq,
            pl.lit(" -Confirm:$false"),
        ]
    )
    remove_cloud = pl.concat_str(
        [pl.lit("Remove-MgGroupMemberByRef -GroupId "), gq, pl.lit(" -DirectoryObjectId "), mq]
    )
    remove_app = pl.concat_str(
        [
            pl.lit("# In application "),
            comment_text(pl.col("_g_source")),
            pl.lit(": remove role "),
            comment_text(pl.col("_g_name")),
            pl.lit(" from user "),
            comment_text(pl.col("_m_name")),
        ]
    )
    primary_fix = pl.concat_str(
        [pl.lit("Set-ADUser -Identity "), mq, pl.lit(" -Replace @{primaryGroupID=513}; ")]
    )
    remove = (
        pl.when(app)
        .then(remove_app)
        .when(cloud)
        .then(remove_cloud)
        .when(pl.col("_via").is_not_null())
        .then(pl.concat_str([primary_fix, remove_ad]))
        .otherwise(remove_ad)
    )
    new_name = pl.concat_str(
        [pl.col("_g_name"), pl.lit("-"), pl.col("_split_org").str.to_uppercase()]
    )
    parent_ou = pl.col("_g_dn").str.replace(r"^(?:[^,\\]|\\.)*,", "")
    split = pl.concat_str(
        [
            pl.lit("New-ADGroup -Name "),
            ps_quote(new_name),
            pl.lit(" -GroupScope "),
            pl.col("_g_scope")
            .replace({"domain-local": "DomainLocal", "global": "Global", "universal": "Universal"})
            .fill_null("Global"),
            pl.lit(" -GroupCategory Security"),
            pl.when(parent_ou.is_not_null())
            .then(pl.concat_str([pl.lit(" -Path "), ps_quote(parent_ou)]))
            .otherwise(pl.lit("")),
            pl.lit("; Add-ADGroupMember -Identity "),
            ps_quote(new_name),
            pl.lit(" -Members "),
            _quoted_list("_split_members"),
            pl.lit("; Remove-ADGroupMember -Identity "),
            gq,
            pl.lit(" -Members "),
            _quoted_list("_split_members"),
            pl.lit(" -Confirm:$false"),
        ]
    )
    strip_cmd = pl.concat_str(
        [
            pl.lit("Remove-ADPrincipalGroupMembership -Identity "),
            mq,
            pl.lit(" -MemberOf "),
            _quoted_list("_strip"),
            pl.lit(" -Confirm:$false"),
            pl.when(pl.col("_m_enabled").fill_null(False))
            .then(pl.concat_str([pl.lit("; Disable-ADAccount -Identity "), mq]))
            .otherwise(pl.lit("")),
        ]
    )
    review_id = ps_quote(pl.coalesce("member_id", "group_id"))
    review_ad = pl.concat_str(
        [
            pl.lit("Get-ADObject -Identity "),
            review_id,
            pl.lit(" -Properties company,department,employeeID,mail,userPrincipalName,managedBy"),
            pl.lit(" | Format-List"),
        ]
    )
    # An application user that matches no directory account: nothing to query in AD.
    review_app = pl.concat_str(
        [
            pl.lit("# In application "),
            comment_text(pl.col("_m_source")),
            pl.lit(": user "),
            comment_text(pl.col("_m_name")),
            pl.lit(" matches no directory account; identify its owner or remove the user"),
        ]
    )
    review = (
        pl.when(pl.col("_m_source").str.starts_with("csv:")).then(review_app).otherwise(review_ad)
    )
    ps = (
        pl.when(kind.is_in([ActionKind.REMOVE_MEMBER.value, ActionKind.UNNEST_GROUP.value]))
        .then(remove)
        .when(kind == ActionKind.SPLIT_GROUP.value)
        .then(split)
        .when(kind == ActionKind.REMOVE_MEMBERSHIPS.value)
        .then(strip_cmd)
        .otherwise(review)
    )
    gname = pl.col("_g_name").fill_null("?")
    mname = pl.col("_m_name").fill_null("?")
    summary = (
        pl.when(kind == ActionKind.REMOVE_MEMBER.value)
        .then(pl.concat_str([pl.lit("Remove "), mname, pl.lit(" from "), gname]))
        .when(kind == ActionKind.UNNEST_GROUP.value)
        .then(pl.concat_str([pl.lit("Un-nest group "), mname, pl.lit(" from "), gname]))
        .when(kind == ActionKind.SPLIT_GROUP.value)
        .then(
            pl.concat_str(
                [
                    pl.lit("Split mixed group "),
                    gname,
                    pl.lit(": move "),
                    pl.col("_split_members").list.len().cast(pl.String),
                    pl.lit(" member(s) of "),
                    pl.col("_split_org").fill_null("?"),
                    pl.lit(" to a new group"),
                ]
            )
        )
        .when(kind == ActionKind.REMOVE_MEMBERSHIPS.value)
        .then(
            pl.concat_str(
                [
                    pl.lit("Strip inactive account "),
                    mname,
                    pl.lit(" of "),
                    pl.col("_strip").list.len().fill_null(0).cast(pl.String),
                    pl.lit(" cross-force membership(s)"),
                ]
            )
        )
        .otherwise(
            pl.concat_str(
                [pl.lit("Decide which force owns "), pl.coalesce(pl.col("_m_name"), gname)]
            )
        )
    )
    return a.with_columns(summary=summary, powershell=ps.fill_null(review))
