"""Shared fixtures (loaded as a plugin by pyproject: `-p accessaudit_fixtures`).

Not a conftest.py: several test folders import names from their own `conftest` module, and a
root conftest would shadow them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from accessaudit.config import Settings
from accessaudit.engine.rulefile import Rule, load_rules
from accessaudit.pipeline import Analysis, analyse, demo_settings
from accessaudit.sample import Sample, generate

NOW = datetime(2026, 11, 1, tzinfo=UTC)
TRUTH_KEYS = ["rule_id", "account_id", "group_id", "member_group_id"]


@pytest.fixture(scope="session")
def rules() -> list[Rule]:
    return load_rules()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return demo_settings(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def sample() -> Sample:
    return generate(seed=7, accounts=6000, now=NOW)


@pytest.fixture(scope="session")
def analysis(sample: Sample, settings: Settings, rules: list[Rule]) -> Analysis:
    return analyse(sample.tables, settings, rules, as_of=NOW)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
