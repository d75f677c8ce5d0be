"""The sample directory's groups and its ordinary, legitimate memberships.

Structure per force (prefix ``WMP-`` / ``WARKS-``)::

    account ─member─▶ DEPT-<dept> ─nested─▶ RES-<n> ─nested─▶ APP-<n>
       └────member──▶ ALL-Staff (every person: a group above 1,500 members)

plus the domain's built-in groups (Domain Admins and Enterprise Admins nested in
Administrators), a same-force nesting cycle of legacy roles (``WMP-CYC-*``), the shared-services
groups, and the odd groups the plants fill: two mixed project groups, a group whose OU and
prefix disagree, an unattributed group and one with hostile text in its name. Every group is
created here, before any plant, so that the groups (and their RIDs and ids) come in the same
order whatever is planted.

Legitimate rows recorded (:mod:`accessaudit.sample.legit`): every nesting built here, which stays
inside one force (``same-force-nesting``, ``cycle``, ``privileged-nesting``); staff in their own
force's all-staff, department and resource groups (``own-force-staff``,
``own-force-resource-member``; never the movers, whose old force's groups are planted by
:func:`accessaudit.sample.plants_access.plant_movers`); the cycle's members; both forces' people
in the shared groups (``shared-group``); and the domain's shared primary groups of every account
(``primary-group``). No truth rows: the cross-force cases are the plants'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import polars as pl

from accessaudit.model import Via
from accessaudit.sample.builder import BUILTIN_CN, FORCES, SHARED_OU, USERS_CN, Builder, Force
from accessaudit.sample.plants_hostile import HOSTILE

#: Groups of the shared-services OU (both forces' people, legitimately).
SHARED_GROUPS: Final = ("SS-Print-Users", "SS-VPN-Users", "SS-Email-Archive")
#: Resource groups that nest department groups (the rest hold direct members only).
NEST_CAP: Final = 32
#: A same-force nesting cycle of legacy roles (legitimate, but expansion must survive it).
CYCLE: Final = ("WMP-CYC-A", "WMP-CYC-B", "WMP-CYC-C")
#: Groups nobody claims: no signal names a force.
UNATTRIBUTED_GROUPS: Final = (
    "Legacy-Scanner-Users",
    "Legacy <script>window.__xss=1</script> Group",
)
#: A West Mercia prefix on a group in Warwickshire's OU.
CONFLICT_GROUP: Final = "WMP-RES-Legacy-CAD"
#: Project groups that hold a real share of both forces.
PROJECT_GROUPS: Final = ("WMP-PRJ-Joint-Firearms-Licensing", "WARKS-PRJ-Major-Crime-Review")

# Builtin groups: (name, rid or builtin rid, dn container, privileged, builtin alias?)
_BUILTINS: Final = (
    ("Domain Admins", 512, USERS_CN, True, False),
    ("Domain Users", 513, USERS_CN, False, False),
    ("Domain Computers", 515, USERS_CN, False, False),
    ("Schema Admins", 518, USERS_CN, True, False),
    ("Enterprise Admins", 519, USERS_CN, True, False),
    ("Group Policy Creator Owners", 520, USERS_CN, True, False),
    ("Administrators", 544, BUILTIN_CN, True, True),
    ("Account Operators", 548, BUILTIN_CN, True, True),
    ("Server Operators", 549, BUILTIN_CN, True, True),
    ("Print Operators", 550, BUILTIN_CN, True, True),
    ("Backup Operators", 551, BUILTIN_CN, True, True),
)


def build_groups(b: Builder, people: pl.DataFrame) -> dict[str, list[str]]:
    """Create every group of the directory and its same-force nestings; return each force's
    resource groups (``RES-<n>``), the plants' targets."""
    for name, rid, parent, priv, builtin in _BUILTINS:
        b.group(
            name,
            parent,
            rid=rid,
            builtin=builtin,
            privileged=priv,
            scope="global" if rid in (512, 513, 515) else "universal",
        )
    b.nested("Domain Admins", "Administrators")
    b.nested("Enterprise Admins", "Administrators")
    res_groups = {
        f.id: _force_groups(b, f, people.filter(pl.col("org") == f.id).height) for f in FORCES
    }
    for name in CYCLE:
        b.group(name, f"OU=Groups,{FORCES[0].ou}", description="Legacy nested role")
    for child, parent in zip(CYCLE, (*CYCLE[1:], CYCLE[0]), strict=True):
        b.nested(child, parent)
    b.nested(CYCLE[0], res_groups["wmp"][0])
    # every nesting so far stays inside one force: the plants add the cross ones
    for f in FORCES:
        for name in (*(f"{f.prefix}DEPT-{d}" for d in f.departments), *res_groups[f.id]):
            b.allow_nesting("same-force-nesting", f"nesting inside {f.name}'s own groups", name)
    for name in CYCLE:
        b.allow_nesting("cycle", "a same-force nesting cycle of legacy roles", name)
    for name in ("Domain Admins", "Enterprise Admins"):
        b.allow_nesting("privileged-nesting", "built-in nesting of the hosted admin groups", name)
    for name in SHARED_GROUPS:
        b.group(name, f"OU=Groups,{SHARED_OU}", scope="universal", description="Shared service")
    b.group(UNATTRIBUTED_GROUPS[0], USERS_CN, description="Who created this?")
    b.group(
        CONFLICT_GROUP, f"OU=Groups,{FORCES[1].ou}", scope="domain-local", description=HOSTILE[1]
    )
    b.group(PROJECT_GROUPS[0], f"OU=Groups,{FORCES[0].ou}")
    b.group(PROJECT_GROUPS[1], f"OU=Groups,{FORCES[1].ou}")
    b.group(UNATTRIBUTED_GROUPS[1], USERS_CN, description=HOSTILE[2])
    return res_groups


