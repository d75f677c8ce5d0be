"""Commands of control actions: remove a trustee's access control entries from an AD object,
or give an object owned by the other force back to the domain's administrators.

The object is named by its objectGUID (``Get-ADObject -Identity <guid>``), its DN read from
the directory at run time, never from the snapshot; the trustee by its SID
(``GetAccessRules($true, $false, [SecurityIdentifier])``: explicit entries only, identities as
SIDs, so no name can be redirected). Removing the entries set on an OU removes their inherited
copies below it. ``Get-Acl`` / ``Set-Acl`` on the ``AD:`` drive are the ActiveDirectory
module's (learn.microsoft.com/powershell/module/microsoft.powershell.security/set-acl);
``RemoveAccessRuleSpecific`` removes exactly the rule given
(learn.microsoft.com/dotnet/api/system.security.accesscontrol.directoryobjectsecurity).
``dsacls "<dn>" /R <trustee>`` is the equivalent without PowerShell (it removes every explicit
entry of the trustee on the object).
"""

from __future__ import annotations

import polars as pl

from accessaudit.remediation.quoting import Rendered, cat, comment_text

_NULL = pl.lit(None, pl.String)


def _guid() -> pl.Expr:
    """The object's GUID, only hex digits and hyphens kept."""
    return pl.col("resource_id").cast(pl.String).str.replace_all(r"[^0-9A-Fa-f\-]", "")


def _trustee_sid() -> pl.Expr:
    """The trustee's SID: the member's (an account or group) or the SID the finding names."""
    member = pl.col("member_id").cast(pl.String)
    sid = pl.coalesce(pl.col("_m_sid"), pl.when(member.str.starts_with("S-1-")).then(member))
    return sid.cast(pl.String).str.replace_all(r"[^S0-9\-]", "").fill_null("?")


def _trustee_name() -> pl.Expr:
    return comment_text(pl.coalesce(pl.col("_m_name"), pl.col("member_id")).fill_null("?"))


def remove_ace() -> Rendered:
    guid, sid = _guid(), _trustee_sid()
    powershell = cat(
        "$p = 'AD:\\' + (Get-ADObject -Identity '",
        guid,
        "').DistinguishedName; ",
        "$acl = Get-Acl -Path $p; ",
        "$sid = [Security.Principal.SecurityIdentifier]'",
        sid,
        "'; ",
        "$acl.GetAccessRules($true, $false, [Security.Principal.SecurityIdentifier]) | ",
        "Where-Object { $_.IdentityReference -eq $sid } | ",
        "ForEach-Object { $acl.RemoveAccessRuleSpecific($_) }; ",
        "Set-Acl -Path $p -AclObject $acl",
    )
    summary = cat(
        "Remove the access control entries of ", _trustee_name(), " (", sid, ") on AD object ",
        guid, ": ", comment_text(pl.col("right").fill_null("control")),
    )  # fmt: skip
    return Rendered(pl.lit("ad"), summary, powershell, _NULL)


def change_owner() -> Rendered:
    guid, sid = _guid(), _trustee_sid()
    powershell = cat(
        "$p = 'AD:\\' + (Get-ADObject -Identity '",
        guid,
        "').DistinguishedName; ",
        "$acl = Get-Acl -Path $p; ",
        "$da = [Security.Principal.SecurityIdentifier]((Get-ADDomain).DomainSID.Value + '-512'); ",
        "if ($acl.GetOwner([Security.Principal.SecurityIdentifier]).Value -eq '",
        sid,
        "') ",
        "{ $acl.SetOwner($da); Set-Acl -Path $p -AclObject $acl }",
    )
    summary = cat(
        "Make Domain Admins the owner of AD object ", guid, " (owned by ", _trustee_name(),
        ", ", sid, ")",
    )  # fmt: skip
    return Rendered(pl.lit("ad"), summary, powershell, _NULL)
