"""Commands of membership and attribution actions: remove a member, un-nest a group, strip an
inactive account's memberships of the other force, review which force owns an object.

Each renderer returns a :class:`~accessaudit.remediation.quoting.Rendered` over the action row
and the context columns of :func:`accessaudit.remediation.commands.render_commands`. A split's
commands are in :mod:`accessaudit.remediation.commands_split`.
"""

from __future__ import annotations

import polars as pl

from accessaudit.model import Via
from accessaudit.remediation.apply.changes import DYNAMIC_REASON, EXCHANGE_REASON
from accessaudit.remediation.commands_trust import remove_foreign, through_sid_history
from accessaudit.remediation.quoting import (
    Rendered,
    cat,
    comment_text,
    group_system,
    id_text,
    ps_quote,
    quoted_list,
    source_system,
)

_EMPTY = pl.lit("")


def _group_name() -> pl.Expr:
    return pl.col("_g_name").fill_null("?")


def _member_name() -> pl.Expr:
    return pl.col("_m_name").fill_null("?")


# --- remove-member, unnest-group -------------------------------------------------------------


def remove_member() -> Rendered:
    powershell, graph = _removal()
    summary = cat("Remove ", _member_name(), " from ", _group_name())
    return Rendered(group_system(), summary, powershell, graph)


def unnest_group() -> Rendered:
    powershell, graph = _removal()
    summary = cat("Un-nest group ", _member_name(), " from ", _group_name())
    return Rendered(group_system(), summary, powershell, graph)


def _removal() -> tuple[pl.Expr, pl.Expr]:
    """(PowerShell, Graph) taking the member ``member_id`` out of the group ``group_id``, in
    the group's system of record: AD (leaving the primary group first when it is the member's
    primary group), Entra, or the application."""
    gq = ps_quote(pl.col("group_id"))
    mq = ps_quote(pl.col("member_id"))
    cloud = pl.col("_g_mastered") == "cloud"
    remove_ad = cat("Remove-ADGroupMember -Identity ", gq, " -Members ", mq, " -Confirm:$false")
    remove_cloud, remove_graph = _cloud_membership(gq, mq)
    remove_app = cat(
        "# In application ",
        comment_text(pl.col("_g_source")),
        ": remove role ",
        comment_text(pl.col("_g_name")),
        " from user ",
        comment_text(pl.col("_m_name")),
    )
    remove = (
        pl.when(pl.col("_g_mastered") == "app")
        .then(remove_app)
        .when(cloud)
        .then(remove_cloud)
        .when(pl.col("_via") == Via.PRIMARY_GROUP.value)
        .then(pl.concat_str([primary_to_domain_users(mq), remove_ad]))
        .when(pl.col("_via") == Via.FOREIGN_PRINCIPAL.value)
        .then(remove_foreign(gq))
        .when(pl.col("_via") == Via.SID_HISTORY.value)
        .then(through_sid_history(gq, mq))
        .otherwise(remove_ad)
    )
    return remove, pl.when(cloud).then(remove_graph)


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
    change_rule = cat(
        f"# {DYNAMIC_REASON} so that it no longer matches ",
        mid,
        " (a member of a dynamic group cannot be removed): Update-MgGroup -GroupId ",
        gq,
        " -MembershipRule '<new rule>'; current rule: ",
        rule,
    )
    in_exchange = cat(
        "$g = Get-Recipient -Filter \"ExternalDirectoryObjectId -eq '",
        gid,
        "'\"; $m = Get-Recipient -Filter \"ExternalDirectoryObjectId -eq '",
        mid,
        "'\"; Remove-DistributionGroupMember -Identity $g.Identity -Member $m.Identity "
        "-BypassSecurityGroupManagerCheck -Confirm:$false  # Exchange Online",
    )
    by_ref = cat("Remove-MgGroupMemberByRef -GroupId ", gq, " -DirectoryObjectId ", mq)
    powershell = pl.when(dynamic).then(change_rule).when(exchange).then(in_exchange)
    new_rule = cat(
        "PATCH /groups/",
        gid,
        ' {"membershipRule": "<a rule that no longer matches ',
        mid,
        '>"}  # current rule: ',
        rule,
    )
    graph = (
        pl.when(dynamic)
        .then(new_rule)
        .when(exchange)
        .then(pl.lit(f"# {EXCHANGE_REASON}: Graph cannot change its members"))
        .otherwise(cat("DELETE /groups/", gid, "/members/", mid, "/$ref"))
    )
    return powershell.otherwise(by_ref), graph


