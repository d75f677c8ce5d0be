"""Compare a collection with the (id-translated) dataset it was seeded from."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
from polars.testing import assert_frame_equal

ACCOUNT_COLUMNS = (
    "account_id", "sid", "username", "upn", "display_name", "mail", "employee_id", "company",
    "department", "description", "kind", "enabled", "last_logon", "pwd_last_set", "created",
    "manager_id", "sid_history", "privileged", "locked", "password_not_required",
    "password_never_expires", "password_expired", "account_expires",
)  # fmt: skip
GROUP_COLUMNS = (
    "group_id", "sid", "name", "description", "scope", "kind", "managed_by", "privileged",
    "owners", "mastered",
)  # fmt: skip
#: The columns generic LDAP fills through the OpenLDAP attribute mapping (no SIDs, no account
#: state flags, no group scope).
OPENLDAP_ACCOUNT_COLUMNS = (
    "account_id", "username", "display_name", "mail", "employee_id", "company", "department",
    "description", "kind", "manager_id",
)  # fmt: skip
OPENLDAP_GROUP_COLUMNS = ("group_id", "name", "description", "managed_by", "owners")


def edges(df: pl.DataFrame) -> pl.DataFrame:
    """Membership edges with ``range`` folded into ``member`` (how it was read, not what)."""
    return (
        df.select("group_id", "member_id", "member_kind", "via")
        .with_columns(pl.col("via").replace("range", "member"))
        .unique()
        .sort("group_id", "member_id", "via")
    )


def _assert_same(got: pl.DataFrame, want: pl.DataFrame, key: str) -> None:
    """Frame equality, reporting the first differing rows of each differing column."""
    problems = []
    joined = got.join(want, on=key, how="full", suffix="_want", coalesce=True)
    for col in want.columns:
        if col == key:
            continue
        diff = joined.filter(pl.col(col).ne_missing(pl.col(f"{col}_want")))
        if diff.height:
            sample = diff.select(key, col, f"{col}_want").head(3).rows()
            problems.append(f"{col}: {diff.height} row(s) differ, e.g. {sample}")
    assert not problems, "\n".join(problems)
    assert_frame_equal(got.sort(key), want.sort(key))


def assert_matches(
    collected: dict[str, pl.DataFrame],
    expected: dict[str, pl.DataFrame],
    *,
    account_columns: Sequence[str] = ACCOUNT_COLUMNS,
    group_columns: Sequence[str] = GROUP_COLUMNS,
) -> None:
    """Every expected object and edge is collected, identical in ``*_columns``; objects the
    server made itself (built-in accounts, groups) and edges touching them are ignored."""
    acc_ids = expected["accounts"]["account_id"]
    grp_ids = expected["groups"]["group_id"]
    got_acc = collected["accounts"].filter(pl.col("account_id").is_in(acc_ids.implode()))
    assert got_acc.height == expected["accounts"].height, "accounts missing from the collection"
    _assert_same(
        got_acc.select(account_columns), expected["accounts"].select(account_columns), "account_id"
    )
    got_grp = collected["groups"].filter(pl.col("group_id").is_in(grp_ids.implode()))
    assert got_grp.height == expected["groups"].height, "groups missing from the collection"
    _assert_same(
        got_grp.select(group_columns), expected["groups"].select(group_columns), "group_id"
    )
    known = pl.concat([acc_ids, grp_ids]).implode()
    got_mem = collected["memberships"].filter(
        pl.col("group_id").is_in(grp_ids.implode())
        & (pl.col("member_id").is_in(known) | (pl.col("member_kind") == "foreign"))
    )
    got_e, want_e = edges(got_mem), edges(expected["memberships"])
    missing = want_e.join(got_e, on=want_e.columns, how="anti")
    extra = got_e.join(want_e, on=want_e.columns, how="anti")
    assert missing.height == 0 and extra.height == 0, (
        f"edges missing: {missing.height} e.g. {missing.head(3).rows()}; "
        f"unexpected: {extra.height} e.g. {extra.head(3).rows()}"
    )
