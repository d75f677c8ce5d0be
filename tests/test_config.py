"""Configuration: the example config is valid; every mistake is one line naming file and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from accessaudit.config.secrets import SecretRef
from accessaudit.config.settings import load_settings
from accessaudit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = """\
[audit]
data_dir = "data"

[[organisations]]
id = "wmp"
name = "West Mercia Police"

[[organisations]]
id = "warks"
name = "Warwickshire Police"

[[sources]]
kind = "sample"
name = "alliance"
host = "wmp"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_example_config_is_valid_and_complete() -> None:
    s = load_settings(ROOT / "config.example.toml")
    assert [o.id for o in s.organisations] == ["wmp", "warks", "shared"]
    assert {src.kind for src in s.sources} == {
        "sample",
        "ldap",
        "entra",
        "csv",
        "smb",
        "exchange",
        "azure",
    }


def test_minimal_config_and_relative_paths(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, MINIMAL))
    assert s.audit.data_dir == tmp_path / "data"
    assert s.real_orgs == ["wmp", "warks"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("[audit]\n", "[audit]\ncolour = 1\n"), r"config\.toml:2: audit\.colour: unknown key"),
        (
            ('data_dir = "data"', 'dormant_days = "ninety"'),
            r"config\.toml:2: audit\.dormant_days: .*integer",
        ),
        (
            ('name = "alliance"\n', 'name = "alliance"\naccounts = 10\n'),
            r"config\.toml:15: sources\[0\]\.accounts: .*200",
        ),
        (('kind = "sample"', 'kind = "oracle"'), r"sources\[0\]: .*oracle"),
        (
            ('id = "warks"\nname = "Warwickshire Police"\n', 'id = "warks"\n'),
            r"organisations\[1\]\.name: missing required key",
        ),
        (('id = "warks"', 'id = "wmp"'), r"duplicate organisation id"),
        (
            ("[audit]\n", '[audit]\npassword = "hunter2"\n'),
            r"config\.toml:2: 'password' holds a secret inline",
        ),
        (("[audit]\n", "[audit\n"), r"config\.toml: .*line 1"),
    ],
)
def test_mistakes_name_file_key_and_line(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = write(tmp_path, MINIMAL.replace(*change))
    with pytest.raises(ConfigError, match=message) as err:
        load_settings(path)
    assert "\n" not in str(err.value)
    assert "hunter2" not in str(err.value)


#: Three organisations and three sources: errors must name the line in the right ``[[...]]``.
ENTRIES = """\
[[organisations]]
id = "wmp"
name = "West Mercia Police"

[[organisations]]
id = "warks"
name = "Warwickshire Police"

[[organisations]]
id = "shared"
name = "Shared services"

[[sources]]
kind = "sample"
name = "alliance"
host = "wmp"

[[sources]]
kind = "ldap"
name = "dc"
servers = ["ldaps://dc1.alliance.local"]
base_dn = "DC=alliance,DC=local"
page_size = 500
host = "wmp"

[[sources]]
kind = "ldap"
name = "dc2"
servers = ["ldaps://dc2.alliance.local"]
base_dn = "DC=alliance,DC=local"
page_size = 800
host = "wmp"
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # the third source's page_size (line 31), not the first one in the file (line 23)
        (
            ("page_size = 800", 'page_size = "many"'),
            "config.toml:31: sources[2].page_size: Input should be a valid integer, "
            "unable to parse string as an integer",
        ),
        # a key missing from the second organisation: that entry's [[organisations]] line
        (
            ('name = "Warwickshire Police"\n', ""),
            "config.toml:5: organisations[1].name: missing required key",
        ),
        # a key missing from the third source: its [[sources]] line
        (
            ('dc2.alliance.local"]\nbase_dn = "DC=alliance,DC=local"\n', 'dc2.alliance.local"]\n'),
            "config.toml:26: sources[2].base_dn: missing required key",
        ),
        # a table after a blank line: the header's own line, not the blank line before it
        (
            ('\n[[sources]]\nkind = "sample"', '\n[bogus]\nx = 1\n\n[[sources]]\nkind = "sample"'),
            "config.toml:13: bogus: unknown key",
        ),
    ],
)
def test_errors_name_the_line_in_the_right_entry(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = write(tmp_path, ENTRIES.replace(*change))
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert err.value.message == f"{tmp_path}/{message}"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not found.*accessaudit init --config"):
        load_settings(tmp_path / "nope.toml")


def test_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_bytes(MINIMAL.encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(p)


def test_secret_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AA_SECRET", "s3cret")
    assert SecretRef(env="AA_SECRET").resolve() == "s3cret"
    f = tmp_path / "pw"
    f.write_text("filesecret\n")
    assert SecretRef(file=f).resolve() == "filesecret"
    monkeypatch.delenv("AA_SECRET")
    with pytest.raises(ConfigError, match="environment variable AA_SECRET is not set") as err:
        SecretRef(env="AA_SECRET").resolve()
    assert "s3cret" not in str(err.value)
    with pytest.raises(ConfigError, match="cannot read secret file"):
        SecretRef(file=tmp_path / "missing").resolve()
    with pytest.raises(ValueError, match="exactly one"):
        SecretRef(env="A", file=f)


#: An assignment line of config.example.toml, active or commented out (``# key = value``).
_ASSIGNMENT = re.compile(r"^[ \t]*(#[ \t]*)?([A-Za-z_][\w-]*)[ \t]*=")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'[^']*'")


def _example_blocks() -> list[tuple[str, str | None, list[str]]]:
    """config.example.toml as (table header, source kind, lines) blocks, in file order."""
    blocks: list[tuple[str, str | None, list[str]]] = [("", None, [])]
    for line in (ROOT / "config.example.toml").read_text().splitlines():
        header = re.match(r"^\[+([^\]]+)\]+", line)
        if header:
            kind = blocks[-1][1] if header.group(1).startswith("sources.") else None
            blocks.append((header.group(1).strip(), kind, []))
        kind_line = re.match(r'^kind = "(\w+)"', line)
        if kind_line:
            blocks[-1] = (blocks[-1][0], kind_line.group(1), blocks[-1][2])
        blocks[-1][2].append(line)
    return blocks


def _commented(lines: list[str], i: int) -> bool:
    """Line ``i`` has a comment after its value, or the line above is a comment of its own."""
    body = _STRING.sub('""', lines[i].lstrip().removeprefix("#"))
    if "#" in body:
        return True
    above = lines[i - 1].strip() if i else ""
    return above.startswith("#") and not _ASSIGNMENT.match(above)


def test_every_config_key_is_shown_and_commented_in_the_example() -> None:
    """Every key of every settings model appears in its own table of config.example.toml (set
    or commented out), and every key line there carries a comment (on it or just above)."""
    from pydantic import BaseModel

    from accessaudit.config import datasources, organisations, settings, sources

    blocks = _example_blocks()
    uncommented = [
        f"[{header}] {lines[i].strip()}"
        for header, _, lines in blocks
        for i, line in enumerate(lines)
        if _ASSIGNMENT.match(line) and not _commented(lines, i)
    ]
    assert uncommented == []
    where: list[tuple[type[BaseModel], str, str | None]] = [
        (settings.AuditSettings, "audit", None),
        (organisations.Attribution, "attribution", None),
        (organisations.Organisation, "organisations", None),
        (organisations.Matchers, "organisations.match", None),
        (sources.SampleSource, "sources", "sample"),
        (sources.LdapSource, "sources", "ldap"),
        (sources.EntraSource, "sources", "entra"),
        (sources.CsvSource, "sources", "csv"),
        (datasources.SmbSource, "sources", "smb"),
        (datasources.ExchangeSource, "sources", "exchange"),
        (datasources.AzureSource, "sources", "azure"),
        (settings.ReportSettings, "report", None),
        (settings.ApplySettings, "apply", None),
    ]
    missing = []
    for model, table, kind in where:
        text = "\n".join(
            line
            for header, k, lines in blocks
            if header == table and (kind is None or k == kind)
            for line in lines
        )
        subtables = {
            h.removeprefix(f"{table}.").split(".")[0]
            for h, _, _ in blocks
            if h.startswith(f"{table}.")
        }
        missing += [
            f"[{table}] {name}"
            for name in model.model_fields
            if name not in subtables and not re.search(rf"^[ \t]*#?[ \t]*{name}[ \t]*=", text, re.M)
        ]
    columns = "\n".join(next(lines for h, _, lines in blocks if h == "sources.columns"))
    missing += [
        f"[sources.columns] {name}"
        for name in ("username", "role", "display_name", "upn", "employee_id", "mail", "enabled")
        if not re.search(rf"^#?[ \t]*{name}[ \t]*=", columns, re.M)
    ]
    assert missing == []


def test_key_lines_follow_array_entries_dotted_and_quoted_keys() -> None:
    from accessaudit.config.tomlpos import key_lines, line_of

    text = (
        '[[sources]]\nname = "a"\n\n[[sources]]\nname = "b"\n[sources.columns]\n'
        'username = "User"\n"odd key" = 1\nnote = """\nfake = 1\n"""\n'
        "[audit.rule_settings.mixed-group]\nmin_share = 0.1\n"
    )
    lines = key_lines(text)
    assert lines[("sources", 0, "name")] == 2
    assert lines[("sources", 1)] == 4
    assert lines[("sources", 1, "columns", "username")] == 7
    assert lines[("sources", 1, "columns", "odd key")] == 8
    assert ("sources", 1, "columns", "fake") not in lines  # inside a multi-line string
    assert lines[("audit", "rule_settings", "mixed-group", "min_share")] == 13
    assert line_of(text, ["sources", 1, "columns", "role"]) == 6
    assert line_of(text, ["report", "title"]) is None
