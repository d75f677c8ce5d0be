"""Serve any canonical dataset: :func:`tenant_from_tables` (canonical frames -> a Tenant)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping
from typing import Any

import polars as pl

from accessaudit.graphemu.schema import DEFAULT_ACCESS_ROLE
from accessaudit.graphemu.tenant import Tenant, iso, new_id
from accessaudit.model import DOMAIN_PATTERN

_GUEST_IDENTITY = {"signInType": "federated", "issuer": "ExternalAzureAD", "issuerAssignedId": None}
_EXT_DOMAIN = re.compile(rf"_({DOMAIN_PATTERN})#ext#@[^@]*$")


def _guest_identities(row: dict[str, Any]) -> list[dict[str, Any]]:
    """A guest's identities: another Entra tenant's (``ExternalAzureAD``), or, when its
    ``home_domain`` is in neither its mail nor its ``#EXT#`` UPN, a SAML/WS-Fed federation with
    that domain (``federated``, issuer the domain: external-id/user-properties)."""
    home = (row.get("home_domain") or "").lower()
    mail = (row.get("mail") or "").lower()
    ext = _EXT_DOMAIN.search((row.get("upn") or "").lower())
    if not home or mail.endswith("@" + home) or (ext and ext.group(1) == home):
        return [_GUEST_IDENTITY]
    return [{"signInType": "federated", "issuer": home, "issuerAssignedId": None}]


def _user_props(row: dict[str, Any], domain: str) -> dict[str, Any]:
    guest = row.get("kind") == "guest"
    synced = bool(row.get("sid") or row.get("dn")) and not guest
    props: dict[str, Any] = {
        "id": row["account_id"],
        "userPrincipalName": row.get("upn"),
        "displayName": row.get("display_name"),
        "mail": row.get("mail"),
        "mailNickname": row.get("username"),
        "givenName": None,
        "surname": None,
        "jobTitle": None,
        "businessPhones": [],
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "employeeId": row.get("employee_id"),
        "companyName": row.get("company"),
        "department": row.get("department"),
        "accountEnabled": row.get("enabled"),
        "createdDateTime": iso(row.get("created")),
        "lastPasswordChangeDateTime": iso(row.get("pwd_last_set")),
        "userType": "Guest" if guest else "Member",
        "creationType": "Invitation" if guest else None,
        "externalUserState": "Accepted" if guest else None,
        "onPremisesSyncEnabled": True if synced else None,
        "onPremisesSecurityIdentifier": row.get("sid") if synced else None,
        "onPremisesSamAccountName": row.get("username") if synced else None,
        "onPremisesDistinguishedName": row.get("dn") if synced else None,
        "onPremisesDomainName": None,
        "identities": _guest_identities(row)
        if guest
        else [
            {
                "signInType": "userPrincipalName",
                "issuer": domain,
                "issuerAssignedId": row.get("upn"),
            }
        ],
    }
    if row.get("last_logon") is not None:
        props["signInActivity"] = {
            "lastSignInDateTime": iso(row["last_logon"]),
            "lastSignInRequestId": new_id(),
            "lastNonInteractiveSignInDateTime": "0001-01-01T00:00:00Z",
            "lastNonInteractiveSignInRequestId": "",
            "lastSuccessfulSignInDateTime": "",
            "lastSuccessfulSignInRequestId": "",
        }
    return props


def _group_props(row: dict[str, Any]) -> dict[str, Any]:
    """A groups row as a Graph group. ``membership_rule``, ``role_assignable`` and
    ``mail_enabled`` are served as they are; null (a source that does not know) falls back to
    what the kind and ``privileged`` imply."""
    kind = row.get("kind")
    synced = row.get("mastered") == "ad"
    rule = row.get("membership_rule")
    role_assignable = row.get("role_assignable")
    if role_assignable is None:
        role_assignable = bool(row.get("privileged")) and not synced
    mail_enabled = row.get("mail_enabled")
    if mail_enabled is None:
        mail_enabled = kind in ("m365", "distribution")
    types = ["Unified"] if kind == "m365" else []
    return {
        "id": row["group_id"],
        "displayName": row.get("name"),
        "description": row.get("description"),
        "groupTypes": types + (["DynamicMembership"] if rule is not None else []),
        "securityEnabled": kind not in ("m365", "distribution"),
        "mailEnabled": bool(mail_enabled),
        "mail": None,
        "mailNickname": None,
        "isAssignableToRole": bool(role_assignable),
        "membershipRule": rule,
        "membershipRuleProcessingState": "On" if rule is not None else None,
        "onPremisesSyncEnabled": True if synced else None,
        "onPremisesSecurityIdentifier": row.get("sid") if synced else None,
        "onPremisesSamAccountName": row.get("name") if synced else None,
        "securityIdentifier": None if synced else row.get("sid"),
        "visibility": None,
        "createdDateTime": "2020-01-01T00:00:00Z",
    }


#: Canonical group kinds that are not Graph groups: an enterprise application (its service
#: principal; rights in it are app-role assignments) and an administrative unit.
APP_ROLE, ADMIN_UNIT = "app-role", "administrative-unit"


def _rows(df: pl.DataFrame | None, source: str | None) -> list[dict[str, Any]]:
    if df is None:
        return []
    if source is not None and "source" in df.columns:
        df = df.filter(pl.col("source") == source)
    return df.to_dicts()


def parse_role_right(right: str) -> tuple[str, str, bool]:
    """``"Global Administrator @ / (eligible)"`` -> (name, scope, eligible)."""
    eligible = right.endswith(" (eligible)")
    text = right.removesuffix(" (eligible)")
    name, sep, scope = text.rpartition(" @ ")
    return (name, scope, eligible) if sep else (text, "/", eligible)


def _hide_membership(tenant: Tenant, group_ids: Collection[str]) -> None:
    for group_id in group_ids:
        tenant.objects[group_id]["visibility"] = "HiddenMembership"


def tenant_from_sample(tables: Mapping[str, pl.DataFrame], **options: Any) -> Tenant:
    """:func:`tenant_from_tables` of a dict of the canonical tables (a sample, a snapshot)."""
    return tenant_from_tables(
        tables["accounts"], tables["groups"], tables["memberships"], tables.get("grants"), **options
    )


def tenant_from_tables(
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
    grants: pl.DataFrame | None = None,
    *,
    tenant_id: str = "11111111-2222-3333-4444-555555555555",
    domain: str = "alliance.onmicrosoft.com",
    source: str | None = None,
    premium: bool = True,
    p2: bool = True,
    hidden_membership: Collection[str] = (),
) -> Tenant:
    """A tenant serving a canonical dataset.

    Mapping (the inverse of the connector's): accounts -> users (guests get ``userType`` Guest,
    ``creationType`` Invitation and an ``ExternalAzureAD`` identity, or a ``federated`` one
    issued by their ``home_domain`` when neither mail nor UPN carries it; accounts with a SID or
    DN are on-premises synced; an Entra source's ``service`` accounts are service principals,
    ``app_tenant`` their appOwnerOrganizationId), groups -> groups (``mastered`` "ad" -> synced;
    kind m365 -> ``Unified``; a ``membership_rule`` -> ``DynamicMembership`` serving that rule),
    memberships -> direct members (``foreign`` members become org contacts), grants -> role
    assignments / eligibilities (``right`` "<role> @ <scope>[ (eligible)]"),
    app-role assignments (``right`` "<app>: <role>") and owners (of groups and of service
    principals). Groups rows of kind ``app-role`` become service principals (``displayName`` =
    name) whose ``owners`` are the service principal's owners (serviceprincipal-list-owners:
    users or service principals), and rows of kind ``administrative-unit`` administrative units
    whose memberships are the unit's members; Graph has no members of a service principal (a
    right in an application is an app-role assignment) and no owners of an administrative unit,
    so such rows are refused. ``source`` selects the rows of one source; None serves every row.
    The canonical tables carry no group ``visibility``: the groups whose ids are in
    ``hidden_membership`` get ``HiddenMembership`` (members only for Member.Read.Hidden).
    """
    tenant = Tenant(tenant_id=tenant_id, domain=domain, premium=premium, p2=p2)
    for row in _rows(accounts, source):
        if _is_service_principal(row):
            tenant.add_service_principal(
                row.get("display_name") or row.get("username") or row["account_id"],
                id=row["account_id"],
                description=row.get("description"),
                accountEnabled=row.get("enabled") is not False,
                appOwnerOrganizationId=row.get("app_tenant") or tenant_id,
                track=False,
            )
        else:
            tenant.add_user(track=False, **_user_props(row, domain))
    group_rows, app_rows = _add_groups(tenant, _rows(groups, source))
    _hide_membership(tenant, hidden_membership)
    edges = memberships
    if source is not None and "source" in edges.columns:
        edges = edges.filter(pl.col("source") == source)
    _add_members(tenant, edges)
    for row in group_rows:
        for owner in row.get("owners") or []:
            if owner in tenant.types:
                tenant.add_owner(row["group_id"], owner, track=False)
    for row in app_rows:
        for owner in row.get("owners") or []:
            if tenant.type_of(owner) in ("user", "servicePrincipal"):
                tenant.sp_owners[row["group_id"]].append(owner)
    for row in _rows(grants, source):
        if row["principal_id"] in tenant.types:
            _add_grant(tenant, row)
    # Loading is the baseline: start change tracking from here.
    tenant.links.clear()
    tenant.changed.clear()
    tenant.changed_props.clear()
    return tenant


def _is_service_principal(row: Mapping[str, Any]) -> bool:
    """An Entra source's ``service`` account (the connector's rows of service principals that
    are principals); a directory's service accounts are users of the tenant."""
    return row.get("kind") == "service" and str(row.get("source") or "entra:").startswith("entra:")


