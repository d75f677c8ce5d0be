"""Commands for rights, identities and exceptions: owners, directory roles, app roles, SID
history, guests, managers, shared accounts, dual identities, empty groups, the register.

Every entry is (system, summary, powershell, graph) as polars expressions over the action row
and the context columns of :func:`accessaudit.remediation.commands._context` (``_g_*`` the
group, ``_m_*`` the member or account, ``_r_*`` the other account of a dual identity,
``_rights`` the rights of the findings resolved). Sources for each Graph call are cited inline.
"""

from __future__ import annotations

import polars as pl

from accessaudit.model import ActionKind, GroupKind
from accessaudit.remediation.quoting import (
    comment_text,
    group_system,
    id_text,
    ps_quote,
    source_system,
)

A = ActionKind
Commands = dict[ActionKind, tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]]

_CLOUD = pl.lit("cloud")
_NULL = pl.lit(None, pl.String)


def _cat(*parts: pl.Expr | str) -> pl.Expr:
    return pl.concat_str([pl.lit(p) if isinstance(p, str) else p for p in parts])


def _inspect(id_col: str, source_col: str) -> pl.Expr:
    """Show one account's identifying attributes, in AD or in Entra."""
    q = ps_quote(pl.col(id_col))
    return (
        pl.when(source_system(source_col) == "cloud")
        .then(
            _cat(
                "Get-MgUser -UserId ",
                q,
                " -Property displayName,companyName,employeeId,mail,accountEnabled | Format-List",
            )
        )
        .otherwise(
            _cat(
                "Get-ADUser -Identity ",
                q,
                " -Properties company,employeeID,mail,lastLogonTimestamp,sIDHistory | Format-List",
            )
        )
    )


