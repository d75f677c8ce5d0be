"""Share-level permissions: SRVSVC ``NetrShareGetInfo`` level 502 over the ``\\srvsvc`` pipe.

smbprotocol speaks no DCE/RPC, so this module writes the two PDUs it needs by hand
(C706 "DCE 1.1: Remote Procedure Call" ch. 12, connection-oriented PDUs; [MS-RPCE] 2.2.2;
NDR 1.1 little-endian): a BIND to the SRVSVC interface (4b324fc8-1670-01d3-1278-5a47bf6ee188
v3.0, transfer syntax NDR 8a885d04-1ceb-11c9-9fe8-08002b104860 v2) and one REQUEST of opnum 16
([MS-SRVS] 3.1.4.10 NetrShareGetInfo: ServerName ``[unique, string]``, NetName ``[string]``,
Level). The answer's SHARE_INFO_502_I ([MS-SRVS] 2.2.4.26) ends with ``shi502_reserved`` (the
descriptor's length) and ``shi502_security_descriptor``.

Windows documents levels 2, 502 and 503 for Administrators, Power Users, Print Operators and
Server Operators only; Samba answers anyone else with success and a **null descriptor**
(measured, research §3.2). Both a null descriptor and a refused call are "not readable"
(``None``), never "no entries".
"""

from __future__ import annotations

import struct
import uuid
from typing import Final

from smbprotocol.exceptions import SMBException, SMBResponseException
from smbprotocol.file_info import FileAttributes
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    Open,
    ShareAccess,
)

from accessaudit.connectors.smb.client import SmbReader

SRVSVC: Final = uuid.UUID("4b324fc8-1670-01d3-1278-5a47bf6ee188")
NDR: Final = uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860")
OPNUM_GET_INFO: Final = 16
LEVEL: Final = 502
FRAG: Final = 4280
BIND, BIND_ACK, REQUEST, RESPONSE, FAULT = 11, 12, 0, 2, 3


def _header(ptype: int, body: bytes, call_id: int) -> bytes:
    # version 5.0, PFC_FIRST_FRAG | PFC_LAST_FRAG, data representation little-endian/ASCII/IEEE
    return (
        struct.pack("<BBBB4sHHI", 5, 0, ptype, 0x03, b"\x10\0\0\0", 16 + len(body), 0, call_id)
        + body
    )


def bind_pdu() -> bytes:
    context = struct.pack("<HBB", 0, 1, 0) + SRVSVC.bytes_le + struct.pack("<HH", 3, 0)
    context += NDR.bytes_le + struct.pack("<I", 2)
    body = struct.pack("<HHIBBH", FRAG, FRAG, 0, 1, 0, 0) + context
    return _header(BIND, body, 1)


def _string(text: str) -> bytes:
    """An NDR conformant varying string of UTF-16 with its terminator, padded to 4."""
    chars = (text + "\0").encode("utf-16-le")
    n = len(chars) // 2
    data = struct.pack("<III", n, 0, n) + chars
    return data + b"\0" * (-len(data) % 4)


def request_pdu(server: str, share: str) -> bytes:
    stub = struct.pack("<I", 0x00020000) + _string(server) + _string(share)
    stub += struct.pack("<I", LEVEL)
    body = struct.pack("<IHH", len(stub), 0, OPNUM_GET_INFO) + stub
    return _header(REQUEST, body, 2)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u32(self) -> int:
        self.align()
        (value,) = struct.unpack_from("<I", self.data, self.pos)
        self.pos += 4
        return int(value)

    def align(self) -> None:
        self.pos += -self.pos % 4

    def string(self) -> str:
        _max, _offset, actual = self.u32(), self.u32(), self.u32()
        raw = self.data[self.pos : self.pos + 2 * actual]
        self.pos += 2 * actual
        return raw.decode("utf-16-le").rstrip("\0")

    def bytes_array(self) -> bytes:
        n = self.u32()
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        return raw


def parse_response(stub: bytes) -> bytes | None:
    """The descriptor of a NetrShareGetInfo level 502 answer; None when it is null or the call
    returned an error."""
    r = _Reader(stub)
    if r.u32() != LEVEL or r.u32() == 0:  # union discriminant, then the info pointer
        return None
    netname, _type, remark = r.u32(), r.u32(), r.u32()
    _perm, _max, _cur = r.u32(), r.u32(), r.u32()
    path, passwd, size, sd_ptr = r.u32(), r.u32(), r.u32(), r.u32()
    for pointer in (netname, remark, path, passwd):
        if pointer:
            r.string()
    descriptor = r.bytes_array() if sd_ptr and size else None
    if len(stub) - r.pos >= 4:
        r.align()
        if r.pos + 4 <= len(stub) and struct.unpack_from("<I", stub, r.pos)[0] != 0:
            return None  # WERROR
    return descriptor or None


def share_descriptor(reader: SmbReader, share: str) -> bytes | None:
    """The share's permissions as a self-relative descriptor, or None when not readable."""
    try:
        tree = reader.tree("IPC$")
    except Exception:  # an account that cannot reach IPC$ cannot read share permissions
        return None
    pipe = Open(tree, "srvsvc")
    try:
        pipe.create(
            ImpersonationLevel.Impersonation,
            FilePipePrinterAccessMask.FILE_READ_DATA | FilePipePrinterAccessMask.FILE_WRITE_DATA,
            FileAttributes.FILE_ATTRIBUTE_NORMAL,
            ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE,
            CreateDisposition.FILE_OPEN,
            CreateOptions.FILE_NON_DIRECTORY_FILE,
        )
    except (SMBResponseException, SMBException):
        return None
    try:
        pipe.write(bind_pdu(), 0)
        ack = pipe.read(0, FRAG)
        if len(ack) < 16 or ack[2] != BIND_ACK:
            return None
        pipe.write(request_pdu(f"\\\\{reader.server}", share), 0)
        answer = pipe.read(0, 65536)
        if len(answer) < 24 or answer[2] != RESPONSE:
            return None
        return parse_response(bytes(answer[24:]))
    except (SMBResponseException, SMBException, struct.error):
        return None
    finally:
        pipe.close()
