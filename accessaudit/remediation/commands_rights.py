"""Commands for rights, identities and exceptions: owners, directory roles, app roles, SID
history, guests, managers, shared accounts, dual identities, empty groups, the register.

Each renderer returns a :class:`~accessaudit.remediation.quoting.Rendered` over the action row
and the context columns of :func:`accessaudit.remediation.commands.render_commands` (``_g_*``
the group, ``_m_*`` the member or account, ``_r_*`` the other account of a dual identity,
``_rights`` the rights of the findings resolved). Sources for each Graph call are cited inline.
"""

from __future__ import annotations

import polars as pl

from accessaudit.model import GroupKind
from accessaudit.remediation.quoting import (
    Rendered,
    cat,
    comment_text,
    group_system,
    id_text,
    ps_quote,
    source_system,
)

_CLOUD = pl.lit("cloud")
_NULL = pl.lit(None, pl.String)


def _inspect(id_col: str, source_col: str) -> pl.Expr:
    """Show one account's identifying attributes, in AD or in Entra."""
    q = ps_quote(pl.col(id_col))
    return (
        pl.when(source_system(source_col) == "cloud")
        .then(
            cat(
                "Get-MgUser -UserId ",
                q,
                " -Property displayName,companyName,employeeId,mail,accountEnabled | Format-List",
            )
        )
        .otherwise(
            cat(
                "Get-ADUser -Identity ",
                q,
                " -Properties company,employeeID,mail,lastLogonTimestamp,sIDHistory | Format-List",
            )
        )
    )


def _group_name() -> pl.Expr:
    return pl.col("_g_name").fill_null("?")


def _member_name() -> pl.Expr:
    return pl.col("_m_name").fill_null("?")


def _ids() -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """``group_id`` and ``member_id`` as PowerShell literals, then as ids for a Graph URL."""
    g, m = pl.col("group_id"), pl.col("member_id")
    return ps_quote(g), ps_quote(m), id_text(g), id_text(m)


def remove_owner() -> Rendered:
    """managedBy in AD; an owner of a cloud-only group, or of an enterprise application (its
    service principal), through Graph.

    learn.microsoft.com/graph/api/group-delete-owners: DELETE /groups/{id}/owners/{id}/$ref;
    learn.microsoft.com/graph/api/serviceprincipal-delete-owners:
    DELETE /servicePrincipals/{id}/owners/{id}/$ref
    """
    gq, mq, gid, mid = _ids()
    gname, mname = _group_name(), _member_name()
    cloud = pl.col("_g_mastered") == "cloud"
    app = (pl.col("_g_kind") == GroupKind.APP_ROLE.value).fill_null(False)
    powershell = (
        pl.when(app)
        .then(
            cat("Remove-MgServicePrincipalOwnerByRef -ServicePrincipalId ", gq,
                " -DirectoryObjectId ", mq)
        )
        .when(cloud)
        .then(cat("Remove-MgGroupOwnerByRef -GroupId ", gq, " -DirectoryObjectId ", mq))
        .otherwise(cat("Set-ADGroup -Identity ", gq, " -Clear managedBy"))
    )  # fmt: skip
    graph = (
        pl.when(app)
        .then(cat("DELETE /servicePrincipals/", gid, "/owners/", mid, "/$ref"))
        .when(cloud)
        .then(cat("DELETE /groups/", gid, "/owners/", mid, "/$ref"))
    )
    summary = (
        pl.when(app)
        .then(
            cat("Remove ", mname, " as owner of application ", gname,
                " (an owner can add credentials to it and act as it)")
        )
        .when(cloud)
        .then(
            cat("Remove ", mname, " as owner of ", gname,
                " (Graph refuses to remove a group's last owner: add one of its own force first)")
        )
        .otherwise(
            cat("Clear managedBy of ", gname, " (", mname,
                "); if it needs a manager, set one of its own force")
        )
    )  # fmt: skip
    return Rendered(group_system(), summary, powershell, graph)


