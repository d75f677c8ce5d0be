"""``accessaudit survey``: how the directory splits by every attribution signal, how the
configuration attributes each part, the matchers the data proposes, and the coverage gate.

The tables come from the configured sources (collected as ``run`` collects them, nothing
stored) or from a stored run (``run_dir``: read, never written). Accounts and groups are
attributed with the configuration as it is now (:mod:`accessaudit.analysis.attribution`),
surveyed (:mod:`accessaudit.analysis.survey`) and given proposals
(:mod:`accessaudit.analysis.survey_proposals`); the result is one plain document, the same for
the terminal and ``--json``. Files written (``--json``, ``--proposals``) are owner-only; the
configuration is only changed with ``write``: the proposals are appended as ``[[matchers]]``
entries after the file's own bytes, which stay as they were, and only once the whole file has
been checked to load.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from accessaudit.analysis import survey as sv
from accessaudit.analysis.attribution import attribute_accounts, attribute_groups
from accessaudit.analysis.expand import group_closure
from accessaudit.analysis.survey_proposals import Proposal, propose
from accessaudit.config.organisations import Organisation
from accessaudit.config.preflight import check_sources
from accessaudit.config.settings import Settings, parse_settings
from accessaudit.config.survey import fragment
from accessaudit.errors import ConfigError
from accessaudit.model import ORG_COLUMNS
from accessaudit.pipeline.collect import collect_sources, combine
from accessaudit.pipeline.hosts import load_config
from accessaudit.pipeline.progress import Counts, Progress, no_counts, noop
from accessaudit.store.runs import atomic_write_bytes, open_run, read_table

#: The threshold of ``--check`` for each (kind, status), as ``[survey]`` names it.
THRESHOLDS = {
    ("accounts", "unattributed"): "max_unattributed_accounts",
    ("accounts", "conflicting"): "max_conflicting_accounts",
    ("groups", "unattributed"): "max_unattributed_groups",
    ("groups", "conflicting"): "max_conflicting_groups",
}


@dataclass
class SurveyOutcome:
    """The survey's ``document`` (what ``--json`` writes), the ``--check`` thresholds
    exceeded (``breaches``, one line each), the ``[[matchers]]`` ``proposals`` as TOML and the
    files written."""

    document: dict[str, Any]
    breaches: list[str]
    proposals: str
    written: list[Path] = field(default_factory=list)


def _tables(
    settings: Settings, config_path: Path, run_dir: Path | None, progress: Progress, counts: Counts
) -> tuple[dict[str, pl.DataFrame], str]:
    if run_dir is not None:
        run = open_run(run_dir)
        progress(f"reading run {run.run_id}")
        tables = {n: read_table(run, n) for n in ("accounts", "groups", "memberships", "grants")}
        org_cols = ORG_COLUMNS.names()
        for name in ("accounts", "groups"):
            tables[name] = tables[name].drop([c for c in org_cols if c in tables[name].columns])
        return tables, f"run {run.run_id}"
    check_sources(settings, config_path)
    collected = collect_sources(settings, now=datetime.now(UTC), progress=progress, counts=counts)
    return combine(collected), "collected now"


def _with(settings: Settings, orgs: Sequence[Organisation]) -> Settings:
    return settings.model_copy(update={"organisations": list(orgs)})


def _proposal(p: Proposal, names: Mapping[str, str]) -> dict[str, Any]:
    return {
        "signal": p.signal,
        "value": p.value,
        "org": p.org,
        "share": round(p.share, 4),
        "support": p.support,
        "holders": p.holders,
        "round": p.round,
        "reason": p.reason,
        "note": p.note,
        "moves": p.moves,
        "moves_with_access": p.moves_with_access,
        "conflicts": p.conflicts,
        "moved": [{"id": i, "name": names.get(i)} for i in p.moved],
        "conflicting": [{"id": i, "name": names.get(i)} for i in p.conflicting],
    }


def _kind(
    kind: str,
    attributed: pl.DataFrame,
    acc: pl.DataFrame,
    attribute: Callable[[Sequence[Organisation]], pl.DataFrame],
    settings: Settings,
) -> tuple[dict[str, Any], list[Proposal]]:
    survey = sv.survey(attributed, kind, acc)
    proposals, orgs = propose(
        survey, attributed, settings.organisations,
        min_share=settings.survey.min_share, min_support=settings.survey.min_support,
    )  # fmt: skip
    after = survey.objects
    if proposals:  # the figures once applied: attributed again, with every matcher
        again = attribute(orgs)
        after = after.with_columns(org=again["org"], status=again.select(sv.status()).to_series())
    name_col = "username" if kind == "accounts" else "name"
    names = dict(zip(attributed[_id(kind)], attributed[name_col], strict=True))
    cov = sv.coverage(attributed, survey.objects["holds_access"])
    doc = {
        "totals": sv.totals(survey.objects),
        "coverage": cov.to_dicts(),
        "buckets": survey.buckets.to_dicts(),
        "conflicts": sv.conflicts(attributed).to_dicts(),
        "proposals": [_proposal(p, names) for p in proposals],
        "after_proposals": sv.totals(after),
    }
    return doc, proposals


def _id(kind: str) -> str:
    return "account_id" if kind == "accounts" else "group_id"


def survey_document(
    settings: Settings, tables: Mapping[str, pl.DataFrame], progress: Progress = noop
) -> tuple[dict[str, Any], list[Proposal]]:
    """The survey of ``tables`` with ``settings``: per kind its totals, coverage by signal,
    buckets, conflicts, proposals and the totals once every proposal is applied."""
    progress("attributing with the configuration as it is")
    accounts = attribute_accounts(tables["accounts"], settings, tables["grants"])
    groups = attribute_groups(tables["groups"], accounts, settings)
    privileged = sv.privileged_groups(groups, group_closure(tables["memberships"]))
    memberships, grants = tables["memberships"], sv.without_control(tables["grants"])
    progress("surveying accounts")
    account_doc, account_props = _kind(
        "accounts",
        accounts,
        sv.access(accounts["account_id"], "account", memberships, grants, privileged),
        lambda orgs: attribute_accounts(tables["accounts"], _with(settings, orgs), grants),
        settings,
    )
    progress("surveying groups")
    group_doc, group_props = _kind(
        "groups",
        groups,
        sv.group_access(groups["group_id"], memberships, grants, privileged),
        lambda orgs: attribute_groups(tables["groups"], accounts, _with(settings, orgs)),
        settings,
    )
    return {"accounts": account_doc, "groups": group_doc}, [*account_props, *group_props]


def check_breaches(document: Mapping[str, Any], settings: Settings) -> list[str]:
    """One line per ``[survey]`` threshold the document's objects holding access exceed."""
    out = []
    for (kind, status), key in THRESHOLDS.items():
        found = int(document[kind]["totals"][f"{status}_with_access"])
        limit = int(getattr(settings.survey, key))
        if found > limit:
            out.append(f"{found} {status} {kind} hold access (survey.{key} = {limit})")
    return out


