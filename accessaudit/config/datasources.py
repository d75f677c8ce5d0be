"""The ``[[sources]]`` of the hosted services' data paths: Exchange Online mailbox permission
exports (``kind = "exchange"``), Azure role assignments (``kind = "azure"``) and SMB file shares
(``kind = "smb"``). They are joined into :data:`accessaudit.config.sources.Source`.

None of them is a directory: their trustees are resolved against the directory sources of the
same run (UPN / SMTP address, Entra object id, SID).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from accessaudit.config.base import STRICT
from accessaudit.config.secrets import SecretRef


class _Model(BaseModel):
    model_config = STRICT


class ExchangeSource(_Model):
    """Exchange Online permissions as the admin's ``Export-Csv`` files (README: "Mailbox
    permissions"). ``mailboxes`` (``Get-EXOMailbox ... -Properties GrantSendOnBehalfTo``) is the
    inventory every other export is resolved against."""

    kind: Literal["exchange"]
    name: Annotated[str, Field(min_length=1)]
    mailboxes: Path  # Get-EXOMailbox -RecipientTypeDetails ... | Export-Csv
    mailbox_permissions: Path | None = None  # Get-EXOMailboxPermission
    recipient_permissions: Path | None = None  # Get-EXORecipientPermission (SendAs)
    folder_permissions: Path | None = None  # Get-EXOMailboxFolderPermission
    #: an Export-Csv -UseCulture file uses the locale's list separator (e.g. ";")
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","


class AzureSource(_Model):
    """Azure RBAC role assignments: through ARM with the app's msal credential (``tenant_id``,
    ``client_id`` and a secret or certificate, like an ``entra`` source), or from the output of
    ``az role assignment list --all --include-inherited -o json`` (``file``)."""

    kind: Literal["azure"]
    name: Annotated[str, Field(min_length=1)]
    tenant_id: str
    #: the ``az`` CLI's JSON output, read instead of calling ARM
    file: Path | None = None
    subscriptions: list[str] = []  # subscription ids to list (ARM)
    management_groups: list[str] = []  # management group ids to list (ARM)
    client_id: str | None = None
    authority_host: str = "https://login.microsoftonline.com"
    management_url: str = "https://management.azure.com"  # where ARM requests go
    #: the token's resource (audience): ``<resource>/.default`` is the msal scope
    resource: str = "https://management.azure.com"
    certificate_file: Path | None = None
    certificate_thumbprint: str | None = None
    certificate_passphrase_env: str | None = None
    certificate_passphrase_file: Path | None = None
    certificate_passphrase_keyring: str | None = None
    client_secret_env: str | None = None
    client_secret_file: Path | None = None
    client_secret_keyring: str | None = None
    ca_file: Path | None = None
    api_version: str = "2022-04-01"
    max_retries: Annotated[int, Field(ge=0, le=20)] = 6
    retry_backoff: Annotated[float, Field(gt=0, le=60)] = 1.0
    time_budget: Annotated[float, Field(gt=0)] = 3600.0
    timeout: Annotated[float, Field(gt=0)] = 60.0

    @field_validator("subscriptions", "management_groups")
    @classmethod
    def _ids(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item or "/" in item or "?" in item:
                raise ValueError(f"{item!r} is not an id (no '/' or '?')")
        return value


class SmbSource(_Model):
    """SMB2/3 file shares read with smbprotocol (NTLM; signing always, encryption where the
    server offers it): share permissions where readable, each folder's owner and DACL."""

    kind: Literal["smb"]
    name: Annotated[str, Field(min_length=1)]
    server: str  # host name or address
    port: Annotated[int, Field(ge=1, le=65535)] = 445
    shares: Annotated[list[str], Field(min_length=1)]
    username: str  # DOMAIN\user or user@domain
    password_env: str | None = None
    password_file: Path | None = None
    password_keyring: str | None = None
    depth: Annotated[int, Field(ge=0, le=64)] = 8  # folder levels below each share's root
    files: bool = False  # also read each file's descriptor
    require_encryption: bool = False  # refuse a server that cannot encrypt
    timeout: Annotated[float, Field(gt=0)] = 60.0

    @property
    def password(self) -> SecretRef | None:
        if not (self.password_env or self.password_file or self.password_keyring):
            return None
        return SecretRef(
            env=self.password_env, file=self.password_file, keyring=self.password_keyring
        )


#: The kinds of this module, as pydantic inserts them into an error's ``loc``.
DATA_SOURCE_KINDS = ("exchange", "azure", "smb")
