"""The lazy views every rule query sees, built once and shared by every rule.

What each view holds is in :mod:`accessaudit.engine.views.catalog`, rendered for rule authors as
``docs/rule-views.md``. Everything here is lazy polars: joins and group-bys over the attributed
tables, no per-row Python, collected as part of each rule's plan. One module per kind of view:
``directory`` (accounts, groups, principals), ``membership`` (access, nestings, composition),
``assignments`` (roles, app roles, owners), ``identity`` (sIDHistory, one person's identities) and
``reach`` (rights, group links).
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from accessaudit.engine.views import assignments, directory, foreign, identity, membership, reach
from accessaudit.engine.views.assignments import HOSTS_SCHEMA
from accessaudit.engine.views.control import control_views
from accessaudit.engine.views.data import data_access
from accessaudit.model import TRUSTS_SCHEMA

__all__ = ["HOSTS_SCHEMA", "build_views"]


def build_views(
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    memberships: pl.DataFrame,
    grants: pl.DataFrame,
    *,
    closure: pl.DataFrame,
    effective: pl.DataFrame,
    as_of: datetime,
    hosts: pl.DataFrame | None = None,
    resources: pl.DataFrame | None = None,
    foreign_sids: pl.DataFrame | None = None,
    trusts: pl.DataFrame | None = None,
    domains: pl.DataFrame | None = None,
) -> dict[str, pl.LazyFrame]:
    """The lazy views every rule query sees, by name (see :mod:`.catalog`).

    ``hosts``: which organisation hosts each source's directory (columns ``source``,
    ``host_org``: :data:`~.assignments.HOSTS_SCHEMA`), as the configuration declares it; a
    source left out has no known host (every tenant-wide role in it is then reported).
    ``foreign_sids``: the unresolved foreign SIDs described (``foreign.FOREIGN_SCHEMA``; none:
    unattributed, no well-known names); ``trusts``: the collected trusts (TRUSTS_SCHEMA);
    ``domains``: domain SIDs attributed by the ``domain_sid`` matcher (domain_sid, org)."""
    mem = memberships.lazy()
    gr = grants.lazy()
    # The views every access rule joins stay as lean as the collected tables (a per-rule join
    # of the effective memberships is the cost at scale); identities and member counts are
    # computed only for the views that show them.
    acc = directory.accounts_view(accounts, as_of)
    people = directory.identities(acc)
    grp = directory.groups_view(groups)
    g_orgs = directory.group_orgs(grp)
    a_orgs = directory.account_orgs(acc)
    eff = membership.effective_ids(effective)
    access = membership.access(eff, a_orgs, g_orgs)
    nestings = membership.nestings(mem, g_orgs)
    principals = directory.principals(acc, grp)
    declared = (pl.DataFrame(schema=assignments.HOSTS_SCHEMA) if hosts is None else hosts).lazy()
    role_grants = assignments.role_grants(gr, principals, grp, mem, acc, declared)
    app_grants = assignments.app_grants(gr, principals, grp)
    owners = assignments.owners(grp, gr, principals)
    ctl = control_views(gr, resources, declared, principals, eff)
    return {
        "accounts": people,
        "groups": directory.with_member_counts(grp, mem),
        "memberships": mem,
        "nestings": nestings,
        "access": access,
        "composition": membership.composition(
            mem, a_orgs, g_orgs, nestings, role_grants, app_grants
        ),
        "closure": closure.lazy().select("group_id", "ancestor_id", "depth"),
        "grants": gr,
        "role_grants": role_grants,
        "app_grants": app_grants,
        "owners": owners,
        "rights": reach.rights(access, role_grants, app_grants, a_orgs, eff, mem, g_orgs),
        "sid_history": identity.sid_history(people, grp),
        "identity_pairs": identity.identity_pairs(people),
        "group_links": reach.group_links(nestings, owners, role_grants, app_grants),
        "foreign_access": foreign.foreign_access(
            mem, closure.lazy(), grp, _lazy(foreign_sids, foreign.FOREIGN_SCHEMA)
        ),
        "trusts": foreign.trusts(
            _lazy(trusts, TRUSTS_SCHEMA), declared, acc, _lazy(domains, foreign.DOMAINS_SCHEMA)
        ),
        **ctl,
        "data_access": data_access(gr, ctl["resources"], principals, eff),
    }


def _lazy(df: pl.DataFrame | None, schema: pl.Schema) -> pl.LazyFrame:
    return (pl.DataFrame(schema=schema) if df is None else df).lazy()
