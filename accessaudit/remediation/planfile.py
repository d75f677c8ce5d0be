"""The saved plan: a run's actions, their what-if, batches and a SHA-256 over all of it.

Shape (``format`` = ``accessaudit-plan/1``)::

    {"format", "run_id", "run_manifest_sha256", "created", "as_of",
     "what_if": {valid, planned_findings, remaining, remaining_keys, new_findings, new_keys,
                 decisions, collateral, collateral_pairs: [{account_id, group_id, org,
                 action_ids}], seconds},
     "actions": [{action_id, batch_id, kind, severity, system, group_id, member_id,
                  member_kind, resource_id, right, owning_org, resolves, finding_keys,
                  collateral, summary, powershell, graph,
                  target: {group_sid, group_dn, group_mastered, group_source, member_sid,
                           member_dn, member_source, via, manager_id, membership_rule,
                           exchange, service_principal,
                           strip: [{group_id, group_sid, group_dn, via}],
                           split: {name, sam, ou, scope, description, members, parents,
                                   unnest}}}],
     "sha256"}

``target.manager_id`` is the manager a ``clear-manager`` removes (another one found by ``apply``
is drift); ``target.membership_rule`` / ``target.exchange`` mark a cloud group's member that
Graph cannot remove (a dynamic group's rule; an Exchange group), left to a person by ``apply``;
``target.service_principal`` marks a ``remove-owner`` of an enterprise application (an owner of
its service principal: ``/servicePrincipals/{id}/owners``, not ``/groups/{id}/owners``);
``target.strip`` lists the edges a ``remove-memberships`` removes (the same edges as
its command and the what-if: :func:`commands.strip_edges`), which ``apply`` removes one by one;
``target.split`` is a ``split-group``'s new group (name, sAMAccountName, OU, scope and
description as its command makes it), the movers, the same-force parents it joins and the
other force's parents the split group leaves (:func:`accessaudit.remediation.split.describe`),
which ``apply`` executes step by step.

``sha256`` is the SHA-256 of the canonical JSON (sorted keys, no spaces) of everything else;
:func:`load_plan` recomputes it, so any edit of the file is refused. ``apply`` also wants the
hash an approver saw (``--sha256``) before it writes anything.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from accessaudit.errors import AuditError
from accessaudit.model import GroupKind, Via
from accessaudit.remediation.commands import strip_edges
from accessaudit.remediation.whatif import WhatIf
from accessaudit.store.runs import atomic_write_bytes

FORMAT = "accessaudit-plan/1"
BATCH_SIZE = 25  # actions per batch, within one system and kind


class PlanError(AuditError):
    """A plan file is missing, malformed or does not match its hash."""


def canonical(doc: dict[str, Any]) -> bytes:
    body = {k: v for k, v in doc.items() if k != "sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def plan_hash(doc: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(doc)).hexdigest()


def _targets(
    actions: pl.DataFrame,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
) -> pl.DataFrame:
    rule, mail = (
        pl.col(c) if c in groups.columns else pl.lit(None, t)
        for c, t in (("membership_rule", pl.String()), ("mail_enabled", pl.Boolean()))
    )
    g = groups.select(
        "group_id",
        group_sid="sid",
        group_dn="dn",
        group_mastered="mastered",
        group_source="source",
        group_kind="kind",
        # Graph cannot remove a dynamic group's or an Exchange group's members (apply: manual)
        membership_rule=rule,
        exchange=mail.fill_null(False) & (pl.col("kind") != "m365").fill_null(True),
    ).unique("group_id")
    members = pl.concat(
        [
            accounts.select(
                member_id="account_id", member_sid="sid", member_dn="dn", member_source="source"
            ),
            groups.select(
                member_id="group_id", member_sid="sid", member_dn="dn", member_source="source"
            ),
        ]
    ).unique("member_id")
    via = (
        memberships.select("group_id", "member_id", "via")
        .sort("via", descending=True)  # primaryGroupID sorts after member: keep it when both
        .with_columns(primary=pl.col("via") == Via.PRIMARY_GROUP.value)
        .group_by("group_id", "member_id")
        .agg(
            via=pl.when(pl.col("primary").any())
            .then(pl.lit(Via.PRIMARY_GROUP.value))
            .otherwise(pl.col("via").first())
        )
    )
    return (
        actions.select("action_id", "group_id", "member_id")
        .join(g, on="group_id", how="left")
        .join(members, on="member_id", how="left")
        .join(via, on=["group_id", "member_id"], how="left")
    )


def _strips(
    findings: pl.DataFrame,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
) -> dict[str, list[dict[str, Any]]]:
    """account -> the edges its ``remove-memberships`` removes, each with the group's SID, DN
    and how the edge was collected (a primary-group edge is refused by apply)."""
    edges = strip_edges(findings, accounts, groups)
    if edges.is_empty():
        return {}
    via = (
        memberships.select("group_id", "member_id", "via")
        .sort("via", descending=True)  # primaryGroupID first: kept when an edge has both
        .unique(["group_id", "member_id"], keep="first", maintain_order=True)
    )
    rows = (
        edges.join(groups.select("group_id", group_sid="sid", group_dn="dn").unique("group_id"),
                   on="group_id", how="left")
        .join(via, on=["group_id", "member_id"], how="left")
        .sort("member_id", "group_id")
    )  # fmt: skip
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows.to_dicts():
        out.setdefault(r.pop("member_id"), []).append(r)
    return out


def _split_targets(splits: pl.DataFrame, groups: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """group -> its split's new group and edges, as its command renders them (the new group
    takes the split group's scope; its description names the group it was split from)."""
    g = groups.select("group_id", _g_name="name", _g_scope="scope").unique("group_id")
    rows = splits.join(g, on="group_id", how="left").filter(pl.col("_split_members").is_not_null())
    return {
        r["group_id"]: {
            "name": r["_new_name"],
            "sam": r["_new_sam"],
            "ou": r["_new_ou"],
            "scope": r["_g_scope"] or "global",
            "description": f"Split from {r['_g_name'] or '?'} by accessaudit",
            "members": list(r["_split_members"]),
            "parents": list(r["_split_parents"]),
            "unnest": list(r["_split_unnest"]),
        }
        for r in rows.to_dicts()
    }


