"""Run every rule as one polars plan over shared views; check each rule's examples.

Views a rule query can use (all lazy; built once, shared by every rule):

``accounts``     accounts + org, org_conflict, real_org, days_since_active
``groups``       groups + org, org_conflict, real_org
``memberships``  direct edges as collected
``nestings``     direct group->group edges: parent_id, child_id, parent_org, child_org, *_real
``access``       effective memberships with both sides' orgs: account_id, group_id, depth,
                 via_group_id, via, account_org, account_real, account_enabled,
                 days_since_active, group_org, group_real, group_privileged, cross
``composition``  per group, its direct account members by organisation: group_id, group_org,
                 group_real, members, own, other, other_share
``closure``      group closure (group_id, ancestor_id, depth)
``grants``       other rights as collected

All rule plans are collected together with ``pl.collect_all`` so the shared effective-membership
plan is computed once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from ..analysis.expand import effective_memberships, group_closure
from ..errors import RuleError
from ..model import (
    ACCOUNTS_SCHEMA,
    FINDINGS_SCHEMA,
    GRANTS_SCHEMA,
    GROUPS_SCHEMA,
    MEMBERSHIPS_SCHEMA,
    SPECIAL_ORGS,
    MemberKind,
)
from .rulefile import OUTPUT_COLUMNS, Example, Rule

_SPECIAL = list(SPECIAL_ORGS)


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
    """The lazy views every rule query sees (see module docstring)."""
    acc = accounts.lazy().with_columns(
        real_org=~pl.col("org").is_in(_SPECIAL),
        days_since_active=(pl.lit(as_of) - pl.coalesce("last_logon", "created"))
        .dt.total_days()
        .fill_null(0),
    )
    grp = groups.lazy().with_columns(real_org=~pl.col("org").is_in(_SPECIAL))
    g_orgs = grp.select(
        "group_id", group_org="org", group_real="real_org", group_privileged="privileged"
    )
    a_orgs = acc.select(
        "account_id",
        account_org="org",
        account_real="real_org",
        account_enabled="enabled",
        days_since_active="days_since_active",
    )
    access = (
        effective.lazy()
        .join(a_orgs, on="account_id")
        .join(g_orgs, on="group_id")
        .with_columns(
            cross=pl.col("account_real")
            & pl.col("group_real")
            & (pl.col("account_org") != pl.col("group_org"))
        )
    )
    nestings = (
        memberships.lazy()
        .filter(pl.col("member_kind") == MemberKind.GROUP.value)
        .select(parent_id="group_id", child_id="member_id")
        .join(
            g_orgs.select(parent_id="group_id", parent_org="group_org", parent_real="group_real"),
            on="parent_id",
        )
        .join(
            g_orgs.select(child_id="group_id", child_org="group_org", child_real="group_real"),
            on="child_id",
        )
    )
    composition = (
        memberships.lazy()
        .filter(pl.col("member_kind") == MemberKind.ACCOUNT.value)
        .select("group_id", account_id="member_id")
        .unique()
        .join(a_orgs.filter(pl.col("account_real")), on="account_id")
        .join(g_orgs, on="group_id")
        .group_by("group_id", "group_org", "group_real")
        .agg(
            members=pl.len(),
            own=(pl.col("account_org") == pl.col("group_org")).sum(),
            other=(pl.col("account_org") != pl.col("group_org")).sum(),
        )
        .with_columns(other_share=pl.col("other") / pl.col("members"))
    )
    return {
        "accounts": acc,
        "groups": grp,
        "memberships": memberships.lazy(),
        "nestings": nestings,
        "access": access,
        "composition": composition,
        "closure": closure.lazy().select("group_id", "ancestor_id", "depth"),
        "grants": grants.lazy(),
    }


def _rule_plan(
    rule: Rule, ctx: pl.SQLContext[Any], overrides: Mapping[str, Any] | None
) -> pl.LazyFrame:
    try:
        lf = ctx.execute(rule.sql(dict(overrides or {})), eager=False)
        schema = lf.collect_schema()
    except RuleError:
        raise
    except Exception as exc:  # polars raises several types for bad SQL
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RuleError(
            f"{rule.path}: query failed: {first}", "check the SQL against the views"
        ) from None
    missing = [k for k in rule.key if k not in schema]
    if missing:
        raise RuleError(f"{rule.path}: query does not return key column '{missing[0]}'")
    extra = [c for c in schema.names() if c not in OUTPUT_COLUMNS]
    if extra:
        raise RuleError(
            f"{rule.path}: query returns unknown column '{extra[0]}'",
            f"allowed: {', '.join(OUTPUT_COLUMNS)}",
        )
    key = pl.concat_str(
        [pl.lit(rule.id), *[pl.col(k).cast(pl.String).fill_null("") for k in rule.key]],
        separator="|",
    )
    cols = [
        key.alias("finding_key"),
        pl.lit(rule.id).alias("rule_id"),
        pl.lit(rule.severity.value).alias("severity"),
        pl.lit(rule.title).alias("title"),
        pl.lit(rule.action.value).alias("action"),
    ]
    for name in OUTPUT_COLUMNS:
        dtype = FINDINGS_SCHEMA[name]
        cols.append(pl.col(name).cast(dtype) if name in schema else pl.lit(None, dtype).alias(name))
    return lf.select(cols).unique("finding_key", keep="first", maintain_order=True)


def evaluate(
    rules: Iterable[Rule],
    views: Mapping[str, pl.LazyFrame],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> pl.DataFrame:
    """All rules' findings (FINDINGS_SCHEMA), computed as one ``collect_all``."""
    ctx: pl.SQLContext[Any] = pl.SQLContext(frames=dict(views))
    rules = list(rules)
    plans = [_rule_plan(r, ctx, (overrides or {}).get(r.id)) for r in rules]
    if not plans:
        return pl.DataFrame(schema=FINDINGS_SCHEMA)
    frames = pl.collect_all(plans)
    out = pl.concat(frames, how="vertical")
    return out.sort("rule_id", "finding_key")


