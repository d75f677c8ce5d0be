"""A small hand-made run for the report tests: two forces, hostile directory text."""

from __future__ import annotations

from typing import Any, TypedDict

import polars as pl

from accessaudit.model import (
    ACCOUNTS_SCHEMA,
    ACTIONS_SCHEMA,
    FINDINGS_SCHEMA,
    GROUPS_SCHEMA,
    ORG_COLUMNS,
)
from accessaudit.report.context import ReportInput, build_context
from accessaudit.report.evidence import RuleDoc

XSS_SCRIPT = "<script>window.__xss=1</script>"
XSS_IMG = '"><img src=x onerror="window.__xss=1">'
FORMULA = '=HYPERLINK("http://x","y")'
BIDI = "Dave\u202eexe.txt"
BIDI_SHOWN = "Dave[U+202E]exe.txt"
LDAP = "*)(uid=*"
GROUP_SCRIPT = "WMP-Nested</script><script>window.__xss=1</script>"

ACCOUNTS_ROWS: list[dict[str, Any]] = [
    {
        "account_id": "a1",
        "username": "wmp.alice",
        "display_name": XSS_SCRIPT,
        "org": "wmp",
        "org_evidence": ["company:wmp", "upn_suffix:wmp"],
        "org_conflict": False,
    },
    {
        "account_id": "a2",
        "username": "warks.bob",
        "display_name": XSS_IMG,
        "org": "warks",
        "org_evidence": ["company:warks"],
        "org_conflict": False,
    },
    {
        "account_id": "a3",
        "username": "wmp.carol",
        "display_name": FORMULA,
        "org": "wmp",
        "org_evidence": ["ou:wmp"],
        "org_conflict": False,
    },
    {
        "account_id": "a4",
        "username": "wmp.dave",
        "display_name": BIDI,
        "org": "wmp",
        "org_evidence": ["company:warks", "upn_suffix:wmp"],
        "org_conflict": True,
    },
]

GROUPS_ROWS: list[dict[str, Any]] = [
    {
        "group_id": "g1",
        "name": "WARKS-Finance",
        "org": "warks",
        "org_evidence": ["name_prefix:warks"],
    },
    {
        "group_id": "g2",
        "name": "WARKS-Domain Admins",
        "org": "warks",
        "org_evidence": ["ou:warks"],
        "privileged": True,
    },
    {"group_id": "g3", "name": GROUP_SCRIPT, "org": "wmp", "org_evidence": ["name_prefix:wmp"]},
    {"group_id": "g4", "name": LDAP, "org": "warks", "org_evidence": ["ou:warks"]},
    {"group_id": "g5", "name": "WMP-Intranet", "org": "wmp", "org_evidence": ["ou:wmp"]},
]


def _finding(key: str, rule: str, severity: str, action: str, **kw: Any) -> dict[str, Any]:
    return {
        "finding_key": key,
        "rule_id": rule,
        "severity": severity,
        "title": rule,
        "action": action,
        "detail": kw.pop("detail", ""),
        "status": kw.pop("status", "open"),
        **kw,
    }


FINDINGS_ROWS: list[dict[str, Any]] = [
    _finding(
        "cross-privileged:a1:g2",
        "cross-privileged",
        "critical",
        "unnest-group",
        account_id="a1",
        group_id="g2",
        via_group_id="g3",
        depth=1,
        principal_org="wmp",
        resource_org="warks",
    ),
    _finding(
        "cross-member:a3:g1",
        "cross-member",
        "high",
        "remove-member",
        account_id="a3",
        group_id="g1",
        depth=0,
        principal_org="wmp",
        resource_org="warks",
        detail=FORMULA,
    ),
    _finding(
        "cross-member:a4:g4",
        "cross-member",
        "high",
        "remove-member",
        account_id="a4",
        group_id="g4",
        depth=0,
        principal_org="wmp",
        resource_org="warks",
    ),
    _finding(
        "nested-cross:g3:g2",
        "nested-cross",
        "medium",
        "unnest-group",
        member_group_id="g3",
        group_id="g2",
        depth=1,
        principal_org="wmp",
        resource_org="warks",
    ),
    _finding(
        "cross-member:a2:g5",
        "cross-member",
        "high",
        "remove-member",
        account_id="a2",
        group_id="g5",
        depth=0,
        principal_org="warks",
        resource_org="wmp",
        status="accepted",
    ),
    _finding(
        "attribution-conflict:a4",
        "attribution-conflict",
        "low",
        "review-attribution",
        account_id="a4",
        principal_org="wmp",
    ),
]

