"""Identity views: the sIDHistory an account carries and whose SID each value is, and pairs of
identities that are one person."""

from __future__ import annotations

import polars as pl

from accessaudit.engine.views.directory import unique_top
from accessaudit.idkeys import employee_id_key
from accessaudit.model import privileged_sid_expr


def sid_history(acc: pl.LazyFrame, grp: pl.LazyFrame) -> pl.LazyFrame:
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
    legacy = unique_top(
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
            target_privileged=privileged_sid_expr("history_sid"),
        )
        .with_columns(
            cross=pl.col("account_real")
            & pl.col("target_real").fill_null(False)
            & (pl.col("account_org") != pl.col("target_org")).fill_null(False)
        )
    )


def identity_pairs(acc: pl.LazyFrame) -> pl.LazyFrame:
    """Pairs of distinct identities that are one person: same employee id, mail or SID
    (an account's sIDHistory holding the other's objectSid)."""
    ids = acc.select("identity_id", "employee_id", "mail", "sid", "sid_history")
    links = pl.concat(
        [
            ids.select(
                "identity_id",
                link=pl.lit("employee id"),
                value=employee_id_key(pl.col("employee_id")),  # padded ids are one person
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
