"""Whether a directory records logons: Active Directory always (lastLogonTimestamp); generic
LDAP only through a ``last_logon`` attribute in its mapping. Without it dormancy is unknown."""

from __future__ import annotations

import pytest
from support.servers.seeded import SeededDC, SeededSlapd

from accessaudit.connectors.ldap.collect import collect
from accessaudit.model import LAST_LOGON

pytestmark = pytest.mark.servers


def test_ad_records_logons(samba: SeededDC, monkeypatch: pytest.MonkeyPatch) -> None:
    got = collect(samba.source(monkeypatch), now=samba.dataset.now)

    accounts = got.table("accounts")
    assert set(accounts["activity_tracked"]) == {True}
    signal = got.signals[LAST_LOGON]
    assert signal.recorded
    assert signal.detail == "lastLogonTimestamp (replicated every 9-14 days)"


def test_openldap_without_a_last_logon_attribute_records_none(
    slapd: SeededSlapd, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = collect(slapd.source(monkeypatch))

    assert got.complete  # unknown dormancy is no incomplete collection
    accounts = got.table("accounts")
    assert set(accounts["activity_tracked"]) == {False}
    assert accounts["last_logon"].null_count() == accounts.height
    signal = got.signals[LAST_LOGON]
    assert not signal.recorded
    assert signal.detail == "no last_logon attribute in attribute_map"


def test_openldap_with_a_mapped_last_logon_attribute(
    slapd: SeededSlapd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mapped attribute is read as a GeneralizedTime (slapd keeps modifyTimestamp on every
    entry; a site maps authTimestamp of the lastbind overlay)."""
    amap = {"kind": "employeeType", "last_logon": "modifyTimestamp"}
    got = collect(slapd.source(monkeypatch, attribute_map=amap))

    accounts = got.table("accounts")
    assert set(accounts["activity_tracked"]) == {True}
    assert accounts["last_logon"].null_count() == 0
    assert accounts.select((accounts["last_logon"] >= accounts["created"]).all()).item()
    signal = got.signals[LAST_LOGON]
    assert signal.recorded
    assert signal.detail == "attribute modifyTimestamp (attribute_map last_logon)"
