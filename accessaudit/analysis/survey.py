"""The attribution survey: how the directory splits by every signal the matchers read, how the
current configuration attributes each part, and how much access sits in it.

For accounts and for groups separately, every object is put in one *bucket* per signal it
carries (:data:`ACCOUNT_SIGNALS`, :data:`GROUP_SIGNALS`): its OU subtrees (every container
above it, so the OUs form a tree with counts), UPN suffix, mail domain, ``company`` value,
employee-id shape (a pattern learned from the value: ``^1\\d{6}$``, ``^WM\\d{5}$``), name prefix
(up to the first ``-``, ``_`` or ``.``) and source. Buckets are keyed as the matchers compare
(lower-cased, ``@`` before a UPN suffix), so a bucket's objects are exactly those a matcher
written from its value fires on. Each bucket counts its objects by how the configuration
attributes them (:data:`STATUSES`: attributed to a force, shared, unattributed, conflicting),
the organisations of the attributed ones, and the access held: direct memberships (not the
primary group every account has), memberships reaching a privileged group (directly or through
nesting) and grants. Buckets come largest *access at risk* first: the memberships and grants of
their unattributed and conflicting objects, what a user should fix first.

An OU bucket whose objects all go to one organisation hides the OUs below it (``collapsed``):
one force owning a subtree is one line, not fifty.

:func:`coverage` is the attribution coverage by signal (which matcher kinds attribute how many
objects), shared with the report's evidence view. All of it is polars over the tables (the OU
chains are built once per distinct parent container, not per object).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from accessaudit.analysis.control import CONTROL_KINDS
from accessaudit.model import Org, Via

ACCOUNT_SIGNALS: tuple[str, ...] = (
    "ou",
    "upn_suffix",
    "mail_domain",
    "company",
    "employee_id",
    "name_prefix",
    "source",
)
GROUP_SIGNALS: tuple[str, ...] = ("ou", "name_prefix", "source")
STATUSES: tuple[str, ...] = ("attributed", "shared", "unattributed", "conflicting")
#: The unmatched statuses a survey is run to reduce.
OPEN: tuple[str, ...] = ("unattributed", "conflicting")

#: One relative name of a DN: escaped characters kept (``CN=Smith\, J``).
_RDN = re.compile(r"(?:[^,\\]|\\.)+")

BUCKET_SCHEMA = pl.Schema(
    {
        "signal": pl.String(),
        "key": pl.String(),
        "value": pl.String(),
        "depth": pl.Int32(),
        "objects": pl.UInt32(),
        "attributed": pl.UInt32(),
        "shared": pl.UInt32(),
        "unattributed": pl.UInt32(),
        "conflicting": pl.UInt32(),
        "holding_access": pl.UInt32(),
        "open_with_access": pl.UInt32(),
        "memberships": pl.Int64(),
        "privileged": pl.Int64(),
        "grants": pl.Int64(),
        "access_at_risk": pl.Int64(),
        "orgs": pl.List(pl.Struct({"org": pl.String(), "objects": pl.UInt32()})),
        "collapsed": pl.Boolean(),
    }
)


@dataclass
class Survey:
    """One kind of object (``accounts`` or ``groups``): its ``objects`` (row key ``_row``,
    ``status``, ``org``, the access columns and ``holds_access``) and its ``buckets``
    (:data:`BUCKET_SCHEMA`), largest access at risk first."""

    kind: str
    objects: pl.DataFrame  # and each object's buckets (:func:`signal_columns`)
    chains: pl.DataFrame  # the containers above each parent (:func:`chains`)
    buckets: pl.DataFrame


def status() -> pl.Expr:
    """An attributed row's status, one of :data:`STATUSES`."""
    org = pl.col("org")
    return (
        pl.when(pl.col("org_conflict"))
        .then(pl.lit("conflicting"))
        .when(org == Org.UNATTRIBUTED.value)
        .then(pl.lit("unattributed"))
        .when(org == Org.SHARED.value)
        .then(pl.lit("shared"))
        .otherwise(pl.lit("attributed"))
    )


