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
    plan       plan_actions
    paths      finding_paths
    write      every table to Parquet through a RunStore in a temporary folder, then commit
    report     build_context + render_html

Seconds are the median over the runs of a size; peak RSS the largest over them. Peak RSS per
stage is read from the kernel: on Linux the process's high-water mark (``VmHWM``) is reset
before each stage by writing ``5`` to ``/proc/self/clear_refs`` and read after it; where that
is refused, a thread samples ``VmRSS`` every 5 ms (it can miss a spike shorter than that);
without ``/proc``, ``ru_maxrss`` gives only the process's peak so far. The output names the
method used. Nothing here asserts on timings.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import platform
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
SMOKE_SIZE = 10_000
#: Sizes from here on run once unless --repeat says otherwise (a 1M run takes minutes).
LARGE = 1_000_000
MB = 1024 * 1024


# --- memory -------------------------------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status, in bytes; None where there is no /proc."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


def _maxrss() -> int:
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class Meter:
    """Peak resident memory of one stage: reset before it, read after it."""

    def __init__(self) -> None:
        self._max = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if _status_kb("VmRSS") is None:
            self.method = "ru_maxrss (process peak so far; cannot be reset per stage)"
        elif self._reset_hwm():
            self.method = "VmHWM reset per stage via /proc/self/clear_refs (exact kernel peak)"
        else:
            self.method = "sampling thread reading /proc/self/status VmRSS every 5 ms"
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    @staticmethod
    def _reset_hwm() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            return False
        hwm, rss = _status_kb("VmHWM"), _status_kb("VmRSS")
        # a reset sets the high-water mark to the current RSS (give a few pages of slack)
        return hwm is not None and rss is not None and hwm - rss < 8 * MB

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._max = max(self._max, _status_kb("VmRSS") or 0)

    def current(self) -> int:
        return _status_kb("VmRSS") or _maxrss()

    def start(self) -> None:
        if self.method.startswith("VmHWM"):
            self._reset_hwm()
        self._max = self.current()

    def peak(self) -> int:
        if self.method.startswith("VmHWM"):
            return _status_kb("VmHWM") or 0
        if self._thread is not None:
            return max(self._max, self.current())
        return _maxrss()


# --- one run of one size (the worker subprocess) -----------------------------------------------


def _volunteer_for_oom_killer() -> None:
    """Be the kernel OOM killer's first choice, so a size too big for the machine ends this
    benchmark rather than someone else's process."""
    with contextlib.suppress(OSError):
        Path("/proc/self/oom_score_adj").write_text("1000")


