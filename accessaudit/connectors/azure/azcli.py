"""``az role assignment list --all --include-inherited -o json`` output, read strictly.

The CLI prints a JSON array of flat objects (no ``properties`` wrapper; azure-cli
``role/custom.py``): ``principalId``, ``principalName``, ``principalType``,
``roleDefinitionId``, ``roleDefinitionName`` (null when the role was deleted), ``scope``,
``id``, ``name`` ... With ``--all`` the whole subscription is listed (assignments at resource
groups and resources included); ``--include-inherited`` adds those inherited from management
groups when a scope is given. ``--include-classic-administrators`` rows (``id``
``NA(classic admins)``) have no ``principalId``: their ``principalName`` (a sign-in address) is
the principal.

Every item is decoded on its own, so a bad one is named by the line it starts on
(``file:line``); nothing is skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from accessaudit.connectors.azure.tables import ASSIGNMENT_SCHEMA
from accessaudit.errors import InputFileError

_HINT = "export again with: az role assignment list --all --include-inherited -o json > FILE"


def _items(path: Path, text: str) -> list[tuple[int, Any]]:
    """(line, decoded item) for each element of the top-level array."""
    decoder = json.JSONDecoder()
    pos = len(text) - len(text.lstrip())
    if not text[pos : pos + 1] == "[":
        raise InputFileError(f"{path}:1: not a JSON array (az ... -o json prints one)", _HINT)
    pos += 1
    out: list[tuple[int, Any]] = []
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if text[pos : pos + 1] == "]":
            rest = text[pos + 1 :].strip()
            if rest:
                line = text.count("\n", 0, pos) + 1
                raise InputFileError(f"{path}:{line}: text after the JSON array", _HINT)
            return out
        line = text.count("\n", 0, pos) + 1
        try:
            item, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise InputFileError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg}", _HINT) from None
        out.append((line, item))


def _text(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    return value.strip() or None if isinstance(value, str) else None


def read_az_output(path: Path) -> pl.DataFrame:
    """The assignments of one ``az role assignment list`` JSON file."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InputFileError(f"az role assignment output {path} not found", _HINT) from None
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path}: byte {exc.start} is not valid UTF-8", _HINT) from None
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror}") from None
    rows: list[tuple[str | None, ...]] = []
    for line, item in _items(path, text):
        if not isinstance(item, dict):
            raise InputFileError(f"{path}:{line}: an array element that is not an object", _HINT)
        principal = _text(item, "principalId") or _text(item, "principalName")
        scope = _text(item, "scope")
        role_id = (_text(item, "roleDefinitionId") or "").rsplit("/", 1)[-1] or None
        role_name = _text(item, "roleDefinitionName")
        missing = [
            k
            for k, v in (
                ("principalId", principal),
                ("scope", scope),
                ("roleDefinitionId", role_id),
            )
            if v is None
        ]
        if missing and not (role_name and principal and scope):
            raise InputFileError(
                f"{path}:{line}: role assignment without {', '.join(missing)}", _HINT
            )
        rows.append((principal, _text(item, "principalType"), role_id, role_name, scope))
    return pl.DataFrame(rows, schema=ASSIGNMENT_SCHEMA, orient="row")
