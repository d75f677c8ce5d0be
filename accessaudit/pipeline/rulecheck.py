"""Rule examples and query checks: the rule catalogue tested before any server is contacted.

A rule's examples (tiny attributed tables and the finding keys expected) are expanded and
evaluated exactly as a run would (``accessaudit rules test``, the test suite); every rule's query
is planned against empty views before collecting (:func:`check_queries`), so bad SQL or a missing
column fails a run at once. This sits above both the expansion (``analysis``) and the rules
engine (``engine``) because it drives the two together, as the pipeline does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from accessaudit.analysis.expand import effective_memberships, group_closure
from accessaudit.analysis.foreign import domain_orgs, foreign_principals, resolve_foreign
from accessaudit.config.organisations import Matchers, Organisation
from accessaudit.engine.evaluate import evaluate, rule_plan
from accessaudit.engine.rulefile import Example, Rule
from accessaudit.engine.views import HOSTS_SCHEMA, build_views
from accessaudit.engine.views.control import ATTRIBUTED_RESOURCES
from accessaudit.model import (
    ACCOUNTS_SCHEMA,
    GRANTS_SCHEMA,
    GROUPS_SCHEMA,
    MEMBERSHIPS_SCHEMA,
    TRUSTS_SCHEMA,
    MemberKind,
    Via,
)

#: Example row keys copied as they are into the canonical columns of the same name.
_ACCOUNT_FIELDS = (
    "sid", "upn", "display_name", "mail", "employee_id", "company", "department", "dn",
    "manager_id", "sid_history", "privileged",
)  # fmt: skip
_GROUP_FIELDS = ("sid", "dn", "description", "scope", "kind", "managed_by", "owners")


def example_tables(ex: Example, as_of: datetime) -> dict[str, pl.DataFrame]:
    """Turn an example's compact rows into attributed canonical tables.

    Accounts: ``id``, ``org`` (default unattributed), ``conflict``, ``kind`` (user), ``enabled``,
    ``days_inactive`` (0; ``"never"``: no last logon), ``days_since_created`` (none),
    ``activity_tracked`` (true: the source records sign-ins), ``source`` (example) and any of
    :data:`_ACCOUNT_FIELDS`. Groups: ``id``,
    ``org``, ``conflict``, ``name``, ``privileged``, ``mastered`` (ad), ``source`` and any of
    :data:`_GROUP_FIELDS`. Memberships: ``[group, member]``. Grants: ``[principal, resource,
    resource_kind, right]``. The example's declared hosts are :func:`example_hosts`.
    """
    acc_rows = [
        {
            "source": a.get("source", "example"),
            "account_id": str(a["id"]),
            "username": a.get("username", str(a["id"])),
            "kind": a.get("kind", "user"),
            "enabled": bool(a.get("enabled", True)),
            "last_logon": _ago(as_of, a.get("days_inactive", 0)),
            "created": _ago(as_of, a.get("days_since_created", "never")),
            "activity_tracked": bool(a.get("activity_tracked", True)),
            "org": a.get("org", "unattributed"),
            "org_conflict": bool(a.get("conflict", False)),
            **{k: a[k] for k in _ACCOUNT_FIELDS if k in a},
        }
        for a in ex.accounts
    ]
    grp_rows = [
        {
            "source": g.get("source", "example"),
            "group_id": str(g["id"]),
            "name": g.get("name", str(g["id"])),
            "privileged": bool(g.get("privileged", False)),
            "org": g.get("org", "unattributed"),
            "org_conflict": bool(g.get("conflict", False)),
            "mastered": g.get("mastered", "ad"),
            "kind": "security",
            **{k: g[k] for k in _GROUP_FIELDS if k in g},
        }
        for g in ex.groups
    ]
    extra = {"org": pl.String, "org_conflict": pl.Boolean}
    accounts = pl.DataFrame(acc_rows, schema={**ACCOUNTS_SCHEMA, **extra}, strict=False)
    groups = pl.DataFrame(grp_rows, schema={**GROUPS_SCHEMA, **extra}, strict=False)
    accounts = accounts.with_columns(
        org_evidence=pl.lit([], pl.List(pl.String)),
        sid_history=pl.col("sid_history").fill_null(pl.lit([], pl.List(pl.String))),
    )
    groups = groups.with_columns(
        org_evidence=pl.lit([], pl.List(pl.String)),
        owners=pl.col("owners").fill_null(pl.lit([], pl.List(pl.String))),
    )
    memberships = _example_memberships(ex, {r["account_id"] for r in acc_rows})
    grant_rows = [
        dict(
            zip(("principal_id", "resource_id", "resource_kind", "right"), map(str, g), strict=True)
        )
        if isinstance(g, list)
        else g
        for g in ex.grants
    ]
    grants = pl.DataFrame(
        [{"source": "example", **g} for g in grant_rows], schema=GRANTS_SCHEMA, strict=False
    )
    trusts = pl.DataFrame(
        [{"source": "example", **t} for t in ex.trusts], schema=TRUSTS_SCHEMA, strict=False
    ).with_columns(pl.col("attribute_names").fill_null(pl.lit([], pl.List(pl.String))))
    return {
        "accounts": accounts,
        "groups": groups,
        "memberships": memberships,
        "grants": grants,
        "trusts": trusts,
        "resources": example_resources(ex),
    }


def _example_memberships(ex: Example, account_ids: set[str]) -> pl.DataFrame:
    """``[group, member]`` rows (``[group, member, "disabled"]``: a login its application has
    disabled); a member is an account when an account has its id, a foreign principal when it
    is a SID, else a group."""
    mem_rows = [
        {
            "source": "example",
            "group_id": g,
            "member_id": m,
            "member_kind": MemberKind.ACCOUNT.value
            if m in account_ids
            else MemberKind.FOREIGN.value
            if m.startswith("S-1-")
            else MemberKind.GROUP.value,
            "via": Via.CSV_DISABLED.value if state == ["disabled"] else "member",
        }
        for g, m, *state in ex.memberships
    ]
    return pl.DataFrame(mem_rows, schema=MEMBERSHIPS_SCHEMA)


def _ago(as_of: datetime, days: Any) -> datetime | None:
    """``days`` before ``as_of``; None for ``"never"``."""
    return None if days == "never" else as_of - timedelta(days=int(days))


@dataclass(frozen=True)
class ExampleResult:
    rule_id: str
    example: str
    passed: bool
    expected: frozenset[tuple[str, ...]]
    got: frozenset[tuple[str, ...]]


def views_of(
    tables: Mapping[str, pl.DataFrame],
    as_of: datetime,
    hosts: pl.DataFrame | None = None,
    domains: Mapping[str, str] | None = None,
) -> dict[str, pl.LazyFrame]:
    """Expand and build the views of small attributed tables (examples, schema checks, tests);
    ``hosts``: the declared hosts (source, host_org), none by default. Foreign members are
    resolved by SID first, as a run does; ``domains`` (domain SID -> organisation) are the
    organisations' ``domain_sid`` matchers."""
    orgs = [
        Organisation(id=org, name=org, match=Matchers(domain_sid=sids))
        for org, sids in _by_org(domains or {}).items()
    ]
    memberships = resolve_foreign(tables["memberships"], tables["accounts"], tables["groups"])
    closure = group_closure(memberships)
    return build_views(
        tables["accounts"],
        tables["groups"],
        memberships,
        tables["grants"],
        closure=closure,
        effective=effective_memberships(memberships, closure),
        as_of=as_of,
        hosts=hosts,
        foreign_sids=foreign_principals(memberships, orgs),
        trusts=tables.get("trusts"),
        resources=tables.get("resources"),
        domains=domain_orgs(orgs),
    )


