"""Secrets by reference: an environment variable, a file or a keyring entry (:class:`SecretRef`).

A configuration never holds a secret inline; it names where one lives, and the secret is read
only when the connector (or ``apply``) needs it. Reading never prompts: a secret that is not
there is a :class:`~accessaudit.errors.ConfigError` naming its source and what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, model_validator

from accessaudit.config.base import STRICT
from accessaudit.errors import ConfigError


class _Model(BaseModel):
    model_config = STRICT


class SecretRef(_Model):
    """Where a secret lives. Exactly one of ``env``, ``file`` or ``keyring`` is set.

    ``key`` is the configuration key it was given by without the suffix (``password``,
    ``client_secret``, ``certificate_passphrase``), so hints name the right alternatives."""

    env: str | None = None
    file: Path | None = None
    keyring: str | None = None  # "service:username"
    key: str = "password"

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        given = [n for n in ("env", "file", "keyring") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError("give exactly one of env, file or keyring")
        if self.keyring and ":" not in self.keyring:
            raise ValueError("keyring must be 'service:username'")
        return self

    def describe(self) -> str:
        """Where the secret comes from, never the secret itself."""
        if self.env:
            return f"environment variable {self.env}"
        if self.file:
            return f"file {self.file}"
        return f"keyring entry {self.keyring}"

    def resolve(self) -> str:
        """Read the secret. Never prompts; fails with a ConfigError naming the source."""
        if self.env:
            value = os.environ.get(self.env)
            if not value:
                raise ConfigError(
                    f"secret {self.describe()} is not set",
                    f"export {self.env} before running, or use a secret file",
                )
            return value
        if self.file:
            try:
                return self.file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read secret {self.describe()}: {exc.strerror}",
                    "check the path and that only this account can read it (chmod 600)",
                ) from None
        return _keyring_secret(str(self.keyring), self.key)


def _keyring_secret(ref: str, key: str) -> str:
    service, _, user = ref.partition(":")
    try:
        import keyring  # optional dependency
        from keyring.errors import KeyringError
    except ImportError:
        raise ConfigError(
            f"secret keyring entry {ref} needs the keyring package",
            f"pip install 'accessaudit[keyring]', or use {key}_env / {key}_file",
        ) from None
    try:
        value = keyring.get_password(service, user)
    except KeyringError as exc:  # e.g. no backend under a scheduler: never prompt
        raise ConfigError(
            f"keyring entry {ref} unavailable: {exc}",
            f"under a scheduler use {key}_env or {key}_file instead",
        ) from None
    if value is None:
        raise ConfigError(
            f"keyring entry {ref} not found", f"store it with: keyring set {service} {user}"
        )
    return str(value)
