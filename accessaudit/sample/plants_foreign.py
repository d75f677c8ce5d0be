"""Each force's new domain next to the shared one: foreign principals, SID history and trusts.

Since the split each force runs a domain of its own (``new.<force mail domain>``) beside the
alliance's shared one, and keeps services hosted on the other force's side running by putting its
new-domain principals into the other force's groups as foreign security principals. Planted,
with the truth recorded as each case is planted (:func:`plant_foreign_domains`):

* a new-domain **account** as an FSP in a resource group of the other force:
  ``cross-org-direct-member``, and ``cross-org-nested-access`` to every group that one is in;
* a new-domain **group** (two members) nested into that group through its FSP:
  ``cross-org-group-nesting``, its members ``cross-org-nested-access``;
* an alliance account of the force in another of the other force's resource groups
  (``cross-org-direct-member``), migrated to the new domain with its SID in the new account's
  sIDHistory: the new account reaches that group too (``cross-org-direct-member``);
* Warwickshire's legacy forest, not collected but listed by the ``domain_sid`` matcher, with a
  principal in a West Mercia group: ``cross-org-foreign-principal``;
* Authenticated Users in a Warwickshire resource group: ``well-known-principal-member``;
* trusts: the shared domain trusts Warwickshire's new domain both ways **without** SID filtering
  (``cross-org-trust-sid-filtering-off``), Warwickshire's new domain trusts the shared one with
  quarantine on (``cross-org-trust``); West Mercia's new domain and the shared one (both West
  Mercia's) trust each other: no finding.

The tables go to :attr:`Sample.domains` (rows of each new domain, and the shared domain's
rows the plants add: FSP members, the alliance accounts, its trusts); the directory's own tables
are unchanged, so everything seeded from them stays as it is. Ids come from a generator of its
own: the directory's draws are the same with or without the domains.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import numpy as np
import polars as pl

from accessaudit.model import (
    ACCOUNTS_SCHEMA,
    GROUPS_SCHEMA,
    MEMBERSHIPS_SCHEMA,
    TRUSTS_SCHEMA,
    MemberKind,
    Via,
    conform,
)
from accessaudit.sample.builder import DOMAIN, FORCES, OTHER, SOURCE, Builder, Force, guids

#: Each force's new domain SID (fixed: the domain_sid matcher of the sample's settings lists it).
NEW_DOMAIN_SIDS: Final = {
    "wmp": "S-1-5-21-3100000001-3200000002-3300000003",
    "warks": "S-1-5-21-3400000004-3500000005-3600000006",
}
#: Warwickshire's legacy forest: not collected, attributed by the domain_sid matcher.
WARKS_LEGACY_FOREST_SID: Final = "S-1-5-21-3700000007-3800000008-3900000009"


def new_domain(force: Force) -> str:
    return f"new.{force.mail_domain}"


def _source(force: Force) -> str:
    return f"ad:{new_domain(force)}"


def _targets(b: Builder, res_groups: dict[str, list[str]], org: str) -> list[str]:
    """The other force's resource groups the plants use, from the end of its list (the plants
    of the directory take theirs from the start)."""
    return res_groups[org][-4:-1]


def _reach(b: Builder, group: str, org: str) -> list[tuple[str, int]]:
    """``group`` at depth 0 and its ancestors (by construction) of the same force."""
    force = next(f for f in FORCES if f.id == org)
    return [(group, 0), *((g, d) for g, d in b.ancestors(group) if g.startswith(force.prefix))]


def _accounts(
    force: Force, source: str, names: list[str], ids: list[str], sids: list[str], now: datetime
) -> pl.DataFrame:
    base = ",".join(f"DC={p}" for p in new_domain(force).split("."))
    ou = f"OU=Staff,{base}" if source != SOURCE else force.ou
    df = pl.DataFrame({"username": names, "account_id": ids, "sid": sids}).with_columns(
        source=pl.lit(source),
        upn=pl.col("username") + pl.lit(force.upn_suffix),
        display_name=pl.col("username"),
        dn="CN=" + pl.col("username") + pl.lit(f",{ou}"),
        kind=pl.lit("user"),
        enabled=pl.lit(True),
        last_logon=pl.lit(now - timedelta(days=2)),
        activity_tracked=pl.lit(True),
        created=pl.lit(now - timedelta(days=200)),
        sid_history=pl.lit([], pl.List(pl.String)),
        privileged=pl.lit(False),
    )
    return conform(df, ACCOUNTS_SCHEMA)


def _edges(source: str, rows: list[tuple[str, str, str, str]]) -> pl.DataFrame:
    df = pl.DataFrame(rows, schema=["group_id", "member_id", "member_kind", "via"], orient="row")
    return conform(df.with_columns(source=pl.lit(source)), MEMBERSHIPS_SCHEMA)


def _trust(source: str, partner: str, sid: str, *, quarantined: bool) -> dict[str, object]:
    return {
        "source": source,
        "trust_id": None,
        "partner": partner,
        "flat_name": partner.split(".")[1].upper(),
        "partner_sid": sid,
        "direction": "bidirectional",
        "trust_type": "uplevel",
        "attributes": 4 if quarantined else 0,
        "attribute_names": ["QUARANTINED_DOMAIN"] if quarantined else [],
        "transitive": True,
        "sid_filtering": quarantined,
    }


# long: one plant per force, each case recorded with its truth as it is planted
def plant_foreign_domains(
    b: Builder,
    res_groups: dict[str, list[str]],
    name_to_id: dict[str, str],
    domain_sid: str,
    gen: np.random.Generator,
    now: datetime,
) -> dict[str, pl.DataFrame]:
    """The new domains' tables, the shared domain's rows they add, and their truth on ``b``."""
    accounts, groups, edges = [], [], []
    for i, f in enumerate(FORCES):
        other, src, dsid = OTHER[f.id], _source(f), NEW_DOMAIN_SIDS[f.id]
        fsp_target, migrated_target, _ = _targets(b, res_groups, other)
        ids = guids(gen, 6).to_list()
        names = [f"{f.prefix.lower()}new.{n}" for n in ("fsp", "team1", "team2", "migrated")]
        sids = [f"{dsid}-{1100 + k}" for k in range(4)]
        new = _accounts(f, src, names, ids[:4], sids, now)
        alliance_sid = f"{domain_sid}-{4_100_000_000 + i}"  # beyond any RID the directory uses
        alliance = _accounts(f, SOURCE, [f"{f.prefix.lower()}alliance.migrated"], [ids[4]],
                             [alliance_sid], now)  # fmt: skip
        new = new.with_columns(
            sid_history=pl.when(pl.col("account_id") == ids[3])
            .then(pl.lit([alliance_sid]))
            .otherwise(pl.col("sid_history"))
        )
        team_id, team_sid = ids[5], f"{dsid}-2000"
        groups.append(
            conform(
                pl.DataFrame(
                    {
                        "source": [src],
                        "group_id": [team_id],
                        "sid": [team_sid],
                        "name": [f"{f.prefix}NEW-Team"],
                        "dn": [f"CN={f.prefix}NEW-Team,OU=Groups,DC=new,DC={f.id}"],
                        "scope": ["global"],
                        "kind": ["security"],
                        "privileged": [False],
                        "owners": [[]],
                        "mastered": ["ad"],
                    }
                ),
                GROUPS_SCHEMA,
            )
        )
        accounts += [new, alliance]
        member = (MemberKind.ACCOUNT.value, Via.MEMBER.value)
        foreign = (MemberKind.FOREIGN.value, Via.MEMBER.value)
        edges += [
            _edges(src, [(team_id, ids[1], *member), (team_id, ids[2], *member)]),
            _edges(
                SOURCE,
                [
                    (name_to_id[fsp_target], sids[0], *foreign),
                    (name_to_id[fsp_target], team_sid, *foreign),
                    (name_to_id[migrated_target], ids[4], *member),
                ],
            ),
        ]
        # the truth, as planted
        fsp_reach = _reach(b, fsp_target, other)
        b.plant("cross-org-direct-member", "new-domain-fsp", pl.Series([ids[0]]), fsp_reach[:1])
        b.plant("cross-org-nested-access", "new-domain-fsp", pl.Series([ids[0]]), fsp_reach[1:])
        b.plant_ids(
            "cross-org-group-nesting",
            "new-domain-group-fsp",
            pl.DataFrame(
                {"member_group_id": [team_id], "group_id": [name_to_id[fsp_target]], "depth": [1]}
            ),
        )
        team_reach = [(g, d + 1) for g, d in fsp_reach]
        b.plant("cross-org-nested-access", "new-domain-group-fsp", pl.Series(ids[1:3]), team_reach)
        mig_reach = _reach(b, migrated_target, other)
        b.plant("cross-org-direct-member", "alliance-account", pl.Series([ids[4]]), mig_reach[:1])
        b.plant(
            "cross-org-direct-member", "sid-history-of-alliance-account", pl.Series([ids[3]]),
            mig_reach[:1],
        )  # fmt: skip
        for who in (ids[4], ids[3]):
            plant = "alliance-account" if who == ids[4] else "sid-history-of-alliance-account"
            b.plant("cross-org-nested-access", plant, pl.Series([who]), mig_reach[1:])
    # Warwickshire's legacy forest, known only by the domain_sid matcher, in a West Mercia group
    legacy_target = _targets(b, res_groups, "wmp")[2]
    legacy_sid = f"{WARKS_LEGACY_FOREST_SID}-1105"
    edges.append(
        _edges(
            SOURCE, [(name_to_id[legacy_target], legacy_sid, MemberKind.FOREIGN.value, "member")]
        )
    )
    b.plant(
        "cross-org-foreign-principal", "legacy-forest-fsp", pl.Series([legacy_sid]),
        _reach(b, legacy_target, "wmp"),
    )  # fmt: skip
    # Authenticated Users left in a Warwickshire resource group: every account of both forces
    open_target = _targets(b, res_groups, "warks")[2]
    edges.append(
        _edges(SOURCE, [(name_to_id[open_target], "S-1-5-11", MemberKind.FOREIGN.value, "member")])
    )
    b.plant(
        "well-known-principal-member", "authenticated-users", pl.Series(["S-1-5-11"]),
        [(open_target, 0)],
    )  # fmt: skip
    wmp, warks = FORCES
    trusts = pl.DataFrame(
        [
            _trust(SOURCE, new_domain(warks), NEW_DOMAIN_SIDS["warks"], quarantined=False),
            _trust(_source(warks), DOMAIN, domain_sid, quarantined=True),
            _trust(SOURCE, new_domain(wmp), NEW_DOMAIN_SIDS["wmp"], quarantined=True),
            _trust(_source(wmp), DOMAIN, domain_sid, quarantined=True),
        ],
        schema=TRUSTS_SCHEMA,
    ).with_columns(trust_id=guids(gen, 4))
    by_id = trusts["trust_id"].to_list()
    b.plant_ids(
        "cross-org-trust-sid-filtering-off",
        "shared-trusts-new-warks-unfiltered",
        pl.DataFrame({"resource_id": [by_id[0]], "right": [f"{DOMAIN} -> {new_domain(warks)}"]}),
    )
    b.plant_ids(
        "cross-org-trust",
        "new-warks-trusts-shared-quarantined",
        pl.DataFrame({"resource_id": [by_id[1]], "right": [f"{new_domain(warks)} -> {DOMAIN}"]}),
    )
    return {
        "accounts": pl.concat(accounts),
        "groups": pl.concat(groups),
        "memberships": pl.concat(edges),
        "trusts": trusts,
    }


def domain_sid_matchers() -> dict[str, list[str]]:
    """The ``domain_sid`` matcher of each force in the sample's settings."""
    return {
        "wmp": [NEW_DOMAIN_SIDS["wmp"]],
        "warks": [NEW_DOMAIN_SIDS["warks"], WARKS_LEGACY_FOREST_SID],
    }
