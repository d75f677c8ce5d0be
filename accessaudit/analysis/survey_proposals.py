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
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from accessaudit.analysis.survey import Survey, _containers, bucket_sums
from accessaudit.config.organisations import Organisation
from accessaudit.config.survey import AddedMatchers, merge_matchers
from accessaudit.model import SPECIAL_ORGS

#: The signals a proposal may use, per kind of object (source is not a matcher of accounts).
PROPOSABLE: dict[str, tuple[str, ...]] = {
    "accounts": ("ou", "upn_suffix", "mail_domain", "company", "employee_id", "name_prefix"),
    "groups": ("ou", "name_prefix"),
}
MAX_ROUNDS = 3


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
    key: str = ""  # its bucket's key (as the matcher compares)

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


def _has(attributed: pl.DataFrame, orgs: Sequence[str]) -> pl.DataFrame:
    """Per object, whether a matcher of each organisation fires on it (``has:<org>``), from
    the evidence the attribution recorded."""
    joined = attributed.select(ev=pl.col("org_evidence").list.join("|"))
    return joined.select(
        **{
            f"has:{o}": pl.col("ev").str.contains(rf"(?:^|\|)[a-z_]+:{re.escape(o)}(?: |\||$)")
            for o in orgs
        }
    )


def _fires(objects: pl.DataFrame, chain: pl.DataFrame, signal: str, key: str) -> pl.Expr:
    """The objects a proposed matcher fires on: those in its bucket."""
    if signal == "ou":
        under = chain.filter(pl.col("key") == key)["_parent"]
        return pl.col("_parent").is_in(under.implode())
    return (pl.col(f"k:{signal}") == key).fill_null(False)


def _round_state(frame: pl.DataFrame, orgs: Sequence[str]) -> list[pl.Expr]:
    """``n`` (organisations firing) and ``att:<org>`` (attributed to that organisation alone)
    from the ``has:<org>`` columns: what the attribution decides, but for the precedence,
    which only orders conflicts."""
    n = pl.sum_horizontal([pl.col(f"has:{o}").cast(pl.Int32) for o in orgs])
    return [(n == 1) & pl.col(f"has:{o}") for o in orgs]


def _candidates(
    frame: pl.DataFrame,
    chain: pl.DataFrame,
    kind: str,
    orgs: Sequence[str],
    real: Sequence[str],
    min_share: float,
    min_support: int,
    later: bool,
) -> pl.DataFrame:
    """Buckets that qualify (see the module docstring), with the round's figures. In a
    ``later`` round the share is of every holder, not only of the attributed ones: what the
    earlier proposals attribute grounds it, and a container where they leave some objects
    unattributed (``CN=Users``) would hand those objects to a force on no evidence of their own."""
    alone = _round_state(frame, orgs)
    sums = {
        "holders": pl.lit(1),
        "open": pl.col("_status") == "unattributed",
        **{f"att:{o}": e for o, e in zip(orgs, alone, strict=True) if o in real},
    }
    per = bucket_sums(frame, chain, PROPOSABLE[kind], sums).filter(
        pl.col("key").is_not_null() & ((pl.col("signal") != "ou") | (pl.col("depth") > 0))
    )
    att = [f"att:{o}" for o in real]
    best = (
        per.select("signal", "key", *att)
        .unpivot(index=["signal", "key"], variable_name="org", value_name="n")
        .with_columns(pl.col("org").str.strip_prefix("att:"))
        .sort("n", "org", descending=[True, False])
        .group_by("signal", "key", maintain_order=True)
        .first()
    )
    return (
        per.with_columns(support=pl.sum_horizontal(att))
        .join(best, on=["signal", "key"])
        .filter(pl.col("open") > 0)
        .with_columns(share=pl.col("n") / pl.col("support"))
        .filter(
            (pl.col("support") >= min_support)
            & (pl.col("share") >= min_share)
            & (pl.col("support") * 2 >= pl.col("holders"))
            & (~pl.lit(later) | (pl.col("n") >= min_share * pl.col("holders")))
        )
        .sort("signal", "key")
    )


def _highest_ous(found: pl.DataFrame, proposed: set[tuple[str, str]]) -> pl.DataFrame:
    """OU candidates with no candidate or earlier proposal above them (the highest container
    that qualifies)."""
    ous = set(found.filter(pl.col("signal") == "ou")["key"].to_list())
    ous |= {k for s, k in proposed if s == "ou"}
    below = [k for k in ous if any(c.lower() in ous for c, _ in _containers(k)[1:])]
    return found.filter(~((pl.col("signal") == "ou") & pl.col("key").is_in(below)))


def propose(
    survey: Survey,
    current: pl.DataFrame,
    organisations: Sequence[Organisation],
    *,
    min_share: float,
    min_support: int,
) -> tuple[list[Proposal], list[Organisation]]:
    """The proposals for the ``survey``'s objects (``current``: its table attributed by
    ``organisations``), and the organisations with all of them added. Rounds after the first
    decide with the evidence plus the bucket each proposal names (no attribution is rerun)."""
    kind, objects, chain = survey.kind, survey.objects, survey.chains
    orgs = [o.id for o in organisations]
    real = [o for o in orgs if o not in SPECIAL_ORGS]
    frame = pl.concat(
        [objects.select("_parent", pl.col("status").alias("_status"),
                        *(c for c in objects.columns if c.startswith(("k:", "v:")))),
         _has(current, orgs)],
        how="horizontal",
    )  # fmt: skip
    out: list[Proposal] = []
    seen: set[tuple[str, str]] = set()
    for rnd in range(1, MAX_ROUNDS + 1):
        found = _candidates(frame, chain, kind, orgs, real, min_share, min_support, rnd > 1)
        done = pl.DataFrame(
            sorted(seen), schema={"signal": pl.String, "key": pl.String}, orient="row"
        )
        found = found.join(done, on=["signal", "key"], how="anti")
        found = _highest_ous(found, seen)
        if found.is_empty():
            break
        for r in found.iter_rows(named=True):
            p = Proposal(kind, r["signal"], r["value"], r["org"], r["share"], r["support"],
                         r["holders"], rnd)  # fmt: skip
            p.key = r["key"]
            out.append(p)
            seen.add((r["signal"], r["key"]))
            hit = _fires(objects, chain, r["signal"], r["key"])
            frame = frame.with_columns(pl.col(f"has:{p.org}") | hit)
    _measure(out, objects, chain)
    _spelling(out, organisations)
    out.sort(key=lambda p: (-p.moves_with_access, -p.moves, p.signal, p.value))
    return out, merge_matchers(organisations, [p.added() for p in out])


def _measure(out: list[Proposal], objects: pl.DataFrame, chain: pl.DataFrame) -> None:
    """Each proposal's moves and conflicts, alone, against the current configuration."""
    st = pl.col("status")
    for p in out:
        hit = objects.filter(_fires(objects, chain, p.signal, p.key))
        moved = hit.filter(st == "unattributed")
        clash = hit.filter(st.is_in(["attributed", "shared"]) & (pl.col("org") != p.org))
        p.moved = moved["id"].sort().to_list()
        p.moves = moved.height
        p.moves_with_access = int(moved["holds_access"].sum())
        p.conflicting = clash["id"].sort().to_list()
        p.conflicts = clash.height


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
