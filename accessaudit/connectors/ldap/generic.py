"""Decode generic LDAP (OpenLDAP ``inetOrgPerson`` / ``groupOfNames``) into the canonical tables.

A per-source mapping (``LdapSource.attribute_map`` / ``group_attribute_map``) names which LDAP
attribute fills which canonical column. Generic LDAP has no immutable ids inside DN-valued
attributes, so ``member``, ``manager`` and ``owner`` resolve through the DNs of the collected
objects (one server's own spelling of them, compared case-insensitively).

``member_of`` in the account mapping is not a column: it names the attribute the server keeps
the reverse of ``member`` in (``memberOf`` of OpenLDAP's memberof overlay), read only to
cross-check the member side (:func:`~.collect.member_of_check`); ``""`` turns that off.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from accessaudit.connectors.ldap.decode import edge_code, gentime_expr, text
from accessaudit.model import (
    MEMBERSHIPS_SCHEMA,
    UTC_TIME,
    AccountKind,
    GroupKind,
    MemberKind,
    conform,
    privileged_sid_expr,
)

#: canonical column -> LDAP attribute; a source's ``attribute_map`` overrides entries.
OPENLDAP_ACCOUNT_MAP: Mapping[str, str] = {
    "account_id": "entryUUID",
    "username": "uid",
    "upn": "",
    "display_name": "displayName",
    "mail": "mail",
    "employee_id": "employeeNumber",
    "company": "o",
    "department": "departmentNumber",
    "description": "description",
    "kind": "",
    "created": "createTimestamp",
    "manager_id": "manager",
    "sid": "",
    "member_of": "memberOf",
}
OPENLDAP_GROUP_MAP: Mapping[str, str] = {
    "group_id": "entryUUID",
    "name": "cn",
    "description": "description",
    "managed_by": "owner",
    "member": "member",
    "sid": "",
}


def dn_key(expr: pl.Expr) -> pl.Expr:
    """A comparison key for DNs from one server: lower case, no spaces around ``,`` / ``=``.

    Only used where the server offers no immutable id in DN-valued attributes (generic LDAP).
    """
    return expr.str.to_lowercase().str.replace_all(r"\s*([,=])\s*", "$1")


#: Canonical columns whose LDAP attribute holds a GeneralizedTime.
_TIMES = ("created", "last_logon")


def openldap_accounts(df: pl.DataFrame, amap: Mapping[str, str], source: str) -> pl.DataFrame:
    """Accounts through ``amap``. Sign-ins are known (``activity_tracked``) only when it maps
    ``last_logon`` to an attribute the server keeps on every bind (``authTimestamp`` of
    OpenLDAP's lastbind overlay); a plain directory records none."""
    cols: dict[str, pl.Series] = {"dn": df.get_column("dn")}
    for canon, attr in amap.items():
        if attr and canon not in _TIMES:
            cols[canon] = text(df, attr).alias(canon)
    out = pl.DataFrame(cols).with_columns(
        source=pl.lit(source),
        **{canon: _time(df, amap.get(canon)) for canon in _TIMES},
        activity_tracked=pl.lit(bool(amap.get("last_logon"))),
        enabled=pl.lit(True),
        privileged=pl.lit(False),
        sid_history=pl.lit([], pl.List(pl.String)),
    )
    if "kind" not in out.columns:
        out = out.with_columns(kind=pl.lit(AccountKind.USER.value))
    return out.with_columns(account_id=pl.col("account_id").str.to_lowercase())


def _time(df: pl.DataFrame, attr: str | None) -> pl.Expr:
    """The GeneralizedTime attribute ``attr`` as UTC times; all null when it is not mapped."""
    return gentime_expr(pl.lit(text(df, attr))) if attr else pl.lit(None, UTC_TIME)


def openldap_groups(df: pl.DataFrame, gmap: Mapping[str, str], source: str) -> pl.DataFrame:
    cols: dict[str, pl.Series] = {"dn": df.get_column("dn")}
    for canon, attr in gmap.items():
        if attr and canon not in ("member",):
            cols[canon] = text(df, attr).alias(canon)
    out = pl.DataFrame(cols).with_columns(
        source=pl.lit(source),
        kind=pl.lit(GroupKind.SECURITY.value),
        mastered=pl.lit("ad"),
        privileged=privileged_sid_expr("sid") if "sid" in cols else pl.lit(False),
    )
    return out.with_columns(group_id=pl.col("group_id").str.to_lowercase())


def match_dns(
    df: pl.DataFrame, column: str, targets: pl.DataFrame, payload: list[str]
) -> pl.DataFrame:
    """``df`` plus the ``payload`` columns of the target whose ``dn`` is the DN in ``column``.

    A server returns a DN-valued attribute in the spelling it was written with, usually the
    entry's own: an exact join resolves almost every value at hash-join speed, and only the
    values left over are compared through :func:`dn_key` (case, spaces around ``,`` / ``=``).
    Same result as comparing every value through :func:`dn_key`, without running the regular
    expression over a million member values.
    """
    exact = targets.select(pl.col("dn").alias("_k"), *payload).unique("_k", keep="first")
    out = df.with_row_index("_r").join(
        exact, left_on=column, right_on="_k", how="left", maintain_order="left"
    )
    missed = pl.col(payload[0]).is_null() & pl.col(column).is_not_null()
    if out.select(missed.any()).item():
        norm = targets.select(dn_key(pl.col("dn")).alias("_k"), *payload).unique("_k", keep="first")
        retry = (
            out.filter(missed)
            .drop(payload)
            .with_columns(_k=dn_key(pl.col(column)))
            .join(norm, on="_k", how="left")
            .drop("_k")
        )
        out = pl.concat([out.filter(~missed), retry.select(out.columns)]).sort("_r")
    return out.drop("_r")


def openldap_memberships(
    source: str,
    groups: pl.DataFrame,
    members: pl.DataFrame,
    accounts: pl.DataFrame,
) -> tuple[pl.DataFrame, int, pl.Series]:
    """Edges from DN-valued ``member`` values, resolved through the DNs of collected objects;
    with how many values name no collected object and the :func:`~.decode.edge_code` of
    every edge to an account (``members``' ``i`` is the group's row)."""
    targets = pl.concat(
        [
            accounts.select(
                "dn",
                member_id="account_id",
                member_kind=pl.lit(MemberKind.ACCOUNT.value),
                row=pl.int_range(pl.len(), dtype=pl.UInt32),
            ),
            groups.select(
                "dn",
                member_id="group_id",
                member_kind=pl.lit(MemberKind.GROUP.value),
                row=pl.lit(None, pl.UInt32),
            ),
        ]
    )
    edges = match_dns(members, "value", targets, ["member_id", "member_kind", "row"])
    unresolved = int(edges.get_column("member_id").is_null().sum())
    codes = edges.lazy().drop_nulls("row").select(edge_code(pl.col("i"), pl.col("row")))
    out = edges.filter(pl.col("member_id").is_not_null()).with_columns(source=pl.lit(source))
    memberships = conform(out.select(MEMBERSHIPS_SCHEMA.names()), MEMBERSHIPS_SCHEMA)
    return memberships, unresolved, codes.collect().to_series()


def openldap_member_of(member_of: pl.DataFrame, groups: pl.DataFrame) -> pl.Series:
    """The :func:`~.decode.edge_code` of every ``memberOf`` value (``i`` = the account's
    row, ``value`` = a group DN) that names a collected group."""
    rows = groups.select("dn").with_row_index("g")
    resolved = match_dns(member_of.select("i", "value"), "value", rows, ["g"])
    return (
        resolved.lazy()
        .drop_nulls("g")
        .select(edge_code(pl.col("g"), pl.col("i")))
        .collect()["code"]
    )


def resolve_dn_refs(
    df: pl.DataFrame, column: str, targets: pl.DataFrame, id_col: str
) -> pl.DataFrame:
    """Replace DN values in ``column`` by the id of the collected object with that DN."""
    lookup = targets.select("dn", _id=pl.col(id_col))
    return (
        match_dns(df, column, lookup, ["_id"]).with_columns(pl.col("_id").alias(column)).drop("_id")
    )
