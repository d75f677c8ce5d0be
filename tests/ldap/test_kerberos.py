"""Kerberos (SASL GSSAPI) against the Samba domain controller's own KDC, with the real gssapi.

The bind account gets its ticket from the DC's KDC (a ticket cache, or its keytab); the
connector binds with GSSAPI over LDAPS and collects. ldap3's GSSAPI has no SASL security layer
(integrity/confidentiality come from TLS), which Active Directory accepts over LDAPS; Samba does
when ``ldap server require strong auth = allow_sasl_over_tls`` and otherwise refuses with
"Sign or Seal are required", which the connector turns into one line saying so.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.servers import kerberos
from support.servers.compare import assert_matches
from support.servers.load_ad import BIND_PASSWORD
from support.servers.seeded import SeededDC, running_copy

from accessaudit.config.sources import LdapSource
from accessaudit.connectors.ldap.collect import collect
from accessaudit.errors import AuthError

pytestmark = pytest.mark.servers


@dataclass
class KerberosDC:
    seeded: SeededDC
    folder: Path

    def source(self, monkeypatch: pytest.MonkeyPatch, ccache: str) -> LdapSource:
        monkeypatch.setenv("KRB5_CONFIG", str(self.folder / "krb5.conf"))
        monkeypatch.setenv("KRB5CCNAME", f"FILE:{self.folder / ccache}")
        monkeypatch.delenv("KRB5_CLIENT_KTNAME", raising=False)
        return self.seeded.source(monkeypatch, auth="kerberos", bind_dn=None, password_env=None)


@pytest.fixture
def kerberos_dc(
    samba_template: SeededDC, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[KerberosDC]:
    if importlib.util.find_spec("gssapi") is None:
        pytest.fail(
            "Kerberos tests need the Python gssapi package: pip install gssapi (building it"
            " needs the Debian package libkrb5-dev and a C compiler)",
            pytrace=False,
        )
    seeded = running_copy(samba_template, tmp_path / "dc")
    try:
        seeded.dc.stop()
        seeded.dc.set_global("ldap server require strong auth", "allow_sasl_over_tls")
        seeded.dc.start()
        kerberos.add_ldap_spn(seeded.dc)
        kerberos.write_krb5_conf(seeded.dc, tmp_path)
        monkeypatch.setenv("KRB5_CONFIG", str(tmp_path / "krb5.conf"))
        kerberos.get_ticket("auditor", BIND_PASSWORD, tmp_path / "tickets")
        yield KerberosDC(seeded, tmp_path)
    finally:
        seeded.dc.stop()


def test_ticket_cache_bind_collects_everything(
    kerberos_dc: KerberosDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = collect(kerberos_dc.source(monkeypatch, "tickets"), now=kerberos_dc.seeded.dataset.now)
    assert got.complete, got.units
    tables = {n: got.table(n) for n in ("accounts", "groups", "memberships", "grants")}
    assert_matches(tables, kerberos_dc.seeded.expected)


def test_keytab_bind(kerberos_dc: KerberosDC, monkeypatch: pytest.MonkeyPatch) -> None:
    keytab = kerberos_dc.folder / "auditor.keytab"
    kerberos.export_keytab(kerberos_dc.seeded.dc, "auditor", keytab)
    cfg = kerberos_dc.source(monkeypatch, "empty-cache")  # no ticket: the keytab gets one
    monkeypatch.setenv("KRB5_CLIENT_KTNAME", f"FILE:{keytab}")
    assert collect(cfg).complete


def test_no_ticket_is_one_line(kerberos_dc: KerberosDC, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AuthError) as err:
        collect(kerberos_dc.source(monkeypatch, "empty-cache"))
    message = str(err.value)
    assert "\n" not in message
    assert err.value.message.startswith(
        f"{kerberos_dc.seeded.dc.ldaps_url}: Kerberos (GSSAPI) bind failed: "
        "No Kerberos credentials available"
    )
    assert "kinit" in err.value.hint and "KRB5_CLIENT_KTNAME" in err.value.hint


def test_server_wanting_sign_or_seal_is_one_line(
    kerberos_dc: KerberosDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    dc = kerberos_dc.seeded.dc
    dc.stop()
    dc.set_global("ldap server require strong auth", "yes")  # Samba's default
    dc.start()
    with pytest.raises(AuthError) as err:
        collect(kerberos_dc.source(monkeypatch, "tickets"))
    assert err.value.message == (
        f"{dc.ldaps_url}: Kerberos bind refused: the server wants SASL signing or sealing even"
        " over TLS (result 8 strongerAuthRequired)"  # the server's own text is never quoted
    )
    assert "allow_sasl_over_tls" in err.value.hint
