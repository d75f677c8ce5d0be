"""``accessaudit init``: a commented configuration to start from, written where asked."""

from __future__ import annotations

from pathlib import Path

from accessaudit.config.examples import CONFIG_EXAMPLE, EXCEPTIONS_EXAMPLE, example_path
from accessaudit.errors import ConfigError
from accessaudit.store.runs import atomic_write_bytes, private_dir


def write_starters(config: Path, *, force: bool = False) -> list[Path]:
    """Write the example configuration to ``config`` and the example exceptions register next
    to it (``exceptions.example.toml``), owner-only; the files written. An existing
    configuration is never replaced unless ``force``; an existing register example is kept."""
    config = Path(config)
    if config.exists() and not force:
        raise ConfigError(
            f"{config} already exists",
            "edit it, or give another path (accessaudit init --config new.toml), or --force",
        )
    if config.exists() and not config.is_file():
        raise ConfigError(f"{config} is not a file", "give the path of a file to write")
    if not config.parent.exists():
        private_dir(config.parent)  # a folder we create is owner-only; an existing one is left
    written = [atomic_write_bytes(config, example_path(CONFIG_EXAMPLE).read_bytes())]
    register = config.parent / EXCEPTIONS_EXAMPLE
    if not register.exists():
        written.append(atomic_write_bytes(register, example_path(EXCEPTIONS_EXAMPLE).read_bytes()))
    return written
