"""SMB2/3 reads with smbprotocol: one session, one tree per share, one round trip per folder.

smbprotocol has no call for a security descriptor (research: control-and-data-paths §3.2), so
each folder is read with one *related compound* ([MS-SMB2] 3.2.4.1.4): CREATE (FILE_OPEN of a
directory with FILE_LIST_DIRECTORY | READ_CONTROL | FILE_READ_ATTRIBUTES), QUERY_INFO
(SMB2_0_INFO_SECURITY, OWNER | GROUP | DACL: [MS-SMB2] 3.2.4.12), two QUERY_DIRECTORY (the second
proves the listing ended with STATUS_NO_MORE_FILES) and CLOSE. A folder whose listing needs more
than one page is listed again on an open handle until STATUS_NO_MORE_FILES.

When the CREATE is refused (no FILE_LIST_DIRECTORY) the folder is opened again with READ_CONTROL
only: its descriptor may still be readable, but its children are unknown and the walk marks that
subtree incomplete. Signing is always required; encryption is required when configured and used
whenever the server offers it (SMB 3).
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import Any, Final

from smbprotocol.connection import Connection
from smbprotocol.exceptions import SMBException, SMBResponseException
from smbprotocol.file_info import FileAttributes, FileInformationClass, InfoType
from smbprotocol.header import NtStatus
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    DirectoryAccessMask,
    ImpersonationLevel,
    Open,
    ShareAccess,
    SMB2QueryInfoRequest,
    SMB2QueryInfoResponse,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from accessaudit.errors import AuthError, ConnectError, SourceError

OWNER_GROUP_DACL: Final = 0x1 | 0x2 | 0x4
LIST: Final = (
    DirectoryAccessMask.FILE_LIST_DIRECTORY
    | DirectoryAccessMask.READ_CONTROL
    | DirectoryAccessMask.FILE_READ_ATTRIBUTES
)
DIRECTORY: Final = FileAttributes.FILE_ATTRIBUTE_DIRECTORY
SHARE_ALL: Final = ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE
SHARE_ALL_D: Final = SHARE_ALL | ShareAccess.FILE_SHARE_DELETE
PAGE: Final = 65536
#: NT status names of the failures a walk records per folder (MS-ERREF 2.3.1).
STATUS_NAMES: Final = {
    NtStatus.STATUS_ACCESS_DENIED: "STATUS_ACCESS_DENIED",
    NtStatus.STATUS_OBJECT_NAME_NOT_FOUND: "STATUS_OBJECT_NAME_NOT_FOUND",
    NtStatus.STATUS_OBJECT_PATH_NOT_FOUND: "STATUS_OBJECT_PATH_NOT_FOUND",
}


@dataclass
class Folder:
    """What one folder read gave: its descriptor (None = not readable) and its children."""

    descriptor: bytes | None
    children: list[tuple[str, bool]] | None  # (name, is a directory); None = not listed
    error: str | None = None  # why the descriptor or the listing is missing


def status_name(exc: SMBResponseException) -> str:
    return STATUS_NAMES.get(exc.status, f"NT status 0x{exc.status:08X}")


class SmbReader:
    """A signed (and, where the server can, encrypted) session to one server."""

    def __init__(
        self,
        server: str,
        port: int,
        username: str,
        password: str,
        *,
        require_encryption: bool,
        timeout: float,
        name: str,
    ) -> None:
        self.name = name
        self.server = server
        self.timeout = timeout
        self.connection = Connection(uuid.uuid4(), server, port, require_signing=True)
        try:
            self.connection.connect(timeout=int(timeout))
        except (OSError, SMBException, ValueError) as exc:
            raise ConnectError(
                f"{name}: cannot reach SMB server {server}:{port}: {_short(exc)}",
                "check `server` and `port`, and that TCP 445 is open from this host",
            ) from None
        self.encrypted = bool(self.connection.supports_encryption)
        self.session = Session(
            self.connection,
            username,
            password,
            require_encryption=self.encrypted or require_encryption,
            auth_protocol="ntlm",
        )
        try:
            self.session.connect()
        except SMBResponseException as exc:
            self.connection.disconnect(True)
            raise AuthError(
                f"{name}: {server} refused the session for {username}: {status_name(exc)}",
                "check `username` and the password reference",
            ) from None
        except SMBException as exc:
            self.connection.disconnect(True)
            raise AuthError(f"{name}: session to {server} failed: {_short(exc)}") from None

    def close(self) -> None:
        with contextlib.suppress(OSError, SMBException):
            self.connection.disconnect(True)

    def tree(self, share: str) -> TreeConnect:
        tree = TreeConnect(self.session, rf"\\{self.server}\{share}")
        try:
            tree.connect()
        except SMBResponseException as exc:
            missing = exc.status == NtStatus.STATUS_BAD_NETWORK_NAME
            hint = (
                "check the share name in `shares`"
                if missing
                else "the account needs at least read access to the share"
            )
            why = "no such share" if missing else status_name(exc)
            raise SourceError(
                f"{self.name}: share \\\\{self.server}\\{share}: {why}", hint
            ) from None
        return tree

    def _send(self, tree: TreeConnect, messages: list[Any]) -> list[Any]:
        sid, tid = self.session.session_id, tree.tree_connect_id
        return list(self.connection.send_compound(messages, sid, tid, related=True))

    def folder(self, tree: TreeConnect, path: str) -> Folder:
        """One folder's descriptor and children, in one round trip when it fits one page."""
        return self.folders(tree, [path])[0]

    def folders(self, tree: TreeConnect, paths: list[str]) -> list[Folder]:
        """Several folders, their compounds all sent before the first answer is read (the
        server works on the next while we parse one; Samba grants credits for many)."""
        out: list[Folder] = []
        while len(out) < len(paths):
            window = self.connection.sequence_window
            free = int(window["high"]) - int(window["low"])
            # 5 credits a folder, 10 kept for a refused folder's second open
            n = max(1, min(len(paths) - len(out), (free - 10) // 5))
            chunk = paths[len(out) : len(out) + n]
            sent = [(path, self._send_folder(tree, path)) for path in chunk]
            out += [self._receive_folder(tree, path, pending) for path, pending in sent]
        return out

    def _send_folder(self, tree: TreeConnect, path: str) -> list[tuple[Any, Any]]:
        handle = Open(tree, path)
        create = handle.create(
            ImpersonationLevel.Impersonation,
            LIST,
            DIRECTORY,
            SHARE_ALL_D,
            CreateDisposition.FILE_OPEN,
            CreateOptions.FILE_DIRECTORY_FILE,
            send=False,
        )
        info = FileInformationClass.FILE_DIRECTORY_INFORMATION
        first = handle.query_directory("*", info, max_output=PAGE, send=False)
        second = handle.query_directory("*", info, max_output=PAGE, send=False)
        close = handle.close(send=False)
        messages = [create, (_security_query(handle.file_id), None), first, second, close]
        requests = self._send(tree, [m for m, _ in messages])
        return [(request, unpack) for request, (_, unpack) in zip(requests, messages, strict=True)]

    def _receive_folder(
        self, tree: TreeConnect, path: str, pending: list[tuple[Any, Any]]
    ) -> Folder:
        outcome: list[Any] = []
        for request, unpack in pending:
            try:
                outcome.append(
                    _unpack_security(self.connection, request) if unpack is None
                    else unpack(request)
                )  # fmt: skip
            except SMBResponseException as exc:
                outcome.append(exc)
        opened, descriptor, page1, page2, _ = outcome
        if isinstance(opened, SMBResponseException):
            return self._descriptor_only(tree, path, status_name(opened))
        sd = None if isinstance(descriptor, SMBResponseException) else descriptor
        if isinstance(page1, SMBResponseException):
            if page1.status != NtStatus.STATUS_NO_MORE_FILES:
                return Folder(sd, None, f"listing refused: {status_name(page1)}")
            page1 = []
        entries = list(page1)
        if not isinstance(page2, SMBResponseException):  # more than one page: list again
            entries = self._list_all(tree, path)
        elif page2.status != NtStatus.STATUS_NO_MORE_FILES:
            return Folder(sd, None, f"listing refused: {status_name(page2)}")
        return Folder(sd, _children(entries), None if sd is not None else "no descriptor")

    def file_descriptor(self, tree: TreeConnect, path: str) -> Folder:
        """A file's descriptor (READ_CONTROL only), no children."""
        return self._descriptor_only(tree, path, "", directory=False)

    def _descriptor_only(
        self, tree: TreeConnect, path: str, why: str, *, directory: bool = True
    ) -> Folder:
        handle = Open(tree, path)
        create = handle.create(
            ImpersonationLevel.Impersonation,
            DirectoryAccessMask.READ_CONTROL,
            DIRECTORY if directory else FileAttributes.FILE_ATTRIBUTE_NORMAL,
            SHARE_ALL_D,
            CreateDisposition.FILE_OPEN,
            CreateOptions.FILE_DIRECTORY_FILE
            if directory
            else CreateOptions.FILE_NON_DIRECTORY_FILE,
            send=False,
        )
        close = handle.close(send=False)
        requests = self._send(tree, [create[0], _security_query(handle.file_id), close[0]])
        result: list[Any] = []
        for request, unpack in zip(requests, (create[1], None, close[1]), strict=True):
            try:
                value = (
                    _unpack_security(self.connection, request) if unpack is None
                    else unpack(request)
                )  # fmt: skip
                result.append(value)
            except SMBResponseException as exc:
                result.append(exc)
        sd = result[1] if isinstance(result[1], bytes) else None
        if not directory:
            error = None if sd is not None else "no descriptor"
            if isinstance(result[0], SMBResponseException):
                error = f"open refused: {status_name(result[0])}"
            return Folder(sd, [], error)
        return Folder(sd, None, f"open refused: {why}")

    def _list_all(self, tree: TreeConnect, path: str) -> list[Any]:
        handle = Open(tree, path)
        handle.create(
            ImpersonationLevel.Impersonation,
            DirectoryAccessMask.FILE_LIST_DIRECTORY,
            DIRECTORY,
            SHARE_ALL_D,
            CreateDisposition.FILE_OPEN,
            CreateOptions.FILE_DIRECTORY_FILE,
        )
        entries: list[Any] = []
        try:
            while True:
                try:
                    entries += handle.query_directory(
                        "*", FileInformationClass.FILE_DIRECTORY_INFORMATION, max_output=PAGE
                    )
                except SMBResponseException as exc:
                    if exc.status == NtStatus.STATUS_NO_MORE_FILES:
                        return entries
                    raise
        finally:
            handle.close()


def _security_query(file_id: bytes) -> SMB2QueryInfoRequest:
    request = SMB2QueryInfoRequest()
    request["info_type"] = InfoType.SMB2_0_INFO_SECURITY
    request["file_info_class"] = 0
    request["output_buffer_length"] = PAGE
    request["additional_information"] = OWNER_GROUP_DACL
    request["file_id"] = file_id
    return request


def _unpack_security(connection: Connection, request: Any) -> bytes:
    response = connection.receive(request)
    answer = SMB2QueryInfoResponse()
    answer.unpack(response["data"].get_value())
    return bytes(answer["buffer"].get_value())


def _children(entries: list[Any]) -> list[tuple[str, bool]]:
    out = []
    for entry in entries:
        name = entry["file_name"].get_value().decode("utf-16-le")
        if name in (".", ".."):
            continue
        attributes = entry["file_attributes"].get_value()
        out.append((name, bool(attributes & FileAttributes.FILE_ATTRIBUTE_DIRECTORY)))
    return out


def _short(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:160]