def commands() -> Commands:
    g, m = pl.col("group_id"), pl.col("member_id")
    gq, mq = ps_quote(g), ps_quote(m)
    gname = pl.col("_g_name").fill_null("?")
    mname = pl.col("_m_name").fill_null("?")
    cloud = pl.col("_g_mastered") == "cloud"

    # --- owners: managedBy in AD; owners of a cloud-only group, or of an enterprise
    # application (its service principal), through Graph ------------------------------------
    # learn.microsoft.com/graph/api/group-delete-owners: DELETE /groups/{id}/owners/{id}/$ref;
    # learn.microsoft.com/graph/api/serviceprincipal-delete-owners:
    # DELETE /servicePrincipals/{id}/owners/{id}/$ref
    app = (pl.col("_g_kind") == GroupKind.APP_ROLE.value).fill_null(False)
    owner_ps = (
        pl.when(app)
        .then(
            _cat("Remove-MgServicePrincipalOwnerByRef -ServicePrincipalId ", gq,
                 " -DirectoryObjectId ", mq)
        )
        .when(cloud)
        .then(_cat("Remove-MgGroupOwnerByRef -GroupId ", gq, " -DirectoryObjectId ", mq))
        .otherwise(_cat("Set-ADGroup -Identity ", gq, " -Clear managedBy"))
    )  # fmt: skip
    owner_graph = (
        pl.when(app)
        .then(_cat("DELETE /servicePrincipals/", id_text(g), "/owners/", id_text(m), "/$ref"))
        .when(cloud)
        .then(_cat("DELETE /groups/", id_text(g), "/owners/", id_text(m), "/$ref"))
    )
    owner_summary = (
        pl.when(app)
        .then(
            _cat("Remove ", mname, " as owner of application ", gname,
                 " (an owner can add credentials to it and act as it)")
        )
        .otherwise(
            _cat("Give ", gname, " an owner of its own force, then remove owner ", mname)
        )
    )  # fmt: skip

    # --- directory roles: assignments, or PIM eligibility (an adminRemove request) ---------
    # learn.microsoft.com/graph/api/unifiedroleassignment-delete,
    # learn.microsoft.com/graph/api/rbacapplication-post-roleeligibilityschedulerequests
    right = pl.col("right").fill_null("")
    eligible = right.str.ends_with(" (eligible)")
    scope = right.str.strip_suffix(" (eligible)").str.extract(r" @ ([^@]*)$", 1).fill_null("/")
    role_name = right.str.strip_suffix(" (eligible)").str.replace(r" @ [^@]*$", "")
    filt = _cat(
        "principalId eq '",
        id_text(m),
        "' and roleDefinitionId eq '",
        id_text(pl.col("resource_id")),
        "' and directoryScopeId eq '",
        id_text(scope),
        "'",
    )
    assignment_ps = _cat(
        'Get-MgRoleManagementDirectoryRoleAssignment -Filter "',
        filt,
        '" | ForEach-Object { Remove-MgRoleManagementDirectoryRoleAssignment '
        "-UnifiedRoleAssignmentId $_.Id }",
    )
    body = pl.struct(
        action=pl.lit("adminRemove"),
        principalId=id_text(m),
        roleDefinitionId=id_text(pl.col("resource_id")),
        directoryScopeId=id_text(scope),
        justification=pl.lit("Separation of the forces (accessaudit)"),
    )
    eligibility_ps = _cat(
        "New-MgRoleManagementDirectoryRoleEligibilityScheduleRequest -BodyParameter @{ "
        "action = 'adminRemove'; principalId = ",
        ps_quote(id_text(m)),
        "; roleDefinitionId = ",
        ps_quote(id_text(pl.col("resource_id"))),
        "; directoryScopeId = ",
        ps_quote(id_text(scope)),
        "; justification = 'Separation of the forces (accessaudit)' }",
    )
    role_ps = pl.when(eligible).then(eligibility_ps).otherwise(assignment_ps)
    role_graph = (
        pl.when(eligible)
        .then(
            _cat(
                "POST /roleManagement/directory/roleEligibilityScheduleRequests ",
                body.struct.json_encode(),
            )
        )
        .otherwise(
            _cat(
                "GET /roleManagement/directory/roleAssignments?$filter=",
                filt,
                "\nDELETE /roleManagement/directory/roleAssignments/{id of each}",
            )
        )
    )
    role_summary = _cat(
        "Remove ",
        pl.when(eligible).then(pl.lit("PIM eligibility for ")).otherwise(pl.lit("")),
        comment_text(role_name),
        pl.when(scope == "/")
        .then(pl.lit(" (tenant-wide)"))
        .otherwise(_cat(" scoped to ", pl.coalesce(pl.col("_g_name"), scope))),
        " from ",
        mname,
    )

    # --- app roles: every assignment of the principal on the application ------------------
    # learn.microsoft.com/graph/api/serviceprincipal-delete-approleassignedto
    sp = pl.col("resource_id")
    app_ps = _cat(
        "Get-MgServicePrincipalAppRoleAssignedTo -ServicePrincipalId ",
        ps_quote(sp),
        " -All | Where-Object PrincipalId -eq ",
        mq,
        " | ForEach-Object { Remove-MgServicePrincipalAppRoleAssignedTo -ServicePrincipalId ",
        ps_quote(sp),
        " -AppRoleAssignmentId $_.Id }",
    )
    app_graph = _cat(
        "GET /servicePrincipals/",
        id_text(sp),
        "/appRoleAssignedTo?$filter=principalId eq ",
        id_text(m),
        "\nDELETE /servicePrincipals/",
        id_text(sp),
        "/appRoleAssignedTo/{id of each}",
    )
    roles = pl.col("_rights").list.eval(pl.element().str.extract(r": ([^:]*)$", 1)).list.join(", ")
    app_summary = _cat(
        "Remove ", mname, " from application ", gname, " (", comment_text(roles), ")"
    )

    # --- SID history ------------------------------------------------------------------------
    sid = pl.col("resource_id").cast(pl.String).str.replace_all(r"[^S0-9\-]", "")
    sid_ps = _cat("Set-ADUser -Identity ", mq, " -Remove @{sIDHistory='", sid, "'}")
    sid_summary = _cat("Remove SID ", sid, " from the sIDHistory of ", mname)

    # --- guests -----------------------------------------------------------------------------
    # learn.microsoft.com/graph/api/user-delete
    guest_ps = _cat("Remove-MgUser -UserId ", mq)
    guest_graph = _cat("DELETE /users/", id_text(m))
    guest_summary = _cat("Delete guest ", mname, " of ", pl.col("_m_org").fill_null("?"))

    # --- managers ---------------------------------------------------------------------------
    # learn.microsoft.com/graph/api/user-delete-manager
    manager_system = source_system("_m_source")
    manager_ps = (
        pl.when(manager_system == "cloud")
        .then(_cat("Remove-MgUserManagerByRef -UserId ", mq))
        .otherwise(_cat("Set-ADUser -Identity ", mq, " -Clear manager"))
    )
    manager_graph = pl.when(manager_system == "cloud").then(
        _cat("DELETE /users/", id_text(m), "/manager/$ref")
    )
    manager_summary = _cat(
        "Set a manager of ",
        pl.col("_m_org").fill_null("?"),
        " for ",
        mname,
        " (clear the other force's manager)",
    )

    # --- decisions: shared accounts, dual identities, the register --------------------------
    shared_system = source_system("_m_source")
    shared_ps = (
        pl.when(shared_system == "cloud")
        .then(_cat("Get-MgUserMemberOf -UserId ", mq, " -All | Select-Object Id"))
        .otherwise(
            _cat(
                "Get-ADPrincipalGroupMembership -Identity ", mq, " | Select-Object Name,ObjectGUID"
            )
        )
    )
    shared_ps = _cat(shared_ps, "  # decide with both forces: split, re-home or retire")
    shared_summary = _cat("Decide shared account ", mname, ": split, re-home or retire")
    dual_ps = _cat(
        _inspect("member_id", "_m_source"),
        "; ",
        _inspect("resource_id", "_r_source"),
        "  # disable the account of the force the person has left",
    )
    dual_summary = _cat(
        "One person, two forces: ",
        mname,
        " and ",
        pl.col("_r_name").fill_null("?"),
        "; keep one account",
    )
    exception = comment_text(pl.col("resource_id"))
    exc_ps = _cat(
        "# exceptions register: renew exception ",
        exception,
        " (new expiry, approved by both forces) or remove it",
    )
    exc_summary = _cat("Renew or remove exception ", exception)

    # --- empty groups -----------------------------------------------------------------------
    # learn.microsoft.com/graph/api/group-delete
    delete_ps = (
        pl.when(cloud)
        .then(_cat("Remove-MgGroup -GroupId ", gq))
        .otherwise(_cat("Remove-ADGroup -Identity ", gq, " -Confirm:$false"))
    )
    delete_graph = pl.when(cloud).then(_cat("DELETE /groups/", id_text(g)))
    delete_summary = _cat("Delete empty group ", gname, " (it only links the forces)")

    return {
        A.REMOVE_OWNER: (group_system(), owner_summary, owner_ps, owner_graph),
        A.REMOVE_ROLE_ASSIGNMENT: (_CLOUD, role_summary, role_ps, role_graph),
        A.REMOVE_APP_ROLE_ASSIGNMENT: (_CLOUD, app_summary, app_ps, app_graph),
        A.REMOVE_SID_HISTORY: (pl.lit("ad"), sid_summary, sid_ps, _NULL),
        A.REMOVE_GUEST: (_CLOUD, guest_summary, guest_ps, guest_graph),
        A.CLEAR_MANAGER: (manager_system, manager_summary, manager_ps, manager_graph),
        A.DECIDE_SHARED_ACCOUNT: (shared_system, shared_summary, shared_ps, _NULL),
        A.RESOLVE_DUAL_IDENTITY: (source_system("_m_source"), dual_summary, dual_ps, _NULL),
        A.REVIEW_EXCEPTION: (pl.lit("register"), exc_summary, exc_ps, _NULL),
        A.DELETE_GROUP: (group_system(), delete_summary, delete_ps, delete_graph),
    }