# --- access --------------------------------------------------------------------------------------


def privileged_groups(groups: pl.DataFrame, closure: pl.DataFrame) -> pl.Series:
    """Ids of the groups that are privileged or nested (at any depth) into a privileged one."""
    own = groups.filter(pl.col("privileged").fill_null(False))["group_id"]
    nested = closure.filter(pl.col("ancestor_id").is_in(own.implode()))["group_id"]
    return pl.concat([own, nested.cast(pl.String)]).unique()


def access(
    ids: pl.Series,
    member_kind: str,
    memberships: pl.DataFrame,
    grants: pl.DataFrame,
    privileged: pl.Series,
) -> pl.DataFrame:
    """Per id (``id``): its direct memberships (the primary group left out: every account has
    one), those into a group reaching a privileged one, and the grants it holds itself."""
    edges = memberships.filter(
        (pl.col("member_kind") == member_kind) & (pl.col("via") != Via.PRIMARY_GROUP.value)
    )
    member = edges.group_by(id="member_id").agg(
        memberships=pl.len().cast(pl.Int64),
        privileged=pl.col("group_id").is_in(privileged.implode()).sum().cast(pl.Int64),
    )
    held = grants.group_by(id="principal_id").agg(grants=pl.len().cast(pl.Int64))
    return (
        ids.to_frame("id")
        .join(member, on="id", how="left", maintain_order="left")
        .join(held, on="id", how="left", maintain_order="left")
        .with_columns(pl.col("memberships", "privileged", "grants").fill_null(0))
    )


def group_access(
    ids: pl.Series, memberships: pl.DataFrame, grants: pl.DataFrame, privileged: pl.Series
) -> pl.DataFrame:
    """Per group id (``id``): its direct members (``memberships``; the primary group's left
    out), whether it is or reaches a privileged group (``privileged``, 0 or 1) and the grants
    it holds."""
    members = (
        memberships.filter(pl.col("via") != Via.PRIMARY_GROUP.value)
        .group_by(id="group_id")
        .agg(memberships=pl.len().cast(pl.Int64))
    )
    held = grants.group_by(id="principal_id").agg(grants=pl.len().cast(pl.Int64))
    return (
        ids.to_frame("id")
        .join(members, on="id", how="left", maintain_order="left")
        .join(held, on="id", how="left", maintain_order="left")
        .with_columns(
            pl.col("memberships", "grants").fill_null(0),
            privileged=pl.col("id").is_in(privileged.implode()).cast(pl.Int64),
        )
        .select("id", "memberships", "privileged", "grants")
    )


def conflicts(attributed: pl.DataFrame, limit: int = 20) -> pl.DataFrame:
    """The conflicting objects by the signals that disagree (``evidence``: the matchers that
    fired, e.g. ``"company:warks, ou:wmp"``), most objects first: for review, since adding a
    matcher never settles a conflict."""
    return (
        attributed.filter(pl.col("org_conflict"))
        .select(evidence=pl.col("org_evidence").list.sort().list.join(", "))
        .group_by("evidence")
        .agg(objects=pl.len())
        .sort(["objects", "evidence"], descending=[True, False])
        .head(limit)
    )


def _objects(attributed: pl.DataFrame, id_col: str, acc: pl.DataFrame) -> pl.DataFrame:
    got = attributed.select(pl.col(id_col).alias("id"), "org", status().alias("status"))
    out = pl.concat([got, acc.drop("id")], how="horizontal")
    return out.with_row_index("_row").with_columns(
        holds_access=(pl.col("memberships") + pl.col("grants")) > 0
    )


# --- signals -------------------------------------------------------------------------------------


def _containers(parent: str) -> list[tuple[str, int]]:
    """The containers a DN's parent ``parent`` sits in, itself first, with their depth below
    the domain (the domain itself: 0): OUs and CNs, then the domain's ``DC=`` head."""
    rdns = _RDN.findall(parent)
    first_dc = next((i for i, r in enumerate(rdns) if r[:3].upper() == "DC="), len(rdns))
    out = [(",".join(rdns[i:]), first_dc - i) for i in range(first_dc)]
    if first_dc < len(rdns):
        out.append((",".join(rdns[first_dc:]), 0))
    return out


