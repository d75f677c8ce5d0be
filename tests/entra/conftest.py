"""Fixtures for the Entra connector tests: a Graph emulator on loopback, per test.

The PKI (CA, server certificate, app certificate) is made once per session; each test gets its
own emulator (a fresh port, tenants, apps, fault switches and request log). Only 127.0.0.1 is
ever contacted: proxies from the environment are bypassed for loopback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from support.entra_data import CLIENT_ID, ROLES, SECRET, TENANT, small
from support.loopback import without_proxies

from accessaudit.config.sources import EntraSource
from accessaudit.graphemu import (
    AppCertificate,
    GraphEmulator,
    Tenant,
    TestPKI,
    make_app_certificate,
    make_pki,
    tenant_from_sample,
)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def app_cert(tmp_path_factory: pytest.TempPathFactory) -> AppCertificate:
    return make_app_certificate(tmp_path_factory.mktemp("appcert"), "accessaudit-app")


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    without_proxies(monkeypatch)


@pytest.fixture
def emu(pki: TestPKI) -> Iterator[GraphEmulator]:
    emulator = GraphEmulator(pki).start()
    try:
        yield emulator
    finally:
        emulator.stop()
    assert not emulator.errors, emulator.errors[0]


@pytest.fixture(scope="session")
def small_tables() -> dict[str, pl.DataFrame]:
    return small()


@pytest.fixture
def tenant(emu: GraphEmulator, small_tables: dict[str, pl.DataFrame]) -> Tenant:
    t = emu.add_tenant(tenant_from_sample(small_tables, tenant_id=TENANT))
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=ROLES)
    return t


@pytest.fixture
def make_cfg(emu: GraphEmulator, pki: TestPKI, tmp_path: Path) -> Callable[..., EntraSource]:
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)

    def make(**over: Any) -> EntraSource:
        settings: dict[str, Any] = {
            "name": "entra",
            "kind": "entra",
            "tenant_id": TENANT,
            "client_id": CLIENT_ID,
            "authority_host": emu.base_url,
            "graph_url": emu.graph_url,
            "client_secret_file": secret_file,
            "ca_file": pki.ca_file,
            "sign_in_activity": True,
            "retry_backoff": 0.02,
            "time_budget": 30.0,
            "timeout": 10.0,
        }
        settings.update(over)
        return EntraSource(**{k: v for k, v in settings.items() if v is not None})

    return make


@pytest.fixture
def cfg(make_cfg: Callable[..., EntraSource], tenant: Tenant) -> EntraSource:
    return make_cfg()
