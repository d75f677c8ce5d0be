"""attribute -> expand -> evaluate -> exceptions -> plan: a pure function of the snapshot."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from accessaudit.analysis.attribution import attribute_accounts, attribute_groups
from accessaudit.analysis.control import derive_control
from accessaudit.analysis.expand import effective_memberships, finding_paths, group_closure
from accessaudit.analysis.foreign import (
    domain_orgs,
    foreign_principals,
    guests_at_home,
    resolve_foreign,
)
from accessaudit.config.settings import (
    Settings,
)
from accessaudit.engine.evaluate import build_views, evaluate
from accessaudit.engine.exceptions import Register, apply_exceptions, load_configured
from accessaudit.engine.rulefile import Rule
from accessaudit.pipeline.hosts import declared_hosts
from accessaudit.pipeline.progress import Progress, noop
from accessaudit.remediation.plan import plan_actions
from accessaudit.report.pseudonymise import Pseudonymiser
from accessaudit.store.runs import (
    RunInfo,
    read_table,
)


@dataclass
class Analysis:
    """Everything derived from one snapshot: the stage outputs a run stores."""

    accounts: pl.DataFrame
    groups: pl.DataFrame
    memberships: pl.DataFrame
    grants: pl.DataFrame
    closure: pl.DataFrame
    effective: pl.DataFrame
    findings: pl.DataFrame
    actions: pl.DataFrame
    paths: pl.DataFrame
    rules: list[Rule] = field(default_factory=list)
    exceptions: Register | None = None  # the exceptions register the findings were marked with
    #: further tables a run stores: the trusts collected, the unresolved foreign SIDs described
    extra: dict[str, pl.DataFrame] = field(default_factory=dict)

    def tables(self) -> dict[str, pl.DataFrame]:
        return {
            "accounts": self.accounts,
            "groups": self.groups,
            "memberships": self.memberships,
            "grants": self.grants,
            "group_closure": self.closure,
            "effective_memberships": self.effective,
            "findings": self.findings,
            "actions": self.actions,
            "finding_paths": self.paths,
            **self.extra,
        }


def rule_overrides(settings: Settings, rules: list[Rule]) -> dict[str, dict[str, Any]]:
    """Config overrides of rule settings: audit.dormant_days, then audit.rule_settings."""
    out: dict[str, dict[str, Any]] = {}
    for r in rules:
        o: dict[str, Any] = {}
        if "dormant_days" in r.settings:
            o["dormant_days"] = settings.audit.dormant_days
        o.update(settings.audit.rule_settings.get(r.id, {}))
        out[r.id] = o
    return out


def analyse(
    tables: Mapping[str, pl.DataFrame],
    settings: Settings,
    rules: list[Rule],
    *,
    as_of: datetime,
    progress: Progress = noop,
    exceptions: Register | None = None,
) -> Analysis:
    """Attribute, expand, evaluate every rule, mark exceptions and plan the actions.

    Pure, but for reading the configured exceptions register when ``exceptions`` is not given.
    """
    progress("attributing accounts and groups")
    accounts = attribute_accounts(tables["accounts"], settings, tables["grants"])
    accounts = guests_at_home(accounts)  # B2B guests whose home tenant is collected too
    groups = attribute_groups(tables["groups"], accounts, settings)
    # foreign principals and sIDHistory resolved across the sources, before the expansion
    memberships = resolve_foreign(tables["memberships"], accounts, groups)
    foreign = foreign_principals(memberships, settings.organisations)
    trusts = tables.get("trusts")
    progress("expanding nested memberships")
    closure = group_closure(memberships)
    effective = effective_memberships(memberships, closure)
    progress("resolving access control entries")
    resources, grants = derive_control(
        tables, accounts, groups, effective=effective, closure=closure,
        organisations=settings.organisations, precedence=settings.attribution.precedence,
    )  # fmt: skip
    progress(f"evaluating {len(rules)} rules")
    views = build_views(
        accounts,
        groups,
        memberships,
        grants,
        closure=closure,
        effective=effective,
        as_of=as_of,
        hosts=declared_hosts(settings),
        resources=resources,
        foreign_sids=foreign,
        trusts=trusts,
        domains=domain_orgs(settings.organisations),
    )
    findings = evaluate(rules, views, rule_overrides(settings, rules)).with_columns(
        status=pl.lit("open")
    )
    if exceptions is None:
        exceptions = load_configured(settings, [r.id for r in rules])
    findings = apply_exceptions(findings, exceptions, as_of=as_of, accounts=accounts, groups=groups)
    progress("planning remediation")
    paths = finding_paths(findings, closure)
    actions = plan_actions(
        findings,
        accounts=accounts,
        groups=groups,
        memberships=memberships,
        paths=paths,
        organisations=settings.organisations,
    )
    return Analysis(
        accounts,
        groups,
        memberships,
        grants,
        closure,
        effective,
        findings,
        actions,
        paths,
        rules,
        exceptions,
        {
            "foreign_principals": foreign,
            **({} if trusts is None else {"trusts": trusts}),
            "resources": resources,
            **({"aces": tables["aces"]} if "aces" in tables else {}),
        },
    )


def pseudonymised(analysis: Analysis, pseudo: Pseudonymiser) -> Analysis:
    """A copy of ``analysis`` whose shown tables (accounts, groups, findings, actions, paths)
    are pseudonymised; the snapshot tables a run stores stay raw."""
    shown = pseudo.shown_tables(
        accounts=analysis.accounts,
        groups=analysis.groups,
        findings=analysis.findings,
        actions=analysis.actions,
        paths=analysis.paths,
    )
    return dataclasses.replace(
        analysis,
        accounts=shown["accounts"],
        groups=shown["groups"],
        findings=shown["findings"],
        actions=shown["actions"],
        paths=shown["paths"],
    )


def load_analysis(run: RunInfo, rules: list[Rule]) -> Analysis:
    """Re-read a stored run's tables (for re-rendering its report)."""
    t = {name: read_table(run, name) for name in (
        "accounts", "groups", "memberships", "grants", "group_closure", "effective_memberships",
        "findings", "actions", "finding_paths")}  # fmt: skip
    return Analysis(
        t["accounts"], t["groups"], t["memberships"], t["grants"], t["group_closure"],
        t["effective_memberships"], t["findings"], t["actions"], t["finding_paths"], rules,
    )  # fmt: skip
