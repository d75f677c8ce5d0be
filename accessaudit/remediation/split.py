"""Splitting a mixed group: what the new group is, where it goes, and the commands that make it.

A mixed group ``M`` of one force holds direct members of the other force (the *movers*). The
split makes a new group for the movers **in their own force**, so that the configured
attribution gives it to them on the next run:

- its name carries the movers' force's ``name_prefix`` matcher in place of ``M``'s own prefix
  (``WMP-PRJ-X`` -> ``WARKS-PRJ-X``); with no prefix configured it ends ``-<ORG>``;
- it is created in the movers' force's OU (``ou`` matcher): the OU at the same place under
  that force's OU as ``M``'s is under its own (``OU=Groups,OU=West Mercia,...`` ->
  ``OU=Groups,OU=Warwickshire,...``) if groups already live there, else the force's first OU;
- it is nested into ``M``'s direct parents of the movers' force (their same-force access
  through ``M``, kept), and into nothing else;
- the movers leave ``M``, and ``M`` leaves the other force's parents where the plan's nested
  findings cross into them (``unnests``: the un-nest is part of the split, so that no one runs
  it alone and takes the movers' same-force access away before their new group exists).

The what-if (:mod:`accessaudit.remediation.whatif`) simulates exactly these edges.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from accessaudit.config.organisations import Organisation
from accessaudit.model import SPECIAL_ORGS, MemberKind
from accessaudit.remediation.quoting import UNSAFE, id_text

_LIST = pl.List(pl.String)
PLACES_SCHEMA = pl.Schema([("org", pl.String()), ("ou", _LIST), ("prefix", _LIST)])
_EMPTY = pl.lit([], pl.List(pl.String))
_RDN = r"^(?:[^,\\]|\\.)*,"  # the first RDN of a DN and its comma (escaped commas kept)
#: characters a sAMAccountName may not hold (learn.microsoft.com/windows/win32/adschema/
#: a-samaccountname: " / \ [ ] : ; | = , + * ? < >)
_SAM_BAD = r'["/\\\[\]:;|=,+*?<>]'
#: the longest name New-ADGroup can give: ``-Name`` is the cn, whose rangeUpper is 64
#: (learn.microsoft.com/windows/win32/adschema/a-cn); the sAMAccountName is the same text
NAME_MAX = 64


def places(organisations: Iterable[Organisation]) -> pl.DataFrame:
    """``org, ou, prefix``: each organisation's ``ou`` and ``name_prefix`` matchers."""
    orgs = list(organisations)
    return pl.DataFrame(
        {
            "org": [o.id for o in orgs],
            "ou": [list(o.match.ou) for o in orgs],
            "prefix": [list(o.match.name_prefix) for o in orgs],
        },
        schema=PLACES_SCHEMA,
    )


def _longest_match(
    rows: pl.DataFrame, values: str, hit: pl.Expr, name: str, key: str = "group_id"
) -> pl.DataFrame:
    """Per ``key``: the longest element of the list column ``values`` for which ``hit`` (over
    ``_v``, one element) holds, as ``name`` (null if none)."""
    best = (
        rows.with_columns(_v=pl.col(values))
        .explode("_v")
        .filter(pl.col("_v").is_not_null() & hit)
        .sort(pl.col("_v").str.len_chars(), descending=True)
        .unique(key, keep="first")
        .select(key, pl.col("_v").alias(name))
    )
    return rows.join(best, on=key, how="left")


