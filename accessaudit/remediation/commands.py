"""Render actions as the exact change an identity team makes (vectorised polars strings).

Objects are named by their immutable id (objectGUID / Entra object id), never by a display name,
so a command cannot be redirected by a hostile or duplicated name. Where a name must appear (a
new group's name, a comment), it is sanitised: control and bidi characters removed, single quotes
(including the typographic ones PowerShell also treats as quotes) doubled. Ids inside OData
filters and JSON bodies keep only the characters an id, SID or directory scope can hold.

Each action says where the change is made (``system``, the values of ``groups.mastered``),
routed by the system of record:

- ``ad``: AD-mastered objects (including groups synced to Entra: change them in AD, the copy
  follows) - PowerShell ActiveDirectory module (``Remove-ADGroupMember`` ...);
- ``cloud``: cloud-only groups, directory roles, app roles, guests - Microsoft Graph PowerShell,
  and the Graph request(s) it issues in ``graph`` (``DELETE /groups/{id}/members/{id}/$ref``);
- ``app``: application roles from CSV exports - a comment naming the change to make in the app;
- ``register``: an entry of the exceptions register.

Membership changes are rendered here; rights, identities and exceptions in
:mod:`accessaudit.remediation.commands_rights`.
"""

from __future__ import annotations

import polars as pl

from accessaudit.model import ActionKind, Via
from accessaudit.remediation import commands_rights as rights
from accessaudit.remediation import split
from accessaudit.remediation.apply.changes import DYNAMIC_REASON, EXCHANGE_REASON
from accessaudit.remediation.quoting import (
    comment_text,
    group_system,
    id_text,
    ps_quote,
    quoted_list,
    source_system,
)

A = ActionKind

__all__ = ["comment_text", "id_text", "ps_quote", "render_commands"]


def _context(
    actions: pl.DataFrame,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
    findings: pl.DataFrame,
    splits: pl.DataFrame,
) -> pl.DataFrame:
    """The actions with what their commands need about the objects they name (``splits``:
    :func:`accessaudit.remediation.split.describe` of the split actions).

    Every lookup is cut to the ids the actions name before its ``unique`` / ``group_by``
    (semi-joins on the left-join keys, so the joined values are the same): at 1M accounts
    the full tables made this 2.8 s of the plan.
    """
    act_groups = actions.select("group_id").drop_nulls().unique()
    act_members = actions.select("member_id").drop_nulls().unique()
    g = (
        groups.join(act_groups, on="group_id", how="semi")
        .select(
            "group_id",
            _g_name="name",
            _g_dn="dn",
            _g_sid="sid",
            _g_scope="scope",
            _g_mastered="mastered",
            _g_kind="kind",
            _g_rule=_column(groups, "membership_rule", pl.String()),
            _g_mail=_column(groups, "mail_enabled", pl.Boolean()),
            _g_org="org",
            _g_source="source",
        )
        .unique("group_id")
    )
    names = pl.concat(
        [
            accounts.select(
                member_id="account_id",
                _m_name="username",
                _m_sid="sid",
                _m_enabled="enabled",
                _m_source="source",
                _m_org="org",
            ),
            groups.select(
                member_id="group_id",
                _m_name="name",
                _m_sid="sid",
                _m_enabled=pl.lit(None, pl.Boolean),
                _m_source="source",
                _m_org="org",
            ),
        ]
    )
    names = names.join(act_members, on="member_id", how="semi").unique("member_id")
    other = accounts.select(resource_id="account_id", _r_name="username", _r_source="source").join(
        actions.select("resource_id").drop_nulls().unique(), on="resource_id", how="semi"
    )
    all_memberships = memberships
    memberships = memberships.join(act_groups, on="group_id", how="semi")
    via = (
        memberships.select("group_id", member_id="member_id", _via="via")
        .filter(pl.col("_via") == Via.PRIMARY_GROUP.value)
        .unique(["group_id", "member_id"])
    )
    strip = strip_edges(
        findings.join(act_members, left_on="account_id", right_on="member_id", how="semi"),
        accounts,
        groups,
    )
    primary = (
        all_memberships.filter(pl.col("via") == Via.PRIMARY_GROUP.value)
        .select("group_id", "member_id")
        .join(strip, on=["group_id", "member_id"], how="semi")
        .select("member_id", _strip_primary=pl.lit(True))
        .unique("member_id")
    )
    strip = strip.group_by("member_id").agg(_strip=pl.col("group_id").unique().sort())
    return (
        actions.join(g, on="group_id", how="left")
        .join(names, on="member_id", how="left")
        .join(other, on="resource_id", how="left")
        .join(via, on=["group_id", "member_id"], how="left")
        .join(splits, on="group_id", how="left")
        .join(strip, on="member_id", how="left")
        .join(primary, on="member_id", how="left")
        .with_columns(
            pl.col("_strip").fill_null(pl.lit([], pl.List(pl.String))),
            pl.col("_strip_primary").fill_null(False),
        )
    )