def _add_groups(
    tenant: Tenant, rows: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Groups rows as groups, service principals (``app-role``) and administrative units;
    returns the rows of the groups and of the service principals, for their owners."""
    group_rows: list[dict[str, Any]] = []
    app_rows: list[dict[str, Any]] = []
    for row in rows:
        if row.get("kind") == APP_ROLE and tenant.type_of(row["group_id"]) == "servicePrincipal":
            app_rows.append(row)  # a principal too: its accounts row made it already
        elif row.get("kind") == APP_ROLE:
            app_rows.append(row)
            tenant.add_service_principal(
                row.get("name") or row["group_id"],
                id=row["group_id"],
                description=row.get("description"),
                track=False,
            )
        elif row.get("kind") == ADMIN_UNIT:
            if row.get("owners"):
                raise ValueError(f"administrative unit {row['group_id']} has no owners in Graph")
            tenant.add_administrative_unit(
                id=row["group_id"],
                displayName=row.get("name"),
                description=row.get("description"),
                track=False,
            )
        else:
            tenant.add_group(track=False, **_group_props(row))
            group_rows.append(row)
    return group_rows, app_rows


def _add_members(tenant: Tenant, edges: pl.DataFrame) -> None:
    """Direct members of groups and administrative units; a member the tenant does not hold
    becomes an org contact."""
    for group_id, member_id in (
        edges.unique(["group_id", "member_id"], maintain_order=True)
        .select("group_id", "member_id")
        .iter_rows()
    ):
        kind = tenant.types.get(group_id)
        if kind is None:
            continue
        if kind == "servicePrincipal":
            raise ValueError(
                f"memberships of app-role row {group_id} cannot be served: in Graph a right in "
                "an application is an app-role assignment (a grants row)"
            )
        if member_id not in tenant.types:
            tenant.add_contact(track=False, id=member_id, displayName=f"contact {member_id}")
        # unique already; no O(n) check per edge
        (tenant.au_members if kind == "administrativeUnit" else tenant.members)[group_id].append(
            member_id
        )


def _add_grant(tenant: Tenant, row: dict[str, Any]) -> None:
    """One grants row of a principal the tenant holds: an owner, a directory role assignment or
    eligibility, or an app-role assignment."""
    principal, resource, kind = row["principal_id"], row["resource_id"], row["resource_kind"]
    right = row.get("right") or ""
    if kind == "ownership" and tenant.type_of(resource) == "group":
        tenant.add_owner(resource, principal, track=False)
    elif kind == "ownership" and tenant.type_of(resource) == "servicePrincipal":
        if tenant.type_of(principal) in ("user", "servicePrincipal"):
            owned = tenant.sp_owners[resource]
            if principal not in owned:
                owned.append(principal)
    elif kind == "directory-role":
        name, scope, eligible = parse_role_right(right)
        if resource not in tenant.role_definitions:
            tenant.add_role_definition(resource, name)
        tenant.assign_role(principal, resource, scope, eligible=eligible)
    elif kind == "app-role":
        app, sep, role = right.rpartition(": ")
        app, role = (app, role) if sep else (resource, right)
        if resource not in tenant.types:
            tenant.add_service_principal(app, id=resource, track=False)
        tenant.assign_app_role(principal, resource, _app_role_id(tenant, resource, role))


def _app_role_id(tenant: Tenant, resource: str, role: str) -> str:
    """The id of the app role ``role`` (by value) of service principal ``resource``; a role it
    does not define yet is added, with an id derived from both names."""
    if role == "default access":
        return DEFAULT_ACCESS_ROLE
    sp = tenant.objects[resource]
    found = [r for r in sp["appRoles"] if r["value"] == role]
    if not found:
        found = [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{resource}/{role}")),
                "value": role,
                "displayName": role,
                "description": role,
                "allowedMemberTypes": ["User"],
                "isEnabled": True,
                "origin": "Application",
            }
        ]
        sp["appRoles"].append(found[0])
    return str(found[0]["id"])
