"""A Graph emulator whose Graph reads wait until the test releases them.

A run that collects an Entra source from it holds the data directory's lock for as long as the
test wants, with no timing: the test waits for the run's stage in its JSON log, does what it
tests (a second run, a kill), then releases the emulator and the run finishes normally. The
run's own limits (``timeout``, ``time_budget``) are set far above the test's deadline.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from accessaudit.graphemu import GraphEmulator, TestPKI, tenant_from_sample
from support.entra_data import CLIENT_ID, ROLES, SECRET, TENANT, small

#: The longest a held request waits (a guard against a hung test, never a measurement).
HOLD_LIMIT = 300


class HeldGraph(GraphEmulator):
    """The emulator with the small sample tenant; Graph reads wait for :attr:`release`."""

    def __init__(self, pki: TestPKI) -> None:
        super().__init__(pki)
        self.release = threading.Event()
        self.reached = threading.Event()  # a Graph read arrived (and waits)
        self.add_tenant(tenant_from_sample(small(), tenant_id=TENANT))
        self.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=ROLES)

    def _dispatch(self, h: Any) -> None:
        if urlsplit(h.path).path.startswith("/v1.0/"):
            self.reached.set()
            self.release.wait(HOLD_LIMIT)
        super()._dispatch(h)

    def stop(self) -> None:
        self.release.set()
        super().stop()

    def source(self, folder: Path, host: str) -> str:
        """The ``[[sources]]`` entry of this tenant for a config file in ``folder``."""
        secret = folder / "graph-secret"
        secret.write_text(SECRET + "\n")
        secret.chmod(0o600)
        return (
            f'[[sources]]\nkind = "entra"\nname = "tenant"\nhost = "{host}"\n'
            f'tenant_id = "{TENANT}"\nclient_id = "{CLIENT_ID}"\n'
            f'authority_host = "{self.base_url}"\ngraph_url = "{self.graph_url}"\n'
            f'client_secret_file = "{secret}"\nca_file = "{self.pki.ca_file}"\n'
            f"timeout = {HOLD_LIMIT * 2}\ntime_budget = {HOLD_LIMIT * 3}\n"
        )
