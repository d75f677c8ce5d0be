"""The commented example files a new installation starts from (``accessaudit init``).

``config.example.toml`` and ``exceptions.example.toml`` sit at the top of a checkout; an
installed wheel carries copies at ``accessaudit/_data/`` (hatch force-include), so every error
that says "copy config.example.toml" names a file the user actually has.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Final

CONFIG_EXAMPLE: Final = "config.example.toml"
EXCEPTIONS_EXAMPLE: Final = "exceptions.example.toml"


def example_path(name: str) -> Path:
    """The shipped example ``name``: the wheel's copy, else the checkout's."""
    installed = Path(str(resources.files("accessaudit"))) / "_data" / name
    if installed.is_file():
        return installed
    return Path(__file__).resolve().parents[2] / name
