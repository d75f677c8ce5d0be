"""What the run was, from its manifest: ids and hashes, the sources read, how complete they
were and which signals they lack, the files written. Every string is made visible (hidden
characters shown)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from accessaudit.hidden import visible

_COUNT_ORDER: Final = ("accounts", "groups", "memberships", "grants")


def run_info(manifest: Mapping[str, Any], generated: str | None) -> dict[str, Any]:
    """The run's ids, times and hashes; ``generated`` defaults to the run's end."""
    finished = manifest.get("finished")
    return {
        "run_id": visible(manifest.get("run_id")),
        "tool_version": visible(manifest.get("tool_version")),
        "started": visible(manifest.get("started")),
        "finished": visible(finished),
        "generated": visible(generated if generated is not None else finished),
        "config_hash": visible(manifest.get("config_hash")),
        "rules_hash": visible(manifest.get("rules_hash")),
    }


def sources(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each source read, its counts and units, and whether it is provably complete."""
    out = []
    for src in manifest.get("sources") or []:
        counts = dict(src.get("counts") or {})
        names = [n for n in _COUNT_ORDER if n in counts]
        names += sorted(n for n in counts if n not in _COUNT_ORDER)
        units = [
            {
                "name": visible(u.get("name")),
                "complete": u.get("complete") is True,
                "detail": visible(u.get("detail")),
                "count": int(u.get("count") or 0),
            }
            for u in src.get("units") or []
        ]
        out.append(
            {
                "name": visible(src.get("name")),
                "source": visible(src.get("source")),
                "kind": visible(src.get("kind")),
                "started": visible(src.get("started")),
                "finished": visible(src.get("finished")),
                # complete only with proof: the source says so and no unit says otherwise
                "complete": src.get("complete") is True and all(u["complete"] for u in units),
                "counts": [{"name": visible(n), "value": int(counts[n] or 0)} for n in names],
                "units": units,
                "incomplete_units": [u for u in units if not u["complete"]],
                "last_logon": _signal(src, "last_logon"),
            }
        )
    return out


def _signal(src: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """Whether the source records the signal ``name`` (e.g. ``last_logon``: without it dormancy
    is unknown) and why not; None when the manifest does not say (a run stored before)."""
    signal = (src.get("signals") or {}).get(name)
    if not isinstance(signal, Mapping):
        return None
    return {"recorded": signal.get("recorded") is True, "detail": visible(signal.get("detail"))}


def dormancy_unknown(srcs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The directories that say they do not record last sign-ins: none of their accounts is
    called dormant or disabled for it. Not an incompleteness: shown beside it. Application
    exports never record them (their users matched to directory accounts are judged there):
    the sources table says so, the banner does not repeat it on every run."""
    return [
        s
        for s in srcs
        if s["last_logon"] is not None and not s["last_logon"]["recorded"] and s["kind"] != "csv"
    ]


def files(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The run's files with their hashes, sizes and row counts, by name."""
    return [
        {
            "name": visible(name),
            "sha256": visible(meta.get("sha256")),
            "bytes": int(meta.get("bytes") or 0),
            "rows": None if meta.get("rows") is None else int(meta["rows"]),
        }
        for name, meta in sorted((manifest.get("files") or {}).items())
    ]
