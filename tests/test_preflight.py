"""Everything a run needs from the machine is checked before any source is collected."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accessaudit.config.preflight import source_problems
from accessaudit.config.settings import load_settings

ORGS = (
    '[[organisations]]\nid = "wmp"\nname = "West Mercia"\n'
    '[[organisations]]\nid = "warks"\nname = "Warwickshire"\n'
)
# collected first: a server that refuses connections; reaching it would fail differently
LDAP = (
    '[[sources]]\nkind = "ldap"\nname = "dc"\nservers = ["ldaps://127.0.0.1:1"]\n'
    'base_dn = "DC=alliance,DC=local"\nconnect_timeout = 2\nhost = "wmp"\n'
    'bind_dn = "CN=audit,DC=alliance,DC=local"\npassword_env = "AA_TEST_PREFLIGHT_PW"\n'
)


def _csv(name: str, path: str) -> str:
    return (
        f'[[sources]]\nkind = "csv"\nname = "{name}"\npath = "{path}"\n'
        'columns = {username = "Login", role = "Role"}\n'
    )


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accessaudit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k != "AA_TEST_PREFLIGHT_PW"}
    out["AA_TEST_PREFLIGHT_OTHER"] = "x"
    return out


def test_a_missing_export_stops_the_run_before_any_server_is_asked(
    tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "niche.csv").write_text("Login,Role\nada,User\n")
    config = tmp_path / "config.toml"
    config.write_text(ORGS + LDAP + _csv("niche", "niche.csv") + _csv("athena", "gone/athena.csv"))
    env["AA_TEST_PREFLIGHT_PW"] = "set"
    started = time.monotonic()
    p = _cli("run", "--config", "config.toml", cwd=tmp_path, env=env)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    line = config.read_text().splitlines().index('path = "gone/athena.csv"') + 1
    assert p.stderr.splitlines() == [
        f"accessaudit: error: config.toml:{line}: source 'athena': path gone/athena.csv does "
        "not exist (fix the path; nothing was collected)"
    ]
    assert time.monotonic() - started < 60  # no connect_timeout spent on 127.0.0.1:1
    assert not (tmp_path / "accessaudit-data" / "runs").exists()
    # rules list checks the files too (not the secrets: a scheduler may set those)
    p = _cli("rules", "list", "--config", "config.toml", cwd=tmp_path, env=env)
    assert p.returncode == 2 and f"config.toml:{line}: source 'athena'" in p.stderr


def test_a_missing_password_variable_is_found_before_collecting(
    tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "niche.csv").write_text("Login,Role\nada,User\n")
    config = tmp_path / "config.toml"
    config.write_text(ORGS + _csv("niche", "niche.csv") + LDAP)
    p = _cli("run", "--config", "config.toml", cwd=tmp_path, env=env)
    line = config.read_text().splitlines().index('password_env = "AA_TEST_PREFLIGHT_PW"') + 1
    assert p.returncode == 2
    assert p.stderr.splitlines() == [
        f"accessaudit: error: config.toml:{line}: source 'dc': secret environment variable "
        "AA_TEST_PREFLIGHT_PW is not set (export AA_TEST_PREFLIGHT_PW before running, or use a "
        "secret file; nothing was collected)"
    ]
    p = _cli("rules", "list", "--config", "config.toml", cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr


def test_every_problem_is_counted_and_folders_are_not_files(tmp_path: Path) -> None:
    (tmp_path / "folder.csv").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        ORGS + _csv("a", "folder.csv") + _csv("b", "missing.csv")
        + LDAP.replace('password_env = "AA_TEST_PREFLIGHT_PW"', 'password_file = "pw.txt"')
    )  # fmt: skip
    settings = load_settings(config)
    problems = source_problems(settings, secrets=True)
    assert [(loc, msg.split(": ", 1)[1]) for loc, msg, _ in problems] == [
        (("sources", 0, "path"), f"path {tmp_path / 'folder.csv'} is a folder, not a regular file"),
        (("sources", 1, "path"), f"path {tmp_path / 'missing.csv'} does not exist"),
        (
            ("sources", 2, "password_file"),
            f"cannot read secret file {tmp_path / 'pw.txt'}: does not exist",
        ),
    ]
    (tmp_path / "pw.txt").write_text("secret")
    (tmp_path / "missing.csv").write_text("Login,Role\n")
    (tmp_path / "folder.csv").rmdir()
    (tmp_path / "folder.csv").write_text("Login,Role\n")
    assert source_problems(settings, secrets=True) == []


def _with_sources(values: str) -> str:
    """Two organisations; Warwickshire's ``sources`` matcher lists ``values``."""
    return ORGS + f"[organisations.match]\nsources = [{values}]\n" + LDAP + _csv("niche", "n.csv")


@pytest.mark.parametrize(
    ("values", "bad"),
    [
        ('"csv:nich"', "csv:nich"),  # a typo of the configured csv:niche
        ('"csv:niche", "ad:alliance.locl"', "ad:alliance.locl"),
        ('"entra:not-a-tenant"', "entra:not-a-tenant"),
    ],
)
def test_an_unknown_source_in_a_sources_matcher_is_refused_naming_its_line(
    tmp_path: Path, env: dict[str, str], values: str, bad: str
) -> None:
    (tmp_path / "n.csv").write_text("Login,Role\nada,User\n")
    config = tmp_path / "config.toml"
    config.write_text(_with_sources(values))
    line = config.read_text().splitlines().index(f"sources = [{values}]") + 1
    for args in (["run", "--config", "config.toml"], ["rules", "list", "--config", "config.toml"]):
        p = _cli(*args, cwd=tmp_path, env=env)
        assert p.returncode == 2 and "Traceback" not in p.stderr
        first = p.stderr.splitlines()[0]
        assert first.startswith(
            f"accessaudit: error: config.toml:{line}: organisations[1].match.sources: "
            f"'{bad}' names no configured source (use the source value its rows carry: "
            "ad:alliance.local, csv:niche, or entra:<tenant id>"
        ), first


def test_configured_sources_and_application_tenants_are_accepted_in_a_sources_matcher(
    tmp_path: Path,
) -> None:
    from accessaudit.pipeline.hosts import check_match_sources

    config = tmp_path / "config.toml"
    tenant = "entra:0f2a56c1-98d4-4b43-9e0e-6c3a1b2f7d10"  # an application's home tenant
    config.write_text(_with_sources(f'"csv:niche", "ad:alliance.local", "{tenant}"'))
    settings = load_settings(config)
    check_match_sources(settings, config)  # no error
    assert settings.organisations[1].match.sources == ["csv:niche", "ad:alliance.local", tenant]