def describe(
    split_groups: pl.DataFrame,
    *,
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
    unnests: pl.DataFrame,
    places: pl.DataFrame,
) -> pl.DataFrame:
    """Per group to split (``split_groups.group_id``): ``_split_members`` and ``_split_org``
    (the movers and their force), ``_split_parents`` (parents the new group joins),
    ``_split_unnest`` (parents ``M`` leaves: ``unnests`` is ``group_id`` = parent,
    ``member_id`` = split group), ``_new_name``, ``_new_sam`` and ``_new_ou`` (null: no OU
    configured for the movers' force)."""
    ids = split_groups.select("group_id").unique()
    g = (
        groups.join(ids, on="group_id", how="semi")
        .select("group_id", _g_name="name", _g_dn="dn", _g_org="org")
        .unique("group_id")
    )
    mem = memberships.select("group_id", "member_id", "member_kind")
    acc_org = accounts.select(member_id="account_id", _a_org="org")
    movers = (
        mem.filter(pl.col("member_kind") == MemberKind.ACCOUNT.value)
        .join(ids, on="group_id", how="semi")
        .join(acc_org, on="member_id")
        .join(g.select("group_id", "_g_org"), on="group_id")
        .filter(
            ~pl.col("_a_org").is_in(list(SPECIAL_ORGS)) & (pl.col("_a_org") != pl.col("_g_org"))
        )
        .group_by("group_id")
        .agg(_split_members=pl.col("member_id").unique().sort(), _split_org=pl.col("_a_org").min())
    )
    out = g.join(movers, on="group_id", how="left")
    parents = (
        mem.filter(pl.col("member_kind") == MemberKind.GROUP.value)
        .join(ids, left_on="member_id", right_on="group_id", how="semi")
        .join(groups.select(group_id="group_id", _p_org="org"), on="group_id")
        .join(out.select(member_id="group_id", _split_org="_split_org"), on="member_id")
        .filter(pl.col("_p_org") == pl.col("_split_org"))
        .group_by("member_id")
        .agg(_split_parents=pl.col("group_id").unique().sort())
        .rename({"member_id": "group_id"})
    )
    leave = (
        unnests.join(ids, left_on="member_id", right_on="group_id", how="semi")
        .group_by("member_id")
        .agg(_split_unnest=pl.col("group_id").unique().sort())
        .rename({"member_id": "group_id"})
    )
    out = (
        out.join(parents, on="group_id", how="left")
        .join(leave, on="group_id", how="left")
        .with_columns(pl.col("_split_parents", "_split_unnest").fill_null(_EMPTY))
    )
    return _name_and_ou(out, groups, places)


def _name_and_ou(rows: pl.DataFrame, groups: pl.DataFrame, places: pl.DataFrame) -> pl.DataFrame:
    """The split rows with the new group's ``_new_name``, ``_new_sam`` and ``_new_ou``."""
    rows = _matched(rows, places)
    taken = groups.select(_name_key=pl.col("name").str.to_lowercase(), _taken=pl.lit(True))
    group_ous = groups.select(
        _ou_key=pl.col("dn").str.replace(_RDN, "").str.to_lowercase(), _exists=pl.lit(True)
    )
    return (
        rows.with_columns(_new_name=_proposed_name(), _same=_same_place())
        .with_columns(
            _name_key=pl.col("_new_name").str.to_lowercase(),
            _ou_key=pl.col("_same").str.to_lowercase(),
        )
        .join(taken.drop_nulls().unique(), on="_name_key", how="left")
        .join(group_ous.drop_nulls().unique(), on="_ou_key", how="left")
        .with_columns(
            _base=pl.col("_new_name"),
            _new_name=_unless_taken("_taken", _fit(pl.col("_new_name"), "-split")),
            _new_ou=pl.when(pl.col("_exists").fill_null(False))
            .then(pl.col("_same"))
            .otherwise(pl.col("_dst_ou")),
        )
        .with_columns(_name_key=pl.col("_new_name").str.to_lowercase())
        .join(taken.drop_nulls().unique().rename({"_taken": "_still"}), on="_name_key", how="left")
        .with_columns(_new_name=_unless_taken("_still", _fit(pl.col("_base"), _id_suffix())))
        .with_columns(_new_sam=pl.col("_new_name").str.replace_all(_SAM_BAD, "-"))
        .select(
            "group_id",
            "_split_members",
            "_split_org",
            "_split_parents",
            "_split_unnest",
            "_new_name",
            "_new_sam",
            "_new_ou",
        )
    )


