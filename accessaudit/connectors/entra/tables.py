"""Graph objects -> canonical tables (``accessaudit.model``), vectorised with polars.

Graph JSON is loaded with an explicit raw schema (camelCase, as Graph sends it) and every
canonical column is derived by one expression, so nothing is inferred and nothing loops per row
after parsing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import polars as pl

from accessaudit.connectors.entra.external import guest_expr, home_domain_expr
from accessaudit.model import (
    ACCOUNTS_SCHEMA,
    GRANTS_SCHEMA,
    GROUPS_SCHEMA,
    MEMBERSHIPS_SCHEMA,
    UTC_TIME,
    AccountKind,
    GroupKind,
    MemberKind,
    ResourceKind,
    Via,
    conform,
)

#: User properties collected ($select); signInActivity is added when requested.
USER_SELECT: Final = (
    "id",
    "userPrincipalName",
    "displayName",
    "mail",
    "mailNickname",
    "accountEnabled",
    "userType",
    "companyName",
    "department",
    "employeeId",
    "creationType",
    "externalUserState",
    "createdDateTime",
    "lastPasswordChangeDateTime",
    "onPremisesSyncEnabled",
    "onPremisesSecurityIdentifier",
    "onPremisesSamAccountName",
    "onPremisesDistinguishedName",
    "onPremisesDomainName",
    "identities",
)
GROUP_SELECT: Final = (
    "id",
    "displayName",
    "description",
    "securityEnabled",
    "mailEnabled",
    "groupTypes",
    "isAssignableToRole",
    "membershipRule",
    "onPremisesSyncEnabled",
    "onPremisesSecurityIdentifier",
    "securityIdentifier",
    "visibility",
)
#: For members and owners: enough to tell a full object from a "limited information" one.
LINK_SELECT: Final = ("id", "displayName")
#: Service principals: names for app-role rights, the enterprise application's groups row, and
#: the accounts row of one that is a principal (a member, an owner or a holder of a right).
SP_SELECT: Final = (
    "id",
    "displayName",
    "appDisplayName",
    "description",
    "accountEnabled",
    "appOwnerOrganizationId",
    "appRoles",
)
#: Owners of a service principal: their ids (and @odata.type) are all the owners view needs.
SP_OWNER_SELECT: Final = ("id",)
#: Administrative units (directory-list-administrativeunits).
AU_SELECT: Final = ("id", "displayName", "description", "visibility", "membershipType")

_IDENTITY = pl.Struct({"signInType": pl.String, "issuer": pl.String})
_SIGN_IN = pl.Struct(
    {
        "lastSignInDateTime": pl.String,
        "lastNonInteractiveSignInDateTime": pl.String,
        "lastSuccessfulSignInDateTime": pl.String,
    }
)
RAW_USER: Final = pl.Schema(
    dict.fromkeys(USER_SELECT, pl.String)
    | {
        "accountEnabled": pl.Boolean,
        "onPremisesSyncEnabled": pl.Boolean,
        "identities": pl.List(_IDENTITY),
        "signInActivity": _SIGN_IN,
    }
)
RAW_GROUP: Final = pl.Schema(
    dict.fromkeys(GROUP_SELECT, pl.String)
    | {
        "securityEnabled": pl.Boolean,
        "mailEnabled": pl.Boolean,
        "isAssignableToRole": pl.Boolean,
        "onPremisesSyncEnabled": pl.Boolean,
        "groupTypes": pl.List(pl.String),
    }
)

#: Groups rows that are not Graph groups: enterprise applications and administrative units.
#: Neither is in ``/groups/delta``: both are listed in full, with their links, on every run.
CONTAINER_KINDS: Final = (GroupKind.APP_ROLE.value, GroupKind.ADMIN_UNIT.value)

#: Built-in roles Microsoft labels PRIVILEGED (learn.microsoft.com/entra/identity/
#: role-based-access-control/permissions-reference, 2026-01 copy). For built-in roles the role
#: definition id equals the template id.
PRIVILEGED_ROLE_TEMPLATES: Final = frozenset(
    {
        "db506228-d27e-4b7d-95e5-295956d6615f",  # Agent ID Administrator
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",  # Application Administrator
        "cf1c38e5-3621-4004-a7cb-879624dced7c",  # Application Developer
        "ecb2c6bf-0ab6-418e-bd87-7986f8d63bbe",  # Attribute Provisioning Administrator
        "422218e4-db15-4ef9-bbe0-8afb41546d79",  # Attribute Provisioning Reader
        "c4e39bd9-1100-46d3-8c65-fb160da0071f",  # Authentication Administrator
        "25a516ed-2fa0-40ea-a2d0-12923a21473a",  # Authentication Extensibility Administrator
        "aaf43236-0c0d-4d5f-883a-6955382ac081",  # B2C IEF Keyset Administrator
        "158c047a-c907-4556-b7ef-446551a6b5f7",  # Cloud Application Administrator
        "7698a772-787b-4ac8-901f-60d6b08affd2",  # Cloud Device Administrator
        "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",  # Conditional Access Administrator
        "9360feb5-f418-4baa-8175-e2a00bac4301",  # Directory Writers
        "8329153b-31d0-4727-b945-745eb3bc5f31",  # Domain Name Administrator
        "be2f45a1-457d-42af-a067-6ec1fa63bc45",  # External Identity Provider Administrator
        "62e90394-69f5-4237-9190-012177145e10",  # Global Administrator
        "f2ef992c-3afb-46b9-b7cf-a126ee74c451",  # Global Reader
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",  # Helpdesk Administrator
        "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2",  # Hybrid Identity Administrator
        "3a2c62db-5318-420d-8d74-23affee5d9d5",  # Intune Administrator
        "59d46f88-662b-457b-bceb-5c3809e5908f",  # Lifecycle Workflows Administrator
        "4ba39ca4-527c-499a-b93d-d9b492c50246",  # Partner Tier1 Support
        "e00e864a-17c5-4a4b-9c06-f5b95a8d5bd8",  # Partner Tier2 Support
        "966707d0-3269-4727-9be2-8c3a10f19b9d",  # Password Administrator
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",  # Privileged Authentication Administrator
        "e8611ab8-c189-46e8-94e1-60213ab1f814",  # Privileged Role Administrator
        "194ae4cb-b126-40b2-bd5b-6091b380977d",  # Security Administrator
        "5f2222b1-57c3-48ba-8ad5-d4759f1fde6f",  # Security Operator
        "5d6b6bb7-de71-4623-b4af-96380a352509",  # Security Reader
        "fe930be7-5e62-47db-91af-98c3a49a38b1",  # User Administrator
    }
)
DEFAULT_ACCESS: Final = "00000000-0000-0000-0000-000000000000"  # app "default access" role


def _ts(column: str) -> pl.Expr:
    """Graph DateTimeOffset text -> UTC datetime; "" and 0001-01-01 (seen in docs) -> null."""
    parsed = (
        pl.col(column)
        .str.strip_suffix("Z")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us", time_zone="UTC")
    )
    return pl.when(parsed.dt.year() > 1).then(parsed).otherwise(None).cast(UTC_TIME)


def accounts_frame(
    users: Iterable[Mapping[str, Any]], source: str, *, sign_in: bool
) -> pl.DataFrame:
    """Users as accounts. ``sign_in``: every user was read with signInActivity, so a user
    without it never signed in (``activity_tracked``); without it nothing is known of sign-ins
    and ``last_logon`` stays null."""
    raw = pl.from_dicts(list(users), schema=RAW_USER)
    activity = [
        _ts(f"_{name}")
        for name in (
            "lastSignInDateTime",
            "lastNonInteractiveSignInDateTime",
            "lastSuccessfulSignInDateTime",
        )
    ]
    raw = raw.with_columns(pl.col("signInActivity").struct.unnest().name.prefix("_"))
    last_logon = pl.max_horizontal(activity) if sign_in else pl.lit(None, dtype=UTC_TIME)
    df = raw.select(
        pl.lit(source).alias("source"),
        pl.col("id").alias("account_id"),
        pl.col("onPremisesSecurityIdentifier").alias("sid"),
        pl.coalesce("onPremisesSamAccountName", "mailNickname").alias("username"),
        pl.col("userPrincipalName").alias("upn"),
        pl.col("displayName").alias("display_name"),
        pl.col("mail"),
        pl.col("employeeId").alias("employee_id"),
        pl.col("companyName").alias("company"),
        pl.col("department"),
        pl.col("onPremisesDistinguishedName").alias("dn"),
        pl.when(guest_expr())
        .then(pl.lit(AccountKind.GUEST.value))
        .otherwise(pl.lit(AccountKind.USER.value))
        .alias("kind"),
        pl.col("accountEnabled").alias("enabled"),
        last_logon.alias("last_logon"),
        pl.lit(sign_in).alias("activity_tracked"),
        _ts("lastPasswordChangeDateTime").alias("pwd_last_set"),
        _ts("createdDateTime").alias("created"),
        pl.lit([], dtype=pl.List(pl.String)).alias("sid_history"),
        pl.lit(False).alias("privileged"),
        home_domain_expr().alias("home_domain"),
    )
    return conform(df, ACCOUNTS_SCHEMA)


def groups_frame(
    groups: Iterable[Mapping[str, Any]], owners: Mapping[str, list[str]], source: str
) -> pl.DataFrame:
    raw = pl.from_dicts(list(groups), schema=RAW_GROUP)
    owner_lists = pl.DataFrame(
        {"id": list(owners), "owners": [sorted(set(v)) for v in owners.values()]},
        schema={"id": pl.String, "owners": pl.List(pl.String)},
    )
    raw = raw.join(owner_lists, on="id", how="left")
    synced = pl.col("onPremisesSyncEnabled").fill_null(False)
    kind = (
        pl.when(pl.col("groupTypes").list.contains("Unified").fill_null(False))
        .then(pl.lit(GroupKind.M365.value))
        .when(pl.col("securityEnabled").fill_null(False))
        .then(pl.lit(GroupKind.SECURITY.value))
        .otherwise(pl.lit(GroupKind.DISTRIBUTION.value))
    )
    df = raw.select(
        pl.lit(source).alias("source"),
        pl.col("id").alias("group_id"),
        pl.coalesce("onPremisesSecurityIdentifier", "securityIdentifier").alias("sid"),
        pl.col("displayName").alias("name"),
        pl.col("description"),
        # Graph does not expose an AD group's scope; only cloud groups are known to be "cloud".
        pl.when(synced)
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(pl.lit("cloud"))
        .alias("scope"),
        kind.alias("kind"),
        pl.lit(False).alias("privileged"),
        pl.col("owners").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        pl.when(synced).then(pl.lit("ad")).otherwise(pl.lit("cloud")).alias("mastered"),
        # "DynamicMembership" in groupTypes makes membershipRule the members' source (groups
        # overview); "" keeps a dynamic group whose rule was not returned recognisable.
        pl.when(pl.col("groupTypes").list.contains("DynamicMembership").fill_null(False))
        .then(pl.col("membershipRule").fill_null(""))
        .alias("membership_rule"),
        pl.col("isAssignableToRole").fill_null(False).alias("role_assignable"),
        pl.col("mailEnabled").fill_null(False).alias("mail_enabled"),
    )
    return conform(df, GROUPS_SCHEMA)


def containers_frame(
    objects: Iterable[Mapping[str, Any]],
    kind: GroupKind,
    source: str,
    owners: Mapping[str, list[str]] | None = None,
) -> pl.DataFrame:
    """Groups rows for objects that hold members or rights but are not groups: enterprise
    applications (service principals, kind ``app-role``) and administrative units. Both are
    cloud objects: no SID, changed through Graph. ``owners``: a service principal's owners
    (serviceprincipal-list-owners); an administrative unit has none."""
    owners = owners or {}
    raw = pl.from_dicts(
        [
            {
                **{k: o.get(k) for k in ("id", "displayName", "description")},
                "owners": sorted(set(owners.get(str(o.get("id")), []))),
            }
            for o in objects
        ],
        schema=dict.fromkeys(("id", "displayName", "description"), pl.String)
        | {"owners": pl.List(pl.String)},
    )
    df = raw.select(
        pl.lit(source).alias("source"),
        pl.col("id").alias("group_id"),
        pl.col("displayName").alias("name"),
        pl.col("description"),
        pl.lit("cloud").alias("scope"),
        pl.lit(kind.value).alias("kind"),
        pl.lit(False).alias("privileged"),
        pl.col("owners"),
        pl.lit("cloud").alias("mastered"),
    )
    return conform(df, GROUPS_SCHEMA)


def member_kind(odata_type: str | None) -> str:
    """Users and service principals are accounts (a service principal's accounts row is made
    from the service principals' listing); org contacts and devices stay ``foreign``: kept as
    members, attributed to no one (no account row)."""
    low = (odata_type or "").lower()
    if low in ("#microsoft.graph.user", "#microsoft.graph.serviceprincipal"):
        return MemberKind.ACCOUNT.value
    if low == "#microsoft.graph.group":
        return MemberKind.GROUP.value
    return MemberKind.FOREIGN.value  # orgContact, device ...


def memberships_frame(edges: Iterable[tuple[str, str, str]], source: str) -> pl.DataFrame:
    """(group_id, member_id, member_kind) edges, de-duplicated and sorted."""
    df = pl.DataFrame(
        list(edges),
        schema={"group_id": pl.String, "member_id": pl.String, "member_kind": pl.String},
        orient="row",
    ).unique(["group_id", "member_id"], keep="last")
    df = df.with_columns(pl.lit(source).alias("source"), pl.lit(Via.GRAPH.value).alias("via"))
    return conform(df.sort("group_id", "member_id"), MEMBERSHIPS_SCHEMA)


def grants_frame(rows: Iterable[tuple[str, str, str, str]], source: str) -> pl.DataFrame:
    """(principal_id, resource_id, resource_kind, right) rows, de-duplicated and sorted."""
    df = pl.DataFrame(
        list(rows),
        schema={
            "principal_id": pl.String,
            "resource_id": pl.String,
            "resource_kind": pl.String,
            "right": pl.String,
        },
        orient="row",
    ).unique()
    df = df.with_columns(pl.lit(source).alias("source"))
    return conform(df.sort("resource_kind", "resource_id", "principal_id", "right"), GRANTS_SCHEMA)


def role_right(name: str, scope: str, *, eligible: bool) -> str:
    """``"Global Administrator @ /"``; PIM eligibility adds ``" (eligible)"``."""
    return f"{name} @ {scope}" + (" (eligible)" if eligible else "")


def role_grants(
    assignments: Iterable[Mapping[str, Any]],
    names: Mapping[str, str],
    *,
    eligible: bool,
) -> list[tuple[str, str, str, str]]:
    return [
        (
            str(a.get("principalId")),
            str(a.get("roleDefinitionId")),
            ResourceKind.DIRECTORY_ROLE.value,
            role_right(
                names.get(str(a.get("roleDefinitionId")), str(a.get("roleDefinitionId"))),
                str(a.get("directoryScopeId") or "/"),
                eligible=eligible,
            ),
        )
        for a in assignments
        if a.get("principalId") and a.get("roleDefinitionId")
    ]


def app_role_grants(
    assignments: Iterable[Mapping[str, Any]], service_principal: Mapping[str, Any]
) -> list[tuple[str, str, str, str]]:
    """``right`` = "<app display name>: <role value>" ("default access" for the default role)."""
    roles = {
        str(r.get("id")): str(r.get("value") or r.get("displayName") or r.get("id"))
        for r in service_principal.get("appRoles") or []
        if isinstance(r, Mapping)
    }
    app = str(service_principal.get("displayName") or service_principal.get("id"))
    rows = []
    for a in assignments:
        role_id = str(a.get("appRoleId"))
        role = "default access" if role_id == DEFAULT_ACCESS else roles.get(role_id, role_id)
        rows.append(
            (
                str(a.get("principalId")),
                str(a.get("resourceId") or service_principal.get("id")),
                ResourceKind.APP_ROLE.value,
                f"{app}: {role}",
            )
        )
    return rows


def ownership_grants(owners: Mapping[str, list[str]]) -> list[tuple[str, str, str, str]]:
    return [
        (owner, group_id, ResourceKind.OWNERSHIP.value, "owner")
        for group_id, ids in owners.items()
        for owner in ids
    ]


def privileged_principals(grants: pl.DataFrame, templates: Mapping[str, str | None]) -> pl.Series:
    """Principals holding (or eligible for) a role Microsoft labels privileged."""
    privileged_ids = [
        role_id
        for role_id, template in templates.items()
        if (template or role_id) in PRIVILEGED_ROLE_TEMPLATES
    ] + sorted(PRIVILEGED_ROLE_TEMPLATES)
    return (
        grants.filter(
            (pl.col("resource_kind") == ResourceKind.DIRECTORY_ROLE.value)
            & pl.col("resource_id").is_in(privileged_ids)
        )
        .get_column("principal_id")
        .unique()
    )


def mark_privileged(
    accounts: pl.DataFrame, groups: pl.DataFrame, principals: pl.Series
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Accounts holding a privileged role; groups too (only role-assignable groups can hold a
    directory role, so "a group holding one" is "a role-assignable group holding one")."""
    ids = principals.to_list()
    return (
        accounts.with_columns(pl.col("account_id").is_in(ids).alias("privileged")),
        groups.with_columns(pl.col("group_id").is_in(ids).alias("privileged")),
    )
