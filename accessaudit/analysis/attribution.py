"""Attribute every account and group to one organisation, with evidence and conflicts.

Each organisation lists matchers (config ``[organisations.match]``). Every matcher that fires on
an object is recorded as evidence (``"company:warks"``); the object's ``org`` is the organisation
of the first firing matcher in ``attribution.precedence``; when matchers of two or more
organisations fire the object is also flagged ``org_conflict`` (a mover or a mislabelled object)
for review. No signal at all gives ``unattributed``. All of it is polars expressions: one pass
over the table, no per-row Python.

Guests and external members (Entra) carry their home organisation's domain in ``home_domain``
(from their mail, their ``#EXT#`` UPN or a federated identity's issuer). For them ``upn_suffix``
reads that domain instead of the UPN (a guest's UPN suffix is its host tenant's) and
``mail_domain`` reads it when they have no mail; the evidence says which field gave it
(``"mail_domain:warks (guest home domain from #EXT# UPN)"``). A home domain matches a configured
domain or one of its subdomains.

Service principals (accounts of kind ``service``, Entra) are attributed like users (``ids``,
``names``, ``name_prefix`` on their display name) and also by their owners (``owner``: the
organisations of the accounts owning them, from the ownership grants) and by their application's
tenant (``sources``: an ``entra:<appOwnerOrganizationId>`` source listed for the organisation).
An owner that is itself a service principal counts with the signals of its own (not its
owners'). A service principal that is also an enterprise application (a groups row of kind
``app-role`` with the same id) has one organisation: the application row takes its account
row's, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

from accessaudit.analysis.identifiers import employee_id_key
from accessaudit.config.organisations import Matchers, Organisation
from accessaudit.config.settings import Settings
from accessaudit.model import (
    DOMAIN_PATTERN,
    AccountKind,
    GroupKind,
    Org,
    ResourceKind,
    ext_home_domain,
)

#: A matcher's conditions, each with the text its evidence adds after "kind:org" ("" for none).
Fired = list[tuple[str, pl.Expr]]
MatcherFn = Callable[[Matchers, str], pl.Expr | Fired | None]
#: Where a guest's ``home_domain`` came from, as its evidence names it (the connector's order).
HOME_FROM = ("mail", "#EXT# UPN", "identities")


def _lower_in(column: str, values: Sequence[str]) -> pl.Expr | None:
    if not values:
        return None
    return pl.col(column).str.to_lowercase().is_in([v.lower() for v in values])


def _ends_with_any(column: str, suffixes: Sequence[str], sep: str = "") -> pl.Expr | None:
    if not suffixes:
        return None
    lowered = pl.col(column).str.to_lowercase()
    exprs = []
    for s in suffixes:
        s = s.lower()
        exprs.append(
            lowered.str.ends_with(sep + s) | (lowered == s) if sep else lowered.str.ends_with(s)
        )
    return pl.any_horizontal(exprs)


def _starts_with_any(column: str, prefixes: Sequence[str]) -> pl.Expr | None:
    if not prefixes:
        return None
    lowered = pl.col(column).str.to_lowercase()
    return pl.any_horizontal([lowered.str.starts_with(p.lower()) for p in prefixes])


def _home_from() -> pl.Expr:
    """Which field gave ``home_domain`` (one of :data:`HOME_FROM`): the mail's domain when it is
    that domain, else the ``#EXT#`` UPN's, else a federated identity's issuer."""
    home = pl.col("home_domain").str.to_lowercase()
    mail = pl.col("mail").str.to_lowercase().str.extract(rf"@({DOMAIN_PATTERN})$", 1)
    return (
        pl.when(home.is_null())
        .then(None)
        .when((mail == home).fill_null(False))
        .then(pl.lit(HOME_FROM[0]))
        .when((ext_home_domain("upn") == home).fill_null(False))
        .then(pl.lit(HOME_FROM[1]))
        .otherwise(pl.lit(HOME_FROM[2]))
    )


