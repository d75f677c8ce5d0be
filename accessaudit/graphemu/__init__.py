"""A local Microsoft identity platform + Microsoft Graph v1.0 emulator for the Entra connector.

Shipped in the wheel and used by the test suite, the benchmarks and
``accessaudit demo --source sample-entra`` (which serves the sample tenant over HTTPS). It binds
only to 127.0.0.1, on an ephemeral port, with a throwaway CA; it is not a production component
and never talks to Microsoft. Modules:

* :mod:`.server` — the HTTPS server (stdlib ``ThreadingHTTPServer`` + ``ssl``), request log,
  fault application and ``$batch``; :mod:`.identity` — OIDC discovery, token endpoint, tokens;
* :mod:`.graph` (+ :mod:`.delta`, :mod:`.roles`, :mod:`.protocol`) — the Graph v1.0 endpoints;
* :mod:`.tenant` (+ :mod:`.schema`) — the directory data model with change tracking;
  :mod:`.tables` — :func:`tenant_from_tables` / :func:`tenant_from_sample`, serving any
  canonical dataset;
* :mod:`.faults` — fault switches; :mod:`.pki` — the per-session CA and app certificates,
  built on :mod:`.tlspki` (the throwaway loopback PKI shared with the test servers).
"""

from accessaudit.graphemu.faults import Fault, Faults
from accessaudit.graphemu.identity import AppRegistration
from accessaudit.graphemu.pki import AppCertificate, TestPKI, make_app_certificate, make_pki
from accessaudit.graphemu.protocol import READ
from accessaudit.graphemu.server import READ_ROLES, GraphEmulator, Logged
from accessaudit.graphemu.tables import tenant_from_sample, tenant_from_tables
from accessaudit.graphemu.tenant import Tenant

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
    "tenant_from_sample",
    "tenant_from_tables",
]
