"""The lazy views every rule query sees, built once and shared by every rule.

What each view holds is documented in :mod:`accessaudit.engine.evaluate` (the page rule authors
read). Everything here is lazy polars: joins and group-bys over the attributed tables, no
per-row Python, collected as part of each rule's plan.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from accessaudit.model import SPECIAL_ORGS, GroupKind, MemberKind, ResourceKind

_SPECIAL = list(SPECIAL_ORGS)
_AU = GroupKind.ADMIN_UNIT.value
_CAT = pl.Categorical()
_EFFECTIVE_IDS = ("account_id", "group_id", "via_group_id")
_ENTRA = "entra:"


def _real(col: str) -> pl.Expr:
    return pl.col(col).is_not_null() & ~pl.col(col).is_in(_SPECIAL)


def _unique_top(lf: pl.LazyFrame, by: list[str], value: str, out: str) -> pl.LazyFrame:
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


def _accounts(accounts: pl.DataFrame, as_of: datetime) -> pl.LazyFrame:
    return accounts.lazy().with_columns(
        real_org=_real("org"),
        days_since_active=(pl.lit(as_of) - pl.coalesce("last_logon", "created"))
        .dt.total_days()
        .fill_null(0),
    )


def _identities(acc: pl.LazyFrame) -> pl.LazyFrame:
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


def _principals(acc: pl.LazyFrame, grp: pl.LazyFrame) -> pl.LazyFrame:
    """Accounts and groups as one lookup: who holds a grant or owns a group."""
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


def _role_grants(
    grants: pl.LazyFrame,
    principals: pl.LazyFrame,
    grp: pl.LazyFrame,
    memberships: pl.LazyFrame,
    a_orgs: pl.LazyFrame,
) -> pl.LazyFrame:
    text = pl.col("right").str.strip_suffix(" (eligible)")
    roles = (
        grants.filter(pl.col("resource_kind") == ResourceKind.DIRECTORY_ROLE.value)
        .select("principal_id", "resource_id", "right")
        .unique()
        .with_columns(
            eligible=pl.col("right").str.ends_with(" (eligible)"),
            role_name=text.str.replace(r" @ [^@]*$", ""),
            scope=text.str.extract(r" @ ([^@]*)$", 1).fill_null("/"),
        )
        .with_columns(
            scope_id=pl.when(pl.col("scope") == "/")
            .then(pl.lit(None, pl.String))
            .otherwise(pl.col("scope").str.extract(r"([^/]+)/?$", 1))
        )
        .join(principals, on="principal_id", how="left")
    )
    # The tenant is the hosting organisation's, as the domain's protected groups are: its
    # organisation is the one holding most privileged groups (none, or a tie: unknown).
    host = _unique_top(grp.filter(pl.col("privileged") & pl.col("real_org")), [], "org", "host_org")
    # What a scoped role reaches: the scope object's own organisation (an administrative unit or
    # an application) and the organisations of the accounts the administrative unit contains.
    scope_own = grp.filter(pl.col("real_org")).select(
        scope_id="group_id", reach_org="org", _own=pl.lit(True)
    )
    scope_members = (
        memberships.filter(pl.col("member_kind") == MemberKind.ACCOUNT.value)
        .select(scope_id="group_id", account_id="member_id")
        .join(grp.filter(pl.col("kind") == _AU).select(scope_id="group_id"), on="scope_id")
        .join(a_orgs.filter(pl.col("account_real")), on="account_id")
        .select("scope_id", reach_org="account_org", _own=pl.lit(False))
    )
    key = ["principal_id", "resource_id", "right"]
    reach = (
        roles.filter(pl.col("scope_id").is_not_null())
        .select(*key, "scope_id", "principal_org")
        .join(pl.concat([scope_own, scope_members]).unique(), on="scope_id")
        .filter(pl.col("reach_org") != pl.col("principal_org").fill_null(""))
        .group_by(key)
        .agg(
            reach_org=pl.col("reach_org")
            .sort_by(["_own", "reach_org"], descending=[True, False])
            .first(),
            reach_via_scope=pl.col("_own").max(),
        )
    )
    scope_obj = grp.select(scope_id="group_id", scope_org="org", scope_kind="kind")
    root = pl.col("scope") == "/"
    return (
        roles.join(reach, on=key, how="left")
        .join(scope_obj, on="scope_id", how="left")
        .join(host, how="cross")
        .with_columns(
            resource_org=pl.when(root)
            .then(pl.col("host_org"))
            .otherwise(pl.coalesce("reach_org", "scope_org")),
            host_known=pl.col("host_org").is_not_null(),
        )
        .with_columns(
            cross=pl.col("principal_real").fill_null(False)
            & pl.when(root)
            .then(
                pl.col("host_org").is_null()
                | (pl.col("host_org") != pl.col("principal_org")).fill_null(False)
            )
            .otherwise(pl.col("reach_org").is_not_null())
        )
    )


def _app_grants(grants: pl.LazyFrame, principals: pl.LazyFrame, grp: pl.LazyFrame) -> pl.LazyFrame:
    apps = grp.select(resource_id="group_id", app_org="org", app_real="real_org", app_name="name")
    return (
        grants.filter(pl.col("resource_kind") == ResourceKind.APP_ROLE.value)
        .select("principal_id", "resource_id", "right")
        .unique()
        .with_columns(
            role=pl.col("right").str.extract(r": ([^:]*)$", 1).fill_null(pl.col("right")),
        )
        .join(principals, on="principal_id", how="left")
        .join(apps, on="resource_id", how="left")
        .with_columns(
            app_name=pl.coalesce(
                "app_name", pl.col("right").str.extract(r"^(.*): [^:]*$", 1), "resource_id"
            ),
            cross=(
                pl.col("principal_real").fill_null(False)
                & pl.col("app_real").fill_null(False)
                & (pl.col("principal_org") != pl.col("app_org")).fill_null(False)
            ),
        )
    )


def _owners(grp: pl.LazyFrame, grants: pl.LazyFrame, principals: pl.LazyFrame) -> pl.LazyFrame:
    """managedBy, Entra owners and ownership grants: one row per (group, owner)."""
    managed = grp.filter(pl.col("managed_by").is_not_null()).select(
        "group_id", owner_id="managed_by", via=pl.lit("managedBy")
    )
    listed = (
        grp.select("group_id", owner_id="owners")
        .explode("owner_id")
        .filter(pl.col("owner_id").is_not_null())
        .with_columns(via=pl.lit("owner"))
    )
    granted = grants.filter(pl.col("resource_kind") == ResourceKind.OWNERSHIP.value).select(
        group_id="resource_id", owner_id="principal_id", via=pl.lit("owner")
    )
    g = grp.select(
        "group_id", group_org="org", group_real="real_org", group_kind="kind", mastered="mastered"
    )
    return (
        pl.concat([managed, listed, granted])
        .sort("group_id", "owner_id", "via")
        .unique(["group_id", "owner_id"], keep="first", maintain_order=True)
        .join(g, on="group_id")
        .join(
            principals.select(
                owner_id="principal_id",
                owner_type="principal_type",
                owner_org="principal_org",
                owner_real="principal_real",
            ),
            on="owner_id",
            how="left",
        )
        .with_columns(
            cross=pl.col("owner_real").fill_null(False)
            & pl.col("group_real")
            & (pl.col("owner_org") != pl.col("group_org")).fill_null(False)
        )
    )


def _sid_history(acc: pl.LazyFrame, grp: pl.LazyFrame) -> pl.LazyFrame:
    held = (
        acc.filter(~pl.col("synced_copy") & (pl.col("sid_history").list.len() > 0))
        .select("account_id", account_org="org", account_real="real_org", history_sid="sid_history")
        .explode("history_sid")
        .filter(pl.col("history_sid").is_not_null())
        .unique(["account_id", "history_sid"])
        .with_columns(domain=pl.col("history_sid").str.replace(r"-\d+$", ""))
    )
    objects = pl.concat(
        [
            acc.filter(~pl.col("synced_copy") & pl.col("sid").is_not_null()).select(
                history_sid="sid",
                target_id="account_id",
                target_type=pl.lit("account"),
                target_org="org",
                target_real="real_org",
            ),
            grp.filter(pl.col("sid").is_not_null()).select(
                history_sid="sid",
                target_id="group_id",
                target_type=pl.lit("group"),
                target_org="org",
                target_real="real_org",
            ),
        ]
    ).unique("history_sid", keep="first", maintain_order=True)
    resolved = held.join(objects, on="history_sid", how="left").filter(
        pl.col("target_id").is_null() | (pl.col("target_id") != pl.col("account_id"))
    )
    # A SID of a domain that no longer exists (an ADMT migration's source) belongs to the
    # organisation whose accounts carry most of that domain's SIDs.
    legacy = _unique_top(
        resolved.filter(pl.col("target_id").is_null() & pl.col("account_real")),
        ["domain"],
        "account_org",
        "domain_org",
    )
    return (
        resolved.join(legacy, on="domain", how="left")
        .with_columns(
            resolved=pl.col("target_id").is_not_null(),
            target_org=pl.when(pl.col("target_id").is_not_null())
            .then(pl.col("target_org"))
            .otherwise(pl.col("domain_org")),
            target_real=pl.when(pl.col("target_id").is_not_null())
            .then(pl.col("target_real"))
            .otherwise(pl.col("domain_org").is_not_null()),
            target_privileged=_privileged_rid("history_sid"),
        )
        .with_columns(
            cross=pl.col("account_real")
            & pl.col("target_real").fill_null(False)
            & (pl.col("account_org") != pl.col("target_org")).fill_null(False)
        )
    )


def _privileged_rid(column: str) -> pl.Expr:
    from accessaudit.model import privileged_sid_expr

    return privileged_sid_expr(column)


def _identity_pairs(acc: pl.LazyFrame) -> pl.LazyFrame:
    """Pairs of distinct identities that are one person: same employee id, mail or SID
    (an account's sIDHistory holding the other's objectSid)."""
    ids = acc.select("identity_id", "employee_id", "mail", "sid", "sid_history")
    links = pl.concat(
        [
            ids.select(
                "identity_id",
                link=pl.lit("employee id"),
                value=pl.col("employee_id").str.strip_chars().str.to_lowercase(),
            ),
            ids.select(
                "identity_id",
                link=pl.lit("mail"),
                value=pl.col("mail").str.strip_chars().str.to_lowercase(),
            ),
            ids.select("identity_id", link=pl.lit("SID history"), value="sid"),
            ids.select("identity_id", link=pl.lit("SID history"), value="sid_history").explode(
                "value"
            ),
        ]
    ).filter(pl.col("value").is_not_null() & (pl.col("value") != ""))
    # A value only one identity holds links nobody: dropped before the self-join (at 1M
    # accounts ~3M link rows, of which a few thousand are shared). Rows of a value seen once
    # go first (one hash pass), so ``unique`` and the count run on the few left.
    links = (
        links.filter(pl.struct("link", "value").is_duplicated())
        .unique()
        .filter(pl.len().over("link", "value") > 1)
    )
    people = acc.filter(~pl.col("synced_copy")).select(
        "identity_id",
        _org="org",
        _real="real_org",
        _enabled="enabled",
        _kind="kind",
    )
    pairs = (
        links.join(links, on=["link", "value"], suffix="_b")
        .filter(pl.col("identity_id") < pl.col("identity_id_b"))
        .group_by("identity_id", "identity_id_b")
        .agg(links=pl.col("link").unique().sort().str.join(", "))
    )
    return (
        pairs.join(people, on="identity_id")
        .rename({"_org": "org_a", "_real": "real_a", "_enabled": "enabled_a", "_kind": "kind_a"})
        .join(people, left_on="identity_id_b", right_on="identity_id", suffix="_x")
        .rename({"_org": "org_b", "_real": "real_b", "_enabled": "enabled_b", "_kind": "kind_b"})
        .select(
            account_id="identity_id",
            other_id="identity_id_b",
            links="links",
            org_a="org_a",
            org_b="org_b",
            real_a="real_a",
            real_b="real_b",
            enabled_a=pl.col("enabled_a").fill_null(False),
            enabled_b=pl.col("enabled_b").fill_null(False),
            kind_a="kind_a",
            kind_b="kind_b",
        )
    )


def build_views(
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
    grants: pl.DataFrame,
    *,
    closure: pl.DataFrame,
    effective: pl.DataFrame,
    as_of: datetime,
) -> dict[str, pl.LazyFrame]:
    """The lazy views every rule query sees (see :mod:`accessaudit.engine.evaluate`)."""
    mem = memberships.lazy()
    gr = grants.lazy()
    # The views every access rule joins stay as lean as the collected tables (a per-rule join
    # of the effective memberships is the cost at scale); identities and member counts are
    # computed only for the views that show them.
    acc = _accounts(accounts, as_of)
    people = _identities(acc)
    grp = groups.lazy().with_columns(real_org=_real("org"))
    member_counts = mem.group_by("group_id").agg(members=pl.len())
    grp_view = grp.join(member_counts, on="group_id", how="left").with_columns(
        pl.col("members").fill_null(0).cast(pl.Int64)
    )
    g_orgs = grp.select(
        "group_id",
        group_org="org",
        group_real="real_org",
        group_privileged="privileged",
        group_kind="kind",
    )
    a_orgs = acc.select(
        "account_id",
        account_org="org",
        account_real="real_org",
        account_enabled="enabled",
        account_kind="kind",
        days_since_active="days_since_active",
    )
    # The effective memberships' ids are Categorical (EFFECTIVE_SCHEMA): the two joins run on
    # their codes, and the ids become strings only after a rule's filters on the orgs, which
    # polars pushes below that cast.
    eff = effective.lazy().with_columns(pl.col(*_EFFECTIVE_IDS).cast(_CAT))
    access = (
        eff.join(a_orgs.with_columns(pl.col("account_id").cast(_CAT)), on="account_id")
        .join(
            g_orgs.filter(pl.col("group_kind") != _AU).with_columns(pl.col("group_id").cast(_CAT)),
            on="group_id",
        )
        .with_columns(
            cross=pl.col("account_real")
            & pl.col("group_real")
            & (pl.col("account_org") != pl.col("group_org"))
        )
        .with_columns(pl.col(*_EFFECTIVE_IDS, "via").cast(pl.String))
    )
    not_au = g_orgs.filter(pl.col("group_kind") != _AU)
    nestings = (
        mem.filter(pl.col("member_kind") == MemberKind.GROUP.value)
        .select(parent_id="group_id", child_id="member_id")
        .join(
            not_au.select(parent_id="group_id", parent_org="group_org", parent_real="group_real"),
            on="parent_id",
        )
        .join(
            g_orgs.select(child_id="group_id", child_org="group_org", child_real="group_real"),
            on="child_id",
        )
    )
    principals = _principals(acc, grp)
    role_grants = _role_grants(gr, principals, grp, mem, a_orgs)
    app_grants = _app_grants(gr, principals, grp)
    owners = _owners(grp, gr, principals)
    usage = pl.concat(
        [
            nestings.group_by(group_id="child_id").agg(parents=pl.len()),
            app_grants.group_by(group_id="principal_id").agg(app_roles=pl.len()),
            role_grants.group_by(group_id="principal_id").agg(roles=pl.len()),
        ],
        how="diagonal",
    )
    usage = usage.group_by("group_id").agg(
        pl.col(c).sum().cast(pl.Int64) for c in ("parents", "app_roles", "roles")
    )
    composition = (
        mem.filter(pl.col("member_kind") == MemberKind.ACCOUNT.value)
        .select("group_id", account_id="member_id")
        .unique()
        .join(a_orgs.filter(pl.col("account_real")), on="account_id")
        .join(not_au, on="group_id")
        .group_by("group_id", "group_org", "group_real")
        .agg(
            members=pl.len(),
            own=(pl.col("account_org") == pl.col("group_org")).sum(),
            other=(pl.col("account_org") != pl.col("group_org")).sum(),
        )
        .with_columns(other_share=pl.col("other") / pl.col("members"))
        .join(usage, on="group_id", how="left")
        .with_columns(pl.col("parents", "app_roles", "roles").fill_null(0))
    )
    rights = _rights(access, role_grants, app_grants, a_orgs, eff, mem)
    group_links = _group_links(nestings, owners, role_grants, app_grants)
    return {
        "accounts": people,
        "groups": grp_view,
        "memberships": mem,
        "nestings": nestings,
        "access": access,
        "composition": composition,
        "closure": closure.lazy().select("group_id", "ancestor_id", "depth"),
        "grants": gr,
        "role_grants": role_grants,
        "app_grants": app_grants,
        "owners": owners,
        "rights": rights,
        "sid_history": _sid_history(people, grp),
        "identity_pairs": _identity_pairs(people),
        "group_links": group_links,
    }


def _rights(
    access: pl.LazyFrame,
    role_grants: pl.LazyFrame,
    app_grants: pl.LazyFrame,
    a_orgs: pl.LazyFrame,
    effective: pl.LazyFrame,
    memberships: pl.LazyFrame,
) -> pl.LazyFrame:
    """Everything an account can reach: groups (any depth), directory roles (held directly or
    through a group), app roles (directly or as a direct member of an assigned group).

    The group part is the (large) ``access`` view as it is, so that a rule's filter on it is
    pushed down into it; only the (small) grant parts are de-duplicated and joined here.
    """
    account_cols = ["account_org", "account_real", "account_enabled", "account_kind"]
    groups = access.select(
        pl.col("account_id"),
        pl.lit("membership").alias("right_kind"),
        pl.col("group_id").alias("resource_id"),
        pl.col("group_org").alias("resource_org"),
        pl.col("group_real").alias("resource_real"),
        *account_cols,
        "days_since_active",
        "cross",
    )
    role_cols = role_grants.select(
        "principal_id", "principal_type", resource_id="resource_id", resource_org="resource_org"
    )
    roles_direct = role_cols.filter(pl.col("principal_type") == "account").select(
        account_id="principal_id",
        right_kind=pl.lit("directory-role"),
        resource_id="resource_id",
        resource_org="resource_org",
    )
    roles_via = (
        role_cols.filter(pl.col("principal_type") == "group")
        .with_columns(pl.col("principal_id").cast(_CAT))
        .join(effective.select("account_id", principal_id="group_id"), on="principal_id")
        .select(
            pl.col("account_id").cast(pl.String),
            right_kind=pl.lit("directory-role"),
            resource_id="resource_id",
            resource_org="resource_org",
        )
    )
    app_cols = app_grants.select(
        "principal_id", "principal_type", "resource_id", resource_org="app_org"
    )
    apps_direct = app_cols.filter(pl.col("principal_type") == "account").select(
        account_id="principal_id",
        right_kind=pl.lit("app-role"),
        resource_id="resource_id",
        resource_org="resource_org",
    )
    # Graph: "direct members of the group are also considered to have been assigned the role".
    apps_via = (
        app_cols.filter(pl.col("principal_type") == "group")
        .join(
            memberships.filter(pl.col("member_kind") == MemberKind.ACCOUNT.value).select(
                account_id="member_id", principal_id="group_id"
            ),
            on="principal_id",
        )
        .select(
            "account_id",
            right_kind=pl.lit("app-role"),
            resource_id="resource_id",
            resource_org="resource_org",
        )
    )
    granted = (
        pl.concat([roles_direct, roles_via, apps_direct, apps_via])
        .unique(["account_id", "right_kind", "resource_id"])
        .join(a_orgs, on="account_id")
        .with_columns(resource_real=_real("resource_org"))
        .with_columns(
            cross=pl.col("account_real")
            & pl.col("resource_real")
            & (pl.col("account_org") != pl.col("resource_org"))
        )
        .select(groups.collect_schema().names())
    )
    return pl.concat([groups, granted])


def _group_links(
    nestings: pl.LazyFrame,
    owners: pl.LazyFrame,
    role_grants: pl.LazyFrame,
    app_grants: pl.LazyFrame,
) -> pl.LazyFrame:
    """Each group's ties to the other organisation: nested in its group, owned by it, holding
    its role or app role."""
    return pl.concat(
        [
            nestings.filter(
                pl.col("child_real")
                & pl.col("parent_real")
                & (pl.col("child_org") != pl.col("parent_org"))
            ).select(
                group_id="child_id",
                link=pl.lit("nested in"),
                other_org="parent_org",
                other_id="parent_id",
            ),
            owners.filter(pl.col("cross")).select(
                "group_id", link=pl.lit("owned by"), other_org="owner_org", other_id="owner_id"
            ),
            role_grants.filter(pl.col("cross") & (pl.col("principal_type") == "group")).select(
                group_id="principal_id",
                link=pl.lit("holds a role of"),
                other_org="resource_org",
                other_id="resource_id",
            ),
            app_grants.filter(pl.col("cross") & (pl.col("principal_type") == "group")).select(
                group_id="principal_id",
                link=pl.lit("holds an app role of"),
                other_org="app_org",
                other_id="resource_id",
            ),
        ]
    )