def _by_org(domains: Mapping[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for sid, org in domains.items():
        out.setdefault(org, []).append(sid)
    return out


def run_examples(rules: Iterable[Rule], as_of: datetime | None = None) -> list[ExampleResult]:
    """Evaluate every rule's examples in isolation; exact set comparison of key tuples."""
    as_of = as_of or datetime(2026, 1, 1, tzinfo=UTC)
    results = []
    for rule in rules:
        for ex in rule.examples:
            t = example_tables(ex, as_of)
            views = views_of(t, as_of, example_hosts(ex), ex.domains)
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
    ctx: pl.SQLContext[Any] = pl.SQLContext(frames=dict(views_of(t, as_of)))
    for rule in rules:
        rule_plan(rule, ctx, (overrides or {}).get(rule.id))


def example_resources(ex: Example) -> pl.DataFrame:
    """The example's attributed ``resources``: ``id``, ``org``, ``class``, ``name``, ``path``,
    ``subject`` and ``linked_to`` by their short names, AD objects unless ``family`` says."""
    names = {"id": "resource_id", "class": "object_class", "subject": "subject_id"}
    rows = [
        {"source": "example", "family": "ad-object", "readable": True, "org_conflict": False}
        | {names.get(k, k): v for k, v in r.items()}
        for r in ex.resources
    ]
    return pl.DataFrame(rows, schema=ATTRIBUTED_RESOURCES, strict=False).with_columns(
        pl.col("linked_to").fill_null(pl.lit([], pl.List(pl.String))),
        org_evidence=pl.lit([], pl.List(pl.String)),
    )


def example_hosts(ex: Example) -> pl.DataFrame:
    """The example's ``hosts`` (source -> organisation) as the views take them; none declared:
    every source's host is unknown."""
    return pl.DataFrame(
        {"source": list(ex.hosts), "host_org": list(ex.hosts.values())}, schema=HOSTS_SCHEMA
    )
