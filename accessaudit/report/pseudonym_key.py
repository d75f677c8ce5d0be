"""The pseudonymisation key: 32 random bytes (hex) in ``report.pseudonym_key_file`` (default
``<data_dir>/pseudonym.key``), created 0600 on first use (its new folders 0700), refused inside
the runs folder or when others can read it (see :mod:`accessaudit.report.pseudonymise`)."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Final

from accessaudit.errors import ConfigError
from accessaudit.store.runs import new_dirs_private

if TYPE_CHECKING:
    from accessaudit.config.settings import Settings

KEY_FILE: Final = "pseudonym.key"


def key_path(settings: Settings) -> Path:
    """Where the key lives: ``report.pseudonym_key_file`` or ``<data_dir>/pseudonym.key``."""
    return settings.report.pseudonym_key_file or settings.audit.data_dir / KEY_FILE


def load_key(path: Path, runs_dir: Path) -> bytes:
    """Read the key, creating it (0600, 32 random bytes as hex) if missing.

    Refused inside ``runs_dir`` (a run folder is shared, the key never is) and when the file
    can be read by group or others.
    """
    resolved = path.resolve()
    runs = runs_dir.resolve()
    if resolved == runs or runs in resolved.parents:
        raise ConfigError(
            f"pseudonym key file {path} is inside the runs folder {runs_dir}",
            "set report.pseudonym_key_file to a path outside <data_dir>/runs",
        )
    try:
        new_dirs_private(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot create pseudonym key file {path}: {exc.strerror}") from None
    else:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read pseudonym key file {path}: {exc}") from None
    if mode & 0o077:
        raise ConfigError(
            f"pseudonym key file {path} is readable by others (mode {mode:04o})",
            f"chmod 600 {path}",
        )
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise ConfigError(
            f"pseudonym key file {path} does not hold a hex key of at least 16 bytes",
            "delete it to have a new key created (tokens will change), or restore the old one",
        )
    return key
