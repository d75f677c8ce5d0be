"""The sample's members of staff: names, departments, movers and their directory attributes.

About two thirds of the people are West Mercia's, a third Warwickshire's, spread over their
force's departments, with Welsh, Irish and other non-ASCII names (the usernames and mail
addresses are their ASCII folding). A few are **movers**: HR (``company``, employee id, mail)
says the other force, while the OU, UPN and groups are still the old force's; they never come
from a reserved department (:data:`~accessaudit.sample.builder.RESERVED_DEPTS`). The truth rows
of the movers are recorded by :func:`accessaudit.sample.plants_access.plant_movers`. About 4% of
the people are dormant, 1% never signed in and 3% disabled (``inactive_u`` below 0.08), which
makes any cross-force access they keep an ``inactive-cross-org-access`` finding
(:mod:`accessaudit.sample.truth`).

Vectorised over all people: no per-row Python.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import numpy as np
import polars as pl

from accessaudit.model import AccountKind
from accessaudit.sample.builder import FORCES, OTHER, RESERVED_DEPTS, SOURCE, guids

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


#: The fewest Warwickshire staff a sample has: its plants draw about 50 of them (each plant
#: its own people), and movers and reserved departments are never drawn.
MIN_WARKS_STAFF = 80


def make_people(rng: np.random.Generator, n: int, domain_sid: str, now: datetime) -> pl.DataFrame:
    """``n`` members of staff with every account column (and the columns the plants pick by:
    ``org``, ``hr_org``, ``department``, ``mover``, ``seq``, ``inactive_u``)."""
    people = _with_movers(rng, _staff(rng, n))
    people = people.with_columns(
        account_id=guids(rng, n),
        rid=pl.col("seq") + 1100,
        inactive_u=pl.Series(rng.random(n)),
        age_days=pl.Series(rng.integers(1, 30, n)),
        dormant_days=pl.Series(rng.integers(120, 900, n)),
        created_days=pl.Series(rng.integers(200, 3650, n)),
    )
    return _person_columns(people, domain_sid, now)


def _staff(rng: np.random.Generator, n: int) -> pl.DataFrame:
    """Each person's force, name and department."""
    is_wmp = rng.random(n) < 2 / 3
    # A small sample (the documented minimum of 200 accounts) still needs enough Warwickshire
    # staff for every plant to draw from: the last West Mercia people become Warwickshire's.
    # No random draw is used, so every larger sample is the same as without it.
    short = MIN_WARKS_STAFF - int(n - is_wmp.sum())
    if short > 0:
        is_wmp[np.flatnonzero(is_wmp)[-short:]] = False
    org_idx = np.where(is_wmp, 0, 1)
    seq = np.arange(n)
    people = pl.DataFrame(
        {
            "seq": seq,
            "org_i": org_idx,
            "first": np.array(FIRST_NAMES)[rng.integers(0, len(FIRST_NAMES), n)],
            "last": np.array(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), n)],
            "dept_u": rng.random(n),
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
    return people.with_columns(department=dept_names)


def _with_movers(rng: np.random.Generator, people: pl.DataFrame) -> pl.DataFrame:
    """Mark the movers (``mover``) and what HR says of everyone (``hr_org``: the precedence
    force; ``org`` stays where the account sits: OU and groups)."""
    mover_ok = ~(
        ((pl.col("org") == "wmp") & pl.col("department").is_in(RESERVED_DEPTS["wmp"]))
        | ((pl.col("org") == "warks") & pl.col("department").is_in(RESERVED_DEPTS["warks"]))
    )
    n_movers = max(4, people.height // 200)
    pool = people.filter(mover_ok)["seq"].to_numpy()
    mover_seq = rng.choice(pool, size=n_movers, replace=False)
    people = people.with_columns(mover=pl.col("seq").is_in(mover_seq.tolist()))
    return people.with_columns(
        hr_org=pl.when(pl.col("mover"))
        .then(pl.col("org").replace_strict(OTHER))
        .otherwise(pl.col("org"))
    )


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


def _dn_escape(expr: pl.Expr) -> pl.Expr:
    """RFC 4514 escaping of an attribute value for use in a DN."""
    out = expr.str.replace_all("\\", "\\\\", literal=True)
    for ch in (",", "+", '"', "<", ">", ";", "="):
        out = out.str.replace_all(ch, "\\" + ch, literal=True)
    return out.str.replace(r"^([ #])", r"\\$1").str.replace(r" $", r"\\ ")


def _ascii(expr: pl.Expr) -> pl.Expr:
    return expr.str.normalize("NFKD").str.to_lowercase().str.replace_all(r"[^a-z0-9]", "")
