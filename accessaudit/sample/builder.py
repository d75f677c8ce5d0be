"""The sample's shared vocabulary: the estate's shape, its result type and the builder.

Every module of :mod:`accessaudit.sample` builds on this one and on nothing else of the package
below it (the generator, :mod:`accessaudit.sample.directory`, only orchestrates):

* the estate: one shared domain (:data:`DOMAIN`) and its two forces (:data:`FORCES`), each with
  its own OUs, UPN suffix, mail domain, ``company``, employee-id range and group prefix, and the
  departments the plants reserve for themselves (:data:`NESTED_DEPT`, :data:`PRIVILEGED_DEPT`);
* :class:`Sample`, what :func:`accessaudit.sample.directory.generate` returns;
* :class:`Builder`, which accumulates the directory's groups, memberships and nestings together
  with the ground truth the plants record as they plant: truth rows (findings a case must cause)
  and legitimate rows (:mod:`accessaudit.sample.legit`, accesses no finding may touch);
* :class:`Draw`, which picks the accounts of the directory's plants without replacement, so no
  two plants share an account;
* :func:`guids` and :func:`dn_escape`, the vectorised id and DN helpers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import numpy as np
import polars as pl

from accessaudit.model import GroupKind, MemberKind, Via, empty
from accessaudit.sample.legit import LEGIT_SCHEMA

DOMAIN: Final = "alliance.local"
BASE_DN: Final = "DC=alliance,DC=local"
SOURCE: Final = f"ad:{DOMAIN}"


@dataclass(frozen=True)
class Force:
    id: str
    name: str
    ou: str
    upn_suffix: str
    mail_domain: str
    prefix: str
    employee_base: int
    departments: tuple[str, ...]


FORCES: Final = (
    Force(
        "wmp",
        "West Mercia Police",
        f"OU=West Mercia,{BASE_DN}",
        "@westmercia.police.uk",
        "westmercia.police.uk",
        "WMP-",
        1_000_000,
        (
            "Response",
            "CID",
            "Custody",
            "Control-Room",
            "Roads-Policing",
            "Public-Protection",
            "Intelligence",
            "Neighbourhood",
            "HR",
            "Finance",
            "ICT",
            "Professional-Standards",
        ),
    ),
    Force(
        "warks",
        "Warwickshire Police",
        f"OU=Warwickshire,{BASE_DN}",
        "@warwickshire.police.uk",
        "warwickshire.police.uk",
        "WARKS-",
        2_000_000,
        (
            "Response",
            "CID",
            "Custody",
            "Control-Room",
            "Roads-Policing",
            "Safeguarding",
            "Intelligence",
            "ICT",
        ),
    ),
)
SHARED_OU: Final = f"OU=Shared Services,{BASE_DN}"
USERS_CN: Final = f"CN=Users,{BASE_DN}"
BUILTIN_CN: Final = f"CN=Builtin,{BASE_DN}"

#: Each force's id to the other force's.
OTHER: Final = {"wmp": "warks", "warks": "wmp"}
#: The department of each force whose group is nested into the other force's resource group.
NESTED_DEPT: Final = {"wmp": "Intelligence", "warks": "CID"}
#: The Warwickshire department whose group is nested into Server Operators.
PRIVILEGED_DEPT: Final = "ICT"
#: Departments whose people no plant draws and no mover comes from: their groups are planted
#: whole, and their members' truth follows from the department alone.
RESERVED_DEPTS: Final = {
    "wmp": [NESTED_DEPT["wmp"]],
    "warks": [NESTED_DEPT["warks"], PRIVILEGED_DEPT],
}


@dataclass
class Sample:
    """Canonical tables of the synthetic directory plus the findings it must produce (and the
    legitimate accesses it must not)."""

    tables: dict[str, pl.DataFrame]
    truth: pl.DataFrame
    now: datetime
    seed: int
    domain_sid: str
    config: dict[str, Any] = field(default_factory=dict)
    exports: dict[str, pl.DataFrame] = field(default_factory=dict)  # application CSV rows
    entra: dict[str, pl.DataFrame] = field(default_factory=dict)  # the Entra tenant's tables
    #: each force's new domain and the shared domain's rows they add (plants_foreign)
    domains: dict[str, pl.DataFrame] = field(default_factory=dict)
    #: What the generator planted as legitimate (:mod:`accessaudit.sample.legit`): no finding
    #: may touch it.
    legitimate: pl.DataFrame = field(default_factory=lambda: empty(LEGIT_SCHEMA))
    #: Every directory account's organisation as generated (account_id, org, alt_org: a
    #: mover's HR force), and with ``legacy=True`` the accounts each legacy case rewrote
    #: (case, account_id): :mod:`accessaudit.sample.legacy`.
    attribution: pl.DataFrame | None = None
    legacy: pl.DataFrame | None = None

    @property
    def source(self) -> str:
        return SOURCE

    def combined(self) -> dict[str, pl.DataFrame]:
        """The directory's tables with the new domains' and the Entra tenant's rows (when
        generated) appended."""
        out = self.directory()
        if not self.entra:
            return out
        return {name: pl.concat([df, self.entra[name]]) if name in self.entra else df
                for name, df in out.items()}  # fmt: skip

    def directory(self) -> dict[str, pl.DataFrame]:
        """The directory's tables with the new domains' rows (when generated) appended."""
        out = dict(self.tables)
        for name, df in self.domains.items():
            out[name] = pl.concat([out[name], df], how="diagonal_relaxed") if name in out else df
        return out


def guids(rng: np.random.Generator, n: int) -> pl.Series:
    """``n`` random GUIDs in canonical form (one draw of ``16 * n`` bytes)."""
    raw = np.frombuffer(rng.bytes(16 * n).hex().encode(), dtype="S32").astype("U32")
    s = pl.Series("g", raw, dtype=pl.String)
    return pl.select(
        pl.concat_str(
            [
                s.str.slice(0, 8),
                s.str.slice(8, 4),
                s.str.slice(12, 4),
                s.str.slice(16, 4),
                s.str.slice(20, 12),
            ],
            separator="-",
        )
    ).to_series()


def dn_escape(value: str) -> str:
    """RFC 4514 escaping of one attribute value for use in a DN."""
    out = value.replace("\\", "\\\\")
    for ch in (",", "+", '"', "<", ">", ";", "="):
        out = out.replace(ch, "\\" + ch)
    if out.startswith((" ", "#")):
        out = "\\" + out
    return out[:-1] + "\\ " if out.endswith(" ") else out


def _pairs(accounts: pl.Series | None, groups: Sequence[tuple[str, int | None]]) -> pl.DataFrame:
    """Rows ``account_id``, ``group_name``, ``depth``: every account x every (group, depth);
    the accounts alone when there are no groups, the groups alone when there are no accounts."""
    if accounts is not None and not groups:  # account-only rows
        return pl.DataFrame({"account_id": accounts}).with_columns(
            group_name=pl.lit(None, pl.String), depth=pl.lit(None, pl.Int32)
        )
    by_group = pl.DataFrame(
        {"group_name": [g for g, _ in groups], "depth": [d for _, d in groups]},
        schema={"group_name": pl.String, "depth": pl.Int32},
    )
    if accounts is None:
        return by_group.with_columns(account_id=pl.lit(None, pl.String))
    return pl.DataFrame({"account_id": accounts}).join(by_group, how="cross")


class Builder:
    """Accumulates groups, edges and truth rows while planting."""

    def __init__(self, rng: np.random.Generator, domain_sid: str) -> None:
        self.rng = rng
        self.domain_sid = domain_sid
        self.groups: list[dict[str, Any]] = []
        self.by_name: dict[str, dict[str, Any]] = {}
        self.nest: list[tuple[str, str]] = []  # (child name, parent name)
        self.edges: list[pl.DataFrame] = []  # (group_id, member_id, member_kind, via)
        self.foreign: list[tuple[str, str]] = []  # (group name, SID of a foreign principal)
        self.truth: list[pl.DataFrame] = []
        self.truth_ids: list[pl.DataFrame] = []  # rows already keyed by object ids
        self.reach: list[pl.Series] = []  # accounts with cross access through a group's grant
        self.legit: list[pl.DataFrame] = []  # legitimate rows naming groups (legit.py)
        self.legit_groups: list[tuple[str, str, str, int, str]] = []  # group-level ones
        self.legit_ids: list[pl.DataFrame] = []  # legitimate rows keyed by object ids
        self.next_rid = 5_000_000
        self._parents: dict[str, list[str]] = {}
        self._parents_at = -1

    def group(
        self,
        name: str,
        dn_parent: str,
        *,
        scope: str = "global",
        rid: int | None = None,
        builtin: bool = False,
        privileged: bool = False,
        description: str | None = None,
        kind: str = GroupKind.SECURITY,
    ) -> dict[str, Any]:
        if rid is None:
            rid = self.next_rid
            self.next_rid += 1
        sid = f"S-1-5-32-{rid}" if builtin else f"{self.domain_sid}-{rid}"
        g: dict[str, Any] = {
            "source": SOURCE,
            "group_id": None,  # filled in bulk later
            "sid": sid,
            "name": name,
            "dn": f"CN={dn_escape(name)},{dn_parent}",
            "description": description,
            "scope": "builtin" if builtin else scope,
            "kind": kind,
            "managed_by": None,
            "privileged": privileged,
            "owners": [],
            "mastered": "ad",
            "rid": rid,
        }
        self.groups.append(g)
        self.by_name[name] = g
        return g

    def nested(self, child: str, parent: str) -> None:
        self.nest.append((child, parent))

    def managed_by(self, group: str, account_id: str) -> None:
        """managedBy, and the owners list the LDAP connector derives from it."""
        self.by_name[group]["managed_by"] = account_id
        self.by_name[group]["owners"] = [account_id]

    def plant_ids(self, rule: str, plant: str, rows: pl.DataFrame) -> None:
        """Record truth rows given by object ids (any of the truth's key columns, and depth)."""
        self.truth_ids.append(rows.with_columns(rule_id=pl.lit(rule), plant=pl.lit(plant)))

    def members(self, group: str, ids: pl.Series | Sequence[str], via: str = Via.MEMBER) -> None:
        ids = pl.Series("member_id", list(ids) if not isinstance(ids, pl.Series) else ids)
        self.edges.append(
            pl.DataFrame({"member_id": ids}).with_columns(
                group_name=pl.lit(group),
                member_kind=pl.lit(MemberKind.ACCOUNT.value),
                via=pl.lit(str(via)),
            )
        )

    def foreign_member(self, group: str, sid: str) -> None:
        """A foreign security principal (a user of another domain, by SID) in ``group``."""
        self.foreign.append((group, sid))

    def plant(
        self,
        rule: str,
        plant: str,
        accounts: pl.Series | None,
        groups: Sequence[tuple[str, int]],
        member_group: str | None = None,
    ) -> None:
        """Record truth rows: every account x every (group name, depth)."""
        self.truth.append(
            _pairs(accounts, groups).with_columns(
                rule_id=pl.lit(rule),
                member_group_name=pl.lit(member_group, pl.String),
                plant=pl.lit(plant),
            )
        )

    def allow(
        self,
        kind: str,
        reason: str,
        accounts: pl.Series | None,
        groups: Sequence[tuple[str, int | None]],
    ) -> None:
        """Record legitimate rows (:mod:`accessaudit.sample.legit`): every account x every
        (group name, depth); ``accounts`` None for rows that name the group alone."""
        self.legit.append(
            _pairs(accounts, groups).with_columns(kind=pl.lit(kind), reason=pl.lit(reason))
        )

    def allow_rows(self, kind: str, reason: str, rows: pl.DataFrame) -> None:
        """Record legitimate rows given as ``account_id`` + ``group_name`` (+ ``depth``)."""
        self.legit.append(rows.with_columns(kind=pl.lit(kind), reason=pl.lit(reason)))

    def allow_nesting(self, kind: str, reason: str, child: str) -> None:
        """Record that every path from ``child`` up to its ancestors *so far* is legitimate
        (one row per ancestor; called before any plant nests the group across the line)."""
        self.legit_groups.extend((kind, child, g, d, reason) for g, d in self.ancestors(child))

    def allow_ids(self, kind: str, reason: str, rows: pl.DataFrame) -> None:
        """Record legitimate rows given by object ids (any of ``LEGIT_KEYS``, and depth)."""
        self.legit_ids.append(rows.with_columns(kind=pl.lit(kind), reason=pl.lit(reason)))

    def ancestors(self, name: str) -> list[tuple[str, int]]:
        """Ancestors by construction of the layered trees (shortest depth), for truth rows."""
        if self._parents_at != len(self.nest):  # rebuilt only when nestings were added
            self._parents = {}
            for c, p in self.nest:
                self._parents.setdefault(c, []).append(p)
            self._parents_at = len(self.nest)
        parents = self._parents
        out: dict[str, int] = {}
        frontier = [(name, 0)]
        while frontier:
            node, d = frontier.pop(0)
            for p in parents.get(node, []):
                if p != name and p not in out:
                    out[p] = d + 1
                    frontier.append((p, d + 1))
        return sorted(out.items())


class Draw:
    """Picks staff for the directory's plants, without replacement, so plants never overlap.

    Never a mover (their groups are a plant of their own) nor a member of a reserved department
    (:data:`RESERVED_DEPTS`). ``people`` may be replaced by a later version of the same rows.
    """

    def __init__(self, rng: np.random.Generator, people: pl.DataFrame, used: Iterable[str]) -> None:
        self.rng = rng
        self.people = people
        self.used: set[str] = set(used)

    def __call__(self, org: str, n: int) -> pl.Series:
        """``n`` staff of ``org`` no plant has drawn yet."""
        cond = (pl.col("org") == org) & ~pl.col("mover")
        cond = cond & ~pl.col("department").is_in(RESERVED_DEPTS[org])
        cand = self.people.filter(cond & ~pl.col("account_id").is_in(list(self.used)))
        pick: pl.Series = cand[self.rng.choice(cand.height, size=n, replace=False).tolist()][
            "account_id"
        ]
        self.used.update(pick.to_list())
        return pick