def chains(objects: pl.DataFrame) -> pl.DataFrame:
    """Every container above each distinct parent (``_parent``): ``key`` (lower-cased, as the
    ``ou`` matcher compares), ``value`` (as written) and ``depth``. Built once per parent, not
    per object."""
    parents = (
        objects.filter(pl.col("_parent").is_not_null())
        .group_by("_parent")
        .agg(pl.col("_parent_value").first())
        .sort("_parent")
    )
    rows = [(p, c.lower(), c, d) for p, value in parents.iter_rows() for c, d in _containers(value)]
    return pl.DataFrame(
        {
            "_parent": [r[0] for r in rows],
            "key": [r[1] for r in rows],
            "value": [r[2] for r in rows],
            "depth": [r[3] for r in rows],
        },
        schema={"_parent": pl.String, "key": pl.String, "value": pl.String, "depth": pl.Int32},
    )


def _employee_shape(col: pl.Expr) -> pl.Expr:
    """A pattern learned from an employee id: digits keep their first digit (``^1\\d{6}$``),
    letters then digits keep the letters (``^WM\\d{5}$``); any other shape is null."""
    text = col.str.strip_chars()
    parts = text.str.extract_groups(r"^([A-Za-z]{1,8})?([0-9])([0-9]*)$")
    letters, first, rest = (parts.struct.field(n) for n in ("1", "2", "3"))
    digits = pl.when(letters.is_null()).then(first).otherwise(pl.lit(""))
    count = rest.str.len_chars() + pl.when(letters.is_null()).then(0).otherwise(1)
    return pl.concat_str(
        [
            pl.lit("^"),
            letters.fill_null(""),
            digits,
            pl.lit("\\d{"),
            count.cast(pl.String),
            pl.lit("}$"),
        ]
    )


def _after_at(col: str) -> pl.Expr:
    return pl.col(col).str.extract(r"@([^@]+)$", 1)


def _signal_exprs(kind: str) -> dict[str, tuple[pl.Expr, bool]]:
    """How each signal but ``ou`` reads a row: its value as written, and whether the matcher
    compares it lower-cased (its key) or as it is."""
    name = "username" if kind == "accounts" else "name"
    out = {
        "name_prefix": (pl.col(name).str.extract(r"^([A-Za-z0-9]+[-_.])", 1), True),
        "source": (pl.col("source"), False),
    }
    if kind == "accounts":
        out |= {
            "upn_suffix": (pl.concat_str([pl.lit("@"), _after_at("upn")]), True),
            "mail_domain": (_after_at("mail"), True),
            "company": (pl.col("company"), True),  # as compared: a stray space is a variant
            "employee_id": (_employee_shape(pl.col("employee_id")), False),
        }
    return out