def run_once(
    accounts: int,
    seed: int,
    report: Callable[[dict[str, Any]], None],
    workdir: Path | None = None,
    snapshot: Path | None = None,
) -> dict[str, Any]:
    """Every stage once on a fresh sample of ``accounts`` accounts; per-stage measurements.

    ``report`` receives the measurements so far before and after every stage (the driver
    reads the last of them if this process is killed). The run store goes in a temporary
    folder under ``workdir``, which the driver removes even when this process is killed. With
    ``snapshot``, the sample's four tables are written there as Parquet once and every later
    run starts by reading them (stage *load*) instead of generating them.
    """
    import polars as pl

    from accessaudit.analysis.attribution import attribute_accounts, attribute_groups
    from accessaudit.analysis.expand import effective_memberships, finding_paths, group_closure
    from accessaudit.config.settings import settings_hash
    from accessaudit.engine.evaluate import build_views, evaluate
    from accessaudit.engine.rulefile import catalogue_hash, load_rules
    from accessaudit.pipeline.run import (
        Analysis,
        demo_settings,
        rule_overrides,
        summarise,
        tool_version,
    )
    from accessaudit.remediation.plan import plan_actions
    from accessaudit.report.context import build_context
    from accessaudit.report.html import render_html
    from accessaudit.sample.directory import DEFAULT_NOW, generate
    from accessaudit.store.runs import RunStore

    meter = Meter()
    stages: list[dict[str, Any]] = []
    meta: dict[str, Any] = {
        "accounts": accounts,
        "method": meter.method,
        "polars": pl.__version__,
        "threads": pl.thread_pool_size(),
        "stages": stages,
    }
    harness = [0.0]  # seconds spent in gc.collect() between stages, left out of the wall time

    @contextlib.contextmanager
    def stage(name: str, unit: str) -> Iterator[dict[str, Any]]:
        g0 = time.perf_counter()
        gc.collect()  # so a stage is not charged for collecting its predecessors' cycles
        harness[0] += time.perf_counter() - g0
        rec: dict[str, Any] = {"stage": name, "unit": unit, "rows": 0}
        report({**meta, "running": name, "since": time.time()})
        print(f"  {accounts:,}: {name} ...", file=sys.stderr, flush=True)
        meter.start()
        start_rss = meter.current()
        t0 = time.perf_counter()
        yield rec
        rec["seconds"] = time.perf_counter() - t0
        rec["peak"] = meter.peak()
        rec["grew"] = max(0, rec["peak"] - start_rss)
        stages.append(rec)
        report({**meta, "running": None})

    now = DEFAULT_NOW
    rules = load_rules()
    meta["baseline"] = meter.current()
    with tempfile.TemporaryDirectory(prefix="accessaudit-bench-", dir=workdir) as tmp:
        data_dir = Path(tmp) / "data"
        settings = demo_settings(data_dir, accounts=accounts, seed=seed)
        wall0 = time.perf_counter()

        stored = snapshot / f"sample-{accounts}-seed{seed}" if snapshot else None
        if stored is not None and not (stored / "done").exists():
            # Written once, outside the timing: later runs start from the stored tables.
            stored.mkdir(parents=True, exist_ok=True)
            for name, df in generate(seed=seed, accounts=accounts, now=now).tables.items():
                df.write_parquet(stored / f"{name}.parquet")
            (stored / "done").touch()
            gc.collect()
            wall0 = time.perf_counter()
        if stored is not None:
            with stage("load", "rows in the 4 collected tables (Parquet)") as s:
                t = {
                    name: pl.read_parquet(stored / f"{name}.parquet")
                    for name in ("accounts", "groups", "memberships", "grants")
                }
                s["rows"] = sum(df.height for df in t.values())
                s["note"] = (
                    f"{t['accounts'].height:,} accounts, {t['memberships'].height:,} memberships"
                )
        else:
            with stage("generate", "rows in the 4 collected tables") as s:
                t = generate(seed=seed, accounts=accounts, now=now).tables
                s["rows"] = sum(df.height for df in t.values())
                s["note"] = (
                    f"{t['accounts'].height:,} accounts, {t['memberships'].height:,} memberships"
                )
        memberships, grants = t["memberships"], t["grants"]

        with stage("attribute", "accounts + groups") as s:
            acc = attribute_accounts(t["accounts"], settings)
            grp = attribute_groups(t["groups"], acc, settings)
            s["rows"] = acc.height + grp.height

        with stage("closure", "group_closure rows") as s:
            closure = group_closure(memberships)
            s["rows"] = closure.height

        with stage("effective", "effective_memberships rows") as s:
            effective = effective_memberships(memberships, closure)
            s["rows"] = effective.height

        with stage("evaluate", f"findings of {len(rules)} rules") as s:
            views = build_views(
                acc, grp, memberships, grants, closure=closure, effective=effective, as_of=now
            )
            findings = evaluate(rules, views, rule_overrides(settings, rules)).with_columns(
                status=pl.lit("open")
            )
            s["rows"] = findings.height
        del views

        with stage("plan", "actions") as s:
            paths = finding_paths(findings, closure)
            actions = plan_actions(
                findings, accounts=acc, groups=grp, memberships=memberships, paths=paths
            )
            s["rows"] = actions.height

        with stage("paths", "finding_paths rows") as s:
            paths = finding_paths(findings, closure)
            s["rows"] = paths.height

        analysis = Analysis(
            acc, grp, memberships, grants, closure, effective, findings, actions, paths, rules
        )
        with stage("write", "rows written to Parquet") as s:
            writer = RunStore(data_dir).begin(now)
            for name, df in analysis.tables().items():
                writer.write_table(name, df)
            manifest: dict[str, Any] = {
                "tool_version": tool_version(),
                "started": now.isoformat(),
                "finished": now.isoformat(),
                "config_hash": settings_hash(settings),
                "rules_hash": catalogue_hash(rules),
                "complete": True,
                "sources": [],
                "summary": summarise(findings, actions),
            }
            run = writer.commit(manifest)
            s["rows"] = sum(df.height for df in analysis.tables().values())
            size = sum(f.stat().st_size for f in run.path.glob("*.parquet"))
            s["note"] = f"{size / MB:.1f} MB of Parquet"

        with stage("report", "findings + actions in the report") as s:
            ctx = build_context(
                manifest=run.manifest,
                findings=findings,
                actions=actions,
                accounts=acc,
                groups=grp,
                paths=paths,
                rules=rules,
                title=settings.report.title,
                org_names={o.id: o.name for o in settings.organisations},
            )
            html = render_html(ctx, run.path / "report.html")
            s["rows"] = ctx["findings"]["total"] + ctx["worklist"]["total"]
            s["note"] = f"{html.stat().st_size / MB:.1f} MB of HTML"
        wall = time.perf_counter() - wall0 - harness[0]

    return {**meta, "wall": wall, "peak": max(st["peak"] for st in stages), "running": None}


