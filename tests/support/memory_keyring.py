"""A real keyring backend that keeps its entries in memory (no desktop keyring on a test machine
or a scheduler), for the LDAP and Entra tests of secrets read from a keyring."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keyring
from keyring.backend import KeyringBackend


class MemoryKeyring(KeyringBackend):
    """It declares a ``priority`` but keyring never picks it by itself: only
    :func:`installed` (``keyring.set_keyring``) puts it in place."""

    priority = 1  # a class attribute, as in keyring's own backends

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.entries[(service, username)]


@contextmanager
def installed() -> Iterator[MemoryKeyring]:
    """A fresh :class:`MemoryKeyring` as the process's keyring; the previous one restored."""
    before = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    try:
        yield ring
    finally:
        keyring.set_keyring(before)
