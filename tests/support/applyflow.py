"""Shared steps of the apply tests: audit a server into a run, plan it, open the writer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from accessaudit.analysis.expand import effective_memberships, group_closure
from accessaudit.connectors.ldap.collect import collect
from accessaudit.engine.rulefile import load_rules
from accessaudit.pipeline.analyse import analyse
from accessaudit.pipeline.demo import demo_settings
from accessaudit.pipeline.planning import plan_run
from accessaudit.pipeline.run import run_audit
from accessaudit.remediation.apply.ldap import LdapDirectory
from accessaudit.remediation.planfile import save_plan
from accessaudit.store.runs import RunInfo
from support.apply_servers import ApplyDC


def audit(seeded: ApplyDC, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> RunInfo:
    settings = demo_settings(data_dir).model_copy(update={"sources": [seeded.source(monkeypatch)]})
    settings = settings.model_copy(
        update={"report": settings.report.model_copy(update={"formats": ["json"]})}
    )
    return run_audit(settings, now=seeded.sample.now).run


def make_plan(
    seeded: ApplyDC, monkeypatch: pytest.MonkeyPatch, folder: Path
) -> tuple[dict[str, Any], Path]:
    run = audit(seeded, monkeypatch, folder / "data")
    doc = plan_run(run, demo_settings(folder / "data"), load_rules())
    path = save_plan(doc, folder / "plan.json")
    return doc, path


def writer(seeded: ApplyDC, monkeypatch: pytest.MonkeyPatch) -> LdapDirectory:
    cfg = seeded.source(monkeypatch, write=True)
    return LdapDirectory.open(cfg, cfg.password.resolve() if cfg.password else None)


def snapshot(seeded: ApplyDC, monkeypatch: pytest.MonkeyPatch) -> dict[str, pl.DataFrame]:
    """The directory as collected now, analysed (findings, effective memberships, orgs)."""
    got = collect(seeded.source(monkeypatch), now=seeded.sample.now)
    assert got.complete
    tables = {n: got.table(n) for n in ("accounts", "groups", "memberships", "grants")}
    a = analyse(tables, demo_settings(Path("/nonexistent")), load_rules(), as_of=seeded.sample.now)
    eff = effective_memberships(a.memberships, group_closure(a.memberships))
    return {
        "memberships": a.memberships,
        "findings": a.findings,
        "effective": eff,
        "accounts": a.accounts,
        "groups": a.groups,
    }


def edges(t: dict[str, pl.DataFrame]) -> set[tuple[str, str]]:
    return set(t["memberships"].select("group_id", "member_id").iter_rows())


def owners(t: dict[str, pl.DataFrame]) -> set[tuple[str, str]]:
    """(group, managedBy) pairs, by objectGUID."""
    g = t["groups"].filter(pl.col("managed_by").is_not_null())
    return set(g.select("group_id", "managed_by").iter_rows())


def managers(t: dict[str, pl.DataFrame]) -> set[tuple[str, str]]:
    a = t["accounts"].filter(pl.col("manager_id").is_not_null())
    return set(a.select("account_id", "manager_id").iter_rows())


def sid_history(t: dict[str, pl.DataFrame]) -> set[tuple[str, str]]:
    a = t["accounts"].select("account_id", "sid_history").explode("sid_history")
    return set(a.drop_nulls().iter_rows())


def same_force(t: dict[str, pl.DataFrame]) -> set[tuple[str, str]]:
    a = t["accounts"].select("account_id", a_org="org")
    g = t["groups"].select("group_id", g_org="org")
    df = (
        t["effective"]
        .select(pl.col("account_id", "group_id").cast(pl.String))  # ids may be Categorical
        .join(a, on="account_id")
        .join(g, on="group_id")
        .filter((pl.col("a_org") == pl.col("g_org")) & pl.col("a_org").is_in(["wmp", "warks"]))
    )
    return set(df.select("account_id", "group_id").iter_rows())
