"""The directory's objects as the views see them: accounts and groups with their organisation,
the accounts' identities, and one lookup of every principal.

Also the helpers every view module shares: which organisations are real, the Categorical id
type of the effective memberships, and the most common value of a group.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from accessaudit.model import SPECIAL_ORGS, GroupKind

_SPECIAL = list(SPECIAL_ORGS)
#: The administrative unit's group kind: it scopes roles, nobody has access through it.
AU = GroupKind.ADMIN_UNIT.value
#: The effective memberships' id type (EFFECTIVE_SCHEMA).
CAT = pl.Categorical()
EFFECTIVE_IDS = ("account_id", "group_id", "via_group_id")
_ENTRA = "entra:"


def real(col: str) -> pl.Expr:
    """True where ``col`` holds a real organisation (neither shared nor unattributed)."""
    return pl.col(col).is_not_null() & ~pl.col(col).is_in(_SPECIAL)


def unique_top(lf: pl.LazyFrame, by: list[str], value: str, out: str) -> pl.LazyFrame:
    """Per ``by``: the ``value`` with the most rows, or null when two values tie."""
    counted = lf.group_by([*by, value]).agg(_n=pl.len())
    most = pl.col("_n").max().over(by) if by else pl.col("_n").max()
    top = counted.filter(pl.col("_n") == most)
    if not by:
        return top.select(
            pl.when(pl.len() == 1).then(pl.col(value).first()).otherwise(None).alias(out)
        )
    return top.group_by(by).agg(
        pl.when(pl.len() == 1).then(pl.col(value).first()).otherwise(None).alias(out)
    )


def accounts_view(accounts: pl.DataFrame, as_of: datetime) -> pl.LazyFrame:
    """The attributed accounts + real_org, days_since_active.

    ``days_since_active`` is known only where the source records sign-ins
    (``activity_tracked``): there a null ``last_logon`` means "never signed in", counted from
    the account's creation. Elsewhere (Entra without signInActivity, generic LDAP without a
    last-logon attribute, application exports, runs stored before the column) it is null:
    unknown, never "inactive since created", so no rule can call such an account dormant."""
    since = pl.lit(as_of) - pl.coalesce("last_logon", "created")
    return accounts.lazy().with_columns(
        real_org=real("org"),
        days_since_active=pl.when(pl.col("activity_tracked").fill_null(False))
        .then(since.dt.total_days())
        .otherwise(None),
    )


def identities(acc: pl.LazyFrame) -> pl.LazyFrame:
    """``acc`` + identity_id, synced_copy. An Entra user synced from AD carries the AD objectSid
    (onPremisesSecurityIdentifier): it is the same identity as the AD account, whose row is the
    one rules about people look at."""
    home = (
        acc.filter(pl.col("sid").is_not_null() & ~pl.col("source").str.starts_with(_ENTRA))
        .group_by("sid")
        .agg(_home=pl.col("account_id").min())
    )
    return (
        acc.join(home, on="sid", how="left")
        .with_columns(
            identity_id=pl.coalesce("_home", "account_id"),
            synced_copy=pl.col("_home").is_not_null() & (pl.col("_home") != pl.col("account_id")),
        )
        .drop("_home")
    )


def groups_view(groups: pl.DataFrame) -> pl.LazyFrame:
    """The attributed groups + real_org."""
    return groups.lazy().with_columns(real_org=real("org"))


def with_member_counts(grp: pl.LazyFrame, memberships: pl.LazyFrame) -> pl.LazyFrame:
    """``grp`` + members (its direct members); only the ``groups`` view shows them."""
    member_counts = memberships.group_by("group_id").agg(members=pl.len())
    return grp.join(member_counts, on="group_id", how="left").with_columns(
        pl.col("members").fill_null(0).cast(pl.Int64)
    )


def group_orgs(grp: pl.LazyFrame) -> pl.LazyFrame:
    """A group's id with its organisation, privilege and kind, as the joins name them."""
    return grp.select(
        "group_id",
        group_org="org",
        group_real="real_org",
        group_privileged="privileged",
        group_kind="kind",
    )


def account_orgs(acc: pl.LazyFrame) -> pl.LazyFrame:
    """An account's id with its organisation, state and kind, as the joins name them."""
    return acc.select(
        "account_id",
        account_org="org",
        account_real="real_org",
        account_enabled="enabled",
        account_kind="kind",
        days_since_active="days_since_active",
    )


def principals(acc: pl.LazyFrame, grp: pl.LazyFrame) -> pl.LazyFrame:
    """Accounts and groups as one lookup: who holds a grant or owns a group. An id in both, an
    Entra service principal that is a principal (an account) and an enterprise application (a
    group), is one row: the account, so its rights count once, as a principal's."""
    return pl.concat(
        [
            acc.select(
                principal_id="account_id",
                principal_type=pl.lit("account"),
                principal_org="org",
                principal_real="real_org",
                principal_kind="kind",
            ),
            grp.select(
                principal_id="group_id",
                principal_type=pl.lit("group"),
                principal_org="org",
                principal_real="real_org",
                principal_kind="kind",
            ),
        ]
    ).unique("principal_id", keep="first", maintain_order=True)
