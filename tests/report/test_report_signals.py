"""The report says which sources do not record last sign-ins (dormancy unknown), beside
completeness and without making the run incomplete; a manifest that does not say is shown as
not stated."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from support.htmltree import parse
from support.report_sample import MANIFEST, XSS_SCRIPT, make_context

from accessaudit.report.html import render_html

ENTRA: dict[str, Any] = {
    **copy.deepcopy(MANIFEST["sources"][0]),
    "name": "alliance-entra",
    "source": "entra:t",
    "kind": "entra",
    "signals": {
        "last_logon": {"recorded": False, "detail": "sign_in_activity = false: " + XSS_SCRIPT}
    },
}


def manifest(*sources: dict[str, Any]) -> dict[str, Any]:
    m = copy.deepcopy(MANIFEST)
    m["sources"] = [copy.deepcopy(s) for s in sources]
    return m


def recorded(source: dict[str, Any]) -> dict[str, Any]:
    signals = {"last_logon": {"recorded": True, "detail": "lastLogonTimestamp"}}
    return {**source, "signals": signals}


def test_sources_without_the_signal_are_listed_and_the_run_stays_complete() -> None:
    ctx = make_context(manifest(recorded(MANIFEST["sources"][0]), ENTRA))

    assert ctx["complete"] is True
    assert [s["name"] for s in ctx["dormancy_unknown"]] == ["alliance-entra"]
    ad, entra = ctx["sources"]
    assert ad["last_logon"] == {"recorded": True, "detail": "lastLogonTimestamp"}
    assert entra["last_logon"]["recorded"] is False


def test_a_manifest_without_signals_claims_nothing() -> None:
    ctx = make_context(manifest(MANIFEST["sources"][0]))

    assert ctx["dormancy_unknown"] == []
    assert ctx["sources"][0]["last_logon"] is None


def test_html_shows_the_banner_and_the_column_escaped(tmp_path: Path) -> None:
    ctx = make_context(manifest(recorded(MANIFEST["sources"][0]), ENTRA))
    html = render_html(ctx, tmp_path / "r.html").read_text()

    doc = parse(html)
    assert "banner-complete" in doc.by_id("completeness").classes()
    text = " ".join(doc.by_id("dormancy-unknown").text().split())
    assert "Dormancy unknown." in text and "alliance-entra" in text
    assert "sign_in_activity = false: " + XSS_SCRIPT in text
    assert "<script>window.__xss" not in html  # escaped, never markup
    cells = [" ".join(c.text().split()) for c in doc.find_all("td", "signal")]
    assert cells[0].startswith("recorded")
    assert cells[1].startswith("not recorded") and cells[1].endswith("dormancy unknown")


def test_no_banner_when_every_source_records_sign_ins(tmp_path: Path) -> None:
    ctx = make_context(manifest(recorded(MANIFEST["sources"][0])))
    html = render_html(ctx, tmp_path / "r.html").read_text()

    assert 'id="dormancy-unknown"' not in html


def test_an_application_export_is_in_the_table_not_the_banner(tmp_path: Path) -> None:
    """An export never records sign-ins: said once, in the sources table."""
    export = {
        **copy.deepcopy(MANIFEST["sources"][0]),
        "name": "niche",
        "source": "csv:niche",
        "kind": "csv",
        "signals": {"last_logon": {"recorded": False, "detail": "no last-logon column"}},
    }
    ctx = make_context(manifest(recorded(MANIFEST["sources"][0]), export))
    html = render_html(ctx, tmp_path / "r.html").read_text()

    assert ctx["dormancy_unknown"] == []
    assert ctx["sources"][1]["last_logon"]["recorded"] is False
    assert 'id="dormancy-unknown"' not in html
    cells = [" ".join(c.text().split()) for c in parse(html).find_all("td", "signal")]
    assert cells[1] == "not recorded no last-logon column: dormancy unknown"
