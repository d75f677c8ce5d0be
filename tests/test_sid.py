"""SIDs between bytes and text ([MS-DTYP] 2.4.2.2), as the connector reads and apply writes them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accessaudit.errors import AuditError
from accessaudit.transport.sid import sid_to_bytes, sid_to_str

# S-1-5-21-1004336348-1177238915-682003330-512 (a domain's Domain Admins), bytes by hand
DOMAIN_ADMINS = (
    bytes([1, 5, 0, 0, 0, 0, 0, 5])
    + (21).to_bytes(4, "little")
    + (1004336348).to_bytes(4, "little")
    + (1177238915).to_bytes(4, "little")
    + (682003330).to_bytes(4, "little")
    + (512).to_bytes(4, "little")
)


def test_a_known_sid_both_ways() -> None:
    text = "S-1-5-21-1004336348-1177238915-682003330-512"
    assert sid_to_str(DOMAIN_ADMINS) == text
    assert sid_to_bytes(text) == DOMAIN_ADMINS


@given(
    st.integers(0, 255),
    st.integers(0, 2**48 - 1),
    st.lists(st.integers(0, 2**32 - 1), max_size=15),
)
def test_round_trip(revision: int, authority: int, subs: list[int]) -> None:
    text = "-".join(["S", str(revision), str(authority), *map(str, subs)])
    assert sid_to_str(sid_to_bytes(text)) == text


@pytest.mark.parametrize("raw", [b"", b"\x01\x05\x00\x00\x00\x00\x00", DOMAIN_ADMINS[:-1]])
def test_truncated_bytes_are_refused(raw: bytes) -> None:
    with pytest.raises(ValueError, match="SID"):
        sid_to_str(raw)


@pytest.mark.parametrize("text", ["", "S-1", "X-1-5-21", "S-1-5-x"])
def test_text_that_is_not_a_sid_is_refused(text: str) -> None:
    with pytest.raises(AuditError, match="not a SID"):
        sid_to_bytes(text)
