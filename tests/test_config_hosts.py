"""Each directory source declares the organisation hosting it (``host``): checked with the file
and line like every configuration error, consistent with ``privileged_groups``, and turned into
the views' hosts frame by the ``source`` its rows carry."""

from __future__ import annotations

from pathlib import Path

import pytest

from accessaudit.config.settings import HostUndeclared, load_settings
from accessaudit.errors import ConfigError
from accessaudit.pipeline.hosts import declared_hosts, load_config
from accessaudit.pipeline.run import run_audit
from accessaudit.sample.builder import SOURCE
from accessaudit.sample.entra import ENTRA_SOURCE

CONFIG = """\
[[organisations]]
id = "wmp"
name = "West Mercia Police"
[organisations.match]
privileged_groups = true

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
kind = "sample"
name = "alliance-entra"
part = "entra"
host = "wmp"

[[sources]]
kind = "ldap"
name = "dc"
servers = ["ldaps://dc1.alliance.local"]
base_dn = "DC=Alliance,DC=Local"
host = "wmp"

[[sources]]
kind = "entra"
name = "tenant"
tenant_id = "t-1"
client_id = "c"
host = "wmp"

[[sources]]
kind = "csv"
name = "niche"
path = "niche.csv"
columns = { username = "User", role = "Role" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_declared_hosts_are_keyed_by_the_source_their_rows_carry(tmp_path: Path) -> None:
    hosts = declared_hosts(load_settings(write(tmp_path, CONFIG)))
    assert set(hosts.rows()) == {
        ("ad:alliance.local", "wmp"),  # the sample's domain and the LDAP domain: one directory
        ("entra:t-1", "wmp"),
        (ENTRA_SOURCE, "wmp"),
    }
    assert hosts.height == 3
    assert SOURCE == "ad:alliance.local"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # a missing host: the line of the source's [[sources]] entry
        (
            ('client_id = "c"\nhost = "wmp"\n', 'client_id = "c"\n'),
            "config.toml:33: sources[3] (tenant): no host declared: which organisation hosts "
            "this entra directory is never guessed",
        ),
        # an unknown or special organisation: the line of the key
        (
            ('part = "entra"\nhost = "wmp"', 'part = "entra"\nhost = "wpm"'),
            "config.toml:24: sources[1].host: 'wpm' is not an organisation that can host a "
            "directory",
        ),
        (
            ('base_dn = "DC=Alliance,DC=Local"\nhost = "wmp"', 'base_dn = "x"\nhost = "shared"'),
            "config.toml:31: sources[2].host: 'shared' is not an organisation that can host a "
            "directory",
        ),
        # the protected groups' organisation contradicting a declared host
        (
            ('client_id = "c"\nhost = "wmp"', 'client_id = "c"\nhost = "warks"'),
            "config.toml:5: organisations[0].match.privileged_groups: 'wmp' claims every "
            "directory's protected groups, but sources[3] (tenant) declares host = 'warks'",
        ),
    ],
)
def test_host_mistakes_name_the_file_and_line(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    text = CONFIG.replace(*change)
    assert text != CONFIG
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text))
    assert err.value.message.startswith(f"{tmp_path}/{message}")
    assert "\n" not in str(err.value)


def test_every_undeclared_source_is_counted_and_no_run_means_no_evidence(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG.replace('host = "wmp"\n', ""))
    with pytest.raises(HostUndeclared) as err:
        load_settings(path)
    assert [name for _, name in err.value.missing] == ["alliance", "alliance-entra", "dc", "tenant"]
    assert err.value.message.endswith("never guessed; 3 more source(s) lack one too")
    with pytest.raises(ConfigError) as again:
        load_config(path)
    assert again.value.message == err.value.message  # no run in the data directory: no evidence


def test_two_sources_of_one_directory_must_agree(tmp_path: Path) -> None:
    text = CONFIG.replace("privileged_groups = true\n", "").replace(
        'base_dn = "DC=Alliance,DC=Local"\nhost = "wmp"',
        'base_dn = "DC=alliance,DC=local"\nhost = "warks"',
    )
    text = f'[audit]\ndata_dir = "{tmp_path / "data"}"\n' + text
    settings = load_settings(write(tmp_path, text))
    both = r"sources alliance and dc both collect ad:alliance\.local"
    with pytest.raises(ConfigError, match=both):
        declared_hosts(settings)
    with pytest.raises(ConfigError, match=both):  # before anything is collected or written
        run_audit(settings)
    assert not (tmp_path / "data").exists()
