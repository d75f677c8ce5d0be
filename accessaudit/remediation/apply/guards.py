"""The guards of :mod:`accessaudit.remediation.apply.execute` that refuse a change, or the whole
apply, from what the directory holds now (the change's :class:`~.changes.Live` read).

Per change: a protected group by SID/RID (unless named in ``allow_protected``), a removal from
the member's primary group (unless the directory moves the primary group first: AD), a Graph
change to an on-premises-synced, dynamic, mail-enabled (Exchange) or role-assignable group,
an irreversible change without ``allow_irreversible``; an object gone or no longer as planned
is drift, a value already absent a no-op. Per apply: the per-group cap on the share of a
group's members one plan removes (a split counts its movers out of the mixed group and the
mixed group out of each parent it leaves).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from accessaudit.model import ActionKind, Via, is_privileged_sid
from accessaudit.remediation.apply.changes import (
    DYNAMIC_REASON,
    EXCHANGE_REASON,
    IRREVERSIBLE,
    IRREVERSIBLE_NOTE,
    MEMBERSHIP,
    Change,
    Live,
)
from accessaudit.remediation.apply.journal import ApplyError

A = ActionKind


def refusal(change: Change, live: Live, allow_protected: Iterable[str]) -> str | None:
    """Why the change must not be written to the object as it is now (None: it may)."""
    allowed = set(allow_protected)
    sid = live.group_sid or change.group_sid
    named = {change.group_id, sid} & allowed
    if is_privileged_sid(sid) and not named:
        return f"protected group {sid} (name it with --allow-protected to change it)"
    primary = live.primary or change.via == Via.PRIMARY_GROUP.value
    if change.kind in MEMBERSHIP and primary and not live.primary_move:
        return "the member's primary group (change primaryGroupID first)"
    if change.system == "cloud" and live.synced:
        what = "account" if change.kind == A.CLEAR_MANAGER.value else "group"
        return f"{what} synced from on-premises AD: change it in AD"
    if change.system == "cloud" and change.kind in MEMBERSHIP and live.dynamic:
        return DYNAMIC_REASON
    if change.system == "cloud" and change.kind in MEMBERSHIP and live.mail_enabled:
        return EXCHANGE_REASON
    if change.system == "cloud" and live.role_assignable:
        return "role-assignable group: the write app is deliberately not granted to change it"
    return None


def preflight(
    change: Change, live: Live, allow_protected: Iterable[str], allow_irreversible: bool
) -> tuple[str, str] | None:
    """None when the change is to be written; else its outcome (drift / refused / noop) and
    the reason."""
    if not live.group_exists or not live.member_exists:
        what = "group" if not live.group_exists else "member"
        return "drift", f"{what} no longer exists"
    if live.drift:
        return "drift", live.drift
    refused = refusal(change, live, allow_protected) or live.refusal
    if refused:
        return "refused", refused
    if not live.is_member:
        return "noop", "already absent"
    if change.kind in IRREVERSIBLE and not allow_irreversible:
        return (
            "refused",
            f"irreversible ({IRREVERSIBLE_NOTE}); pass --allow-irreversible to make it",
        )
    return None


def group_cap(
    to_write: list[tuple[Change, Live]],
    earlier: Counter[tuple[str, str]],
    max_fraction: float,
    allow_large: bool,
) -> None:
    """Refuse the apply when, with what this plan removed from a group in earlier runs
    (``earlier``: batches of --only-ids, a resumed run), more than ``max_fraction`` of the
    group's members before the plan would be gone."""
    if allow_large:
        return
    removing: Counter[tuple[str, str]] = Counter()
    size: dict[tuple[str, str], int] = {}
    for c, live in to_write:
        for group, n in c.removals():
            now = live.sizes.get(group, live.size if group == c.group_id else None)
            if now:
                key = (c.system, group)
                removing[key] += n
                size[key] = now
    over = sorted(
        (k, n + earlier[k], size[k] + earlier[k], earlier[k])
        for k, n in removing.items()
        if n + earlier[k] > max_fraction * (size[k] + earlier[k])
    )
    if over:
        listed = ", ".join(
            f"{g} ({n} of {s} members" + (f", {e} removed earlier by this plan)" if e else ")")
            for (_, g), n, s, e in over[:5]
        )
        raise ApplyError(
            f"the plan removes more than {max_fraction:.0%} of the members of "
            f"{len(over)} group(s): {listed}",
            "check those groups with their owners; pass --allow-large to go ahead, or apply "
            "a smaller batch with --only-ids",
        )
