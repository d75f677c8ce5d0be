"""The embedded synthetic two-force directory, with its planted ground truth: :func:`generate`.

One shared domain (``alliance.local``) holds West Mercia (~2/3 of people) and Warwickshire (~1/3),
each with its own OUs, UPN suffix, mail domain, ``company``, employee-id range and group prefix,
plus a shared-services OU and the domain's built-in groups. Every cross-force access is *planted*
on purpose, and each plant records the findings it must cause in :attr:`Sample.truth` as it is
planted, from the generator's own knowledge of the structure it built (which group sits in which
layer, which accounts it picked) - never by running the expansion or the rules, or a test
comparing the two would prove nothing. The legitimate cases are recorded the same way, as they
are planted, in :attr:`Sample.legitimate` (:mod:`accessaudit.sample.legit`): no finding may
touch them.

:func:`generate` only orchestrates, in the order of the random draws (the same seed gives the
same estate byte for byte). The rooms of the package:

* :mod:`~accessaudit.sample.builder`: the forces, :class:`Sample`, the builder that records
  groups, memberships, truth and legitimate rows, and the draw that keeps plants apart;
* :mod:`~accessaudit.sample.people` (members of staff and movers) and
  :mod:`~accessaudit.sample.accounts` (admins, contractors, services, computers);
* :mod:`~accessaudit.sample.groups`: every group, the layered nesting and the ordinary
  memberships (all legitimate);
* the plants, one function per case: :mod:`~accessaudit.sample.plants_access` (strays,
  department nesting, privileged groups, primary group, movers),
  :mod:`~accessaudit.sample.plants_attribution` (mixed, conflicting and unattributed groups,
  shared service accounts, foreign principals), :mod:`~accessaudit.sample.plants_hostile`
  (hostile and Unicode text) and :mod:`~accessaudit.sample.separation` (managers, managedBy,
  sIDHistory, secondments, an empty legacy group; its own random generator);
* with ``apps=True`` the application exports (:mod:`~accessaudit.sample.apps`); with
  ``entra=True`` the shared Entra tenant (:mod:`~accessaudit.sample.entra_tenant`; its own
  random generator);
* :mod:`~accessaudit.sample.truth` and :mod:`~accessaudit.sample.legit`, which resolve the
  recorded rows to object ids.

Generation is vectorised (numpy + polars): per-row Python only over groups, never accounts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import polars as pl

from accessaudit.model import (
    ACCOUNTS_SCHEMA,
    GRANTS_SCHEMA,
    GROUPS_SCHEMA,
    MEMBERSHIPS_SCHEMA,
    MemberKind,
    Via,
    conform,
    empty,
)
from accessaudit.sample.accounts import (
    admin_accounts,
    computer_accounts,
    service_accounts,
    unattributed_accounts,
)
from accessaudit.sample.apps import plant_apps
from accessaudit.sample.builder import FORCES, SHARED_OU, SOURCE, Builder, Draw, Sample, guids
from accessaudit.sample.entra_tenant import plant_entra
from accessaudit.sample.groups import add_memberships, add_primary_groups, build_groups
from accessaudit.sample.legacy import attribution_truth, make_legacy
from accessaudit.sample.legit import legit_frame
from accessaudit.sample.people import make_people
from accessaudit.sample.plants_access import (
    cross_nested_departments,
    plant_dept_nesting,
    plant_movers,
    plant_primary_group,
    plant_privileged,
    plant_strays,
)
from accessaudit.sample.plants_attribution import (
    plant_foreign_principals,
    plant_mixed_groups,
    plant_ou_prefix_conflict,
    plant_service_accounts,
    plant_unattributed,
)
from accessaudit.sample.plants_control import plant_control, taken_accounts
from accessaudit.sample.plants_data import data_path_prefixes, plant_data
from accessaudit.sample.plants_foreign import domain_sid_matchers, plant_foreign_domains
from accessaudit.sample.plants_hostile import plant_hostile_text
from accessaudit.sample.separation import plant_separation
from accessaudit.sample.truth import truth_frame

DEFAULT_NOW: Final = datetime(2026, 11, 1, tzinfo=UTC)
#: Admin accounts per force (West Mercia hosts the domain).
ADMINS: Final = {"wmp": 6, "warks": 2}
#: The force hosting the sample's domain and its Entra tenant: every sample source's ``host``,
#: and the organisation whose ``privileged_groups`` matcher claims the protected groups.
SAMPLE_HOST: Final = "wmp"


def sample_settings_dict() -> dict[str, Any]:
    """Organisations and rule settings that attribute the sample (also in config.example.toml).
    Its sources declare :data:`SAMPLE_HOST` as their ``host``."""
    orgs: list[dict[str, Any]] = []
    for f in FORCES:
        orgs.append(
            {
                "id": f.id,
                "name": f.name,
                "match": {
                    "employee_id": rf"^{f.employee_base // 1_000_000}\d{{6}}$",
                    "company": [f.name],
                    "ou": [f.ou],
                    "upn_suffix": [f.upn_suffix],
                    "mail_domain": [f.mail_domain],
                    "name_prefix": [f.prefix],
                    "privileged_groups": f.id == SAMPLE_HOST,  # the host's protected groups
                    "path_prefix": data_path_prefixes(f.id),  # its share and subscription
                    "sources": ["csv:niche"] if f.id == "wmp" else ["csv:athena"],
                    "domain_sid": domain_sid_matchers()[f.id],  # its new domain (and forest)
                },
            }
        )
    orgs.append(
        {
            "id": "shared",
            "name": "Shared services (until the dated split)",
            "match": {
                "ou": [SHARED_OU],
                "names": ["Domain Users", "Domain Computers"],
                "owner": False,
            },
        }
    )
    return {"organisations": orgs}


def generate(
    seed: int = 7,
    accounts: int = 6000,
    now: datetime | None = None,
    *,
    apps: bool = False,
    entra: bool = False,
    legacy: bool = False,
    domains: bool = False,
) -> Sample:
    """Build the sample directory of about ``accounts`` accounts, deterministic for ``seed``.

    With ``apps``, also the hosted applications' CSV user lists (:mod:`accessaudit.sample.apps`)
    and their planted findings; with ``entra``, the shared Entra tenant
    (:mod:`accessaudit.sample.entra_tenant`, in :attr:`Sample.entra`) and its planted findings.
    The directory tables are the same either way. With ``legacy``, the directory's accounts
    as years of sharing leave them (:mod:`accessaudit.sample.legacy`; its own random generator,
    after every other draw). With ``domains``, each force's new domain beside the shared one
    (:mod:`accessaudit.sample.plants_foreign`, in :attr:`Sample.domains`; its own random
    generator).
    """
    if accounts < 200:
        raise ValueError("the sample needs at least 200 accounts")
    now = now or DEFAULT_NOW
    rng = np.random.default_rng(seed)
    sub = rng.integers(1_000_000_000, 4_000_000_000, size=3)
    domain_sid = f"S-1-5-21-{sub[0]}-{sub[1]}-{sub[2]}"
    b = Builder(rng, domain_sid)

    # the directory, then its plants, in the order of their draws
    people, res_groups, draw, (admins, unattr, services, computers) = _plant_directory(
        b, rng, seed, accounts, domain_sid, now
    )
    every = _accounts_table(people, (admins, unattr, services, computers))
    ad_accounts = conform(plant_hostile_text(rng, people, every), ACCOUNTS_SCHEMA)
    tables, name_map = _ad_tables(b, rng, ad_accounts)

    # Applications and the tenant last, so the directory is identical with or without them.
    taken = taken_accounts(b, draw.used)  # before the apps and the tenant: the same either way
    exports = plant_apps(b, people, draw, rng) if apps else {}
    tenant = (
        plant_entra(b, people, admins, ad_accounts, gen=np.random.default_rng([seed, 2]), now=now)
        if entra
        else {}
    )
    new_domains = _new_domains(b, res_groups, name_map, domain_sid, seed, now) if domains else {}
    every_account = pl.concat([ad_accounts, tenant["accounts"]]) if tenant else ad_accounts
    orgs = attribution_truth(people, admins, unattr, services, computers)
    cases = None
    if legacy:
        gen = np.random.default_rng([seed, 3])
        old = make_legacy(ad_accounts, tables["groups"], people, orgs, gen, domain_sid)
        tables["accounts"] = old.accounts
        tables["memberships"] = pl.concat([tables["memberships"], old.memberships])
        orgs, cases = old.truth, old.cases
    tables |= _control_and_data(b, tables, people, taken, seed, domain_sid)
    if tenant:  # the tenant has no security descriptors: the same tables, empty
        tenant |= {n: tables[n].clear() for n in ("resources", "aces")}
    return Sample(
        tables,
        truth_frame(b, name_map, every_account, now),
        now,
        seed,
        domain_sid,
        sample_settings_dict(),
        exports,
        tenant,
        domains=new_domains,
        legitimate=legit_frame(b.legit, b.legit_groups, b.legit_ids, name_map),
        attribution=orgs,
        legacy=cases,
    )


def _plant_directory(
    b: Builder,
    rng: np.random.Generator,
    seed: int,
    accounts: int,
    domain_sid: str,
    now: datetime,
) -> tuple[pl.DataFrame, dict[str, list[str]], Draw, tuple[pl.DataFrame, ...]]:
    """The shared directory's people and groups, then its plants in the order of their draws:
    the people (after separation), the resource groups, the draw, and the admin, unattributed,
    service and computer accounts."""
    n_service = max(8, accounts // 400)
    n_unattr = max(6, accounts // 500)
    n_computers = max(10, accounts // 100)
    n_people = accounts - n_service - n_unattr - n_computers - sum(ADMINS.values())
    people = make_people(rng, n_people, domain_sid, now)
    res_groups = build_groups(b, people)
    draw = Draw(rng, people, add_memberships(b, rng, people, res_groups, seed).to_list())
    plant_strays(b, people, res_groups, draw)
    plant_dept_nesting(b, people, res_groups)
    admins = admin_accounts(rng, ADMINS, domain_sid, now)
    plant_privileged(b, people, admins)
    primary = plant_primary_group(b, res_groups, draw)
    plant_mixed_groups(b, draw)
    plant_ou_prefix_conflict(b, draw)
    unattr = unattributed_accounts(rng, n_unattr, domain_sid, now)
    plant_unattributed(b, unattr, draw)
    plant_movers(b, people)
    services = service_accounts(rng, n_service, domain_sid, now)
    plant_service_accounts(b, services, res_groups)
    computers = computer_accounts(rng, n_computers, domain_sid, now)
    add_primary_groups(b, people, primary, (admins, unattr, services), computers)
    # from its own random generator, so the plants above pick the same accounts without it
    people = plant_separation(
        b,
        people,
        res_groups=res_groups,
        cross_nested_depts=cross_nested_departments(),
        gen=np.random.default_rng([seed, 1]),
    )
    draw.people = people
    plant_foreign_principals(b, res_groups)
    return people, res_groups, draw, (admins, unattr, services, computers)


def _new_domains(
    b: Builder,
    res_groups: dict[str, list[str]],
    name_map: pl.DataFrame,
    domain_sid: str,
    seed: int,
    now: datetime,
) -> dict[str, Any]:
    """Each force's new domain beside the shared one, from its own random generator."""
    return plant_foreign_domains(
        b,
        res_groups,
        dict(zip(name_map["group_name"], name_map["group_id"], strict=True)),
        domain_sid,
        np.random.default_rng([seed, 4]),
        now,
    )


