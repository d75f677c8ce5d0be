"""Exchange Online exports, written here exactly as ``Export-Csv`` writes them (Windows
PowerShell 5.1: ``#TYPE`` line, every field quoted; PowerShell 7: no type line, UTF-8 without a
BOM, ``-UseQuotes AsNeeded``), read into mailbox resources and grants and resolved to the
accounts of a directory built here."""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from accessaudit.analysis.principals import resolve_principals
from accessaudit.config.datasources import ExchangeSource
from accessaudit.connectors.exchange.collect import collect
from accessaudit.errors import InputFileError
from accessaudit.model import ACCOUNTS_SCHEMA, GROUPS_SCHEMA, conform

NOW = datetime(2026, 11, 1, tzinfo=UTC)
SHARED_GUID = "5d1f3c2a-0000-4000-8000-00000000a001"
ALICE_GUID = "5d1f3c2a-0000-4000-8000-00000000a002"


def ps51(path: Path, type_name: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    """Windows PowerShell 5.1 ``Export-Csv -Encoding UTF8``: BOM, ``#TYPE``, all quoted, CRLF."""

    def line(cells: Sequence[str]) -> str:
        return ",".join('"' + c.replace('"', '""') + '"' for c in cells)

    text = "\r\n".join([f"#TYPE {type_name}", line(header), *(line(r) for r in rows)]) + "\r\n"
    path.write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    return path


def ps7(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    """PowerShell 7 ``Export-Csv -UseQuotes AsNeeded``: UTF-8 without BOM, no type line, LF."""

    def cell(c: str) -> str:
        return '"' + c.replace('"', '""') + '"' if any(x in c for x in ',"\n') else c

    text = "\n".join(",".join(cell(c) for c in r) for r in [header, *rows]) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


MAILBOX_HEADER = [
    "Identity", "Name", "Alias", "DisplayName", "PrimarySmtpAddress", "UserPrincipalName",
    "RecipientTypeDetails", "ExternalDirectoryObjectId", "Guid", "GrantSendOnBehalfTo",
]  # fmt: skip
MAILBOXES = [
    ["Intel Desk", "Intel Desk", "inteldesk", "WMP Intel Desk", "intel.desk@westmercia.police.uk",
     "intel.desk@westmercia.police.uk", "SharedMailbox", "e1", SHARED_GUID, "Kim Ward;alice"],
    ["alice", "alice", "alice", "Alice Price", "alice@westmercia.police.uk",
     "alice@westmercia.police.uk", "UserMailbox", "e2", ALICE_GUID, ""],
]  # fmt: skip


def directory() -> tuple[pl.DataFrame, pl.DataFrame]:
    accounts = conform(
        pl.DataFrame(
            {
                "source": ["ad:x"] * 4,
                "account_id": ["a-alice", "a-kim", "a-intel", "a-bob"],
                "sid": [
                    "S-1-5-21-1-2-3-1101",
                    "S-1-5-21-1-2-3-1102",
                    "S-1-5-21-1-2-3-1103",
                    "S-1-5-21-1-2-3-1104",
                ],
                "username": ["alice", "kward", "inteldesk", "bob"],
                "upn": [
                    "alice@westmercia.police.uk",
                    "kim.ward@warwickshire.police.uk",
                    "intel.desk@westmercia.police.uk",
                    "bob@westmercia.police.uk",
                ],
                "display_name": ["Alice Price", "Kim Ward", "WMP Intel Desk", "Bob Stone"],
                "mail": [None, "kim.ward@warwickshire.pnn.police.uk", None, None],
            }
        ),
        ACCOUNTS_SCHEMA,
    )
    groups = conform(
        pl.DataFrame(
            {
                "source": ["ad:x"],
                "group_id": ["g-ops"],
                "sid": ["S-1-5-21-1-2-3-2001"],
                "name": ["WK Ops"],
            }
        ),
        GROUPS_SCHEMA,
    )
    return accounts, groups


@pytest.fixture
def exports(tmp_path: Path) -> ExchangeSource:
    ps51(
        tmp_path / "mailboxes.csv",
        "Selected.Microsoft.Exchange.Management.RestApiClient.EXOMailbox",
        MAILBOX_HEADER,
        MAILBOXES,
    )
    ps51(
        tmp_path / "perm.csv",
        "Selected.Microsoft.Exchange.Management.RestApiClient.ExoMailboxPermission",
        ["Identity", "User", "AccessRights", "IsInherited", "Deny"],
        [
            ["Intel Desk", "NT AUTHORITY\\SELF", "FullAccess;ReadPermission", "False", "False"],
            ["Intel Desk", "kim.ward@warwickshire.police.uk", "FullAccess", "False", "False"],
            ["Intel Desk", "WK Ops", "FullAccess, ReadPermission", "False", "False"],
            ["inteldesk", "bob@westmercia.police.uk", "FullAccess", "False", "True"],
            ["alice@westmercia.police.uk", "S-1-5-21-9-9-9-5000", "FullAccess", "True", "False"],
        ],
    )
    ps7(
        tmp_path / "sendas.csv",
        ["Identity", "Trustee", "AccessControlType", "AccessRights", "IsInherited"],
        [["WMP Intel Desk", "kim.ward@warwickshire.pnn.police.uk", "Allow", "SendAs", "False"]],
    )
    ps7(
        tmp_path / "folders.csv",
        ["Identity", "FolderName", "User", "AccessRights"],
        [
            ["alice@westmercia.police.uk:\\Calendar", "Calendar", "Default", "AvailabilityOnly"],
            ["alice@westmercia.police.uk:\\Calendar", "Calendar", "Anonymous", "None"],
            ["alice@westmercia.police.uk:\\Calendar", "Calendar", "Kim Ward", "Editor"],
        ],
    )
    return ExchangeSource(
        kind="exchange",
        name="exo",
        mailboxes=tmp_path / "mailboxes.csv",
        mailbox_permissions=tmp_path / "perm.csv",
        recipient_permissions=tmp_path / "sendas.csv",
        folder_permissions=tmp_path / "folders.csv",
    )


def test_exports_become_mailboxes_and_grants_resolved_to_accounts(exports: ExchangeSource) -> None:
    collection = collect(exports, now=NOW)
    resolved = resolve_principals(collection, *directory())
    resources = resolved.table("resources").sort("resource_id")
    assert resources.select("resource_id", "object_class", "name", "path", "subject_id").rows() == [
        (f"mailbox:{SHARED_GUID}", "SharedMailbox", "WMP Intel Desk",
         "intel.desk@westmercia.police.uk", "a-intel"),
        (f"mailbox:{ALICE_GUID}", "UserMailbox", "Alice Price", "alice@westmercia.police.uk",
         "a-alice"),
    ]  # fmt: skip
    assert set(resources["family"]) == {"mailbox"} and set(resources["source"]) == {"exchange:exo"}
    shared, alice = f"mailbox:{SHARED_GUID}", f"mailbox:{ALICE_GUID}"
    grants = resolved.table("grants").sort("resource_id", "principal_id", "right", "deny")
    assert grants.select("principal_id", "resource_id", "right", "deny", "inherited").rows() == [
        ("a-alice", shared, "SendOnBehalf", False, False),
        ("a-bob", shared, "FullAccess", True, False),
        ("a-kim", shared, "FullAccess", False, False),
        ("a-kim", shared, "SendAs", False, False),
        ("a-kim", shared, "SendOnBehalf", False, False),
        ("g-ops", shared, "FullAccess", False, False),
        ("g-ops", shared, "ReadPermission", False, False),
        ("S-1-5-21-9-9-9-5000", alice, "FullAccess", False, True),
        ("a-kim", alice, "Folder Calendar: Editor", False, False),
    ]
    assert set(grants["resource_kind"]) == {"mailbox"}
    units = {u.name: (u.complete, u.count) for u in resolved.units}
    assert units == {
        "mailboxes": (True, 2),
        "Get-EXOMailboxPermission": (True, 5),
        "Get-EXORecipientPermission": (True, 1),
        "Get-EXOMailboxFolderPermission": (True, 3),
        "principals": (True, 4),
    }


def _rewrite(path: Path, old: str, new: str) -> None:
    path.write_bytes(path.read_bytes().replace(old.encode(), new.encode()))


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "perm.csv",
            '"FullAccess;ReadPermission"',
            '"System.Collections.ArrayList"',
            "perm.csv:3: AccessRights is the .NET type name 'System.Collections.ArrayList', "
            "not its values",
        ),
        (
            "mailboxes.csv",
            '"Kim Ward;alice"',
            '"Microsoft.Exchange.Data.MultiValuedProperty`1[Microsoft.Exchange.Data.Directory.'
            'ADObjectId]"',
            "mailboxes.csv:3: GrantSendOnBehalfTo is the .NET type name",
        ),
        (
            "perm.csv",
            '"inteldesk","bob',
            '"Old Desk","bob',
            "perm.csv:6: mailbox 'old desk' is not in the mailboxes export",
        ),
        ("perm.csv", '"True","False"', '"Yes","False"', "perm.csv:7: IsInherited is neither"),
        (
            "perm.csv",
            '"WK Ops",',
            '"WK Ops","x",',
            "perm.csv:5: row has 6 fields, the header has 5",
        ),
        (
            "sendas.csv",
            "Allow",
            "Maybe",
            "sendas.csv:2: AccessControlType is neither Allow nor Deny",
        ),
        ("sendas.csv", "Trustee", "Grantee", "sendas.csv:1: no column(s) Trustee"),
        ("perm.csv", '"WK Ops"', '"WK \xe9Ops"', ""),
    ],
)
def test_bad_exports_are_one_line_errors_at_file_and_line(
    exports: ExchangeSource, file: str, old: str, new: str, message: str
) -> None:
    path = exports.mailboxes.parent / file
    before = path.read_bytes()
    _rewrite(path, old, new)
    assert path.read_bytes() != before
    if not message:  # a UTF-8 export with non-ASCII text is fine
        assert collect(exports, now=NOW).table("grants").height == 9
        return
    with pytest.raises(InputFileError) as err:
        collect(exports, now=NOW)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(str(path.parent) + "/")
    assert message in text


def test_ascii_and_utf16_exports_and_a_bad_byte(exports: ExchangeSource) -> None:
    path = exports.recipient_permissions
    assert path is not None
    text = path.read_text(encoding="utf-8")
    path.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert collect(exports, now=NOW).table("grants").height == 9
    path.write_bytes(text.encode("ascii").replace(b"SendAs", b"Send\xffAs"))
    with pytest.raises(InputFileError, match=r"sendas.csv:2: byte\(s\) ff are not valid utf-8"):
        collect(exports, now=NOW)


def test_a_mailbox_name_two_mailboxes_share_is_refused(exports: ExchangeSource) -> None:
    _rewrite(exports.mailboxes, '"Alice Price"', '"WMP Intel Desk"')
    ps51(
        exports.mailbox_permissions or Path(),
        "x",
        ["Identity", "User", "AccessRights", "IsInherited", "Deny"],
        [["Intel Desk", "bob", "FullAccess", "False", "False"]] * 2
        + [["WMP Intel Desk", "bob", "FullAccess", "False", "False"]],
    )
    with pytest.raises(InputFileError, match=r"perm\.csv:5: mailbox 'wmp intel desk' names two"):
        collect(exports, now=NOW)
