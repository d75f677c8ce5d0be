"""Time and measure every pipeline stage on the synthetic sample, at several sizes.

Usage (from the repository root, with the project's virtualenv active)::

    python benchmarks/pipeline.py                          # 10k, 100k and 1M accounts
    python benchmarks/pipeline.py --sizes 10000,100000 --repeat 5
    python benchmarks/pipeline.py --smoke                  # 10k once: what CI runs

Each run of each size happens in a fresh subprocess, so one size's memory (and the allocator's
cached pages) never pollutes the next. In that process the stages run in pipeline order on the
sample generated at that size, each keeping its inputs alive as ``accessaudit run`` does:

    generate   sample.generate(seed, accounts, now)
    attribute  attribute_accounts + attribute_groups
    closure    group_closure
    effective  effective_memberships
    evaluate   build_views + evaluate (every rule of load_rules())
    paths      finding_paths
    plan       plan_actions (given the paths)
    write      every table to Parquet through a RunStore in a temporary folder, then commit
    report     build_context + render_html

Seconds are the median over the runs of a size; peak RSS the largest over them. Peak RSS per
stage comes from ``measure.Meter``: the kernel's high-water mark, reset before each stage (or,
where that is refused, a thread sampling the RSS; ``measure.py`` says how). The output names
the method used. Nothing here asserts on timings.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from measure import (
    MB,
    Meter,
    combine,
    machine,
    markdown_table,
    measured,
    meminfo_bytes,
    status_bytes,
)

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
SMOKE_SIZE = 10_000
#: Sizes from here on run once unless --repeat says otherwise (a 1M run takes minutes).
LARGE = 1_000_000


# --- one run of one size (the worker subprocess) -----------------------------------------------


def _volunteer_for_oom_killer() -> None:
    """Be the kernel OOM killer's first choice, so a size too big for the machine ends this
    benchmark rather than someone else's process."""
    with contextlib.suppress(OSError):
        Path("/proc/self/oom_score_adj").write_text("1000")


class Recorder:
    """The per-stage measurements of one run; ``report`` receives them before and after every
    stage (the driver reads the last of them if this process is killed)."""

    def __init__(self, accounts: int, report: Callable[[dict[str, Any]], None]) -> None:
        import polars as pl

        self.accounts = accounts
        self.report = report
        self.meter = Meter()
        self.stages: list[dict[str, Any]] = []
        #: seconds spent in gc.collect() between stages, left out of the wall time
        self.gc_seconds = 0.0
        self.meta: dict[str, Any] = {
            "accounts": accounts,
            "method": self.meter.method,
            "polars": pl.__version__,
            "threads": pl.thread_pool_size(),
            "stages": self.stages,
            "baseline": self.meter.current(),
        }

    @contextlib.contextmanager
    def stage(self, name: str, unit: str) -> Iterator[dict[str, Any]]:
        """Measure the block as stage ``name``; the block sets ``rows`` (and ``note``)."""
        rec: dict[str, Any] = {"stage": name, "unit": unit, "rows": 0}
        self.report({**self.meta, "running": name, "since": time.time()})
        print(f"  {self.accounts:,}: {name} ...", file=sys.stderr, flush=True)
        with measured(self.meter) as m:
            yield rec
        self.gc_seconds += m.gc_seconds
        rec.update(seconds=m.seconds, peak=m.peak, grew=m.grew)
        self.stages.append(rec)
        self.report({**self.meta, "running": None})


def _store_sample(stored: Path, seed: int, accounts: int) -> None:
    """Write the sample's four tables to ``stored`` as Parquet, once (outside the timing)."""
    from accessaudit.sample.directory import DEFAULT_NOW, generate

    stored.mkdir(parents=True, exist_ok=True)
    for name, df in generate(seed=seed, accounts=accounts, now=DEFAULT_NOW).tables.items():
        df.write_parquet(stored / f"{name}.parquet")
    (stored / "done").touch()


def _sample(rec: Recorder, seed: int, stored: Path | None) -> dict[str, Any]:
    """Stage generate (or load, from ``stored``): the four collected tables."""
    import polars as pl

    from accessaudit.sample.directory import DEFAULT_NOW, generate

    if stored is not None:
        with rec.stage("load", "rows in the 4 collected tables (Parquet)") as s:
            t = {
                name: pl.read_parquet(stored / f"{name}.parquet")
                for name in ("accounts", "groups", "memberships", "grants")
            }
    else:
        with rec.stage("generate", "rows in the 4 collected tables") as s:
            t = dict(generate(seed=seed, accounts=rec.accounts, now=DEFAULT_NOW).tables)
    s["rows"] = sum(df.height for df in t.values())
    s["note"] = f"{t['accounts'].height:,} accounts, {t['memberships'].height:,} memberships"
    return t


