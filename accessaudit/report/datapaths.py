"""The report's data-paths section: who reaches the other force's folders and shares, mailboxes
and Azure scopes, each with the force that owns it, and the entries to remove. Pure: the
findings' and actions' rows of the report (:mod:`accessaudit.report.rows`), kept to the data
rules and actions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from accessaudit.model import ActionKind
from accessaudit.report.control import rule_section
from accessaudit.report.objects import Objects

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


def data_section(
    f_rows: Sequence[Sequence[Any]],
    a_rows: Sequence[Sequence[Any]],
    objs: Objects,
    docs: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """Counts per data rule, the open data findings worst first (they are sorted so), and the
    removals with their commands."""
    return rule_section(f_rows, a_rows, objs, docs, DATA_RULES, DATA_ACTIONS)
