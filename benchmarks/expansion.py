"""Nested expansion at national scale: ours against scipy.sparse and DuckDB.

    python benchmarks/expansion.py              # 1M users / 50k groups / 10M + 100k edges, 3 runs
    python benchmarks/expansion.py --smoke      # 20k users / 1k groups once (CI)
    python benchmarks/expansion.py --users 200000 --groups 10000 --repeat 5

The graph is synthetic and vectorised (numpy, seeded): groups sit on levels 0-8 (most near the
top), each group below the top has one parent on the level above (so nesting goes up to 8 deep),
1% of those edges are also present reversed (two-group cycles) and the remaining nestings put a
random group below the top into a random top-level group. Direct user->group edges are uniform,
without duplicates. Every method gets the same graph and must produce the same set of effective
(user, group) pairs, direct ones included; the set is compared by a checksum (pair count, sum of
``user * groups + group`` and a sum of a modular hash of it), computed after the timing.

Targets at the default size (1M users, 50k groups, 10M direct edges): the effective
memberships in at most 2x the time scipy.sparse needs given the same input, below 4 GB peak,
faster than DuckDB's recursive CTE, and the same set of pairs.

Methods, each in a fresh subprocess. Seconds are the median. Peak RSS is the largest over the
runs of the kernel's high-water mark (``measure.Meter``), reset once the method's input is built
(so it includes the input); *+MB* is that peak minus the RSS at the reset, the method's own
memory.

- **ours**: ``group_closure`` + ``effective_memberships`` from string ids to Categorical ids
  (MEMBERSHIPS_SCHEMA in, EFFECTIVE_SCHEMA out: depth, direct group and ``via`` per pair).
- **scipy (strings in)**: scipy's product doing the same job from the same table: the ids
  coded the usual polars way (Categorical cast, physical ids), the closure and the product as
  for *scipy*, the pairs back as Categorical ids (pairs only: no depth, no direct group).
- **ours, integer core**: the same de-duplication on integer codes only (``expand_codes``),
  i.e. without turning ids into codes and back: the difference to *ours* is the string cost.
- **scipy**: boolean closure of the group adjacency by repeated squaring, then the sparse
  product with the user->group matrix (pairs only: no depth, no direct group).
- **duckdb**: recursive CTE over the nestings (``UNION``, so cycles end), joined onto the
  direct edges, ``SELECT DISTINCT`` into a table (pairs only).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np
from measure import MB, Meter, combine, machine, markdown_table, measured

P = 1_000_000_007  # modulus of the pair hash (so every method can compute it in int64)
METHODS = ("ours", "scipy-strings", "ours-core", "scipy", "duckdb")
#: The scipy row that starts from the same input: strings (the canonical table) or codes.
SAME_INPUT = {
    "ours": "scipy-strings",
    "scipy-strings": "scipy-strings",
    "ours-core": "scipy",
    "scipy": "scipy",
    "duckdb": "scipy",
}
LABELS = {
    "ours": "ours (strings in)",
    "scipy-strings": "scipy (strings in)",
    "ours-core": "ours, integer core",
    "scipy": "scipy.sparse",
    "duckdb": "duckdb recursive CTE",
}


# --- the graph ----------------------------------------------------------------------------------


def graph(
    users: int, groups: int, edges: int, nestings: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(user, group, via) direct edges and (child, parent) nestings as int64 arrays."""
    rng = np.random.default_rng(seed)
    # Levels 0 (top) .. 8, most groups near the top (as in directories: few deep chains).
    weights = np.array([4, 10, 8, 6, 4, 3, 2, 1, 1], dtype=float)
    level = np.sort(rng.choice(9, size=groups, p=weights / weights.sum()))
    level[0] = 0
    starts = np.searchsorted(level, np.arange(10))
    below = np.flatnonzero(level > 0)
    # One parent on the level above for every group below the top: depth up to 8.
    lo, hi = starts[level[below] - 1], starts[level[below]]
    tree_parent = lo + (rng.random(below.size) * (hi - lo)).astype(np.int64)
    # Two-group cycles: 1% of the tree edges also reversed.
    rev = rng.choice(below.size, size=max(1, below.size // 100), replace=False)
    # The rest: a group into a top-level group (a role or resource group).
    extra = max(0, nestings - below.size - rev.size)
    c = below[rng.integers(0, below.size, size=extra * 2)]
    p = rng.integers(0, max(1, starts[1]), size=c.size)
    child = np.concatenate([below, tree_parent[rev], c])
    parent = np.concatenate([tree_parent, below[rev], p])
    key = child * groups + parent
    key = key[child != parent]
    _, first = np.unique(key, return_index=True)
    key = key[np.sort(first)][:nestings]  # the tree and the cycles first, then the rest
    nest = np.stack([key // groups, key % groups], axis=1)
    # Direct user edges: users and groups uniformly, no duplicate pair.
    u = rng.integers(0, users, size=int(edges * 1.02), dtype=np.int64)
    g = rng.integers(0, groups, size=u.size, dtype=np.int64)
    key = np.unique(u * groups + g)
    key = key[rng.permutation(key.size)[:edges]]
    u, g = key // groups, key % groups
    via = (rng.random(u.size) < 0.05).astype(np.int64)  # 5% primaryGroupID, the rest member
    return u, g, via, nest[:, 0].astype(np.int64), nest[:, 1].astype(np.int64)


def checksum(u: np.ndarray, g: np.ndarray, groups: int) -> list[int]:
    k = u.astype(np.int64) * groups + g.astype(np.int64)
    h = ((k % P) * 2654435761) % P
    return [int(k.size), int(k.sum(dtype=np.int64)), int(h.sum(dtype=np.int64))]


# --- methods (run in the worker) -----------------------------------------------------------------


def _pairs_checksum(eff: Any, groups: int) -> list[int]:
    import polars as pl

    out = eff.select(
        u=pl.col("account_id").cast(pl.String).str.slice(1).cast(pl.Int64),
        g=pl.col("group_id").cast(pl.String).str.slice(1).cast(pl.Int64),
    )
    return checksum(out["u"].to_numpy(), out["g"].to_numpy(), groups)


Run = Callable[[], Callable[[], list[int]]]  # times the work, returns the (untimed) checksum


def _memberships(data: tuple[np.ndarray, ...]) -> Any:
    """The graph as the canonical memberships table (MEMBERSHIPS_SCHEMA, string ids)."""
    import polars as pl

    from accessaudit.model import MEMBERSHIPS_SCHEMA

    u, g, via, child, parent = data

    def ids(prefix: str, values: np.ndarray) -> pl.Expr:
        return pl.lit(prefix) + pl.lit(pl.Series(values)).cast(pl.String).str.zfill(8)

    direct = pl.select(
        source=pl.lit("bench"),
        group_id=ids("g", g),
        member_id=ids("u", u),
        member_kind=pl.lit("account"),
        via=pl.when(pl.lit(pl.Series(via)) == 1)
        .then(pl.lit("primaryGroupID"))
        .otherwise(pl.lit("member")),
    )
    nest = pl.select(
        source=pl.lit("bench"),
        group_id=ids("g", parent),
        member_id=ids("g", child),
        member_kind=pl.lit("group"),
        via=pl.lit("member"),
    )
    return pl.concat([direct, nest]).cast(dict(MEMBERSHIPS_SCHEMA))  # type: ignore[arg-type]


def _ours(data: tuple[np.ndarray, ...], groups: int) -> Run:
    from accessaudit.analysis.expand import effective_memberships, group_closure

    memberships = _memberships(data)

    def run() -> Callable[[], list[int]]:
        closure = group_closure(memberships)
        eff = effective_memberships(memberships, closure)
        del closure
        return lambda: _pairs_checksum(eff, groups)

    return run


def _scipy_strings(data: tuple[np.ndarray, ...], groups: int) -> Run:
    import polars as pl
    import scipy.sparse as sp

    memberships = _memberships(data)
    cat = pl.Categorical()

    def run() -> Callable[[], list[int]]:
        coded = memberships.select(
            pl.col("member_id", "group_id").cast(cat), account=pl.col("member_kind") == "account"
        )
        ids = pl.concat([coded.get_column("member_id"), coded.get_column("group_id")])
        n = int(ids.to_physical().max() or 0) + 1  # one square space of physical ids
        m = coded.get_column("member_id").to_physical().to_numpy()
        g = coded.get_column("group_id").to_physical().to_numpy()
        acc = coded.get_column("account").to_numpy()
        adj = sp.csr_matrix((np.ones((~acc).sum(), bool), (m[~acc], g[~acc])), shape=(n, n))
        clo = (sp.identity(n, dtype=bool, format="csr") + adj).astype(bool)
        while True:
            nxt = (clo @ clo).astype(bool)
            if nxt.nnz == clo.nnz:
                break
            clo = nxt
        d = sp.csr_matrix((np.ones(acc.sum(), bool), (m[acc], g[acc])), shape=(n, n))
        eff = (d @ clo).tocoo()
        pairs = pl.DataFrame(
            {
                "account_id": pl.Series(eff.row.astype(np.uint32)).cat.to(cat),
                "group_id": pl.Series(eff.col.astype(np.uint32)).cat.to(cat),
            }
        )
        held = coded  # the mapping of the physical ids lives as long as a column uses it
        return lambda: [held.height, *_pairs_checksum(pairs, groups)][1:]

    return run


def _ours_core(data: tuple[np.ndarray, ...], groups: int, users: int) -> Run:
    import polars as pl

    from accessaudit.analysis.expand import expand_codes

    u, g, via, child, parent = data
    a, gg, v = (x.astype(np.uint32) for x in (u, g, via))
    # The closure (codes, depth) by BFS in numpy-fed polars, outside the timing: it is the
    # small part (see the closure figure of *ours*); here only the join + de-duplication.
    edges = pl.DataFrame({"g": child, "anc": parent}).cast(pl.UInt32)
    found = edges.with_columns(depth=pl.lit(1, pl.UInt32))
    frontier = found
    while frontier.height:
        step = (
            frontier.join(edges.rename({"g": "anc", "anc": "nxt"}), on="anc")
            .select("g", anc="nxt", depth=pl.col("depth") + 1)
            .filter(pl.col("g") != pl.col("anc"))
            .unique(["g", "anc"])
            .join(found, on=["g", "anc"], how="anti")
        )
        found = pl.concat([found, step])
        frontier = step
    cg, canc, cd = (found[c].cast(pl.UInt32).to_numpy() for c in ("g", "anc", "depth"))

    def run() -> Callable[[], list[int]]:
        parts = expand_codes(a, gg, v, cg, canc, cd, n_accounts=users, n_groups=groups, n_vias=2)
        return lambda: checksum(
            np.concatenate([p["a"] for p in parts]), np.concatenate([p["g"] for p in parts]), groups
        )

    return run


def _scipy(data: tuple[np.ndarray, ...], groups: int, users: int) -> Run:
    import scipy.sparse as sp

    u, g, _via, child, parent = data

    def run() -> Callable[[], list[int]]:
        n = groups
        adj = sp.csr_matrix(
            (np.ones(child.size, dtype=bool), (child, parent)), shape=(n, n), dtype=bool
        )
        clo = (sp.identity(n, dtype=bool, format="csr") + adj).astype(bool)
        while True:  # repeated squaring: paths up to 2^k long after k steps
            nxt = (clo @ clo).astype(bool)
            if nxt.nnz == clo.nnz:
                break
            clo = nxt
        d = sp.csr_matrix((np.ones(u.size, dtype=bool), (u, g)), shape=(users, n), dtype=bool)
        eff = d @ clo
        return lambda: checksum(*eff.nonzero(), groups)

    return run


def _duckdb(data: tuple[np.ndarray, ...], groups: int) -> Run:
    import duckdb
    import polars as pl

    u, g, _via, child, parent = data
    con = duckdb.connect()
    con.execute(f"SET threads = {os.cpu_count() or 1}")
    # Through Parquet (outside the timing): duckdb reads polars frames only with pyarrow.
    tmp = Path(tempfile.mkdtemp(prefix="expansion-bench-"))
    pl.DataFrame({"u": u, "g": g}).write_parquet(tmp / "direct.parquet")
    pl.DataFrame({"child": child, "parent": parent}).write_parquet(tmp / "nest.parquet")
    con.execute(f"CREATE TABLE direct AS SELECT * FROM read_parquet('{tmp / 'direct.parquet'}')")
    con.execute(f"CREATE TABLE nest AS SELECT * FROM read_parquet('{tmp / 'nest.parquet'}')")
    shutil.rmtree(tmp)

    def run() -> Callable[[], list[int]]:
        con.execute("DROP TABLE IF EXISTS eff")
        con.execute(
            """
            CREATE TABLE eff AS
            WITH RECURSIVE clo(g, anc) AS (
                SELECT child, parent FROM nest
                UNION
                SELECT clo.g, nest.parent FROM clo JOIN nest ON nest.child = clo.anc
            )
            SELECT DISTINCT u, g FROM (
                SELECT u, g FROM direct
                UNION ALL
                SELECT d.u, clo.anc AS g FROM direct d JOIN clo ON d.g = clo.g
            )
            """
        )
        return check

    def check() -> list[int]:
        row = con.execute(
            f"SELECT count(*), sum(u * {groups} + g), "
            f"sum(((u * {groups} + g) % {P}) * 2654435761 % {P}) FROM eff"
        ).fetchone()
        assert row is not None
        return [int(x) for x in row]

    return run


def worker(method: str, args: dict[str, Any]) -> dict[str, Any]:
    data = graph(args["users"], args["groups"], args["edges"], args["nestings"], args["seed"])
    if method == "ours":
        run = _ours(data, args["groups"])
    elif method == "scipy-strings":
        run = _scipy_strings(data, args["groups"])
    elif method == "ours-core":
        run = _ours_core(data, args["groups"], args["users"])
    elif method == "scipy":
        run = _scipy(data, args["groups"], args["users"])
    else:
        run = _duckdb(data, args["groups"])
    with measured(Meter()) as m:
        check = run()
    result = check()
    return {
        "method": method,
        "seconds": m.seconds,
        "peak": m.peak,
        "grew": m.grew,
        "checksum": result,
        "direct": int(data[0].size),
        "nestings": int(data[3].size),
    }


# --- the driver ---------------------------------------------------------------------------------


def table(rows: dict[str, list[dict[str, Any]]]) -> tuple[str, bool]:
    """The methods' medians and ratios as a Markdown table; True if one failed or differs."""
    failed = False
    ref = rows.get("scipy", [{}])[0].get("checksum")
    ok = {m: [r for r in runs if "failed" not in r] for m, runs in rows.items()}
    med = {
        m: combine(runs, median=["seconds"], largest=["peak", "grew"])
        for m, runs in ok.items()
        if runs
    }
    out = []
    for m, runs in rows.items():
        if m not in med:
            failed = True
            out.append((LABELS.get(m, m), f"failed: {runs[0].get('failed')}", *[""] * 7))
            continue
        sums = {tuple(r["checksum"]) for r in ok[m]}
        same = len(sums) == 1 and (ref is None or list(next(iter(sums))) == ref)
        failed |= not same
        vs = {k: f"{med[m]['seconds'] / v['seconds']:.2f}x" for k, v in med.items()}
        out.append(
            (
                LABELS.get(m, m),
                f"{med[m]['seconds']:.2f}",
                f"{med[m]['peak'] / MB:,.0f}",
                f"{med[m]['grew'] / MB:,.0f}",
                f"{med[m]['checksum'][0]:,}",
                vs.get("scipy", "-"),
                vs.get(SAME_INPUT[m], "-"),
                vs.get("duckdb", "-"),
                "same" if same else "DIFFERS",
            )
        )
    head = ("method", "seconds", "peak RSS MB", "+MB", "pairs", "vs scipy",
            "vs scipy, same input", "vs duckdb", "checksum")  # fmt: skip
    return markdown_table(head, out, right=range(1, 8)), failed


def _spawn(method: str, args: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", method, "--args", json.dumps(args)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"method": method, "failed": (out.stderr.strip().splitlines() or ["?"])[-1]}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@click.command()
@click.option("--users", default=1_000_000, show_default=True)
@click.option("--groups", default=50_000, show_default=True)
@click.option("--edges", default=10_000_000, show_default=True, help="Direct user->group edges.")
@click.option("--nestings", default=100_000, show_default=True, help="Group->group edges.")
@click.option("--repeat", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=8, show_default=True)
@click.option("--methods", default=",".join(METHODS), show_default=True)
@click.option("--smoke", is_flag=True, help="20k users / 1k groups / 200k + 2k edges, once.")
@click.option("--worker", hidden=True)
@click.option("--args", "worker_args", hidden=True)
def main(
    users: int,
    groups: int,
    edges: int,
    nestings: int,
    repeat: int,
    seed: int,
    methods: str,
    smoke: bool,
    worker: str | None,
    worker_args: str | None,
) -> None:
    """Effective memberships of a synthetic graph: ours vs scipy.sparse vs DuckDB.

    Example: python benchmarks/expansion.py --users 100000 --groups 5000 --edges 1000000
    --nestings 10000

    Exits 1 if a method failed or a checksum differs.
    """
    if worker is not None:
        print(json.dumps(globals()["worker"](worker, json.loads(worker_args or "{}"))))
        return
    if smoke:
        users, groups, edges, nestings, repeat = 20_000, 1_000, 200_000, 2_000, 1
    args = {"users": users, "groups": groups, "edges": edges, "nestings": nestings, "seed": seed}
    rows: dict[str, list[dict[str, Any]]] = {}
    # Compile our kernels once (numba caches the machine code on disk): every timed run then
    # loads them, as every run of the tool after the first does.
    small = {"users": 2_000, "groups": 100, "edges": 20_000, "nestings": 200, "seed": seed}
    click.echo("warming the compiled kernels' cache", err=True)
    _spawn("ours", small)
    for i in range(repeat):
        for m in methods.split(","):
            click.echo(f"run {i + 1} of {repeat}: {m}", err=True)
            rows.setdefault(m, []).append(_spawn(m, args))
    click.echo(
        f"\n{users:,} users, {groups:,} groups, {edges:,} direct edges, {nestings:,} nestings; "
        f"seed {seed}; {machine()}; median of {repeat}\n"
    )
    text, failed = table(rows)
    click.echo(text)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
