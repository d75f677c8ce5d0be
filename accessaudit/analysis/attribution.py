"""Attribute every account and group to one organisation, with evidence and conflicts.

Each organisation lists matchers (config ``[organisations.match]``). Every matcher that fires on
an object is recorded as evidence (``"company:warks"``); the object's ``org`` is the organisation
of the first firing matcher in ``attribution.precedence``; when matchers of two or more
organisations fire the object is also flagged ``org_conflict`` (a mover or a mislabelled object)
for review. No signal at all gives ``unattributed``. All of it is polars expressions: one pass
over the table, no per-row Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

from accessaudit.config.organisations import Matchers, Organisation
from accessaudit.config.settings import Settings
from accessaudit.model import Org

MatcherFn = Callable[[Matchers, str], pl.Expr | None]


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


def _ids(id_column: str) -> MatcherFn:
    def fn(m: Matchers, _: str) -> pl.Expr | None:
        if not m.ids:
            return None
        return pl.col(id_column).is_in(m.ids) | pl.col("sid").is_in(m.ids)

    return fn


#: How each matcher reads an account row.
ACCOUNT_MATCHERS: dict[str, MatcherFn] = {
    "ids": _ids("account_id"),
    "employee_id": lambda m, _: (
        pl.col("employee_id").str.contains(m.employee_id) if m.employee_id else None
    ),
    "company": lambda m, _: _lower_in("company", m.company),
    "ou": lambda m, _: _ends_with_any("dn", m.ou, sep=","),
    "upn_suffix": lambda m, _: _ends_with_any("upn", m.upn_suffix),
    "mail_domain": lambda m, _: _ends_with_any("mail", m.mail_domain, sep="@"),
    "name_prefix": lambda m, _: _starts_with_any("username", m.name_prefix),
    "names": lambda m, _: _lower_in("username", m.names),
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
}


def _attribute(
    df: pl.DataFrame,
    organisations: Sequence[Organisation],
    precedence: Sequence[str],
    matchers: dict[str, MatcherFn],
) -> pl.DataFrame:
    fired: list[tuple[str, str, pl.Expr]] = []  # (matcher, org, expr) in precedence order
    for kind in precedence:
        if kind not in matchers:
            continue
        for org in organisations:
            expr = matchers[kind](org.match, org.id)
            if expr is not None:
                fired.append((kind, org.id, expr.fill_null(False)))
    if not fired:
        return df.with_columns(
            org=pl.lit(Org.UNATTRIBUTED.value),
            org_evidence=pl.lit([], pl.List(pl.String)),
            org_conflict=pl.lit(False),
        )
    # Each matcher once, as a boolean column: evidence, org and conflict all read it (string
    # matchers over 1M accounts are the cost of this stage).
    names = [f"_match_{i}" for i in range(len(fired))]
    df = df.with_columns(e.alias(n) for n, (_, _, e) in zip(names, fired, strict=True))
    fired = [(kind, org, pl.col(n)) for n, (kind, org, _) in zip(names, fired, strict=True)]
    evidence = pl.concat_list(
        [
            pl.when(e).then(pl.lit(f"{kind}:{org}")).otherwise(pl.lit(None, pl.String))
            for kind, org, e in fired
        ]
    ).list.drop_nulls()
    first = pl.coalesce(
        [pl.when(e).then(pl.lit(org)).otherwise(pl.lit(None, pl.String)) for _, org, e in fired]
    )
    org_ids = list(dict.fromkeys(org for _, org, _ in fired))
    per_org = [pl.any_horizontal([e for _, o, e in fired if o == org]) for org in org_ids]
    n_orgs = pl.sum_horizontal([p.cast(pl.Int32) for p in per_org])
    return df.with_columns(
        org=first.fill_null(Org.UNATTRIBUTED.value),
        org_evidence=evidence,
        org_conflict=n_orgs > 1,
    ).drop(names)


def attribute_accounts(accounts: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """``accounts`` plus ``org``, ``org_evidence``, ``org_conflict``."""
    return _attribute(
        accounts, settings.organisations, settings.attribution.precedence, ACCOUNT_MATCHERS
    )


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
    return out.drop("_owner_org")
