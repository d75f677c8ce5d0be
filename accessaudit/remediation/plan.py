"""Findings -> the concrete actions that resolve them, each with its impact.

Where a nested path crosses from one organisation into the other, the action is placed at that
crossing edge (:mod:`accessaudit.remediation.crossing`): un-nest the group (one change for every
member behind it) rather than remove each member. When the group at the crossing is *mixed* (used by
both forces, so cutting it would take legitimate access away), the action is to split that group
instead: its other force's members move to a new group of their own force, and the group leaves the
other force's parents it was crossing into (:mod:`accessaudit.remediation.split`). The smallest
action wins in two more places: every access of a guest of the other force goes with the guest (one
deletion), and every link of an empty group to the other force (its nesting, owner, roles) goes with
the group.

An inactive account's finding (remove-memberships) is credited to the action whose change
removes its cross-force access: its own remove-memberships when stripping its direct
memberships does, else the action at the crossing of its access (an un-nest, a split, a role
removal). An action never claims a finding its command does not remove.

Each action lists the findings it resolves; actions are ordered by severity, then by how many
findings they resolve. Only *open* findings are planned: an accepted one (an exception of the
register) is left alone. Everything is polars joins over the findings and their paths: no
per-finding Python.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from accessaudit.config.organisations import Organisation
from accessaudit.model import (
    ACTIONS_SCHEMA,
    SEVERITY_RANK,
    ActionKind,
    MemberKind,
    Severity,
)
from accessaudit.remediation import split
from accessaudit.remediation.commands import render_commands, strip_edges
from accessaudit.remediation.crossing import ACCESS_ACTIONS, crossing_edges, split_unnests
from accessaudit.remediation.executable import with_apply

A = ActionKind
#: Actions on one of an account's rights, which deleting the account (a guest) also resolves. A
#: directory role is not among them: it is the most dangerous right a guest can hold, apply can
#: remove it at once, and a guest's deletion is a person's decision (apply never deletes
#: people) that must not hold the role's removal back.
_GUEST_ROUTED = [
    A.REMOVE_MEMBER.value,
    A.REMOVE_MEMBERSHIPS.value,
    A.REMOVE_OWNER.value,
    A.REMOVE_APP_ROLE_ASSIGNMENT.value,
]
#: Actions on a group's link to the other organisation, which deleting the (empty) group resolves.
_EMPTY_ROUTED = [
    A.UNNEST_GROUP.value,
    A.REMOVE_OWNER.value,
    A.REMOVE_ROLE_ASSIGNMENT.value,
    A.REMOVE_APP_ROLE_ASSIGNMENT.value,
]
_NULL = pl.lit(None, pl.String)
#: Actions on a trust: the finding's resource is the trustedDomain object, its right the trust.
TRUST_ACTIONS = [A.QUARANTINE_TRUST.value, A.REMOVE_TRUST.value]
#: Actions on an AD object's security descriptor: the finding's resource is the object.
CONTROL_ACTIONS = [A.REMOVE_ACE.value, A.CHANGE_OWNER.value]
#: Actions on a data path (a folder or share, a mailbox, an Azure scope): the finding's
#: resource, and the right removed there.
DATA_ACTIONS = [
    A.REMOVE_FOLDER_ACE.value,
    A.REMOVE_MAILBOX_PERMISSION.value,
    A.REMOVE_AZURE_ROLE_ASSIGNMENT.value,
]


def _rank_expr(col: str) -> pl.Expr:
    return pl.col(col).replace_strict({s.value: r for s, r in SEVERITY_RANK.items()}, default=0)


def _flagged(findings: pl.DataFrame, rule: str, column: str) -> list[str]:
    """Ids in ``column`` of the findings of ``rule`` (mixed groups, empty groups, guests)."""
    return findings.filter(pl.col("rule_id") == rule)[column].drop_nulls().unique().to_list()


def mixed_groups(findings: pl.DataFrame) -> pl.DataFrame:
    """Groups the mixed-group rule fired on (one column: ``group_id``)."""
    return findings.filter(pl.col("rule_id") == "mixed-group").select("group_id").unique()


def _targets(
    f: pl.DataFrame, mixed: list[str], empty: list[str], guests: list[str]
) -> pl.DataFrame:
    """Per finding: the action ``kind`` and its targets ``t_group``, ``t_member``,
    ``t_resource``, ``t_right``: the rule's action at the crossing edge, then re-routed to the
    smallest action that removes it (a split of a mixed group, the deletion of an empty group
    or of a guest)."""
    return (
        _rule_targets(f)
        .pipe(_route_to_splits, mixed)
        .pipe(_route_to_deletions, empty, guests)
        .pipe(_review_targets)
    )


def _rule_targets(f: pl.DataFrame) -> pl.DataFrame:
    """The rule's own action: an access is cut at its crossing edge (``cross_group``,
    ``cross_member``: a remove-member at the account's own membership, else an un-nest), a
    nesting finding un-nests its group, every other action targets what its finding names."""
    action = pl.col("action")
    is_access = action.is_in(ACCESS_ACTIONS) & pl.col("account_id").is_not_null()
    is_nesting = action.is_in(ACCESS_ACTIONS) & pl.col("member_group_id").is_not_null()
    principal = pl.coalesce("account_id", "member_group_id")
    access_kind = (
        pl.when(pl.col("hop").fill_null(1) <= 1)
        .then(pl.lit(A.REMOVE_MEMBER.value))
        .otherwise(pl.lit(A.UNNEST_GROUP.value))
    )
    return f.with_columns(
        kind=pl.when(is_access)
        .then(access_kind)
        .when(is_nesting)
        .then(pl.lit(A.UNNEST_GROUP.value))
        .otherwise(action),
        t_group=pl.when(is_access)
        .then(pl.coalesce("cross_group", "group_id"))
        .when(action.is_in([A.REMOVE_MEMBERSHIPS.value, A.REMOVE_GUEST.value]))
        .then(_NULL)
        .otherwise(pl.col("group_id")),
        t_member=pl.when(is_access)
        .then(pl.coalesce("cross_member", "account_id"))
        .when(is_nesting)
        .then(pl.col("member_group_id"))
        .when(action == A.DELETE_GROUP.value)
        .then(_NULL)
        .otherwise(principal),
        t_resource=pl.when(
            action.is_in(
                [
                    A.REMOVE_ROLE_ASSIGNMENT.value,
                    A.REMOVE_APP_ROLE_ASSIGNMENT.value,
                    A.REMOVE_SID_HISTORY.value,
                    A.RESOLVE_DUAL_IDENTITY.value,
                    A.REVIEW_EXCEPTION.value,
                    *TRUST_ACTIONS,
                    *CONTROL_ACTIONS,
                    *DATA_ACTIONS,
                ]
            )
        )
        .then(pl.col("resource_id"))
        .otherwise(_NULL),
        # an app role assignment is removed per (principal, application): all of its roles there
        t_right=pl.when(
            action.is_in(
                [
                    A.REMOVE_ROLE_ASSIGNMENT.value,
                    A.REMOVE_SID_HISTORY.value,
                    *TRUST_ACTIONS,
                    A.REMOVE_ACE.value,
                    *DATA_ACTIONS,
                ]
            )
        )
        .then(pl.col("right"))
        .otherwise(_NULL),
    )


def _route_to_splits(planned: pl.DataFrame, mixed: list[str]) -> pl.DataFrame:
    """A mixed group at the crossing is split rather than stripped."""
    split_target = (
        pl.when((pl.col("kind") == A.REMOVE_MEMBER.value) & pl.col("t_group").is_in(mixed))
        .then(pl.col("t_group"))
        .when((pl.col("kind") == A.UNNEST_GROUP.value) & pl.col("t_member").is_in(mixed))
        .then(pl.col("t_member"))
    )
    return planned.with_columns(_split=split_target).with_columns(
        kind=pl.when(pl.col("_split").is_not_null())
        .then(pl.lit(A.SPLIT_GROUP.value))
        .otherwise(pl.col("kind")),
        t_group=pl.coalesce("_split", "t_group"),
        t_member=pl.when(pl.col("_split").is_not_null()).then(_NULL).otherwise(pl.col("t_member")),
    )


def _route_to_deletions(planned: pl.DataFrame, empty: list[str], guests: list[str]) -> pl.DataFrame:
    """An empty group that only links the forces is deleted, with every one of its links; a
    guest of the other force is deleted, with every one of its own rights."""
    empty_target = (
        pl.when(
            pl.col("kind").is_in(_EMPTY_ROUTED)
            & pl.col("member_group_id").is_in(empty)
            & pl.col("account_id").is_null()
        )
        .then(pl.col("member_group_id"))
        .when((pl.col("kind") == A.REMOVE_OWNER.value) & pl.col("group_id").is_in(empty))
        .then(pl.col("group_id"))
    )
    guest_target = pl.when(
        pl.col("kind").is_in(_GUEST_ROUTED)
        & pl.col("account_id").is_in(guests)
        & (pl.col("t_member") == pl.col("account_id")).fill_null(True)
    ).then(pl.col("account_id"))
    deleted = pl.col("_empty").is_not_null() | pl.col("_guest").is_not_null()
    return planned.with_columns(_empty=empty_target, _guest=guest_target).with_columns(
        kind=pl.when(pl.col("_empty").is_not_null())
        .then(pl.lit(A.DELETE_GROUP.value))
        .when(pl.col("_guest").is_not_null())
        .then(pl.lit(A.REMOVE_GUEST.value))
        .otherwise(pl.col("kind")),
        t_group=pl.when(pl.col("_empty").is_not_null())
        .then(pl.col("_empty"))
        .when(pl.col("_guest").is_not_null())
        .then(_NULL)
        .otherwise(pl.col("t_group")),
        t_member=pl.when(pl.col("_empty").is_not_null())
        .then(_NULL)
        .otherwise(pl.coalesce("_guest", "t_member")),
        t_resource=pl.when(deleted).then(_NULL).otherwise(pl.col("t_resource")),
        t_right=pl.when(deleted).then(_NULL).otherwise(pl.col("t_right")),
    )


def _review_targets(planned: pl.DataFrame) -> pl.DataFrame:
    """A review names the finding's group and account; a split names no member."""
    return planned.with_columns(
        t_group=pl.when(pl.col("kind") == A.REVIEW_ATTRIBUTION.value)
        .then(pl.col("group_id"))
        .otherwise(pl.col("t_group")),
        t_member=pl.when(pl.col("kind") == A.REVIEW_ATTRIBUTION.value)
        .then(pl.col("account_id"))
        .when(pl.col("kind") == A.SPLIT_GROUP.value)
        .then(_NULL)
        .otherwise(pl.col("t_member")),
    )


