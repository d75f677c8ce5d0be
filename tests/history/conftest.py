"""Registers the boundary domain controller (Samba, :mod:`support.hardening_env`) for the
six-run history sequence on a real directory."""

from support.hardening_env import (  # noqa: F401
    _loopback_without_proxies,
    boundary_dc,
    boundary_template,
    hpki,
)
