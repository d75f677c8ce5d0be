"""Principals that are not the tenant's own staff: guests and external members with their home
domain, and service principals as accounts.

* **Guests and external members** (:func:`guest_expr`) are told apart by any of the signals
  Microsoft documents, never by ``userType`` alone; their home organisation's domain
  (:func:`home_domain_expr`) comes from ``mail``, the ``#EXT#`` user principal name or a
  federated identity's issuer, in that order, so a guest without a mail attribute is still
  attributed by the ``upn_suffix`` and ``mail_domain`` matchers.
* **Service principals** that are members of a group or an administrative unit, owners of a
  group or of another service principal, or holders of a directory role or app role are
  principals like users (:func:`service_accounts_frame`, :func:`principal_service_accounts`):
  an accounts row of kind ``service`` with the service principal's id, so nested expansion and
  every access rule see them. Devices and org contacts stay ``foreign`` members (no account).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import polars as pl

from accessaudit.model import (
    ACCOUNTS_SCHEMA,
    DOMAIN_PATTERN,
    AccountKind,
    MemberKind,
    conform,
    ext_home_domain,
)

#: Identity issuers of accounts homed elsewhere (learn.microsoft.com/entra/external-id/
#: user-properties): another Entra tenant, a Microsoft account, email one-time passcode,
#: social identity providers.
EXTERNAL_ISSUERS: Final = (
    "ExternalAzureAD",
    "MicrosoftAccount",
    "mail",
    "google.com",
    "facebook.com",
)
#: Issuers naming an identity provider, not a home organisation: never a guest's home domain.
NOT_HOME_ISSUERS: Final = ("google.com", "facebook.com", "live.com", "microsoftonline.com")
#: A federated identity's issuer: a domain, or a URI whose host is one.
_ISSUER_DOMAIN: Final = rf"^(?:[a-z][a-z0-9+.-]*://)?({DOMAIN_PATTERN})(?:[:/].*)?$"


def guest_expr() -> pl.Expr:
    """Guests and external members: any of #EXT# UPN, creationType Invitation, an
    externalUserState, userType Guest, or an external identity issuer. ``userType`` alone is
    not enough: external *members* have userType Member (external-id/user-properties)."""
    upn_ext = pl.col("userPrincipalName").str.to_uppercase().str.contains("#EXT#", literal=True)
    issuers = pl.col("identities").list.eval(
        pl.element().struct.field("issuer").is_in(list(EXTERNAL_ISSUERS))
    )
    return (
        upn_ext.fill_null(False)
        | (pl.col("creationType") == "Invitation").fill_null(False)
        | pl.col("externalUserState").is_not_null()
        | (pl.col("userType") == "Guest").fill_null(False)
        | issuers.list.any().fill_null(False)
    )


def _issuer_domain() -> pl.Expr:
    """The first ``federated`` identity's issuer that names a domain other than an identity
    provider's own (:data:`NOT_HOME_ISSUERS`) and other than the tenant's (the UPN's domain:
    an invitation not yet redeemed carries the host's domain: external-id/user-properties)."""
    tenant_domain = pl.col("userPrincipalName").str.to_lowercase().str.extract(r"@([^@]+)$", 1)
    federated = pl.element().struct.field("signInType").str.to_lowercase() == "federated"
    domain = pl.element().struct.field("issuer").str.to_lowercase().str.extract(_ISSUER_DOMAIN, 1)
    issuer = (
        pl.col("identities")
        .list.eval(pl.when(federated).then(domain).otherwise(None))
        .list.drop_nulls()
        .list.filter(~pl.element().is_in(list(NOT_HOME_ISSUERS)))
        .list.first()
    )
    return pl.when(issuer != tenant_domain.fill_null("")).then(issuer)


def home_domain_expr() -> pl.Expr:
    """A guest's or external member's home domain, lower-cased, over Graph's user properties:
    the first of

    1. the domain of ``mail`` ("for guests, mail is the home address": the user resource);
    2. the domain in a ``#EXT#`` user principal name (:func:`accessaudit.model.ext_home_domain`:
       between the last ``_`` and ``#EXT#``);
    3. the issuer of a ``federated`` identity naming a domain (a SAML/WS-Fed federation with the
       home organisation; an issuer URI gives its host), see :func:`_issuer_domain`.

    Null for the tenant's own users, and when no field names a domain. All three are in the
    users' ``$select`` already: no other permission."""
    mail = pl.col("mail").str.to_lowercase().str.extract(rf"@({DOMAIN_PATTERN})$", 1)
    home = pl.coalesce(mail, ext_home_domain("userPrincipalName"), _issuer_domain())
    return pl.when(guest_expr()).then(home).otherwise(None)


def service_accounts_frame(
    service_principals: Iterable[Mapping[str, Any]], source: str
) -> pl.DataFrame:
    """Accounts rows (kind ``service``) of service principals: ``username`` and ``display_name``
    its displayName (else its application's), so the ``name_prefix`` and ``names`` matchers read
    it like a user's; ``enabled`` accountEnabled; ``app_tenant`` appOwnerOrganizationId. No SID,
    UPN, mail, sign-in or creation time: Graph gives none for a service principal."""
    fields = ("id", "displayName", "appDisplayName", "description", "appOwnerOrganizationId")
    raw = pl.from_dicts(
        [
            {**{k: sp.get(k) for k in fields}, "accountEnabled": sp.get("accountEnabled")}
            for sp in service_principals
        ],
        schema=dict.fromkeys(fields, pl.String) | {"accountEnabled": pl.Boolean},
    )
    name = pl.coalesce("displayName", "appDisplayName")
    df = raw.select(
        pl.lit(source).alias("source"),
        pl.col("id").alias("account_id"),
        name.alias("username"),
        name.alias("display_name"),
        pl.col("description"),
        pl.lit(AccountKind.SERVICE.value).alias("kind"),
        pl.col("accountEnabled").alias("enabled"),
        pl.lit([], dtype=pl.List(pl.String)).alias("sid_history"),
        pl.lit(False).alias("privileged"),
        pl.col("appOwnerOrganizationId").str.to_lowercase().alias("app_tenant"),
    )
    return conform(df, ACCOUNTS_SCHEMA)


def principal_service_accounts(
    accounts: pl.DataFrame,
    service_principals: Iterable[Mapping[str, Any]],
    memberships: pl.DataFrame,
    grants: pl.DataFrame,
    source: str,
) -> pl.DataFrame:
    """``accounts`` with an accounts row for every listed service principal that is a principal
    here: a member (of a group or an administrative unit), an owner (of a group or of another
    service principal: ownership grants) or the holder of a directory role or app role.

    Service principals are listed in full on every run (they are in no delta), so the previous
    run's service rows (a delta round starts from them) are replaced, never kept. An
    application that is only a resource (roles assigned to it, owners of it) keeps only its
    groups row (kind ``app-role``); one that is both has both rows under one id, which the views
    read by role (``principals`` takes the account row; applications and owners the group row).
    """
    members = memberships.filter(pl.col("member_kind") == MemberKind.ACCOUNT.value)
    principals = set(members.get_column("member_id").to_list()) | set(
        grants.get_column("principal_id").to_list()
    )
    service = service_accounts_frame(
        [sp for sp in service_principals if str(sp.get("id")) in principals], source
    )
    users = accounts.filter(pl.col("kind") != AccountKind.SERVICE.value)
    return pl.concat([users, service], how="vertical")