def _comments(p: Proposal) -> list[str]:
    lines = [
        f"{p.kind}: {p.signal} -> {p.org}: moves {p.moves} unattributed {p.kind} "
        f"({p.moves_with_access} holding access), makes {p.conflicts} conflicting",
    ]
    if p.note:
        lines.append(f"note: {p.note}")
    return lines


def run_survey(
    config_path: Path,
    *,
    run_dir: Path | None = None,
    json_out: Path | None = None,
    proposals_out: Path | None = None,
    write: bool = False,
    now: datetime | None = None,
    progress: Progress = noop,
    counts: Counts = no_counts,
) -> SurveyOutcome:
    """Survey the configured sources (or the stored run ``run_dir``) with the configuration at
    ``config_path``; write the JSON document, the proposals and (``write``) append the
    proposals to the configuration. The ``--check`` breaches are in the outcome either way."""
    settings = load_config(config_path)
    tables, origin = _tables(settings, config_path, run_dir, progress, counts)
    document, proposals = survey_document(settings, tables, progress)
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = {
        "generated": stamp,
        "config": str(config_path),
        "tables": origin,
        "thresholds": {k: getattr(settings.survey, k) for k in THRESHOLDS.values()},
        **document,
    }
    breaches = check_breaches(document, settings)
    document["breaches"] = breaches
    text = (
        fragment(
            [(p.added(), _comments(p)) for p in proposals],
            f"accessaudit survey {stamp}: {len(proposals)} proposed matcher(s) from "
            f"{origin}; review each before the next run",
        )
        if proposals
        else ""
    )
    outcome = SurveyOutcome(document, breaches, text)
    if json_out is not None:
        data = json.dumps(document, indent=1, ensure_ascii=False, default=str).encode()
        outcome.written.append(atomic_write_bytes(json_out, data + b"\n"))
    if proposals_out is not None and text:
        outcome.written.append(atomic_write_bytes(proposals_out, text.encode()))
    if write and text:
        outcome.written.append(append_to_config(config_path, text))
    return outcome


def append_to_config(config_path: Path, text: str) -> Path:
    """Append ``text`` to the configuration, its own bytes unchanged (a newline first when it
    lacks a last one), once the result has been checked to load; its mode is kept."""
    target = config_path.resolve()
    raw = target.read_bytes()
    sep = b"" if raw.endswith(b"\n") or not raw else b"\n"
    combined = raw + sep + b"\n" + text.encode()
    try:
        decoded = combined.decode("utf-8-sig")
        parse_settings(tomllib.loads(decoded), decoded, str(config_path))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ConfigError) as exc:
        raise ConfigError(
            f"{config_path}: the proposals would not load appended to it ({exc})",
            "apply them by hand from --proposals FILE",
        ) from None
    mode = target.stat().st_mode & 0o7777
    atomic_write_bytes(target, combined)
    target.chmod(mode)
    return target
