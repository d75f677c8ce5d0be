"""Open the write connections ``apply`` needs, from ``[apply]`` (write credentials by reference).

The write credential must differ from the audit one: the audit source's servers, CA and tenant
are reused, its account or app never is.
"""

from __future__ import annotations

from accessaudit.config.secrets import SecretRef
from accessaudit.config.settings import Settings
from accessaudit.config.sources import EntraSource, LdapSource
from accessaudit.errors import ConfigError
from accessaudit.remediation.apply.execute import Directory


def _named(settings: Settings, name: str | None, kind: str) -> LdapSource | EntraSource:
    for s in settings.sources:
        if s.name == name and s.kind == kind:
            assert isinstance(s, LdapSource | EntraSource)
            return s
    raise ConfigError(
        f"[apply] names no {kind} source '{name}'",
        f"set apply.{'ad' if kind == 'ldap' else 'entra'}_source to a [[sources]] name",
    )


def write_ldap_source(settings: Settings) -> LdapSource:
    """The audit LDAP source with the write account of ``[apply]``."""
    a = settings.apply
    src = _named(settings, a.ad_source, "ldap")
    assert isinstance(src, LdapSource)
    if not a.bind_dn or not (a.password_env or a.password_file or a.password_keyring):
        raise ConfigError(
            "[apply] has no AD write credential",
            "set apply.bind_dn and apply.password_env / _file / _keyring",
        )
    if a.bind_dn.lower() == (src.bind_dn or "").lower():
        raise ConfigError(
            f"[apply] bind_dn {a.bind_dn} is the audit account of source {src.name}",
            "apply writes with its own account; the audit account stays read-only",
        )
    return src.model_copy(
        update={
            "bind_dn": a.bind_dn,
            "password_env": a.password_env,
            "password_file": a.password_file,
            "password_keyring": a.password_keyring,
            "auth": "simple",
        }
    )


def write_entra_source(settings: Settings) -> EntraSource:
    """The audit Entra source with the write app of ``[apply]``."""
    a = settings.apply
    src = _named(settings, a.entra_source, "entra")
    assert isinstance(src, EntraSource)
    if not a.client_id:
        raise ConfigError("[apply] has no Entra write app", "set apply.client_id")
    if a.client_id.lower() == src.client_id.lower():
        raise ConfigError(
            f"[apply] client_id {a.client_id} is the audit app of source {src.name}",
            "apply writes with its own app registration; the audit app stays read-only",
        )
    return src.model_copy(
        update={
            "client_id": a.client_id,
            "certificate_file": a.certificate_file,
            "certificate_thumbprint": a.certificate_thumbprint,
            "certificate_passphrase_env": a.certificate_passphrase_env,
            "certificate_passphrase_file": a.certificate_passphrase_file,
            "certificate_passphrase_keyring": a.certificate_passphrase_keyring,
            "client_secret_env": a.client_secret_env,
            "client_secret_file": a.client_secret_file,
            "client_secret_keyring": a.client_secret_keyring,
            "allow_write_permissions": True,
        }
    )


def open_directories(settings: Settings, systems: set[str]) -> dict[str, Directory]:
    """Write connections for the systems a plan changes (``ad``, ``cloud``)."""
    out: dict[str, Directory] = {}
    if "ad" in systems:
        from accessaudit.remediation.apply.ldap import LdapDirectory

        cfg = write_ldap_source(settings)
        ref: SecretRef | None = cfg.password
        out["ad"] = LdapDirectory.open(cfg, ref.resolve() if ref else None)
    if "cloud" in systems:
        from accessaudit.remediation.apply.graph import GraphDirectory

        out["cloud"] = GraphDirectory.open(write_entra_source(settings))
    return out
