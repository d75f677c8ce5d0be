"""Security identifiers between their binary form on the wire and ``S-1-5-21-...`` text.

Shared by the LDAP connector (reading ``objectSid`` and ``sIDHistory``) and the AD writes of
``apply`` (removing a ``sIDHistory`` value by its bytes). Layout: [MS-DTYP] 2.4.2.2 — revision
(1 byte), sub-authority count (1 byte), identifier authority (6 bytes, big-endian), then that
many 32-bit little-endian sub-authorities.
"""

from __future__ import annotations

import struct

from accessaudit.errors import AuditError


def sid_to_str(raw: bytes) -> str:
    """Binary SID -> ``S-1-5-21-...``; ``ValueError`` when the bytes are not a SID."""
    if len(raw) < 8:
        raise ValueError("SID shorter than 8 bytes")
    revision, count = raw[0], raw[1]
    authority = int.from_bytes(raw[2:8], "big")
    if len(raw) != 8 + 4 * count:
        raise ValueError(f"SID of {len(raw)} bytes for {count} sub-authorities")
    subs = struct.unpack_from(f"<{count}I", raw, 8)
    return "-".join(["S", str(revision), str(authority), *map(str, subs)])


def sid_to_bytes(sid: str) -> bytes:
    """``S-1-5-21-...`` -> the binary SID, the inverse of :func:`sid_to_str`."""
    parts = sid.split("-")
    if len(parts) < 3 or parts[0].upper() != "S" or not all(p.isdigit() for p in parts[1:]):
        raise AuditError(f"not a SID: {sid!r}")
    subs = [int(p) for p in parts[3:]]
    return (
        struct.pack("<BB", int(parts[1]), len(subs))
        + int(parts[2]).to_bytes(6, "big")
        + struct.pack(f"<{len(subs)}I", *subs)
    )
