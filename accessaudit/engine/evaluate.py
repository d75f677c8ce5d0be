"""Run every rule's polars plan over shared views (one rule at a time); check each rule's examples.

Views a rule query can use (all lazy; built once by :mod:`accessaudit.engine.views`, shared by
every rule). ``*_org`` columns hold an organisation id, ``shared`` or ``unattributed``; ``*_real``
is true for a real organisation (neither of those two).

``accounts``       accounts + org, org_evidence, org_conflict, real_org, days_since_active,
                   identity_id (the AD account an Entra synced copy belongs to, by SID, else the
                   account itself), synced_copy (an Entra user synced from an AD account)
``groups``         groups + org, org_evidence, org_conflict, real_org, members (direct members)
``memberships``    direct edges as collected
``nestings``       direct group->group edges: parent_id, child_id, parent_org, child_org, *_real
                   (an administrative unit holding a group is not a nesting)
``access``         effective memberships with both sides' orgs: account_id, group_id, depth,
                   via_group_id, via, account_org, account_real, account_enabled, account_kind,
                   days_since_active, group_org, group_real, group_privileged, group_kind, cross
                   (administrative units are not groups one has access *through*: left out)
``composition``    per group, its direct account members by organisation: group_id, group_org,
                   group_real, members, own, other, other_share, and where the group is used:
                   parents (groups it is nested in), app_roles, roles (grants it holds)
``closure``        group closure (group_id, ancestor_id, depth)
``grants``         other rights as collected
``role_grants``    Entra directory roles (assignments and PIM eligibility; the connector's
                   ``right`` is "<role> @ <directoryScopeId>[ (eligible)]"): principal_id,
                   principal_type (account / group), principal_org, principal_real,
                   principal_kind, resource_id (role definition), right, role_name, scope,
                   scope_id (administrative unit or application), scope_kind, eligible,
                   host_org (the tenant's organisation: the one holding most privileged groups,
                   null if none or tied), host_known, resource_org (host_org for the tenant
                   scope "/"; else the other organisation the scope reaches: the scope object's
                   own, or that of accounts an administrative unit contains), cross (a tenant-wide
                   role held outside the host organisation - or by anyone when the host is
                   unknown - or a scoped role reaching another organisation)
``app_grants``     app-role assignments (``right`` "<app>: <role>"): principal_id, principal_type,
                   principal_org, principal_real, principal_kind, resource_id (the enterprise
                   application), right, role, app_name, app_org, app_real (the application's
                   own ``groups`` row, kind app-role, attributed like any group), cross
``owners``         one row per (group, owner) from managedBy, Entra owners and ownership grants:
                   group_id, owner_id, via (managedBy / owner), group_org, group_real,
                   group_kind, mastered, owner_type, owner_org, owner_real, cross
``rights``         everything an account reaches: account_id, right_kind (membership /
                   directory-role / app-role), resource_id, resource_org, resource_real,
                   account_org, account_real, account_enabled, account_kind, days_since_active,
                   cross (roles held through a group, at any depth; app roles as a direct
                   member of an assigned group, as Graph documents)
``sid_history``    one row per sIDHistory value of an account (not of synced copies):
                   account_id, account_org, account_real, history_sid, domain, target_id,
                   target_type, target_org, target_real (the object with that SID, or for a SID
                   of a domain that no longer exists the organisation whose accounts carry most
                   of that domain's SIDs), resolved, target_privileged (a protected RID), cross
``identity_pairs`` two identities that are one person (same employee id, mail, or one's
                   sIDHistory holding the other's SID; an Entra synced copy is the same identity
                   as its AD account): account_id < other_id, links, org_a, org_b, real_a,
                   real_b, enabled_a, enabled_b, kind_a, kind_b
``group_links``    a group's ties to another organisation: group_id, link ("nested in",
                   "owned by", "holds a role of", "holds an app role of"), other_org, other_id

Each rule's plan is collected on its own, one after the other (see :func:`evaluate`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from accessaudit.engine.rulefile import OUTPUT_COLUMNS, Rule
from accessaudit.engine.views import build_views
from accessaudit.errors import RuleError
from accessaudit.model import (
    FINDINGS_SCHEMA,
)

__all__ = ["build_views", "evaluate", "rule_plan"]


def rule_plan(
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
    """All rules' findings (FINDINGS_SCHEMA), one rule's plan collected at a time.

    Not one ``pl.collect_all`` of every plan: measured at 1M accounts
    (``benchmarks/evaluate_variants.py``), collect_all took 10.8-16.2 s and +2.3-3.3 GB,
    because the plans run at once and each holds its joins over the 15.5M effective
    memberships; one at a time took 8.7-10.1 s and +0.06-1.4 GB. What they share (the views)
    is cheap to recompute: the access view's joins take 0.3 s at that size.
    """
    ctx: pl.SQLContext[Any] = pl.SQLContext(frames=dict(views))
    plans = [rule_plan(r, ctx, (overrides or {}).get(r.id)) for r in rules]
    if not plans:
        return pl.DataFrame(schema=FINDINGS_SCHEMA)
    frames = [plan.collect() for plan in plans]
    out = pl.concat(frames, how="vertical")
    return out.sort("rule_id", "finding_key")


# --- examples ---------------------------------------------------------------------------------
