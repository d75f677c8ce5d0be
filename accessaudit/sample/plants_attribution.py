"""Plants of attribution in the sample directory: objects whose force is mixed, unclear or none.

One function per case, each recording as it plants the truth rows it must cause and the
legitimate rows (:mod:`accessaudit.sample.legit`) no finding may touch:

* :func:`plant_mixed_groups`: project groups holding a real share of both forces: the group is
  a ``mixed-group``, its minority ``cross-org-direct-member``; the owning force's majority is
  legitimate (``own-force-member``);
* :func:`plant_ou_prefix_conflict`: a ``WMP-`` group in Warwickshire's OU, holding Warwickshire
  people: ``conflicting-attribution`` of the group; its members are legitimate (the OU wins);
* :func:`plant_unattributed`: contractors with no signal at all and two groups nobody claims:
  ``unattributed-with-access``;
* :func:`plant_service_accounts`: shared service accounts, each in a resource group of both
  forces: ``shared-account-both-forces`` (a split, re-home or retire decision), their
  memberships legitimate (``service-account``);
* :func:`plant_foreign_principals`: users of a retired pre-alliance domain still members of a
  resource group of each force, as foreign security principals: no collected directory resolves
  them and no organisation lists their domain, so each is ``foreign-principal-unresolved`` in
  its group and every group that group is nested in.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from accessaudit.sample.builder import OTHER, Builder, Draw
from accessaudit.sample.groups import CONFLICT_GROUP, PROJECT_GROUPS, UNATTRIBUTED_GROUPS

#: A domain of the former forces retired before the alliance (its users remain as FSPs).
RETIRED_DOMAIN_SID: Final = "S-1-5-21-1004336348-1177238915-682003330"


def plant_mixed_groups(b: Builder, draw: Draw) -> None:
    """Each force's project group: a majority of its own people, a minority of the other's."""
    for grp, owner, n_own, n_other in (
        (PROJECT_GROUPS[0], "wmp", 20, 12),
        (PROJECT_GROUPS[1], "warks", 15, 10),
    ):
        majority = draw(owner, n_own)
        b.members(grp, majority)
        b.allow(
            "own-force-member", "the owning force's members of a mixed group", majority, [(grp, 0)]
        )
        minority = draw(OTHER[owner], n_other)
        b.members(grp, minority)
        b.plant("mixed-group", "mixed-project", None, [(grp, 0)])
        b.plant("cross-org-direct-member", "mixed-project", minority, [(grp, 0)])


def plant_ou_prefix_conflict(b: Builder, draw: Draw) -> None:
    """Warwickshire people in the group whose OU (Warwickshire) and prefix (``WMP-``) disagree."""
    cad = draw("warks", 6)
    b.members(CONFLICT_GROUP, cad)
    b.allow(
        "own-force-member",
        "Warwickshire staff in a group whose Warwickshire OU wins over its WMP- prefix",
        cad,
        [(CONFLICT_GROUP, 0)],
    )
    b.plant("conflicting-attribution", "ou-prefix-conflict", None, [(CONFLICT_GROUP, 0)])


def plant_unattributed(b: Builder, unattributed: pl.DataFrame, draw: Draw) -> None:
    """The ``unattributed`` accounts, and people of both forces in the groups nobody claims."""
    b.members(UNATTRIBUTED_GROUPS[0], unattributed["account_id"][:3])
    b.members(UNATTRIBUTED_GROUPS[0], draw("wmp", 2))
    b.members(UNATTRIBUTED_GROUPS[1], draw("warks", 2))
    b.plant("unattributed-with-access", "unattributed", unattributed["account_id"], [])
    for g in UNATTRIBUTED_GROUPS:
        b.plant("unattributed-with-access", "unattributed-group", None, [(g, 0)])


def plant_service_accounts(
    b: Builder, services: pl.DataFrame, res_groups: dict[str, list[str]]
) -> None:
    """Each service account in a resource group of each force, the groups in turn."""
    for i, sid_acct in enumerate(services["account_id"].to_list()):
        b.members(res_groups["wmp"][i % len(res_groups["wmp"])], [sid_acct])
        b.members(res_groups["warks"][i % len(res_groups["warks"])], [sid_acct])
    b.allow_rows(
        "service-account",
        "a Shared Services account in a resource group (the account is a split decision)",
        pl.DataFrame(
            {
                "account_id": pl.concat([services["account_id"]] * 2),
                "group_name": [
                    res_groups[org][i % len(res_groups[org])]
                    for org in ("wmp", "warks")
                    for i in range(services.height)
                ],
            }
        ).with_columns(depth=pl.lit(0, pl.Int32)),
    )
    b.plant("shared-account-both-forces", "shared-service", services["account_id"], [])


def plant_foreign_principals(b: Builder, res_groups: dict[str, list[str]]) -> None:
    """Two users of the retired domain (``CN=<SID>,CN=ForeignSecurityPrincipals``), one in a
    resource group of each force."""
    fsp = {res_groups["warks"][2]: "1105", res_groups["wmp"][3]: "1321"}
    sids = [f"{RETIRED_DOMAIN_SID}-{rid}" for rid in fsp.values()]
    for group, sid in zip(fsp, sids, strict=True):
        b.foreign_member(group, sid)
        # no collected domain holds the SID and no organisation lists its domain: reported with
        # every group it reaches, for someone to say whose it is
        b.plant(
            "foreign-principal-unresolved",
            "retired-domain-fsp",
            pl.Series([sid]),
            [(group, 0), *b.ancestors(group)],
        )
