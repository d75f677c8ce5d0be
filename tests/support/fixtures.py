"""Suite-wide fixtures, loaded as a pytest plugin (``-p support.fixtures`` in pyproject).

A plugin rather than a root conftest.py: every test folder has its own ``conftest`` module, and
the fixtures here are also importable by name (``from support.fixtures import NOW``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from accessaudit.config.settings import Settings
from accessaudit.engine.rulefile import Rule, load_rules
from accessaudit.pipeline.analyse import Analysis, analyse
from accessaudit.pipeline.demo import demo_settings
from accessaudit.sample.builder import Sample
from accessaudit.sample.directory import generate
from support import recorder

NOW = datetime(2026, 11, 1, tzinfo=UTC)
TRUTH_KEYS = ["rule_id", "account_id", "group_id", "member_group_id"]


@pytest.fixture(scope="session")
def rules() -> list[Rule]:
    return load_rules()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The demo's settings with its Entra tenant's source too: the tests analyse the sample's
    combined tables, and the tenant's declared host decides its tenant-wide roles."""
    return demo_settings(tmp_path_factory.mktemp("data"), entra=True)


@pytest.fixture(scope="session")
def sample() -> Sample:
    return generate(seed=7, accounts=6000, now=NOW)


@pytest.fixture(scope="session")
def analysis(sample: Sample, settings: Settings, rules: list[Rule]) -> Analysis:
    return analyse(sample.tables, settings, rules, as_of=NOW)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


# Test modules that write to a directory on purpose: the guarded apply and its journal.
WRITERS = ("test_apply_",)
CALLS = Path(tempfile.gettempdir()) / f"accessaudit-calls-{os.getpid()}.jsonl"


@pytest.fixture(scope="module", autouse=True)
def read_only_calls(request: pytest.FixtureRequest) -> Iterator[Path]:
    """Read mode never writes, across the whole suite: every LDAP operation and HTTP request
    the package makes in this process is recorded (support.recorder), and a module that made a
    modify / add / delete / modify-DN or a non-GET Graph call fails. Only the apply tests are
    exempt from that; every module, the apply tests included, fails on a call to a host that is
    not loopback. (tests/hardening overrides this fixture to record its subprocesses too.)"""
    if request.path.name.startswith(WRITERS):
        with recorder.loopback_only(CALLS, request.path.name) as path:
            yield path
        return
    with recorder.read_only(CALLS, request.path.name) as path:
        yield path
