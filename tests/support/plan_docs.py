"""A saved-plan document for tests about what the plan records, not about its what-if."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from accessaudit.remediation.planfile import build_plan
from accessaudit.remediation.whatif import WhatIf

_NO_COLLATERAL = pl.DataFrame(
    schema={
        "account_id": pl.String,
        "group_id": pl.String,
        "org": pl.String,
        "action_ids": pl.List(pl.String),
    }
)


def plan_doc(
    actions: pl.DataFrame,
    tables: dict[str, pl.DataFrame],
    as_of: datetime,
    findings: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """``build_plan`` of ``actions`` over ``tables`` (accounts, groups, memberships) with an
    empty what-if."""
    return build_plan(
        "run",
        "0" * 64,
        actions,
        accounts=tables["accounts"],
        groups=tables["groups"],
        memberships=tables["memberships"],
        whatif=WhatIf(0, [], [], 0, _NO_COLLATERAL, 0.0),
        as_of=as_of,
        findings=findings,
    )