def _force_groups(b: Builder, f: Force, n_org: int) -> list[str]:
    """One force's layered groups (all-staff, departments, resources, applications)."""
    grp_ou = f"OU=Groups,{f.ou}"
    b.group(
        f"{f.prefix}ALL-Staff",
        grp_ou,
        scope="universal",
        description=f"Every member of staff of {f.name}",
    )
    for d in f.departments:
        b.group(f"{f.prefix}DEPT-{d}", grp_ou, description=f"{d} department")
    n_res = max(10 if f.id == "wmp" else 6, n_org // 150)
    n_app = max(4 if f.id == "wmp" else 3, n_res // 3)
    res_groups = [f"{f.prefix}RES-{i:04d}" for i in range(n_res)]
    app_groups = [f"{f.prefix}APP-{i:04d}" for i in range(n_app)]
    for i, r in enumerate(res_groups):
        b.group(r, grp_ou, scope="global", description=f"Resource {i} of {f.name}")
        # two departments per resource, same force; only the first NEST_CAP resources, so
        # a person reaches a bounded number of groups at any size (a real estate has more
        # departments, not deeper reach, as it grows)
        if i < NEST_CAP:
            for k in (i, i + 5):
                b.nested(f"{f.prefix}DEPT-{f.departments[k % len(f.departments)]}", r)
        b.nested(r, app_groups[i % n_app])
    for i, a in enumerate(app_groups):
        b.group(a, grp_ou, scope="universal", description=f"Application {i} users")
    return res_groups


def add_memberships(
    b: Builder,
    rng: np.random.Generator,
    people: pl.DataFrame,
    res_groups: dict[str, list[str]],
    seed: int,
) -> pl.Series:
    """Staff in their own force's groups, the cycle's members and the shared groups' members;
    return the cycle's members (no plant may draw them)."""
    for f in FORCES:
        _staff_memberships(b, rng, f, people.filter(pl.col("org") == f.id), res_groups[f.id])
    cyc = people.filter((pl.col("org") == "wmp") & ~pl.col("mover")).head(15)["account_id"]
    for i, name in enumerate(CYCLE):
        b.members(name, cyc[i * 5 : i * 5 + 5])
        b.allow(
            "cycle", "West Mercia staff in a same-force cycle", cyc[i * 5 : i * 5 + 5], [(name, 0)]
        )
    both = people.filter(~pl.col("mover"))
    shared_why = "shared-services group, open to both forces until the dated split"
    for name, n, pick_seed in (("SS-Print-Users", 40, seed), ("SS-VPN-Users", 25, seed + 1)):
        picked = both.sample(n=min(both.height, n), seed=pick_seed)["account_id"]
        b.members(name, picked)
        b.allow("shared-group", shared_why, picked, [(name, 0)])
    b.allow("shared-group", shared_why, None, [(g, None) for g in SHARED_GROUPS])
    return cyc


def _staff_memberships(
    b: Builder, rng: np.random.Generator, f: Force, staff: pl.DataFrame, res_groups: list[str]
) -> None:
    """One force's staff in its all-staff and department groups, and a few (never movers)
    directly in each of its resource groups."""
    b.members(f"{f.prefix}ALL-Staff", staff["account_id"])
    for d in f.departments:
        b.members(f"{f.prefix}DEPT-{d}", staff.filter(pl.col("department") == d)["account_id"])
    cand = staff.filter(~pl.col("mover"))
    b.allow_rows(
        "own-force-staff",
        f"{f.name} staff in their own force's all-staff and department groups",
        pl.concat(
            [
                cand.select("account_id", group_name=pl.lit(f"{f.prefix}ALL-Staff")),
                cand.select(
                    "account_id", group_name=pl.lit(f"{f.prefix}DEPT-") + pl.col("department")
                ),
            ]
        ).with_columns(depth=pl.lit(0, pl.Int32)),
    )
    res_ids: list[pl.Series] = []
    for r in res_groups:
        pick = rng.choice(cand.height, size=min(cand.height, 3), replace=False)
        res_ids.append(cand[pick.tolist()]["account_id"])
        b.members(r, res_ids[-1])
    b.allow_rows(
        "own-force-resource-member",
        f"{f.name} staff directly in their own force's resource group",
        pl.DataFrame(
            {
                "account_id": pl.concat(res_ids),
                "group_name": [r for r, ids in zip(res_groups, res_ids, strict=True) for _ in ids],
            }
        ).with_columns(depth=pl.lit(0, pl.Int32)),
    )


def add_primary_groups(
    b: Builder,
    people: pl.DataFrame,
    planted: pl.Series,
    users: Sequence[pl.DataFrame],
    computers: pl.DataFrame,
) -> None:
    """Domain Users as the primary group of every person (but the ``planted`` ones, whose
    primary group is a plant) and of the other ``users``; Domain Computers of the computers."""
    persons = people.filter(~pl.col("account_id").is_in(planted.to_list()))["account_id"]
    for frame in (persons, *(u["account_id"] for u in users)):
        b.members("Domain Users", frame, via=Via.PRIMARY_GROUP)
    b.members("Domain Computers", computers["account_id"], via=Via.PRIMARY_GROUP)
    b.allow(
        "primary-group",
        "the domain's shared primary groups, of every account of both forces",
        None,
        [("Domain Users", None), ("Domain Computers", None)],
    )