def _matched(rows: pl.DataFrame, places: pl.DataFrame) -> pl.DataFrame:
    """The rows with their force's and the movers' force's places: ``_strip`` (the longest of
    the group's own name prefixes its name starts with), ``_parent`` (the group's container),
    ``_within`` (the longest of its own force's OUs holding it), ``_dst_ou`` and
    ``_dst_prefix`` (the movers' force's first OU and name prefix)."""
    own = places.select(_g_org="org", _own_ou="ou", _own_prefix="prefix")
    dst = places.select(
        _split_org="org",
        _dst_ou=pl.col("ou").list.first(),
        _dst_prefix=pl.col("prefix").list.first(),
    )
    rows = rows.join(own, on="_g_org", how="left").join(dst, on="_split_org", how="left")
    name = pl.col("_g_name").fill_null("")
    rows = _longest_match(
        rows,
        "_own_prefix",
        name.str.to_lowercase().str.starts_with(pl.col("_v").str.to_lowercase()),
        "_strip",
    )
    parent = pl.col("_g_dn").str.replace(_RDN, "")
    low = parent.str.to_lowercase()
    ou = pl.col("_v").str.to_lowercase()
    return _longest_match(
        rows.with_columns(_parent=parent),
        "_own_ou",
        (low == ou) | low.str.ends_with(pl.concat_str([pl.lit(","), ou])),
        "_within",
    )


def _proposed_name() -> pl.Expr:
    """The group's name with the movers' force's prefix in place of its own (else ``-<ORG>``
    appended), cleaned and cut to :data:`NAME_MAX`."""
    name = pl.col("_g_name").fill_null("")
    base = name.str.slice(pl.col("_strip").str.len_chars().fill_null(0))
    new_name = (
        pl.when(pl.col("_dst_prefix").is_not_null())
        .then(pl.concat_str([pl.col("_dst_prefix"), base]))
        .otherwise(pl.concat_str([base, pl.lit("-"), pl.col("_split_org").str.to_uppercase()]))
        .str.replace_all(UNSAFE, "")
    )
    return _fit(new_name, "")


def _same_place() -> pl.Expr:
    """The movers' group at the same place under their force's OU (``OU=Groups,<their OU>``);
    null when the group is under none of its own force's OUs."""
    rel = pl.col("_parent").str.slice(
        0, pl.col("_parent").str.len_chars() - pl.col("_within").str.len_chars()
    )
    return pl.when(pl.col("_within").is_not_null()).then(pl.concat_str([rel, pl.col("_dst_ou")]))


def _unless_taken(taken: str, instead: pl.Expr) -> pl.Expr:
    """``_new_name``, or ``instead`` where it is in use (``taken``) or two splits of this plan
    would share it (long names cut to the same 64 characters): New-ADGroup refuses a taken
    sAMAccountName. A taken name first gets "-split"; if that is still not unique, "-split-"
    and the group's id."""
    return (
        pl.when(pl.col(taken).fill_null(False) | pl.col("_name_key").is_duplicated())
        .then(instead)
        .otherwise(pl.col("_new_name"))
    )


def _id_suffix() -> pl.Expr:
    return pl.concat_str([pl.lit("-split-"), id_text(pl.col("group_id")).str.slice(0, 8)])


def _fit(name: pl.Expr, suffix: str | pl.Expr) -> pl.Expr:
    """``name`` cut so that it and ``suffix`` fit in :data:`NAME_MAX` characters, then the
    suffix; spaces and dots left at the cut are dropped (AD trims trailing spaces, and a
    trailing dot makes an ambiguous sAMAccountName)."""
    end = pl.lit(suffix) if isinstance(suffix, str) else suffix
    room = pl.lit(NAME_MAX) - end.str.len_chars()
    return pl.concat_str([name.str.slice(0, room).str.strip_chars_end(" ."), end])
