"""``accessaudit demo --source sample-entra``: the sample's Entra ID tenant collected for real.

The plain demo reads the sample's tenant from memory. With ``--source sample-entra`` the same
tenant is served over HTTPS by our Microsoft Graph emulator (:mod:`accessaudit.graphemu`) on
127.0.0.1 with a throwaway CA, and the demo's ``alliance-entra`` source becomes an ordinary
``entra`` source: the real ``msal`` client-credentials flow (certificate credential), OIDC
discovery, the token's ``roles`` checked, every listing paged and ``$batch``-ed exactly as against
``graph.microsoft.com``. The findings are the same as the plain demo's; the manifest records the
Graph collection units and the request count.

Nothing leaves the machine: the emulator binds to 127.0.0.1 only, and proxies from the
environment are bypassed for loopback while it runs. Its CA, server key and the app's private key
live in a private temporary folder (0700) removed when the demo ends.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from accessaudit.config.settings import Settings
from accessaudit.config.sources import EntraSource

#: The demo app registration's client id (any GUID; the emulator knows only this one).
DEMO_CLIENT_ID = "0d6c2f4e-3b1a-4f7d-9e55-7c1a2b3c4d5e"
DEMO_SOURCE = "alliance-entra"


@dataclass
class EmulatedTenant:
    """The running emulator's address and the source that collects from it."""

    source: EntraSource
    base_url: str
    round_trips: int = 0


@contextmanager
def _loopback_without_proxy() -> Iterator[None]:
    """Add 127.0.0.1 to NO_PROXY while the emulator runs (an HTTPS_PROXY of the user's
    environment would otherwise receive the demo's requests); restored afterwards."""
    saved = {k: os.environ.get(k) for k in ("NO_PROXY", "no_proxy")}
    extra = "127.0.0.1,localhost"
    for key, value in saved.items():
        os.environ[key] = f"{value},{extra}" if value else extra
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def emulated_sample_tenant(*, accounts: int, seed: int) -> Iterator[EmulatedTenant]:
    """Serve the sample's tenant (``generate(seed, accounts, entra=True).entra``) on 127.0.0.1
    and yield an :class:`EntraSource` for it (certificate credential, read-only roles)."""
    from accessaudit.graphemu import (
        READ_ROLES,
        GraphEmulator,
        make_app_certificate,
        make_pki,
        tenant_from_sample,
    )
    from accessaudit.sample.directory import SAMPLE_HOST, generate
    from accessaudit.sample.entra import TENANT_DOMAIN, TENANT_ID
    from accessaudit.sample.entra_messy import hidden_membership

    tables = generate(seed=seed, accounts=accounts, entra=True).entra
    with tempfile.TemporaryDirectory(prefix="accessaudit-graph-emulator-") as tmp:
        work = Path(tmp)  # mkdtemp: 0700
        pki = make_pki(work / "pki")
        cert = make_app_certificate(work / "app", "accessaudit-demo")
        emulator = GraphEmulator(pki)
        hidden = hidden_membership(tables)
        emulator.add_tenant(
            tenant_from_sample(
                tables, tenant_id=TENANT_ID, domain=TENANT_DOMAIN, hidden_membership=hidden
            )
        )
        # the sample's operations group has an org contact as a member: OrgContact.Read.All;
        # its covert liaison group hides its membership: Member.Read.Hidden, as the connector
        # documents for such tenants
        roles = (*READ_ROLES, "OrgContact.Read.All", "Member.Read.Hidden")
        emulator.register_app(TENANT_ID, DEMO_CLIENT_ID, certificate=cert, roles=roles)
        with _loopback_without_proxy(), emulator:
            source = EntraSource(
                name=DEMO_SOURCE,
                kind="entra",
                host=SAMPLE_HOST,
                tenant_id=TENANT_ID,
                client_id=DEMO_CLIENT_ID,
                authority_host=emulator.base_url,
                graph_url=emulator.graph_url,
                certificate_file=cert.pem_file,
                certificate_thumbprint=cert.thumbprint_sha1,
                ca_file=pki.ca_file,
                sign_in_activity=True,  # the emulated tenant is licensed (Entra ID P1)
                use_delta=False,  # each demo serves a new tenant: no deltaLink to resume
                timeout=30.0,
                time_budget=600.0,
            )
            served = EmulatedTenant(source, emulator.base_url)
            try:
                yield served
            finally:
                served.round_trips = emulator.graph_round_trips()
        if emulator.errors:  # an emulator bug answered 500: say so rather than hide it
            raise RuntimeError(f"Graph emulator error: {emulator.errors[0]}")


def with_entra_source(settings: Settings, source: EntraSource) -> Settings:
    """``settings`` whose demo tenant source (``alliance-entra``) is ``source``."""
    if not any(s.name == source.name for s in settings.sources):
        raise ValueError(f"the demo settings have no source named {source.name!r}")
    sources = [source if s.name == source.name else s for s in settings.sources]
    return settings.model_copy(update={"sources": sources})
