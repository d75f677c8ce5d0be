"""Separation plants of the sample's Active Directory: who manages, owns and remembers whom.

Planted on top of the layered directory of :mod:`accessaudit.sample.directory`, each with the
truth rows it must cause (or, for the legitimate cases, its rows of
:mod:`accessaudit.sample.legit`), recorded here as it is planted (never by running a rule):

* **managers**: every member of staff reports to the head of their department (same force);
  a few report to a head of the other force (``manager-in-other-org``);
* **managedBy**: every resource group is managed by a head of its force (legitimate); one per
  force is managed by a person of the other force (``cross-org-group-owner``, and the group's
  attribution then conflicts: ``conflicting-attribution``);
* **sIDHistory**: staff migrated from each force's retired pre-alliance domain carry its SIDs
  (legitimate); a few carry SIDs of the *other* force's retired domain, one of them its Domain
  Admins RID 512 (``cross-org-sid-history``);
* **secondments**: one person per force has a second, enabled account in the other force whose
  mail is the person's own mailbox (``dual-identity``; the second account's signals conflict);
* **shared service accounts** in both forces' resource groups (``shared-account-both-forces``);
* **an empty legacy group** nested into the other force's resource group
  (``cross-org-group-nesting`` and ``empty-cross-org-group``); the planted cross-force nestings of
  department groups that happen to be empty in a small sample are recorded the same way.

It draws from its own random generator so that the plants of
:mod:`accessaudit.sample.directory` pick the same accounts with or without it. Vectorised: per-row
Python only over the few planted picks.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import polars as pl

from accessaudit.sample.builder import Builder, Force

#: RIDs of the retired domains' accounts carried in sIDHistory (legitimate migrations).
LEGACY_RID_BASE: Final = 7_000
#: RID of Domain Admins in any domain (learn.microsoft.com: well-known SIDs).
DOMAIN_ADMINS_RID: Final = 512


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
    forces: tuple[Force, ...],
    services: pl.Series,
    res_groups: dict[str, list[str]],
    cross_nested_depts: list[tuple[str, str, str]],
    gen: np.random.Generator,
) -> pl.DataFrame:
    """Plant the separation cases; return ``people`` with manager, sIDHistory and secondments.

    ``cross_nested_depts`` lists the (department group, force, department) nested across the line
    by the caller's plants: an empty one is also an ``empty-cross-org-group`` finding.
    """
    other = {"wmp": "warks", "warks": "wmp"}
    active = pl.col("inactive_u") >= 0.08  # enabled and signed in recently (see _person_columns)
    taken: set[str] = set()

    def pick(org: str, n: int, extra: pl.Expr | None = None) -> pl.Series:
        """``n`` staff of ``org`` (never movers), distinct from every other pick made here.

        Other plants may hold them too: nothing planted here changes what those plants cause.
        """
        cond = (pl.col("org") == org) & ~pl.col("mover") & ~pl.col("account_id").is_in(taken)
        cand = people.filter(cond if extra is None else cond & extra)["account_id"]
        chosen: pl.Series = cand[gen.choice(cand.len(), size=n, replace=False).tolist()]
        taken.update(chosen.to_list())
        return chosen

    # shared service accounts: each is in a resource group of both forces (sample.py)
    b.plant("shared-account-both-forces", "shared-service", services, [])

    # --- managers: the head of each department (lowest seq of a non-mover) manages its staff
    heads = (
        people.filter(~pl.col("mover"))
        .sort("seq")
        .group_by("org", "department", maintain_order=True)
        .agg(head_id=pl.col("account_id").first())
    )
    people = people.join(heads, on=["org", "department"], how="left").with_columns(
        manager_id=pl.when(pl.col("mover") | (pl.col("account_id") == pl.col("head_id")))
        .then(pl.lit(None, pl.String))
        .otherwise(pl.col("head_id"))
    )
    head_ids = heads["head_id"].to_list()
    other_head = {f.id: heads.filter(pl.col("org") == other[f.id])["head_id"][0] for f in forces}
    cross_mgr = []
    for f in forces:
        n = max(2, people.filter(pl.col("org") == f.id).height // 1500)
        picked = pick(f.id, n, ~pl.col("account_id").is_in(head_ids))
        cross_mgr.append(picked.to_frame("account_id").with_columns(_mgr=pl.lit(other_head[f.id])))
        b.plant_ids("manager-in-other-org", "cross-manager", picked.to_frame("account_id"))
    mgr = pl.concat(cross_mgr)
    people = (
        people.join(mgr, on="account_id", how="left")
        .with_columns(manager_id=pl.coalesce("_mgr", "manager_id"))
        .drop("_mgr", "head_id")
    )

    # --- managedBy: resource groups managed by a head of their force; the last one of each
    # force by a person of the other force
    own_head = {f.id: heads.filter(pl.col("org") == f.id)["head_id"][0] for f in forces}
    for f in forces:
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
        intruder = pick(other[f.id], 1, active)
        b.managed_by(target, intruder[0])
        b.plant("cross-org-group-owner", "cross-managed-by", intruder, [(target, 0)])
        b.plant("conflicting-attribution", "cross-managed-by", None, [(target, 0)])

    # --- sIDHistory: legitimate migrations from each force's retired domain, and cross ones
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
    for f in forces:
        n = max(3, people.filter(pl.col("org") == f.id).height // 200)
        carriers = pick(f.id, n)
        sids = [f"{legacy[f.id]}-{LEGACY_RID_BASE + i}" for i in range(n)]
        history.append(pl.DataFrame({"account_id": carriers, "_sid": sids}))
        b.allow_ids(
            "own-force-sid-history",
            f"migrated from {f.name}'s own retired domain",
            history[-1].select("account_id", resource_id="_sid", right=pl.lit("sIDHistory")),
        )
    hist = pl.concat(history).group_by("account_id").agg(_hist=pl.col("_sid").sort())
    people = (
        people.join(hist, on="account_id", how="left")
        .with_columns(sid_history=pl.coalesce("_hist", "sid_history"))
        .drop("_hist")
    )

    # --- secondments: the person's second account, in the other force, uses their own mailbox
    for f in forces:
        person = pick(f.id, 1, active)[0]
        second = pick(other[f.id], 1, active)[0]
        mail = people.filter(pl.col("account_id") == person)["mail"][0]
        people = people.with_columns(
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

    # --- an empty legacy group still nested into the other force's resource group
    wmp = forces[0]
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
    return people
