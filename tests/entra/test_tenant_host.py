"""The tenant's host force is declared in the configuration, never guessed from which force holds
more privileged groups: with three more admin groups of the other force, the host's own Global
Administrator is still not cross-force and every tenant-wide role of the other force is found; a
configuration that does not declare the host fails its check before anything is collected, and
says what the previous run saw.

A tenant built here (as Graph objects) is served by the emulator and collected by the real
connector; the expected findings and the evidence are computed below by plain loops over what was
built."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import polars as pl
from support.entra_data import CLIENT_ID, ROLES, SECRET, TENANT, oid
from support.fixtures import NOW

from accessaudit.config.settings import Settings
from accessaudit.connectors.entra.collect import collect
from accessaudit.graphemu import GraphEmulator, Tenant, TestPKI
from accessaudit.pipeline.analyse import analyse
from accessaudit.pipeline.collect import combine
from accessaudit.pipeline.hosts import load_config
from accessaudit.pipeline.run import run_audit

DOMAIN = "alliance.onmicrosoft.com"
FORCES = {"wmp": "wm.example", "warks": "wk.example"}
HOST = "wmp"
RULE = "cross-org-directory-role"
#: Built-in roles Microsoft labels privileged (permissions-reference), by name.
ROLE_IDS = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Security Administrator": "194ae4cb-b126-40b2-bd5b-6091b380977d",
    "Helpdesk Administrator": "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "Application Administrator": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
}
USERS = {"w-admin": "wmp", "w1": "wmp", "k-admin": "warks", "k1": "warks", "k2": "warks"}
#: role-assignable admin group -> (its force, its members, the tenant-wide role it holds):
#: the other force has three more than the host
ADMIN_GROUPS = {
    "WMP-RA-Admins": ("wmp", ["w1"], "Global Administrator"),
    "WARKS-RA-Helpdesk": ("warks", ["k1"], "Helpdesk Administrator"),
    "WARKS-RA-Users": ("warks", ["k1"], "User Administrator"),
    "WARKS-RA-Security": ("warks", ["k2"], "Security Administrator"),
    "WARKS-RA-Apps": ("warks", ["k2"], "Application Administrator"),
}
#: (user, role, eligible) held tenant-wide by people directly
USER_ROLES = [
    ("w-admin", "Global Administrator", False),
    ("k-admin", "Privileged Role Administrator", False),
    ("k-admin", "Global Administrator", True),
]


def force(name: str) -> str:
    return USERS[name] if name in USERS else ADMIN_GROUPS[name][0]


def settings(cfg: object) -> Settings:
    orgs = [
        {"id": f, "name": f, "match": {"upn_suffix": [f"@{d}"], "name_prefix": [f"{f.upper()}-"]}}
        for f, d in FORCES.items()
    ]
    return Settings.model_validate({"organisations": orgs, "sources": [cfg]})


def build(emu: GraphEmulator) -> Tenant:
    t = emu.add_tenant(Tenant(TENANT, domain=DOMAIN))
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=ROLES)
    for name, f in USERS.items():
        t.add_user(id=oid(name), userPrincipalName=f"{name}@{FORCES[f]}", displayName=name)
    for name, (_, members, role) in ADMIN_GROUPS.items():
        t.add_group(id=oid(name), displayName=name, isAssignableToRole=True)
        for m in members:
            t.add_member(oid(name), oid(m))
        t.assign_role(oid(name), ROLE_IDS[role])
    for user, role, eligible in USER_ROLES:
        t.assign_role(oid(user), ROLE_IDS[role], eligible=eligible)
    return t


def truth() -> set[tuple[str, str]]:
    """(principal, right) of every tenant-wide role held outside the host force."""
    held = [(g, role, False) for g, (_, _, role) in ADMIN_GROUPS.items()] + USER_ROLES
    return {
        (oid(p), f"{role} @ /" + (" (eligible)" if eligible else ""))
        for p, role, eligible in held
        if force(p) != HOST
    }


def test_the_declared_host_decides_not_the_majority_of_admin_groups(emu, make_cfg, rules):
    build(emu)
    by_force = Counter(f for f, _, _ in ADMIN_GROUPS.values())
    assert by_force["warks"] == by_force[HOST] + 3  # the majority would say warks
    cfg = make_cfg(host=HOST)

    result = collect(cfg)
    analysis = analyse(combine([("entra", result)]), settings(cfg), rules, as_of=NOW)

    assert result.complete, [u for u in result.units if not u.complete]
    found = analysis.findings.filter(pl.col("rule_id") == RULE)
    principal = pl.coalesce("account_id", "member_group_id")
    got = set(found.select(principal, "right").iter_rows())
    expected = truth()
    hits = got & expected
    assert (len(hits) / len(got), len(hits) / len(expected)) == (1.0, 1.0)
    assert got == expected
    assert (oid("w-admin"), "Global Administrator @ /") not in got  # the host's own
    assert set(found["resource_org"]) == {HOST}


def _config(folder: Path, emu: GraphEmulator, pki: TestPKI, *, host: bool) -> tuple[Path, int]:
    """A config file for the tenant; the line of its [[sources]] entry."""
    secret = folder / "secret"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    head = f'[audit]\ndata_dir = "{folder / "data"}"\n'
    for f, d in FORCES.items():
        head += f'[[organisations]]\nid = "{f}"\nname = "{f}"\n[organisations.match]\n'
        head += f'upn_suffix = ["@{d}"]\nname_prefix = ["{f.upper()}-"]\n'
    source = (
        f'[[sources]]\nkind = "entra"\nname = "tenant"\ntenant_id = "{TENANT}"\n'
        f'client_id = "{CLIENT_ID}"\nauthority_host = "{emu.base_url}"\n'
        f'graph_url = "{emu.graph_url}"\nclient_secret_file = "{secret}"\n'
        f'ca_file = "{pki.ca_file}"\n' + (f'host = "{HOST}"\n' if host else "")
    )
    path = folder / "config.toml"
    path.write_text(head + source)
    return path, head.count("\n") + 1


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accessaudit", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _one_error(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    [line] = [ln for ln in p.stderr.splitlines() if ln.startswith("accessaudit: error:")]
    return line


def test_an_undeclared_host_fails_the_config_check_with_the_last_runs_evidence(emu, pki, tmp_path):
    build(emu)
    path, line = _config(tmp_path, emu, pki, host=False)
    where = f"{path}:{line}: sources[0] (tenant): no host declared"

    # no run yet: the error names the source and its line, nothing is contacted or written
    before = len(emu.requests("wire"))
    for args in (("run", "--config", str(path)), ("rules", "list", "--config", str(path))):
        error = _one_error(_cli(*args))
        assert where in error and "last run" not in error
    assert len(emu.requests("wire")) == before
    assert not (tmp_path / "data" / "runs").exists()

    # a run made with the host declared; then the same config without it
    declared, _ = _config(tmp_path, emu, pki, host=True)
    run = run_audit(load_config(declared), now=NOW).run
    path, _ = _config(tmp_path, emu, pki, host=False)
    before = len(emu.requests("wire"))
    held = Counter(f for f, _, _ in ADMIN_GROUPS.values())
    (top, n), (other, m) = sorted(held.items(), key=lambda kv: -kv[1])
    evidence = f"last run {run.run_id}: {top} holds {n} privileged group(s) of tenant, {other} {m}"
    for args in (("run", "--config", str(path)), ("rules", "list", "--config", str(path))):
        error = _one_error(_cli(*args))
        assert where in error and evidence in error, error
    assert len(emu.requests("wire")) == before
    assert [p.name for p in (tmp_path / "data" / "runs").iterdir()] == [run.run_id]
