"""What-if: the snapshot with a plan applied, re-expanded and re-evaluated, in memory.

:func:`apply_actions` changes the snapshot tables as the actions would change the directories
(remove edges, split groups and take them out of the other force's parents, drop grants,
delete guests and empty groups, clear owners, managers and SID history); :func:`what_if`
re-runs expansion and every rule over the result with the *same* attribution (orgs are read
from the stored tables, not recomputed), and reports:

- ``remaining``: planned findings (the keys the actions say they resolve) still present; a
  valid plan has none;
- ``new``: findings the changed snapshot has that the original did not;
- ``collateral``: same-force accesses (account and group of one real organisation) lost by the
  plan. Per action, a lost pair is charged to every action whose removed edge lies below the
  group and above the account (the candidate pairs of that edge); a split keeps every mover's
  same-force parents on the new group, and leaves only parents of the other force, so it has
  none by construction;
- ``decisions``: findings whose action is a human decision (review, dual identity, shared
  account, exception renewal) and is not simulated.

Pure polars: tables in, tables out. Expansion and evaluation are handed in by the pipeline
(``reevaluate``), so this stage does not reach sideways into the engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from accessaudit.model import SPECIAL_ORGS, ActionKind, MemberKind
from accessaudit.remediation import commands
from accessaudit.remediation.crossing import split_unnests

A = ActionKind
_CAT = pl.Categorical()

#: Actions that change the directory, and so can be simulated.
SIMULATED = frozenset(
    {
        A.REMOVE_MEMBER.value,
        A.UNNEST_GROUP.value,
        A.SPLIT_GROUP.value,
        A.REMOVE_MEMBERSHIPS.value,
        A.REMOVE_OWNER.value,
        A.REMOVE_ROLE_ASSIGNMENT.value,
        A.REMOVE_APP_ROLE_ASSIGNMENT.value,
        A.REMOVE_SID_HISTORY.value,
        A.REMOVE_GUEST.value,
        A.DELETE_GROUP.value,
        A.CLEAR_MANAGER.value,
        A.REMOVE_ACE.value,
        A.CHANGE_OWNER.value,
        A.REMOVE_FOLDER_ACE.value,
        A.REMOVE_MAILBOX_PERMISSION.value,
        A.REMOVE_AZURE_ROLE_ASSIGNMENT.value,
    }
)
_EDGE_KINDS = (A.REMOVE_MEMBER.value, A.UNNEST_GROUP.value)
SPLIT_PREFIX = "split:"


def split_group_id(group_id: str, org: str) -> str:
    """Id of the new group a split creates for ``org``'s members (in memory only)."""
    return f"{SPLIT_PREFIX}{group_id}:{org}"


@dataclass
class WhatIf:
    """The result of applying a plan to a snapshot."""

    planned: int  # findings the simulated actions resolve
    remaining: list[str]  # of those, keys still present after the plan
    new: list[str]  # keys present after the plan that were not there before
    decisions: int  # findings whose action is a human decision (not simulated)
    collateral: pl.DataFrame  # account_id, group_id, org, action_ids (same-force access lost)
    seconds: float
    per_action: dict[str, int] = field(default_factory=dict)  # action_id -> collateral pairs

    @property
    def valid(self) -> bool:
        return not self.remaining

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "planned_findings": self.planned,
            "remaining": len(self.remaining),
            "remaining_keys": sorted(self.remaining),
            "new_findings": len(self.new),
            "new_keys": sorted(self.new),
            "decisions": self.decisions,
            "collateral": self.collateral.height,
            "collateral_pairs": [
                {"account_id": a, "group_id": g, "org": o, "action_ids": list(ids)}
                for a, g, o, ids in self.collateral.sort("account_id", "group_id").iter_rows()
            ],
            "seconds": round(self.seconds, 3),
        }


def _of(actions: pl.DataFrame, *kinds: str) -> pl.DataFrame:
    return actions.filter(pl.col("kind").is_in(list(kinds)))


