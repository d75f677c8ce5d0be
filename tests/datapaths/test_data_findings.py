"""The sample's planted data paths end to end through the analysis: every planted path found and
nothing else (precision = recall = 1), the deny not reported, one action per finding with its
exact command, and the what-if resolving every one without collateral."""

from __future__ import annotations

import polars as pl
from support.fixtures import NOW

from accessaudit.analysis.expand import effective_memberships, group_closure
from accessaudit.engine.evaluate import evaluate
from accessaudit.engine.rulefile import Rule
from accessaudit.engine.views import build_views
from accessaudit.pipeline.analyse import Analysis
from accessaudit.remediation.whatif import what_if
from accessaudit.report.datapaths import DATA_ACTIONS, DATA_RULES
from accessaudit.sample.builder import Sample
from accessaudit.sample.plants_data import DEEP, FILE_SERVER

KEY = ["rule_id", "account_id", "member_group_id", "resource_id", "right"]


def _data(findings: pl.DataFrame) -> pl.DataFrame:
    return findings.filter(pl.col("rule_id").is_in(DATA_RULES)).select(KEY).sort(KEY)


def test_every_planted_data_path_is_found_and_nothing_else(
    sample: Sample, analysis: Analysis
) -> None:
    truth = sample.truth.filter(pl.col("plant").str.starts_with("data: ")).select(KEY).sort(KEY)
    assert truth.height == 6
    assert _data(analysis.findings).rows() == truth.rows()
    # the deny of Warwickshire's ICT group on the restricted folder is no access
    ids = dict(
        zip(sample.tables["groups"]["name"], sample.tables["groups"]["group_id"], strict=True)
    )
    restricted = f"smb://{FILE_SERVER}/wmp$/Intelligence/Restricted"
    named = analysis.findings.filter(pl.col("resource_id") == restricted)
    assert named.height == 0
    deny = analysis.grants.filter(
        (pl.col("resource_id") == restricted) & (pl.col("principal_id") == ids["WARKS-DEPT-ICT"])
    )
    assert deny.select("right", "deny").rows() == [("modify", True)]


def test_one_action_per_data_finding_with_its_command(sample: Sample, analysis: Analysis) -> None:
    actions = analysis.actions.filter(pl.col("kind").is_in(DATA_ACTIONS))
    assert actions.height == 6 and actions["resolves"].to_list() == [1] * 6
    deep_id = f"smb://{FILE_SERVER}/wmp$/" + DEEP.replace("\\", "/")
    deep = actions.filter(pl.col("resource_id") == deep_id).row(0, named=True)
    holder = sample.tables["accounts"].filter(pl.col("account_id") == deep["member_id"])
    sid = holder["sid"][0]
    assert deep["kind"] == "remove-folder-ace" and deep["system"] == "files"
    assert deep["powershell"] == (f"icacls '\\\\{FILE_SERVER}\\wmp$\\{DEEP}' /remove:g '*{sid}'")
    owner = actions.filter(pl.col("right") == "Owner").row(0, named=True)
    assert owner["powershell"] == (
        f"Remove-AzRoleAssignment -ObjectId '{owner['member_id']}' -RoleDefinitionName 'Owner' "
        "-Scope '/subscriptions/00000000-0000-0000-0000-00000000a001'"
    )
    desk = actions.filter(pl.col("right") == "FullAccess").row(0, named=True)
    guid = str(desk["resource_id"]).removeprefix("mailbox:")
    assert desk["powershell"] == (
        f"Remove-MailboxPermission -Identity '{guid}' -User 'WARKS-DEPT-ICT' "
        "-AccessRights 'FullAccess' -InheritanceType All -Confirm:$false"
    )


def test_the_what_if_resolves_every_data_path(analysis: Analysis, rules: list[Rule]) -> None:
    resources = analysis.extra["resources"]

    def reevaluate(
        accounts: pl.DataFrame, groups: pl.DataFrame, mem: pl.DataFrame, grants: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        closure = group_closure(mem)
        eff = effective_memberships(mem, closure)
        views = build_views(
            accounts, groups, mem, grants, closure=closure, effective=eff, as_of=NOW,
            resources=resources,
        )  # fmt: skip
        return evaluate([r for r in rules if r.id in DATA_RULES], views), eff

    data_rules = analysis.findings.filter(pl.col("rule_id").is_in(DATA_RULES))
    actions = analysis.actions.filter(pl.col("kind").is_in(DATA_ACTIONS))
    tables = analysis.tables() | {"findings": data_rules}
    result = what_if(tables, actions, reevaluate)
    assert (result.planned, result.remaining, result.new) == (6, [], [])
    assert result.collateral.height == 0
