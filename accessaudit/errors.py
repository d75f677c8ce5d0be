"""One exception tree for every expected failure, each with a message and a hint.

::

    AuditError                      exit 2: anything the user can fix
    ├── ConfigError                 config.toml: unknown/missing key, wrong type, bad secret ref
    ├── RuleError                   a rule file: TOML syntax, unknown key, bad SQL, wrong columns
    ├── ExceptionsFileError         exceptions register: malformed entry
    ├── SourceError                 a connector could not collect (names the server / file)
    │   ├── ConnectError            server unreachable, TLS failure
    │   ├── AuthError               bind / token refused (wrong secret, disabled account ...)
    │   └── IncompleteCollection    a collection unit could not be proven complete
    ├── StoreError                  data directory unwritable, run missing or corrupt, lock held
    └── InputFileError              an input (CSV export) with a bad row: names file and line

    any other Exception             exit 2 too: an internal error (a bug, MemoryError, a polars
                                    error nobody foresaw), "internal error: <type>: <message>"

Only ``cli.py`` turns these into a one-line message and an exit code; nothing else prints.
Exit codes are stable and documented in the README.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0  # no open findings at or above --fail-on
    FINDINGS = 1  # open findings at or above --fail-on
    ERROR = 2  # usage, configuration or runtime error
    INCOMPLETE = 3  # the run finished but at least one source was not collected completely
    LOCKED = 4  # another run holds the lock on the data directory


class AuditError(Exception):
    """Base of every expected failure: a message and a hint saying what to do.

    ``outside`` lists the parts of the message that are text from outside the tool (a cell of
    an export, a server's error text): the terminal shows them, the logs never do
    (:meth:`log_text`). Text that could be a secret (anything a server says about a bind, a
    file's first line that names no column) is never put in a message at all.
    """

    exit_code: ExitCode = ExitCode.ERROR
    outside: tuple[str, ...] = ()

    def __init__(self, message: str, hint: str = "", *, outside: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.outside = tuple(o for o in outside if o)

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def log_text(self) -> str:
        """The message and hint with every part from outside replaced by its length."""
        text = str(self)
        for part in sorted(self.outside, key=len, reverse=True):
            text = text.replace(part, f"[{len(part)} characters from outside, not logged]")
        return text


class ConfigError(AuditError):
    """The configuration file is invalid."""


class RuleError(AuditError):
    """A rule file is invalid."""


class ExceptionsFileError(AuditError):
    """The exceptions register is invalid."""


class InputFileError(AuditError):
    """An input file (e.g. an application CSV export) has a bad row."""


class SourceError(AuditError):
    """A source could not be collected."""


class ConnectError(SourceError):
    """The server could not be reached or the secure channel failed."""


class AuthError(SourceError):
    """The server refused our credentials."""


class IncompleteCollection(SourceError):
    """A collection unit could not be proven complete.

    ``collection`` (a ``model.SourceCollection``), when given, holds what *was* collected with
    every unit's completeness, so the run can be written and marked incomplete.
    """

    exit_code = ExitCode.INCOMPLETE

    def __init__(self, message: str, hint: str = "", collection: Any = None) -> None:
        super().__init__(message, hint)
        self.collection = collection


class StoreError(AuditError):
    """The run store cannot be read or written."""


class LockHeld(StoreError):
    """Another run is writing to this data directory."""

    exit_code = ExitCode.LOCKED


def error_fields(exc: Exception) -> dict[str, Any]:
    """The ``error`` event of a failed command, for the JSON log and the tool's audit log.

    An internal error (not an :class:`AuditError`) is ``internal: true`` with its class only:
    its text comes from a library and may quote directory data (polars quotes the values a cast
    failed on), which neither log may hold. It is on stderr, and its traceback with
    ``ACCESSAUDIT_DEBUG=1``.
    """
    if isinstance(exc, AuditError):
        return {
            "exit_code": int(exc.exit_code),
            "error": type(exc).__name__,
            "message": exc.log_text(),
        }
    return {
        "exit_code": int(ExitCode.ERROR),
        "error": type(exc).__name__,
        "internal": True,
        "message": f"internal error: {type(exc).__name__} (please report)",
    }
