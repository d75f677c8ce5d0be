"""Exchange Online mailbox permissions: the admin's ``Export-Csv`` files to ``resources`` (one
row per mailbox, family ``mailbox``) and ``grants`` (resource kind ``mailbox``).

The exports and what each row becomes (the commands are in the README, "Mailbox permissions"):

* ``Get-EXOMailbox`` (the inventory, required): one resource per mailbox, ``path`` its primary
  SMTP address, ``subject_id`` its user principal name (the pipeline resolves it to the
  directory account the mailbox belongs to), ``object_class`` its RecipientTypeDetails
  (``SharedMailbox``, ``UserMailbox`` ...). Its ``GrantSendOnBehalfTo`` values become
  ``SendOnBehalf`` grants.
* ``Get-EXOMailboxPermission``: one grant per right of ``AccessRights`` (``FullAccess``,
  ``ReadPermission`` ...), ``Deny`` and ``IsInherited`` kept.
* ``Get-EXORecipientPermission``: ``SendAs`` (``AccessControlType`` Deny is a deny).
* ``Get-EXOMailboxFolderPermission``: ``Folder <FolderName>: <right>`` per right; the
  ``Default`` and ``Anonymous`` entries are the folder's defaults for everyone, not a trustee.

Mailboxes are named in the permission exports by whatever ``Identity`` the cmdlet printed (name,
alias, display name, address, GUID, ``<mailbox>:\\<folder>`` for folders); each is resolved
against the inventory, and a name that is not in it (or is ambiguous there) is an
:class:`~accessaudit.errors.InputFileError` naming ``file:line``: a permission on a mailbox the
inventory does not hold would be a silently wrong resource. Trustees (``User``, ``Trustee``,
``GrantSendOnBehalfTo``) that name a mailbox of the inventory become its UPN; others are kept as
written (lower-cased): a UPN, an address, a SID of a deleted account, a group's name. The
pipeline resolves them to directory objects (:mod:`accessaudit.analysis.principals`).
``NT AUTHORITY\\SELF`` (the mailbox's own account) is not a grant.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import polars as pl

from accessaudit.config.datasources import ExchangeSource
from accessaudit.connectors.exchange.pscsv import LINE, Export, read_export, require
from accessaudit.connectors.exchange.pscsv import type_name_cells as refuse_type_names
from accessaudit.errors import InputFileError
from accessaudit.model import (
    GRANTS_SCHEMA,
    LAST_LOGON,
    RESOURCES_SCHEMA,
    CollectionUnit,
    ResourceKind,
    Signal,
    SourceCollection,
    conform,
)

MAILBOX_COLUMNS: Final = ("DisplayName", "PrimarySmtpAddress", "UserPrincipalName")
#: Inventory columns that name a mailbox, most specific first (a lower rank wins a tie).
_KEY_COLUMNS: Final = (
    ("Guid", 0),
    ("ExternalDirectoryObjectId", 0),
    ("DistinguishedName", 0),
    ("PrimarySmtpAddress", 0),
    ("UserPrincipalName", 0),
    ("Identity", 1),
    ("Name", 1),
    ("Alias", 1),
    ("DisplayName", 2),
)
PERMISSION_COLUMNS: Final = ("Identity", "User", "AccessRights", "IsInherited", "Deny")
RECIPIENT_COLUMNS: Final = ("Identity", "Trustee", "AccessControlType", "AccessRights")
FOLDER_COLUMNS: Final = ("Identity", "FolderName", "User", "AccessRights")
SELF: Final = "nt authority\\self"
#: Folder permission entries that stand for everyone (or no one), not a trustee.
FOLDER_DEFAULTS: Final = ("default", "anonymous")
_NOT_BOOL: Final = "%s is neither True nor False"
_INHERITED: Final = _NOT_BOOL % "IsInherited"


def collect(cfg: ExchangeSource, *, now: datetime | None = None) -> SourceCollection:
    """Read the configured exports into mailbox resources and grants."""
    started = now or datetime.now(UTC)
    source = f"exchange:{cfg.name}"
    inventory = read_export(cfg.mailboxes, "Get-EXOMailbox", delimiter=cfg.delimiter)
    require(inventory, "Get-EXOMailbox", MAILBOX_COLUMNS)
    refuse_type_names(inventory, ("GrantSendOnBehalfTo", *MAILBOX_COLUMNS))
    mailboxes = _mailboxes(inventory)
    keys = _keys(inventory, mailboxes)
    units = [_unit("mailboxes", inventory)]
    parts = [_send_on_behalf(inventory, mailboxes, keys)]
    exports = (
        (cfg.mailbox_permissions, "Get-EXOMailboxPermission", PERMISSION_COLUMNS, _permissions),
        (cfg.recipient_permissions, "Get-EXORecipientPermission", RECIPIENT_COLUMNS, _send_as),
        (cfg.folder_permissions, "Get-EXOMailboxFolderPermission", FOLDER_COLUMNS, _folders),
    )
    for path, what, columns, build in exports:
        if path is None:
            continue
        export = read_export(path, what, delimiter=cfg.delimiter)
        require(export, what, columns)
        refuse_type_names(export, ("AccessRights", "User", "Trustee", "Identity"))
        parts.append(build(export, keys))
        units.append(_unit(what, export))
    grants = (
        pl.concat(parts, how="diagonal_relaxed")
        .with_columns(
            source=pl.lit(source),
            resource_kind=pl.lit(ResourceKind.MAILBOX.value),
        )
        .filter(pl.col("principal_id").str.to_lowercase() != SELF)
        .unique(["principal_id", "resource_id", "right", "deny", "inherited"], keep="first")
        .sort("resource_id", "principal_id", "right", "deny")
        .drop("trustee")
    )
    resources = mailboxes.with_columns(source=pl.lit(source)).drop(LINE)
    return SourceCollection(
        source=source,
        kind="exchange",
        started=started,
        finished=now or datetime.now(UTC),
        tables={
            "resources": conform(resources, RESOURCES_SCHEMA),
            "grants": conform(grants, GRANTS_SCHEMA),
        },
        units=units,
        signals={LAST_LOGON: Signal(False, "mailbox exports carry no sign-ins")},
    )


def _unit(what: str, export: Export) -> CollectionUnit:
    n = export.rows.height
    return CollectionUnit(what, True, f"{n} rows read from {export.path}", n)


def _text(column: str) -> pl.Expr:
    """A cell trimmed; empty -> null."""
    value = pl.col(column).str.strip_chars()
    return pl.when(value != "").then(value).otherwise(None)


def _key(expr: pl.Expr) -> pl.Expr:
    return expr.str.strip_chars().str.to_lowercase()


def _mailboxes(inventory: Export) -> pl.DataFrame:
    rows = inventory.rows
    ident = [c for c in ("Guid", "ExternalDirectoryObjectId") if c in rows.columns]
    rid = pl.coalesce(*(_key(_text(c)) for c in ident), _key(_text("PrimarySmtpAddress")))
    kind = _text("RecipientTypeDetails") if "RecipientTypeDetails" in rows.columns else None
    out = rows.select(
        LINE,
        resource_id=pl.lit("mailbox:") + rid,
        family=pl.lit("mailbox"),
        object_class=kind if kind is not None else pl.lit("Mailbox"),
        name=pl.coalesce(_text("DisplayName"), _text("PrimarySmtpAddress")),
        path=_key(_text("PrimarySmtpAddress")),
        subject_id=_key(_text("UserPrincipalName")),
        readable=pl.lit(True),
    )
    bad = out.filter(pl.col("resource_id").is_null() | pl.col("path").is_null()).head(1)
    if bad.height:
        raise InputFileError(
            f"{inventory.path}:{bad[LINE][0]}: a mailbox without PrimarySmtpAddress",
            "export the mailboxes again with the command in the README",
        )
    dup = out.filter(pl.col("resource_id").is_duplicated()).sort(LINE).head(2)
    if dup.height:
        raise InputFileError(
            f"{inventory.path}:{dup[LINE][1]}: mailbox {dup['path'][1]} is listed twice "
            f"(first on line {dup[LINE][0]})",
            "export the mailboxes once, without appending to an older file",
        )
    return out


def _keys(inventory: Export, mailboxes: pl.DataFrame) -> pl.DataFrame:
    """Every name of a mailbox (lower-cased) -> its resource id and UPN, where it is unique at
    its best rank; a name two mailboxes share at that rank maps to null (ambiguous)."""
    rows = inventory.rows.join(mailboxes.select(LINE, "resource_id", "subject_id"), on=LINE)
    parts = [
        rows.select(key=_key(_text(col)), rank=pl.lit(rank), rid="resource_id", upn="subject_id")
        for col, rank in _KEY_COLUMNS
        if col in rows.columns
    ]
    return (
        pl.concat(parts)
        .filter(pl.col("key").is_not_null())
        .unique()
        .filter(pl.col("rank") == pl.col("rank").min().over("key"))
        .group_by("key")
        .agg(rid=pl.col("rid").first(), upn=pl.col("upn").first(), n=pl.col("rid").n_unique())
        .select(
            "key",
            rid=pl.when(pl.col("n") == 1).then("rid"),
            upn=pl.when(pl.col("n") == 1).then("upn"),
        )
    )


def _resolve_trustees(frame: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """``trustee`` trimmed, and ``trustee_upn``: the UPN of the mailbox it names, if any."""
    return (
        frame.with_columns(trustee=pl.col("trustee").str.strip_chars())
        .with_columns(_tkey=pl.col("trustee").str.to_lowercase())
        .join(keys.select(_tkey="key", trustee_upn="upn"), on="_tkey", how="left")
        .drop("_tkey")
    )


def _resolve_mailbox(export: Export, frame: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """``resource_id`` of each row's ``mailbox`` text; a name not in the inventory is an error."""
    joined = frame.with_columns(mailbox=_key(pl.col("mailbox"))).join(
        keys.select(mailbox="key", resource_id="rid", _known=pl.lit(True)),
        on="mailbox",
        how="left",
    )
    bad = joined.filter(pl.col("resource_id").is_null()).sort(LINE).head(1)
    if bad.height:
        name = bad["mailbox"][0]
        why = "is not in" if bad["_known"][0] is None else "names two mailboxes of"
        raise InputFileError(
            f"{export.path}:{bad[LINE][0]}: mailbox {str(name)[:120]!r} {why} the mailboxes export",
            "export the mailboxes and their permissions at the same time, with the commands "
            "in the README",
        )
    return joined.drop("mailbox", "_known")


