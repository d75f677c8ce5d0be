"""An ``azure`` source: role assignments from ARM, or from the ``az`` CLI's JSON output."""

from __future__ import annotations

from datetime import UTC, datetime

from accessaudit.config.datasources import AzureSource
from accessaudit.connectors.azure.arm import read_arm
from accessaudit.connectors.azure.azcli import read_az_output
from accessaudit.connectors.azure.tables import tables
from accessaudit.errors import ConfigError
from accessaudit.model import LAST_LOGON, CollectionUnit, Signal, SourceCollection


def collect(cfg: AzureSource, *, now: datetime | None = None) -> SourceCollection:
    """The role assignments of ``cfg``'s scopes (ARM) or file (``az role assignment list``)."""
    started = now or datetime.now(UTC)
    source = f"azure:{cfg.tenant_id}"
    if cfg.file is not None:
        frame = read_az_output(cfg.file)
        units = [CollectionUnit("role assignments", True, f"read from {cfg.file}", frame.height)]
    elif not cfg.client_id or not (cfg.subscriptions or cfg.management_groups):
        raise ConfigError(
            f"source {cfg.name}: neither `file` nor `client_id` with `subscriptions` or "
            "`management_groups`",
            "give the az CLI's output as `file`, or the app and the scopes to read from ARM",
        )
    else:
        frame, units = read_arm(cfg, source)
    return SourceCollection(
        source=source,
        kind="azure",
        started=started,
        finished=now or datetime.now(UTC),
        tables=tables(frame, source),
        units=units,
        signals={LAST_LOGON: Signal(False, "role assignments carry no sign-ins")},
    )
