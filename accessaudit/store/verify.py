"""``accessaudit verify``: is a stored run exactly what was written, and in its place in the chain?

Checks, for one run (or every run of a data directory):

* every file the manifest lists exists and has the recorded SHA-256 and size (**changed**,
  **missing**); no other file is in the run folder (**extra**);
* the manifest is readable, names the folder it is in (a manifest copied or restored from
  another run is **replayed**), and no two runs share a manifest;
* the chain: ``previous_run`` is the run stored immediately before this one, and the SHA-256 of
  that run's ``manifest.json`` is ``previous_manifest_sha256`` (**chain**). Runs that retention
  deleted in between (it keeps the newest complete run, so a prune can leave gaps) are crossed
  through their ``pruned-runs.jsonl`` entries, hash by hash: each entry's ``manifest_sha256``
  must be the hash the later run recorded, and its ``previous_run`` and
  ``previous_manifest_sha256`` lead on to the stored run before (or to the chain's start). A
  gap the ledger does not explain, or an entry with another hash, is a problem naming the run.
  The run after this one (if any) must record this manifest's hash, so an edited manifest whose
  file hashes were recomputed is still caught.

The newest manifest has no successor yet: keep its SHA-256 elsewhere (the ``--json-log`` line
of each run carries it, for a SIEM) to anchor the chain's head.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from accessaudit.store.ledger import (
    LEDGER,
    LedgerLine,
    chain_problems,
    read_ledger,
    tail_problem,
    vouched_problems,
)
from accessaudit.store.runs import (
    MANIFEST,
    RunStore,
    manifest_problems,
    parse_manifest,
    sha256_file,
)

KINDS: Final = ("changed", "missing", "extra", "manifest", "replayed", "chain", "ledger")


@dataclass(frozen=True)
class Problem:
    run_id: str
    kind: str  # one of KINDS
    name: str  # the file (or run) concerned
    detail: str

    def __str__(self) -> str:
        return f"{self.run_id}: {self.kind}: {self.name}: {self.detail}"


@dataclass(frozen=True)
class _Run:
    folder: str
    path: Path
    manifest: Mapping[str, Any] | None
    sha256: str | None  # of manifest.json


def _load(path: Path) -> tuple[_Run, list[Problem]]:
    mp = path / MANIFEST
    try:
        data = mp.read_bytes()
    except FileNotFoundError:
        return _Run(path.name, path, None, None), [
            Problem(path.name, "missing", MANIFEST, "the run has no manifest")
        ]
    digest = hashlib.sha256(data).hexdigest()
    try:
        manifest = parse_manifest(data)
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        return _Run(path.name, path, None, digest), [
            Problem(path.name, "manifest", MANIFEST, f"unreadable: {str(exc)[:120]}")
        ]
    shape = [Problem(path.name, "manifest", MANIFEST, p) for p in manifest_problems(manifest)]
    return _Run(path.name, path, manifest, digest), shape


def _files(run: _Run) -> list[Problem]:
    assert run.manifest is not None
    problems: list[Problem] = []
    listed = run.manifest.get("files")
    if not isinstance(listed, Mapping):
        return [Problem(run.folder, "manifest", MANIFEST, "no 'files' table")]
    for name, meta in sorted(listed.items()):
        path = run.path / name
        if Path(name).name != name or not isinstance(meta, Mapping):
            problems.append(Problem(run.folder, "manifest", name, "not a plain file entry"))
            continue
        if not path.is_file():
            problems.append(Problem(run.folder, "missing", name, "listed in the manifest"))
            continue
        got = sha256_file(path)
        if got != meta.get("sha256"):
            problems.append(
                Problem(
                    run.folder,
                    "changed",
                    name,
                    f"sha256 {got} differs from the manifest's {meta.get('sha256')}",
                )
            )
        elif meta.get("bytes") is not None and path.stat().st_size != meta.get("bytes"):
            problems.append(Problem(run.folder, "changed", name, "size differs from the manifest"))
    for path in sorted(run.path.iterdir()):
        if path.name != MANIFEST and path.name not in listed:
            problems.append(Problem(run.folder, "extra", path.name, "not in the manifest"))
    return problems


def _identity(run: _Run) -> list[Problem]:
    assert run.manifest is not None
    claimed = str(run.manifest.get("run_id"))
    if claimed != run.folder:
        return [
            Problem(
                run.folder,
                "replayed",
                MANIFEST,
                f"the manifest is run {claimed}'s, not this folder's",
            )
        ]
    return []


#: The hash an old ledger entry cannot give: entries written before ``previous_manifest_sha256``
#: was added to the ledger (0.1.0 pre-releases) link to their previous run by name only.
_UNRECORDED: Final = "(not in this pruned-runs.jsonl entry)"


@dataclass(frozen=True)
class _Reached:
    """The walk back from a run got to the run stored before it (or to the chain's start)."""

    expected: str | None  # the hash the chain records for that run's manifest
    via: str | None  # the deleted run whose ledger entry records it; None: the run's manifest

    def recorder(self) -> str:
        return "here" if self.via is None else f"for deleted run {self.via} in pruned-runs.jsonl"


def _walk(
    run: _Run, before: _Run | None, ledger: Mapping[str, Mapping[str, Any]]
) -> _Reached | Problem:
    """Follow ``previous_run`` from ``run`` back to ``before`` (the run stored just before it).

    Retention may have deleted runs in between (it keeps the newest complete run whatever the
    policy, so gaps are normal). Each deleted run is crossed through its ``pruned-runs.jsonl``
    entry, hash by hash: the manifest hash recorded by the later run must be the entry's
    ``manifest_sha256``, and the entry's ``previous_run`` and ``previous_manifest_sha256`` lead
    on. A previous run that is neither stored just before nor in the ledger is a problem naming
    it, and so is a ledger entry whose hash differs.
    """
    assert run.manifest is not None
    prev = run.manifest.get("previous_run")
    recorded = run.manifest.get("previous_manifest_sha256")
    via: str | None = None
    crossed: set[str] = set()
    while True:
        source = "the manifest" if via is None else f"pruned-runs.jsonl (deleted run {via})"
        if before is not None and prev == before.folder:
            return _Reached(recorded, via)
        if prev is None:
            if before is None:
                return _Reached(None, via)
            return Problem(
                run.folder,
                "chain",
                "previous_run",
                f"{source} gives no previous run, but {before.folder} is stored before it "
                "(a run was inserted, removed or replayed)",
            )
        prev = str(prev)
        if prev in crossed:
            return Problem(run.folder, "chain", prev, "pruned-runs.jsonl loops back to this run")
        entry = ledger.get(prev)
        if entry is None:
            if before is None:
                detail = "the previous run is missing"
                if via is not None:
                    detail = f"the previous run of deleted run {via} is missing"
                return Problem(run.folder, "chain", prev, detail)
            return Problem(
                run.folder,
                "chain",
                prev,
                f"{source} gives {prev} as previous run, but {before.folder} is stored before "
                "it and pruned-runs.jsonl has no entry for it (a run was inserted, removed or "
                "replayed)",
            )
        if recorded != _UNRECORDED and entry.get("manifest_sha256") != recorded:
            return Problem(
                run.folder,
                "chain",
                prev,
                "the deleted run's manifest hash in pruned-runs.jsonl differs from the one "
                f"recorded {_Reached(recorded, via).recorder()}",
            )
        crossed.add(prev)
        via = prev
        prev = entry.get("previous_run")
        recorded = entry.get("previous_manifest_sha256", _UNRECORDED)


def _differs(link: _Reached, before: _Run) -> bool:
    """The chain records another hash for ``before``'s manifest than the one it has."""
    return link.expected != _UNRECORDED and link.expected != before.sha256


def _candidates(runs_dir: Path) -> list[Path]:
    if not runs_dir.is_dir():
        return []
    return sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def run_folders(data_dir: Path) -> list[str]:
    """Names of the run folders of ``data_dir`` (oldest first)."""
    return [p.name for p in _candidates(RunStore(data_dir).runs_dir)]


def verify(data_dir: Path, run_ids: Iterable[str] | None = None) -> list[Problem]:
    """Problems of the given runs (default: every run) of ``data_dir``; [] when intact."""
    store = RunStore(data_dir)
    folders = _candidates(store.runs_dir)
    loaded = [_load(p) for p in folders]
    runs = [r for r, _ in loaded]
    wanted = set(run_ids) if run_ids is not None else {r.folder for r in runs}
    try:
        lines = read_ledger(store.data_dir)
    except OSError as exc:
        return [Problem(LEDGER, "ledger", LEDGER, f"cannot be read: {exc.strerror}")]
    ledger = {str(ln.entry["run_id"]): ln.entry for ln in lines if ln.entry is not None}
    links = [
        _walk(r, runs[i - 1] if i else None, ledger) if r.manifest is not None else None
        for i, r in enumerate(runs)
    ]
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for i, (run, load_problems) in enumerate(loaded):
        if run.sha256 is not None and run.sha256 in seen and run.folder in wanted:
            problems.append(
                Problem(run.folder, "replayed", MANIFEST, f"identical to {seen[run.sha256]}'s")
            )
        if run.sha256 is not None:
            seen.setdefault(run.sha256, run.folder)
        if run.folder not in wanted:
            continue
        problems.extend(load_problems)
        if run.manifest is None:
            continue
        problems.extend(_identity(run))
        problems.extend(_files(run))
        link = links[i]
        if isinstance(link, Problem):
            problems.append(link)
        elif i and isinstance(link, _Reached) and _differs(link, runs[i - 1]):
            before = runs[i - 1]
            problems.append(
                Problem(
                    run.folder,
                    "chain",
                    before.folder,
                    f"{before.folder}/{MANIFEST} has sha256 {before.sha256}, not the "
                    f"{link.expected} recorded {link.recorder()} (that manifest was changed or "
                    "replaced)",
                )
            )
        # the next run vouches for this manifest (an edited manifest with recomputed hashes),
        # directly or through the ledger entries of the runs deleted in between
        after = links[i + 1] if i + 1 < len(runs) else None
        if isinstance(after, _Reached) and _differs(after, run):
            problems.append(
                Problem(
                    run.folder,
                    "chain",
                    MANIFEST,
                    f"run {runs[i + 1].folder} recorded a different hash of this manifest"
                    + (f" (in the pruned-runs.jsonl entry of {after.via})" if after.via else "")
                    + " (it was changed after that run)",
                )
            )
    missing = sorted(wanted - {r.folder for r in runs})
    problems.extend(Problem(m, "missing", m, "no such run") for m in missing)
    problems.extend(_ledger_problems(runs, lines))
    return problems


def _ledger_problems(runs: list[_Run], lines: list[LedgerLine]) -> list[Problem]:
    """The ledger's own chain, each run's record of it, and the lines no run vouches for
    (see :mod:`accessaudit.store.ledger`)."""
    out = [Problem(LEDGER, "ledger", f"line {n}", detail) for n, detail in chain_problems(lines)]
    newest: _Run | None = None
    for run in runs:
        recorded = run.manifest.get("pruned_ledger") if run.manifest is not None else None
        if not isinstance(recorded, Mapping):
            continue  # written before the ledger was recorded
        problem = vouched_problems(lines, recorded)
        if problem:
            out.append(Problem(run.folder, "ledger", LEDGER, problem))
        newest = run
    if newest is None or newest.manifest is None or "retention" not in newest.manifest:
        return out
    seen = newest.manifest["pruned_ledger"].get("entries")
    seen = seen if isinstance(seen, int) else len(lines)
    every = [r.folder for r in runs] + [
        str(ln.entry["run_id"]) for ln in lines if ln.entry is not None
    ]
    now = datetime.now(UTC)
    stored = {r.folder: bool(r.manifest.get("complete")) for r in runs if r.manifest is not None}
    for line in lines[seen:]:
        if line.entry is None:
            continue  # named above
        problem = tail_problem(
            line.entry, newest.folder, newest.manifest.get("retention"), stored, every, now
        )
        if problem:
            out.append(Problem(LEDGER, "ledger", f"line {line.number}", problem))
    return out