ACTIONS_ROWS: list[dict[str, Any]] = [
    {
        "action_id": "unnest-group:g2:g3",
        "kind": "unnest-group",
        "severity": "critical",
        "group_id": "g2",
        "member_id": "g3",
        "member_kind": "group",
        "owning_org": "warks",
        "resolves": 2,
        "finding_keys": ["cross-privileged:a1:g2", "nested-cross:g3:g2"],
        "summary": f"Remove group {GROUP_SCRIPT} from WARKS-Domain Admins",
        "powershell": "Remove-ADGroupMember -Identity 'g2' -Members 'g3' -Confirm:$false",
    },
    {
        "action_id": "remove-member:g1:a3",
        "kind": "remove-member",
        "severity": "high",
        "group_id": "g1",
        "member_id": "a3",
        "member_kind": "account",
        "owning_org": "warks",
        "resolves": 1,
        "finding_keys": ["cross-member:a3:g1"],
        "summary": f"Remove {FORMULA} from WARKS-Finance",
        "powershell": "Remove-ADGroupMember -Identity 'g1' -Members 'a3' -Confirm:$false",
    },
    {
        "action_id": "remove-member:g4:a4",
        "kind": "remove-member",
        "severity": "high",
        "group_id": "g4",
        "member_id": "a4",
        "member_kind": "account",
        "owning_org": "warks",
        "resolves": 1,
        "finding_keys": ["cross-member:a4:g4"],
        "summary": "Remove wmp.dave from a group",
        "powershell": "Remove-ADGroupMember -Identity 'g4' -Members 'a4' -Confirm:$false",
    },
    {
        "action_id": "review-attribution:a4",
        "kind": "review-attribution",
        "severity": "low",
        "group_id": None,
        "member_id": "a4",
        "member_kind": "account",
        "owning_org": "wmp",
        "resolves": 1,
        "finding_keys": ["attribution-conflict:a4"],
        "summary": "Decide which force owns wmp.dave",
        "powershell": "# review: Get-ADUser -Identity 'a4' -Properties company",
    },
]

PATHS_ROWS: list[dict[str, Any]] = [
    {"finding_key": "cross-privileged:a1:g2", "path": ["a1", "g3", "g2"]},
]

RULES = [
    RuleDoc(
        id="cross-privileged",
        title="Cross-force privileged access",
        severity="critical",
        rationale="An account of one force holds a privileged group of the other.",
        remediation="Remove the nesting where the path crosses forces.",
        action="unnest-group",
    ),
    RuleDoc(
        id="cross-member",
        title="Cross-force group membership",
        severity="high",
        rationale="An account of one force is a member of a group of the other.",
        remediation="Remove the member.",
        action="remove-member",
    ),
    RuleDoc(
        id="nested-cross",
        title="Group nested across forces",
        severity="medium",
        rationale="A group of one force is nested in a group of the other.",
        remediation="Un-nest the group.",
        action="unnest-group",
    ),
    RuleDoc(
        id="attribution-conflict",
        title="Conflicting attribution",
        severity="low",
        rationale="Attribution signals disagree.",
        remediation="Decide the owning force.",
        action="review-attribution",
    ),
]

MANIFEST: dict[str, Any] = {
    "run_id": "20261126T050000Z",
    "tool_version": "0.1.0",
    "started": "2026-11-26T05:00:00+00:00",
    "finished": "2026-11-26T05:03:00+00:00",
    "config_hash": "c0ffee" * 4,
    "rules_hash": "beef" * 6,
    "complete": True,
    "sources": [
        {
            "name": "alliance-ad",
            "source": "ad:alliance.local",
            "kind": "sample",
            "started": "2026-11-26T05:00:00+00:00",
            "finished": "2026-11-26T05:02:00+00:00",
            "complete": True,
            "counts": {"accounts": 4, "groups": 5, "memberships": 7, "grants": 0},
            "units": [
                {"name": "users", "complete": True, "detail": "paged cookie exhausted", "count": 4},
                {
                    "name": "groups",
                    "complete": True,
                    "detail": "paged cookie exhausted",
                    "count": 5,
                },
            ],
        }
    ],
    "files": {
        "accounts.parquet": {"sha256": "a" * 64, "bytes": 1234, "rows": 4},
        "groups.parquet": {"sha256": "b" * 64, "bytes": 2345, "rows": 5},
    },
}

# Exactly what the fixture should show (open findings by severity; accepted ones).
EXPECTED_OPEN = {"critical": 1, "high": 2, "medium": 1, "low": 1, "info": 0}
EXPECTED_ACCEPTED = {"critical": 0, "high": 1, "medium": 0, "low": 0, "info": 0}


def _frame(rows: list[dict[str, Any]], schema: pl.Schema) -> pl.DataFrame:
    filled = [{name: row.get(name) for name in schema.names()} for row in rows]
    return pl.DataFrame(filled, schema=schema, orient="row")


class Frames(TypedDict):
    """The tables of a :class:`~accessaudit.report.context.ReportInput`."""

    accounts: pl.DataFrame
    groups: pl.DataFrame
    findings: pl.DataFrame
    actions: pl.DataFrame
    paths: pl.DataFrame


def frames() -> Frames:
    """accounts, groups, findings, actions and paths as the pipeline passes them."""
    accounts_schema = pl.Schema({**ACCOUNTS_SCHEMA, **ORG_COLUMNS})
    groups_schema = pl.Schema({**GROUPS_SCHEMA, **ORG_COLUMNS})
    findings_schema = pl.Schema({**FINDINGS_SCHEMA, "status": pl.String()})
    return {
        "accounts": _frame(
            [{"source": "ad:alliance.local", **r} for r in ACCOUNTS_ROWS], accounts_schema
        ),
        "groups": _frame(
            [{"source": "ad:alliance.local", "org_conflict": False, **r} for r in GROUPS_ROWS],
            groups_schema,
        ),
        "findings": _frame(FINDINGS_ROWS, findings_schema),
        "actions": _frame(ACTIONS_ROWS, ACTIONS_SCHEMA),
        "paths": pl.DataFrame(
            PATHS_ROWS, schema={"finding_key": pl.String, "path": pl.List(pl.String)}
        ),
    }


def make_context(manifest: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return build_context(
        ReportInput(
            manifest=manifest or MANIFEST,
            rules=RULES,
            title=kw.pop("title", "Separation audit <b>West Mercia / Warwickshire</b>"),
            **{**frames(), **kw},
        )
    )
