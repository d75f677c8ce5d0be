"""Commands of data-path actions: a trustee's entries on a folder or share, a mailbox
permission, an Azure role assignment.

Resources are named by what their id holds (ids are built by the connectors from what the
service calls them, so nothing is looked up by display name): a folder ``smb://server/share/p``
is ``\\\\server\\share\\p``, a share ``smb://server/share``, a mailbox ``mailbox:<guid>`` its
GUID (``-Identity`` takes it), an Azure scope its ARM id. Trustees by SID (folders, shares),
UPN (mailboxes) or Entra object id (Azure). Every text is quoted as a PowerShell literal.

* folder: ``icacls <path> /remove:g *<SID>`` removes the trustee's explicit allow entries on
  the folder where they are set; the inherited copies below follow
  (learn.microsoft.com/windows-server/administration/windows-commands/icacls);
* share: ``Revoke-SmbShareAccess`` (learn.microsoft.com/powershell/module/smbshare);
* mailbox: ``Remove-MailboxPermission -AccessRights FullAccess`` (and the other mailbox
  rights), ``Remove-RecipientPermission -AccessRights SendAs``, ``Set-Mailbox
  -GrantSendOnBehalfTo @{remove=...}``, ``Remove-MailboxFolderPermission`` for a folder;
* Azure: ``Remove-AzRoleAssignment -ObjectId -RoleDefinitionName -Scope``, and in ``graph`` the
  ARM request that does the same (list the assignment at the scope for the principal, then
  ``DELETE`` it: learn.microsoft.com/rest/api/authorization/role-assignments/delete).
"""

from __future__ import annotations

import polars as pl

from accessaudit.remediation.quoting import Rendered, cat, comment_text, id_text, ps_quote

_NULL = pl.lit(None, pl.String)


def _trustee_sid() -> pl.Expr:
    member = pl.col("member_id").cast(pl.String)
    sid = pl.coalesce(pl.col("_m_sid"), pl.when(member.str.starts_with("S-1-")).then(member))
    return sid.cast(pl.String).str.replace_all(r"[^S0-9\-]", "").fill_null("?")


def _trustee_name() -> pl.Expr:
    return comment_text(pl.coalesce(pl.col("_m_name"), pl.col("member_id")).fill_null("?"))


def _unc() -> pl.Expr:
    """``smb://server/share/a/b`` -> ``\\\\server\\share\\a\\b``."""
    rest = pl.col("resource_id").cast(pl.String).str.strip_prefix("smb://")
    return pl.lit("\\\\") + rest.str.strip_suffix("/").str.replace_all("/", "\\", literal=True)


def remove_folder_ace() -> Rendered:
    rid = pl.col("resource_id").cast(pl.String)
    sid = _trustee_sid()
    parts = rid.str.strip_prefix("smb://").str.split("/")
    is_share = parts.list.len() == 2
    share_ps = cat(
        "$a = ([Security.Principal.SecurityIdentifier]'", sid, "').Translate("
        "[Security.Principal.NTAccount]).Value; Revoke-SmbShareAccess -CimSession ",
        ps_quote(parts.list.get(0)), " -Name ", ps_quote(parts.list.get(1)),
        " -AccountName $a -Force",
    )  # fmt: skip
    folder_ps = cat("icacls ", ps_quote(_unc()), " /remove:g ", ps_quote(pl.lit("*") + sid))
    summary = cat(
        "Remove the ", pl.when(is_share).then(pl.lit("share permission")).otherwise(
            pl.lit("NTFS entries")), " of ", _trustee_name(), " (", sid, ") on ",
        comment_text(_unc()), ": ", comment_text(pl.col("right").fill_null("access")),
    )  # fmt: skip
    powershell = pl.when(is_share).then(share_ps).otherwise(folder_ps)
    return Rendered(pl.lit("files"), summary, powershell, _NULL)


def remove_mailbox_permission() -> Rendered:
    mailbox = ps_quote(
        pl.col("resource_id")
        .cast(pl.String)
        .str.strip_prefix("mailbox:")
        .str.replace_all(r"[^0-9A-Za-z@._\-]", "")
    )
    user = ps_quote(pl.coalesce(pl.col("_m_upn"), pl.col("_m_name"), pl.col("member_id")))
    right = pl.col("right").fill_null("")
    folder = right.str.extract(r"^Folder (.*): [^:]*$", 1)
    powershell = (
        pl.when(right == "SendAs")
        .then(cat("Remove-RecipientPermission -Identity ", mailbox, " -Trustee ", user,
                  " -AccessRights SendAs -Confirm:$false"))
        .when(right == "SendOnBehalf")
        .then(cat("Set-Mailbox -Identity ", mailbox, " -GrantSendOnBehalfTo @{remove=", user,
                  "}"))
        .when(folder.is_not_null())
        .then(cat("Remove-MailboxFolderPermission -Identity (", mailbox, " + ':\\' + ",
                  ps_quote(folder), ") -User ", user, " -Confirm:$false"))
        .otherwise(cat("Remove-MailboxPermission -Identity ", mailbox, " -User ", user,
                       " -AccessRights ", ps_quote(right), " -InheritanceType All "
                       "-Confirm:$false"))
    )  # fmt: skip
    summary = cat(
        "Remove ", comment_text(right), " of ", _trustee_name(), " on mailbox ",
        comment_text(pl.col("resource_id")),
    )  # fmt: skip
    return Rendered(pl.lit("exchange"), summary, powershell, _NULL)


def remove_azure_role_assignment() -> Rendered:
    scope = id_text(pl.col("resource_id"))
    principal = id_text(pl.col("member_id"))
    role = pl.col("right").fill_null("")
    powershell = cat(
        "Remove-AzRoleAssignment -ObjectId ", ps_quote(principal), " -RoleDefinitionName ",
        ps_quote(role), " -Scope ", ps_quote(scope),
    )  # fmt: skip
    graph = cat(
        "GET https://management.azure.com", scope,
        "/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"
        "&$filter=atScope()+and+assignedTo('", principal, "') ; then DELETE https://"
        "management.azure.com{id of the assignment of role ", comment_text(role),
        "}?api-version=2022-04-01",
    )  # fmt: skip
    summary = cat(
        "Remove the Azure role ", comment_text(role), " of ", _trustee_name(), " at ",
        comment_text(scope),
    )  # fmt: skip
    return Rendered(pl.lit("azure"), summary, powershell, graph)
