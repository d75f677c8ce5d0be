"""Attribution evidence shows the value that matched and the configured pattern."""

from __future__ import annotations

import polars as pl

from accessaudit.config.organisations import Matchers, Organisation
from accessaudit.engine.snapshot import attribution_snapshot, without_personal
from accessaudit.report.matched import explained
from accessaudit.report.objects import EVIDENCE, Objects

ORGS = [
    Organisation(
        id="wmp",
        name="West Mercia",
        match=Matchers(employee_id=r"^1\d{6}$", upn_suffix=["@wmp.example"], names=["jbloggs"]),
    ),
    Organisation(id="warks", name="Warwickshire", match=Matchers(ou=["OU=Warks,DC=x"])),
]
SNAPSHOT = attribution_snapshot(ORGS, ["employee_id", "upn_suffix", "ou", "names"])


def _accounts() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "account_id": ["a1", "a2", "a3", "a4"],
            "username": ["jbloggs", "asmith", "guest", "nobody"],
            "employee_id": ["1234567", None, None, None],
            "upn": ["jb@wmp.example", "as@wmp.example", "g_h#EXT#@wmp.example", None],
            "dn": ["CN=jb,DC=x", "CN=as,OU=Warks,DC=x", "CN=g,DC=x", "CN=n,DC=x"],
            "org_evidence": [
                ["employee_id:wmp", "upn_suffix:wmp", "names:wmp"],
                ["upn_suffix:wmp", "ou:warks"],
                ["upn_suffix:warks (home domain)", "owner:wmp"],  # kept as they are
                [],
            ],
        }
    )


def test_each_plain_label_gets_its_value_and_pattern() -> None:
    got = explained(_accounts(), "account", SNAPSHOT).to_list()
    assert got == [
        [
            r"employeeID 1234567 ~ ^1\d{6}$ (wmp)",
            "UPN jb@wmp.example ~ @wmp.example (wmp)",
            "name jbloggs ~ jbloggs (wmp)",
        ],
        [
            "UPN as@wmp.example ~ @wmp.example (wmp)",
            "DN CN=as,OU=Warks,DC=x ~ OU=Warks,DC=x (warks)",
        ],
        ["upn_suffix:warks (home domain)", "owner:wmp"],
        [],
    ]


def test_without_a_snapshot_the_labels_stay_as_recorded() -> None:
    df = _accounts()
    assert explained(df, "account", None).to_list() == df["org_evidence"].to_list()
    # an organisation the snapshot lacks (renamed since): its label is never guessed
    other = attribution_snapshot(ORGS[1:], ["ou"])
    assert explained(df, "account", other).to_list()[0] == df["org_evidence"].to_list()[0]


def test_a_pseudonymised_report_names_no_configured_person() -> None:
    hidden = without_personal(SNAPSHOT)
    assert hidden is not None
    wmp = hidden["organisations"][0]["match"]
    assert wmp["names"] == ["(1 value(s), not shown: pseudonymised)"]
    assert wmp["employee_id"] == r"^1\d{6}$"  # patterns are configuration, not people
    got = explained(_accounts(), "account", hidden).to_list()[0]
    assert not any("jbloggs ~ jbloggs" in e for e in got)


def test_the_report_objects_carry_the_explained_evidence() -> None:
    groups = pl.DataFrame(
        {
            "group_id": ["g1"],
            "name": ["WARKS-Staff"],
            "dn": ["CN=WARKS-Staff,OU=Warks,DC=x"],
            "org": ["warks"],
            "org_evidence": [["ou:warks"]],
            "org_conflict": [False],
        }
    )
    accounts = _accounts().with_columns(org=pl.lit("wmp"), org_conflict=pl.lit(False))
    objs = Objects(accounts, groups, {"a1", "g1"}, SNAPSHOT)
    assert objs.rows[objs.index["g1"]][EVIDENCE] == [
        "DN CN=WARKS-Staff,OU=Warks,DC=x ~ OU=Warks,DC=x (warks)"
    ]
    assert objs.rows[objs.index["a1"]][EVIDENCE][0] == r"employeeID 1234567 ~ ^1\d{6}$ (wmp)"
