"""The report's control section: who controls the other force's AD objects (delegated rights,
owners, DCSync), and the entries to remove. Pure: the findings' and actions' rows of the report
(:mod:`accessaudit.report.rows`), kept to the control rules and actions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

from accessaudit.model import ActionKind
from accessaudit.report.objects import Objects
from accessaudit.report.rows import A, F, action_view, finding_view

#: The rules of control paths (rules/: tags = ["control"]).
CONTROL_RULES: Final = (
    "dcsync-outside-admins",
    "cross-org-control-container",
    "cross-org-control-account",
    "cross-org-control-group",
    "cross-org-control-gpo",
    "cross-org-object-owner",
)
CONTROL_ACTIONS: Final = (ActionKind.REMOVE_ACE.value, ActionKind.CHANGE_OWNER.value)
#: rows shown in the page (every one is in the exports)
SHOWN: Final = 50


def control_section(
    f_rows: Sequence[Sequence[Any]],
    a_rows: Sequence[Sequence[Any]],
    objs: Objects,
    docs: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """Counts per control rule, the open control findings worst first (they are sorted so),
    and the remove-ace / change-owner actions with their commands."""
    return rule_section(f_rows, a_rows, objs, docs, CONTROL_RULES, CONTROL_ACTIONS)


def rule_section(
    f_rows: Sequence[Sequence[Any]],
    a_rows: Sequence[Sequence[Any]],
    objs: Objects,
    docs: Mapping[str, Mapping[str, Any]],
    rules: Sequence[str],
    kinds: Sequence[str],
) -> dict[str, Any]:
    """A report section of a family of rules (control, data paths): counts per rule, its open
    findings worst first (they are sorted so), and its actions of ``kinds`` with their
    commands, each list cut at :data:`SHOWN` (every row is in the exports)."""
    findings = [f for f in f_rows if f[F["rule_id"]] in rules]
    open_rows = [f for f in findings if f[F["status"]] == "open"]
    counts = Counter(f[F["rule_id"]] for f in open_rows)
    actions = [a for a in a_rows if a[A["kind"]] in kinds]
    return {
        "total": len(findings),
        "open": len(open_rows),
        "by_rule": [
            {"rule_id": r, "title": docs[r]["title"] if r in docs else r, "open": counts[r]}
            for r in rules
            if r in docs
        ],
        "rows": [finding_view(f, objs, docs) for f in open_rows[:SHOWN]],
        "actions_total": len(actions),
        "actions": [action_view(a, objs, False) for a in actions[:SHOWN]],
    }
