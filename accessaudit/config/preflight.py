"""Checks of a loaded configuration against the machine, before anything is collected.

A configuration can be valid and still fail half-way through a run: a CSV export that is not
there, a CA file or secret file that cannot be read, a password variable the scheduler forgot to
set. Each of these would stop the run after other sources were already collected. They are all
checked here first, each problem named by the configuration file, the line of the key and the
source (``config.toml:42: source 'niche': path /srv/exports/niche.csv does not exist``).

Secret *values* are never read here except through the keyring (the only way to know an entry
exists); for an environment variable only its presence is checked, for a file only that it is
a readable regular file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from accessaudit.config.secrets import SecretRef
from accessaudit.config.settings import Settings
from accessaudit.config.tomlpos import line_of
from accessaudit.errors import ConfigError

#: What a path is when it is not a regular file (a FIFO or a device would never end).
_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)

#: Properties of a source that are secrets by reference.
SECRET_PROPERTIES = ("password", "client_secret", "certificate_passphrase")


def _problems_of_path(value: Path) -> str | None:
    try:
        st = value.stat()
    except FileNotFoundError:
        return f"{value} does not exist"
    except OSError as exc:
        return f"{value} cannot be read ({exc.strerror})"
    if not stat.S_ISREG(st.st_mode):
        what = next((name for test, name in _KINDS if test(st.st_mode)), "not a file")
        return f"{value} is {what}, not a regular file"
    if not os.access(value, os.R_OK):
        return f"{value} is not readable by this account"
    return None


#: A problem: where its key is in the configuration, what is wrong, what to do.
Problem = tuple[tuple[int | str, ...], str, str]
_PATH_HINT = "fix the path"
_FILE_HINT = "check the path and that only this account can read it (chmod 600)"


def _secret_problem(ref: SecretRef) -> tuple[str, str] | None:
    """What is wrong with a secret given by environment variable or keyring, in the words
    :meth:`SecretRef.resolve` uses, and what to do; None when it is there."""
    if ref.env:
        if os.environ.get(ref.env):
            return None
        return (
            f"secret {ref.describe()} is not set",
            f"export {ref.env} before running, or use a secret file",
        )
    if ref.keyring:
        try:
            ref.resolve()
        except ConfigError as exc:
            return exc.message, exc.hint
    return None  # a file: checked as a path


def _path_problem(name: str, value: Path) -> tuple[str, str] | None:
    problem = _problems_of_path(value)
    if problem is None:
        return None
    if name.removesuffix("_file") in SECRET_PROPERTIES:
        return f"cannot read secret file {value}: {problem.removeprefix(str(value)).strip()}", (
            _FILE_HINT
        )
    return f"{name} {problem}", _PATH_HINT


def source_problems(settings: Settings, *, secrets: bool) -> list[Problem]:
    """Every problem of the sources on this machine: ``(loc, message, hint)``, ``loc`` the
    key's place in the configuration (``("sources", 2, "path")``)."""
    out: list[Problem] = []
    for i, source in enumerate(settings.sources):
        prefix = f"source '{source.name}': "
        for name, value in source:
            found = _path_problem(name, value) if isinstance(value, Path) else None
            if found:
                out.append((("sources", i, name), prefix + found[0], found[1]))
        if not secrets:
            continue
        for prop in SECRET_PROPERTIES:
            ref: Any = getattr(source, prop, None)
            secret = _secret_problem(ref) if isinstance(ref, SecretRef) else None
            if secret:
                key = f"{prop}_env" if ref.env else f"{prop}_keyring"
                out.append((("sources", i, key), prefix + secret[0], secret[1]))
    return out


def check_sources(settings: Settings, config_path: Path | None, *, secrets: bool = True) -> None:
    """Raise one ConfigError naming the first problem (and how many more there are) of the
    sources on this machine; nothing when every path and secret is there."""
    problems = source_problems(settings, secrets=secrets)
    if not problems:
        return
    loc, message, hint = problems[0]
    where = _where(config_path, loc)
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    raise ConfigError(f"{where}{message}{more}", f"{hint}; nothing was collected")


def _where(config_path: Path | None, loc: Sequence[int | str]) -> str:
    if config_path is None:
        return ""
    try:
        text = config_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return f"{config_path}: "
    line = line_of(text, list(loc))
    return f"{config_path}:{line}: " if line else f"{config_path}: "
