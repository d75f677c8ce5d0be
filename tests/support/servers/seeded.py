"""Seeded real servers as the LDAP fixtures (``tests/ldap/conftest.py``) hand them to tests.

Each holds the running server, the map from dataset ids to the ids the server assigned and the
expected tables in the server's ids, and builds the
:class:`~accessaudit.config.sources.LdapSource` that reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from accessaudit.config.sources import LdapSource
from accessaudit.loopback_ca import Pki
from accessaudit.sample.builder import Sample
from support.servers import load_ad
from support.servers.dataset import Dataset
from support.servers.ids import IdMap
from support.servers.samba import SambaDC, free_address
from support.servers.slapd import Slapd

PASSWORD_ENV = "ACCESSAUDIT_TEST_LDAP_PASSWORD"


@dataclass
class SeededDC:
    dc: SambaDC
    dataset: Dataset
    idmap: IdMap
    expected: dict[str, pl.DataFrame]

    def source(self, monkeypatch: pytest.MonkeyPatch, **overrides: object) -> LdapSource:
        monkeypatch.setenv(PASSWORD_ENV, load_ad.BIND_PASSWORD)
        settings: dict[str, object] = {
            "kind": "ldap",
            "name": "alliance",
            "servers": [self.dc.ldaps_url],
            "base_dn": "DC=alliance,DC=local",
            "bind_dn": "auditor@alliance.local",
            "password_env": PASSWORD_ENV,
            "ca_file": self.dc.pki.ca_file,
            "connect_timeout": 5,
            "receive_timeout": 30,
        }
        settings.update(overrides)
        return LdapSource.model_validate(settings)


@dataclass
class SeededSlapd:
    server: Slapd
    idmap: IdMap
    expected: dict[str, pl.DataFrame]

    def source(self, monkeypatch: pytest.MonkeyPatch, **overrides: object) -> LdapSource:
        monkeypatch.setenv(PASSWORD_ENV, "Sl4pd-Auditor-Test")
        settings: dict[str, object] = {
            "kind": "ldap",
            "name": "openldap",
            "flavour": "openldap",
            "servers": [self.server.ldaps_url],
            "base_dn": "dc=alliance,dc=local",
            "bind_dn": "cn=auditor,dc=alliance,dc=local",
            "password_env": PASSWORD_ENV,
            "ca_file": self.server.pki.ca_file,
            "attribute_map": {"kind": "employeeType"},
            "connect_timeout": 5,
            "receive_timeout": 30,
        }
        settings.update(overrides)
        return LdapSource.model_validate(settings)


def running_copy(template: SeededDC, folder: Path, pki: Pki | None = None) -> SeededDC:
    """Start a copy of the seeded template (optionally presenting another certificate)."""
    dc = template.dc.copy(folder, free_address(), pki)
    dc.start()
    return SeededDC(dc, template.dataset, template.idmap, template.expected)


@dataclass
class SampleSeeded:
    ad: SeededDC
    ldap: SeededSlapd
    sample: Sample
