"""The rule authors' reference of the views (docs/rule-views.md) is generated from the code."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from accessaudit.engine import viewdoc
from accessaudit.engine.rulefile import Example
from accessaudit.engine.views import catalog
from accessaudit.pipeline.rulecheck import example_tables, views_of

DOC = Path(__file__).resolve().parents[2] / "docs" / "rule-views.md"


def test_rule_views_doc_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == viewdoc.render_markdown(), (
        f"docs/rule-views.md differs from the views' code: regenerate it with {viewdoc.COMMAND}"
    )


def test_documented_types_are_those_rules_see() -> None:
    as_of = datetime(2026, 1, 1, tzinfo=UTC)
    tables = example_tables(Example("empty", [], [], [], [], [], {}), as_of)
    seen = {name: dict(lf.collect_schema()) for name, lf in views_of(tables, as_of).items()}
    assert seen == {name: dict(schema) for name, schema in viewdoc.view_schemas().items()}


def test_every_view_is_documented_with_a_purpose() -> None:
    assert [v.name for v in catalog.VIEWS] == list(viewdoc.view_schemas())
    assert all(v.purpose for v in catalog.VIEWS)


def test_a_note_on_a_missing_column_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    first = catalog.VIEWS[0]
    stale = replace(first, columns={**first.columns, "no_such_column": "gone"})
    monkeypatch.setattr(viewdoc, "VIEWS", (stale, *catalog.VIEWS[1:]))
    with pytest.raises(ValueError, match="no_such_column"):
        viewdoc.render_markdown()
