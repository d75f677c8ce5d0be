"""The rule authors' reference of the views, generated from the code: ``docs/rule-views.md``.

Each view's purpose and column notes come from :data:`accessaudit.engine.views.catalog.VIEWS`;
its columns and their polars types from the views themselves, built over empty attributed
tables. Regenerate the document with::

    python -m accessaudit.engine.viewdoc > docs/rule-views.md

(a test fails while the document differs from what the code generates).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import polars as pl

from accessaudit.engine.views import build_views
from accessaudit.engine.views.catalog import INTRO, VIEWS, ViewDoc
from accessaudit.model import (
    ACCOUNTS_SCHEMA,
    EFFECTIVE_SCHEMA,
    GRANTS_SCHEMA,
    GROUP_CLOSURE_SCHEMA,
    GROUPS_SCHEMA,
    MEMBERSHIPS_SCHEMA,
    ORG_COLUMNS,
)

COMMAND = "python -m accessaudit.engine.viewdoc > docs/rule-views.md"


def view_schemas() -> dict[str, pl.Schema]:
    """Every view's columns and types, by view name, as a run builds them."""
    views = build_views(
        pl.DataFrame(schema={**ACCOUNTS_SCHEMA, **ORG_COLUMNS}),
        pl.DataFrame(schema={**GROUPS_SCHEMA, **ORG_COLUMNS}),
        pl.DataFrame(schema=MEMBERSHIPS_SCHEMA),
        pl.DataFrame(schema=GRANTS_SCHEMA),
        closure=pl.DataFrame(schema=GROUP_CLOSURE_SCHEMA),
        effective=pl.DataFrame(schema=EFFECTIVE_SCHEMA),
        as_of=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return {name: lf.collect_schema() for name, lf in views.items()}


def _dtype(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return f"Datetime({dtype.time_zone or 'naive'})"
    return str(dtype)


def _section(view: ViewDoc, schema: pl.Schema) -> list[str]:
    unknown = sorted(set(view.columns) - set(schema.names()))
    if unknown:
        raise ValueError(f"view {view.name!r} has no column {unknown[0]!r} (catalog note)")
    lines = [f"## `{view.name}`", "", view.purpose]
    if view.row:
        lines += ["", view.row]
    lines += ["", "| column | type | meaning |", "| --- | --- | --- |"]
    lines += [
        f"| `{col}` | {_dtype(dtype)} | {view.columns.get(col, '')} |"
        for col, dtype in schema.items()
    ]
    return [*lines, ""]


def render_markdown() -> str:
    """``docs/rule-views.md``: every view a rule query sees, with its columns and their types."""
    schemas = view_schemas()
    documented = [v.name for v in VIEWS]
    if documented != list(schemas):
        raise ValueError(f"catalog views {documented} differ from build_views {list(schemas)}")
    lines = [
        "# Views for rule queries",
        "",
        f"<!-- Generated from accessaudit/engine/views; do not edit. Regenerate: {COMMAND} -->",
        "",
        INTRO,
        "",
        "Views: " + ", ".join(f"[`{v.name}`](#{v.name})" for v in VIEWS) + ".",
        "",
    ]
    for view in VIEWS:
        lines += _section(view, schemas[view.name])
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