def _upn_suffix(m: Matchers, _: str) -> Fired | None:
    """The UPN's suffix; for a guest or external member (an account with a ``home_domain``) its
    home domain instead: its UPN's suffix is the host tenant's, not its organisation's."""
    plain = _ends_with_any("upn", m.upn_suffix)
    if plain is None:
        return None
    own = pl.col("home_domain").is_null() & plain
    return [("", own), *_at_home(m.upn_suffix, HOME_FROM)]


def _mail_domain(m: Matchers, _: str) -> Fired | None:
    """The mail's domain; for a guest without one, the home domain its ``#EXT#`` UPN or its
    identity's issuer names (a guest's mail is its home address: read as it is)."""
    plain = _ends_with_any("mail", m.mail_domain, sep="@")
    if plain is None:
        return None
    return [("", plain), *_at_home(m.mail_domain, HOME_FROM[1:])]


def _at_home(domains: Sequence[str], sources: Sequence[str]) -> Fired:
    """``home_domain`` equal to one of ``domains`` (or a subdomain of one), one condition per
    field it may come from, each with evidence naming that field."""
    home = pl.col("home_domain").str.to_lowercase()
    lowered = [d.lower().lstrip("@") for d in domains]
    at_home = pl.any_horizontal([(home == d) | home.str.ends_with("." + d) for d in lowered])
    return [
        (f" (guest home domain from {source})", (pl.col("_home_from") == source) & at_home)
        for source in sources
    ]


def _employee_id(pattern: str | None) -> pl.Expr | None:
    """The pattern matches the staff number as written or as normalised
    (:func:`~accessaudit.analysis.identifiers.employee_id_key`: ``" 02000146"`` is also read as
    ``2000146``), so a padded export and a pattern written for the directory's ids agree."""
    if not pattern:
        return None
    raw = pl.col("employee_id")
    return raw.str.contains(pattern) | employee_id_key(raw).str.contains(pattern)


def _ids(id_column: str) -> MatcherFn:
    def fn(m: Matchers, _: str) -> pl.Expr | None:
        if not m.ids:
            return None
        return pl.col(id_column).is_in(m.ids) | pl.col("sid").is_in(m.ids)

    return fn


def _domain_sid(m: Matchers, _: str) -> pl.Expr | None:
    """The object's SID is of one of the domains listed (its SID less the last RID)."""
    if not m.domain_sid:
        return None
    return pl.col("sid").str.replace(r"-\d+$", "").is_in(m.domain_sid)


#: How each matcher reads an account row.
ACCOUNT_MATCHERS: dict[str, MatcherFn] = {
    "ids": _ids("account_id"),
    "employee_id": lambda m, _: _employee_id(m.employee_id),
    "company": lambda m, _: _lower_in("company", m.company),
    "ou": lambda m, _: _ends_with_any("dn", m.ou, sep=","),
    "upn_suffix": _upn_suffix,
    "mail_domain": _mail_domain,
    "name_prefix": lambda m, _: _starts_with_any("username", m.name_prefix),
    "names": lambda m, _: _lower_in("username", m.names),
    # service principals: their owners' organisations, their application's tenant
    "owner": lambda m, org: pl.col("_owner_orgs").list.contains(org) if m.owner else None,
    "sources": lambda m, _: (
        [(" (its application's tenant)", ("entra:" + pl.col("app_tenant")).is_in(m.sources))]
        if m.sources
        else None
    ),
    "domain_sid": _domain_sid,
}

#: How each matcher reads a group row (``owner`` is handled with the owners' organisations).
GROUP_MATCHERS: dict[str, MatcherFn] = {
    "ids": _ids("group_id"),
    "ou": lambda m, _: _ends_with_any("dn", m.ou, sep=","),
    "name_prefix": lambda m, _: _starts_with_any("name", m.name_prefix),
    "names": lambda m, _: _lower_in("name", m.names),
    "privileged_groups": lambda m, _: pl.col("privileged") if m.privileged_groups else None,
    "sources": lambda m, _: pl.col("source").is_in(m.sources) if m.sources else None,
    "owner": lambda m, org: (pl.col("_owner_org") == org) if m.owner else None,
    "domain_sid": _domain_sid,
}


