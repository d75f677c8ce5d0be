"""Active Directory searches decoded into the canonical tables (accounts, groups, memberships).

Active Directory encodings, with the Microsoft pages they come from:

- ``userAccountControl`` flags: ACCOUNTDISABLE 0x2, PASSWD_NOTREQD 0x20,
  WORKSTATION_TRUST_ACCOUNT 0x1000, SERVER_TRUST_ACCOUNT 0x2000, DONT_EXPIRE_PASSWORD 0x10000
  (learn.microsoft.com/troubleshoot/windows-server/active-directory/
  useraccountcontrol-manipulate-account-properties). Its LOCKOUT 0x10 and PASSWORD_EXPIRED
  0x800000 are not maintained by AD in ``userAccountControl``: they are read from the constructed
  ``msDS-User-Account-Control-Computed`` (learn.microsoft.com/windows/win32/adschema/
  a-msds-user-account-control-computed; [MS-ADTS] 3.1.1.4.5.17), which AD computes at read time
  from ``lockoutTime`` + lockoutDuration and ``pwdLastSet`` + maxPwdAge. Without it (a server
  that does not construct it) ``locked`` falls back to ``lockoutTime`` > 0
  (learn.microsoft.com/windows/win32/adschema/a-lockouttime), which stays set after a lockout
  has timed out until the next logon, so it may over-report; ``password_expired`` is then null.
- ``groupType``: 0x1 builtin, 0x2 global, 0x4 domain-local, 0x8 universal, 0x80000000 security
  (learn.microsoft.com/windows/win32/adschema/a-grouptype).

``lastLogonTimestamp`` is updated (and replicated) only when the stored value is 9-14 days old
(ms-DS-Logon-Time-Sync-Interval, 14 days by default, less a random 0-5: learn.microsoft.com/
windows/win32/adschema/a-lastlogontimestamp), so it may be up to 14 days older than the real
last logon; every account has one once it has logged on: AD records logons
(``activity_tracked``).

Times (FILETIME) and the extended DNs every DN-valued attribute is read as are decoded by
:mod:`~accessaudit.connectors.ldap.decode`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

import polars as pl

from accessaudit.connectors.ldap.decode import (
    edge_code,
    extended_dn,
    filetime_expr,
    gentime_expr,
    integer,
    text,
    texts,
)
from accessaudit.model import (
    MEMBERSHIPS_SCHEMA,
    AccountKind,
    GroupKind,
    MemberKind,
    Via,
    conform,
    privileged_sid_expr,
)
from accessaudit.transport.sid import sid_to_str

UAC_ACCOUNTDISABLE = 0x2
UAC_PASSWD_NOTREQD = 0x20
UAC_WORKSTATION_TRUST = 0x1000
UAC_SERVER_TRUST = 0x2000
UAC_DONT_EXPIRE_PASSWORD = 0x10000
UAC_COMPUTED_LOCKOUT = 0x10  # in msDS-User-Account-Control-Computed only
UAC_COMPUTED_PASSWORD_EXPIRED = 0x800000  # in msDS-User-Account-Control-Computed only
GT_BUILTIN, GT_GLOBAL, GT_DOMAIN_LOCAL, GT_UNIVERSAL = 0x1, 0x2, 0x4, 0x8
GT_SECURITY = 0x80000000

AD_ACCOUNT_ATTRS: tuple[str, ...] = (
    "sAMAccountName",
    "userPrincipalName",
    "displayName",
    "mail",
    "employeeID",
    "company",
    "department",
    "description",
    "objectClass",
    "userAccountControl",
    "msDS-User-Account-Control-Computed",
    "lockoutTime",
    "lastLogonTimestamp",
    "pwdLastSet",
    "accountExpires",
    "whenCreated",
    "primaryGroupID",
    "sIDHistory",
    "adminCount",
    "manager",
    "servicePrincipalName",
)
AD_GROUP_ATTRS: tuple[str, ...] = ("sAMAccountName", "cn", "description", "groupType", "managedBy")
AD_SID_ATTRS: Mapping[str, Callable[[bytes], str]] = {"sIDHistory": sid_to_str}
AD_MULTI_ATTRS: tuple[str, ...] = ("objectClass", "servicePrincipalName")


def ad_fsp_ids(dns: pl.Series) -> pl.Series:
    """GUIDs of foreign security principals (from their extended DNs)."""
    return pl.select(extended_dn(pl.lit(dns))[0]).to_series().alias("member_guid")


def ad_accounts(df: pl.DataFrame, source: str, now: datetime) -> pl.DataFrame:
    """Accounts from an AD ``(objectClass=user)`` search made with the extended-DN control."""
    guid, sid, dn = extended_dn(pl.col("dn"))
    uac_known = integer(df, "userAccountControl")
    uac = uac_known.fill_null(0)
    classes = texts(df, "objectClass").list.eval(pl.element().str.to_lowercase())
    spn = (df.get_column("servicePrincipalName").list.len() > 0).cast(pl.Int64)
    base = pl.DataFrame(
        {
            "dn": df.get_column("dn"),
            "username": text(df, "sAMAccountName"),
            "upn": text(df, "userPrincipalName"),
            "display_name": text(df, "displayName"),
            "mail": text(df, "mail"),
            "employee_id": text(df, "employeeID"),
            "company": text(df, "company"),
            "department": text(df, "department"),
            "description": text(df, "description"),
            "uac": uac,
            "uac_known": uac_known,
            "uac_computed": integer(df, "msDS-User-Account-Control-Computed"),
            "lockout_time": integer(df, "lockoutTime"),
            "expires": integer(df, "accountExpires"),
            "classes": classes,
            "spn": spn,
            "admin_count": integer(df, "adminCount").fill_null(0),
            "llt": integer(df, "lastLogonTimestamp"),
            "pls": integer(df, "pwdLastSet"),
            "created_text": text(df, "whenCreated"),
            "manager": text(df, "manager"),
            "sid_history": texts(df, "sIDHistory"),
            "primary_group_id": integer(df, "primaryGroupID"),
        }
    )
    gmsa = (
        pl.col("classes")
        .list.eval(
            pl.element().is_in(["msds-groupmanagedserviceaccount", "msds-managedserviceaccount"])
        )
        .list.any()
    )
    computer = ((pl.col("uac") & (UAC_WORKSTATION_TRUST | UAC_SERVER_TRUST)) != 0) | pl.col(
        "classes"
    ).list.contains("computer")
    rid = pl.col("sid").str.extract(r"-(\d+)$", 1)
    kind = (
        pl.when(gmsa)
        .then(pl.lit(AccountKind.SERVICE.value))
        .when(computer)
        .then(pl.lit(AccountKind.COMPUTER.value))
        .when(rid == "501")
        .then(pl.lit(AccountKind.GUEST.value))
        .when(pl.col("spn") > 0)
        .then(pl.lit(AccountKind.SERVICE.value))
        .otherwise(pl.lit(AccountKind.USER.value))
    )
    expires_at = filetime_expr(pl.col("expires"))
    enabled = ((pl.col("uac") & UAC_ACCOUNTDISABLE) == 0) & (
        expires_at.is_null() | (expires_at > pl.lit(now).dt.convert_time_zone("UTC"))
    )
    out = base.with_columns(
        source=pl.lit(source),
        account_id=guid,
        sid=sid,
        dn=dn,
    ).with_columns(
        kind=kind,
        enabled=enabled,
        last_logon=filetime_expr(pl.col("llt")),
        activity_tracked=pl.lit(True),  # AD records logons: without one, never logged on
        pwd_last_set=filetime_expr(pl.col("pls")),
        created=gentime_expr(pl.col("created_text")),
        manager_id=extended_dn(pl.col("manager"))[0],
        privileged=(pl.col("admin_count") == 1) | privileged_sid_expr("sid"),
        **account_state(
            pl.col("uac_known"), pl.col("uac_computed"), pl.col("lockout_time"), pl.col("expires")
        ),
    )
    return out


def account_state(
    uac: pl.Expr, computed: pl.Expr, lockout_time: pl.Expr, account_expires: pl.Expr
) -> dict[str, pl.Expr]:
    """``locked``, the password flags and ``account_expires`` from the Int64 attribute values.

    A flag is null when the attribute it comes from was not returned (the source does not
    know); ``locked`` prefers the computed bit and falls back to ``lockoutTime`` > 0.
    """

    def bit(value: pl.Expr, mask: int) -> pl.Expr:
        return pl.when(value.is_null()).then(None).otherwise((value & mask) != 0)

    return {
        "locked": pl.when(computed.is_not_null())
        .then((computed & UAC_COMPUTED_LOCKOUT) != 0)
        .otherwise(lockout_time > 0),
        "password_not_required": bit(uac, UAC_PASSWD_NOTREQD),
        "password_never_expires": bit(uac, UAC_DONT_EXPIRE_PASSWORD),
        "password_expired": bit(computed, UAC_COMPUTED_PASSWORD_EXPIRED),
        "account_expires": filetime_expr(account_expires),
    }


def ad_groups(df: pl.DataFrame, source: str) -> pl.DataFrame:
    """Groups from an AD ``(objectClass=group)`` search made with the extended-DN control."""
    guid, sid, dn = extended_dn(pl.col("dn"))
    gt = integer(df, "groupType").fill_null(0)
    gt_u = pl.when(pl.col("gt") < 0).then(pl.col("gt") + 2**32).otherwise(pl.col("gt"))
    scope = (
        pl.when((pl.col("gt") & GT_BUILTIN) != 0)
        .then(pl.lit("builtin"))
        .when((pl.col("gt") & GT_GLOBAL) != 0)
        .then(pl.lit("global"))
        .when((pl.col("gt") & GT_DOMAIN_LOCAL) != 0)
        .then(pl.lit("domain-local"))
        .when((pl.col("gt") & GT_UNIVERSAL) != 0)
        .then(pl.lit("universal"))
        .otherwise(None)
    )
    kind = (
        pl.when((gt_u & GT_SECURITY) != 0)
        .then(pl.lit(GroupKind.SECURITY.value))
        .otherwise(pl.lit(GroupKind.DISTRIBUTION.value))
    )
    managed = extended_dn(pl.col("managed_by_raw"))[0]
    return (
        pl.DataFrame(
            {
                "dn": df.get_column("dn"),
                "cn": text(df, "cn"),
                "sam": text(df, "sAMAccountName"),
                "description": text(df, "description"),
                "gt": gt,
                "managed_by_raw": text(df, "managedBy"),
            }
        )
        .with_columns(
            source=pl.lit(source),
            name=pl.coalesce("cn", "sam"),  # cn: sAMAccountName cannot hold every character
            group_id=guid,
            sid=sid,
            dn=dn,
            scope=scope,
            kind=kind,
            managed_by=managed,
            owners=pl.when(managed.is_null())
            .then(pl.lit([], pl.List(pl.String)))
            .otherwise(pl.concat_list([managed])),
            mastered=pl.lit("ad"),
        )
        .with_columns(privileged=privileged_sid_expr("sid"))
    )


def ad_memberships(
    source: str,
    groups: pl.DataFrame,
    members: pl.DataFrame,
    accounts: pl.DataFrame,
    fsp_ids: pl.Series,
) -> tuple[pl.DataFrame, int, pl.Series]:
    """Direct edges: ``member`` values (extended DNs) plus primaryGroupID edges.

    ``members`` has ``i`` (the group's row), ``group_id``, ``value`` (one extended-DN member
    value) and ``via``. Returns the edges, how many member values point at objects that were not
    collected (contacts, objects outside the base or filters, or objects this account may not
    read), and the :func:`edge_code` of every ``member`` edge to an account.
    """
    guid, sid, _ = extended_dn(pl.col("value"))
    edges = members.with_columns(member_guid=guid, member_sid=sid)
    acct = accounts.select(
        member_guid="account_id",
        k=pl.lit(MemberKind.ACCOUNT.value),
        row=pl.int_range(pl.len(), dtype=pl.UInt32),
    )
    grp = groups.select(
        member_guid="group_id", k=pl.lit(MemberKind.GROUP.value), row=pl.lit(None, pl.UInt32)
    )
    fsp = pl.DataFrame({"member_guid": fsp_ids}).with_columns(
        k=pl.lit(MemberKind.FOREIGN.value), row=pl.lit(None, pl.UInt32)
    )
    kinds = pl.concat([acct, grp, fsp]).unique("member_guid", keep="first")
    edges = edges.join(kinds, on="member_guid", how="left")
    codes = edges.lazy().drop_nulls("row").select(edge_code(pl.col("i"), pl.col("row")))
    # A well-known principal (Everyone S-1-1-0, ...) may be linked to an object outside the
    # domain partition (Samba: CN=WellKnown Security Principals,CN=Configuration): it is still a
    # member, kept by its SID like a foreign principal, never dropped as "not collected".
    well_known = (
        pl.col("k").is_null()
        & pl.col("member_sid").is_not_null()
        & ~pl.col("member_sid").str.starts_with("S-1-5-21-")
    )
    edges = edges.with_columns(
        k=pl.when(well_known).then(pl.lit(MemberKind.FOREIGN.value)).otherwise(pl.col("k"))
    )
    unresolved = int(edges.get_column("k").is_null().sum())
    edges = edges.filter(pl.col("k").is_not_null()).select(
        "group_id",
        member_id=pl.when(pl.col("k") == MemberKind.FOREIGN.value)
        .then(pl.col("member_sid"))
        .otherwise(pl.col("member_guid")),
        member_kind="k",
        via="via",
    )
    primary = (
        accounts.filter(pl.col("primary_group_id").is_not_null() & pl.col("sid").is_not_null())
        .select(
            member_id="account_id",
            pg_sid=pl.concat_str(
                [
                    pl.col("sid").str.replace(r"-\d+$", ""),
                    pl.col("primary_group_id").cast(pl.String),
                ],
                separator="-",
            ),
        )
        .join(groups.select(pg_sid="sid", group_id="group_id"), on="pg_sid", how="left")
    )
    unresolved += int(primary.get_column("group_id").is_null().sum())
    primary = primary.filter(pl.col("group_id").is_not_null()).select(
        "group_id",
        "member_id",
        member_kind=pl.lit(MemberKind.ACCOUNT.value),
        via=pl.lit(Via.PRIMARY_GROUP.value),
    )
    out = pl.concat([edges, primary]).with_columns(source=pl.lit(source))
    return conform(out, MEMBERSHIPS_SCHEMA), unresolved, codes.collect().to_series()


def ad_member_of(member_of: pl.DataFrame, groups: pl.DataFrame) -> pl.Series:
    """The :func:`edge_code` of every ``memberOf`` value (``i`` = the account's row, ``value`` =
    an extended DN naming the group by its GUID) whose group was collected."""
    rows = groups.select("group_id").with_row_index("g")
    return (
        member_of.lazy()
        .select("i", group_id=extended_dn(pl.col("value"))[0])
        .join(rows.lazy(), on="group_id")
        .select(edge_code(pl.col("g"), pl.col("i")))
        .collect()
        .to_series()
    )