def primary_to_domain_users(member: pl.Expr) -> pl.Expr:
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
    return cat(
        "Add-ADGroupMember -Identity ",
        users,
        " -Members ",
        member,
        "; Set-ADUser -Identity ",
        member,
        " -Replace @{primaryGroupID=513}; ",
    )


# --- remove-memberships ----------------------------------------------------------------------


def remove_memberships() -> Rendered:
    """An inactive account out of the other force's groups it is a direct member of (the
    ``_strip`` list: :func:`accessaudit.remediation.commands.strip_edges`), then disabled, but
    only where its source records sign-ins: disabling anyone needs evidence it is unused."""
    system = source_system("_m_source")
    app = cat(
        "# In application ",
        comment_text(pl.col("_m_source")),
        ": remove user ",
        comment_text(_member_name()),
        " from its roles",
    )
    strip = (
        pl.when(system == "cloud")
        .then(_strip_cloud())
        .when(system == "app")
        .then(app)
        .otherwise(_strip_ad())
    )
    # The planner credits an inactive account's finding to its remove-memberships only when
    # there is a membership to strip (plan._credit_inactive), or when no open finding of its
    # cross-force access is left to plan (they are accepted exceptions): say so, change nothing.
    nothing = cat(
        "# nothing to strip for ",
        comment_text(_member_name()),
        ": its cross-force access is accepted in the exceptions register; review it",
    )
    n_strip, n_logins = pl.col("_strip").list.len(), _n_logins()
    directory = pl.when(n_strip > 0).then(cat(strip, pl.lit("\n"))).otherwise(_EMPTY)
    powershell = (
        pl.when((n_strip == 0) & (n_logins == 0))
        .then(nothing)
        .otherwise(cat(directory, _disabled_logins()).str.strip_suffix("\n"))
    )
    return Rendered(system, _strip_summary(system), powershell, _strip_graph(system))


def _n_logins() -> pl.Expr:
    """How many of the other force's application roles the account holds through a login its
    application has disabled (``_logins``: commands._strip_context)."""
    return pl.col("_logins").list.len().fill_null(0)


def _disabled_logins() -> pl.Expr:
    """One line per disabled application login of the other force (``\x01``: the user)."""
    lines = pl.col("_logins").list.eval(
        cat(
            "# In application ",
            comment_text(pl.element().struct.field("app")),
            ": remove role ",
            comment_text(pl.element().struct.field("role")),
            " from user \x01 (its login is disabled; a re-enabled login would get it back)\n",
        )
    )
    name = comment_text(_member_name()).fill_null("")
    return lines.list.join("").fill_null("").str.replace_all("\x01", name, literal=True)


def _disable() -> pl.Expr:
    """The member is an enabled account whose source records sign-ins: dormant, so disabled."""
    return pl.col("_m_enabled").fill_null(False) & ~pl.col("_m_untracked")


def _strip_ad() -> pl.Expr:
    mq = ps_quote(pl.col("member_id"))
    return cat(
        pl.when(pl.col("_strip_primary")).then(primary_to_domain_users(mq)).otherwise(_EMPTY),
        pl.when(pl.col("_strip").list.len() > 0)
        .then(
            cat(
                "Remove-ADPrincipalGroupMembership -Identity ",
                mq,
                " -MemberOf ",
                quoted_list("_strip"),
                " -Confirm:$false",
            )
        )
        .otherwise(_EMPTY),
        pl.when(_disable()).then(cat("; Disable-ADAccount -Identity ", mq)).otherwise(_EMPTY),
    ).str.strip_prefix("; ")


