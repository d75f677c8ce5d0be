"""Hand-built BER for the LDAP reader's tests (no server)."""

from __future__ import annotations


def tlv(tag: int, *parts: bytes) -> bytes:
    """A BER tag-length-value; the length in long form from 128 bytes on."""
    body = b"".join(parts)
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    k = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | k]) + n.to_bytes(k, "big") + body
