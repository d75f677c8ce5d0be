"""The report's attribution-coverage section: the survey's figures, counted here from the
report sample's rows, rendered in the evidence view."""

from __future__ import annotations

import polars as pl
from support.htmltree import parse
from support.report_sample import frames, make_context

from accessaudit.analysis.survey import attribution_coverage
from accessaudit.model import GRANTS_SCHEMA, GROUP_CLOSURE_SCHEMA, MEMBERSHIPS_SCHEMA, conform
from accessaudit.report.html import render_string


def coverage() -> dict[str, dict[str, object]]:
    f = frames()
    memberships = conform(
        pl.DataFrame(
            {
                "source": ["ad", "ad"],
                "group_id": ["g3", "g1"],
                "member_id": ["a1", "a3"],
                "member_kind": ["account", "account"],
                "via": ["member", "member"],
            }
        ),
        MEMBERSHIPS_SCHEMA,
    )
    empty_grants = pl.DataFrame(schema=GRANTS_SCHEMA)
    closure = pl.DataFrame(schema=GROUP_CLOSURE_SCHEMA)
    return attribution_coverage(f["accounts"], f["groups"], memberships, empty_grants, closure)


def test_coverage_figures_from_the_evidence() -> None:
    accounts = coverage()["accounts"]
    # a1 (company+upn wmp), a2 (company warks), a3 (ou wmp), a4 (company warks + upn wmp:
    # conflicting, wmp by precedence); a1 and a3 hold a membership
    assert accounts["totals"] == {
        "objects": 4, "with_access": 2, "attributed": 3, "shared": 0, "unattributed": 0,
        "conflicting": 1, "attributed_with_access": 2, "shared_with_access": 0,
        "unattributed_with_access": 0, "conflicting_with_access": 0,
    }  # fmt: skip
    assert accounts["signals"] == [
        {"signal": "company", "fires": 3, "decides": 2, "fires_with_access": 1,
         "decides_with_access": 1},
        {"signal": "upn_suffix", "fires": 2, "decides": 2, "fires_with_access": 1,
         "decides_with_access": 1},
        {"signal": "ou", "fires": 1, "decides": 1, "fires_with_access": 1,
         "decides_with_access": 1},
    ]  # fmt: skip


def test_coverage_section_in_the_evidence_view() -> None:
    doc = parse(render_string(make_context(coverage=coverage())))
    section = doc.by_id("coverage")
    view = doc.by_id("view-evidence")
    assert any(n is section for n in view.iter())
    totals = doc.by_id("coverage-accounts").text()
    assert "In all4 (2 holding access)" in totals.replace("\n", "")
    assert "Conflicting1 (0)" in totals.replace("\n", "")
    rows = [
        [td.text().strip() for td in tr.find_all("td")]
        for tr in doc.by_id("coverage-accounts-signals").find_all("tr")[1:]
    ]
    assert rows == [
        ["company", "3", "2", "1", "1"],
        ["upn_suffix", "2", "2", "1", "1"],
        ["ou", "1", "1", "1", "1"],
    ]


def test_no_coverage_no_section() -> None:
    doc = parse(render_string(make_context()))
    assert not [n for n in doc.iter() if n.attrs.get("id") == "coverage"]
