"""The rule catalogue and the exceptions register: ``rules list|show|test``, ``exceptions``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from accessaudit.cli.handling import handle_errors
from accessaudit.cli.options import config_option, rules_config_option
from accessaudit.cli.output import safe, safe_block
from accessaudit.errors import AuditError, ExitCode
from accessaudit.pipeline.admin import exceptions_register, rule_catalogue
from accessaudit.pipeline.rulecheck import run_examples


@click.group()
def rules() -> None:
    """List, show and test the rule catalogue."""


@rules.command("list")
@rules_config_option
@handle_errors
def rules_list(config_path: Path | None) -> None:
    """One line per rule: id, severity, action, title.

    Example:  accessaudit rules list
    """
    for r in rule_catalogue(config_path):
        click.echo(f"{r.id:32} {r.severity.value:9} {r.action.value:27} {safe(r.title)}")


@rules.command("show")
@click.argument("rule_id")
@rules_config_option
@handle_errors
def rules_show(rule_id: str, config_path: Path | None) -> None:
    """Print one rule with its documentation and query.

    Example:  accessaudit rules show cross-org-nested-access
    """
    found = {r.id: r for r in rule_catalogue(config_path)}
    if rule_id not in found:
        raise AuditError(f"no rule '{rule_id}'", "see `accessaudit rules list`")
    r = found[rule_id]
    click.echo(f"{r.id}  ({r.severity.value}, action {r.action.value})\n{safe(r.title)}\n")
    click.echo(f"Why:\n{safe_block(r.rationale)}\n\nRemediation:\n{safe_block(r.remediation)}\n")
    if r.settings:
        click.echo("Settings: " + ", ".join(f"{k} = {v}" for k, v in r.settings.items()) + "\n")
    query = safe_block(r.query.strip())
    click.echo(f"Query:\n{query}\n\nExamples: {len(r.examples)}  File: {r.path}")


@rules.command("test")
@rules_config_option
@handle_errors
def rules_test(config_path: Path | None) -> None:
    """Run every rule's embedded examples; exit 1 if any fails.

    Example:  accessaudit rules test --config config.toml
    """
    results = run_examples(rule_catalogue(config_path))
    failed = [r for r in results if not r.passed]
    for r in results:
        mark = "ok  " if r.passed else "FAIL"
        click.echo(f"{mark} {r.rule_id}: {r.example}")
        if not r.passed:
            click.echo(f"       expected {sorted(r.expected)}\n       got      {sorted(r.got)}")
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(int(ExitCode.FINDINGS) if failed else 0)


@click.group()
def exceptions() -> None:
    """Check the exceptions register (accepted, dated, dual-approved cross-force access)."""


@exceptions.command("check")
@config_option
@click.option(
    "--on",
    "on_date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Judge expiry on this date (default: today, UTC).",
)
@handle_errors
def exceptions_check(config_path: Path, on_date: datetime | None) -> None:
    """Validate the register named by audit.exceptions_file; one line per exception.

    Example:  accessaudit exceptions check --config config.toml --on 2027-01-31
    """
    register = exceptions_register(config_path)
    today = (on_date or datetime.now(UTC)).date()
    for e in register.entries:
        state = (
            f"in force until {e.ends} ({(e.ends - today).days} days)"
            if e.in_force(today)
            else f"EXPIRED on {e.ends}"
        )
        click.echo(f"{safe(e.id):16} {e.rule:32} {state:34} {safe(e.agreement)}")
    click.echo(f"{len(register.entries)} exception(s); register sha256 {register.sha256}")
