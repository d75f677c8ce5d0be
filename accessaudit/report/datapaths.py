"""The report's data-paths section: who reaches the other force's folders and shares, mailboxes
and Azure scopes, each with the force that owns it, and the entries to remove. Pure: the
findings' and actions' rows of the report (:mod:`accessaudit.report.rows`), kept to the data
rules and actions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

from accessaudit.model import ActionKind
from accessaudit.report.objects import Objects
from accessaudit.report.rows import A, F, action_view, finding_view

#: The rules of data paths (rules/: tags = ["data"]), worst first.
DATA_RULES: Final = (
    "cross-org-share-access",
    "cross-org-mailbox-access",
    "cross-org-azure-role",
    "cross-org-share-read",
    "cross-org-mailbox-read",
    "cross-org-azure-reader",
)
DATA_ACTIONS: Final = (
    ActionKind.REMOVE_FOLDER_ACE.value,
    ActionKind.REMOVE_MAILBOX_PERMISSION.value,
    ActionKind.REMOVE_AZURE_ROLE_ASSIGNMENT.value,
)
#: rows shown in the page (every one is in the exports)
SHOWN: Final = 50


def data_section(
    f_rows: Sequence[Sequence[Any]],
    a_rows: Sequence[Sequence[Any]],
    objs: Objects,
    docs: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """Counts per data rule, the open data findings worst first (they are sorted so), and the
    removals with their commands."""
    findings = [f for f in f_rows if f[F["rule_id"]] in DATA_RULES]
    open_rows = [f for f in findings if f[F["status"]] == "open"]
    counts = Counter(f[F["rule_id"]] for f in open_rows)
    actions = [a for a in a_rows if a[A["kind"]] in DATA_ACTIONS]
    return {
        "total": len(findings),
        "open": len(open_rows),
        "by_rule": [
            {"rule_id": r, "title": docs[r]["title"] if r in docs else r, "open": counts[r]}
            for r in DATA_RULES
            if r in docs
        ],
        "rows": [finding_view(f, objs, docs) for f in open_rows[:SHOWN]],
        "actions_total": len(actions),
        "actions": [action_view(a, objs, False) for a in actions[:SHOWN]],
    }