def with_batches(actions: pl.DataFrame) -> pl.DataFrame:
    """``actions`` + ``batch_id``: ``<system>-<kind>-NNN``, :data:`BATCH_SIZE` actions of one
    system and kind per batch, numbered in the actions' order."""
    return (
        actions.with_columns(_n=pl.int_range(pl.len()).over("system", "kind"))
        .with_columns(
            batch_id=pl.concat_str(
                [
                    pl.col("system").fill_null("none"),
                    pl.lit("-"),
                    pl.col("kind"),
                    pl.lit("-"),
                    (pl.col("_n") // BATCH_SIZE + 1).cast(pl.String).str.zfill(3),
                ]
            )
        )
        .drop("_n")
    )


def build_plan(
    run_id: str,
    run_manifest_sha256: str,
    actions: pl.DataFrame,
    *,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
    whatif: WhatIf,
    as_of: datetime,
    findings: pl.DataFrame | None = None,
    splits: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """The plan document (with its ``sha256``) for a run's ``actions`` (``findings``: the
    run's, for the edges of ``remove-memberships``; ``splits``: ``split.describe`` of its
    split actions)."""
    targets = {
        r["action_id"]: r for r in _targets(actions, accounts, groups, memberships).to_dicts()
    }
    strips = _strips(findings, accounts, groups, memberships) if findings is not None else {}
    managers = (
        dict(
            accounts.select("account_id", "manager_id")
            .drop_nulls()
            .unique("account_id")
            .iter_rows()
        )
        if "manager_id" in accounts.columns
        else {}
    )
    split_of = _split_targets(splits, groups) if splits is not None else {}
    rows = with_batches(actions)
    out = []
    for r in rows.to_dicts():
        t = targets.get(r["action_id"], {})
        r["target"] = {k: t.get(k) for k in (
            "group_sid", "group_dn", "group_mastered", "group_source",
            "member_sid", "member_dn", "member_source", "via")}  # fmt: skip
        if r["kind"] == "clear-manager":
            r["target"]["manager_id"] = managers.get(r["member_id"])
        if r["system"] == "cloud" and r["kind"] in ("remove-member", "unnest-group"):
            if t.get("membership_rule") is not None:
                r["target"]["membership_rule"] = t["membership_rule"]
            if t.get("exchange"):
                r["target"]["exchange"] = True
        if r["kind"] == "remove-owner" and t.get("group_kind") == GroupKind.APP_ROLE.value:
            r["target"]["service_principal"] = True
        if r["kind"] == "remove-memberships":
            r["target"]["strip"] = strips.get(r["member_id"], [])
        if r["kind"] == "split-group" and r["group_id"] in split_of:
            r["target"]["split"] = split_of[r["group_id"]]
        r["collateral"] = whatif.per_action.get(r["action_id"], 0)
        out.append(r)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "run_id": run_id,
        "run_manifest_sha256": run_manifest_sha256,
        "created": datetime.now(UTC).isoformat(),
        "as_of": as_of.isoformat(),
        "what_if": whatif.to_dict(),
        "actions": out,
    }
    doc["sha256"] = plan_hash(doc)
    return doc


def save_plan(doc: dict[str, Any], path: Path) -> Path:
    data = json.dumps(doc, indent=1, sort_keys=True, default=str).encode() + b"\n"
    return atomic_write_bytes(path, data)


def load_plan(path: Path, expected_sha256: str | None = None) -> dict[str, Any]:
    """Read a saved plan; refuse it when its content does not match its (or the approved) hash."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(f"plan {path} not found", "make one with `accessaudit plan RUN`") from None
    except (OSError, ValueError) as exc:
        raise PlanError(f"cannot read plan {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise PlanError(f"{path} is not an accessaudit plan ({FORMAT})")
    got = plan_hash(doc)
    if doc.get("sha256") != got:
        raise PlanError(
            f"plan {path} does not match its hash (content sha256 {got[:16]}..., "
            f"recorded {str(doc.get('sha256'))[:16]}...)",
            "the plan was edited after it was made; make a new one with `accessaudit plan`",
        )
    if expected_sha256 is not None and expected_sha256.lower() != got:
        raise PlanError(
            f"plan {path} has sha256 {got[:16]}..., not the approved {expected_sha256[:16]}...",
            "apply exactly the plan that was approved",
        )
    return doc
