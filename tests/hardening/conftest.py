"""Registers the hardening fixtures (defined in :mod:`hardening_env`)."""

from support.hardening_env import (  # noqa: F401
    _loopback_without_proxies,
    boundary_dc,
    boundary_ro,
    boundary_template,
    emu,
    entra_tables,
    hpki,
    read_only_calls,
)