def remove_role_assignment() -> Rendered:
    """A directory role's assignment, or its PIM eligibility (an adminRemove request).

    learn.microsoft.com/graph/api/unifiedroleassignment-delete,
    learn.microsoft.com/graph/api/rbacapplication-post-roleeligibilityschedulerequests
    """
    m = pl.col("member_id")
    right = pl.col("right").fill_null("")
    eligible = right.str.ends_with(" (eligible)")
    scope = right.str.strip_suffix(" (eligible)").str.extract(r" @ ([^@]*)$", 1).fill_null("/")
    role_name = right.str.strip_suffix(" (eligible)").str.replace(r" @ [^@]*$", "")
    filt = cat(
        "principalId eq '",
        id_text(m),
        "' and roleDefinitionId eq '",
        id_text(pl.col("resource_id")),
        "' and directoryScopeId eq '",
        id_text(scope),
        "'",
    )
    assignment_ps = cat(
        'Get-MgRoleManagementDirectoryRoleAssignment -Filter "',
        filt,
        '" | ForEach-Object { Remove-MgRoleManagementDirectoryRoleAssignment '
        "-UnifiedRoleAssignmentId $_.Id }",
    )
    graph = (
        pl.when(eligible)
        .then(
            cat(
                "POST /roleManagement/directory/roleEligibilityScheduleRequests ",
                _eligibility_body(scope).struct.json_encode(),
            )
        )
        .otherwise(
            cat(
                "GET /roleManagement/directory/roleAssignments?$filter=",
                filt,
                "\nDELETE /roleManagement/directory/roleAssignments/{id of each}",
            )
        )
    )
    summary = cat(
        "Remove ",
        pl.when(eligible).then(pl.lit("PIM eligibility for ")).otherwise(pl.lit("")),
        comment_text(role_name),
        pl.when(scope == "/")
        .then(pl.lit(" (tenant-wide)"))
        .otherwise(cat(" scoped to ", pl.coalesce(pl.col("_g_name"), scope))),
        " from ",
        _member_name(),
    )
    powershell = pl.when(eligible).then(_eligibility_powershell(scope)).otherwise(assignment_ps)
    return Rendered(_CLOUD, summary, powershell, graph)


def _eligibility_body(scope: pl.Expr) -> pl.Expr:
    """The adminRemove roleEligibilityScheduleRequest for the member's role at ``scope``."""
    return pl.struct(
        action=pl.lit("adminRemove"),
        principalId=id_text(pl.col("member_id")),
        roleDefinitionId=id_text(pl.col("resource_id")),
        directoryScopeId=id_text(scope),
        justification=pl.lit("Separation of the forces (accessaudit)"),
    )


def _eligibility_powershell(scope: pl.Expr) -> pl.Expr:
    return cat(
        "New-MgRoleManagementDirectoryRoleEligibilityScheduleRequest -BodyParameter @{ "
        "action = 'adminRemove'; principalId = ",
        ps_quote(id_text(pl.col("member_id"))),
        "; roleDefinitionId = ",
        ps_quote(id_text(pl.col("resource_id"))),
        "; directoryScopeId = ",
        ps_quote(id_text(scope)),
        "; justification = 'Separation of the forces (accessaudit)' }",
    )


def remove_app_role_assignment() -> Rendered:
    """Every assignment of the principal on the application.

    learn.microsoft.com/graph/api/serviceprincipal-delete-approleassignedto
    """
    _, mq, _, mid = _ids()
    sp = pl.col("resource_id")
    powershell = cat(
        "Get-MgServicePrincipalAppRoleAssignedTo -ServicePrincipalId ",
        ps_quote(sp),
        " -All | Where-Object PrincipalId -eq ",
        mq,
        " | ForEach-Object { Remove-MgServicePrincipalAppRoleAssignedTo -ServicePrincipalId ",
        ps_quote(sp),
        " -AppRoleAssignmentId $_.Id }",
    )
    graph = cat(
        "GET /servicePrincipals/",
        id_text(sp),
        "/appRoleAssignedTo?$filter=principalId eq ",
        mid,
        "\nDELETE /servicePrincipals/",
        id_text(sp),
        "/appRoleAssignedTo/{id of each}",
    )
    roles = pl.col("_rights").list.eval(pl.element().str.extract(r": ([^:]*)$", 1)).list.join(", ")
    summary = cat(
        "Remove ",
        _member_name(),
        " from application ",
        _group_name(),
        " (",
        comment_text(roles),
        ")",
    )
    return Rendered(_CLOUD, summary, powershell, graph)


