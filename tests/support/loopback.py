"""Tests talk to loopback servers only: no proxy from the environment may sit in between."""

from __future__ import annotations

import pytest

PROXY_VARIABLES = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
)


def without_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every proxy variable and send 127.0.0.1/localhost direct (requests, msal)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