def render_commands(
    actions: pl.DataFrame,
    *,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
    findings: pl.DataFrame,
    splits: pl.DataFrame,
) -> pl.DataFrame:
    """Add ``system``, ``summary``, ``powershell`` and ``graph`` to ``actions`` (``splits``:
    :func:`accessaudit.remediation.split.describe` of its split actions).

    Each kind's expressions run only on the rows of that kind (one ``when/then`` chain per
    column over every kind would build every kind's text, split groups' member lists
    included, on every row: 23 of 28 s of the plan at 1M accounts); the parts are put back
    in the actions' order. Rows of a kind without commands get nulls.
    """
    a = _context(actions, accounts, groups, memberships, findings, splits).with_row_index("_row")
    table = {**_membership_commands(), **rights.commands()}
    kind = pl.col("kind")
    parts = []
    for k, exprs in table.items():
        part = a.filter(kind == k.value)
        if part.height:
            parts.append(
                part.with_columns(
                    **{c: e.cast(pl.String) for c, e in zip(_COLUMNS, exprs, strict=True)}
                )
            )
    other = a.filter(~kind.is_in([k.value for k in table]) | kind.is_null())
    parts.append(other.with_columns(**{c: pl.lit(None, pl.String) for c in _COLUMNS}))
    return pl.concat(parts).sort("_row").drop("_row")


_COLUMNS = ("system", "summary", "powershell", "graph")


Commands = dict[ActionKind, tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]]


