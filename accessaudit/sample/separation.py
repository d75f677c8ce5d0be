"""Separation plants of the sample's Active Directory: who manages, owns and remembers whom.

Planted on top of the layered directory of :mod:`accessaudit.sample.groups`, one function per
case, each with the truth rows it must cause (or, for the legitimate cases, its rows of
:mod:`accessaudit.sample.legit`), recorded as it is planted (never by running a rule):

* :func:`plant_managers`: every member of staff reports to the head of their department (same
  force); a few report to a head of the other force (``manager-in-other-org``);
* :func:`plant_managed_by`: every resource group is managed by a head of its force (legitimate:
  ``own-force-group-owner``); one per force is managed by a person of the other force
  (``cross-org-group-owner``, and the group's attribution then conflicts:
  ``conflicting-attribution``);
* :func:`plant_sid_history`: staff migrated from each force's retired pre-alliance domain carry
  its SIDs (legitimate: ``own-force-sid-history``); a few carry SIDs of the *other* force's
  retired domain, one of them its Domain Admins RID 512 (``cross-org-sid-history``);
* :func:`plant_secondments`: one person per force has a second, enabled account in the other
  force whose mail is the person's own mailbox (``dual-identity``; the second account's signals
  conflict: ``conflicting-attribution``);
* :func:`plant_legacy_group`: an empty legacy group nested into the other force's resource group
  (``cross-org-group-nesting`` and ``empty-cross-org-group``); the planted cross-force nestings
  of department groups that happen to be empty in a small sample are recorded the same way.

:func:`plant_separation` runs them in order from its own random generator, so that the other
plants pick the same accounts with or without these. Vectorised: per-row Python only over the
few planted picks.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import polars as pl

from accessaudit.sample.builder import FORCES, OTHER, Builder

#: RIDs of the retired domains' accounts carried in sIDHistory (legitimate migrations).
LEGACY_RID_BASE: Final = 7_000
#: RID of Domain Admins in any domain (learn.microsoft.com: well-known SIDs).
DOMAIN_ADMINS_RID: Final = 512
#: Enabled and signed in recently (see :mod:`accessaudit.sample.people`).
ACTIVE: Final = pl.col("inactive_u") >= 0.08


class Picker:
    """Picks staff for the separation plants over the current ``people`` (which the plants
    replace as they add columns), each pick distinct from every other pick made here.

    Other plants may hold them too: nothing planted here changes what those plants cause.
    """

    def __init__(self, people: pl.DataFrame, gen: np.random.Generator) -> None:
        self.people = people
        self.gen = gen
        self.taken: set[str] = set()

    def __call__(self, org: str, n: int, extra: pl.Expr | None = None) -> pl.Series:
        """``n`` staff of ``org`` (never movers), matching ``extra`` when given."""
        cond = (pl.col("org") == org) & ~pl.col("mover") & ~pl.col("account_id").is_in(self.taken)
        cand = self.people.filter(cond if extra is None else cond & extra)["account_id"]
        chosen: pl.Series = cand[self.gen.choice(cand.len(), size=n, replace=False).tolist()]
        self.taken.update(chosen.to_list())
        return chosen


def legacy_domain_sids(gen: np.random.Generator) -> dict[str, str]:
    """The SIDs of the two forces' retired pre-alliance domains (deterministic for ``gen``)."""
    out = {}
    for force in ("wmp", "warks"):
        sub = gen.integers(1_000_000_000, 4_000_000_000, size=3)
        out[force] = f"S-1-5-21-{sub[0]}-{sub[1]}-{sub[2]}"
    return out


def plant_separation(
    b: Builder,
    people: pl.DataFrame,
    *,
    res_groups: dict[str, list[str]],
    cross_nested_depts: list[tuple[str, str, str]],
    gen: np.random.Generator,
) -> pl.DataFrame:
    """Plant the separation cases; return ``people`` with manager, sIDHistory and secondments.

    ``cross_nested_depts`` lists the (department group, force, department) nested across the line
    by the caller's plants: an empty one is also an ``empty-cross-org-group`` finding.
    """
    pick = Picker(people, gen)
    heads = plant_managers(b, pick)
    plant_managed_by(b, pick, heads, res_groups)
    plant_sid_history(b, pick, gen)
    plant_secondments(b, pick)
    plant_legacy_group(b, pick.people, res_groups, cross_nested_depts)
    return pick.people


