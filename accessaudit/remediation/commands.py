"""Render actions as the exact change an identity team makes (vectorised polars strings).

Objects are named by their immutable id (objectGUID / Entra object id), never by a display name,
so a command cannot be redirected by a hostile or duplicated name. Where a name must appear (a
new group's name, a comment), it is sanitised: control and bidi characters removed, single quotes
(including the typographic ones PowerShell also treats as quotes) doubled. Ids inside OData
filters and JSON bodies keep only the characters an id, SID or directory scope can hold.

Each action says where the change is made (``system``, the values of ``groups.mastered``),
routed by the system of record:

- ``ad``: AD-mastered objects (including groups synced to Entra: change them in AD, the copy
  follows) - PowerShell ActiveDirectory module (``Remove-ADGroupMember`` ...);
- ``cloud``: cloud-only groups, directory roles, app roles, guests - Microsoft Graph PowerShell,
  and the Graph request(s) it issues in ``graph`` (``DELETE /groups/{id}/members/{id}/$ref``);
- ``app``: application roles from CSV exports - a comment naming the change to make in the app;
- ``register``: an entry of the exceptions register.

Each action kind has one renderer (:data:`RENDERERS`): membership and attribution changes in
:mod:`accessaudit.remediation.commands_membership`, a split's in
:mod:`accessaudit.remediation.commands_split`, rights, identities and exceptions in
:mod:`accessaudit.remediation.commands_rights`. This module gathers what the renderers need
about the objects an action names (:func:`render_commands`' context columns) and runs each
renderer over the rows of its kind.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from accessaudit.model import SPECIAL_ORGS, ActionKind, Via
from accessaudit.remediation import commands_control as control
from accessaudit.remediation import commands_data as data
from accessaudit.remediation import commands_membership as membership
from accessaudit.remediation import commands_rights as rights
from accessaudit.remediation import commands_trust as trust
from accessaudit.remediation.commands_split import split_group
from accessaudit.remediation.quoting import Rendered, comment_text, id_text, ps_quote

A = ActionKind

__all__ = ["RENDERERS", "comment_text", "id_text", "ps_quote", "render_commands", "strip_edges"]

#: Each action kind's renderer; a kind not listed gets no commands (null columns).
RENDERERS: dict[ActionKind, Callable[[], Rendered]] = {
    A.REMOVE_MEMBER: membership.remove_member,
    A.UNNEST_GROUP: membership.unnest_group,
    A.SPLIT_GROUP: split_group,
    A.REMOVE_MEMBERSHIPS: membership.remove_memberships,
    A.REVIEW_ATTRIBUTION: membership.review_attribution,
    A.REMOVE_OWNER: rights.remove_owner,
    A.REMOVE_ROLE_ASSIGNMENT: rights.remove_role_assignment,
    A.REMOVE_APP_ROLE_ASSIGNMENT: rights.remove_app_role_assignment,
    A.REMOVE_SID_HISTORY: rights.remove_sid_history,
    A.REMOVE_GUEST: rights.remove_guest,
    A.CLEAR_MANAGER: rights.clear_manager,
    A.DECIDE_SHARED_ACCOUNT: rights.decide_shared_account,
    A.RESOLVE_DUAL_IDENTITY: rights.resolve_dual_identity,
    A.REVIEW_EXCEPTION: rights.review_exception,
    A.DELETE_GROUP: rights.delete_group,
    A.QUARANTINE_TRUST: trust.quarantine_trust,
    A.REMOVE_TRUST: trust.remove_trust,
    A.REMOVE_ACE: control.remove_ace,
    A.CHANGE_OWNER: control.change_owner,
    A.REMOVE_FOLDER_ACE: data.remove_folder_ace,
    A.REMOVE_MAILBOX_PERMISSION: data.remove_mailbox_permission,
    A.REMOVE_AZURE_ROLE_ASSIGNMENT: data.remove_azure_role_assignment,
}
_COLUMNS = Rendered._fields


def render_commands(
    actions: pl.DataFrame,
    *,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
    findings: pl.DataFrame,
    splits: pl.DataFrame,
) -> pl.DataFrame:
    """Add ``system``, ``summary``, ``powershell`` and ``graph`` to ``actions`` (``splits``:
    :func:`accessaudit.remediation.split.describe` of its split actions).

    Each kind's expressions run only on the rows of that kind (one ``when/then`` chain per
    column over every kind would build every kind's text, split groups' member lists
    included, on every row: 23 of 28 s of the plan at 1M accounts); the parts are put back
    in the actions' order. Rows of a kind without commands get nulls.
    """
    a = _context(actions, accounts, groups, memberships, findings, splits).with_row_index("_row")
    kind = pl.col("kind")
    parts = []
    for k, render in RENDERERS.items():
        part = a.filter(kind == k.value)
        if part.height:
            exprs = render()
            parts.append(
                part.with_columns(
                    **{c: e.cast(pl.String) for c, e in zip(_COLUMNS, exprs, strict=True)}
                )
            )
    other = a.filter(~kind.is_in([k.value for k in RENDERERS]) | kind.is_null())
    parts.append(other.with_columns(**{c: pl.lit(None, pl.String) for c in _COLUMNS}))
    return pl.concat(parts).sort("_row").drop("_row")


# --- context: what the renderers need about the objects an action names ---------------------


def _context(
    actions: pl.DataFrame,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
    findings: pl.DataFrame,
    splits: pl.DataFrame,
) -> pl.DataFrame:
    """The actions with what their commands need about the objects they name (``splits``:
    :func:`accessaudit.remediation.split.describe` of the split actions).

    Every lookup is cut to the ids the actions name before its ``unique`` / ``group_by``
    (semi-joins on the left-join keys, so the joined values are the same): at 1M accounts
    the full tables made this 2.8 s of the plan.
    """
    act_groups = actions.select("group_id").drop_nulls().unique()
    act_members = actions.select("member_id").drop_nulls().unique()
    act_resources = actions.select("resource_id").drop_nulls().unique()
    strip, primary = _strip_context(findings, accounts, groups, memberships, act_members)
    return (
        actions.join(_group_context(groups, act_groups), on="group_id", how="left")
        .join(_member_context(accounts, groups, act_members), on="member_id", how="left")
        .join(_other_account(accounts, act_resources), on="resource_id", how="left")
        .join(_primary_via(memberships, act_groups), on=["group_id", "member_id"], how="left")
        .join(splits, on="group_id", how="left")
        .join(strip, on="member_id", how="left")
        .join(primary, on="member_id", how="left")
        .with_columns(
            pl.col("_strip").fill_null(pl.lit([], pl.List(pl.String))),
            pl.col("_strip_primary").fill_null(False),
        )
    )


def _column(df: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.Expr:
    """``df``'s column ``name``, or nulls for tables stored before it existed."""
    return pl.col(name) if name in df.columns else pl.lit(None, dtype)


