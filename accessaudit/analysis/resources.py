"""Attribute securable resources (AD objects, folders, shares, mailboxes, Azure scopes) to an
organisation, with evidence, like accounts and groups are.

A ``resources`` row takes, in this order:

1. the organisation of its **subject** (``subject_id``: the account or group the resource *is*,
   an AD user object, a shared mailbox's account), evidence ``subject:<org>``; an unattributed
   subject gives no signal and the next rule decides;
2. else the organisations' matchers on its ``path``, in ``attribution.precedence`` order:
   ``ids`` (the resource id), ``ou`` (DN suffixes: an AD object's DN), ``mail_domain`` (a
   mailbox's address) and ``path_prefix``
   (case-insensitive prefixes: ``\\\\fs1\\wmp$``, ``smtp:`` addresses, ARM scopes
   ``/subscriptions/<id>``), with conflicts flagged as for accounts;
3. else ``unattributed``.

All of it is polars: the subject's organisation by one join, the matchers in one pass
(the attribution's own matcher pass).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from accessaudit.analysis.attribution import MatcherFn, _attribute, _ends_with_any, _ids
from accessaudit.config.organisations import Organisation
from accessaudit.model import Org

#: How each matcher reads a resource row.
RESOURCE_MATCHERS: dict[str, MatcherFn] = {
    "ids": _ids("resource_id"),
    "ou": lambda m, _: _ends_with_any("path", m.ou, sep=","),
    # a mailbox's path is its SMTP address: the organisation's mail domains claim it
    "mail_domain": lambda m, _: _ends_with_any("path", m.mail_domain, sep="@"),
    "path_prefix": lambda m, _: (
        pl.any_horizontal(
            [pl.col("path").str.to_lowercase().str.starts_with(p.lower()) for p in m.path_prefix]
        )
        if m.path_prefix
        else None
    ),
}


def attribute_resources(
    resources: pl.DataFrame,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    organisations: Sequence[Organisation],
    precedence: Sequence[str],
) -> pl.DataFrame:
    """``resources`` plus ``org``, ``org_evidence`` and ``org_conflict``.

    ``accounts`` and ``groups`` are attributed already (``account_id``/``group_id`` and
    ``org``)."""
    subjects = pl.concat(
        [
            accounts.select(subject_id="account_id", _subject_org="org"),
            groups.select(subject_id="group_id", _subject_org="org"),
        ]
    ).unique("subject_id", keep="first")
    df = resources.join(subjects, on="subject_id", how="left", maintain_order="left")
    ranked = _attribute(df, organisations, precedence, RESOURCE_MATCHERS)
    by_subject = pl.col("_subject_org").is_not_null() & (
        pl.col("_subject_org") != Org.UNATTRIBUTED.value
    )
    return ranked.with_columns(
        org=pl.when(by_subject).then(pl.col("_subject_org")).otherwise(pl.col("org")),
        org_evidence=pl.when(by_subject)
        .then(pl.concat_list([pl.lit("subject:") + pl.col("_subject_org")]))
        .otherwise(pl.col("org_evidence")),
        org_conflict=pl.when(by_subject).then(pl.lit(False)).otherwise(pl.col("org_conflict")),
    ).drop("_subject_org")
