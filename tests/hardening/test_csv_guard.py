"""A CSV ``path`` that never ends: a FIFO with no writer, ``/dev/zero``, a folder, a file that
grows past the limit. Regular files only, read to a limit that names itself; the run ends at
once with one line (exit 2) and releases its lock."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from support.hardening_cli import (
    one_line_error,
    run,
    sample_source_toml,
    toml_table,
    write_config,
)

from accessaudit.config.sources import CsvSource
from accessaudit.connectors import csvfile, csvguard
from accessaudit.errors import InputFileError


def _csv_source(path: Path | str) -> str:
    return toml_table(
        "sources",
        {
            "kind": "csv",
            "name": "niche",
            "path": str(path),
            "columns": {"username": "User ID", "role": "Role"},
        },
    )


@pytest.mark.parametrize(
    ("kind", "what"),
    [("fifo", "a FIFO (named pipe)"), ("zero", "a character device"), ("dir", "a folder")],
)
def test_path_that_is_not_a_regular_file_fails_at_once(
    tmp_path: Path, kind: str, what: str
) -> None:
    target: Path
    if kind == "fifo":
        target = tmp_path / "niche.csv"
        os.mkfifo(target)
    elif kind == "zero":
        target = Path("/dev/zero")
    else:
        target = tmp_path / "exports"
        target.mkdir()
    config = write_config(tmp_path, sample_source_toml(200) + _csv_source(target))
    started = time.monotonic()
    p = run(config, timeout=60)
    assert time.monotonic() - started < 30
    assert p.returncode == 2, p.stderr
    line = one_line_error(p)
    # found by the checks before anything is collected, naming the config's line
    assert line.startswith(f"accessaudit: error: {config}:")
    assert line.endswith(
        f": source 'niche': path {target} is {what}, not a regular file (fix the path; nothing"
        " was collected)"
    )
    assert not (tmp_path / "data" / "runs").exists() or not any(
        (tmp_path / "data" / "runs").iterdir()
    )
    # the lock was released: a run with a good path goes ahead
    q = run(write_config(tmp_path / "again", sample_source_toml(200)), "--fail-on", "none")
    assert q.returncode == 0, q.stderr


def _cfg(path: Path) -> CsvSource:
    return CsvSource.model_validate(
        {
            "kind": "csv",
            "name": "niche",
            "path": path,
            "columns": {"username": "User ID", "role": "Role"},
        }
    )


def test_export_over_the_limit_names_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = tmp_path / "niche.csv"
    rows = "".join(f"user{i:04d},Officer\n" for i in range(100))
    export.write_text("User ID,Role\n" + rows, encoding="utf-8")
    size = export.stat().st_size
    monkeypatch.setattr(csvguard, "MAX_EXPORT_BYTES", size)
    assert csvfile.collect(_cfg(export)).units[0].count == 100  # exactly at the limit
    monkeypatch.setattr(csvguard, "MAX_EXPORT_BYTES", size - 1)
    with pytest.raises(InputFileError) as err:
        csvfile.collect(_cfg(export))
    assert err.value.message == (
        f"CSV export {export} is larger than the limit of {size - 1:,} bytes"
        " (accessaudit.connectors.csvguard.MAX_EXPORT_BYTES)"
    )


def test_export_growing_past_the_limit_while_read_is_stopped(tmp_path: Path) -> None:
    export = tmp_path / "growing.csv"
    export.write_text("User ID,Role\n" + "a,b\n" * 10, encoding="utf-8")
    fh = csvguard.open_export(export, "utf-8", limit=100)
    with export.open("a", encoding="utf-8") as grow:  # appended after the size was checked
        grow.write("c,d\n" * 100)
    with fh, pytest.raises(InputFileError, match="larger than the limit of 100 bytes"):
        fh.read()
