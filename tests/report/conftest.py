"""Fixtures for the report tests (data in report_sample.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if importlib.util.find_spec("accessaudit") is None:  # a checkout that is not pip-installed
    sys.path.insert(0, str(ROOT))

from report_sample import make_context  # noqa: E402


@pytest.fixture
def context() -> dict[str, Any]:
    return make_context()


@pytest.fixture
def artifacts_dir() -> Path:
    path = ROOT / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
