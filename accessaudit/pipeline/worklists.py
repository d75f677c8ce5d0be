"""The identity team's worklist between runs: import the tracking columns of an edited
``actions.xlsx`` into the data directory, so every later export carries them."""

from __future__ import annotations

from pathlib import Path

from accessaudit.config.settings import load_settings
from accessaudit.errors import ConfigError
from accessaudit.report import tracking


def import_tracking(config_path: Path, workbook: Path) -> tuple[int, int, Path]:
    """Store the tracking columns of ``workbook`` for the configuration's data directory; the
    number of actions updated, the number now tracked, and the tracking file."""
    settings = load_settings(config_path)
    data_dir = settings.audit.data_dir
    if not data_dir.is_dir():
        raise ConfigError(
            f"{config_path}: data_dir {data_dir} does not exist",
            "run an audit first: the worklist comes from a run's actions.xlsx",
        )
    imported = tracking.read_workbook(workbook)
    updated = tracking.merge(data_dir, imported)
    return updated, tracking.load(data_dir).height, data_dir / tracking.TRACKING_FILE
