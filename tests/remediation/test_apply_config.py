"""[apply]: every key documented; the write credential must not be the audit one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from accessaudit.config.settings import ApplySettings, Settings, load_settings
from accessaudit.config.sources import EntraSource, LdapSource
from accessaudit.errors import ConfigError
from accessaudit.remediation.apply.open import write_entra_source, write_ldap_source

ROOT = Path(__file__).resolve().parents[2]


def test_every_apply_key_is_documented() -> None:
    text = (ROOT / "config.example.toml").read_text()
    assert "[apply]" in text
    missing = [
        n for n in ApplySettings.model_fields if not re.search(rf"^\s*#?\s*{n}\s*=", text, re.M)
    ]
    assert missing == []


def _settings(**apply: object) -> Settings:
    s = load_settings(ROOT / "config.example.toml")
    return s.model_copy(update={"apply": ApplySettings.model_validate(apply)})


def test_write_credentials_are_separate() -> None:
    ldap = next(src for src in _settings().sources if isinstance(src, LdapSource))
    entra = next(src for src in _settings().sources if isinstance(src, EntraSource))
    with pytest.raises(ConfigError, match="is the audit account"):
        write_ldap_source(_settings(ad_source=ldap.name, bind_dn=ldap.bind_dn, password_env="W"))
    with pytest.raises(ConfigError, match="no AD write credential"):
        write_ldap_source(_settings(ad_source=ldap.name))
    with pytest.raises(ConfigError, match="names no ldap source 'nope'"):
        write_ldap_source(_settings(ad_source="nope", bind_dn="w@x", password_env="W"))
    w = write_ldap_source(_settings(ad_source=ldap.name, bind_dn="w@x", password_env="W"))
    assert (w.bind_dn, w.password_env, w.servers) == ("w@x", "W", ldap.servers)
    with pytest.raises(ConfigError, match="is the audit app"):
        write_entra_source(_settings(entra_source=entra.name, client_id=entra.client_id))
    e = write_entra_source(
        _settings(entra_source=entra.name, client_id="other", client_secret_env="S")
    )
    assert e.client_id == "other" and e.tenant_id == entra.tenant_id


def test_max_group_fraction_is_validated() -> None:
    from pydantic import ValidationError

    assert ApplySettings().max_group_fraction == 0.5
    assert ApplySettings.model_validate({"max_group_fraction": 1}).max_group_fraction == 1.0
    for bad in (0, -0.1, 1.5, "half"):
        with pytest.raises(ValidationError, match="max_group_fraction"):
            ApplySettings.model_validate({"max_group_fraction": bad})
    assert load_settings(ROOT / "config.example.toml").apply.max_group_fraction == 0.5
