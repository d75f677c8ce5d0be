"""Rule evaluation at scale: each view and rule alone, then ways of collecting all the rules.

    python benchmarks/pipeline.py --sizes 1000000 --snapshot /tmp/snap   # makes the snapshot
    python benchmarks/evaluate_variants.py /tmp/snap/sample-1000000-seed7
    python benchmarks/evaluate_variants.py --smoke                        # 10k, generated

Loads a stored snapshot (the four collected tables as Parquet, as ``pipeline.py --snapshot``
writes them), attributes it and expands the memberships, then prints the seconds of each view
and each rule collected alone, and, twice and alternated, the seconds and memory of collecting
all rules: one at a time (what ``engine.evaluate`` does), one ``pl.collect_all``, one
``collect_all`` without common-subplan elimination, and one on the streaming engine. Memory is
the RSS sampled every 10 ms above the RSS when the variant starts. Nothing is asserted.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import click
import polars as pl

from accessaudit.analysis.attribution import attribute_accounts, attribute_groups
from accessaudit.analysis.expand import effective_memberships, group_closure
from accessaudit.engine.evaluate import build_views, rule_plan
from accessaudit.engine.rulefile import load_rules
from accessaudit.pipeline.run import demo_settings, rule_overrides
from accessaudit.sample.directory import DEFAULT_NOW, generate

TABLES = ("accounts", "groups", "memberships", "grants")


def _rss_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


def _measure(run: Callable[[], list[pl.DataFrame]]) -> tuple[float, int, int]:
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    base, t0 = _rss_mb(), time.perf_counter()
    frames = run()
    seconds = time.perf_counter() - t0
    stop.set()
    sampler.join()
    return seconds, peak[0] - base, sum(f.height for f in frames)


@click.command()
@click.argument("snapshot", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option("--smoke", is_flag=True, help="Generate a 10,000-account sample instead.")
def main(snapshot: Path | None, smoke: bool) -> None:
    """Time each view and rule, then four ways of collecting all rules."""
    if snapshot is not None:
        t = {n: pl.read_parquet(snapshot / f"{n}.parquet") for n in TABLES}
    elif smoke:
        t = dict(generate(seed=7, accounts=10_000, now=DEFAULT_NOW).tables)
    else:
        raise click.UsageError("give a snapshot folder or --smoke")
    accounts = t["accounts"].height
    settings = demo_settings(Path(tempfile.gettempdir()) / "unused", accounts=accounts, seed=7)
    acc = attribute_accounts(t["accounts"], settings)
    grp = attribute_groups(t["groups"], acc, settings)
    closure = group_closure(t["memberships"])
    eff = effective_memberships(t["memberships"], closure)
    rules = load_rules()
    overrides = rule_overrides(settings, rules)
    views = build_views(
        acc, grp, t["memberships"], t["grants"], closure=closure, effective=eff, as_of=DEFAULT_NOW
    )
    click.echo(f"{accounts:,} accounts, {eff.height:,} effective memberships\n")
    for name, view in views.items():
        t0 = time.perf_counter()
        rows = view.select(pl.len()).collect().item()
        click.echo(f"view {name:<30} {time.perf_counter() - t0:7.2f} s {rows:>12,} rows")
    ctx: pl.SQLContext[object] = pl.SQLContext(frames=dict(views))

    def plans() -> list[pl.LazyFrame]:
        return [rule_plan(r, ctx, overrides.get(r.id)) for r in rules]

    for rule, plan in zip(rules, plans(), strict=True):
        t0 = time.perf_counter()
        rows = plan.collect().height
        click.echo(f"rule {rule.id:<30} {time.perf_counter() - t0:7.2f} s {rows:>12,} findings")
    no_cse = pl.QueryOptFlags(comm_subplan_elim=False)
    variants: dict[str, Callable[[], list[pl.DataFrame]]] = {
        "one at a time": lambda: [p.collect() for p in plans()],
        "collect_all": lambda: pl.collect_all(plans()),
        "collect_all, no CSE": lambda: pl.collect_all(plans(), optimizations=no_cse),
        "collect_all, streaming": lambda: pl.collect_all(plans(), engine="streaming"),
    }
    click.echo("")
    for name, run in [*variants.items(), *variants.items()]:
        seconds, grew, rows = _measure(run)
        click.echo(f"{name:<24} {seconds:7.2f} s  +{grew:>6,} MB  {rows:,} findings")


if __name__ == "__main__":
    main()
