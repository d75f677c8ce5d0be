"""Real servers for the LDAP connector tests: one seeded Samba DC and slapd per session.

Seeding happens once (a Samba domain is provisioned, seeded, stopped and kept as a template);
read-only tests share one running copy, tests that stop or change a server get their own copy
(``cp -a`` of the template, started on another loopback address in well under a second).
A server that cannot start fails the test with the Debian package to install; never a skip.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.servers import (
    ServerUnavailable,
    load_ad,
    load_openldap,
)
from support.servers.dataset import Dataset, small
from support.servers.samba import ADDRESSES, free_address, provision
from support.servers.seeded import SampleSeeded, SeededDC, SeededSlapd, running_copy
from support.servers.slapd import Slapd

from accessaudit.loopback_ca import Pki, make_pki
from accessaudit.sample.builder import Sample


def _fail_unavailable(exc: ServerUnavailable) -> None:
    pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), ips=ADDRESSES, dns=("dc1.alliance.local",))


@pytest.fixture(scope="session")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A second, unrelated CA: trusting it must not make the servers' certificates valid."""
    return make_pki(tmp_path_factory.mktemp("other-pki"), ca_name="some other CA")


@pytest.fixture(scope="session")
def samba_template(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[SeededDC]:
    """A provisioned, seeded and stopped domain controller directory (copied, never run)."""
    data = small()
    folder = tmp_path_factory.mktemp("samba") / "template"
    try:
        dc = provision(folder, pki, free_address(), domain_sid=data.domain_sid)
    except ServerUnavailable as exc:
        _fail_unavailable(exc)
        raise
    dc.start()
    try:
        idmap = load_ad.load(dc, data.tables, data.domain_sid)
        load_ad.add_bind_user(dc, "auditor")
        load_ad.add_bind_user(dc, "auditor-off", disabled=True)
    finally:
        dc.stop()
    expected = idmap.translate(load_ad.expected(data.tables))
    yield SeededDC(dc, data, idmap, expected)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def samba(samba_template: SeededDC, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededDC]:
    """A running copy of the seeded domain shared by read-only tests."""
    seeded = running_copy(samba_template, tmp_path_factory.mktemp("samba-ro") / "dc")
    yield seeded
    seeded.dc.stop()


@pytest.fixture
def fresh_samba(samba_template: SeededDC, tmp_path: Path) -> Iterator[SeededDC]:
    """A private running copy for a test that stops or changes the server."""
    seeded = running_copy(samba_template, tmp_path / "dc")
    yield seeded
    seeded.dc.stop()


def _slapd(folder: Path, pki: Pki, data: Dataset, paged_unlimited: bool = True) -> SeededSlapd:
    server = Slapd(folder, pki, paged_unlimited=paged_unlimited)
    try:
        server.start()
    except ServerUnavailable as exc:
        _fail_unavailable(exc)
        raise
    try:
        idmap = load_openldap.load(server, data.tables)
    except BaseException:
        server.stop()
        raise
    return SeededSlapd(server, idmap, idmap.translate(load_openldap.expected(data.tables)))


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[SeededSlapd]:
    seeded = _slapd(tmp_path_factory.mktemp("slapd"), pki, small())
    yield seeded
    seeded.server.stop()


@pytest.fixture
def slapd_capped(tmp_path: Path, pki: Pki) -> Iterator[SeededSlapd]:
    """slapd whose size limit also caps paged searches (OpenLDAP's default behaviour)."""
    seeded = _slapd(tmp_path / "slapd", pki, small(), paged_unlimited=False)
    yield seeded
    seeded.server.stop()


#: The embedded sample as seeded into the servers: seed 7 as everywhere, and the smallest round
#: size at which a group (WMP-ALL-Staff, 1,557 members) exceeds AD's MaxValRange of 1,500, so
#: range retrieval is exercised on real data (at 1,500 accounts the largest list has 979).
SAMPLE_SEED = 7
SAMPLE_ACCOUNTS = 2400


@pytest.fixture(scope="session")
def ldap_sample() -> Sample:
    from accessaudit.sample.directory import generate

    return generate(seed=SAMPLE_SEED, accounts=SAMPLE_ACCOUNTS)


@pytest.fixture(scope="session")
def sample_template(
    tmp_path_factory: pytest.TempPathFactory, pki: Pki, ldap_sample: Sample
) -> Iterator[SeededDC]:
    """The sample seeded into a domain controller directory, stopped (copied, never run)."""
    data = Dataset(
        tables=ldap_sample.tables, domain_sid=ldap_sample.domain_sid, now=ldap_sample.now
    )
    folder = tmp_path_factory.mktemp("samba-sample") / "template"
    try:
        dc = provision(folder, pki, free_address(), domain_sid=data.domain_sid)
    except ServerUnavailable as exc:
        _fail_unavailable(exc)
        raise
    dc.start()
    try:
        idmap = load_ad.load(dc, data.tables, data.domain_sid)
        load_ad.add_bind_user(dc, "auditor")
    finally:
        dc.stop()
    yield SeededDC(dc, data, idmap, idmap.translate(load_ad.expected(data.tables)))
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def sample_servers(
    tmp_path_factory: pytest.TempPathFactory,
    pki: Pki,
    ldap_sample: Sample,
    sample_template: SeededDC,
) -> Iterator[SampleSeeded]:
    """The sample in a running Samba DC (a copy of the template) and in slapd, read-only."""
    ad = running_copy(sample_template, tmp_path_factory.mktemp("samba-sample-ro") / "dc")
    try:
        ldap = _slapd(tmp_path_factory.mktemp("slapd-sample"), pki, sample_template.dataset)
    except BaseException:
        ad.dc.stop()
        raise
    yield SampleSeeded(ad, ldap, ldap_sample)
    ad.dc.stop()
    ldap.server.stop()


@pytest.fixture
def fresh_sample_dc(sample_template: SeededDC, tmp_path: Path) -> Iterator[SeededDC]:
    """A private running copy of the sample's domain controller (for tests that stop it)."""
    seeded = running_copy(sample_template, tmp_path / "dc")
    yield seeded
    seeded.dc.stop()