_KEYS = ["kind", "t_group", "t_member", "t_resource", "t_right"]
#: Rule actions of an account's own cross-force rights (memberships, roles, app roles): what
#: the inactive-account rule counts.
_RIGHTS = [*ACCESS_ACTIONS, A.REMOVE_ROLE_ASSIGNMENT.value, A.REMOVE_APP_ROLE_ASSIGNMENT.value]


def _credit_inactive(
    planned: pl.DataFrame, accounts: pl.DataFrame, groups: pl.DataFrame
) -> pl.DataFrame:
    """Re-target each inactive account's remove-memberships finding to the action that removes
    its cross-force access.

    Its remove-memberships strips the account's direct memberships of the other force's
    groups (:func:`~accessaudit.remediation.commands.strip_edges`); it keeps the finding when
    that covers every cross-force right of the account (the account's other findings, each
    along its recorded path). Otherwise the finding goes to the action of the uncovered rights
    (the worst, then the one resolving most of them): an un-nest at the crossing, a split, a
    role or app-role removal; the account needs no remove-memberships action of its own, and
    its direct memberships go with their own remove-member actions.
    """
    is_strip = pl.col("kind") == A.REMOVE_MEMBERSHIPS.value
    inactive = planned.filter(is_strip)
    if inactive.is_empty():
        return planned
    covered = strip_edges(planned, accounts, groups).select(
        account_id="member_id", via_group_id="group_id", _covered=pl.lit(True)
    )
    chosen = (
        planned.filter(~is_strip & pl.col("action").is_in(_RIGHTS))
        .join(inactive.select("account_id").unique(), on="account_id", how="semi")
        .join(covered, on=["account_id", "via_group_id"], how="left")
        .filter(pl.col("_covered").is_null())
        .with_columns(_r=_rank_expr("severity"))
        .group_by("account_id", *_KEYS)
        .agg(_r=pl.col("_r").max(), _n=pl.len())
        .sort(
            ["account_id", "_r", "_n", *_KEYS],
            descending=[False, True, True, *[False] * len(_KEYS)],
            nulls_last=True,
        )
        .unique("account_id", keep="first")
        .select("account_id", *[pl.col(k).alias(f"_c{k}") for k in _KEYS])
    )
    moved = inactive.join(chosen, on="account_id", how="left").with_columns(
        pl.when(pl.col("_ckind").is_not_null()).then(pl.col(f"_c{k}")).otherwise(pl.col(k)).alias(k)
        for k in _KEYS
    )
    return pl.concat([planned.filter(~is_strip), moved.select(planned.columns)])


