"""Configurations that used to validate and then crash a run after collecting everything, and
typos that were silently accepted: each fails at load with one line naming file:line, in
``run`` (nothing collected, no run written) and in ``rules list --config`` alike."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.hardening_cli import cli, one_line_error, run, sample_source_toml, write_config

#: name -> (edit of the config text: (old, new) or text appended to [audit]; the key named;
#: a piece of the message)
EMPLOYEE = "employee_id = '^1\\d{6}$'"
RS = "[audit.rule_settings]\nmixed-group = "
CASES: dict[str, tuple[tuple[str, str], str, str]] = {
    "lookahead regex": ((EMPLOYEE, "employee_id = '^(?=1)\\d{7}$'"),
                        "organisations[0].match.employee_id", "polars cannot run this regular"),
    "backreference regex": ((EMPLOYEE, "employee_id = '^(1)\\1\\d{5}$'"),
                            "organisations[0].match.employee_id", "polars cannot run this regular"),
    "rot13 encoding": (("#CSV#", 'encoding = "rot13"'), "sources[1].encoding",
                       "'rot13' is not a text encoding"),
    "negative seed": (("seed = 7", "seed = -1"), "sources[0].seed", "greater than or equal to 0"),
    "huge seed": (("seed = 7", "seed = 1180591620717411303424"), "sources[0].seed",
                  "less than or equal to 4294967295"),
    "keyring without colon": (("#CSV#", ""), "", ""),  # replaced below (an ldap source)
    "infinite timeout": (("#CSV#", ""), "", ""),
    "NUL in data_dir": (("#AUDIT#", 'exceptions_file = "reg\\u0000ister.toml"'),
                        "audit.exceptions_file", "NUL character"),
    "rule setting of the wrong type": (
        ("#AUDIT#", '[audit.rule_settings]\nmixed-group = { min_share = "lots" }'),
        "audit.rule_settings.mixed-group.min_share", "'lots' is not a number"),
    "unknown rule id": (("#AUDIT#", "[audit.rule_settings]\nmixed-groups = { min_share = 0.2 }"),
                        "audit.rule_settings.mixed-groups",
                        "unknown rule 'mixed-groups' (did you mean 'mixed-group'?)"),
    "unknown setting key": (("#AUDIT#", RS + "{ min_shares = 0.2 }"),
                            "audit.rule_settings.mixed-group.min_shares",
                            "rule mixed-group has no setting 'min_shares'"),
    "setting out of range": (("#AUDIT#", RS + "{ min_members = -5 }"),
                             "audit.rule_settings.mixed-group.min_members",
                             "-5 is below the least value 1"),
    "deep array": (("#AUDIT#", "x = " + "[" * 5000 + "]" * 5000), "", "nested too deeply"),
}  # fmt: skip
LDAP = """
[[sources]]
kind = "ldap"
name = "alliance.local"
host = "wmp"
servers = ["ldaps://127.0.0.1:1"]
base_dn = "DC=alliance,DC=local"
bind_dn = "auditor@alliance.local"
"""
CASES["keyring without colon"] = (
    ("#CSV#", LDAP + 'password_keyring = "nocolon"'),
    "sources[2].password_keyring",
    "'nocolon' is not a keyring reference 'service:username'",
)
CASES["infinite timeout"] = (
    ("#CSV#", LDAP + 'password_env = "X"\nconnect_timeout = inf'),
    "sources[2].connect_timeout",
    "inf is not a finite number",
)


def _config(folder: Path, edit: tuple[str, str]) -> Path:
    export = folder / "niche.csv"
    export.parent.mkdir(parents=True, exist_ok=True)
    export.write_text("User ID,Role\nabc,Officer\n", encoding="utf-8")
    csv = (
        f'[[sources]]\nkind = "csv"\nname = "niche"\npath = "{export}"\n'
        'columns = { username = "User ID", role = "Role" }\n#CSV#\n'
    )
    config = write_config(folder, sample_source_toml(200) + csv)
    text = config.read_text(encoding="utf-8")
    text = text.replace('fail_on = "high"\n', 'fail_on = "high"\n#AUDIT#\n', 1)
    old, new = edit
    assert old in text, old
    text = text.replace(old, new, 1).replace("#CSV#\n", "").replace("#AUDIT#\n", "")
    config.write_text(text, encoding="utf-8")
    return config


def _line_of(config: Path, key: str) -> int:
    last = key.rsplit(".", 1)[-1].split("[")[0]
    lines = config.read_text(encoding="utf-8").splitlines()
    hits = [n for n, ln in enumerate(lines, 1) if re.match(rf"\s*{re.escape(last)}\s*=", ln)]
    if not hits:  # an inline table's key: the line of the table's key
        parent = key.rsplit(".", 2)[-2]
        hits = [n for n, ln in enumerate(lines, 1) if ln.startswith(f"{parent} =")]
    return hits[-1] if "organisations" not in key else hits[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_fails_at_load_naming_file_and_line(tmp_path: Path, case: str) -> None:
    edit, key, piece = CASES[case]
    config = _config(tmp_path, edit)
    p = run(config)
    assert p.returncode == 2, (p.stdout, p.stderr)
    line = one_line_error(p)
    assert "internal error" not in line
    if key:
        assert line.startswith(f"accessaudit: error: {config}:{_line_of(config, key)}: {key}: "), (
            line
        )
    else:
        assert line.startswith(f"accessaudit: error: {config}: "), line
    assert piece in line, line
    assert not (tmp_path / "data" / "runs").exists() or not any(
        (tmp_path / "data" / "runs").iterdir()
    )
    q = cli("rules", "list", "--config", str(config))
    assert q.returncode == 2, q.stdout
    assert one_line_error(q) == line  # the same failure


def test_fail_on_none_in_the_config(tmp_path: Path) -> None:
    config = _config(tmp_path, ('fail_on = "high"', 'fail_on = "none"'))
    p = run(config)
    assert p.returncode == 0, p.stderr  # the sample has critical findings: 'none' never fails
    q = run(config, "--fail-on", "high")
    assert q.returncode == 1, q.stderr


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    config = _config(tmp_path, ('fail_on = "high"', 'fail_on = "none"'))
    config.write_bytes(b"\xef\xbb\xbf" + config.read_bytes())
    p = run(config)
    assert p.returncode == 0, p.stderr
    assert cli("rules", "list", "--config", str(config)).returncode == 0


def test_valid_rule_settings_are_used(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        ("#AUDIT#", "[audit.rule_settings]\nmixed-group = { min_members = 3, min_share = 1 }"),
    )
    p = cli("rules", "list", "--config", str(config))
    assert p.returncode == 0, p.stderr
