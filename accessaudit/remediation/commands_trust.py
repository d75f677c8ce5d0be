"""Commands across domains: turn SID filtering (quarantine) on for a trust that lets the other
force's domain in, or remove the trust once the services it carries have moved; and take a
member of another domain out of a group (the group holds its foreign principal, by SID) or say
what to change when it is in the group through its sIDHistory.

A trust finding's ``right`` is ``<domain> -> <partner>`` (the DNS names of the domain holding
the trustedDomain object and of the domain it trusts) and its resource the trustedDomain
object's objectGUID. ``netdom trust <trusting> /domain:<trusted> /quarantine:yes`` enables SID
filter quarantining on the trusting side (learn.microsoft.com/windows-server/administration/
windows-commands/netdom-trust); ``/remove`` deletes the trust. Names keep only the characters a
DNS name holds, so a hostile ``trustPartner`` cannot add an argument.
"""

from __future__ import annotations

import polars as pl

from accessaudit.remediation.quoting import Rendered, cat, ps_quote

_NULL = pl.lit(None, pl.String)


def _sides() -> tuple[pl.Expr, pl.Expr]:
    parts = pl.col("right").cast(pl.String).str.split(" -> ")
    clean = r"[^A-Za-z0-9.\-]"
    return (
        parts.list.get(0, null_on_oob=True).str.replace_all(clean, "").fill_null("?"),
        parts.list.get(1, null_on_oob=True).str.replace_all(clean, "").fill_null("?"),
    )


def quarantine_trust() -> Rendered:
    domain, partner = _sides()
    powershell = cat("netdom trust ", domain, " /domain:", partner, " /quarantine:yes")
    summary = cat("Turn SID filtering on for the trust of ", domain, " in ", partner)
    return Rendered(pl.lit("ad"), summary, powershell, _NULL)


def remove_trust() -> Rendered:
    domain, partner = _sides()
    powershell = cat(
        "# only once the services hosted across it have moved:\nnetdom trust ",
        domain,
        " /domain:",
        partner,
        " /remove /force",
    )
    summary = cat("Remove the trust of ", domain, " in ", partner)
    return Rendered(pl.lit("ad"), summary, powershell, _NULL)


def remove_foreign(gq: pl.Expr) -> pl.Expr:
    """The group holds the member of another domain as a foreign security principal named by
    the member's SID: ``Remove-ADGroupMember`` finds it by that SID in the group's domain (its
    objectGUID is the other domain's and means nothing there)."""
    sid = pl.col("_m_sid").cast(pl.String).str.replace_all(r"[^S0-9\-]", "")
    return cat(
        "Remove-ADGroupMember -Identity ", gq, " -Members ", ps_quote(sid), " -Confirm:$false"
    )


def through_sid_history(gq: pl.Expr, mq: pl.Expr) -> pl.Expr:
    """The account is in the group through a SID in its sIDHistory (a former account's, or a
    foreign principal's): the change is on the account, once the group's resources have been
    re-permissioned, or on the group, removing the SID's own principal."""
    sids = pl.col("_m_sid_history").list.eval(
        pl.element().str.replace_all(r"[^S0-9\-]", "").filter(pl.element() != "")
    )
    remove = sids.list.eval(
        cat("\nRemove-ADGroupMember -Identity \x01 -Members ", ps_quote(pl.element()),
            " -Confirm:$false")
    ).list.join("").str.replace_all("\x01", gq, literal=True)  # fmt: skip
    return cat(
        "# ", mq, " is in ", gq, " through a SID in its sIDHistory (a former account's, or a ",
        "foreign principal's): the group loses that SID's principal, nothing else; later, once ",
        "nothing relies on it, remove the SID from the account (Set-ADUser -Identity ", mq,
        " -Remove @{sIDHistory=...})",
        remove.fill_null(""),
    )  # fmt: skip