def signal_columns(df: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Each row's bucket per signal: ``_parent`` / ``_parent_value`` (the container holding it,
    lower-cased and as written; the OU buckets are its :func:`chains`) and ``k:<signal>`` /
    ``v:<signal>`` for the others (null when the object lacks the attribute)."""
    parent = pl.col("dn").str.extract(r"^(?:[^,\\]|\\.)*,(.+)$", 1)
    exprs = _signal_exprs(kind)
    names = [s for s in (ACCOUNT_SIGNALS if kind == "accounts" else GROUP_SIGNALS) if s != "ou"]
    values = df.select(_parent_value=parent, **{f"v:{s}": exprs[s][0] for s in names})
    return values.select(
        _parent=pl.col("_parent_value").str.to_lowercase(),
        _parent_value="_parent_value",
        **{
            f"k:{s}": pl.col(f"v:{s}").str.to_lowercase() if exprs[s][1] else pl.col(f"v:{s}")
            for s in names
        },
        **{f"v:{s}": f"v:{s}" for s in names},
    )


# --- buckets -------------------------------------------------------------------------------------


def bucket_sums(
    frame: pl.DataFrame, chain: pl.DataFrame, names: Sequence[str], sums: Mapping[str, pl.Expr]
) -> pl.DataFrame:
    """Per bucket of the signals ``names`` (``signal``, ``key``, ``value``, ``depth``), the sum
    of each of ``sums`` over its objects. An OU's objects are summed per parent container first
    and then up its chain: the work is per object once, then per container."""
    cols = list(sums)
    rows = frame.select("_parent", *(c for c in frame.columns if c.startswith(("k:", "v:"))),
                        **{c: e.cast(pl.Int64) for c, e in sums.items()})  # fmt: skip
    parts = []
    for s in names:
        if s == "ou":
            per = rows.group_by("_parent").agg(pl.col(cols).sum())
            part = (
                per.join(chain, on="_parent")
                .group_by("key")
                .agg(pl.col(cols).sum(), value=pl.col("value").min(), depth=pl.col("depth").first())
            )
        else:
            spelling = (  # the spelling most of a bucket's objects carry
                rows.group_by(key=f"k:{s}", value=f"v:{s}")
                .len()
                .sort("len", "value", descending=[True, False])
                .unique("key", keep="first")
                .drop("len")
            )
            part = (
                rows.group_by(key=f"k:{s}")
                .agg(pl.col(cols).sum())
                .join(spelling, on="key", how="left", nulls_equal=True)
                .with_columns(depth=pl.lit(None, pl.Int32))
            )
        parts.append(part.select(pl.lit(s).alias("signal"), "key", "value", "depth", *cols))
    return pl.concat(parts)


def buckets(objects: pl.DataFrame, chain: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Per (signal, key): the counts of :data:`BUCKET_SCHEMA`, largest access at risk first."""
    st = pl.col("status")
    is_open = st.is_in(OPEN)
    orgs = sorted(objects["org"].unique().drop_nulls().to_list())
    placed = st.is_in(["attributed", "shared"])
    sums = {
        "objects": pl.lit(1),
        **{s: st == s for s in STATUSES},
        "holding_access": pl.col("holds_access"),
        "open_with_access": is_open & pl.col("holds_access"),
        "memberships": pl.col("memberships"),
        "privileged": pl.col("privileged"),
        "grants": pl.col("grants"),
        "access_at_risk": pl.when(is_open)
        .then(pl.col("memberships") + pl.col("grants"))
        .otherwise(0),
        **{f"org:{o}": placed & (pl.col("org") == o) for o in orgs},
    }
    names = ACCOUNT_SIGNALS if kind == "accounts" else GROUP_SIGNALS
    out = bucket_sums(objects, chain, names, sums)
    org_list = (
        out.select("signal", "key", *(f"org:{o}" for o in orgs))
        .unpivot(index=["signal", "key"], variable_name="org", value_name="objects")
        .filter(pl.col("objects") > 0)
        .with_columns(pl.col("org").str.strip_prefix("org:"))
        .sort("objects", "org", descending=[True, False])
        .group_by("signal", "key", maintain_order=True)
        .agg(orgs=pl.struct("org", "objects"))
    )
    out = out.join(org_list, on=["signal", "key"], how="left", nulls_equal=True).with_columns(
        pl.col("orgs").fill_null(
            pl.lit([], pl.List(pl.Struct({"org": pl.String, "objects": pl.Int64})))
        )
    )
    total = pl.col("memberships") + pl.col("grants")
    return (
        _collapse(out)
        .sort(
            ["access_at_risk", "open_with_access", total, "objects", "signal", "key"],
            descending=[True, True, True, True, False, False],
            nulls_last=True,
        )
        .select(BUCKET_SCHEMA.names())
        .cast(BUCKET_SCHEMA)
    )


def _collapse(out: pl.DataFrame) -> pl.DataFrame:
    """``collapsed``: an OU bucket below an OU whose objects all go to one organisation."""
    ou = out.filter(pl.col("signal") == "ou")
    owned = set(
        ou.filter(
            (pl.col("attributed") + pl.col("shared") == pl.col("objects"))
            & (pl.col("orgs").list.len() == 1)
        )["key"].to_list()
    )
    hidden = {k for k in ou["key"].to_list() if any(c in owned for c, _ in _containers(k)[1:])}
    return out.with_columns(
        collapsed=(pl.col("signal") == "ou") & pl.col("key").is_in(sorted(hidden))
    )


