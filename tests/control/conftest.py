"""One seeded Samba DC for the control tests: provisioned and seeded once per session (the small
dataset of the LDAP tests and the audit account), then one running copy per module with the
control cases planted (few DC starts: the copy is cheap, a start about a second)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from support.servers import ServerUnavailable, load_ad
from support.servers.dataset import small
from support.servers.samba import ADDRESSES, free_address, provision
from support.servers.seeded import SeededDC

from accessaudit.loopback_ca import make_pki


@pytest.fixture(scope="session")
def control_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededDC]:
    """A provisioned, seeded and stopped domain controller directory (copied, never run)."""
    data = small()
    pki = make_pki(
        tmp_path_factory.mktemp("control-pki"), ips=ADDRESSES, dns=("dc1.alliance.local",)
    )
    folder = tmp_path_factory.mktemp("control-samba") / "template"
    try:
        dc = provision(folder, pki, free_address(), domain_sid=data.domain_sid)
    except ServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    dc.start()
    try:
        idmap = load_ad.load(dc, data.tables, data.domain_sid)
        load_ad.add_bind_user(dc, "auditor")
    finally:
        dc.stop()
    yield SeededDC(dc, data, idmap, {})
    shutil.rmtree(folder, ignore_errors=True)
