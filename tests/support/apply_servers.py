"""The seeded Samba DC the apply tests write to, and its audit / write sources."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from accessaudit.config.sources import LdapSource
from accessaudit.sample.builder import Sample
from support.servers import load_ad
from support.servers.ids import IdMap
from support.servers.samba import ADMIN_PASSWORD, SambaDC

READ_ENV = "ACCESSAUDIT_TEST_APPLY_READ"
WRITE_ENV = "ACCESSAUDIT_TEST_APPLY_WRITE"
APPLY_ACCOUNTS = 300


@dataclass
class ApplyDC:
    dc: SambaDC
    sample: Sample
    idmap: IdMap

    def source(self, monkeypatch: pytest.MonkeyPatch, *, write: bool = False) -> LdapSource:
        """The audit (read) source, or the same server with the separate write credential."""
        monkeypatch.setenv(READ_ENV, load_ad.BIND_PASSWORD)
        monkeypatch.setenv(WRITE_ENV, ADMIN_PASSWORD)
        return LdapSource.model_validate(
            {
                "kind": "ldap",
                "name": "alliance",
                "servers": [self.dc.ldaps_url],
                "base_dn": "DC=alliance,DC=local",
                "bind_dn": "Administrator@alliance.local" if write else "auditor@alliance.local",
                "password_env": WRITE_ENV if write else READ_ENV,
                "ca_file": self.dc.pki.ca_file,
                "connect_timeout": 5,
                "receive_timeout": 30,
            }
        )
