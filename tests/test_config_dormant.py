"""``dormant_days`` below 14 is refused at load: Active Directory replicates lastLogonTimestamp
only every 9-14 days, so a shorter threshold would call accounts in use dormant (and the plan
would disable them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from accessaudit.config.settings import MIN_DORMANT_DAYS, load_settings
from accessaudit.errors import ConfigError

CONFIG = """\
[audit]
data_dir = "data"
{audit}

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


def load(tmp_path: Path, audit: str) -> int:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(audit=audit), encoding="utf-8")
    return load_settings(path).audit.dormant_days


def test_fourteen_days_and_more_are_accepted(tmp_path: Path) -> None:
    assert MIN_DORMANT_DAYS == 14
    assert load(tmp_path, "dormant_days = 14") == 14
    assert load(tmp_path, "") == 90


@pytest.mark.parametrize(
    "audit",
    [
        "dormant_days = 13",
        "dormant_days = 1",
        'rule_settings = { "inactive-cross-org-access" = { dormant_days = 7 } }',
    ],
)
def test_below_fourteen_days_is_refused_with_the_reason(tmp_path: Path, audit: str) -> None:
    with pytest.raises(ConfigError, match=r"config\.toml:3: audit\.(dormant_days|rule_settings)"):
        load(tmp_path, audit)
    with pytest.raises(ConfigError, match="replicates lastLogonTimestamp only every 9-14 days"):
        load(tmp_path, audit)
