"""Dormancy only where the source records sign-ins: Entra without signInActivity (not asked for,
or refused for a tenant without Entra ID P1) calls nobody dormant and disables nobody.

A tenant built here (users who signed in days ago, long ago or never, created long ago or
lately, enabled or not, with and without cross-force access) is served by the emulator and
collected by the real connector; the truth (who is disabled or dormant and reaches the other
force, and which of them the plan may disable) is computed below by plain loops over what was
built."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from rich.console import Console
from support.entra_data import CLIENT_ID, ROLES, SECRET, TENANT, oid
from support.fixtures import NOW

from accessaudit.cli.output import print_summary
from accessaudit.config.settings import Settings
from accessaudit.connectors.entra.collect import collect
from accessaudit.graphemu import GraphEmulator, Tenant
from accessaudit.graphemu.tenant import iso
from accessaudit.model import LAST_LOGON, SourceCollection
from accessaudit.pipeline.analyse import Analysis, analyse
from accessaudit.pipeline.collect import combine
from accessaudit.pipeline.run import run_audit
from accessaudit.store.runs import MANIFEST

RULE = "inactive-cross-org-access"
DORMANT_DAYS = 90
DOMAIN = "alliance.onmicrosoft.com"
#: force -> its UPN suffix
FORCES = {"wmp": "wm.example", "warks": "wk.example"}
#: the group each force's staff belong to
HOME = {"wmp": "WMP-Team", "warks": "WARKS-Team"}
OTHER = {"wmp": "WARKS-Team", "warks": "WMP-Team"}


@dataclass(frozen=True)
class User:
    name: str
    force: str
    signed_in: int | None  # days before NOW of the last sign-in; None: never signed in
    created: int  # days before NOW the account was created
    enabled: bool = True
    cross: bool = True  # also a member of the other force's group
    non_interactive: bool = False  # the sign-in was non-interactive (a token refresh)


USERS = (
    User("w-recent", "wmp", signed_in=3, created=2107),
    User("w-refresh", "wmp", signed_in=12, created=2107, non_interactive=True),
    User("w-dormant", "wmp", signed_in=200, created=2107),
    User("w-never-old", "wmp", signed_in=None, created=2107),
    User("w-never-new", "wmp", signed_in=None, created=10),
    User("w-disabled", "wmp", signed_in=400, created=2107, enabled=False),
    User("w-disabled-never", "wmp", signed_in=None, created=2107, enabled=False),
    User("w-home-dormant", "wmp", signed_in=300, created=2107, cross=False),
    User("k-never-old", "warks", signed_in=None, created=1500),
    User("k-recent", "warks", signed_in=1, created=1500),
    User("k-threshold", "warks", signed_in=DORMANT_DAYS, created=1500),
)


def _when(days: int) -> str | None:
    return iso(NOW - timedelta(days=days))


def build(emu: GraphEmulator, *, premium: bool = True) -> Tenant:
    t = emu.add_tenant(Tenant(TENANT, domain=DOMAIN, premium=premium))
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=ROLES)
    for group in HOME.values():
        t.add_group(id=oid(group), displayName=group)
    for u in USERS:
        props: dict[str, Any] = {
            "userPrincipalName": f"{u.name}@{FORCES[u.force]}",
            "displayName": u.name,
            "mailNickname": u.name,
            "userType": "Member",
            "accountEnabled": u.enabled,
            "createdDateTime": _when(u.created),
        }
        if u.signed_in is not None:
            kind = "lastNonInteractive" if u.non_interactive else "last"
            props["signInActivity"] = {f"{kind}SignInDateTime": _when(u.signed_in)}
        t.add_user(id=oid(u.name), **props)
        t.add_member(oid(HOME[u.force]), oid(u.name))
        if u.cross:
            t.add_member(oid(OTHER[u.force]), oid(u.name))
    return t


def truth(*, sign_ins: bool) -> tuple[set[str], set[str]]:
    """The accounts the rule must report (disabled, or known dormant, and reaching the other
    force) and those among them the plan may disable (enabled, so known dormant)."""
    inactive, disable = set(), set()
    for u in USERS:
        if not u.cross:
            continue
        last = u.signed_in if u.signed_in is not None else u.created
        dormant = sign_ins and last >= DORMANT_DAYS
        if not u.enabled or dormant:
            inactive.add(oid(u.name))
        if u.enabled and dormant:
            disable.add(oid(u.name))
    return inactive, disable


def settings(data_dir: Path | None = None) -> Settings:
    orgs = [
        {
            "id": org,
            "name": org,
            "match": {"name_prefix": [f"{org.upper()}-"], "upn_suffix": [f"@{d}"]},
        }
        for org, d in FORCES.items()
    ]
    return Settings.model_validate(
        {
            "audit": {"dormant_days": DORMANT_DAYS, "data_dir": str(data_dir or "data")},
            "organisations": orgs,
            "sources": [{"kind": "sample", "name": "s"}],
        }
    )


def analysed(result: SourceCollection, rules) -> Analysis:
    return analyse(combine([("entra", result)]), settings(), rules, as_of=NOW)


def disabled_by_plan(analysis: Analysis) -> set[str]:
    """The accounts an action's PowerShell or Graph request disables."""
    actions = analysis.actions.filter(
        pl.col("powershell").str.contains("AccountEnabled:$false", literal=True)
        | pl.col("graph").str.contains('"accountEnabled": false', literal=True).fill_null(False)
    )
    return set(actions["member_id"])