def _group_context(groups: pl.DataFrame, act_groups: pl.DataFrame) -> pl.DataFrame:
    """``_g_*``: the group an action names."""
    return (
        groups.join(act_groups, on="group_id", how="semi")
        .select(
            "group_id",
            _g_name="name",
            _g_dn="dn",
            _g_sid="sid",
            _g_scope="scope",
            _g_mastered="mastered",
            _g_kind="kind",
            _g_rule=_column(groups, "membership_rule", pl.String()),
            _g_mail=_column(groups, "mail_enabled", pl.Boolean()),
            _g_org="org",
            _g_source="source",
        )
        .unique("group_id")
    )


def _member_context(
    accounts: pl.DataFrame, groups: pl.DataFrame, act_members: pl.DataFrame
) -> pl.DataFrame:
    """``_m_*``: the member an action names, an account or a group."""
    names = pl.concat(
        [
            accounts.select(
                member_id="account_id",
                _m_name="username",
                _m_upn="upn",
                _m_sid="sid",
                _m_enabled="enabled",
                # no sign-ins recorded (or a run stored before the column): never disabled
                _m_untracked=~_column(accounts, "activity_tracked", pl.Boolean()).fill_null(False),
                _m_source="source",
                _m_org="org",
                _m_sid_history=_column(accounts, "sid_history", pl.List(pl.String())),
            ),
            groups.select(
                member_id="group_id",
                _m_name="name",
                _m_upn=pl.lit(None, pl.String),
                _m_sid="sid",
                _m_enabled=pl.lit(None, pl.Boolean),
                _m_untracked=pl.lit(False),
                _m_source="source",
                _m_org="org",
                _m_sid_history=pl.lit(None, pl.List(pl.String)),
            ),
        ]
    )
    return names.join(act_members, on="member_id", how="semi").unique("member_id")


