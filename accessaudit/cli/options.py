"""Option bundles shared by several commands, as decorators."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
SEVERITIES = ["critical", "high", "medium", "low", "info", "none"]


def config_option(fn: F) -> F:
    return click.option(
        "--config",
        "-c",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=Path("config.toml"),
        show_default=True,
        help="Configuration file (see config.example.toml).",
    )(fn)


def fail_on_option(default: str | None) -> Callable[[F], F]:
    return click.option(
        "--fail-on",
        type=click.Choice(SEVERITIES),
        default=default,
        help="Exit 1 when open findings at or above this severity exist "
        "(default: audit.fail_on from the config; 'none' never fails).",
    )


def quiet_option(fn: F) -> F:
    return click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")(fn)


def pseudonymise_option(fn: F) -> F:
    return click.option(
        "--pseudonymise/--no-pseudonymise",
        default=None,
        help="Replace names, usernames, UPNs, mails, SIDs and DNs in the report and exports by "
        "keyed tokens (default: report.pseudonymise from the config).",
    )(fn)


def run_dir_argument(fn: F) -> F:
    return click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))(
        fn
    )


rules_config_option = click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Also load the site rule folders named in this config.",
)