def plan_actions(
    findings: pl.DataFrame,
    *,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
    paths: pl.DataFrame,
    organisations: Iterable[Organisation] = (),
) -> pl.DataFrame:
    """One row per action (ACTIONS_SCHEMA), with the open findings it resolves.

    ``paths`` is the run's ``finding_paths`` (see
    :func:`~accessaudit.remediation.crossing.crossing_edges`).

    ``organisations`` (the configured ones) give a split's new group its force's OU and name
    prefix (their ``ou`` and ``name_prefix`` matchers).
    """
    if "status" in findings.columns:
        findings = findings.filter(pl.col("status") == "open")
    if findings.is_empty():
        return pl.DataFrame(schema=ACTIONS_SCHEMA)
    mixed = mixed_groups(findings).get_column("group_id").to_list()
    empty = _flagged(findings, "empty-cross-org-group", "group_id")
    guests = _flagged(findings, "cross-org-guest", "account_id")
    edges = crossing_edges(findings, paths, groups)
    planned = _targets(findings.join(edges, on="finding_key", how="left"), mixed, empty, guests)
    planned = _credit_inactive(planned, accounts, groups)
    actions = (
        planned.with_columns(
            action_id=pl.concat_str([pl.col(k).fill_null("") for k in _KEYS], separator="|"),
            _rank=_rank_expr("severity"),
        )
        .group_by("action_id", *_KEYS)
        .agg(
            _rank=pl.col("_rank").max(),
            finding_keys=pl.col("finding_key").sort(),
            resolves=pl.len().cast(pl.Int64),
            _res_org=pl.col("resource_org").drop_nulls().min(),
            _rights=pl.col("right").drop_nulls().unique().sort(),
        )
        .with_columns(
            severity=pl.col("_rank").replace_strict(
                {r: s.value for s, r in SEVERITY_RANK.items()}, default=Severity.INFO.value
            )
        )
        .rename(
            {
                "t_group": "group_id",
                "t_member": "member_id",
                "t_resource": "resource_id",
                "t_right": "right",
            }
        )
    )
    actions = _member_kind_and_owner(actions, accounts, groups)
    splits = split.describe(
        actions.filter(pl.col("kind") == A.SPLIT_GROUP.value),
        accounts=accounts,
        groups=groups,
        memberships=memberships,
        unnests=split_unnests(actions, findings, paths, groups, memberships),
        places=split.places(organisations),
    )
    actions = render_commands(
        actions,
        accounts=accounts,
        groups=groups,
        memberships=memberships,
        findings=planned,
        splits=splits,
    )
    actions = with_apply(actions, accounts)
    return (
        actions.sort(["_rank", "resolves", "action_id"], descending=[True, True, False])
        .select(ACTIONS_SCHEMA.names())
        .cast(dict(ACTIONS_SCHEMA))  # type: ignore[arg-type]
    )


