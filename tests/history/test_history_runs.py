"""History over five runs of a changing directory, one of them incomplete: exact statuses."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from support.fixtures import NOW
from support.history_runs import CLOUD_GROUPS, split, with_edges, without_edges, write

from accessaudit.engine.rulefile import Rule
from accessaudit.pipeline.result import RunResult
from accessaudit.sample.builder import Sample
from accessaudit.sample.directory import generate
from accessaudit.store.runs import read_table

DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def small() -> Sample:
    return generate(seed=7, accounts=1500, now=NOW)


def statuses(run: RunResult) -> dict[str, set[str]]:
    h = read_table(run.run, "findings_history")
    out: dict[str, set[str]] = {}
    for key, status in h.select("finding_key", "status").iter_rows():
        out.setdefault(status, set()).add(key)
    return out


def nonempty(expected: dict[str, set[str]]) -> dict[str, set[str]]:
    return {k: v for k, v in expected.items() if v}


def keys(run: RunResult) -> set[str]:
    return set(run.analysis.findings["finding_key"].to_list())


def direct_key(edge: tuple[str, str]) -> str:
    group, account = edge
    return f"cross-org-direct-member|{account}|{group}"


def pick_edges(run: RunResult) -> dict[str, Any]:
    """Cross-force direct memberships of accounts that have exactly one finding."""
    f = run.analysis.findings
    lonely = f.group_by("account_id").len().filter(pl.col("len") == 1)["account_id"].implode()
    groups = run.analysis.groups.select("group_id", "source", "name")
    direct = (
        f.filter(
            (pl.col("rule_id") == "cross-org-direct-member") & pl.col("account_id").is_in(lonely)
        )
        .join(groups, on="group_id")
        .sort("finding_key")
    )
    ad = direct.filter(pl.col("source") == "ad:alliance.local")
    cloud = direct.filter(pl.col("source") != "ad:alliance.local")
    assert ad.height >= 3 and cloud.height >= 1
    edge = lambda r: (r["group_id"], r["account_id"])  # noqa: E731
    rows = ad.head(3).to_dicts()
    # a West Mercia account with no findings, added to a Warwickshire group with no findings
    accounts = run.analysis.accounts
    quiet = accounts.filter(
        (pl.col("org") == "wmp")
        & (pl.col("kind") == "user")
        & pl.col("enabled")
        & ~pl.col("account_id").is_in(f["account_id"].drop_nulls().implode())
    ).sort("account_id")
    target = run.analysis.groups.filter(pl.col("name") == "WARKS-DEPT-CID")["group_id"][0]
    return {
        "E1": edge(rows[0]),
        "E2": edge(rows[1]),
        "E3": edge(rows[2]),
        "C1": edge(cloud.to_dicts()[0]),
        "N1": (target, quiet["account_id"][0]),
    }


def test_five_runs_exact_statuses(small: Sample, rules: list[Rule], tmp_path: Path) -> None:
    data = tmp_path / "data"
    base = split(small)
    r1 = write(data, base, rules, NOW)
    e = pick_edges(r1)
    k1 = keys(r1)
    assert statuses(r1) == {"new": k1}
    assert r1.run.manifest["summary"]["changes"]["new"] == len(k1)

    # run 2: three cross-force members removed (two AD, one cloud), one added
    t2 = with_edges(without_edges(base, [e["E1"], e["E2"], e["C1"]]), [e["N1"]])
    r2 = write(data, t2, rules, NOW + 7 * DAY)
    k2 = keys(r2)
    s2 = statuses(r2)
    assert s2 == nonempty({"new": k2 - k1, "persisting": k1 & k2, "resolved": k1 - k2})
    assert {direct_key(e[x]) for x in ("E1", "E2", "C1")} <= s2["resolved"]
    assert direct_key(e["N1"]) in s2["new"]

    # run 3: the cloud source is incomplete (one group's members missing); E1 is back;
    # E3 is removed. An incomplete run resolves nothing.
    cloud_ids = r1.analysis.groups.filter(pl.col("name") == CLOUD_GROUPS[1])["group_id"]
    t3 = without_edges(with_edges(t2, [e["E1"]]), [e["E3"]])
    t3_partial = dict(t3)
    t3_partial["memberships"] = t3["memberships"].filter(
        ~pl.col("group_id").is_in(cloud_ids.implode())
    )
    r3 = write(data, t3_partial, rules, NOW + 14 * DAY, cloud_complete=False)
    assert not r3.complete
    k3 = keys(r3)
    s3 = statuses(r3)
    assert "resolved" not in s3
    gone_since_1 = k1 - k2
    assert s3 == nonempty(
        {
            "new": k3 - k1 - k2,
            "persisting": k3 & k2,
            "regressed": k3 & gone_since_1,
            "unknown": k2 - k3,
            "closed": gone_since_1 - k3,
        }
    )
    assert direct_key(e["E1"]) in s3["regressed"]
    assert direct_key(e["E3"]) in s3["unknown"]
    in_cloud = r2.analysis.findings.filter(pl.col("group_id").is_in(cloud_ids.implode()))
    missing_cloud = (k2 - k3) & set(in_cloud["finding_key"].to_list())
    assert missing_cloud and missing_cloud <= s3["unknown"]
    assert r3.run.manifest["summary"]["changes"]["resolved"] == 0

    # run 4: complete again, the cloud members are back: they persist (never proven gone).
    # E3 is still absent, but the previous run was incomplete: still unknown.
    r4 = write(data, t3, rules, NOW + 21 * DAY)
    k4 = keys(r4)
    s4 = statuses(r4)
    assert k4 == k3 | missing_cloud
    assert s4 == nonempty(
        {
            "persisting": k4,
            "unknown": (k2 - k3) - missing_cloud,
            "closed": gone_since_1 - k3,
        }
    )
    assert direct_key(e["E3"]) in s4["unknown"]

    # run 5: two complete runs in a row without E3: now it is resolved
    r5 = write(data, t3, rules, NOW + 28 * DAY)
    s5 = statuses(r5)
    assert s5 == nonempty(
        {
            "persisting": k4,
            "resolved": (k2 - k3) - missing_cloud,
            "closed": gone_since_1 - k3,
        }
    )

    # first / last seen and the run that resolved it, per key
    h = read_table(r5.run, "findings_history")
    row = {r["finding_key"]: r for r in h.iter_rows(named=True)}
    e1, e3, n1 = (row[direct_key(e[x])] for x in ("E1", "E3", "N1"))
    assert (e1["first_seen"], e1["last_seen"], e1["resolved_run"]) == (
        NOW,
        NOW + 28 * DAY,
        r2.run.run_id,
    )
    assert (e3["first_seen"], e3["last_seen"], e3["resolved_run"], e3["status"]) == (
        NOW,
        NOW + 7 * DAY,
        r5.run.run_id,
        "resolved",
    )
    assert (n1["first_seen_run"], n1["last_seen_run"]) == (r2.run.run_id, r5.run.run_id)
    assert e3["sources"] == ["ad:alliance.local"]
    c1 = row[direct_key(e["C1"])]
    assert c1["status"] == "closed" and c1["sources"] == ["ad:alliance.local", "entra:tenant-1"]
    # the summaries the trend is drawn from (exact, for this seed and these edits)
    changes = [
        {k: v for k, v in r.run.manifest["summary"]["changes"].items() if v}
        for r in (r1, r2, r3, r4, r5)
    ]
    n = len(k1)  # the sample's own findings; the edits' effects are exact whatever n is
    m = len(missing_cloud)  # the cloud group's findings the incomplete run 3 did not see
    assert changes == [
        {"new": n},
        {"new": 4, "persisting": n - 3, "resolved": 3},
        {"persisting": n - m, "regressed": 1, "unknown": 1 + m, "closed": 2},
        {"persisting": n + 1, "unknown": 1, "closed": 2},
        {"persisting": n + 1, "resolved": 1, "closed": 2},
    ]
