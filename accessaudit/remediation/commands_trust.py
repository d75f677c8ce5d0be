"""Commands of trust actions: turn SID filtering (quarantine) on for a trust that lets the other
force's domain in, or remove the trust once the services it carries have moved.

A trust finding's ``right`` is ``<domain> -> <partner>`` (the DNS names of the domain holding
the trustedDomain object and of the domain it trusts) and its resource the trustedDomain
object's objectGUID. ``netdom trust <trusting> /domain:<trusted> /quarantine:yes`` enables SID
filter quarantining on the trusting side (learn.microsoft.com/windows-server/administration/
windows-commands/netdom-trust); ``/remove`` deletes the trust. Names keep only the characters a
DNS name holds, so a hostile ``trustPartner`` cannot add an argument.
"""

from __future__ import annotations

import polars as pl

from accessaudit.remediation.quoting import Rendered, cat

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
        "# once the services hosted across it have moved: netdom trust ",
        domain,
        " /domain:",
        partner,
        " /remove /force",
    )
    summary = cat("Remove the trust of ", domain, " in ", partner)
    return Rendered(pl.lit("ad"), summary, powershell, _NULL)