def _column(df: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.Expr:
    """``df``'s column ``name``, or nulls for tables stored before it existed."""
    return pl.col(name) if name in df.columns else pl.lit(None, dtype)


def _cloud_membership(gq: pl.Expr, mq: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(PowerShell, Graph) removing member ``mq`` from the cloud group ``gq``.

    Graph ``DELETE /groups/{id}/members/{id}/$ref`` only works for an assigned membership that
    Entra masters: a *dynamic* group's members come from its ``membershipRule`` (groupTypes
    ``DynamicMembership``: the rule must change so that it no longer matches the member), and
    mail-enabled security groups and distribution lists are read-only in Graph (the group
    types table of learn.microsoft.com/graph/office365-groups-concept-overview): their members are
    changed in Exchange Online, which finds both objects by their Entra id
    (``ExternalDirectoryObjectId``), never by a name. :mod:`.apply` refuses both the same way.
    """
    dynamic = pl.col("_g_rule").is_not_null()
    exchange = pl.col("_g_mail").fill_null(False) & (pl.col("_g_kind") != "m365").fill_null(True)
    rule = comment_text(pl.col("_g_rule").fill_null(""))
    gid, mid = id_text(pl.col("group_id")), id_text(pl.col("member_id"))
    change_rule = pl.concat_str(
        [
            pl.lit(f"# {DYNAMIC_REASON} so that it no longer matches "),
            mid,
            pl.lit(" (a member of a dynamic group cannot be removed): Update-MgGroup -GroupId "),
            gq,
            pl.lit(" -MembershipRule '<new rule>'; current rule: "),
            rule,
        ]
    )
    in_exchange = pl.concat_str(
        [
            pl.lit("$g = Get-Recipient -Filter \"ExternalDirectoryObjectId -eq '"),
            gid,
            pl.lit("'\"; $m = Get-Recipient -Filter \"ExternalDirectoryObjectId -eq '"),
            mid,
            pl.lit(
                "'\"; Remove-DistributionGroupMember -Identity $g.Identity -Member $m.Identity "
                "-BypassSecurityGroupManagerCheck -Confirm:$false  # Exchange Online"
            ),
        ]
    )
    by_ref = pl.concat_str(
        [pl.lit("Remove-MgGroupMemberByRef -GroupId "), gq, pl.lit(" -DirectoryObjectId "), mq]
    )
    powershell = pl.when(dynamic).then(change_rule).when(exchange).then(in_exchange)
    graph = (
        pl.when(dynamic)
        .then(
            pl.concat_str(
                [
                    pl.lit("PATCH /groups/"),
                    gid,
                    pl.lit(' {"membershipRule": "<a rule that no longer matches '),
                    mid,
                    pl.lit('>"}  # current rule: '),
                    rule,
                ]
            )
        )
        .when(exchange)
        .then(pl.lit(f"# {EXCHANGE_REASON}: Graph cannot change its members"))
        .otherwise(
            pl.concat_str(
                [pl.lit("DELETE /groups/"), gid, pl.lit("/members/"), mid, pl.lit("/$ref")]
            )
        )
    )
    return powershell.otherwise(by_ref), graph


def _membership_commands() -> Commands:
    """(system, summary, powershell, graph) of membership and attribution actions."""
    gq = ps_quote(pl.col("group_id"))
    mq = ps_quote(pl.col("member_id"))
    gname = pl.col("_g_name").fill_null("?")
    mname = pl.col("_m_name").fill_null("?")
    null = pl.lit(None, pl.String)
    system = group_system()
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
    remove_cloud, remove_graph = _cloud_membership(gq, mq)
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
    primary_fix = _primary_to_domain_users(mq)
    remove = (
        pl.when(app)
        .then(remove_app)
        .when(cloud)
        .then(remove_cloud)
        .when(pl.col("_via").is_not_null())
        .then(pl.concat_str([primary_fix, remove_ad]))
        .otherwise(remove_ad)
    )
    remove_graph = pl.when(cloud).then(remove_graph)

    strip_ad = pl.concat_str(
        [
            pl.when(pl.col("_strip_primary")).then(primary_fix).otherwise(pl.lit("")),
            pl.when(pl.col("_strip").list.len() > 0)
            .then(
                pl.concat_str(
                    [
                        pl.lit("Remove-ADPrincipalGroupMembership -Identity "),
                        mq,
                        pl.lit(" -MemberOf "),
                        quoted_list("_strip"),
                        pl.lit(" -Confirm:$false"),
                    ]
                )
            )
            .otherwise(pl.lit("")),
            pl.when(pl.col("_m_enabled").fill_null(False))
            .then(pl.concat_str([pl.lit("; Disable-ADAccount -Identity "), mq]))
            .otherwise(pl.lit("")),
        ]
    ).str.strip_prefix("; ")
    strip_cloud = pl.concat_str(
        [
            pl.when(pl.col("_strip").list.len() > 0)
            .then(
                pl.concat_str(
                    [
                        pl.lit("foreach ($g in "),
                        quoted_list("_strip"),
                        pl.lit(") { Remove-MgGroupMemberByRef -GroupId $g -DirectoryObjectId "),
                        mq,
                        pl.lit(" }"),
                    ]
                )
            )
            .otherwise(pl.lit("")),
            pl.when(pl.col("_m_enabled").fill_null(False))
            .then(
                pl.concat_str(
                    [pl.lit("; Update-MgUser -UserId "), mq, pl.lit(" -AccountEnabled:$false")]
                )
            )
            .otherwise(pl.lit("")),
        ]
    ).str.strip_prefix("; ")
    strip_system = source_system("_m_source")
    strip = (
        pl.when(strip_system == "cloud")
        .then(strip_cloud)
        .when(strip_system == "app")
        .then(
            pl.concat_str(
                [
                    pl.lit("# In application "),
                    comment_text(pl.col("_m_source")),
                    pl.lit(": remove user "),
                    comment_text(mname),
                    pl.lit(" from its roles"),
                ]
            )
        )
        .otherwise(strip_ad)
    )
    # The planner credits an inactive account's finding to its remove-memberships only when
    # there is a membership to strip (plan._credit_inactive), or when no open finding of its
    # cross-force access is left to plan (they are accepted exceptions): say so, change nothing.
    nothing = pl.concat_str(
        [
            pl.lit("# nothing to strip for "),
            comment_text(mname),
            pl.lit(": its cross-force access is accepted in the exceptions register; review it"),
        ]
    )
    strip = pl.when(pl.col("_strip").list.len() == 0).then(nothing).otherwise(strip)
    # one DELETE per group, then the account disabled; "\x01" marks where its id goes
    per_group = pl.col("_strip").list.eval(
        pl.concat_str(
            [pl.lit("DELETE /groups/"), id_text(pl.element()), pl.lit("/members/\x01/$ref\n")]
        )
    )
    strip_graph = pl.when(strip_system == "cloud").then(
        pl.concat_str(
            [per_group.list.join(""), pl.lit('PATCH /users/\x01 {"accountEnabled": false}')]
        ).str.replace_all("\x01", id_text(pl.col("member_id")).fill_null(""), literal=True)
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
    review_cloud = pl.concat_str(
        [pl.lit("Get-MgDirectoryObject -DirectoryObjectId "), review_id, pl.lit(" | Format-List")]
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
    review_src = pl.coalesce("_m_source", "_g_source").fill_null("")
    review_system = (
        pl.when(review_src.str.starts_with("entra:"))
        .then(pl.lit("cloud"))
        .when(review_src.str.starts_with("csv:"))
        .then(pl.lit("app"))
        .otherwise(pl.lit("ad"))
    )
    review = (
        pl.when(pl.col("_m_source").str.starts_with("csv:"))
        .then(review_app)
        .when(review_system == "cloud")
        .then(review_cloud)
        .otherwise(review_ad)
    )

    n_strip = pl.col("_strip").list.len()
    enabled = pl.col("_m_enabled").fill_null(False)
    summary_strip = (
        pl.when(n_strip == 0)
        .then(
            pl.concat_str(
                [
                    pl.lit("Review inactive account "),
                    mname,
                    pl.lit(": no planned change removes its cross-force access (accepted)"),
                ]
            )
        )
        .otherwise(
            pl.concat_str(
                [
                    pl.when(enabled)
                    .then(pl.lit("Remove dormant account "))
                    .otherwise(pl.lit("Remove disabled account ")),
                    mname,
                    pl.lit(" from "),
                    n_strip.cast(pl.String),
                    pl.lit(" group(s) of the other force"),
                    pl.when(enabled & (strip_system != "app"))
                    .then(pl.lit(" and disable it"))
                    .otherwise(pl.lit("")),
                ]
            )
        )
    )
    split_summary, split_ps, split_graph = split.commands(cloud)
    return {
        A.REMOVE_MEMBER: (
            system,
            pl.concat_str([pl.lit("Remove "), mname, pl.lit(" from "), gname]),
            remove,
            remove_graph,
        ),
        A.UNNEST_GROUP: (
            system,
            pl.concat_str([pl.lit("Un-nest group "), mname, pl.lit(" from "), gname]),
            remove,
            remove_graph,
        ),
        A.SPLIT_GROUP: (system, split_summary, split_ps, split_graph),
        A.REMOVE_MEMBERSHIPS: (strip_system, summary_strip, strip, strip_graph),
        A.REVIEW_ATTRIBUTION: (
            review_system,
            pl.concat_str(
                [pl.lit("Decide which force owns "), pl.coalesce(pl.col("_m_name"), gname)]
            ),
            review,
            null,
        ),
    }


def _primary_to_domain_users(member: pl.Expr) -> pl.Expr:
    """Make Domain Users (RID 513) the account's primary group, so its old primary group can be
    left: AD refuses a primaryGroupID naming a group the account is not a member of
    (learn.microsoft.com/troubleshoot/windows-server/active-directory/
    primary-group-id-attribute-not-changed; "the user must be a member of the group"), so the
    account joins the domain's Domain Users (``<domain SID>-513``) first. Add-ADGroupMember
    modifies permissively by default (``-DisablePermissiveModify`` turns it off), so an
    account already in Domain Users is no error. The domain SID is the account's SID without
    its RID, else the group's, else the domain's as the cmdlets see it."""
    domain = pl.coalesce(
        pl.col("_m_sid").str.extract(r"^(S-1-5-21-\d+-\d+-\d+)-\d+$"),
        pl.col("_g_sid").str.extract(r"^(S-1-5-21-\d+-\d+-\d+)-\d+$"),
    )
    users = (
        pl.when(domain.is_not_null())
        .then(ps_quote(pl.concat_str([domain, pl.lit("-513")])))
        .otherwise(pl.lit('"$((Get-ADDomain).DomainSID.Value)-513"'))
    )
    return pl.concat_str(
        [
            pl.lit("Add-ADGroupMember -Identity "),
            users,
            pl.lit(" -Members "),
            member,
            pl.lit("; Set-ADUser -Identity "),
            member,
            pl.lit(" -Replace @{primaryGroupID=513}; "),
        ]
    )


def strip_edges(
    findings: pl.DataFrame, accounts: pl.DataFrame, groups: pl.DataFrame
) -> pl.DataFrame:
    """The edges a remove-memberships action removes: ``member_id`` (account), ``group_id``.

    The account's direct memberships *in the other force's groups* on its cross-force paths,
    in the account's own directory (an application's roles are changed in the application).
    Its own force's groups are left alone: where such a group is nested across, the un-nest
    action cuts the path without taking same-force access away. A dynamic group's membership
    comes from its rule, so it cannot be stripped: that access goes with the group's own action
    (change the rule). Shared by the commands, the what-if and apply, so all three remove
    exactly the same edges.
    """
    rule = (
        pl.col("membership_rule")
        if "membership_rule" in groups.columns
        else pl.lit(None, pl.String)
    )
    return (
        findings.filter(pl.col("account_id").is_not_null() & pl.col("via_group_id").is_not_null())
        .select(member_id="account_id", group_id="via_group_id")
        .unique()
        .join(
            groups.filter(rule.is_null()).select("group_id", _g_source="source", _g_org="org"),
            on="group_id",
        )
        .join(
            accounts.select(member_id="account_id", _m_source="source", _a_org="org"),
            on="member_id",
        )
        .filter(
            (pl.col("_g_source") == pl.col("_m_source")) & (pl.col("_g_org") != pl.col("_a_org"))
        )
        .select("member_id", "group_id")
    )