# --- examples ---------------------------------------------------------------------------------


def example_tables(ex: Example, as_of: datetime) -> dict[str, pl.DataFrame]:
    """Turn an example's compact rows into attributed canonical tables."""
    acc_rows = [
        {
            "source": "example",
            "account_id": str(a["id"]),
            "username": a.get("username", str(a["id"])),
            "kind": a.get("kind", "user"),
            "enabled": bool(a.get("enabled", True)),
            "last_logon": as_of - _days(a.get("days_inactive", 0)),
            "org": a.get("org", "unattributed"),
            "org_conflict": bool(a.get("conflict", False)),
        }
        for a in ex.accounts
    ]
    grp_rows = [
        {
            "source": "example",
            "group_id": str(g["id"]),
            "name": g.get("name", str(g["id"])),
            "privileged": bool(g.get("privileged", False)),
            "org": g.get("org", "unattributed"),
            "org_conflict": bool(g.get("conflict", False)),
            "mastered": g.get("mastered", "ad"),
        }
        for g in ex.groups
    ]
    account_ids = {r["account_id"] for r in acc_rows}
    mem_rows = [
        {
            "source": "example",
            "group_id": g,
            "member_id": m,
            "member_kind": MemberKind.ACCOUNT.value if m in account_ids else MemberKind.GROUP.value,
            "via": "member",
        }
        for g, m in ex.memberships
    ]
    extra = {"org": pl.String, "org_conflict": pl.Boolean}
    accounts = pl.DataFrame(acc_rows, schema={**ACCOUNTS_SCHEMA, **extra}, strict=False)
    groups = pl.DataFrame(grp_rows, schema={**GROUPS_SCHEMA, **extra}, strict=False)
    accounts = accounts.with_columns(org_evidence=pl.lit([], pl.List(pl.String)))
    groups = groups.with_columns(org_evidence=pl.lit([], pl.List(pl.String)))
    memberships = pl.DataFrame(mem_rows, schema=MEMBERSHIPS_SCHEMA)
    grants = (
        pl.DataFrame(ex.grants, schema=GRANTS_SCHEMA)
        if ex.grants
        else pl.DataFrame(schema=GRANTS_SCHEMA)
    )
    return {"accounts": accounts, "groups": groups, "memberships": memberships, "grants": grants}


def _days(n: Any) -> Any:
    from datetime import timedelta

    return timedelta(days=int(n))


@dataclass(frozen=True)
class ExampleResult:
    rule_id: str
    example: str
    passed: bool
    expected: frozenset[tuple[str, ...]]
    got: frozenset[tuple[str, ...]]


def run_examples(rules: Iterable[Rule], as_of: datetime | None = None) -> list[ExampleResult]:
    """Evaluate every rule's examples in isolation; exact set comparison of key tuples."""
    as_of = as_of or datetime(2026, 1, 1, tzinfo=UTC)
    results = []
    for rule in rules:
        for ex in rule.examples:
            t = example_tables(ex, as_of)
            closure = group_closure(t["memberships"])
            views = build_views(
                t["accounts"],
                t["groups"],
                t["memberships"],
                t["grants"],
                closure=closure,
                effective=effective_memberships(t["memberships"], closure),
                as_of=as_of,
            )
            findings = evaluate([rule], views, {rule.id: ex.settings})
            got = frozenset(
                tuple("" if v is None else str(v) for v in row)
                for row in findings.select(list(rule.key)).iter_rows()
            )
            expected = frozenset(ex.expect)
            results.append(ExampleResult(rule.id, ex.name, got == expected, expected, got))
    return results


def check_queries(
    rules: Iterable[Rule], overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """Plan every rule's query against empty views: bad SQL or columns fail before collecting."""
    as_of = datetime(2026, 1, 1, tzinfo=UTC)
    t = example_tables(Example("schema check", [], [], [], [], [], {}), as_of)
    closure = group_closure(t["memberships"])
    views = build_views(
        t["accounts"],
        t["groups"],
        t["memberships"],
        t["grants"],
        closure=closure,
        effective=effective_memberships(t["memberships"], closure),
        as_of=as_of,
    )
    ctx: pl.SQLContext[Any] = pl.SQLContext(frames=dict(views))
    for rule in rules:
        _rule_plan(rule, ctx, (overrides or {}).get(rule.id))