# --- the driver ---------------------------------------------------------------------------------


def _meminfo(field: str) -> int | None:
    """A ``kB`` field of /proc/meminfo, in bytes; None where there is no /proc."""
    try:
        m = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(m.group(1)) * 1024 if m else None


def _pid_rss(pid: int) -> int:
    try:
        m = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    except OSError:
        return 0
    return int(m.group(1)) * 1024 if m else 0


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
            largest = max(largest, _pid_rss(proc.pid))
            available = _meminfo("MemAvailable")
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
    stages = []
    for i, st in enumerate(runs[0]["stages"]):
        each = [r["stages"][i] for r in runs]
        stages.append(
            {
                **st,
                "seconds": statistics.median(e["seconds"] for e in each),
                "peak": max(e["peak"] for e in each),
                "grew": max(e["grew"] for e in each),
            }
        )
    return {
        **runs[0],
        "runs": len(runs),
        "stages": stages,
        "wall": statistics.median(r["wall"] for r in runs),
        "peak": max(r["peak"] for r in runs),
    }


def _rows(res: dict[str, Any]) -> list[tuple[str, ...]]:
    n = f"{res['accounts']:,}"
    out = []
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
    lines = [head, *(row for res in results for row in _rows(res))]
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    right = {1, 2, 3, 4, 5}

    def fmt(row: tuple[str, ...]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "| " + " | ".join(cells) + " |"

    rule = [("-" * (w + 1) + ":") if i in right else "-" * (w + 2) for i, w in enumerate(widths)]
    return "\n".join([fmt(head), "|" + "|".join(rule) + "|", *(fmt(r) for r in lines[1:])])


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
    mem = _meminfo("MemTotal")
    machine = f"{os.cpu_count()} CPUs" + (f", {mem / 1024**3:.0f} GB RAM" if mem else "")
    ran = next((r for r in results if "method" in r), {})
    lines = [
        _package() + ".",
        f"{machine}, Python {platform.python_version()}, polars {ran.get('polars', '?')} "
        f"on {ran.get('threads', '?')} threads; sample seed {seed}; "
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
