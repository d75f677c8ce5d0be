"""Fixtures for the report tests (data in :mod:`support.report_sample`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.report_sample import make_context

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def context() -> dict[str, Any]:
    return make_context()


@pytest.fixture
def artifacts_dir() -> Path:
    path = ROOT / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
