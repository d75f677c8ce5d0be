"""An application export records no sign-ins: its accounts' dormancy is unknown (never
"inactive since created"), and the collection says so."""

from __future__ import annotations

from pathlib import Path

from accessaudit.config.sources import CsvSource
from accessaudit.connectors.csvfile import collect
from accessaudit.model import LAST_LOGON


def test_an_export_records_no_sign_ins(tmp_path: Path) -> None:
    path = tmp_path / "niche.csv"
    path.write_text("User,Role\nann,Officer\nbob,Supervisor\n", encoding="utf-8")
    cfg = CsvSource(
        kind="csv", name="niche", path=path, columns={"username": "User", "role": "Role"}
    )

    got = collect(cfg)

    assert got.complete
    assert got.table("accounts")["activity_tracked"].to_list() == [False, False]
    signal = got.signals[LAST_LOGON]
    assert not signal.recorded
    assert signal.detail == "an application export has no last-logon column"
