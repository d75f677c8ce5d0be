"""The ``source`` values the sample's rows carry, per part (what a ``sources`` matcher of a
configuration auditing the sample may name)."""

from __future__ import annotations

from accessaudit.sample.apps import APPS
from accessaudit.sample.builder import FORCES, SOURCE
from accessaudit.sample.entra import ENTRA_SOURCE
from accessaudit.sample.plants_data import AZURE_SOURCE, EXO_SOURCE, SMB_SOURCE
from accessaudit.sample.plants_foreign import new_domain


def sample_sources(part: str) -> frozenset[str]:
    """Every ``source`` of the sample's ``part`` (``directory``: the shared domain, each force's
    new domain, the application exports and the data paths; ``entra``: the tenant and the
    application exports)."""
    apps = {f"csv:{app.name}" for app in APPS}
    if part == "entra":
        return frozenset({ENTRA_SOURCE, *apps})
    domains = {f"ad:{new_domain(f)}" for f in FORCES}
    return frozenset({SOURCE, *domains, *apps, SMB_SOURCE, EXO_SOURCE, AZURE_SOURCE})
