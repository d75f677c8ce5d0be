"""The run lock cannot be bypassed by deleting a file: the data folder itself is locked, so a
second run exits 4 while the first one writes, whatever is removed from the folder."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from support.hardening_cli import one_line_error, run, sample_source_toml, write_config

HOLD = (
    "import sys, time; from pathlib import Path; from accessaudit.store.runs import RunStore\n"
    "store = RunStore(Path(sys.argv[1]))\n"
    "with store.lock():\n"
    "    writer = store.begin()\n"
    "    print(writer.tmp, flush=True); time.sleep(120)"
)


def test_deleting_the_lock_file_mid_run_does_not_let_a_second_run_in(tmp_path: Path) -> None:
    config = write_config(tmp_path, sample_source_toml(200))
    data = tmp_path / "data"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(data)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        tmp = Path(holder.stdout.readline().strip())  # the first run's temporary folder
        assert tmp.is_dir()
        for name in (".lock",):  # what a lock file would be; gone, or never there
            (data / name).unlink(missing_ok=True)
        second = run(config)
        assert second.returncode == 4, second.stderr
        assert one_line_error(second) == (
            f"accessaudit: error: another run is writing to {data} (wait for it to finish; the"
            " lock is released when that process ends)"
        )
        assert tmp.is_dir()  # the first run's work is untouched
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