def survey(attributed: pl.DataFrame, kind: str, acc: pl.DataFrame) -> Survey:
    """The survey of attributed accounts or groups (``kind``); ``acc`` is :func:`access` of
    their ids, in their order."""
    id_col = "account_id" if kind == "accounts" else "group_id"
    objects = pl.concat(
        [_objects(attributed, id_col, acc), signal_columns(attributed, kind)], how="horizontal"
    )
    chain = chains(objects)
    return Survey(kind, objects, chain, buckets(objects, chain, kind))


# --- coverage ------------------------------------------------------------------------------------


def totals(objects: pl.DataFrame) -> dict[str, int]:
    """Objects and objects holding access, per status (``"<status>"`` and
    ``"<status>_with_access"``), and ``objects`` / ``with_access`` in all."""
    st = pl.col("status")
    row = objects.select(
        objects=pl.len(),
        with_access=pl.col("holds_access").sum(),
        **{s: (st == s).sum() for s in STATUSES},
        **{f"{s}_with_access": ((st == s) & pl.col("holds_access")).sum() for s in STATUSES},
    ).row(0, named=True)
    return {k: int(v or 0) for k, v in row.items()}


def coverage(attributed: pl.DataFrame, holds_access: pl.Series | None = None) -> pl.DataFrame:
    """Attribution coverage by signal: per matcher kind, the objects it fires on (any
    organisation) and, of those, the ones it decides (their organisation is the one that kind
    names) - from the ``org_evidence`` the attribution recorded (``"kind:org..."``).
    ``holds_access`` (optional, aligned with the rows) adds the same counts for objects
    holding access. Matcher kinds that fire nowhere are left out."""
    df = attributed.select("org", "org_evidence").with_columns(
        holds=holds_access if holds_access is not None else pl.lit(None, pl.Boolean)
    )
    ev = (
        df.with_row_index("_row")
        .explode("org_evidence")
        .drop_nulls("org_evidence")
        .with_columns(
            signal=pl.col("org_evidence").str.extract(r"^([a-z_]+):", 1),
            names=pl.col("org_evidence").str.extract(r"^[a-z_]+:([^ ]+)", 1),
        )
    )
    per = ev.group_by("_row", "signal").agg(
        holds=pl.col("holds").first(),
        decides=(pl.col("names") == pl.col("org")).any(),
    )
    out = per.group_by("signal").agg(
        fires=pl.len(),
        decides=pl.col("decides").sum(),
        fires_with_access=pl.col("holds").sum(),
        decides_with_access=(pl.col("decides") & pl.col("holds")).sum(),
    )
    return out.sort(["fires", "signal"], descending=[True, False])


def without_control(grants: pl.DataFrame) -> pl.DataFrame:
    """The grants the survey counts: AD control entries (derived in a run from the expansion,
    absent from a fresh collection) left out, so a stored run and a collection agree."""
    return grants.filter(~pl.col("resource_kind").is_in([k.value for k in CONTROL_KINDS]))


def attribution_coverage(
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
    grants: pl.DataFrame,
    closure: pl.DataFrame,
) -> dict[str, dict[str, Any]]:
    """Per kind (accounts, groups) of attributed tables: ``totals`` (:func:`totals`) and
    ``signals`` (:func:`coverage`), as the survey counts them: the report's coverage section."""
    grants = without_control(grants)
    privileged = privileged_groups(groups, closure)
    acc = access(accounts["account_id"], "account", memberships, grants, privileged)
    gacc = group_access(groups["group_id"], memberships, grants, privileged)
    out = {}
    for kind, table, a in (("accounts", accounts, acc), ("groups", groups, gacc)):
        objects = _objects(table, "account_id" if kind == "accounts" else "group_id", a)
        out[kind] = {
            "totals": totals(objects),
            "signals": coverage(table, objects["holds_access"]).to_dicts(),
        }
    return out
