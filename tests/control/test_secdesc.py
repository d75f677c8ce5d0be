"""transport.secdesc: binary descriptors built here (truth known) and Samba's own encoder."""

from __future__ import annotations

import json
import random
import struct
import subprocess
import uuid
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accessaudit.transport import secdesc as sd
from accessaudit.transport.sid import sid_to_bytes

SIDS = st.one_of(
    st.sampled_from(["S-1-1-0", "S-1-3-0", "S-1-5-10", "S-1-5-18", "S-1-5-32-544", "S-1-5-9"]),
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(500, 99999)).map(
        lambda t: f"S-1-5-21-{t[0]}-{t[1]}-4242-{t[2]}"
    ),
)
GUIDS = st.one_of(st.none(), st.uuids().map(str))
ACES = st.tuples(
    st.sampled_from([0x00, 0x01, 0x05, 0x06]),
    st.integers(0, 0x1F),
    st.integers(0, 2**32 - 1),
    GUIDS,
    GUIDS,
    SIDS,
)


def _pack_ace(ace_type: int, flags: int, mask: int, ot: str | None, iot: str | None, sid: str):
    body = struct.pack("<I", mask)
    if ace_type in (0x05, 0x06):
        presence = (1 if ot else 0) | (2 if iot else 0)
        body += struct.pack("<I", presence)
        body += uuid.UUID(ot).bytes_le if ot else b""
        body += uuid.UUID(iot).bytes_le if iot else b""
    body += sid_to_bytes(sid)
    return struct.pack("<BBH", ace_type, flags, 4 + len(body)) + body


def _pack_sd(
    owner: str | None, aces: list[tuple[Any, ...]], control: int = 0x8004, revision: int = 4
) -> bytes:
    """A self-relative descriptor laid out owner, DACL (the offsets are followed, not assumed)."""
    owner_b = sid_to_bytes(owner) if owner else b""
    ace_b = b"".join(_pack_ace(*a) for a in aces)
    dacl = struct.pack("<BBHHH", revision, 0, 8 + len(ace_b), len(aces), 0) + ace_b
    o_off = 20 if owner else 0
    d_off = 20 + len(owner_b)
    return struct.pack("<BBHIIII", 1, 0, control, o_off, 0, 0, d_off) + owner_b + dacl


@settings(max_examples=150, deadline=None)
@given(owner=st.one_of(st.none(), SIDS), aces=st.lists(ACES, max_size=12))
def test_parse_matches_what_was_packed(owner, aces) -> None:
    raw = _pack_sd(owner, aces)
    got = sd.parse(raw)
    _same_as_parse_many(raw, got)
    assert got.owner == owner
    assert got.dacl is not None
    assert len(got.dacl) == len(aces)
    for ace, (t, flags, mask, ot, iot, sid) in zip(got.dacl, aces, strict=True):
        assert (ace.ace_type, ace.flags, ace.mask, ace.trustee) == (t, flags, mask, sid)
        obj = t in (0x05, 0x06)
        assert ace.object_type == (ot if obj else None)
        assert ace.inherited_object_type == (iot if obj else None)
        assert ace.allow == (t in (0x00, 0x05))
        assert ace.deny == (t in (0x01, 0x06))
        assert ace.inherited == bool(flags & 0x10)
        assert ace.inherit_only == bool(flags & 0x08)


def _same_as_parse_many(raw: bytes, got: sd.Descriptor) -> None:
    """The fast reading of parse_many equals winacl's (parse)."""
    heads, rows = sd.parse_many([raw])
    assert heads.row(0, named=True)["owner_sid"] == got.owner
    assert heads.row(0, named=True)["control"] == got.control
    assert heads.row(0, named=True)["dacl_present"] == (got.dacl is not None)
    want = [
        (a.ace_type, a.flags, a.mask, a.object_type, a.inherited_object_type, a.trustee)
        for a in got.dacl or ()
    ]
    assert rows.select("ace_type", "flags", "mask", "object_type", "inherited_object_type",
                       "trustee").rows() == want  # fmt: skip


def test_revision_3_file_acl_and_no_dacl() -> None:
    """smbcacls writes ACL revision 3; a descriptor without DACL_PRESENT has no DACL (None),
    which is not the same as an empty DACL (grants nothing)."""
    aces = [(0x00, 0x03, 0x1F01FF, None, None, "S-1-5-21-1-2-3-1105")]
    got = sd.parse(_pack_sd("S-1-5-18", aces, revision=3))
    assert got.dacl_revision == 3
    assert got.dacl == (sd.Ace(0, 3, 0x1F01FF, None, None, "S-1-5-21-1-2-3-1105"),)
    assert sd.parse(_pack_sd("S-1-5-18", [], control=0x8000)).dacl is None
    assert sd.parse(_pack_sd("S-1-5-18", [])).dacl == ()
    heads, rows = sd.parse_many(
        [_pack_sd("S-1-5-18", [], control=0x8000), _pack_sd("S-1-5-18", aces, revision=3)]
    )
    assert heads["dacl_present"].to_list() == [False, True] and rows.height == 1