def _analyse(rec: Recorder, t: dict[str, Any], settings: Any, rules: Any) -> Any:
    """Stages attribute, closure, effective, evaluate, paths and plan, as ``analyse`` runs them."""
    import polars as pl

    from accessaudit.analysis.attribution import attribute_accounts, attribute_groups
    from accessaudit.analysis.expand import effective_memberships, finding_paths, group_closure
    from accessaudit.engine.evaluate import build_views, evaluate
    from accessaudit.pipeline.analyse import Analysis, rule_overrides
    from accessaudit.remediation.plan import plan_actions
    from accessaudit.sample.directory import DEFAULT_NOW

    memberships, grants = t["memberships"], t["grants"]
    with rec.stage("attribute", "accounts + groups") as s:
        acc = attribute_accounts(t["accounts"], settings, grants)
        grp = attribute_groups(t["groups"], acc, settings)
        s["rows"] = acc.height + grp.height
    with rec.stage("closure", "group_closure rows") as s:
        closure = group_closure(memberships)
        s["rows"] = closure.height
    with rec.stage("effective", "effective_memberships rows") as s:
        effective = effective_memberships(memberships, closure)
        s["rows"] = effective.height
    with rec.stage("evaluate", f"findings of {len(rules)} rules") as s:
        views = build_views(
            acc, grp, memberships, grants, closure=closure, effective=effective, as_of=DEFAULT_NOW
        )
        findings = evaluate(rules, views, rule_overrides(settings, rules)).with_columns(
            status=pl.lit("open")
        )
        s["rows"] = findings.height
    del views
    with rec.stage("paths", "finding_paths rows") as s:
        paths = finding_paths(findings, closure)
        s["rows"] = paths.height
    with rec.stage("plan", "actions") as s:
        actions = plan_actions(
            findings, accounts=acc, groups=grp, memberships=memberships, paths=paths
        )
        s["rows"] = actions.height
    return Analysis(
        acc, grp, memberships, grants, closure, effective, findings, actions, paths, rules
    )


def _write(rec: Recorder, analysis: Any, data_dir: Path, settings: Any) -> Any:
    """Stage write: every table to Parquet through a RunStore, then the commit."""
    from accessaudit.config.settings import settings_hash
    from accessaudit.engine.rulefile import catalogue_hash
    from accessaudit.pipeline.publish import summarise
    from accessaudit.sample.directory import DEFAULT_NOW
    from accessaudit.store.runs import RunStore
    from accessaudit.version import tool_version

    now = DEFAULT_NOW.isoformat()
    with rec.stage("write", "rows written to Parquet") as s:
        writer = RunStore(data_dir).begin(DEFAULT_NOW)
        for name, df in analysis.tables().items():
            writer.write_table(name, df)
        manifest: dict[str, Any] = {
            "tool_version": tool_version(),
            "started": now,
            "finished": now,
            "config_hash": settings_hash(settings),
            "rules_hash": catalogue_hash(analysis.rules),
            "complete": True,
            "sources": [],
            "summary": summarise(analysis.findings, analysis.actions),
        }
        run = writer.commit(manifest)
        s["rows"] = sum(df.height for df in analysis.tables().values())
    size = sum(f.stat().st_size for f in run.path.glob("*.parquet"))
    s["note"] = f"{size / MB:.1f} MB of Parquet"
    return run


def _report(rec: Recorder, analysis: Any, run: Any, settings: Any) -> None:
    """Stage report: build_context + render_html."""
    from accessaudit.report.context import ReportInput, build_context
    from accessaudit.report.html import render_html

    with rec.stage("report", "findings + actions in the report") as s:
        ctx = build_context(
            ReportInput(
                manifest=run.manifest,
                findings=analysis.findings,
                actions=analysis.actions,
                accounts=analysis.accounts,
                groups=analysis.groups,
                paths=analysis.paths,
                rules=analysis.rules,
                title=settings.report.title,
                org_names={o.id: o.name for o in settings.organisations},
            )
        )
        html = render_html(ctx, run.path / "report.html")
        s["rows"] = ctx["findings"]["total"] + ctx["worklist"]["total"]
    s["note"] = f"{html.stat().st_size / MB:.1f} MB of HTML"