def removed_edges(actions: pl.DataFrame, tables: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """``action_id, group_id, member_id``: every direct membership edge the actions remove
    (with a split's: the split group out of the other force's parents; its movers are moved by
    :func:`apply_actions`). ``tables`` needs ``memberships``, ``accounts``, ``groups``,
    ``findings`` and, when the actions split a group, ``finding_paths``."""
    mem = tables["memberships"].select("group_id", "member_id").unique()
    direct = _of(actions, *_EDGE_KINDS).select("action_id", "group_id", "member_id")
    # remove-memberships: exactly the edges the rendered command strips
    strip = _of(actions, A.REMOVE_MEMBERSHIPS.value).select("action_id", "member_id")
    stripped = pl.concat(
        [
            commands.strip_edges(tables["findings"], tables["accounts"], tables["groups"]),
            # and the other force's roles held through disabled application logins
            commands.disabled_logins(
                tables["memberships"].join(strip, on="member_id", how="semi"),
                tables["accounts"],
                tables["groups"],
            ),
        ]
    )
    strip_edges = strip.join(stripped, on="member_id").select("action_id", "group_id", "member_id")
    # a guest or a deleted group loses every edge it is on
    gone = _of(actions, A.REMOVE_GUEST.value, A.DELETE_GROUP.value).select(
        "action_id", obj=pl.coalesce("member_id", "group_id")
    )
    as_member = gone.join(mem, left_on="obj", right_on="member_id").select(
        "action_id", "group_id", member_id="obj"
    )
    as_group = gone.join(mem, left_on="obj", right_on="group_id").select(
        "action_id", group_id="obj", member_id="member_id"
    )
    parts = [direct, strip_edges, as_member, as_group]
    splits = _of(actions, A.SPLIT_GROUP.value)
    if splits.height:
        parts.append(
            split_unnests(
                splits, tables["findings"], tables["finding_paths"], tables["groups"], mem
            )
        )
    return pl.concat(parts).unique()


def _split(actions: pl.DataFrame, tables: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Per split: ``group_id``, ``member_id`` (a mover: an account of another real org),
    ``org`` (the mover's) and ``new_id``."""
    mem = tables["memberships"].filter(pl.col("member_kind") == MemberKind.ACCOUNT.value)
    acc_org = tables["accounts"].select(member_id="account_id", org="org")
    g_org = tables["groups"].select("group_id", _g_org="org")
    return (
        _of(actions, A.SPLIT_GROUP.value)
        .select("group_id")
        .unique()
        .join(mem.select("group_id", "member_id"), on="group_id")
        .join(acc_org, on="member_id")
        .join(g_org, on="group_id")
        .filter(~pl.col("org").is_in(list(SPECIAL_ORGS)) & (pl.col("org") != pl.col("_g_org")))
        .with_columns(new_id=pl.concat_str([pl.lit(SPLIT_PREFIX), "group_id", pl.lit(":"), "org"]))
        .select("group_id", "member_id", "org", "new_id")
    )


def apply_actions(
    tables: Mapping[str, pl.DataFrame], actions: pl.DataFrame
) -> dict[str, pl.DataFrame]:
    """The snapshot tables as they would be after ``actions`` (attributed accounts and groups,
    memberships, grants; ``group_closure`` is read, not updated)."""
    acc, grp, mem, grants = (tables[n] for n in ("accounts", "groups", "memberships", "grants"))
    edges = removed_edges(actions, tables).select("group_id", "member_id").unique()
    mem = mem.join(edges, on=["group_id", "member_id"], how="anti")
    movers = _split(actions, tables)
    if movers.height:
        mem, grp = _apply_splits(movers, mem, grp, tables["memberships"])
    grants = _drop_grants(grants, actions)
    owners = _of(actions, A.REMOVE_OWNER.value).select("group_id", _owner="member_id")
    if owners.height:
        grp, grants = _clear_owners(owners, grp, grants)
    acc = _clear_sid_history(acc, actions)
    acc = _clear_managers(acc, actions)
    acc, grp, grants, mem = _delete_objects(actions, acc, grp, grants, mem)
    return {"accounts": acc, "groups": grp, "memberships": mem, "grants": grants}


def _apply_splits(
    movers: pl.DataFrame, mem: pl.DataFrame, grp: pl.DataFrame, original: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Memberships and groups after the splits: the movers (:func:`_split`) leave the group for
    a new one of their org, which keeps the group's direct parents of that org (their
    same-force access, from the ``original`` memberships) and nothing else."""
    mem = mem.join(movers.select("group_id", "member_id"), on=["group_id", "member_id"], how="anti")
    g_org = grp.select(parent="group_id", _p_org="org")
    parents = (
        original.select(parent="group_id", group_id="member_id", source="source")
        .join(movers.select("group_id", "org", "new_id").unique(), on="group_id")
        .join(g_org, on="parent")
        .filter(pl.col("_p_org") == pl.col("org"))
    )
    src = grp.select("group_id", "source")
    moved = movers.join(src, on="group_id").select(
        "source", group_id="new_id", member_id="member_id"
    )
    added = pl.concat(
        [
            moved.with_columns(member_kind=pl.lit(MemberKind.ACCOUNT.value)),
            parents.select(
                "source",
                group_id="parent",
                member_id="new_id",
                member_kind=pl.lit(MemberKind.GROUP.value),
            ),
        ]
    ).with_columns(via=pl.lit("member"))
    mem = pl.concat([mem, added.select(mem.columns).cast(mem.schema)])
    new_groups = (
        movers.select("group_id", "org", "new_id")
        .unique()
        .join(grp, on="group_id")
        .with_columns(
            group_id=pl.col("new_id"),
            name=pl.concat_str([pl.col("name"), pl.lit("-"), pl.col("org").str.to_uppercase()]),
            sid=pl.lit(None, pl.String),
            dn=pl.lit(None, pl.String),
            managed_by=pl.lit(None, pl.String),
            owners=pl.lit([], pl.List(pl.String)),
            privileged=pl.lit(False),
        )
    )
    return mem, pl.concat([grp, new_groups.select(grp.columns).cast(grp.schema)])


def _drop_grants(grants: pl.DataFrame, actions: pl.DataFrame) -> pl.DataFrame:
    """The grants without the directory-role assignments and app-role assignments removed."""
    role_keys = _of(actions, A.REMOVE_ROLE_ASSIGNMENT.value).select(
        principal_id="member_id", resource_id="resource_id", right="right"
    )
    grants = grants.join(role_keys, on=["principal_id", "resource_id", "right"], how="anti")
    app_keys = _of(actions, A.REMOVE_APP_ROLE_ASSIGNMENT.value).select(
        principal_id="member_id", resource_id="resource_id"
    )
    grants = grants.join(app_keys, on=["principal_id", "resource_id"], how="anti")
    # an AD object's entries of one trustee (delegation, DCSync), or its owner
    for kind, kinds in (
        (A.REMOVE_ACE, ("delegation", "replication")),
        (A.CHANGE_OWNER, ("object-owner",)),
        (A.REMOVE_FOLDER_ACE, ("folder", "share")),  # icacls /remove:g: every allow entry
    ):
        keys = (
            _of(actions, kind.value)
            .select(principal_id="member_id", resource_id="resource_id")
            .join(pl.DataFrame({"resource_kind": list(kinds)}), how="cross")
        )
        grants = grants.join(keys, on=["principal_id", "resource_id", "resource_kind"], how="anti")
    # a mailbox permission or an Azure role assignment: that right only
    for kind, data in (
        (A.REMOVE_MAILBOX_PERMISSION, "mailbox"),
        (A.REMOVE_AZURE_ROLE_ASSIGNMENT, "azure-scope"),
    ):
        keys = _of(actions, kind.value).select(
            principal_id="member_id", resource_id="resource_id", right="right"
        )
        on = ["principal_id", "resource_id", "right"]
        grants = grants.join(
            keys.with_columns(resource_kind=pl.lit(data)), on=[*on, "resource_kind"], how="anti"
        )
    return grants


def _clear_owners(
    owners: pl.DataFrame, grp: pl.DataFrame, grants: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Groups and grants without the removed owners (``owners``: ``group_id``, ``_owner``):
    out of ``owners``, ``managed_by`` cleared when it is one, their owner grants dropped."""
    no_one = pl.lit([], pl.List(pl.String))
    per_group = owners.group_by("group_id").agg(_gone=pl.col("_owner"))
    grp = (
        grp.join(per_group, on="group_id", how="left")
        .with_columns(
            owners=pl.col("owners").list.set_difference(pl.col("_gone").fill_null(no_one)),
            managed_by=pl.when(
                pl.col("_gone").fill_null(no_one).list.contains(pl.col("managed_by"))
            )
            .then(pl.lit(None, pl.String))
            .otherwise(pl.col("managed_by")),
        )
        .drop("_gone")
    )
    grants = grants.join(
        owners.select(principal_id="_owner", resource_id="group_id"),
        on=["principal_id", "resource_id"],
        how="anti",
    )
    return grp, grants


def _clear_sid_history(acc: pl.DataFrame, actions: pl.DataFrame) -> pl.DataFrame:
    sid_gone = _of(actions, A.REMOVE_SID_HISTORY.value).select(
        account_id="member_id", _sid=pl.coalesce("resource_id", "right")
    )
    if not sid_gone.height:
        return acc
    per_acc = sid_gone.group_by("account_id").agg(_gone=pl.col("_sid"))
    return (
        acc.join(per_acc, on="account_id", how="left")
        .with_columns(
            sid_history=pl.col("sid_history").list.set_difference(
                pl.col("_gone").fill_null(pl.lit([], pl.List(pl.String)))
            )
        )
        .drop("_gone")
    )


def _clear_managers(acc: pl.DataFrame, actions: pl.DataFrame) -> pl.DataFrame:
    managers = _of(actions, A.CLEAR_MANAGER.value)["member_id"].drop_nulls().to_list()
    if not managers:
        return acc
    return acc.with_columns(
        manager_id=pl.when(pl.col("account_id").is_in(managers))
        .then(pl.lit(None, pl.String))
        .otherwise(pl.col("manager_id"))
    )


def _delete_objects(
    actions: pl.DataFrame,
    acc: pl.DataFrame,
    grp: pl.DataFrame,
    grants: pl.DataFrame,
    mem: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Accounts, groups, grants and memberships without the deleted guests and empty groups
    (and every grant and membership they are on)."""
    guests = _of(actions, A.REMOVE_GUEST.value)["member_id"].drop_nulls().to_list()
    deleted = _of(actions, A.DELETE_GROUP.value)["group_id"].drop_nulls().to_list()
    gone = [*guests, *deleted]
    if not gone:
        return acc, grp, grants, mem
    acc = acc.filter(~pl.col("account_id").is_in(guests))
    grp = grp.filter(~pl.col("group_id").is_in(deleted))
    grants = grants.filter(~pl.col("principal_id").is_in(gone) & ~pl.col("resource_id").is_in(gone))
    mem = mem.filter(~pl.col("member_id").is_in(gone) & ~pl.col("group_id").is_in(gone))
    return acc, grp, grants, mem


def same_force(
    effective: pl.DataFrame, accounts: pl.DataFrame, groups: pl.DataFrame
) -> pl.DataFrame:
    """``account_id, group_id, org``: accesses where account and group are of one real org.

    The ids stay Categorical (as in EFFECTIVE_SCHEMA): at 1M accounts this is most of the
    ~70M effective pairs, compared before and after by an anti-join on the codes."""
    a = accounts.select(pl.col("account_id").cast(_CAT), org="org")
    g = groups.select(pl.col("group_id").cast(_CAT), _g_org="org")
    return (
        effective.lazy()
        .select(pl.col("account_id", "group_id").cast(_CAT))
        .unique()
        .join(a.lazy(), on="account_id")
        .join(g.lazy(), on="group_id")
        .filter((pl.col("org") == pl.col("_g_org")) & ~pl.col("org").is_in(list(SPECIAL_ORGS)))
        .select("account_id", "group_id", "org")
        .collect()
    )


def _charge(
    lost: pl.DataFrame, actions: pl.DataFrame, tables: Mapping[str, pl.DataFrame]
) -> pl.DataFrame:
    """Each lost pair with the actions whose removed edge (g, m) lies on a path to it: the
    account is m or below m, and the group is g or above g (original closure)."""
    edges = removed_edges(actions, tables)
    closure = tables["group_closure"].select("group_id", "ancestor_id")
    eff = (
        tables["effective_memberships"]
        .lazy()
        .select(pl.col("account_id").cast(_CAT), member_id=pl.col("group_id").cast(_CAT))
    )
    up = pl.concat(
        [edges.select("group_id", top="group_id").unique(), closure.rename({"ancestor_id": "top"})]
    )
    # accounts at or below the removed member
    below = pl.concat(
        [
            edges.select("action_id", "group_id", account_id="member_id"),
            edges.lazy()
            .select("action_id", "group_id", pl.col("member_id").cast(_CAT))
            .join(eff, on="member_id")
            .select("action_id", "group_id", pl.col("account_id").cast(pl.String))
            .unique()
            .collect(),
        ]
    )
    cand = below.join(up, on="group_id").select("action_id", "account_id", group_id="top")
    return (
        lost.join(cand, on=["account_id", "group_id"], how="left")
        .group_by("account_id", "group_id", "org")
        .agg(action_ids=pl.col("action_id").drop_nulls().unique().sort())
    )


#: (accounts, groups, memberships, grants) -> (findings, effective memberships)
Reevaluate = Callable[
    [pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]
]


def what_if(
    tables: Mapping[str, pl.DataFrame], actions: pl.DataFrame, reevaluate: Reevaluate
) -> WhatIf:
    """Apply ``actions`` to the stored run ``tables`` (attributed accounts and groups,
    memberships, grants, group_closure, effective_memberships, findings, finding_paths) and
    re-evaluate."""
    started = time.perf_counter()
    simulated = actions.filter(pl.col("kind").is_in(list(SIMULATED)))
    after = apply_actions(tables, simulated)
    found, effective = reevaluate(
        after["accounts"], after["groups"], after["memberships"], after["grants"]
    )
    before_keys = set(tables["findings"]["finding_key"].to_list())
    after_keys = set(found["finding_key"].to_list())
    planned = set(simulated["finding_keys"].explode().drop_nulls().to_list())
    decided = set(
        actions.filter(~pl.col("kind").is_in(list(SIMULATED)))["finding_keys"]
        .explode()
        .drop_nulls()
        .to_list()
    )
    before_access = same_force(
        tables["effective_memberships"], tables["accounts"], tables["groups"]
    )
    after_access = same_force(effective, after["accounts"], after["groups"])
    lost = before_access.join(after_access, on=["account_id", "group_id"], how="anti").with_columns(
        pl.col("account_id", "group_id").cast(pl.String)
    )
    collateral = _charge(lost, simulated, tables).select(
        "account_id", "group_id", "org", "action_ids"
    )
    per_action = dict(
        collateral.explode("action_ids")
        .drop_nulls("action_ids")
        .group_by("action_ids")
        .len()
        .iter_rows()
    )
    return WhatIf(
        planned=len(planned),
        remaining=sorted(planned & after_keys),
        new=sorted(after_keys - before_keys),
        decisions=len(decided - planned),
        collateral=collateral,
        seconds=time.perf_counter() - started,
        per_action={str(k): int(v) for k, v in per_action.items()},
    )
