"""Fixtures for apply against real servers: the sample (small) seeded into a Samba DC.

The template DC is provisioned and seeded once per session, then copied per test (each test
writes to its own domain controller). A server that cannot start fails with the package to
install, never a skip.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.apply_servers import APPLY_ACCOUNTS, ApplyDC
from support.loopback import without_proxies
from support.servers import ServerUnavailable, load_ad
from support.servers.dataset import Dataset
from support.servers.samba import ADDRESSES, free_address, provision

from accessaudit.graphemu import GraphEmulator, TestPKI
from accessaudit.graphemu import make_pki as make_graph_pki
from accessaudit.loopback_ca import Pki, make_pki
from accessaudit.sample.builder import Sample
from accessaudit.sample.directory import generate


@pytest.fixture(scope="session")
def apply_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(
        tmp_path_factory.mktemp("apply-pki"), ips=ADDRESSES, dns=("dc1.alliance.local",)
    )


@pytest.fixture(scope="session")
def apply_sample() -> Sample:
    return generate(seed=7, accounts=APPLY_ACCOUNTS)


@pytest.fixture(scope="session")
def apply_template(
    tmp_path_factory: pytest.TempPathFactory, apply_pki: Pki, apply_sample: Sample
) -> Iterator[ApplyDC]:
    data = Dataset(
        tables=apply_sample.tables, domain_sid=apply_sample.domain_sid, now=apply_sample.now
    )
    folder = tmp_path_factory.mktemp("samba-apply") / "template"
    try:
        dc = provision(folder, apply_pki, free_address(), domain_sid=data.domain_sid)
    except ServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    dc.start()
    try:
        idmap = load_ad.load(dc, data.tables, data.domain_sid)
        load_ad.add_bind_user(dc, "auditor")
    finally:
        dc.stop()
    yield ApplyDC(dc, apply_sample, idmap)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def apply_dc(apply_template: ApplyDC, tmp_path: Path) -> Iterator[ApplyDC]:
    """A private running copy: every test writes to its own domain controller."""
    dc = apply_template.dc.copy(tmp_path / "dc", free_address())
    dc.start()
    yield ApplyDC(dc, apply_template.sample, apply_template.idmap)
    dc.stop()


# --- Graph emulator -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def graph_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_graph_pki(tmp_path_factory.mktemp("apply-graph-pki"))


@pytest.fixture
def graph_emu(graph_pki: TestPKI, monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphEmulator]:
    without_proxies(monkeypatch)
    emulator = GraphEmulator(graph_pki).start()
    try:
        yield emulator
    finally:
        emulator.stop()
    assert not emulator.errors, emulator.errors[0]