def _control_and_data(
    b: Builder,
    tables: dict[str, pl.DataFrame],
    people: pl.DataFrame,
    taken: set[str],
    seed: int,
    domain_sid: str,
) -> dict[str, pl.DataFrame]:
    """The control paths (security descriptors), then the data paths (shares, mailboxes,
    Azure): last, each from its own generator, so every draw before them is unchanged."""
    out = plant_control(b, tables, people, taken, np.random.default_rng([seed, 15]), domain_sid)
    return out | plant_data(b, tables | out, people, taken, np.random.default_rng([seed, 16]))


def _accounts_table(people: pl.DataFrame, others: tuple[pl.DataFrame, ...]) -> pl.DataFrame:
    """Every account of the directory: the people, then the ``others`` in order. AD records
    logons (lastLogonTimestamp): every account's dormancy is known (``activity_tracked``)."""
    return pl.concat(
        [
            people.select(  # AD account-state columns the sample does not model stay null
                pl.col(c) if c in people.columns else pl.lit(None, t).alias(c)
                for c, t in ACCOUNTS_SCHEMA.items()
            ),
            *(df.select(ACCOUNTS_SCHEMA.names()) for df in others),
        ]
    ).with_columns(activity_tracked=pl.lit(True))


def _ad_tables(
    b: Builder, rng: np.random.Generator, accounts: pl.DataFrame
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """The directory's tables: ``accounts``, and the groups (given their ids here) and
    memberships recorded on ``b``; and the map from group names to ids (``group_name``,
    ``group_id``) that resolves the recorded rows."""
    gids = guids(rng, len(b.groups))
    for grp_row, gid in zip(b.groups, gids.to_list(), strict=True):
        grp_row["group_id"] = gid
    groups = conform(pl.DataFrame(b.groups).drop("rid"), GROUPS_SCHEMA)
    name_to_id = dict(zip(groups["name"].to_list(), groups["group_id"].to_list(), strict=True))
    name_map = pl.DataFrame({"group_name": list(name_to_id), "group_id": list(name_to_id.values())})

    acct_edges = pl.concat(b.edges).join(name_map, on="group_name").drop("group_name")
    by_ids = {"group_id": pl.String, "member_id": pl.String}
    nest_edges = pl.DataFrame(
        {
            "group_id": [name_to_id[p] for _, p in b.nest],
            "member_id": [name_to_id[c] for c, _ in b.nest],
        },
        schema=by_ids,
    ).with_columns(member_kind=pl.lit(MemberKind.GROUP.value), via=pl.lit(Via.MEMBER.value))
    fsp_edges = pl.DataFrame(
        {
            "group_id": [name_to_id[g] for g, _ in b.foreign],
            "member_id": [sid for _, sid in b.foreign],
        },
        schema=by_ids,
    ).with_columns(member_kind=pl.lit(MemberKind.FOREIGN.value), via=pl.lit(Via.MEMBER.value))
    memberships = pl.concat([acct_edges.select(nest_edges.columns), nest_edges, fsp_edges])
    memberships = conform(
        memberships.with_columns(source=pl.lit(SOURCE)).unique(
            ["group_id", "member_id"], keep="first", maintain_order=True
        ),
        MEMBERSHIPS_SCHEMA,
    )
    tables = {
        "accounts": accounts,
        "groups": groups,
        "memberships": memberships,
        "grants": empty(GRANTS_SCHEMA),
    }
    return tables, name_map
