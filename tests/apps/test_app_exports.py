"""Application exports as they really arrive (issue 24), end to end through collection,
correlation, attribution and the rules, against the truth of every row (``conftest.py``)."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
from support.app_exports import Estate, Row, role_org

from accessaudit.model import Via


def _csv(column: str) -> pl.Expr:
    return pl.col(column).str.starts_with("csv:").fill_null(False)


def _enabled(e: Estate, r: Row) -> bool:
    """The holder's own state: its directory account's, or an application-only login's (enabled
    when any of its rows is)."""
    if r.account:
        return bool(e.directory.enabled[r.account])
    return any(o.enabled for o in e.rows if o.holder == r.holder)


# --- 1, 2: logins and staff numbers as the export writes them -----------------------------------


def test_every_row_ends_on_the_account_it_is(estate: Estate) -> None:
    """Down-level and user@domain logins, padded logins and padded staff numbers reach their
    directory account; a login of another domain and an unknown staff number stay the
    application's own. Compared as the exact set of memberships (precision = recall = 1)."""
    got = set(
        estate.analysis.memberships.filter(_csv("source"))
        .select("group_id", "member_id", "via")
        .iter_rows()
    )
    by_edge: dict[tuple[str, str], bool] = {}
    for r in estate.rows:
        by_edge[(r.group, r.holder)] = by_edge.get((r.group, r.holder), False) or r.enabled
    want = {
        (g, m, Via.CSV.value if on else Via.CSV_DISABLED.value) for (g, m), on in by_edge.items()
    }
    assert got == want
    matched = [r for r in estate.rows if r.account]
    assert len(matched) == 22 and len(estate.rows) == 24  # 2 application-only logins


def test_correlation_units_count_the_rows(estate: Estate) -> None:
    units = {
        name: [(u.name, u.complete, u.detail) for u in c.units]
        for name, c in estate.collections.items()
        if name in ("cad", "duty")
    }
    cad, duty = (estate.folder / "cad.csv", estate.folder / "duty.csv")
    assert units == {
        "cad": [
            ("rows", True, f"16 rows read from {cad}"),  # 15 rows, one exported twice
            (
                "correlation",
                True,
                "14 matched, 1 unmatched, 0 ambiguous on username (1 login(s) of another domain)",
            ),
        ],
        "duty": [
            ("rows", True, f"9 rows read from {duty}"),
            ("correlation", True, "8 matched, 1 unmatched, 0 ambiguous on employee_id"),
        ],
    }


def test_an_application_only_staff_number_is_attributed_by_its_padded_number(
    estate: Estate,
) -> None:
    (only,) = [r for r in estate.rows if r.app == "duty" and not r.account]
    row = estate.analysis.accounts.filter(pl.col("account_id") == only.holder).row(0, named=True)
    assert (row["employee_id"], row["org"], row["org_evidence"]) == (
        only.login,  # kept as written: 02999999
        only.org,
        [f"employee_id:{only.org}"],
    )


# --- 3: force-prefixed roles of an application no force claims -----------------------------------


def test_prefixed_roles_are_attributed_by_their_name_as_written(estate: Estate) -> None:
    roles = {(r.group, r.role, r.app) for r in estate.rows}
    got = (
        estate.analysis.groups.filter(_csv("source"))
        .select("group_id", "name", "description", "org", "org_evidence")
        .sort("group_id")
        .rows()
    )
    application = {"cad": "CAD", "duty": "Duty rosters"}
    want = sorted(
        (
            g,
            role,
            application[app],
            role_org(role),
            [f"name_prefix:{role_org(role)}"] if role_org(role) != "unattributed" else [],
        )
        for g, role, app in roles
    )
    assert got == want
    assert {w[3] for w in want} == {"wmp", "warks", "unattributed"}


def test_cross_force_roles_are_direct_member_findings(estate: Estate) -> None:
    got = set(
        estate.findings("cross-org-direct-member")
        .filter(_csv("group_id"))
        .select("account_id", "group_id")
        .iter_rows()
    )
    want = {(r.holder, r.group) for r in estate.rows if r.cross and r.enabled}
    assert got == want
    assert len(want) == 8
    # the application's roles are memberships: the app-role rule (Entra) never reports them
    assert estate.findings("cross-org-app-role").filter(_csv("group_id")).is_empty()


# --- 4: an application's own disabled state ------------------------------------------------------


def test_inactive_access_covers_disabled_logins_and_leavers(estate: Estate) -> None:
    involved = {r.holder for r in estate.rows}
    inactive = "inactive-cross-org-access"

    def found(analysis_findings: pl.DataFrame) -> set[str]:
        f = analysis_findings.filter(pl.col("rule_id") == inactive)
        return {a for a in f["account_id"].to_list() if a in involved}

    baseline = found(estate.baseline.findings)
    want = baseline | {
        r.holder for r in estate.rows if r.cross and (not r.enabled or not _enabled(estate, r))
    }
    assert found(estate.analysis.findings) == want
    disabled_logins = {r.holder for r in estate.rows if r.cross and not r.enabled}
    leavers = {r.holder for r in estate.rows if r.cross and r.account and not _enabled(estate, r)}
    assert (len(disabled_logins), len(leavers), len(baseline)) == (3, 2, 0)
    details = dict(
        estate.findings(inactive)
        .filter(pl.col("account_id").is_in(sorted(disabled_logins | leavers)))
        .select("account_id", "detail")
        .iter_rows()
    )
    assert {details[a] for a in leavers} == {
        "disabled, reaches 1 group(s), role(s) or app(s) of the other force"
    }
    assert {details[a] for a in disabled_logins - leavers} == {
        "login disabled in the application, reaches 1 group(s), role(s) or app(s) of the "
        "other force"
    }


def test_a_disabled_login_is_not_active_cross_force_access(estate: Estate) -> None:
    direct = set(
        estate.findings("cross-org-direct-member").select("account_id", "group_id").iter_rows()
    )
    disabled = {(r.holder, r.group) for r in estate.rows if r.cross and not r.enabled}
    assert disabled and not disabled & direct
    effective = estate.analysis.effective.select(pl.col("account_id", "group_id").cast(pl.String))
    assert not disabled & set(effective.iter_rows())


# --- unattributed -------------------------------------------------------------------------------


def test_unclaimed_logins_and_roles_are_unattributed_with_access(estate: Estate) -> None:
    f = estate.findings("unattributed-with-access")
    got = set(
        f.filter(_csv("account_id") | _csv("group_id")).select("account_id", "group_id").rows()
    )
    want: set[tuple[str | None, str | None]] = {
        (r.holder, None) for r in estate.rows if not r.account and r.org == "unattributed"
    }
    want |= {(None, r.group) for r in estate.rows if role_org(r.role) == "unattributed"}
    assert got == want
    assert len(want) == 2


# --- 6: the README and the rules agree -----------------------------------------------------------


def test_readme_names_the_rule_that_reports_application_roles() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z-]+)`: (.*) \| \w+ \|$", readme, re.M))
    assert "export" in rows["cross-org-direct-member"]
    assert "reported by `cross-org-direct-member`" in rows["cross-org-app-role"]
    assert "disabled" in rows["inactive-cross-org-access"]