def _rights(column: str) -> pl.Expr:
    """``FullAccess``, ``FullAccess;ReadPermission``, ``{FullAccess, ReadPermission}`` -> list."""
    return (
        pl.col(column)
        .str.strip_chars()
        .str.strip_chars("{}")
        .str.split(";")
        .list.eval(pl.element().str.split(","))
        .list.eval(pl.element().explode().str.strip_chars())
        .list.eval(pl.element().filter(pl.element() != ""))
    )


def _bool(export: Export, column: str) -> pl.Expr:
    if column not in export.rows.columns:
        return pl.lit(False)
    value = pl.col(column).str.strip_chars().str.to_lowercase()
    return pl.when(value == "true").then(True).when(value.is_in(["false", ""])).then(False)


def _check_bools(export: Export, frame: pl.DataFrame, columns: dict[str, str]) -> None:
    """Refuse the first row whose flag (our column -> the export's column and its two
    values) is neither."""
    for column, told in columns.items():
        bad = frame.filter(pl.col(column).is_null()).head(1)
        if bad.height:
            raise InputFileError(f"{export.path}:{bad[LINE][0]}: {told}")


def _finish(export: Export, frame: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    resolved = _resolve_trustees(_resolve_mailbox(export, frame, keys), keys)
    exploded = resolved.explode("right").filter(pl.col("right").is_not_null())
    return exploded.select(
        "resource_id",
        principal_id=pl.coalesce("trustee_upn", "trustee"),
        trustee="trustee",
        right="right",
        deny="deny",
        inherited="inherited",
    )


def _permissions(export: Export, keys: pl.DataFrame) -> pl.DataFrame:
    frame = export.rows.select(
        LINE,
        mailbox=pl.col("Identity"),
        trustee=pl.col("User"),
        right=_rights("AccessRights"),
        deny=_bool(export, "Deny"),
        inherited=_bool(export, "IsInherited"),
    )
    _check_bools(export, frame, {"deny": _NOT_BOOL % "Deny", "inherited": _INHERITED})
    return _finish(export, frame, keys)


def _send_as(export: Export, keys: pl.DataFrame) -> pl.DataFrame:
    control = pl.col("AccessControlType").str.strip_chars().str.to_lowercase()
    frame = export.rows.select(
        LINE,
        mailbox=pl.col("Identity"),
        trustee=pl.col("Trustee"),
        right=_rights("AccessRights"),
        deny=pl.when(control == "deny").then(True).when(control == "allow").then(False),
        inherited=_bool(export, "IsInherited"),
    )
    told = "AccessControlType is neither Allow nor Deny"
    _check_bools(export, frame, {"deny": told, "inherited": _INHERITED})
    return _finish(export, frame, keys)


def _folders(export: Export, keys: pl.DataFrame) -> pl.DataFrame:
    folder = pl.col("FolderName").str.strip_chars()
    frame = (
        export.rows.select(
            LINE,
            mailbox=pl.col("Identity").str.split(":\\").list.first(),
            trustee=pl.col("User"),
            right=_rights("AccessRights").list.eval(
                pl.lit("Folder ") + folder.first() + pl.lit(": ") + pl.element()
            ),
            folder=folder,
            deny=pl.lit(False),
            inherited=pl.lit(False),
        )
        .filter(~_key(pl.col("trustee")).is_in(FOLDER_DEFAULTS))
        .filter(
            ~pl.col("right").list.eval(pl.element().str.ends_with(": None")).list.all()
            | (pl.col("right").list.len() == 0)
        )
    )
    return _finish(export, frame.drop("folder"), keys)


def _send_on_behalf(inventory: Export, mailboxes: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    if "GrantSendOnBehalfTo" not in inventory.rows.columns:
        return pl.DataFrame(schema={"resource_id": pl.String, "principal_id": pl.String})
    frame = (
        inventory.rows.select(LINE, trustee=_rights("GrantSendOnBehalfTo"))
        .join(mailboxes.select(LINE, "resource_id"), on=LINE)
        .explode("trustee")
        .filter(pl.col("trustee").is_not_null())
        .with_columns(right=pl.lit("SendOnBehalf"), deny=pl.lit(False), inherited=pl.lit(False))
    )
    resolved = _resolve_trustees(frame, keys)
    return resolved.select(
        "resource_id",
        principal_id=pl.coalesce("trustee_upn", "trustee"),
        trustee="trustee",
        right="right",
        deny="deny",
        inherited="inherited",
    )