def run_once(
    accounts: int,
    seed: int,
    report: Callable[[dict[str, Any]], None],
    workdir: Path | None = None,
    snapshot: Path | None = None,
) -> dict[str, Any]:
    """Every stage once on a fresh sample of ``accounts`` accounts; per-stage measurements.

    ``report`` receives the measurements so far before and after every stage. The run store
    goes in a temporary folder under ``workdir``, which the driver removes even when this
    process is killed. With ``snapshot``, the sample's four tables are written there as Parquet
    once and every later run starts by reading them (stage *load*) instead of generating them.
    """
    from accessaudit.engine.rulefile import load_rules
    from accessaudit.pipeline.demo import demo_settings

    rec = Recorder(accounts, report)
    rules = load_rules()
    with tempfile.TemporaryDirectory(prefix="accessaudit-bench-", dir=workdir) as tmp:
        data_dir = Path(tmp) / "data"
        settings = demo_settings(data_dir, accounts=accounts, seed=seed)
        stored = snapshot / f"sample-{accounts}-seed{seed}" if snapshot else None
        if stored is not None and not (stored / "done").exists():
            _store_sample(stored, seed, accounts)
        wall0 = time.perf_counter()
        analysis = _analyse(rec, _sample(rec, seed, stored), settings, rules)
        run = _write(rec, analysis, data_dir, settings)
        _report(rec, analysis, run, settings)
        wall = time.perf_counter() - wall0 - rec.gc_seconds
    peak = max(st["peak"] for st in rec.stages)
    return {**rec.meta, "wall": wall, "peak": peak, "running": None}


