"""``accessaudit demo --source sample-entra``: the sample's tenant served by the Graph emulator on
127.0.0.1 and collected by the real connector (msal certificate credential + Graph) gives the
same findings as the in-memory demo, and says how it was collected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl

from accessaudit.sample.entra import TENANT_ID


def demo(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(out.parent / f"tmp-{out.name}")}
    Path(env["TMPDIR"]).mkdir()
    # a proxy that does not exist: the demo must bypass it for its loopback emulator
    env["HTTPS_PROXY"] = "http://127.0.0.1:9"
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "accessaudit",
            "demo",
            "--accounts",
            "900",
            "--seed",
            "5",
            "--out",
            str(out),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def run_dir(out: Path) -> Path:
    [run] = list((out / "runs").iterdir())
    return run


def test_sample_entra_demo_collects_through_graph_and_finds_the_same(tmp_path: Path) -> None:
    graph = demo(tmp_path / "graph", "--source", "sample-entra")
    plain = demo(tmp_path / "plain")

    assert graph.returncode == 0, graph.stderr
    assert plain.returncode == 0, plain.stderr
    assert "Traceback" not in graph.stderr
    # progress and notes go to stderr, the summary to stdout
    assert "Entra ID tenant served by the local Graph emulator at https://127.0.0.1:" in (
        graph.stderr
    )
    manifest = json.loads((run_dir(tmp_path / "graph") / "manifest.json").read_text())
    [entra] = [s for s in manifest["sources"] if s["name"] == "alliance-entra"]
    assert entra["kind"] == "entra" and entra["complete"] is True
    assert entra["source"] == f"entra:{TENANT_ID}"
    assert {u["name"] for u in entra["units"]} >= {"users", "groups", "members", "owners"}
    assert all(u["complete"] for u in entra["units"])
    [plain_entra] = [
        s
        for s in json.loads((run_dir(tmp_path / "plain") / "manifest.json").read_text())["sources"]
        if s["name"] == "alliance-entra"
    ]
    assert plain_entra["kind"] == "sample"
    assert entra["counts"] == plain_entra["counts"]
    round_trips = [ln for ln in graph.stderr.splitlines() if ln.startswith("Graph emulator: ")]
    assert len(round_trips) == 1 and int(round_trips[0].split()[2]) > 0

    def findings(out: Path) -> pl.DataFrame:
        return (
            pl.read_parquet(run_dir(out) / "findings.parquet")
            .select("finding_key", "rule_id", "severity", "status")
            .sort("finding_key")
        )

    assert findings(tmp_path / "graph").equals(findings(tmp_path / "plain"))
    assert findings(tmp_path / "graph").height > 0
    # the CA and the app's private key lived in a private temporary folder, removed at the end
    assert list((tmp_path / "tmp-graph").iterdir()) == []