def plant_managers(b: Builder, pick: Picker) -> pl.DataFrame:
    """Set ``manager_id``: the head of each department (lowest seq of a non-mover) manages its
    staff, a few report across the line. Return the heads (``org``, ``department``,
    ``head_id``)."""
    people = pick.people
    heads = (
        people.filter(~pl.col("mover"))
        .sort("seq")
        .group_by("org", "department", maintain_order=True)
        .agg(head_id=pl.col("account_id").first())
    )
    pick.people = people.join(heads, on=["org", "department"], how="left").with_columns(
        manager_id=pl.when(pl.col("mover") | (pl.col("account_id") == pl.col("head_id")))
        .then(pl.lit(None, pl.String))
        .otherwise(pl.col("head_id"))
    )
    head_ids = heads["head_id"].to_list()
    other_head = {f.id: heads.filter(pl.col("org") == OTHER[f.id])["head_id"][0] for f in FORCES}
    cross_mgr = []
    for f in FORCES:
        n = max(2, pick.people.filter(pl.col("org") == f.id).height // 1500)
        picked = pick(f.id, n, ~pl.col("account_id").is_in(head_ids))
        cross_mgr.append(picked.to_frame("account_id").with_columns(_mgr=pl.lit(other_head[f.id])))
        b.plant_ids("manager-in-other-org", "cross-manager", picked.to_frame("account_id"))
    mgr = pl.concat(cross_mgr)
    pick.people = (
        pick.people.join(mgr, on="account_id", how="left")
        .with_columns(manager_id=pl.coalesce("_mgr", "manager_id"))
        .drop("_mgr", "head_id")
    )
    return heads


def plant_managed_by(
    b: Builder, pick: Picker, heads: pl.DataFrame, res_groups: dict[str, list[str]]
) -> None:
    """Resource groups managed by a head of their force; the last one of each force by a
    person of the other force."""
    own_head = {f.id: heads.filter(pl.col("org") == f.id)["head_id"][0] for f in FORCES}
    for f in FORCES:
        for name in res_groups[f.id][:-1]:
            b.managed_by(name, own_head[f.id])
        b.allow_rows(
            "own-force-group-owner",
            f"a head of {f.name} manages its own resource group",
            pl.DataFrame({"group_name": res_groups[f.id][:-1]}).with_columns(
                account_id=pl.lit(own_head[f.id]), depth=pl.lit(0, pl.Int32)
            ),
        )
        target = res_groups[f.id][-1]
        intruder = pick(OTHER[f.id], 1, ACTIVE)
        b.managed_by(target, intruder[0])
        b.plant("cross-org-group-owner", "cross-managed-by", intruder, [(target, 0)])
        b.plant("conflicting-attribution", "cross-managed-by", None, [(target, 0)])


def plant_sid_history(b: Builder, pick: Picker, gen: np.random.Generator) -> None:
    """Set ``sid_history``: legitimate migrations from each force's retired domain, and SIDs of
    the other force's retired domain."""
    legacy = legacy_domain_sids(gen)
    history: list[pl.DataFrame] = []
    wrong = [
        (
            "wmp",
            [
                f"{legacy['warks']}-{LEGACY_RID_BASE - 2}",
                f"{legacy['warks']}-{LEGACY_RID_BASE - 1}",
            ],
        ),
        ("warks", [f"{legacy['wmp']}-{DOMAIN_ADMINS_RID}"]),
    ]
    for org, sids in wrong:
        carriers = pick(org, len(sids))
        rows = pl.DataFrame({"account_id": carriers, "_sid": sids})
        history.append(rows)
        b.plant_ids(
            "cross-org-sid-history",
            "legacy-sid-of-other-force",
            rows.select("account_id", resource_id="_sid", right=pl.lit("sIDHistory")),
        )
    # more of each retired domain's SIDs are carried by its own force's migrated staff (they
    # need not be exclusive picks: a legitimate SID history causes no finding)
    for f in FORCES:
        n = max(3, pick.people.filter(pl.col("org") == f.id).height // 200)
        carriers = pick(f.id, n)
        sids = [f"{legacy[f.id]}-{LEGACY_RID_BASE + i}" for i in range(n)]
        history.append(pl.DataFrame({"account_id": carriers, "_sid": sids}))
        b.allow_ids(
            "own-force-sid-history",
            f"migrated from {f.name}'s own retired domain",
            history[-1].select("account_id", resource_id="_sid", right=pl.lit("sIDHistory")),
        )
    hist = pl.concat(history).group_by("account_id").agg(_hist=pl.col("_sid").sort())
    pick.people = (
        pick.people.join(hist, on="account_id", how="left")
        .with_columns(sid_history=pl.coalesce("_hist", "sid_history"))
        .drop("_hist")
    )


def plant_secondments(b: Builder, pick: Picker) -> None:
    """The person's second account, in the other force, uses their own mailbox."""
    for f in FORCES:
        person = pick(f.id, 1, ACTIVE)[0]
        second = pick(OTHER[f.id], 1, ACTIVE)[0]
        mail = pick.people.filter(pl.col("account_id") == person)["mail"][0]
        pick.people = pick.people.with_columns(
            mail=pl.when(pl.col("account_id") == second).then(pl.lit(mail)).otherwise("mail"),
            employee_id=pl.when(pl.col("account_id") == second)
            .then(pl.lit(None, pl.String))
            .otherwise("employee_id"),
        )
        first, last = sorted([person, second])
        b.plant_ids(
            "dual-identity",
            "secondment",
            pl.DataFrame({"account_id": [first], "resource_id": [last]}),
        )
        b.plant_ids("conflicting-attribution", "secondment", pl.DataFrame({"account_id": [second]}))


def plant_legacy_group(
    b: Builder,
    people: pl.DataFrame,
    res_groups: dict[str, list[str]],
    cross_nested_depts: list[tuple[str, str, str]],
) -> None:
    """An empty legacy group still nested into the other force's resource group, and the
    department groups nested across the line that are empty."""
    wmp = FORCES[0]
    legacy_group = f"{wmp.prefix}LEGACY-Alliance-Link"
    b.group(legacy_group, f"OU=Groups,{wmp.ou}", description="Alliance-era link, no members")
    b.nested(legacy_group, res_groups["warks"][0])
    b.plant(
        "cross-org-group-nesting", "legacy-empty", None, [(res_groups["warks"][0], 0)], legacy_group
    )
    b.plant("empty-cross-org-group", "legacy-empty", None, [(legacy_group, 0)])
    for group, org, dept in cross_nested_depts:
        if people.filter((pl.col("org") == org) & (pl.col("department") == dept)).is_empty():
            b.plant("empty-cross-org-group", "empty-dept-nesting", None, [(group, 0)])
