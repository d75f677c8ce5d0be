"""The ``accessaudit`` command line: parse, call one library function, print, exit.

Each command lives in the module of its family (:mod:`~accessaudit.cli.audit`: demo, run,
report; :mod:`~accessaudit.cli.housekeeping`: runs, verify, prune;
:mod:`~accessaudit.cli.catalogue`: rules, exceptions; :mod:`~accessaudit.cli.remediate`: plan,
apply), failures become one line and an exit code in :mod:`~accessaudit.cli.handling` (exit
codes listed there), and only this package prints.
"""

from __future__ import annotations

import logging

import click

from accessaudit.cli import audit, catalogue, housekeeping, remediate
from accessaudit.cli.handling import DEBUG_ENV
from accessaudit.cli.output import StageProgress

__all__ = ["StageProgress", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="accessaudit", prog_name="accessaudit")
@click.option(
    "--debug",
    is_flag=True,
    help=f"On an internal error (a bug), print its traceback ({DEBUG_ENV}=1 does the same).",
)
def main(debug: bool) -> None:
    """Audit the separation of two organisations' access rights.

    Collects accounts, groups and rights from Active Directory / LDAP, Entra ID and application
    exports, attributes every object to an organisation, finds every cross-organisation access
    and writes the remediation plan and an HTML report.

    Start with:  accessaudit demo
    """
    # Library log records (connector retries, incomplete units) must not reach stderr through
    # logging's last-resort handler: unsanitised, several lines each. What matters is in the
    # manifest, the report and the one warning line; --json-log carries the stages.
    logging.getLogger().addHandler(logging.NullHandler())


for _command in (
    audit.init,
    audit.demo,
    audit.run,
    audit.report,
    audit.survey,
    housekeeping.runs,
    housekeeping.verify,
    housekeeping.prune,
    catalogue.rules,
    catalogue.exceptions,
    remediate.plan,
    remediate.apply_cmd,
    remediate.worklist,
):
    main.add_command(_command)
