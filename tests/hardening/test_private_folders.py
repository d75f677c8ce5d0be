"""Every folder the tool creates is 0700, also its parents and under umask 000: a deep
``data_dir`` and a ``pseudonym_key_file`` in a new folder."""

from __future__ import annotations

import stat
from pathlib import Path

from support.hardening_cli import run, sample_source_toml, write_config


def test_new_parent_folders_are_owner_only_under_umask_000(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    site.chmod(0o755)
    config = write_config(
        site,
        sample_source_toml(300),
        audit={"data_dir": "deep/a/b/data", "fail_on": "none"},
        report={"pseudonymise": True, "pseudonym_key_file": "keys/new/pseudonym.key"},
    )
    p = run(config, umask=0)
    assert p.returncode == 0, p.stderr
    created = [
        site / "deep",
        site / "deep" / "a",
        site / "deep" / "a" / "b",
        site / "deep" / "a" / "b" / "data",
        site / "keys",
        site / "keys" / "new",
    ]
    modes = {str(d.relative_to(site)): oct(stat.S_IMODE(d.stat().st_mode)) for d in created}
    assert modes == {str(d.relative_to(site)): "0o700" for d in created}
    data = site / "deep" / "a" / "b" / "data"
    for path in data.rglob("*"):
        want = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == want, path
    assert stat.S_IMODE((site / "keys" / "new" / "pseudonym.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(site.stat().st_mode) == 0o755  # an existing folder is left alone
