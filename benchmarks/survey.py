"""``accessaudit survey`` at size: the legacy sample surveyed with a configuration of OU matchers.

Usage (from the repository root, with the project's virtualenv active)::

    python benchmarks/survey.py                      # 1,000,000 accounts (target: survey < 30 s)
    python benchmarks/survey.py --accounts 200000
    python benchmarks/survey.py --smoke              # 20,000 accounts: what CI runs

The sample is generated with ``legacy=True`` (``accessaudit.sample.legacy``: accounts in
``CN=Users``, a renamed OU, old staff numbers, a misspelt company ...); its generation is timed
apart, as the collection would be. Stages, each with wall and CPU seconds and peak RSS
(``measure.Meter``):

    survey     pipeline.survey.survey_document: attribution with the configuration as it is,
               the buckets of accounts and groups, the proposals (in rounds) and the figures
               once they are applied (a second attribution)
    json       the document as ``--json`` writes it
    toml       the proposals as ``--proposals`` writes them

So a fast wrong answer cannot pass, the result is checked against the generator's truth and
printed: accounts holding access attributed before and after the proposals, and the accounts the
proposals attribute to a force they do not belong to (must be 0). The load average is printed
too: on a shared machine wall time follows it, CPU time much less. Nothing here asserts on
timings.
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import click
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import Meter, machine, measured

from accessaudit.analysis.attribution import attribute_accounts
from accessaudit.config.settings import Settings, parse_settings
from accessaudit.config.survey import AddedMatchers, fragment, merge_matchers
from accessaudit.pipeline.survey import survey_document
from accessaudit.sample.directory import generate

SMOKE_SIZE = 20_000
TARGET_SECONDS = 30


def ou_only(config: dict[str, Any]) -> Settings:
    orgs = []
    for o in config["organisations"]:
        match: dict[str, Any] = {"ou": o["match"]["ou"]}
        if o["match"].get("privileged_groups"):
            match["privileged_groups"] = True
        if o["id"] == "shared":
            match["owner"] = False
        orgs.append({"id": o["id"], "name": o["name"], "match": match})
    data = {"organisations": orgs, "sources": [{"kind": "sample", "name": "s", "host": "wmp"}]}
    return parse_settings(data, "", "benchmark")


def _share(doc: dict[str, Any]) -> float:
    t = doc["with_access"]
    return 1 - (doc["unattributed_with_access"] / t) if t else 1.0


def _wrong(tables: dict[str, pl.DataFrame], truth: pl.DataFrame, settings: Settings) -> int:
    after = attribute_accounts(tables["accounts"], settings, tables["grants"])
    judged = after.select("account_id", "org").join(truth, on="account_id", suffix="_true")
    right = (pl.col("org") == pl.col("org_true")) | (pl.col("org") == pl.col("alt_org"))
    return judged.filter((pl.col("org") != "unattributed") & ~right.fill_null(False)).height


@click.command()
@click.option("--accounts", default=1_000_000, show_default=True, help="Sample size.")
@click.option("--seed", default=7, show_default=True, help="Sample seed.")
@click.option("--smoke", is_flag=True, help=f"Just {SMOKE_SIZE:,} accounts (for CI).")
def main(accounts: int, seed: int, smoke: bool) -> None:
    """Time the survey of the legacy sample (see the module docstring)."""
    n = SMOKE_SIZE if smoke else accounts
    meter = Meter()
    print(f"survey benchmark: {n:,} accounts, seed {seed}; {machine()}; peak RSS: {meter.method}")
    with measured(meter) as gen:
        sample = generate(seed=seed, accounts=n, legacy=True)
    settings = ou_only(sample.config)
    rows = []
    with measured(meter) as m_survey:
        doc, proposals = survey_document(settings, sample.tables)
    rows.append(("survey", m_survey))
    with measured(meter) as m_json:
        text = json.dumps(doc, ensure_ascii=False, default=str)
    rows.append(("json", m_json))
    with measured(meter) as m_toml:
        toml = fragment([(p.added(), []) for p in proposals], "proposals")
    rows.append(("toml", m_toml))
    load = os.getloadavg()[0]
    print(f"generate (not counted): {gen.seconds:.1f} s")
    print(f"{'stage':8} {'wall s':>8} {'cpu s':>8} {'peak MB':>8}")
    for name, m in rows:
        print(f"{name:8} {m.seconds:8.2f} {m.cpu:8.2f} {m.peak / 2**20:8.0f}")
    total = sum(m.seconds for _, m in rows)
    print(f"{'total':8} {total:8.2f} {sum(m.cpu for _, m in rows):8.2f}   load average {load:.1f}")
    print(f"json {len(text) / 2**20:.1f} MB, proposals {len(proposals)} ({len(toml)} bytes)")
    assert sample.attribution is not None
    added = [AddedMatchers.model_validate(m) for m in tomllib.loads(toml).get("matchers", [])]
    applied = settings.model_copy(
        update={"organisations": merge_matchers(settings.organisations, added)}
    )
    a = doc["accounts"]
    print(
        f"accounts holding access attributed: {_share(a['totals']):.2%} -> "
        f"{_share(a['after_proposals']):.2%}; "
        f"misattributed after the proposals: {_wrong(sample.tables, sample.attribution, applied)}"
    )
    cpu = sum(m.cpu for _, m in rows)
    verdict = "met" if total < TARGET_SECONDS else "NOT met"
    print(
        f"target: survey + json + toml under {TARGET_SECONDS} s wall: {verdict} ({total:.1f} s; "
        f"CPU {cpu:.1f} s at load average {load:.1f} on {os.cpu_count()} CPUs: an idle "
        "machine's wall time is at most about the CPU time)"
    )


if __name__ == "__main__":
    main()
