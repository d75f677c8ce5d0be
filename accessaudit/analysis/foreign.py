"""Foreign principals and SID history resolved across the collected directories, by SID.

A group of one domain names a member of another domain by SID: AD keeps it as a foreign security
principal (``CN=S-1-5-21-...,CN=ForeignSecurityPrincipals``), collected as a ``memberships`` row
of ``member_kind = foreign`` whose ``member_id`` is that SID. When several directories are
collected in one run, :func:`resolve_foreign` turns each such row into an edge to the object the
SID names in the other source, before the expansion, so everything downstream (closure,
effective memberships, every access rule) sees it like any other edge:

- an FSP whose SID is a collected **account** or **group** becomes a member edge to it
  (``via = foreign-principal``): a new-domain account reaches what the old group grants; a
  new-domain group nested through its FSP brings its members;
- an account whose ``sIDHistory`` holds a SID carries that SID in its logon token, so it reaches
  whatever that SID was granted (``via = sIDHistory``): the groups that list the SID as a foreign
  principal, the group the SID is (a group's SID in the history), and the direct groups of the
  account the SID is (an alliance account migrated to a new domain).

What stays ``foreign`` is a SID no collected object holds. :func:`foreign_principals` describes
each: its domain SID, its well-known name (Everyone, Authenticated Users ... never
"unattributed"), and its organisation by the ``domain_sid`` matcher (a domain attributed without
being collected). All of it is joins over the SIDs, before the closure; no per-row Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import polars as pl

from accessaudit.config.organisations import Organisation
from accessaudit.model import MemberKind, Org, Via

#: Well-known SIDs by name ([MS-DTYP] 2.4.2.4, learn.microsoft.com/windows-server/identity/
#: ad-ds/manage/understand-security-identifiers). A principal named here is never unattributed.
WELL_KNOWN_SIDS: Final = {
    "S-1-0-0": "Nobody",
    "S-1-1-0": "Everyone",
    "S-1-2-0": "Local",
    "S-1-2-1": "Console Logon",
    "S-1-3-0": "Creator Owner",
    "S-1-3-1": "Creator Group",
    "S-1-3-4": "Owner Rights",
    "S-1-5-1": "Dialup",
    "S-1-5-2": "Network",
    "S-1-5-3": "Batch",
    "S-1-5-4": "Interactive",
    "S-1-5-6": "Service",
    "S-1-5-7": "Anonymous Logon",
    "S-1-5-9": "Enterprise Domain Controllers",
    "S-1-5-10": "Principal Self",
    "S-1-5-11": "Authenticated Users",
    "S-1-5-12": "Restricted Code",
    "S-1-5-13": "Terminal Server Users",
    "S-1-5-14": "Remote Interactive Logon",
    "S-1-5-15": "This Organization",
    "S-1-5-17": "IUSR",
    "S-1-5-18": "Local System",
    "S-1-5-19": "Local Service",
    "S-1-5-20": "Network Service",
    "S-1-5-1000": "Other Organization",
    "S-1-5-32-545": "Users",
    "S-1-5-32-546": "Guests",
}

#: Well-known principals every account of both forces (or anyone) is: a group listing one of
#: them is open to the other force as a whole.
EVERYONE_SIDS: Final = frozenset(
    {"S-1-1-0", "S-1-5-2", "S-1-5-4", "S-1-5-7", "S-1-5-11", "S-1-5-15", "S-1-5-32-545"}
)

FOREIGN_SCHEMA: Final = pl.Schema(
    {
        "sid": pl.String(),
        "domain_sid": pl.String(),  # S-1-5-21-a-b-c of a domain SID; null for a well-known one
        "well_known": pl.String(),  # the well-known principal's name; null for a domain SID
        "everyone": pl.Boolean(),  # a well-known principal that every account of both forces is
        "org": pl.String(),  # by the domain_sid matcher; "unattributed" when none fires
        "org_evidence": pl.List(pl.String()),
    }
)

_FOREIGN = MemberKind.FOREIGN.value


def domain_of(column: str = "sid") -> pl.Expr:
    """The domain SID of a domain account's or group's SID (``S-1-5-21-a-b-c``); null for any
    other SID (well-known, builtin)."""
    sid = pl.col(column)
    return pl.when(sid.str.starts_with("S-1-5-21-")).then(sid.str.replace(r"-\d+$", ""))


def _directory(df: pl.DataFrame) -> pl.Expr:
    """Rows of a directory that issues SIDs (an Entra user synced from AD carries its AD
    account's SID: the AD row is the principal)."""
    return pl.col("sid").is_not_null() & ~pl.col("source").str.starts_with("entra:")


def _sid_history_edges(
    memberships: pl.DataFrame,
    foreign: pl.DataFrame,
    held: pl.DataFrame,
    by_object: pl.DataFrame,
    groups: pl.DataFrame,
) -> pl.DataFrame:
    """The edges an sIDHistory value gives its holder (``held``: holder, sid, object_id, kind
    of the object the SID is, if collected): the groups listing the SID as a foreign member,
    the group the SID is, and the direct groups of the account the SID is."""
    is_foreign = pl.col("member_kind") == _FOREIGN
    as_account = pl.lit(MemberKind.ACCOUNT.value)
    history = pl.lit(Via.SID_HISTORY.value)
    # the SID is listed in groups as a foreign principal
    by_history = foreign.join(held, left_on="member_id", right_on="sid").select(
        "source", "group_id", member_id="holder", member_kind=as_account, via=history
    )
    # the SID is a collected group: its holder is in the group's token as a member
    of_group = held.filter(pl.col("kind") == MemberKind.GROUP.value).join(
        groups.select("group_id", "source"), left_on="object_id", right_on="group_id"
    )
    as_group = of_group.select(
        "source", group_id="object_id", member_id="holder", member_kind=as_account, via=history
    )
    # the SID is a collected account: its holder reaches that account's direct groups (not its
    # primary group: the holder's token has its own)
    of_account = held.filter(
        (pl.col("kind") == MemberKind.ACCOUNT.value) & (pl.col("object_id") != pl.col("holder"))
    ).select("holder", "object_id")
    former = of_account.get_column("object_id").implode()
    direct = pl.concat(
        [
            memberships.filter(~is_foreign & pl.col("member_id").is_in(former)),
            by_object.filter(pl.col("member_id").is_in(former)),
        ],
        how="diagonal_relaxed",
    ).filter(
        (pl.col("member_kind") == MemberKind.ACCOUNT.value)
        & (pl.col("via") != Via.PRIMARY_GROUP.value)
    )
    as_account_edges = direct.join(of_account, left_on="member_id", right_on="object_id").select(
        "source", "group_id", member_id="holder", member_kind=as_account, via=history
    )
    return pl.concat([by_history, as_group, as_account_edges], how="diagonal_relaxed")


def resolve_foreign(
    memberships: pl.DataFrame, accounts: pl.DataFrame, groups: pl.DataFrame
) -> pl.DataFrame:
    """``memberships`` with every foreign member that a collected object's SID or sIDHistory
    names replaced by edges to those objects (MEMBERSHIPS_SCHEMA, the same rows otherwise).

    A SID held by an object *and* in accounts' histories gives an edge to each. Edges already
    present (the same group and member) are kept once, the collected one first. Only the few
    rows concerned are joined (foreign members, sIDHistory values and the objects they name):
    the collected edges are filtered, never rebuilt."""
    is_foreign = pl.col("member_kind") == _FOREIGN
    foreign = memberships.filter(is_foreign)
    holders = (
        accounts.filter(
            (pl.col("sid_history").list.len() > 0) & ~pl.col("source").str.starts_with("entra:")
        )
        .select(holder="account_id", sid="sid_history")
        .explode("sid")
        .drop_nulls()
        .unique()
    )
    if foreign.is_empty() and holders.is_empty():
        return memberships
    wanted = pl.concat([foreign.get_column("member_id"), holders.get_column("sid")]).implode()
    objects = pl.concat(
        [
            accounts.filter(_directory(accounts) & pl.col("sid").is_in(wanted)).select(
                "sid", object_id="account_id", kind=pl.lit(MemberKind.ACCOUNT.value)
            ),
            groups.filter(_directory(groups) & pl.col("sid").is_in(wanted)).select(
                "sid", object_id="group_id", kind=pl.lit(MemberKind.GROUP.value)
            ),
        ]
    ).unique("sid", keep="first", maintain_order=True)
    by_object = foreign.join(objects, left_on="member_id", right_on="sid").select(
        "source",
        "group_id",
        member_id="object_id",
        member_kind="kind",
        via=pl.lit(Via.FOREIGN_PRINCIPAL.value),
    )
    held = holders.join(objects, on="sid", how="left")
    by_history = _sid_history_edges(memberships, foreign, held, by_object, groups)
    unresolved = foreign.join(objects, left_on="member_id", right_on="sid", how="anti").join(
        holders, left_on="member_id", right_on="sid", how="anti"
    )
    new = pl.concat([by_object, by_history], how="diagonal_relaxed")
    new = new.unique(["group_id", "member_id"], keep="first", maintain_order=True)
    # an edge the directory already holds (the same group and member) stays as collected
    present = memberships.filter(
        ~is_foreign & pl.col("group_id").is_in(new.get_column("group_id").implode())
    ).select("group_id", "member_id")
    new = new.join(present, on=["group_id", "member_id"], how="anti")
    return pl.concat(
        [memberships.filter(~is_foreign), new, unresolved], how="diagonal_relaxed"
    ).select(memberships.columns)


def foreign_principals(
    memberships: pl.DataFrame, organisations: Sequence[Organisation]
) -> pl.DataFrame:
    """Each SID still ``foreign`` after :func:`resolve_foreign` (FOREIGN_SCHEMA): its domain,
    its well-known name, and its organisation by the ``domain_sid`` matcher (every organisation
    whose list holds the domain is evidence; the first one listed in the configuration is the
    organisation, as with the other matchers)."""
    sids = (
        memberships.filter(pl.col("member_kind") == _FOREIGN)
        .select(sid="member_id")
        .unique()
        .sort("sid")
    )
    known = pl.DataFrame(
        {"sid": list(WELL_KNOWN_SIDS), "well_known": list(WELL_KNOWN_SIDS.values())}
    )
    out = sids.join(known, on="sid", how="left").with_columns(
        domain_sid=domain_of("sid"), everyone=pl.col("sid").is_in(list(EVERYONE_SIDS))
    )
    fired = [
        (org.id, pl.col("domain_sid").is_in(org.match.domain_sid))
        for org in organisations
        if org.match.domain_sid
    ]
    none = pl.lit(None, pl.String)
    labels: list[pl.Expr] = [
        pl.when(e).then(pl.lit(f"domain_sid:{o}")).otherwise(none) for o, e in fired
    ]
    orgs: list[pl.Expr] = [pl.when(e).then(pl.lit(o)).otherwise(none) for o, e in fired]
    evidence = pl.concat_list(labels or [none]).list.drop_nulls()
    first = pl.coalesce(orgs or [none])
    return out.with_columns(
        org=first.fill_null(Org.UNATTRIBUTED.value), org_evidence=evidence
    ).select(FOREIGN_SCHEMA.names())


def domain_orgs(organisations: Sequence[Organisation]) -> pl.DataFrame:
    """The ``domain_sid`` matchers as a frame (domain_sid, org): the first organisation listing
    a domain has it."""
    rows = [(d, o.id) for o in organisations for d in o.match.domain_sid]
    return pl.DataFrame(
        rows, schema={"domain_sid": pl.String, "org": pl.String}, orient="row"
    ).unique("domain_sid", keep="first", maintain_order=True)


def guests_at_home(accounts: pl.DataFrame) -> pl.DataFrame:
    """B2B guests resolved to their account in another collected tenant: the attributed
    ``accounts`` with each such guest's organisation taken from its home account.

    Graph gives a guest no reference to its home object; what it documents is that a guest's
    ``mail`` is its home address (learn.microsoft.com/graph/api/resources/user, ``mail``).
    So a guest (an account with a ``home_domain``) of tenant A whose mail is the mail or the
    UPN of a member of another configured tenant B (one account only) is that person: the
    guest takes that account's organisation when it has none of its own (unattributed), and
    gets the evidence ``home_account:<org> (entra:<B>)`` either way; a guest whose own signals
    name another organisation is flagged conflicting, as with any two disagreeing signals."""
    entra = pl.col("source").str.starts_with("entra:")
    tenants = accounts.select(pl.col("source").filter(entra).n_unique()).item()
    if tenants < 2:  # one tenant: no guest's home is collected
        return accounts
    guests = accounts.filter(
        entra & pl.col("home_domain").is_not_null() & pl.col("mail").is_not_null()
    )
    if guests.is_empty():
        return accounts
    homes = accounts.filter(entra & pl.col("home_domain").is_null())
    keys = (
        pl.concat(
            [
                homes.select("source", "org", "account_id", key=pl.col("mail").str.to_lowercase()),
                homes.select("source", "org", "account_id", key=pl.col("upn").str.to_lowercase()),
            ]
        )
        .drop_nulls("key")
        .unique(["key", "account_id"])
    )
    keys = keys.filter(pl.col("account_id").n_unique().over("key") == 1).unique("key")
    found = (
        guests.select("account_id", "source", key=pl.col("mail").str.to_lowercase())
        .join(keys.rename({"source": "_home_source", "org": "_home_org"}), on="key")
        .filter(pl.col("_home_source") != pl.col("source"))
        .select(
            "account_id",
            "_home_org",
            _label=pl.lit("home_account:")
            + pl.col("_home_org")
            + pl.lit(" (")
            + pl.col("_home_source")
            + pl.lit(")"),
        )
    )
    if found.is_empty():
        return accounts
    own = pl.col("org")
    unattributed = own == Org.UNATTRIBUTED.value
    return (
        accounts.join(found, on="account_id", how="left", maintain_order="left")
        .with_columns(
            org=pl.when(pl.col("_home_org").is_not_null() & unattributed)
            .then(pl.col("_home_org"))
            .otherwise(own),
            org_evidence=pl.when(pl.col("_label").is_not_null())
            .then(pl.col("org_evidence").list.concat(pl.concat_list(pl.col("_label"))))
            .otherwise(pl.col("org_evidence")),
            org_conflict=pl.col("org_conflict")
            | (pl.col("_home_org").is_not_null() & ~unattributed & (pl.col("_home_org") != own)),
        )
        .drop("_home_org", "_label")
    )
