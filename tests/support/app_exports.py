"""Application exports written here the way application admins produce them, correlated to the
embedded sample directory, with the truth of every row computed here in plain Python (never
with the code under test).

Two applications that no force claims (no ``sources`` matcher names them):

* ``cad``, a command-and-control system: cp1252, ``;``, CRLF, French headers with accents,
  down-level ``ALLIANCE\\user`` / ``alliance\\USER`` / ``user@alliance.local`` / padded logins,
  a login of another domain, force-prefixed roles (``WMP-Dispatcher``, ``WARKS-Dispatcher``)
  and an unprefixed one, every enabled spelling, quoted multi-line notes, duplicates and Excel's
  trailing ``;;;;`` rows;
* ``duty``, a rostering system: UTF-8 with a BOM, ``,``, LF, correlated on staff numbers
  padded with zeros (8 and 10 digits), spaces and non-breaking spaces, and one staff number no
  directory account has.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from accessaudit.config.settings import Settings
from accessaudit.engine.rulefile import load_rules
from accessaudit.pipeline.analyse import Analysis, analyse
from accessaudit.pipeline.collect import collect_sources, combine
from accessaudit.sample.builder import FORCES
from accessaudit.sample.directory import DEFAULT_NOW, SAMPLE_HOST, generate, sample_settings_dict

NOW = DEFAULT_NOW
ACCOUNTS = 600
PREFIX = {f.id: f.prefix for f in FORCES}
ORG_OF_PREFIX = {f.prefix.lower(): f.id for f in FORCES}
OTHER = {"wmp": "warks", "warks": "wmp"}
#: the domains a qualified login may name, as the README documents the default
DOMAINS = {"alliance.local", "alliance"}
#: the enabled spellings the README lists (trimmed, case-insensitive)
ENABLED = {"true": True, "yes": True, "y": True, "1": True, "enabled": True, "active": True}
ENABLED |= dict.fromkeys(
    ("false", "no", "n", "0", "disabled", "inactive", "suspended", "locked", "blocked"), False
)
ENABLED["deactivated"] = False


# --- truth, in plain Python --------------------------------------------------------------------


def staff_key(text: str) -> str | None:
    """A staff number as the README says it is compared: no whitespace, lower-case, an
    all-digit number without leading zeros."""
    compact = "".join(text.split()).lower()
    if not compact:
        return None
    return str(int(compact)) if compact.isascii() and compact.isdigit() else compact


def login_keys(text: str) -> set[str]:
    """The keys a login matches by: as written, and its user part in an accepted domain."""
    login = text.strip().lower()
    keys = {login}
    if "\\" in login:
        domain, user = login.split("\\", 1)
    elif "@" in login:
        user, domain = login.rsplit("@", 1)
    else:
        return keys
    if domain in DOMAINS:
        keys.add(user)
    return keys


def role_org(role: str) -> str:
    """A role of an unclaimed application belongs to the force its name's prefix names."""
    for prefix, org in ORG_OF_PREFIX.items():
        if role.lower().startswith(prefix):
            return org
    return "unattributed"