def test_without_sign_in_activity_nobody_is_dormant_and_nobody_disabled(emu, make_cfg, rules):
    build(emu)

    result = collect(make_cfg(sign_in_activity=False))
    analysis = analysed(result, rules)

    assert result.complete  # dormancy unknown is not an incomplete collection
    assert result.signals[LAST_LOGON].recorded is False
    assert result.signals[LAST_LOGON].detail == "sign_in_activity = false: signInActivity not read"
    accounts = result.tables["accounts"]
    assert accounts["activity_tracked"].to_list() == [False] * len(USERS)
    inactive, disable = truth(sign_ins=False)
    assert disable == set()
    found = analysis.findings.filter(pl.col("rule_id") == RULE)
    assert set(found["account_id"]) == inactive  # the disabled ones only: that is recorded
    assert all(d == "disabled" for d in found["detail"].str.split(",").list.first())
    assert disabled_by_plan(analysis) == set()


def test_with_sign_in_activity_dormancy_is_exactly_the_truth(emu, make_cfg, rules):
    build(emu)

    result = collect(make_cfg(sign_in_activity=True))
    analysis = analysed(result, rules)

    assert result.complete
    assert result.signals[LAST_LOGON].recorded is True
    assert set(result.tables["accounts"]["activity_tracked"]) == {True}
    inactive, disable = truth(sign_ins=True)
    assert len(inactive) == 6 and len(disable) == 4  # the truth is not trivially empty
    found = analysis.findings.filter(pl.col("rule_id") == RULE)
    assert set(found["account_id"]) == inactive
    assert disabled_by_plan(analysis) == disable
    detail = dict(found.select("account_id", "detail").iter_rows())
    assert detail[oid("w-never-old")].startswith("dormant for 2107 days")
    assert detail[oid("k-threshold")].startswith(f"dormant for {DORMANT_DAYS} days")


def test_tenant_without_p1_calls_nobody_dormant(emu, make_cfg, rules):
    """signInActivity answers 403 Authentication_RequestFromNonPremiumTenantOrB2CTenant: the
    users are still collected, without sign-ins, and nobody is "never signed in"."""
    build(emu, premium=False)

    result = collect(make_cfg(sign_in_activity=True))
    analysis = analysed(result, rules)

    units = {u.name: u for u in result.units}
    assert units["users"].complete and units["users"].count == len(USERS)
    assert not units["sign-in-activity"].complete  # asked for and not read: said so
    signal = result.signals[LAST_LOGON]
    assert signal.recorded is False
    assert "Authentication_RequestFromNonPremiumTenantOrB2CTenant" in signal.detail
    assert set(result.tables["accounts"]["activity_tracked"]) == {False}
    inactive, _ = truth(sign_ins=False)
    found = analysis.findings.filter(pl.col("rule_id") == RULE)
    assert set(found["account_id"]) == inactive
    assert disabled_by_plan(analysis) == set()


@pytest.mark.parametrize("sign_in", [False, True])
def test_manifest_and_report_say_which_sources_lack_the_signal(emu, make_cfg, tmp_path, sign_in):
    build(emu)
    source = make_cfg(sign_in_activity=sign_in)
    run_settings = settings(tmp_path / "data").model_copy(update={"sources": [source]})

    result = run_audit(run_settings, now=NOW)

    manifest = json.loads((result.run.path / MANIFEST).read_text())
    assert manifest["complete"] is True
    [entry] = manifest["sources"]
    assert entry["signals"][LAST_LOGON]["recorded"] is sign_in
    html = (result.run.path / "report.html").read_text()
    assert ('id="dormancy-unknown"' in html) is not sign_in
    if not sign_in:
        assert "sign_in_activity = false: signInActivity not read" in html
    inactive, _ = truth(sign_ins=sign_in)
    assert manifest["summary"]["by_rule"].get(RULE, 0) == len(inactive)
    out = io.StringIO()
    print_summary(result, Console(file=out, markup=False, highlight=False, soft_wrap=True))
    note = "last sign-in not recorded (sign_in_activity = false: signInActivity not read)"
    assert (note in out.getvalue()) is not sign_in


def test_a_delta_round_keeps_no_stale_sign_ins(emu, make_cfg, rules):
    """A deltaLink stored by a run that read signInActivity, applied by one that does not:
    the sign-ins the earlier run read are not this run's evidence."""
    t = build(emu)
    first = collect(make_cfg(sign_in_activity=True), now=NOW)
    assert set(first.tables["accounts"]["activity_tracked"]) == {True}
    t.add_user(id=oid("w-new"), userPrincipalName="w-new@wm.example", accountEnabled=True)

    second = collect(
        make_cfg(sign_in_activity=False), state=first.state, previous=first.tables, now=NOW
    )

    units = {u.name: u.detail for u in second.units}
    assert units["users"].startswith("delta:")
    accounts = second.tables["accounts"]
    assert accounts.height == len(USERS) + 1
    assert set(accounts["activity_tracked"]) == {False}
    assert accounts["last_logon"].null_count() == accounts.height
    assert second.signals[LAST_LOGON].recorded is False
