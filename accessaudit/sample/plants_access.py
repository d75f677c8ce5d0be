"""Plants of cross-force access in the sample directory: who reaches the other force's groups.

One function per case, each recording the truth rows it must cause as it plants (by group name
and depth, from the layers the generator built, never by expanding the memberships):

* :func:`plant_strays`: a few people directly in the other force's resource groups (at most two
  per group): ``cross-org-direct-member``, and ``cross-org-nested-access`` to every ancestor;
* :func:`plant_dept_nesting`: a whole department group nested into the other force's resource
  group: ``cross-org-group-nesting`` (the nesting) and ``cross-org-nested-access`` for each of
  its members, one level deeper than the group itself;
* :func:`plant_privileged`: Warwickshire's admins in Domain Admins (nested in Administrators)
  and Warwickshire's ICT department nested in Server Operators:
  ``cross-org-privileged-access`` (and ``cross-org-group-nesting`` for the nesting); West
  Mercia's admins in the built-in groups of the domain it hosts are legitimate
  (``own-force-admin``);
* :func:`plant_primary_group`: Warwickshire people whose primary group is a West Mercia resource
  group (in neither member list): ``cross-org-direct-member`` and ``cross-org-nested-access``;
* :func:`plant_movers`: HR says the other force, so every membership of the old force is
  cross-force (``cross-org-direct-member``, ``cross-org-nested-access``) and the signals
  conflict (``conflicting-attribution``).
"""

from __future__ import annotations

import polars as pl

from accessaudit.model import Via
from accessaudit.sample.builder import (
    FORCES,
    NESTED_DEPT,
    OTHER,
    PRIVILEGED_DEPT,
    Builder,
    Draw,
)


def plant_strays(
    b: Builder, people: pl.DataFrame, res_groups: dict[str, list[str]], draw: Draw
) -> None:
    """About 1% of each force's people directly in the other force's resource groups."""
    for f in FORCES:
        targets = res_groups[OTHER[f.id]][1:]
        n_stray = min(
            2 * len(targets), max(3, int(people.filter(pl.col("org") == f.id).height * 0.01))
        )
        strays = draw(f.id, n_stray)
        for i, acct in enumerate(strays.to_list()):
            g = targets[i % len(targets)]
            b.members(g, [acct])
            one = pl.Series([acct])
            b.plant("cross-org-direct-member", "stray", one, [(g, 0)])
            b.plant("cross-org-nested-access", "stray", one, b.ancestors(g))


def plant_dept_nesting(b: Builder, people: pl.DataFrame, res_groups: dict[str, list[str]]) -> None:
    """Each force's :data:`~accessaudit.sample.builder.NESTED_DEPT` group nested into the other
    force's second resource group."""
    for f in FORCES:
        dept_group = f"{f.prefix}DEPT-{NESTED_DEPT[f.id]}"
        target = res_groups[OTHER[f.id]][1]
        b.nested(dept_group, target)
        members = people.filter(
            (pl.col("org") == f.id) & (pl.col("department") == NESTED_DEPT[f.id])
        )["account_id"]
        b.plant("cross-org-group-nesting", "dept-nesting", None, [(target, 0)], dept_group)
        b.plant(
            "cross-org-nested-access",
            "dept-nesting",
            members,
            [(target, 1)] + [(g, d + 1) for g, d in b.ancestors(target)],
        )


def plant_privileged(b: Builder, people: pl.DataFrame, admins: pl.DataFrame) -> None:
    """The admins in the built-in groups; Warwickshire's ICT department in Server Operators."""
    wmp_admins = admins.filter(pl.col("org") == "wmp")["account_id"]
    warks_admins = admins.filter(pl.col("org") == "warks")["account_id"]
    own_admin = "West Mercia admins in the built-in groups of the domain it hosts"
    for name, picked in (
        ("Domain Admins", wmp_admins[:3]),
        ("Enterprise Admins", wmp_admins[3:4]),
        ("Backup Operators", wmp_admins[4:6]),
    ):
        b.members(name, picked)
        b.allow("own-force-admin", own_admin, picked, [(name, 0)])
    b.members("Domain Admins", warks_admins)
    b.plant(
        "cross-org-privileged-access",
        "warks-domain-admins",
        warks_admins,
        [("Domain Admins", 0), *b.ancestors("Domain Admins")],
    )
    ict_group = f"WARKS-DEPT-{PRIVILEGED_DEPT}"
    b.nested(ict_group, "Server Operators")
    ict = people.filter((pl.col("org") == "warks") & (pl.col("department") == PRIVILEGED_DEPT))
    b.plant(
        "cross-org-group-nesting",
        "ict-server-operators",
        None,
        [("Server Operators", 0)],
        ict_group,
    )
    b.plant(
        "cross-org-privileged-access",
        "ict-server-operators",
        ict["account_id"],
        [("Server Operators", 1)],
    )


def plant_primary_group(b: Builder, res_groups: dict[str, list[str]], draw: Draw) -> pl.Series:
    """Two Warwickshire people whose primary group is West Mercia's third resource group;
    return them (Domain Users is not their primary group)."""
    accounts = draw("warks", 2)
    target = res_groups["wmp"][2]
    b.members(target, accounts, via=Via.PRIMARY_GROUP)
    b.plant("cross-org-direct-member", "primary-group", accounts, [(target, 0)])
    b.plant("cross-org-nested-access", "primary-group", accounts, b.ancestors(target))
    return accounts


def plant_movers(b: Builder, people: pl.DataFrame) -> None:
    """The truth of the movers (:mod:`accessaudit.sample.people` picked them): their old force's
    all-staff and department groups, and the conflict of their signals."""
    movers = people.filter(pl.col("mover"))
    b.plant("conflicting-attribution", "mover", movers["account_id"], [])
    for f in FORCES:
        old = movers.filter(pl.col("org") == f.id)
        b.plant(
            "cross-org-direct-member", "mover", old["account_id"], [(f"{f.prefix}ALL-Staff", 0)]
        )
        for d in f.departments:
            acc = old.filter(pl.col("department") == d)["account_id"]
            if acc.len():
                g = f"{f.prefix}DEPT-{d}"
                b.plant("cross-org-direct-member", "mover", acc, [(g, 0)])
                b.plant("cross-org-nested-access", "mover", acc, b.ancestors(g))


def cross_nested_departments() -> list[tuple[str, str, str]]:
    """(department group, force, department) of every department group planted here across the
    line (an empty one is also an ``empty-cross-org-group`` finding)."""
    return [
        *((f"{f.prefix}DEPT-{NESTED_DEPT[f.id]}", f.id, NESTED_DEPT[f.id]) for f in FORCES),
        (f"WARKS-DEPT-{PRIVILEGED_DEPT}", "warks", PRIVILEGED_DEPT),
    ]