def _force(account: dict[str, Any]) -> str | None:
    """The force every signal of a directory account agrees on (None: they disagree)."""
    orgs = set()
    for f in FORCES:
        hits = (
            (account["dn"] or "").lower().endswith(f.ou.lower()),
            (account["upn"] or "").lower().endswith(f.upn_suffix.lower()),
            account["company"] == f.name,
            (account["employee_id"] or "").startswith(str(f.employee_base // 1_000_000)),
        )
        if all(hits):
            orgs.add(f.id)
        elif any(hits):
            return None
    return orgs.pop() if len(orgs) == 1 else None


@dataclass
class Directory:
    """The sample's directory accounts as the truth sees them."""

    accounts: list[dict[str, Any]]
    by_login: dict[str, list[str]] = field(default_factory=dict)
    by_staff: dict[str, list[str]] = field(default_factory=dict)
    force: dict[str, str] = field(default_factory=dict)  # clean accounts only
    enabled: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for a in self.accounts:
            self.by_login.setdefault(a["username"].lower(), []).append(a["account_id"])
            key = staff_key(a["employee_id"] or "")
            if key:
                self.by_staff.setdefault(key, []).append(a["account_id"])
            self.enabled[a["account_id"]] = bool(a["enabled"])
        for a in self.accounts:
            force = _force(a) if a["kind"] == "user" else None
            recent = a["last_logon"] is not None and NOW - a["last_logon"] < timedelta(days=30)
            unique = (
                len(self.by_login[a["username"].lower()]) == 1
                and len(self.by_staff.get(staff_key(a["employee_id"] or "") or "", [])) == 1
            )
            if force and unique and (recent or not a["enabled"]):
                self.force[a["account_id"]] = force

    def pick(self, org: str, n: int, *, enabled: bool = True) -> list[dict[str, Any]]:
        """The first ``n`` clean accounts of ``org`` (by username) in that state."""
        out = [
            a
            for a in sorted(self.accounts, key=lambda a: a["username"])
            if self.force.get(a["account_id"]) == org and bool(a["enabled"]) is enabled
        ]
        assert len(out) >= n, (org, enabled, len(out))
        return out[:n]

    def match_login(self, login: str) -> str | None:
        ids = {i for k in login_keys(login) for i in self.by_login.get(k, [])}
        return ids.pop() if len(ids) == 1 else None

    def match_staff(self, number: str) -> str | None:
        ids = self.by_staff.get(staff_key(number) or "", [])
        return ids[0] if len(ids) == 1 else None


# --- the exports --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One export row and its truth."""

    app: str
    login: str  # the identity cell as written (the login; for ``duty`` the staff number)
    username: str  # the username cell as written
    role: str
    status: str
    account: str | None  # the directory account it is (None: an application-only login)
    org: str  # the organisation of whoever holds it ("unattributed" when none)

    @property
    def enabled(self) -> bool:
        return ENABLED[self.status.strip().lower()]

    @property
    def holder(self) -> str:
        """The account id the membership ends on."""
        return self.account or f"csv:{self.app}:user:{self.username.strip().lower()}"

    @property
    def group(self) -> str:
        return f"csv:{self.app}:role:{self.role.strip()}"

    @property
    def cross(self) -> bool:
        orgs = (self.org, role_org(self.role))
        return "unattributed" not in orgs and orgs[0] != orgs[1]


CAD_SHAPES = (
    lambda u: f"ALLIANCE\\{u}",
    lambda u: f"alliance\\{u.upper()}",
    lambda u: f"{u}@alliance.local",
    lambda u: f"\u00a0{u} ",
    lambda u: f"  {u.upper()}",
)
CAD_STATUS = ("Active", "Inactive", "Y", "Suspended", "1", "Locked", "N", "0", "Disabled", "yes")
DUTY_SHAPES = (
    lambda n: f"0{n}",
    lambda n: f"000{n}",
    lambda n: f"  {n} ",
    lambda n: f"\u00a0{n[:1]} {n[1:]}",
)


def cad_rows(d: Directory) -> list[Row]:
    """Officers of both forces on both forces' dispatcher roles and an unprefixed role, in every
    login shape and enabled spelling; a West Mercia leaver on WARKS-Dispatcher; a login of
    another domain."""
    people = d.pick("wmp", 6) + d.pick("warks", 6)
    rows: list[Row] = []
    for i, a in enumerate(people):
        org = d.force[a["account_id"]]
        role = ("WMP-Dispatcher", "WARKS-Dispatcher", "Viewer")[i % 3]
        login = CAD_SHAPES[i % len(CAD_SHAPES)](a["username"])
        status = CAD_STATUS[i % len(CAD_STATUS)]
        rows.append(Row("cad", login, login, role, status, d.match_login(login), org))
    for a in d.pick("wmp", 2, enabled=False):  # leavers
        login = f"ALLIANCE\\{a['username']}"
        account = d.match_login(login)
        rows.append(Row("cad", login, login, "WARKS-Dispatcher", "Active", account, "wmp"))
    stranger = d.pick("warks", 7)[-1]
    login = f"OTHERDOM\\{stranger['username']}"
    assert d.match_login(login) is None  # another domain: its user part is never tried
    rows.append(Row("cad", login, login, "WMP-Dispatcher", "Active", None, "unattributed"))
    return rows


def duty_rows(d: Directory) -> list[Row]:
    """Both forces' officers on the other force's custody role by padded staff number, and a
    staff number no directory account has (attributed by the employee-id pattern alone)."""
    people = d.pick("wmp", 4) + d.pick("warks", 4)
    rows: list[Row] = []
    for i, a in enumerate(people):
        org = d.force[a["account_id"]]
        number = DUTY_SHAPES[i % len(DUTY_SHAPES)](a["employee_id"])
        role = PREFIX[OTHER[org]] + "Custody" if i % 2 else PREFIX[org] + "Custody"
        status = "N" if i == 3 else "Y"
        account = d.match_staff(number)
        rows.append(Row("duty", number, f"duty{i:03d}", role, status, account, org))
    unknown = "0" + str(FORCES[1].employee_base + 999_999)  # Warwickshire's range, no account
    assert d.match_staff(unknown) is None
    user = f"duty{len(rows):03d}"
    rows.append(Row("duty", unknown, user, "WMP-Custody", "Y", None, pattern_org(unknown)))
    return rows


def write_cad(path: Path, rows: list[Row]) -> Path:
    """cp1252, ``;``, CRLF; quoted multi-line notes; a duplicate row; Excel's ``;;;;`` tail."""
    lines = ["Identifiant;Nom complet;Rôle;Statut;Remarques"]
    for i, r in enumerate(rows):
        note = '"Formé en 2024;\r\nvoir ""dossier"""' if i % 4 == 0 else "Zoë Ó Briain"
        lines.append(f"{r.login};Agent {i} Éléonore;{r.role};{r.status};{note}")
    lines.append(lines[1])  # exported twice
    lines += [";;;;", ";;;;", ";;;;"]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    return path


def write_duty(path: Path, rows: list[Row]) -> Path:
    """UTF-8 with a BOM, ``,``, LF."""
    lines = ["User,Staff No,Duty role,Enabled"]
    lines += [f"{r.username},{r.login},{r.role},{r.status}" for r in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8-sig"))
    return path


def csv_sources(folder: Path) -> list[dict[str, Any]]:
    """The two exports as ``[[sources]]``; neither application is claimed by a force."""
    return [
        {
            "kind": "csv",
            "name": "cad",
            "path": str(folder / "cad.csv"),
            "encoding": "cp1252",
            "delimiter": ";",
            "application": "CAD",
            "columns": {
                "username": "Identifiant",
                "display_name": "Nom complet",
                "role": "Rôle",
                "enabled": "Statut",
            },
        },
        {
            "kind": "csv",
            "name": "duty",
            "path": str(folder / "duty.csv"),
            "application": "Duty rosters",
            "correlate_on": "employee_id",
            "columns": {
                "username": "User",
                "employee_id": "Staff No",
                "role": "Duty role",
                "enabled": "Enabled",
            },
        },
    ]


def settings_for(folder: Path, sources: list[dict[str, Any]]) -> Settings:
    sample = {"kind": "sample", "name": "alliance", "accounts": ACCOUNTS, "host": SAMPLE_HOST}
    return Settings.model_validate(
        {
            **sample_settings_dict(),
            "audit": {"data_dir": str(folder / "data")},
            "sources": [sample, *sources],
        }
    )


@dataclass
class Estate:
    directory: Directory
    rows: list[Row]
    folder: Path
    analysis: Analysis
    baseline: Analysis  # the directory alone
    collections: dict[str, Any]

    def findings(self, rule: str) -> pl.DataFrame:
        return self.analysis.findings.filter(pl.col("rule_id") == rule)


def _analysed(settings: Settings) -> tuple[Analysis, dict[str, Any]]:
    collected = collect_sources(settings, now=NOW)
    tables = combine(collected)
    return analyse(tables, settings, load_rules(), as_of=NOW), dict(collected)


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    folder = tmp_path_factory.mktemp("apps")
    sample = generate(seed=7, accounts=ACCOUNTS, now=NOW)
    directory = Directory(sample.tables["accounts"].to_dicts())
    cad, duty = cad_rows(directory), duty_rows(directory)
    write_cad(folder / "cad.csv", cad)
    write_duty(folder / "duty.csv", duty)
    analysis, collections = _analysed(settings_for(folder, csv_sources(folder)))
    baseline, _ = _analysed(settings_for(folder, []))
    yield Estate(directory, cad + duty, folder, analysis, baseline, collections)


def pattern_org(number: str) -> str:
    """The force whose employee-id pattern (sample_settings_dict) the normalised number fits."""
    for org in sample_settings_dict()["organisations"]:
        pattern = org["match"].get("employee_id")
        if pattern and re.search(pattern, staff_key(number) or ""):
            return str(org["id"])
    return "unattributed"
