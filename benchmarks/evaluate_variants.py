"""Rule evaluation at scale: each view and rule alone, then ways of collecting all the rules.

    python benchmarks/pipeline.py --sizes 1000000 --snapshot /tmp/snap   # makes the snapshot
    python benchmarks/evaluate_variants.py /tmp/snap/sample-1000000-seed7
    python benchmarks/evaluate_variants.py --smoke                        # 10k, generated

Loads a stored snapshot (the four collected tables as Parquet, as ``pipeline.py --snapshot``
writes them), attributes it and expands the memberships, then prints the seconds of each view
and each rule collected alone, and, twice and alternated, the seconds and memory of collecting
all rules: one at a time (what ``engine.evaluate`` does), one ``pl.collect_all``, one
``collect_all`` without common-subplan elimination, and one on the streaming engine. Memory
(*+MB*) is the variant's peak RSS above the RSS it began with (``measure.Meter``: the kernel's
high-water mark, reset per variant). Nothing is asserted.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import click
import polars as pl
from measure import MB, Meter, machine, markdown_table, measured, timed

from accessaudit.analysis.attribution import attribute_accounts, attribute_groups
from accessaudit.analysis.expand import effective_memberships, group_closure
from accessaudit.config.settings import Settings
from accessaudit.engine.evaluate import build_views, rule_plan
from accessaudit.engine.rulefile import Rule, load_rules
from accessaudit.pipeline.analyse import rule_overrides
from accessaudit.pipeline.demo import demo_settings
from accessaudit.sample.directory import DEFAULT_NOW, generate

TABLES = ("accounts", "groups", "memberships", "grants")


def _views(t: Mapping[str, pl.DataFrame]) -> tuple[dict[str, pl.LazyFrame], int, Settings]:
    """The rule views of the four tables, attributed and expanded; (views, effective rows,
    settings)."""
    accounts = t["accounts"].height
    settings = demo_settings(Path(tempfile.gettempdir()) / "unused", accounts=accounts, seed=7)
    acc = attribute_accounts(t["accounts"], settings, t["grants"])
    grp = attribute_groups(t["groups"], acc, settings)
    closure = group_closure(t["memberships"])
    eff = effective_memberships(t["memberships"], closure)
    views = build_views(
        acc, grp, t["memberships"], t["grants"], closure=closure, effective=eff, as_of=DEFAULT_NOW
    )
    return dict(views), eff.height, settings


def _views_table(views: Mapping[str, pl.LazyFrame]) -> str:
    """Seconds and rows of each view collected alone."""
    rows = []
    for name, view in views.items():
        with timed() as t:
            n = view.select(pl.len()).collect().item()
        rows.append((name, f"{t.seconds:.2f}", f"{n:,}"))
    return markdown_table(("view", "seconds", "rows"), rows, right=(1, 2))


def _rules_table(rules: list[Rule], plans: list[pl.LazyFrame]) -> str:
    """Seconds and findings of each rule collected alone."""
    rows = []
    for rule, plan in zip(rules, plans, strict=True):
        with timed() as t:
            n = plan.collect().height
        rows.append((rule.id, f"{t.seconds:.2f}", f"{n:,}"))
    return markdown_table(("rule", "seconds", "findings"), rows, right=(1, 2))


def _variants_table(variants: Mapping[str, Callable[[], list[pl.DataFrame]]]) -> str:
    """Each variant twice, alternated: seconds, peak RSS above the RSS it began with, findings."""
    meter, rows = Meter(), []
    for name, run in [*variants.items(), *variants.items()]:
        with measured(meter) as m:
            frames = run()
        findings = sum(f.height for f in frames)
        del frames
        rows.append((name, f"{m.seconds:.2f}", f"+{m.grew / MB:,.0f}", f"{findings:,}"))
    head = ("all rules collected", "seconds", "+MB", "findings")
    return markdown_table(head, rows, right=(1, 2, 3))


@click.command()
@click.argument("snapshot", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option("--smoke", is_flag=True, help="Generate a 10,000-account sample instead.")
def main(snapshot: Path | None, smoke: bool) -> None:
    """Time each view and rule, then four ways of collecting all rules.

    Example: python benchmarks/evaluate_variants.py --smoke
    """
    if snapshot is not None:
        t = {n: pl.read_parquet(snapshot / f"{n}.parquet") for n in TABLES}
    elif smoke:
        t = dict(generate(seed=7, accounts=10_000, now=DEFAULT_NOW).tables)
    else:
        raise click.UsageError("give a snapshot folder or --smoke")
    views, effective, settings = _views(t)
    rules = load_rules()
    overrides = rule_overrides(settings, rules)
    click.echo(f"{t['accounts'].height:,} accounts, {effective:,} effective memberships")
    click.echo(machine() + "\n")
    click.echo(_views_table(views) + "\n")
    ctx = pl.SQLContext(frames=views)

    def plans() -> list[pl.LazyFrame]:
        return [rule_plan(r, ctx, overrides.get(r.id)) for r in rules]

    click.echo(_rules_table(rules, plans()) + "\n")
    no_cse = pl.QueryOptFlags(comm_subplan_elim=False)
    variants: dict[str, Callable[[], list[pl.DataFrame]]] = {
        "one at a time": lambda: [p.collect() for p in plans()],
        "collect_all": lambda: pl.collect_all(plans()),
        "collect_all, no CSE": lambda: pl.collect_all(plans(), optimizations=no_cse),
        "collect_all, streaming": lambda: pl.collect_all(plans(), engine="streaming"),
    }
    click.echo(_variants_table(variants))


if __name__ == "__main__":
    main()