def test_parse_many_keeps_unreadable_apart() -> None:
    good = _pack_sd("S-1-5-18", [(0x01, 0, 0x20000, None, None, "S-1-5-11")])
    heads, rows = sd.parse_many([good, None, b"\x01\x00garbage"])
    assert heads.get_column("readable").to_list() == [True, False, False]
    assert heads.get_column("error")[1] == "no descriptor returned (no READ_CONTROL for the reader)"
    assert str(heads.get_column("error")[2]).startswith("not a self-relative")
    assert rows.to_dicts() == [
        {
            "i": 0,
            "seq": 0,
            "ace_type": 1,
            "allow": False,
            "deny": True,
            "object_ace": False,
            "flags": 0,
            "mask": 0x20000,
            "object_type": None,
            "inherited_object_type": None,
            "trustee": "S-1-5-11",
        }
    ]


@pytest.mark.parametrize(
    ("mapping", "raw", "mapped"),
    [
        (sd.DS_MAPPING, sd.GENERIC_ALL, 0xF01FF),
        (sd.DS_MAPPING, sd.GENERIC_WRITE | sd.DS_CONTROL_ACCESS, 0x20128),
        (sd.DS_MAPPING, sd.GENERIC_READ | sd.GENERIC_EXECUTE, 0x20094),
        (sd.FILE_MAPPING, sd.GENERIC_ALL, 0x1F01FF),
        (sd.FILE_MAPPING, sd.GENERIC_WRITE, 0x120116),
        (sd.DS_MAPPING, 0xF01FF, 0xF01FF),
    ],
)
def test_generic_mapping(mapping, raw, mapped) -> None:
    assert mapping.map(raw) == mapped
    got = pl.select(mapping.expr(pl.lit(raw, pl.Int64))).item()
    assert got == mapped


_ORACLE = r"""
import json, sys
from samba.dcerpc import security
from samba.ndr import ndr_pack
dom = security.dom_sid("S-1-5-21-1-2-3")
out = []
for text in json.load(sys.stdin):
    d = security.descriptor.from_sddl(text, dom)
    aces = []
    for a in d.dacl.aces:
        ot = iot = None
        if a.type in (5, 6):
            if a.object.flags & 1:
                ot = str(a.object.type)
            if a.object.flags & 2:
                iot = str(a.object.inherited_type)
        aces.append([a.type, a.flags, a.access_mask, ot, iot, str(a.trustee)])
    out.append([ndr_pack(d).hex(), str(d.owner_sid), aces])
print(json.dumps(out))
"""


def _random_sddl(rng: random.Random) -> str:
    rights = ["GA", "RPWPCR", "WP", "CR", "SW", "CCDC", "RC", "WDWO", "0xf01ff", "LCRPLORC"]
    sids = ["AU", "DA", "SY", "CO", "PS", "S-1-5-21-1-2-3-1105", "S-1-5-21-9-9-9-512"]
    guids = ["", "bf9679c0-0de6-11d0-a285-00aa003049e2", "00299570-246d-11d0-a768-00aa006e0529"]
    classes = ["", "bf967aba-0de6-11d0-a285-00aa003049e2", "bf967a9c-0de6-11d0-a285-00aa003049e2"]
    aces = []
    for _ in range(rng.randint(0, 8)):
        kind = rng.choice(["A", "D", "OA", "OD"])
        flags = rng.choice(["", "CI", "CIIO", "CIID", "CIIOID", "OICI", "ID"])
        obj = kind.startswith("O")
        ot = rng.choice(guids) if obj else ""
        iot = rng.choice(classes) if obj else ""
        aces.append(f"({kind};{flags};{rng.choice(rights)};{ot};{iot};{rng.choice(sids)})")
    owner = rng.choice(["DA", "S-1-5-21-1-2-3-1106", "SY"])
    return f"O:{owner}D:AI" + "".join(aces)


def test_samba_encoder_as_oracle() -> None:
    """200 descriptors encoded by Samba's own NDR code (system python3-samba), decoded here
    into the same entries Samba decodes."""
    rng = random.Random(15)
    texts = [_random_sddl(rng) for _ in range(200)]
    try:
        proc = subprocess.run(
            ["/usr/bin/python3", "-c", _ORACLE],
            input=json.dumps(texts),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"python3-samba needed as the oracle (apt install python3-samba): {exc}")
    for blob, owner, aces in json.loads(proc.stdout):
        got = sd.parse(bytes.fromhex(blob))
        _same_as_parse_many(bytes.fromhex(blob), got)
        assert got.owner == owner
        assert got.dacl is not None
        assert [
            [a.ace_type, a.flags, a.mask, a.object_type, a.inherited_object_type, a.trustee]
            for a in got.dacl
        ] == aces


@settings(max_examples=300, deadline=None)
@given(
    owner=st.one_of(st.none(), SIDS),
    aces=st.lists(ACES, min_size=1, max_size=5),
    cut=st.integers(1, 400),
    noise=st.binary(max_size=8),
)
def test_cut_or_damaged_descriptors_are_unreadable_never_an_error(owner, aces, cut, noise) -> None:
    raw = _pack_sd(owner, aces)
    damaged = raw[: max(0, len(raw) - cut)] + noise
    heads, rows = sd.parse_many([damaged])
    row = heads.row(0, named=True)
    if not row["readable"]:
        assert row["error"] and rows.is_empty()
