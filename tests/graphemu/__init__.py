"""A local Microsoft identity platform + Microsoft Graph v1.0 emulator for the Entra connector.

Test infrastructure only (not shipped in the wheel). See :mod:`graphemu.server` for the HTTPS
server, :mod:`graphemu.graph` for the Graph endpoints, :mod:`graphemu.tenant` for the data model
and :func:`tenant_from_tables`, :mod:`graphemu.faults` for the fault switches and
:mod:`graphemu.pki` for the per-session CA.
"""

from .faults import Fault, Faults
from .graph import READ
from .pki import AppCertificate, TestPKI, make_app_certificate, make_pki
from .server import READ_ROLES, AppRegistration, GraphEmulator, Logged
from .tenant import Tenant, tenant_from_tables

__all__ = [
    "READ",
    "READ_ROLES",
    "AppCertificate",
    "AppRegistration",
    "Fault",
    "Faults",
    "GraphEmulator",
    "Logged",
    "Tenant",
    "TestPKI",
    "make_app_certificate",
    "make_pki",
    "tenant_from_tables",
]
