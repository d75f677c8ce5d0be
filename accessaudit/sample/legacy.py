"""The sample's accounts as years of a shared directory leave them (``generate(legacy=True)``),
and the organisation each account truly belongs to.

:func:`attribution_truth` records, for every account of the directory, the force it belongs to
as the generator made it (``org``; ``shared`` for the shared-services accounts, null for the
contractors no force employs) and, for a mover, the force HR names (``alt_org``: either is right
until HR and IT agree; the account is a conflict either way).

:func:`make_legacy` then rewrites some accounts the way a directory that served both forces for
years has them, each from its own random generator (``[seed, 3]``) after every other draw, so the
default sample is the same with or without it:

* accounts left in ``CN=Users`` (every other signal kept);
* a renamed OU: one Warwickshire department under ``OU=Warwickshire Constabulary`` (the force's
  old name), which no OU matcher for ``OU=Warwickshire`` reaches;
* service accounts with no signal at all (no UPN, mail, ``company`` or staff number; in
  ``CN=Users``), each a member of one of its force's resource groups: the survey can only list
  them (:data:`LEGACY_SERVICE_PREFIX` names them);
* an old UPN suffix kept by movers: West Mercia people who came from Warwickshire with their
  Warwickshire UPN (everything else West Mercia's);
* employee numbers in two formats: a share of each force keeps its old letters-and-digits number
  (``WM01234``, ``WK01234``);
* a misspelt ``company`` (:data:`MISSPELT`) on some West Mercia people.

Each rewritten group of accounts is recorded in :attr:`Legacy.cases` (case name, account ids).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl

from accessaudit.model import MEMBERSHIPS_SCHEMA, AccountKind, MemberKind, Via, conform
from accessaudit.sample.builder import BASE_DN, FORCES, SOURCE, USERS_CN, guids

RENAMED_OU: Final = f"OU=Warwickshire Constabulary,{BASE_DN}"
RENAMED_DEPT: Final = "Roads-Policing"
MISSPELT: Final = "West Mercia Pollice"
OLD_ID_PREFIX: Final = {"wmp": "WM", "warks": "WK"}
LEGACY_SERVICE_PREFIX: Final = "svc_"
#: Shares of the people each case rewrites.
IN_USERS: Final = 0.06
OLD_IDS: Final = 0.2
MISSPELT_SHARE: Final = 0.03
KEPT_UPN: Final = 0.01

TRUTH_SCHEMA: Final = pl.Schema(
    {"account_id": pl.String(), "org": pl.String(), "alt_org": pl.String()}
)


@dataclass
class Legacy:
    accounts: pl.DataFrame
    memberships: pl.DataFrame
    truth: pl.DataFrame  # TRUTH_SCHEMA, every account
    cases: pl.DataFrame  # case, account_id


def attribution_truth(
    people: pl.DataFrame,
    admins: pl.DataFrame,
    unattributed: pl.DataFrame,
    services: pl.DataFrame,
    computers: pl.DataFrame,
) -> pl.DataFrame:
    """Every directory account's organisation, from the generator's own knowledge."""
    by_prefix = pl.coalesce(
        [pl.when(pl.col("username").str.starts_with(f.prefix)).then(pl.lit(f.id)) for f in FORCES]
    )
    none = pl.lit(None, pl.String)
    return pl.concat(
        [
            people.select(
                "account_id",
                "org",
                alt_org=pl.when(pl.col("mover")).then(pl.col("hr_org")).otherwise(none),
            ),
            admins.select("account_id", "org", alt_org=none),
            unattributed.select("account_id", org=none, alt_org=none),
            services.select("account_id", org=pl.lit("shared"), alt_org=none),
            computers.select("account_id", org=by_prefix, alt_org=none),
        ]
    ).cast(TRUTH_SCHEMA)


def _pick(gen: np.random.Generator, pool: pl.Series, share: float) -> list[str]:
    n = max(2, round(pool.len() * share))
    return sorted(gen.choice(pool.to_numpy(), size=min(n, pool.len()), replace=False).tolist())


def make_legacy(
    accounts: pl.DataFrame,
    groups: pl.DataFrame,
    people: pl.DataFrame,
    truth: pl.DataFrame,
    gen: np.random.Generator,
    domain_sid: str,
) -> Legacy:
    """The directory's ``accounts`` rewritten as the module docstring lists, the memberships
    of the signal-less service accounts, and the truth and cases of every account."""
    plain = people.filter(~pl.col("mover"))
    cases: list[tuple[str, list[str]]] = []
    in_users = _pick(gen, plain["account_id"], IN_USERS)
    cases.append(("cn-users", in_users))
    renamed = plain.filter(
        (pl.col("org") == "warks")
        & (pl.col("department") == RENAMED_DEPT)
        & ~pl.col("account_id").is_in(in_users)
    )["account_id"].to_list()
    cases.append(("renamed-ou", renamed))
    wmp = plain.filter(pl.col("org") == "wmp")["account_id"]
    kept_upn = _pick(gen, wmp, KEPT_UPN)
    cases.append(("old-upn-suffix", kept_upn))
    old_ids = _pick(gen, plain["account_id"], OLD_IDS)
    cases.append(("old-employee-id", old_ids))
    misspelt = _pick(gen, wmp, MISSPELT_SHARE)
    cases.append(("misspelt-company", misspelt))

    rdn = pl.col("dn").str.extract(r"^((?:[^,\\]|\\.)*),", 1)
    org_of = plain.select("account_id", "org", "org_seq")
    old_id = pl.concat_str(
        [
            pl.col("_org").replace_strict(OLD_ID_PREFIX, default=""),
            (pl.col("_seq") % 100_000).cast(pl.String).str.zfill(5),
        ]
    )
    warks_upn = next(f.upn_suffix for f in FORCES if f.id == "warks")
    rewritten = (
        accounts.join(
            org_of.rename({"org": "_org", "org_seq": "_seq"}),
            on="account_id",
            how="left",
            maintain_order="left",
        )
        .with_columns(
            dn=pl.when(pl.col("account_id").is_in(in_users))
            .then(pl.concat_str([rdn, pl.lit("," + USERS_CN)]))
            .when(pl.col("account_id").is_in(renamed))
            .then(pl.concat_str([rdn, pl.lit(",OU=Users," + RENAMED_OU)]))
            .otherwise(pl.col("dn")),
            upn=pl.when(pl.col("account_id").is_in(kept_upn))
            .then(pl.concat_str([pl.col("username"), pl.lit(warks_upn)]))
            .otherwise(pl.col("upn")),
            employee_id=pl.when(pl.col("account_id").is_in(old_ids))
            .then(old_id)
            .otherwise(pl.col("employee_id")),
            company=pl.when(pl.col("account_id").is_in(misspelt))
            .then(pl.lit(MISSPELT))
            .otherwise(pl.col("company")),
        )
        .drop("_org", "_seq")
    )
    services, edges, service_truth = _signal_less_services(gen, groups, domain_sid, accounts)
    cases.append(("no-signal-service", services["account_id"].to_list()))
    every = pl.concat([rewritten, conform(services, accounts.schema)], how="vertical_relaxed")
    return Legacy(
        every.select(accounts.columns),
        edges,
        pl.concat([truth, service_truth]),
        pl.DataFrame(
            {
                "case": [c for c, ids in cases for _ in ids],
                "account_id": [i for _, ids in cases for i in ids],
            },
            schema={"case": pl.String, "account_id": pl.String},
        ),
    )


def _signal_less_services(
    gen: np.random.Generator, groups: pl.DataFrame, domain_sid: str, accounts: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Service accounts with no signal in ``CN=Users``, one per force in turn, each in one of
    its force's resource groups; their accounts, memberships and truth."""
    n = max(4, accounts.height // 1500)
    forces = [FORCES[i % len(FORCES)] for i in range(n)]
    names = [f"{LEGACY_SERVICE_PREFIX}legacyapp{i:03d}" for i in range(n)]
    ids = guids(gen, n)
    rows = pl.DataFrame(
        {
            "source": [SOURCE] * n,
            "account_id": ids,
            "sid": [f"{domain_sid}-{3_300_000 + i}" for i in range(n)],
            "username": names,
            "display_name": names,
            "dn": [f"CN={u},{USERS_CN}" for u in names],
            "kind": [AccountKind.SERVICE.value] * n,
            "enabled": [True] * n,
            "activity_tracked": [True] * n,
            "privileged": [False] * n,
            "sid_history": [[] for _ in range(n)],
        },
        schema_overrides={"sid_history": pl.List(pl.String)},
    )
    edges = []
    for i, f in enumerate(forces):
        own = groups.filter(pl.col("name").str.starts_with(f.prefix + "RES-"))["group_id"]
        edges.append((own[int(gen.integers(0, own.len()))], ids[i]))
    memberships = conform(
        pl.DataFrame(
            {"group_id": [g for g, _ in edges], "member_id": [m for _, m in edges]}
        ).with_columns(
            source=pl.lit(SOURCE),
            member_kind=pl.lit(MemberKind.ACCOUNT.value),
            via=pl.lit(Via.MEMBER.value),
        ),
        MEMBERSHIPS_SCHEMA,
    )
    truth = pl.DataFrame(
        {"account_id": ids, "org": [f.id for f in forces], "alt_org": [None] * n},
        schema=TRUTH_SCHEMA,
    )
    return rows, memberships, truth
