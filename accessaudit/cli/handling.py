"""Every failure of a command translated into one line and a stable exit code (the only place).

Exit codes (stable, documented in the README):

    0  no open findings at or above --fail-on
    1  open findings at or above --fail-on
    2  usage, configuration or runtime error; also an internal error (a bug): one line
       "internal error: <type>: <message>", the traceback only with --debug / ACCESSAUDIT_DEBUG=1
    3  the run finished, but at least one source was not collected completely
    4  another run holds the lock on the data directory
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from accessaudit.cli.output import safe
from accessaudit.errors import AuditError, ExitCode

F = TypeVar("F", bound=Callable[..., Any])
DEBUG_ENV = "ACCESSAUDIT_DEBUG"


def fail(exc: AuditError) -> NoReturn:
    """One line on stderr, no traceback, the error's exit code."""
    click.echo(f"accessaudit: error: {safe(exc)}", err=True)
    sys.exit(int(exc.exit_code))


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().params.get("debug"):
        return True
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def internal_error(exc: Exception) -> NoReturn:
    """Anything that is not an AuditError is a bug (or MemoryError, or a library failure nobody
    foresaw): one line and exit 2 like every error, never 1 ("findings", which a scheduler
    treats as success). The traceback goes to stderr only with --debug / ACCESSAUDIT_DEBUG=1:
    the exception's text may quote directory data, so it is never written to a log file."""
    what = type(exc).__name__
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    if first:  # polars puts the failing expression and values on the lines after the first
        what += f": {first[:200]}..." if len(first) > 200 else f": {first}"
    if _debug():
        traceback.print_exception(exc, file=sys.stderr)
        where = "the traceback above"
    else:
        where = f"the traceback printed with --debug or {DEBUG_ENV}=1"
    click.echo(
        f"accessaudit: error: internal error: {safe(what)} (please report; details in {where})",
        err=True,
    )
    sys.exit(int(ExitCode.ERROR))


def handle_errors(fn: F) -> F:
    """Translate every failure into one line and an exit code (the only place)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AuditError as exc:
            fail(exc)
        except KeyboardInterrupt:
            click.echo("accessaudit: interrupted; nothing was written", err=True)
            sys.exit(int(ExitCode.ERROR))
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click's own usage errors and exits: click prints them
        except Exception as exc:
            internal_error(exc)

    return wrapper  # type: ignore[return-value]
