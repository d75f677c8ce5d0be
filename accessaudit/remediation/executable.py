"""Whether ``apply`` executes each planned action, and why not, decided when the plan is made.

The reason is :func:`accessaudit.remediation.apply.changes.manual_reason` itself, over the same
target the saved plan will record (a cloud group's membership rule or Exchange flag, the manager
a ``clear-manager`` removes, the edges of a ``remove-memberships``, a split's movers), so the
report and the exports show the manual remainder before anyone starts, in the words ``apply``
will print.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from accessaudit.remediation.apply.changes import manual_reason

#: The context columns of :func:`accessaudit.remediation.commands.render_commands` read here.
_CONTEXT = {
    "_g_rule": pl.String(),
    "_g_mail": pl.Boolean(),
    "_g_kind": pl.String(),
    "_strip": pl.List(pl.String()),
    "_split_members": pl.List(pl.String()),
}


def _target(row: dict[str, Any]) -> dict[str, Any]:
    """The part of the plan's ``target`` that ``manual_reason`` reads."""
    target: dict[str, Any] = {
        "membership_rule": row["_g_rule"],
        "exchange": bool(row["_g_mail"]) and row["_g_kind"] != "m365",
        "manager_id": row["_mgr"],
        "strip": row["_strip"] or [],
    }
    if row["_split_members"] is not None:
        target["split"] = {"members": row["_split_members"]}
    return target


def with_apply(rendered: pl.DataFrame, accounts: pl.DataFrame) -> pl.DataFrame:
    """``rendered`` (the actions with their commands' context columns) + ``apply``: null where
    apply executes the action, else why it is left to a person."""
    if rendered.is_empty():
        return rendered.with_columns(apply=pl.lit(None, pl.String))
    mgr = (
        accounts.select(member_id="account_id", _mgr="manager_id").unique("member_id")
        if "manager_id" in accounts.columns
        else pl.DataFrame(schema={"member_id": pl.String, "_mgr": pl.String})
    )
    ctx = [
        pl.col(c) if c in rendered.columns else pl.lit(None, t).alias(c)
        for c, t in _CONTEXT.items()
    ]
    rows = (
        rendered.select("action_id", "member_id", "kind", "system", "right", *ctx)
        .join(mgr, on="member_id", how="left", maintain_order="left")
        .to_dicts()
    )
    # one call per action (not per account or edge): manual_reason stays the one definition
    reasons = [
        manual_reason({"action_id": r["action_id"], "kind": r["kind"], "system": r["system"],
                       "right": r["right"], "target": _target(r)})
        for r in rows
    ]  # fmt: skip
    return rendered.with_columns(apply=pl.Series("apply", reasons, dtype=pl.String))
