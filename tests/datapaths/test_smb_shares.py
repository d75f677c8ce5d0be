"""The SMB connector against a real standalone smbd: NTFS ACLs planted as Windows stores them,
with the domain SIDs of a directory built here; folding, reach, a deny, share permissions, an
unreadable and an unlistable folder, and bad input."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from support.servers.smbd import ADMIN, PASSWORD, READER, Smbd

from accessaudit.analysis.principals import resolve_principals
from accessaudit.config.datasources import SmbSource
from accessaudit.connectors.smb.collect import collect
from accessaudit.connectors.smb.srvsvc import parse_response
from accessaudit.errors import AuthError, SourceError
from accessaudit.model import ACCOUNTS_SCHEMA, GROUPS_SCHEMA, conform

D = "S-1-5-21-1111111111-2222222222-3333333333"
DA, WMPI, KIM, WKOPS = f"{D}-512", f"{D}-2101", f"{D}-1102", f"{D}-2201"
F, M, R = "0x1f01ff", "0x1301bf", "0x1200a9"
ROOT_ACES = f"(A;OICIID;{F};;;{DA})(A;OICIID;{R};;;WD)"
OWNER = f"O:{DA}G:{DA}"
#: (folder, SDDL) in the order they are planted: root first.
TREE = [
    ("", f"{OWNER}D:PAI(A;OICI;{F};;;{DA})(A;OICI;{R};;;WD)"),
    ("Intel", f"{OWNER}D:AI(A;OICI;{M};;;{WMPI}){ROOT_ACES}"),
    ("Intel/Ops", f"{OWNER}D:AI(A;OICIID;{M};;;{WMPI}){ROOT_ACES}"),
    ("Intel/Ops/Deep", f"{OWNER}D:AI(A;OICI;{M};;;{KIM})(A;OICIID;{M};;;{WMPI}){ROOT_ACES}"),
    (
        "Intel/Ops/Deep/Deeper",
        f"{OWNER}D:AI(A;OICIID;{M};;;{KIM})(A;OICIID;{M};;;{WMPI}){ROOT_ACES}",
    ),
    ("Intel/Closed", f"{OWNER}D:AI(D;OICI;{M};;;{KIM})(A;OICIID;{M};;;{WMPI}){ROOT_ACES}"),
    ("Sealed", f"{OWNER}D:PAI(D;;0x1;;;WD)(A;OICI;{F};;;{DA})(A;OICI;{R};;;WD)"),
    ("Sealed/Inner", f"{OWNER}D:AI(A;OICIID;{F};;;{DA})(A;OICIID;{R};;;WD)"),
    ("Hidden", f"{OWNER}D:AI(D;;0x20000;;;WD){ROOT_ACES}"),
]
SHARE = f"D:(A;;{R};;;WD)(A;;{F};;;{WKOPS})(A;;{F};;;{DA})"


@pytest.fixture(scope="module")
def planted(smbd: Smbd) -> Smbd:
    smbd.plant("data", TREE, D)
    smbd.share_sddl("data", SHARE)
    return smbd


def source(smbd: Smbd, tmp_path: Path, user: str, **over: object) -> SmbSource:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD)
    settings: dict[str, object] = {
        "kind": "smb",
        "name": "fs1",
        "server": smbd.address,
        "shares": ["data"],
        "username": user,
        "password_file": secret,
    } | over
    return SmbSource.model_validate(settings)


def _id(rel: str, smbd: Smbd) -> str:
    return f"smb://{smbd.address}/data/{rel}"


def test_an_administrator_reads_every_folder_folded_to_where_rights_are_set(
    planted: Smbd, tmp_path: Path
) -> None:
    # smbcacls, the reference reader, sees what was planted on the deep folder
    assert f"(A;OICI;0x001301bf;;;{KIM})" in planted.folder_sddl("data", "Intel/Ops/Deep")
    collection = collect(source(planted, tmp_path, ADMIN))
    (unit,) = collection.units
    assert (unit.name, unit.complete, unit.count) == ("share data", True, 9)
    folders = collection.table("resources").filter(pl.col("family") == "folder")
    assert folders.height == 9 and folders["readable"].all()
    deep = folders.filter(pl.col("resource_id") == _id("Intel/Ops/Deep", planted)).row(
        0, named=True
    )
    assert deep["parent_id"] == _id("Intel/Ops", planted)
    assert deep["path"] == f"\\\\{planted.address}\\data\\Intel\\Ops\\Deep"
    assert deep["owner_sid"] == DA and deep["name"] == "Deep"
    grants = collection.table("grants")
    rows = grants.select("principal_id", "resource_id", "right", "deny", "inherited", "reach")
    share = f"smb://{planted.address}/data"
    assert sorted(rows.rows()) == sorted(
        [
            (DA, _id("", planted), "full control", False, False, 7),
            ("S-1-1-0", _id("", planted), "read", False, False, 7),
            (WMPI, _id("Intel", planted), "modify", False, False, 5),
            (KIM, _id("Intel/Ops/Deep", planted), "modify", False, False, 2),
            (KIM, _id("Intel/Closed", planted), "modify", True, False, 1),
            ("S-1-1-0", _id("Sealed", planted), "read", True, False, 1),
            (DA, _id("Sealed", planted), "full control", False, False, 2),
            ("S-1-1-0", _id("Sealed", planted), "read", False, False, 2),
            ("S-1-1-0", _id("Hidden", planted), "other", True, False, 1),
            ("S-1-1-0", share, "read", False, False, 1),
            (WKOPS, share, "full control", False, False, 1),
            (DA, share, "full control", False, False, 1),
        ]
    )
    kinds = dict(grants.group_by("resource_kind").len().rows())
    assert kinds == {"folder": 9, "share": 3}


def test_an_ordinary_reader_marks_what_it_could_not_read_incomplete(
    planted: Smbd, tmp_path: Path
) -> None:
    collection = collect(source(planted, tmp_path, READER))
    (unit,) = collection.units
    assert not unit.complete and not collection.complete
    assert unit.detail == (
        f"2 of 8 objects of \\\\{planted.address}\\data not read completely, first "
        f"\\\\{planted.address}\\data\\Hidden: open refused: STATUS_ACCESS_DENIED; "
        "the subtree below each is unknown"
    )
    folders = collection.table("resources").filter(pl.col("family") == "folder")
    readable = dict(folders.select("name", "readable").rows())
    assert readable["Hidden"] is False and readable["Sealed"] is True
    assert "Inner" not in readable  # below an unlistable folder: unknown, not empty
    hidden = collection.table("grants").filter(pl.col("resource_id") == _id("Hidden", planted))
    assert hidden.height == 0  # unreadable: no entries recorded, and the resource says so


def test_trustee_sids_resolve_to_the_directory(planted: Smbd, tmp_path: Path) -> None:
    accounts = conform(
        pl.DataFrame({"source": ["ad:x"], "account_id": ["kim"], "sid": [KIM], "username": ["kw"]}),
        ACCOUNTS_SCHEMA,
    )
    groups = conform(
        pl.DataFrame(
            {"source": ["ad:x"] * 3, "group_id": ["wmpi", "wkops", "da"],
             "sid": [WMPI, WKOPS, DA], "name": ["WMP Intel", "WK Ops", "Domain Admins"]}
        ),
        GROUPS_SCHEMA,
    )  # fmt: skip
    resolved = resolve_principals(collect(source(planted, tmp_path, ADMIN)), accounts, groups)
    principals = set(resolved.table("grants")["principal_id"])
    assert principals == {"kim", "wmpi", "wkops", "da", "S-1-1-0"}


def test_bad_input_is_one_line_naming_it(planted: Smbd, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as err:
        collect(source(planted, tmp_path, ADMIN, shares=["nosuch"]))
    assert str(err.value) == (
        f"source fs1: share \\\\{planted.address}\\nosuch: no such share "
        "(check the share name in `shares`)"
    )
    (tmp_path / "pw").write_text("wrong")
    bad = source(planted, tmp_path, READER)
    (tmp_path / "pw").write_text("wrong")
    with pytest.raises(AuthError, match="refused the session for nobody: NT status 0xC000006D"):
        collect(bad)


def test_a_null_share_descriptor_is_not_readable() -> None:
    # NetrShareGetInfo level 502 with every pointer null but the info, reserved 0 (Samba's
    # answer to a caller that may not read share permissions), WERROR 0
    stub = bytes.fromhex("f601000000000200") + bytes(4 * 10) + bytes(4)
    assert parse_response(stub) is None