def remove_sid_history() -> Rendered:
    sid = pl.col("resource_id").cast(pl.String).str.replace_all(r"[^S0-9\-]", "")
    powershell = cat("Set-ADUser -Identity ", ps_quote(pl.col("member_id")),
                     " -Remove @{sIDHistory='", sid, "'}")  # fmt: skip
    summary = cat("Remove SID ", sid, " from the sIDHistory of ", _member_name())
    return Rendered(pl.lit("ad"), summary, powershell, _NULL)


def remove_guest() -> Rendered:
    """learn.microsoft.com/graph/api/user-delete"""
    _, mq, _, mid = _ids()
    summary = cat("Delete guest ", _member_name(), " of ", pl.col("_m_org").fill_null("?"))
    return Rendered(_CLOUD, summary, cat("Remove-MgUser -UserId ", mq), cat("DELETE /users/", mid))


def clear_manager() -> Rendered:
    """learn.microsoft.com/graph/api/user-delete-manager"""
    _, mq, _, mid = _ids()
    system = source_system("_m_source")
    powershell = (
        pl.when(system == "cloud")
        .then(cat("Remove-MgUserManagerByRef -UserId ", mq))
        .otherwise(cat("Set-ADUser -Identity ", mq, " -Clear manager"))
    )
    graph = pl.when(system == "cloud").then(cat("DELETE /users/", mid, "/manager/$ref"))
    summary = cat(
        "Clear the manager of ",
        _member_name(),
        " (the other force's); if needed, set one of ",
        pl.col("_m_org").fill_null("?"),
    )
    return Rendered(system, summary, powershell, graph)


# --- decisions: shared accounts, dual identities, the register -----------------------------


def decide_shared_account() -> Rendered:
    mq = ps_quote(pl.col("member_id"))
    system = source_system("_m_source")
    groups = (
        pl.when(system == "cloud")
        .then(cat("Get-MgUserMemberOf -UserId ", mq, " -All | Select-Object Id"))
        .otherwise(
            cat("Get-ADPrincipalGroupMembership -Identity ", mq, " | Select-Object Name,ObjectGUID")
        )
    )
    powershell = cat(groups, "  # decide with both forces: split, re-home or retire")
    summary = cat("Decide shared account ", _member_name(), ": split, re-home or retire")
    return Rendered(system, summary, powershell, _NULL)


def resolve_dual_identity() -> Rendered:
    powershell = cat(
        _inspect("member_id", "_m_source"),
        "; ",
        _inspect("resource_id", "_r_source"),
        "  # disable the account of the force the person has left",
    )
    summary = cat(
        "One person, two forces: ",
        _member_name(),
        " and ",
        pl.col("_r_name").fill_null("?"),
        "; keep one account",
    )
    return Rendered(source_system("_m_source"), summary, powershell, _NULL)


def review_exception() -> Rendered:
    exception = comment_text(pl.col("resource_id"))
    powershell = cat(
        "# exceptions register: renew exception ",
        exception,
        " (new expiry, approved by both forces) or remove it",
    )
    summary = cat("Renew or remove exception ", exception)
    return Rendered(pl.lit("register"), summary, powershell, _NULL)


def delete_group() -> Rendered:
    """learn.microsoft.com/graph/api/group-delete"""
    gq, _, gid, _ = _ids()
    cloud = pl.col("_g_mastered") == "cloud"
    powershell = (
        pl.when(cloud)
        .then(cat("Remove-MgGroup -GroupId ", gq))
        .otherwise(cat("Remove-ADGroup -Identity ", gq, " -Confirm:$false"))
    )
    graph = pl.when(cloud).then(cat("DELETE /groups/", gid))
    summary = cat("Delete empty group ", _group_name(), " (it only links the forces)")
    return Rendered(group_system(), summary, powershell, graph)
