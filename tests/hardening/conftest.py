"""Registers the hardening fixtures (defined in :mod:`support.hardening_env` and
:mod:`support.hardening_cli`)."""

from support.hardening_cli import read_only_calls  # noqa: F401
from support.hardening_env import (  # noqa: F401
    _loopback_without_proxies,
    boundary_dc,
    boundary_ro,
    boundary_template,
    emu,
    entra_tables,
    hpki,
)
