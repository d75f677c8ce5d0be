"""Secrets by reference: the client secret and an encrypted key's passphrase come from an
environment variable, a file or a keyring entry (never inline), against the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from cryptography.hazmat.primitives import serialization
from keyring.backends import fail
from support.entra_data import CLIENT_ID, ROLES, SECRET, TENANT
from support.memory_keyring import MemoryKeyring, installed

from accessaudit.config.settings import load_settings
from accessaudit.config.sources import EntraSource
from accessaudit.connectors.entra.collect import collect
from accessaudit.errors import ConfigError
from accessaudit.graphemu import AppCertificate

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    with installed() as ring:
        yield ring


@pytest.fixture
def encrypted_cert(emu, tenant, app_cert: AppCertificate, tmp_path: Path) -> Path:
    """The app certificate with its key encrypted under :data:`PASSPHRASE` (registered)."""
    emu.register_app(TENANT, CLIENT_ID, certificate=app_cert, roles=ROLES)
    key = serialization.load_pem_private_key(app_cert.key_pem, password=None)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    )
    path = tmp_path / "app-encrypted.pem"
    path.write_bytes(pem + app_cert.cert_pem)
    path.chmod(0o600)
    return path


def test_client_secret_from_keyring(make_cfg, tenant, memory_keyring: MemoryKeyring) -> None:
    keyring.set_password("accessaudit-test", "audit-app", SECRET)

    result = collect(
        make_cfg(client_secret_file=None, client_secret_keyring="accessaudit-test:audit-app")
    )

    assert result.complete
    assert memory_keyring.entries == {("accessaudit-test", "audit-app"): SECRET}


def test_client_secret_keyring_entry_missing(make_cfg, tenant, memory_keyring) -> None:
    with pytest.raises(ConfigError) as err:
        collect(make_cfg(client_secret_file=None, client_secret_keyring="accessaudit-test:none"))

    assert err.value.message == "keyring entry accessaudit-test:none not found"
    assert err.value.hint == "store it with: keyring set accessaudit-test none"


def test_keyring_unavailable_names_the_entra_alternatives(make_cfg, tenant) -> None:
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # what a scheduler without a session bus gets
    try:
        with pytest.raises(ConfigError) as err:
            collect(make_cfg(client_secret_file=None, client_secret_keyring="svc:app"))
    finally:
        keyring.set_keyring(before)

    assert err.value.message.startswith("keyring entry svc:app unavailable: ")
    assert err.value.hint == "under a scheduler use client_secret_env or client_secret_file instead"


def test_encrypted_key_with_passphrase_from_file(make_cfg, encrypted_cert, tmp_path) -> None:
    passphrase = tmp_path / "passphrase"
    passphrase.write_text(PASSPHRASE + "\n")
    passphrase.chmod(0o600)

    result = collect(
        make_cfg(
            client_secret_file=None,
            certificate_file=encrypted_cert,
            certificate_passphrase_file=passphrase,
        )
    )

    assert result.complete


def test_encrypted_key_with_passphrase_from_keyring(
    make_cfg, encrypted_cert, memory_keyring
) -> None:
    memory_keyring.set_password("accessaudit-test", "app-key", PASSPHRASE)

    result = collect(
        make_cfg(
            client_secret_file=None,
            certificate_file=encrypted_cert,
            certificate_passphrase_keyring="accessaudit-test:app-key",
        )
    )

    assert result.complete


def test_encrypted_key_without_or_with_a_wrong_passphrase(
    make_cfg, encrypted_cert, tmp_path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not it")
    for extra in ({}, {"certificate_passphrase_file": wrong}):
        with pytest.raises(ConfigError) as err:
            collect(make_cfg(client_secret_file=None, certificate_file=encrypted_cert, **extra))

        assert err.value.message.startswith(f"cannot load the private key in {encrypted_cert}: ")
        assert err.value.hint == (
            "if the key is encrypted, give its passphrase by reference: "
            "certificate_passphrase_env / _file / _keyring"
        )
        assert PASSPHRASE not in str(err.value) + err.value.hint


def test_passphrase_references_in_the_config_file(tmp_path: Path) -> None:
    """A relative passphrase file is relative to the config file, like the other files."""
    base = """\
[[organisations]]
id = "wmp"
name = "West Mercia Police"

[[organisations]]
id = "warks"
name = "Warwickshire Police"

[[sources]]
kind = "entra"
name = "tenant"
host = "wmp"
tenant_id = "t"
client_id = "c"
certificate_file = "app.pem"
"""
    path = tmp_path / "config.toml"
    path.write_text(base + 'certificate_passphrase_file = "secrets/app.pass"\n')
    [source] = load_settings(path).sources
    assert isinstance(source, EntraSource)
    ref = source.certificate_passphrase
    assert ref is not None and ref.file == tmp_path / "secrets" / "app.pass"
    assert ref.describe() == f"file {tmp_path / 'secrets' / 'app.pass'}"

    path.write_text(base + 'certificate_passphrase_keyring = "accessaudit:app-key"\n')
    [source] = load_settings(path).sources
    assert isinstance(source, EntraSource) and source.certificate_passphrase is not None
    assert source.certificate_passphrase.describe() == "keyring entry accessaudit:app-key"
