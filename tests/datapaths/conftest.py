"""Fixtures of the data-path tests: one standalone Samba file server per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.servers.smbd import Smbd


@pytest.fixture(scope="session")
def smbd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Smbd]:
    server = Smbd(tmp_path_factory.mktemp("smbd"), shares=("data", "empty")).start()
    try:
        yield server
    finally:
        server.stop()