def _attribute(
    df: pl.DataFrame,
    organisations: Sequence[Organisation],
    precedence: Sequence[str],
    matchers: dict[str, MatcherFn],
) -> pl.DataFrame:
    fired: list[tuple[str, str, pl.Expr]] = []  # (evidence, org, expr) in precedence order
    for kind in precedence:
        if kind not in matchers:
            continue
        for org in organisations:
            got = matchers[kind](org.match, org.id)
            for label, expr in [("", got)] if isinstance(got, pl.Expr) else got or []:
                fired.append((f"{kind}:{org.id}{label}", org.id, expr.fill_null(False)))
    if not fired:
        return _unattributed(df)
    # Each matcher once, as a boolean column; a matcher that fires on no row is left out (most
    # tables have no guests, service principals or application tenants). Evidence, org and
    # conflict are decided once per distinct combination of firing matchers (a few dozen) and
    # joined back: building evidence strings row by row is the cost at a million accounts.
    names = [f"_match_{i}" for i in range(len(fired))]
    df = df.with_columns(e.alias(n) for n, (_, _, e) in zip(names, fired, strict=True))
    anywhere = df.select(pl.col(names).any()).row(0) if df.height else (False,) * len(names)
    kept = [
        (label, org, n)
        for n, (label, org, _), hit in zip(names, fired, anywhere, strict=True)
        if hit
    ]
    if not kept:
        return _unattributed(df.drop(names))
    keys = [n for _, _, n in kept]
    combinations = df.select(keys).unique()
    decided = combinations.with_columns(_decide([(lb, o, pl.col(n)) for lb, o, n in kept]))
    return df.join(decided, on=keys, how="left", maintain_order="left").drop(names)


