"""Matchers the survey proposes for the objects the configuration leaves unattributed.

A value of a signal (an OU, a UPN suffix, a mail domain, a ``company`` spelling, an employee-id
shape, a name prefix) is proposed for an organisation when the data says so: at least
``min_share`` of the *attributed* objects carrying it are that organisation's, at least
``min_support`` of them, they are the majority of its holders, and it would attribute at least one
object the configuration leaves unattributed today. Proposals are learned in rounds: the second
round attributes with the first round's proposals, so an OU no matcher reaches today (a renamed
OU) is proposed once its accounts' UPN suffixes, mail domains and ``company`` values say whose it
is; then ``min_share`` is of *all* its objects (a container the earlier proposals only partly
attribute, like ``CN=Users``, is not proposed: its other objects have no evidence). An OU is
proposed at the highest container that qualifies, never at the domain's head.

Never proposed: values for ``shared`` (sharing is a decision people take with a date, not a
pattern in the data), and anything for conflicting objects (adding a matcher cannot settle a
conflict: the survey lists those buckets for review instead).

Each :class:`Proposal` states what it moves on its own against the current configuration: the
unattributed objects it attributes (their ids), how many of them hold access, and the objects
attributed to another organisation today that it would make conflicting.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import polars as pl

from accessaudit.analysis.survey import _containers, status
from accessaudit.config.organisations import Organisation
from accessaudit.config.survey import AddedMatchers, merge_matchers
from accessaudit.model import SPECIAL_ORGS

#: The signals a proposal may use, per kind of object (source is not a matcher of accounts).
PROPOSABLE: dict[str, tuple[str, ...]] = {
    "accounts": ("ou", "upn_suffix", "mail_domain", "company", "employee_id", "name_prefix"),
    "groups": ("ou", "name_prefix"),
}
MAX_ROUNDS = 3

#: Attribute the survey's table with these organisations (rows in the table's order).
Attribute = Callable[[Sequence[Organisation]], pl.DataFrame]


@dataclass
class Proposal:
    kind: str  # "accounts" or "groups"
    signal: str  # the matcher kind
    value: str  # the matcher value, as the configuration takes it
    org: str
    share: float  # of the attributed holders in the round it was learned, the org's share
    support: int  # attributed holders in that round
    holders: int  # objects carrying the value
    round: int  # 1: from the current configuration; 2+: with the earlier rounds' proposals
    moves: int = 0  # unattributed objects it attributes (alone, against the configuration)
    moves_with_access: int = 0
    conflicts: int = 0  # objects of another organisation today it would make conflicting
    moved: list[str] = field(default_factory=list)  # ids of the objects it moves
    conflicting: list[str] = field(default_factory=list)  # ids of the objects it conflicts
    note: str = ""

    def added(self) -> AddedMatchers:
        key = self.signal
        value: str | list[str] = self.value if key == "employee_id" else [self.value]
        return AddedMatchers.model_validate({"org": self.org, key: value, "reason": self.reason})

    @property
    def reason(self) -> str:
        how = "by the configuration" if self.round == 1 else "with the earlier proposals"
        return (
            f"{self.share:.1%} of the {self.support} {self.kind} with this {self.signal} "
            f"attributed {how} are {self.org}'s"
        )


def _candidates(
    sig: pl.DataFrame,
    now: pl.DataFrame,
    base: pl.DataFrame,
    kind: str,
    min_share: float,
    min_support: int,
    later: bool,
) -> pl.DataFrame:
    """Buckets that qualify (see the module docstring), with the round's figures. In a
    ``later`` round the share is of every holder, not only of the attributed ones: what the
    earlier proposals attribute grounds it, and a container where they leave some objects
    unattributed (``CN=Users``) would hand those objects to a force on no evidence of their own."""
    long = sig.filter(pl.col("signal").is_in(PROPOSABLE[kind]) & pl.col("key").is_not_null()).join(
        now, on="_row"
    )
    long = long.filter((pl.col("signal") != "ou") | (pl.col("depth") > 0))
    keys = ["signal", "key"]
    holders = long.group_by(keys).agg(
        holders=pl.len(), value=pl.col("value").drop_nulls().mode().sort().first()
    )
    per_org = (
        long.filter(pl.col("status") == "attributed")
        .group_by([*keys, "org"])
        .agg(n=pl.len())
        .with_columns(support=pl.col("n").sum().over(keys))
        .sort("n", "org", descending=[True, False])
        .group_by(keys, maintain_order=True)
        .first()
    )
    unattributed = (
        sig.join(base.filter(pl.col("status") == "unattributed"), on="_row", how="semi")
        .group_by(keys)
        .agg(open=pl.len())
    )
    return (
        holders.join(per_org, on=keys)
        .join(unattributed, on=keys)
        .with_columns(share=pl.col("n") / pl.col("support"))
        .filter(
            (pl.col("share") >= min_share)
            & (pl.col("support") >= min_support)
            & (pl.col("support") * 2 >= pl.col("holders"))
            & (~pl.lit(later) | (pl.col("n") >= min_share * pl.col("holders")))
        )
        .sort(keys)
    )


def _highest_ous(found: pl.DataFrame, proposed: pl.DataFrame) -> pl.DataFrame:
    """OU candidates with no candidate or earlier proposal above them (the highest container
    that qualifies)."""
    ous = set(found.filter(pl.col("signal") == "ou")["key"].to_list())
    ous |= set(proposed.filter(pl.col("signal") == "ou")["key"].to_list())
    below = [k for k in ous if any(c in ous for c, _ in _containers(k)[1:])]
    return found.filter(~((pl.col("signal") == "ou") & pl.col("key").is_in(below)))


def _state(attributed: pl.DataFrame) -> pl.DataFrame:
    return attributed.select("org", status=status()).with_row_index("_row")


def propose(
    kind: str,
    sig: pl.DataFrame,
    attribute: Attribute,
    organisations: Sequence[Organisation],
    objects: pl.DataFrame,
    *,
    min_share: float,
    min_support: int,
) -> tuple[list[Proposal], list[Organisation]]:
    """The proposals for ``kind`` (``sig`` and ``objects``: the
    :class:`~accessaudit.analysis.survey.Survey` of the table attributed by
    ``organisations``), and the organisations with all of them added."""
    base = objects.select("_row", "org", "status")
    orgs = list(organisations)
    real = sorted(o.id for o in orgs if o.id not in SPECIAL_ORGS)
    out: list[Proposal] = []
    seen = pl.DataFrame(schema={"signal": pl.String, "key": pl.String})
    now = base
    for rnd in range(1, MAX_ROUNDS + 1):
        found = _candidates(sig, now, base, kind, min_share, min_support, later=rnd > 1)
        found = _highest_ous(
            found.join(seen, on=["signal", "key"], how="anti").filter(pl.col("org").is_in(real)),
            seen,
        )
        if found.is_empty():
            break
        new = [
            Proposal(
                kind, r["signal"], r["value"], r["org"], r["share"], r["support"], r["holders"], rnd
            )
            for r in found.iter_rows(named=True)
        ]
        seen = pl.concat([seen, found.select("signal", "key")])
        out += new
        orgs = merge_matchers(orgs, [p.added() for p in new])
        now = _state(attribute(orgs))
    _measure({(p.signal, _key(p)): p for p in out}, sig, objects)
    _spelling(out, organisations)
    out.sort(key=lambda p: (-p.moves_with_access, -p.moves, p.signal, p.value))
    return out, orgs


def _key(p: Proposal) -> str:
    return p.value if p.signal == "employee_id" else p.value.lower()


def _measure(
    keyed: dict[tuple[str, str], Proposal], sig: pl.DataFrame, objects: pl.DataFrame
) -> None:
    """Each proposal's moves and conflicts, alone, against the current configuration."""
    if not keyed:
        return
    wanted = pl.DataFrame(
        {
            "signal": [s for s, _ in keyed],
            "key": [k for _, k in keyed],
            "to": [p.org for p in keyed.values()],
        }
    )
    rows = sig.join(wanted, on=["signal", "key"]).join(objects, on="_row")
    moved = rows.filter(pl.col("status") == "unattributed")
    clash = rows.filter(
        pl.col("status").is_in(["attributed", "shared"]) & (pl.col("org") != pl.col("to"))
    )
    for s, k, ids, access in (
        moved.group_by("signal", "key")
        .agg(pl.col("id").sort(), pl.col("holds_access").sum())
        .iter_rows()
    ):
        p = keyed[(s, k)]
        p.moved, p.moves, p.moves_with_access = ids, len(ids), int(access)
    for s, k, ids in clash.group_by("signal", "key").agg(pl.col("id").sort()).iter_rows():
        p = keyed[(s, k)]
        p.conflicting, p.conflicts = ids, len(ids)


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _spelling(out: list[Proposal], organisations: Sequence[Organisation]) -> None:
    """A proposed ``company`` value close to a configured one, or to a proposed one more objects
    carry: say it is a spelling variant of it."""
    company = [p for p in out if p.signal == "company"]
    known: list[tuple[str, str, int | None]] = [
        (c, o.id, None) for o in organisations for c in o.match.company
    ]
    known += [(q.value, q.org, q.support) for q in company]
    for p in company:
        for value, org, support in known:
            if org != p.org or _squash(value) == _squash(p.value):
                continue
            if support is not None and support <= p.support:
                continue  # the variant is the rarer spelling
            if difflib.SequenceMatcher(None, _squash(p.value), _squash(value)).ratio() >= 0.8:
                p.note = f"spelling variant of {value!r}"
                break
