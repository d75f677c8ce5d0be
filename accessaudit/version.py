"""The installed tool's version, recorded in every manifest and audit-log line."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def tool_version() -> str:
    """The distribution's version, or ``0.0.0+checkout`` when running from an uninstalled tree."""
    try:
        return version("accessaudit")
    except PackageNotFoundError:  # running from a checkout without installing
        return "0.0.0+checkout"