# --- the driver ---------------------------------------------------------------------------------


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` whole, so a worker killed mid-write leaves the previous report."""
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def _spawn(accounts: int, seed: int, min_free: int, snapshot: Path | None = None) -> dict[str, Any]:
    """One run in a fresh interpreter; its measurements come back through a JSON file.

    The worker is stopped if the machine's available memory falls below ``min_free`` bytes;
    a stopped or crashed run comes back with the stages it finished and ``failed`` set.
    """
    with tempfile.TemporaryDirectory(prefix="accessaudit-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, __file__, "--worker", str(accounts), "--seed", str(seed)]
        if snapshot is not None:
            cmd += ["--snapshot", str(snapshot)]
        proc = subprocess.Popen([*cmd, "--result", str(out)])
        stopped, largest = None, 0
        while proc.poll() is None:
            largest = max(largest, status_bytes("VmRSS", proc.pid) or 0)
            available = meminfo_bytes("MemAvailable")
            if available is not None and available < min_free:
                proc.kill()
                stopped = (
                    f"stopped: the machine was down to {available / MB:,.0f} MB available "
                    f"(--min-free-mb {min_free / MB:,.0f})"
                )
            time.sleep(0.1)
        result: dict[str, Any] = {"accounts": accounts, "stages": [], "running": "start-up"}
        if out.is_file():
            result = json.loads(out.read_text())
    if proc.returncode == 0 and stopped is None:
        return result
    if stopped is None and proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        stopped = f"killed by {sig}" + (" (most likely out of memory)" * (sig == "SIGKILL"))
    ran = time.time() - result["since"] if result.get("since") else None
    failed = stopped or f"exited {proc.returncode}"
    return {**result, "failed": failed, "largest": largest, "ran": ran}


def summarise_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median seconds and largest peak over the runs of one size (a failed run: as it is)."""
    failed = [r for r in runs if r.get("failed")]
    if failed:
        return {**failed[0], "runs": len(runs)}
    stages = [
        combine([r["stages"][i] for r in runs], median=["seconds"], largest=["peak", "grew"])
        for i in range(len(runs[0]["stages"]))
    ]
    total = combine(runs, median=["wall"], largest=["peak"])
    return {**total, "runs": len(runs), "stages": stages}


def _rows(res: dict[str, Any]) -> list[tuple[str, ...]]:
    n = f"{res['accounts']:,}"
    out: list[tuple[str, ...]] = []
    for st in res["stages"]:
        unit = st["unit"] + (f"; {st['note']}" if st.get("note") else "")
        out.append(
            (
                st["stage"],
                n,
                f"{st['seconds']:.2f}",
                f"{st['peak'] / MB:,.0f}",
                f"{st['grew'] / MB:,.0f}",
                f"{st['rows']:,}",
                unit,
            )
        )
    if res.get("failed"):
        largest = f">= {res['largest'] / MB:,.0f}" if res.get("largest", 0) >= MB else ""
        ran = f">= {res['ran']:.2f}" if res.get("ran") is not None else "-"
        out.append((str(res.get("running")), n, ran, largest, "", "", res["failed"]))
        out.append(("**pipeline**", n, "-", largest, "", "", "did not finish"))
        return out
    out.append(
        (
            "**pipeline**",
            n,
            f"{res['wall']:.2f}",
            f"{res['peak'] / MB:,.0f}",
            f"{(res['peak'] - res['baseline']) / MB:,.0f}",
            "",
            f"all stages, median of {res['runs']} run(s); +MB over the idle process",
        )
    )
    return out


def table(results: list[dict[str, Any]]) -> str:
    """The measurements as a Markdown table (as pasted into benchmarks/README.md)."""
    head = ("stage", "accounts", "seconds", "peak RSS MB", "+MB in stage", "rows", "rows are")
    rows = [row for res in results for row in _rows(res)]
    return markdown_table(head, rows, right=range(1, 6))


def _package() -> str:
    """Where ``accessaudit`` is imported from, and its commit when that is a git checkout."""
    import accessaudit

    where = Path(accessaudit.__file__).parent
    git = ["git", "-C", str(where)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        status = subprocess.run([*git, "status", "--porcelain", "--", "."], capture_output=True)
    except OSError:  # no git
        return f"accessaudit from {where}"
    if head.returncode:
        return f"accessaudit from {where}"
    dirty = " + uncommitted changes" if status.stdout.strip() else ""
    return f"accessaudit from {where} at {head.stdout.strip()}{dirty}"


def header(results: list[dict[str, Any]], seed: int, loads: list[float]) -> str:
    ran = next((r for r in results if "method" in r), {})
    lines = [
        _package() + ".",
        f"{machine()} ({ran.get('threads', '?')} polars threads); sample seed {seed}; "
        "each run in a fresh subprocess.",
        f"Seconds: median over the runs of a size. Peak RSS: largest over the runs, measured by "
        f"{ran.get('method', '?')}.",
    ]
    if loads:
        lines.append(
            f"Load average (1 min) before the runs: {min(loads):.1f} to {max(loads):.1f}"
            + (
                " - above the CPU count: other processes competed for the CPUs."
                if max(loads) > (os.cpu_count() or 1)
                else "."
            )
        )
    return "\n".join(lines)


def _sizes(value: str) -> list[int]:
    try:
        sizes = [int(v.replace("_", "")) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(
            "a comma-separated list of account counts, e.g. 10000,100000"
        ) from None
    if not sizes or min(sizes) < 200:
        raise click.BadParameter("give account counts of at least 200 (the sample's minimum)")
    return sizes


@click.command()
@click.option(
    "--sizes",
    default=",".join(map(str, DEFAULT_SIZES)),
    show_default=True,
    help="Comma-separated account counts to generate.",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=None,
    help=f"Runs per size (median seconds). [default: 3; 1 from {LARGE:,}]",
)
@click.option("--seed", default=7, show_default=True, help="Sample seed.")
@click.option("--smoke", is_flag=True, help=f"Just {SMOKE_SIZE:,} accounts, once (for CI).")
@click.option(
    "--min-free-mb",
    type=click.IntRange(min=0),
    default=512,
    show_default=True,
    help="Stop a run when the machine's available memory falls below this.",
)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the raw measurements to this JSON file.",
)
@click.option(
    "--snapshot",
    type=click.Path(file_okay=False, path_type=Path),
    help="Store each size's sample here as Parquet once; runs start by reading it (stage load).",
)
@click.option("--worker", type=int, hidden=True)
@click.option("--result", type=click.Path(dir_okay=False, path_type=Path), hidden=True)
def main(
    sizes: str,
    repeat: int | None,
    seed: int,
    smoke: bool,
    min_free_mb: int,
    json_out: Path | None,
    snapshot: Path | None,
    worker: int | None,
    result: Path | None,
) -> None:
    """Time every pipeline stage and its peak memory on the synthetic sample.

    Example: python benchmarks/pipeline.py --sizes 10000,100000 --repeat 3

    Exits 1 if a run failed or was stopped (its finished stages are still shown).
    """
    if worker is not None:
        _volunteer_for_oom_killer()
        out = result or Path(os.devnull)
        measured = run_once(
            worker,
            seed,
            lambda partial: _write_json(out, partial),
            result and result.parent,
            snapshot,
        )
        _write_json(out, measured)
        return
    results, loads = [], []
    for n in [SMOKE_SIZE] if smoke else _sizes(sizes):
        wanted = 1 if smoke else repeat or (1 if n >= LARGE else 3)
        runs = []
        for i in range(wanted):
            if hasattr(os, "getloadavg"):
                loads.append(os.getloadavg()[0])
            click.echo(f"{n:,} accounts: run {i + 1} of {wanted}", err=True)
            runs.append(_spawn(n, seed, min_free_mb * MB, snapshot))
            if runs[-1].get("failed"):
                click.echo(f"{n:,} accounts: {runs[-1]['failed']}", err=True)
                break
        results.append(summarise_runs(runs))
    click.echo("\n" + header(results, seed, loads) + "\n")
    click.echo(table(results))
    if json_out is not None:
        json_out.write_text(json.dumps(results, indent=2))
    if any(r.get("failed") for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