def _unattributed(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(
        org=pl.lit(Org.UNATTRIBUTED.value),
        org_evidence=pl.lit([], pl.List(pl.String)),
        org_conflict=pl.lit(False),
    )


def _decide(fired: list[tuple[str, str, pl.Expr]]) -> list[pl.Expr]:
    """``org`` (the first firing matcher's), ``org_evidence`` (every firing matcher's label) and
    ``org_conflict`` (matchers of two or more organisations fire), from the matcher columns."""
    evidence = pl.concat_list(
        [pl.when(e).then(pl.lit(label)).otherwise(pl.lit(None, pl.String)) for label, _, e in fired]
    ).list.drop_nulls()
    first = pl.coalesce(
        [pl.when(e).then(pl.lit(org)).otherwise(pl.lit(None, pl.String)) for _, org, e in fired]
    )
    org_ids = list(dict.fromkeys(org for _, org, _ in fired))
    per_org = [pl.any_horizontal([e for _, o, e in fired if o == org]) for org in org_ids]
    n_orgs = pl.sum_horizontal([p.cast(pl.Int32) for p in per_org])
    return [
        first.fill_null(Org.UNATTRIBUTED.value).alias("org"),
        evidence.alias("org_evidence"),
        (n_orgs > 1).alias("org_conflict"),
    ]


#: Columns the account matchers read that a hand-built or older table may lack (nulls).
_OPTIONAL = {"upn": pl.String, "mail": pl.String, "home_domain": pl.String, "app_tenant": pl.String}


def _owner_orgs(
    accounts: pl.DataFrame, grants: pl.DataFrame | None, settings: Settings
) -> pl.DataFrame:
    """Per owned account (a service principal), the organisations of its owners, from the
    ownership grants; the owners are attributed by every other signal first (not by owners:
    one level, no chains)."""
    schema = pl.Schema({"account_id": pl.String(), "_owner_orgs": pl.List(pl.String)})
    if grants is None or grants.is_empty():
        return pl.DataFrame(schema=schema)
    owned = grants.filter(pl.col("resource_kind") == ResourceKind.OWNERSHIP.value).select(
        account_id="resource_id", owner_id="principal_id"
    )
    owned = owned.join(accounts.select("account_id"), on="account_id", how="semi")
    owners = accounts.join(owned.select(account_id="owner_id"), on="account_id", how="semi")
    if owners.is_empty():
        return pl.DataFrame(schema=schema)
    precedence = [p for p in settings.attribution.precedence if p != "owner"]
    ranked = _attribute(owners, settings.organisations, precedence, ACCOUNT_MATCHERS)
    return (
        owned.join(ranked.select(owner_id="account_id", _org="org"), on="owner_id")
        .filter(pl.col("_org") != Org.UNATTRIBUTED.value)
        .group_by("account_id")
        .agg(_owner_orgs=pl.col("_org").unique().sort())
    )


def attribute_accounts(
    accounts: pl.DataFrame, settings: Settings, grants: pl.DataFrame | None = None
) -> pl.DataFrame:
    """``accounts`` plus ``org``, ``org_evidence``, ``org_conflict``. ``grants``: the ownership
    grants that attribute service principals by their owners (none: no ``owner`` signal)."""
    missing = {c: t for c, t in _OPTIONAL.items() if c not in accounts.columns}
    df = accounts.with_columns(pl.lit(None, t).alias(c) for c, t in missing.items())
    guests = df.select(pl.arg_where(pl.col("home_domain").is_not_null())).to_series()
    home_from = df[guests].select(_home_from().alias("_home_from")).to_series()
    df = df.with_columns(_sparse(df, guests, home_from))
    owners = _owner_orgs(df, grants, settings)
    owned = df.select(pl.arg_where(pl.col("account_id").is_in(owners["account_id"].implode())))
    rows = df[owned.to_series()].select("account_id")
    orgs = rows.join(owners, on="account_id", how="left", maintain_order="left")["_owner_orgs"]
    df = df.with_columns(_sparse(df, owned.to_series(), orgs))
    out = _attribute(df, settings.organisations, settings.attribution.precedence, ACCOUNT_MATCHERS)
    return out.drop("_home_from", "_owner_orgs", *missing)


def _sparse(df: pl.DataFrame, rows: pl.Series, values: pl.Series) -> pl.Series:
    """``values`` at row positions ``rows`` of ``df``, null elsewhere: the guests' and the
    service principals' helper columns are computed for those few rows only (at a million
    accounts a regular expression over every UPN is the cost)."""
    if not rows.len():
        return pl.Series(values.name, [], values.dtype).extend_constant(None, df.height)
    part = pl.DataFrame({"_row": rows.cast(pl.UInt32), values.name: values})
    every = df.select(pl.int_range(df.height, dtype=pl.UInt32).alias("_row"))
    return every.join(part, on="_row", how="left", maintain_order="left")[values.name]


def attribute_groups(
    groups: pl.DataFrame, accounts: pl.DataFrame, settings: Settings
) -> pl.DataFrame:
    """``groups`` plus org columns; ``owner`` uses the org of the account in ``managed_by``.

    ``accounts`` must already be attributed.
    """
    owners = accounts.select(
        pl.col("account_id").alias("managed_by"), pl.col("org").alias("_owner_org")
    ).unique("managed_by")
    with_owner = groups.join(owners, on="managed_by", how="left")
    out = _attribute(
        with_owner, settings.organisations, settings.attribution.precedence, GROUP_MATCHERS
    )
    return _as_principal(out.drop("_owner_org"), accounts)


def _as_principal(groups: pl.DataFrame, accounts: pl.DataFrame) -> pl.DataFrame:
    """An enterprise application (groups row of kind ``app-role``) whose service principal is
    also an account (a principal) takes that account's organisation, evidence and conflict: one
    object, one organisation."""
    if "kind" not in accounts.columns:
        return groups
    keys = ["source", "group_id"] if "source" in accounts.columns else ["group_id"]
    principals = accounts.filter(pl.col("kind") == AccountKind.SERVICE.value).select(
        *(["source"] if "source" in keys else []),
        group_id="account_id",
        _org="org",
        _evidence="org_evidence",
        _conflict="org_conflict",
    )
    if principals.is_empty():
        return groups
    app = (pl.col("kind") == GroupKind.APP_ROLE.value) & pl.col("_org").is_not_null()
    return (
        groups.join(principals.unique(keys), on=keys, how="left", maintain_order="left")
        .with_columns(
            org=pl.when(app).then("_org").otherwise("org"),
            org_evidence=pl.when(app).then("_evidence").otherwise("org_evidence"),
            org_conflict=pl.when(app).then("_conflict").otherwise("org_conflict"),
        )
        .drop("_org", "_evidence", "_conflict")
    )
