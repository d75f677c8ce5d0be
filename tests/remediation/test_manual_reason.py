"""Which actions apply leaves to a person, and why: every branch of ``manual_reason``."""

from __future__ import annotations

from typing import Any

import pytest

from accessaudit.remediation.apply.changes import (
    DYNAMIC_REASON,
    EXCHANGE_REASON,
    MANUAL,
    manual_reason,
)

EDGE = {"group_id": "g", "group_sid": None, "group_dn": None, "via": "member"}


def action(kind: str, system: str = "ad", **extra: Any) -> dict[str, Any]:
    return {"action_id": f"{kind}|x", "kind": kind, "system": system, **extra}


@pytest.mark.parametrize(
    ("act", "reason"),
    [
        (action("remove-member"), None),
        (action("unnest-group", "cloud"), None),
        (action("remove-owner", "cloud"), None),
        (action("remove-member", "app"), "remove-member in app: changed in that system, by hand"),
        (action("no-such-kind"), "no-such-kind: by hand"),
        (action("remove-role-assignment", "cloud", right="Global Administrator @ /"), None),
        (
            action("remove-role-assignment", "cloud", right="Global Administrator @ / (eligible)"),
            "PIM eligibility: an adminRemove roleEligibilityScheduleRequest, asynchronous and "
            "subject to PIM policy: by hand",
        ),
        (action("remove-role-assignment", "ad"), "directory roles are Entra's: by hand"),
        (action("remove-app-role-assignment", "cloud"), None),
        (action("remove-app-role-assignment", "ad"), "app roles outside Entra: by hand"),
        (action("remove-sid-history", "ad"), None),
        (action("remove-sid-history", "cloud"), "sIDHistory is AD's: by hand"),
        (
            action("remove-member", "cloud", target={"membership_rule": "user.dept -eq 'x'"}),
            f"{DYNAMIC_REASON}: user.dept -eq 'x'",
        ),
        (action("unnest-group", "cloud", target={"exchange": True}), EXCHANGE_REASON),
        (action("remove-member", "ad", target={"membership_rule": "r", "exchange": True}), None),
        (action("clear-manager", "ad", target={"manager_id": "m"}), None),
        (
            action("clear-manager", "cloud"),
            "clear-manager: the plan records no manager to remove (Entra managers are not "
            "collected): by hand",
        ),
        (action("remove-memberships", "ad", target={"strip": [EDGE]}), None),
        (
            action("remove-memberships", "ad"),
            "remove-memberships without recorded edges (a plan older than this apply): by hand",
        ),
        (
            action("remove-memberships", "ad", target={"strip": []}),
            "remove-memberships: no direct membership of the account's own directory to strip",
        ),
        (action("split-group", "ad", target={"split": {"members": ["u"]}}), None),
        (
            action("split-group", "cloud", target={"split": {"members": ["u"]}}),
            "split of a cloud group: by hand, from the plan's member lists (apply splits AD)",
        ),
        (
            action("split-group", "ad", target={"split": {"members": []}}),
            "split-group: no member of the other force to move",
        ),
    ],
)
def test_manual_reason(act: dict[str, Any], reason: str | None) -> None:
    assert manual_reason(act) == reason


@pytest.mark.parametrize("kind", sorted(MANUAL))
def test_kinds_left_to_a_person_whatever_their_system(kind: str) -> None:
    assert manual_reason(action(kind, "cloud")) == MANUAL[kind]


def test_with_apply_gives_each_planned_action_the_reason_apply_will_print() -> None:
    """The report's and exports' ``apply`` column: manual_reason over the target the plan file
    records (a dynamic or Exchange cloud group, the manager, the strip edges, the movers)."""
    import polars as pl

    from accessaudit.remediation.executable import with_apply

    rows = [
        # action_id, member_id, kind, system, _g_rule, _g_mail, _g_kind, _strip, _split_members
        ("ad-member", "u1", "remove-member", "ad", None, None, "security", [], None),
        ("dyn", "u1", "remove-member", "cloud", "user.x -eq 1", False, "security", [], None),
        ("exo", "u1", "unnest-group", "cloud", None, True, "security", [], None),
        ("m365", "u1", "remove-member", "cloud", None, True, "m365", [], None),
        ("mgr", "u1", "clear-manager", "ad", None, None, None, [], None),
        ("no-mgr", "u2", "clear-manager", "cloud", None, None, None, [], None),
        ("strip", "u1", "remove-memberships", "ad", None, None, None, ["g1"], None),
        ("no-strip", "u1", "remove-memberships", "ad", None, None, None, [], None),
        ("split", None, "split-group", "ad", None, None, "security", [], ["u1", "u2"]),
        ("split-cloud", None, "split-group", "cloud", None, None, "security", [], ["u1"]),
        ("review", "u1", "review-attribution", "ad", None, None, None, [], None),
    ]
    cols = ["action_id", "member_id", "kind", "system", "_g_rule", "_g_mail", "_g_kind",
            "_strip", "_split_members"]  # fmt: skip
    rendered = pl.DataFrame(rows, schema=cols, orient="row").with_columns(
        right=pl.lit(None, pl.String)
    )
    accounts = pl.DataFrame({"account_id": ["u1", "u2"], "manager_id": ["boss", None]})
    got = dict(with_apply(rendered, accounts).select("action_id", "apply").iter_rows())
    assert got == {
        "ad-member": None,
        "dyn": f"{DYNAMIC_REASON}: user.x -eq 1",
        "exo": EXCHANGE_REASON,
        "m365": None,
        "mgr": None,
        "no-mgr": "clear-manager: the plan records no manager to remove (Entra managers are not "
        "collected): by hand",
        "strip": None,
        "no-strip": "remove-memberships: no direct membership of the account's own directory "
        "to strip",
        "split": None,
        "split-cloud": "split of a cloud group: by hand, from the plan's member lists (apply "
        "splits AD)",
        "review": MANUAL["review-attribution"],
    }
