"""A finding about a right that is not a group names that right in the resource column."""

from __future__ import annotations

import polars as pl

from accessaudit.report.objects import KIND, NAME, ORG, Objects
from accessaudit.report.rows import F, finding_rows


def test_a_directory_role_is_named_with_its_scope_and_force() -> None:
    findings = pl.DataFrame(
        {
            "finding_key": ["role|k1|gr", "member|k1|g1"],
            "rule_id": ["cross-org-directory-role", "cross-org-direct-member"],
            "severity": ["critical", "high"],
            "status": ["open", "open"],
            "action": ["remove-role-assignment", "remove-member"],
            "account_id": ["k1", "k1"],
            "group_id": [None, "g1"],
            "member_group_id": [None, None],
            "via_group_id": [None, None],
            "resource_id": ["62e90394-69f5-4237-9190-012177145e10", None],
            "right": ["Global Administrator @ /", None],
            "depth": [0, 0],
            "principal_org": ["warks", "warks"],
            "resource_org": ["wmp", "wmp"],
            "detail": ["", ""],
        },
        schema_overrides={"group_id": pl.String, "member_group_id": pl.String,
                          "via_group_id": pl.String},
    )  # fmt: skip
    accounts = pl.DataFrame({"account_id": ["k1"], "display_name": ["Kim"], "org": ["warks"]})
    groups = pl.DataFrame({"group_id": ["g1"], "name": ["Firearms"], "org": ["wmp"]})
    objs = Objects(accounts, groups, {"k1", "g1"})
    rows = {r[F["rule_id"]]: r for r in finding_rows(findings, {}, objs)}
    role = objs.rows[rows["cross-org-directory-role"][F["resource"]]]
    assert (role[NAME], role[KIND], role[ORG]) == ("Global Administrator @ /", "right", "wmp")
    assert rows["cross-org-directory-role"][F["resource_org"]] == "wmp"
    group = objs.rows[rows["cross-org-direct-member"][F["resource"]]]
    assert (group[NAME], group[KIND]) == ("Firearms", "group")