def _member_kind_and_owner(
    actions: pl.DataFrame, accounts: pl.DataFrame, groups: pl.DataFrame
) -> pl.DataFrame:
    """``member_kind`` of what is removed; ``owning_org``: the organisation owning the changed
    object (the group; for a removed right, the force whose role or app it is; else the
    account)."""
    acc = accounts.select(member_id="account_id", _acc_org="org", _is_acc=pl.lit(True)).unique(
        "member_id"
    )
    grp_member = groups.select(member_id="group_id", _grp_member_org="org").unique("member_id")
    grp = groups.select("group_id", _grp_org="org").unique("group_id")
    out = (
        actions.join(acc, on="member_id", how="left")
        .join(grp_member, on="member_id", how="left")
        .join(grp, on="group_id", how="left")
    )
    rights = [
        A.REMOVE_ROLE_ASSIGNMENT.value,
        A.REMOVE_APP_ROLE_ASSIGNMENT.value,
        A.REMOVE_GUEST.value,
    ]
    return out.with_columns(
        member_kind=pl.when(pl.col("_is_acc"))
        .then(pl.lit(MemberKind.ACCOUNT.value))
        .when(pl.col("_grp_member_org").is_not_null())
        .then(pl.lit(MemberKind.GROUP.value)),
        owning_org=pl.when(pl.col("kind").is_in(rights))
        .then(pl.coalesce("_res_org", "_grp_org", "_acc_org", "_grp_member_org"))
        .otherwise(pl.coalesce("_grp_org", "_acc_org", "_grp_member_org", "_res_org")),
    ).drop("_acc_org", "_is_acc", "_grp_member_org", "_grp_org")
