"""``accessaudit init``: a new installation starts from the shipped, commented example."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accessaudit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,  # not a terminal: it must ask nothing
    )


def test_init_writes_the_examples_owner_only_and_never_overwrites(tmp_path: Path) -> None:
    p = cli("init", "--config", "site/config.toml", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    config = tmp_path / "site" / "config.toml"
    register = tmp_path / "site" / "exceptions.example.toml"
    assert config.read_bytes() == (ROOT / "config.example.toml").read_bytes()
    assert register.read_bytes() == (ROOT / "exceptions.example.toml").read_bytes()
    assert {f.stat().st_mode & 0o777 for f in (config, register)} == {0o600}
    assert (tmp_path / "site").stat().st_mode & 0o777 == 0o700  # the folder it created
    assert p.stdout.splitlines() == [
        "wrote site/config.toml",
        "wrote site/exceptions.example.toml",
        "next: edit site/config.toml, then: accessaudit rules list --config site/config.toml",
    ]
    config.write_text("# edited by the site\n")
    p = cli("init", "--config", "site/config.toml", cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.splitlines() == [
        "accessaudit: error: site/config.toml already exists (edit it, or give another path "
        "(accessaudit init --config new.toml), or --force)"
    ]
    assert config.read_text() == "# edited by the site\n"
    p = cli("init", "--config", "site/config.toml", "--force", cwd=tmp_path)
    assert p.returncode == 0 and p.stdout.splitlines() == [
        "wrote site/config.toml",  # the register example already there is kept
        "next: edit site/config.toml, then: accessaudit rules list --config site/config.toml",
    ]
    assert config.read_bytes() == (ROOT / "config.example.toml").read_bytes()


def test_missing_config_points_at_init(tmp_path: Path) -> None:
    p = cli("run", "--config", "nope.toml", cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.splitlines() == [
        "accessaudit: error: config file nope.toml not found (write one to start from with: "
        "accessaudit init --config nope.toml)"
    ]


@pytest.mark.slow
def test_the_wheel_ships_the_examples(tmp_path: Path) -> None:
    """Every error that says "see config.example.toml" names a file an installed tool has."""
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if p.returncode != 0 and "hatchling" in p.stderr:
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "-q",
                "-w",
                str(tmp_path),
                str(ROOT),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert p.returncode == 0, p.stderr
    [wheel] = tmp_path.glob("accessaudit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "accessaudit/_data/config.example.toml",
        "accessaudit/_data/exceptions.example.toml",
        "accessaudit/config/examples.py",
    } <= names