def _other_account(accounts: pl.DataFrame, act_resources: pl.DataFrame) -> pl.DataFrame:
    """``_r_*``: the account an action names as its resource (a dual identity's other one)."""
    return accounts.select(resource_id="account_id", _r_name="username", _r_source="source").join(
        act_resources, on="resource_id", how="semi"
    )


def _primary_via(memberships: pl.DataFrame, act_groups: pl.DataFrame) -> pl.DataFrame:
    """``_via``: set where the action's group is its member's primary group, or where the member
    is in it as a foreign principal or through its sIDHistory (analysis.foreign)."""
    special = [Via.PRIMARY_GROUP.value, Via.FOREIGN_PRINCIPAL.value, Via.SID_HISTORY.value]
    return (
        memberships.join(act_groups, on="group_id", how="semi")
        .select("group_id", member_id="member_id", _via="via")
        .filter(pl.col("_via").is_in(special))
        .unique(["group_id", "member_id"])
    )


def _strip_context(
    findings: pl.DataFrame,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
    act_members: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per account: ``_strip``, the groups its remove-memberships leaves (:func:`strip_edges`),
    and ``_strip_primary``, whether one of them is its primary group."""
    strip = strip_edges(
        findings.join(act_members, left_on="account_id", right_on="member_id", how="semi"),
        accounts,
        groups,
    )
    primary = (
        memberships.filter(pl.col("via") == Via.PRIMARY_GROUP.value)
        .select("group_id", "member_id")
        .join(strip, on=["group_id", "member_id"], how="semi")
        .select("member_id", _strip_primary=pl.lit(True))
        .unique("member_id")
    )
    strip = strip.group_by("member_id").agg(_strip=pl.col("group_id").unique().sort())
    logins = (
        disabled_logins(memberships.join(act_members, on="member_id", how="semi"), accounts, groups)
        .join(groups.select("group_id", _role="name", _app="source"), on="group_id", how="left")
        .sort("member_id", "_app", "_role")
        .group_by("member_id", maintain_order=True)
        .agg(_logins=pl.struct(app="_app", role="_role"))
    )
    return strip.join(logins, on="member_id", how="full", coalesce=True), primary


def disabled_logins(
    memberships: pl.DataFrame, accounts: pl.DataFrame, groups: pl.DataFrame
) -> pl.DataFrame:
    """``member_id, group_id``: an account's application roles of the other force held through
    a login the application has disabled. No access today, so no finding of its own; but a
    re-enabled login gives the role back, so an inactive account's remove-memberships takes
    them out too (in the application: its command says which role, in which application)."""
    return (
        memberships.filter(pl.col("via") == Via.CSV_DISABLED.value)
        .select("group_id", "member_id")
        .join(groups.select("group_id", _g_org="org"), on="group_id")
        .join(accounts.select(member_id="account_id", _a_org="org"), on="member_id")
        .filter(
            (pl.col("_g_org") != pl.col("_a_org"))
            & ~pl.col("_g_org").is_in(list(SPECIAL_ORGS))
            & ~pl.col("_a_org").is_in(list(SPECIAL_ORGS))
        )
        .select("member_id", "group_id")
        .unique()
    )


def strip_edges(
    findings: pl.DataFrame, accounts: pl.DataFrame, groups: pl.DataFrame
) -> pl.DataFrame:
    """The edges a remove-memberships action removes: ``member_id`` (account), ``group_id``.

    The account's direct memberships *in the other force's groups* on its cross-force paths,
    in the account's own directory (an application's roles are changed in the application).
    Its own force's groups are left alone: where such a group is nested across, the un-nest
    action cuts the path without taking same-force access away. A dynamic group's membership
    comes from its rule, so it cannot be stripped: that access goes with the group's own action
    (change the rule). Shared by the commands, the what-if and apply, so all three remove
    exactly the same edges.
    """
    rule = (
        pl.col("membership_rule")
        if "membership_rule" in groups.columns
        else pl.lit(None, pl.String)
    )
    return (
        findings.filter(pl.col("account_id").is_not_null() & pl.col("via_group_id").is_not_null())
        .select(member_id="account_id", group_id="via_group_id")
        .unique()
        .join(
            groups.filter(rule.is_null()).select("group_id", _g_source="source", _g_org="org"),
            on="group_id",
        )
        .join(
            accounts.select(member_id="account_id", _m_source="source", _a_org="org"),
            on="member_id",
        )
        .filter(
            (pl.col("_g_source") == pl.col("_m_source")) & (pl.col("_g_org") != pl.col("_a_org"))
        )
        .select("member_id", "group_id")
    )
