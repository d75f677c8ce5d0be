"""The compiled BER walk (:mod:`.ber`), the Arrow hand-over (:mod:`.arrowc`) and the columns
they fill, on bytes built here (no server): exact values against the truth built with them,
and every corruption of an entry either decoded within its bounds or refused as malformed."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest
from support.ber import tlv

from accessaudit.connectors.ldap import arrowc
from accessaudit.connectors.ldap.columns import Columns
from accessaudit.connectors.ldap.wire import MalformedResponse, _decode

MSGID = 7


def entry(dn: bytes, attrs: list[tuple[bytes, list[bytes]]], msgid: int = MSGID) -> bytes:
    partial = [tlv(0x30, tlv(0x04, t), tlv(0x31, *(tlv(0x04, v) for v in vs))) for t, vs in attrs]
    return tlv(0x30, tlv(0x02, bytes([msgid])), tlv(0x64, tlv(0x04, dn), tlv(0x30, *partial)))


def done(msgid: int = MSGID) -> bytes:
    return tlv(0x30, tlv(0x02, bytes([msgid])), tlv(0x65, b"\x0a\x01\x00\x04\x00\x04\x00"))


def test_random_entries_decode_to_exactly_what_was_sent() -> None:
    rng = random.Random(20)
    names = ["uid", "member", "objectGUID"]
    truth: dict[str, list[tuple[int, bytes]]] = {n: [] for n in names}
    dns: list[str] = []
    stream = b""
    for i in range(300):
        attrs = []
        for name in rng.sample([*names, "ignored"], rng.randint(0, 4)):
            values = [rng.randbytes(rng.choice([0, 1, 16, 200, 70_000])) for _ in range(3)]
            values = values[: rng.randint(1, 3)]
            wire_name = name.upper() if rng.random() < 0.3 else name  # any spelling
            attrs.append((wire_name.encode(), values))
            if name != "ignored":
                truth[name] += [(i, v) for v in values]
        dns.append(f"cn=e{i},dc=x")
        stream += entry(dns[-1].encode(), attrs)
    stream += done()
    cols = Columns(names)
    used, others = _decode(stream, MSGID, cols)
    assert (used, len(others), cols.n) == (len(stream), 1, 300)
    assert cols.dn.to_list() == dns
    for name in names:
        assert cols.exploded(name).rows() == truth[name]


def test_a_batch_cut_anywhere_decodes_the_same() -> None:
    stream = b"".join(entry(f"cn={i}".encode(), [(b"uid", [b"x" * i])]) for i in range(200))
    for cut in (1, 2, 3, 150, 1000, len(stream) - 1):
        cols = Columns(["uid"])
        used, _ = _decode(stream[:cut], MSGID, cols)
        rest, _ = _decode(stream[used:], MSGID, cols)
        assert used + rest == len(stream)
        assert cols.exploded("uid").get_column("v").to_list() == [b"x" * i for i in range(200)]


def test_every_corrupted_byte_is_decoded_in_bounds_or_refused() -> None:
    good = entry(b"cn=a,dc=x", [(b"uid", [b"abc", b"d" * 300]), (b"mail", [b"m"])])
    stream = good + entry(b"cn=b", [(b"uid", [b"e"])])
    for pos in range(len(good)):
        for byte in (0x00, 0x01, 0x7F, 0x80, 0x81, 0x84, 0x85, 0xFF):
            bad = bytearray(stream)
            bad[pos] = byte
            cols = Columns(["uid", "mail"])
            try:
                used, _ = _decode(bytes(bad), MSGID, cols)
            except MalformedResponse:
                continue
            assert 0 <= used <= len(bad)
            for name in ("uid", "mail"):
                for v in cols.exploded(name).get_column("v").to_list():
                    assert v in bytes(bad)  # a value is always a piece of what was sent


def test_a_length_of_more_than_four_bytes_is_refused() -> None:
    with pytest.raises(MalformedResponse, match="BER length of 9 bytes"):
        _decode(b"\x30\x89" + b"\x01" * 20, MSGID, Columns(["uid"]))


def test_rollback_reaches_into_values_already_flushed() -> None:
    cols = Columns(["uid"])
    _decode(entry(b"cn=a", [(b"uid", [b"1", b"2"])]), MSGID, cols)
    cols.flush()  # as the reader does while the server is quiet
    _decode(entry(b"cn=b", [(b"uid", [b"3"])]), MSGID, cols)
    cols.flush()
    _decode(entry(b"cn=c", [(b"uid", [b"4"])]), MSGID, cols)
    cols.rollback(1)
    assert (cols.n, cols.dn.to_list()) == (1, ["cn=a"])
    assert cols.exploded("uid").rows() == [(0, b"1"), (0, b"2")]


def test_page_digest_covers_the_dns_of_one_page() -> None:
    cols = Columns(["uid"])
    page = entry(b"cn=a", []) + entry(b"cn=b", [])
    _decode(page, MSGID, cols)
    first = cols.page_digest()
    _decode(page, MSGID, cols)
    assert cols.page_digest() == first
    _decode(entry(b"cn=ab", []), MSGID, cols)  # the same bytes run together: another page
    assert cols.page_digest() != first


def test_the_same_page_has_the_same_digest_however_it_arrives() -> None:
    """A server replaying a page (a cookie loop) is caught the first time: the digest is of the
    DNs, not of where they sat in the reads (another message id, other read boundaries)."""
    cols = Columns(["uid"])
    a, b = entry(b"cn=a", [(b"uid", [b"1"])]), entry(b"cn=b", [])
    _decode(a + b, MSGID, cols)  # one read
    first = cols.page_digest()
    other = MSGID + 200  # the replay: another (longer) message id, and two reads
    _decode(entry(b"cn=a", [(b"uid", [b"1"])], other), other, cols)
    _decode(entry(b"cn=b", [], other), other, cols)
    assert cols.n == 4
    assert cols.page_digest() == first


def test_arrow_binary_round_trip() -> None:
    data = np.frombuffer(b"abcdef", np.uint8)
    s = arrowc.binary("v", np.array([0, 1, 1, 6]), data)
    assert s.dtype == pl.Binary
    assert (s.name, s.to_list()) == ("v", [b"a", b"", b"bcdef"])
    assert arrowc.binary("v", np.array([0]), np.zeros(0, np.uint8)).to_list() == []
    big = np.frombuffer(bytes(range(256)) * 1000, np.uint8)
    offsets = np.arange(0, len(big) + 1, 64)
    s = arrowc.binary("v", offsets, big)
    del big
    assert s[999] == (bytes(range(256)) * 1000)[999 * 64 : 1000 * 64]


@pytest.mark.parametrize("offsets", [[1, 2], [0, 7], [0, 3, 2]])
def test_arrow_binary_refuses_offsets_outside_the_data(offsets: list[int]) -> None:
    with pytest.raises(ValueError, match="offsets do not describe"):
        arrowc.binary("v", np.array(offsets), np.frombuffer(b"abcdef", np.uint8))