def _strip_cloud() -> pl.Expr:
    mq = ps_quote(pl.col("member_id"))
    return cat(
        pl.when(pl.col("_strip").list.len() > 0)
        .then(
            cat(
                "foreach ($g in ",
                quoted_list("_strip"),
                ") { Remove-MgGroupMemberByRef -GroupId $g -DirectoryObjectId ",
                mq,
                " }",
            )
        )
        .otherwise(_EMPTY),
        pl.when(_disable())
        .then(cat("; Update-MgUser -UserId ", mq, " -AccountEnabled:$false"))
        .otherwise(_EMPTY),
    ).str.strip_prefix("; ")


def _strip_graph(system: pl.Expr) -> pl.Expr:
    # one DELETE per group, then the account disabled (as in PowerShell: only a dormant one);
    # "\x01" marks where its id goes
    per_group = pl.col("_strip").list.eval(
        cat("DELETE /groups/", id_text(pl.element()), "/members/\x01/$ref\n")
    )
    disable = pl.lit('PATCH /users/\x01 {"accountEnabled": false}')
    patch = pl.when(_disable()).then(disable).otherwise(_EMPTY)
    return pl.when(system == "cloud").then(
        cat(per_group.list.join(""), patch)
        .str.strip_suffix("\n")
        .str.replace_all("\x01", id_text(pl.col("member_id")).fill_null(""), literal=True)
    )


def _strip_summary(system: pl.Expr) -> pl.Expr:
    n_strip = pl.col("_strip").list.len() + _n_logins()
    enabled = pl.col("_m_enabled").fill_null(False)
    disable = _disable()
    accepted = cat(
        "Review inactive account ",
        _member_name(),
        ": no planned change removes its cross-force access (accepted)",
    )
    strip = cat(
        pl.when(disable)
        .then(pl.lit("Remove dormant account "))
        .when(enabled)
        .then(pl.lit("Remove account "))
        .otherwise(pl.lit("Remove disabled account ")),
        _member_name(),
        " from ",
        n_strip.cast(pl.String),
        pl.when(_n_logins() > 0)
        .then(pl.lit(" group(s) and application role(s) of the other force"))
        .otherwise(pl.lit(" group(s) of the other force")),
        pl.when(disable & (system != "app")).then(pl.lit(" and disable it")).otherwise(_EMPTY),
    )
    return pl.when(n_strip == 0).then(accepted).otherwise(strip)


# --- review-attribution ----------------------------------------------------------------------


def review_attribution() -> Rendered:
    """Show the object whose force is undecided (the member, else the group)."""
    review_id = ps_quote(pl.coalesce("member_id", "group_id"))
    review_ad = cat(
        "Get-ADObject -Identity ",
        review_id,
        " -Properties company,department,employeeID,mail,userPrincipalName,managedBy",
        " | Format-List",
    )
    review_cloud = cat("Get-MgDirectoryObject -DirectoryObjectId ", review_id, " | Format-List")
    # An application user that matches no directory account: nothing to query in AD.
    review_app = cat(
        "# In application ",
        comment_text(pl.col("_m_source")),
        ": user ",
        comment_text(pl.col("_m_name")),
        " matches no directory account; identify its owner or remove the user",
    )
    src = pl.coalesce("_m_source", "_g_source").fill_null("")
    system = (
        pl.when(src.str.starts_with("entra:"))
        .then(pl.lit("cloud"))
        .when(src.str.starts_with("csv:"))
        .then(pl.lit("app"))
        .otherwise(pl.lit("ad"))
    )
    powershell = (
        pl.when(pl.col("_m_source").str.starts_with("csv:"))
        .then(review_app)
        .when(system == "cloud")
        .then(review_cloud)
        .otherwise(review_ad)
    )
    summary = cat("Decide which force owns ", pl.coalesce(pl.col("_m_name"), _group_name()))
    return Rendered(system, summary, powershell, pl.lit(None, pl.String))
