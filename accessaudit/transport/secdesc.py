"""Windows security descriptors (self-relative, binary) as plain data: owner, control, DACL.

Shared by the AD connector (``nTSecurityDescriptor`` read with the SD-flags control) and the
SMB connector (NTFS folder and share descriptors). The parsing is winacl's
(``SECURITY_DESCRIPTOR.from_bytes``: object ACEs, ACL revisions 2, 3 and 4); the masks and
flags are ours, from [MS-DTYP] and ADS_RIGHTS_ENUM, because winacl's ``ADS_ACCESS_MASK``
holds the *mapped* generic values and its ``ACCESS_MASK.GENERIC_WRITE`` is 0x4000000 (a digit
short of 0x40000000). Nothing here is specific to one kind of object: the names of AD rights,
attributes and classes (the GUIDs of object ACEs) are in :mod:`accessaudit.transport.adschema`.

Layout ([MS-DTYP] 2.4.6): a 20-byte header (revision, Sbz1, control, then the offsets of
owner, group, SACL and DACL; offset 0 = absent), each ACL an 8-byte header and AceCount ACEs
(2.4.5), each ACE a 4-byte header (type, flags, size) then mask, [object flags, object type,
inherited object type] and the trustee SID (2.4.4.x). GUIDs are stored "bytes_le".

:func:`parse` gives one :class:`Descriptor`; :func:`parse_many` gives two polars frames for a
whole search (one row per descriptor, one row per DACL entry, in stored order: Samba keeps the
order ACEs were written in, not the canonical one, and access checks walk the stored order).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import polars as pl
from winacl.dtyp.security_descriptor import SECURITY_DESCRIPTOR

# --- ACE types ([MS-DTYP] 2.4.4.1) --------------------------------------------------------------
ACCESS_ALLOWED: Final = 0x00
ACCESS_DENIED: Final = 0x01
SYSTEM_AUDIT: Final = 0x02
ACCESS_ALLOWED_OBJECT: Final = 0x05
ACCESS_DENIED_OBJECT: Final = 0x06
ACCESS_ALLOWED_CALLBACK: Final = 0x09
ACCESS_DENIED_CALLBACK: Final = 0x0A
ACCESS_ALLOWED_CALLBACK_OBJECT: Final = 0x0B
ACCESS_DENIED_CALLBACK_OBJECT: Final = 0x0C
#: Types that grant (allow) and that refuse (deny) access; any other type in a DACL is ignored
#: by an access check (audit and label types belong in the SACL).
ALLOW_TYPES: Final = frozenset(
    {ACCESS_ALLOWED, ACCESS_ALLOWED_OBJECT, ACCESS_ALLOWED_CALLBACK, ACCESS_ALLOWED_CALLBACK_OBJECT}
)
DENY_TYPES: Final = frozenset(
    {ACCESS_DENIED, ACCESS_DENIED_OBJECT, ACCESS_DENIED_CALLBACK, ACCESS_DENIED_CALLBACK_OBJECT}
)
OBJECT_TYPES: Final = frozenset(
    {
        ACCESS_ALLOWED_OBJECT,
        ACCESS_DENIED_OBJECT,
        0x07,
        0x08,
        ACCESS_ALLOWED_CALLBACK_OBJECT,
        ACCESS_DENIED_CALLBACK_OBJECT,
        0x0F,
        0x10,
    }
)

# --- ACE flags ([MS-DTYP] 2.4.4.1) --------------------------------------------------------------
OBJECT_INHERIT: Final = 0x01  # OI
CONTAINER_INHERIT: Final = 0x02  # CI
NO_PROPAGATE_INHERIT: Final = 0x04  # NP
INHERIT_ONLY: Final = 0x08  # IO: applies to children only, not to the object it is on
INHERITED: Final = 0x10  # ID: copied from a parent, not set here

# --- Descriptor control ([MS-DTYP] 2.4.6, ADS_SD_CONTROL_ENUM) ---------------------------------
SE_DACL_PRESENT: Final = 0x0004
SE_DACL_AUTO_INHERITED: Final = 0x0400
SE_DACL_PROTECTED: Final = 0x1000
SE_SELF_RELATIVE: Final = 0x8000

# --- Access mask: standard and generic bits ([MS-DTYP] 2.4.3) ----------------------------------
DELETE: Final = 0x00010000
READ_CONTROL: Final = 0x00020000
WRITE_DAC: Final = 0x00040000
WRITE_OWNER: Final = 0x00080000
SYNCHRONIZE: Final = 0x00100000
ACCESS_SYSTEM_SECURITY: Final = 0x01000000
GENERIC_ALL: Final = 0x10000000
GENERIC_EXECUTE: Final = 0x20000000
GENERIC_WRITE: Final = 0x40000000
GENERIC_READ: Final = 0x80000000

# --- Access mask: directory-service bits (ADS_RIGHTS_ENUM; learn.microsoft.com/windows/win32/
# api/iads/ne-iads-ads_rights_enum), with their SDDL letters ---------------------------------
DS_CREATE_CHILD: Final = 0x0001  # CC
DS_DELETE_CHILD: Final = 0x0002  # DC
DS_LIST: Final = 0x0004  # LC
DS_SELF: Final = 0x0008  # SW: validated write
DS_READ_PROP: Final = 0x0010  # RP
DS_WRITE_PROP: Final = 0x0020  # WP
DS_DELETE_TREE: Final = 0x0040  # DT
DS_LIST_OBJECT: Final = 0x0080  # LO
DS_CONTROL_ACCESS: Final = 0x0100  # CR: extended right


@dataclass(frozen=True)
class GenericMapping:
    """What each generic bit means for one kind of object ([MS-DTYP] 2.4.3)."""

    read: int
    write: int
    execute: int
    all: int

    def map(self, mask: int) -> int:
        """``mask`` with its generic bits replaced by the specific rights they stand for."""
        out = mask & ~(GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL)
        if mask & GENERIC_READ:
            out |= self.read
        if mask & GENERIC_WRITE:
            out |= self.write
        if mask & GENERIC_EXECUTE:
            out |= self.execute
        if mask & GENERIC_ALL:
            out |= self.all
        return out

    def expr(self, mask: pl.Expr) -> pl.Expr:
        """:meth:`map` for a column of masks (Int64)."""
        generic = GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL
        out = mask & ~generic
        for bit, value in (
            (GENERIC_READ, self.read),
            (GENERIC_WRITE, self.write),
            (GENERIC_EXECUTE, self.execute),
            (GENERIC_ALL, self.all),
        ):
            out = out | pl.when((mask & bit) != 0).then(pl.lit(value, pl.Int64)).otherwise(0)
        return out


#: Active Directory objects: a stored ``GA`` becomes 0xF01FF (RPWPCRCCDCLCLORCWOWDSDDTSW) on
#: the object, while an inherit-only copy keeps the raw 0x10000000 ([MS-ADTS] 5.1.3.1; measured
#: on Samba 4.17).
DS_MAPPING: Final = GenericMapping(read=0x20094, write=0x20028, execute=0x20004, all=0xF01FF)
#: Files and folders ([MS-DTYP] 2.4.3; FILE_GENERIC_READ/WRITE/EXECUTE, FILE_ALL_ACCESS).
FILE_MAPPING: Final = GenericMapping(read=0x120089, write=0x120116, execute=0x1200A0, all=0x1F01FF)


@dataclass(frozen=True)
class Ace:
    """One access control entry, as stored."""

    ace_type: int  # the raw AceType (0x00 allowed, 0x01 denied, 0x05 allowed object, ...)
    flags: int  # AceFlags (OI CI NP IO ID ...)
    mask: int  # the access mask as stored (generic bits not mapped)
    object_type: str | None  # object ACEs: a right, property, property set or class GUID
    inherited_object_type: str | None  # object ACEs: the class of child this applies to
    trustee: str  # S-1-...

    @property
    def allow(self) -> bool:
        return self.ace_type in ALLOW_TYPES

    @property
    def deny(self) -> bool:
        return self.ace_type in DENY_TYPES

    @property
    def is_object(self) -> bool:
        return self.ace_type in OBJECT_TYPES

    @property
    def inherited(self) -> bool:
        return bool(self.flags & INHERITED)

    @property
    def inherit_only(self) -> bool:
        return bool(self.flags & INHERIT_ONLY)


@dataclass(frozen=True)
class Descriptor:
    """A parsed descriptor: ``dacl`` is None when no DACL is present (or a NULL DACL), which
    grants everyone everything; an empty tuple is a DACL that grants nothing."""

    owner: str | None
    group: str | None
    control: int
    dacl: tuple[Ace, ...] | None
    dacl_revision: int | None


class DescriptorError(ValueError):
    """The bytes are not a self-relative security descriptor this module can read."""


def _guid(value: Any) -> str | None:
    return None if value is None else str(value).lower()


def _ace(raw: Any) -> Ace:
    object_type = inherited = None
    if raw.AceType.value in OBJECT_TYPES:
        object_type = _guid(getattr(raw, "ObjectType", None))
        inherited = _guid(getattr(raw, "InheritedObjectType", None))
    return Ace(
        ace_type=raw.AceType.value,
        flags=int(raw.AceFlags),
        mask=int(raw.Mask),
        object_type=object_type,
        inherited_object_type=inherited,
        trustee=str(raw.Sid),
    )


def parse(raw: bytes) -> Descriptor:
    """One self-relative descriptor; :class:`DescriptorError` when it cannot be read."""
    if len(raw) < 20 or raw[0] != 1:
        raise DescriptorError(f"not a self-relative security descriptor ({len(raw)} bytes)")
    try:
        sd = SECURITY_DESCRIPTOR.from_bytes(raw)
        control = int(sd.Control)
        present = bool(control & SE_DACL_PRESENT) and sd.Dacl is not None
        dacl = tuple(_ace(a) for a in sd.Dacl.aces) if present else None
        return Descriptor(
            owner=None if sd.Owner is None else str(sd.Owner),
            group=None if sd.Group is None else str(sd.Group),
            control=control,
            dacl=dacl,
            dacl_revision=int(sd.Dacl.AclRevision) if present else None,
        )
    except DescriptorError:
        raise
    except Exception as exc:  # winacl raises bare Exception for an unknown ACE type
        raise DescriptorError(f"unreadable security descriptor: {str(exc)[:120]}") from None


#: :func:`parse_many`'s frame of descriptors: ``i`` is the position in the input.
HEADERS_SCHEMA: Final = pl.Schema(
    {
        "i": pl.UInt32(),
        "readable": pl.Boolean(),  # false: no bytes came back, or they could not be parsed
        "error": pl.String(),  # why not, when not readable
        "owner_sid": pl.String(),
        "group_sid": pl.String(),
        "control": pl.Int64(),
        "dacl_present": pl.Boolean(),
        "protected": pl.Boolean(),  # SE_DACL_PROTECTED: inheritance blocked here
    }
)
#: :func:`parse_many`'s frame of DACL entries, one row per ACE in stored order (``seq``).
ACE_ROWS_SCHEMA: Final = pl.Schema(
    {
        "i": pl.UInt32(),
        "seq": pl.Int32(),
        "ace_type": pl.Int32(),
        "allow": pl.Boolean(),
        "deny": pl.Boolean(),
        "object_ace": pl.Boolean(),
        "flags": pl.Int32(),
        "mask": pl.Int64(),
        "object_type": pl.String(),
        "inherited_object_type": pl.String(),
        "trustee": pl.String(),
    }
)


class _Walker:
    """The DACL entries of many descriptors, read with ``struct`` (the same layout winacl
    reads, [MS-DTYP] 2.4.4-2.4.6): about ten times faster than building winacl's objects, with
    each distinct SID and GUID decoded once (a domain's descriptors repeat a few dozen)."""

    def __init__(self) -> None:
        self.sids: dict[bytes, str] = {}
        self.guids: dict[bytes, str] = {}

    def sid(self, raw: bytes, at: int) -> tuple[str, int]:
        """The SID at ``at`` and its length."""
        if at + 8 > len(raw):
            raise DescriptorError("SID beyond the end of the descriptor")
        size = 8 + 4 * raw[at + 1]
        key = raw[at : at + size]
        if len(key) != size:
            raise DescriptorError("SID beyond the end of the descriptor")
        text = self.sids.get(key)
        if text is None:
            subs = struct.unpack_from(f"<{raw[at + 1]}I", raw, at + 8)
            authority = int.from_bytes(raw[at + 2 : at + 8], "big")
            text = "-".join(["S", str(raw[at]), str(authority), *map(str, subs)])
            self.sids[key] = text
        return text, size

    def guid(self, raw: bytes, at: int) -> str:
        key = raw[at : at + 16]
        if len(key) != 16:
            raise DescriptorError("object type beyond the end of the descriptor")
        text = self.guids.get(key)
        if text is None:
            text = self.guids[key] = str(uuid.UUID(bytes_le=key))
        return text

    def header(self, raw: bytes) -> tuple[int, str | None, str | None, int]:
        """(control, owner, group, DACL offset: 0 for none)."""
        if len(raw) < 20 or raw[0] != 1:
            raise DescriptorError(f"not a self-relative security descriptor ({len(raw)} bytes)")
        _, _, control, o_owner, o_group, _, o_dacl = struct.unpack_from("<BBHIIII", raw, 0)
        owner = self.sid(raw, o_owner)[0] if o_owner else None
        group = self.sid(raw, o_group)[0] if o_group else None
        return control, owner, group, o_dacl if control & SE_DACL_PRESENT else 0

    def entries(self, raw: bytes, at: int, i: int, rows: dict[str, list[Any]]) -> None:
        """Append the DACL at ``at`` to ``rows`` (ACE_ROWS_SCHEMA columns) as descriptor ``i``."""
        if at + 8 > len(raw):
            raise DescriptorError("DACL beyond the end of the descriptor")
        count = struct.unpack_from("<H", raw, at + 4)[0]
        pos = at + 8
        for seq in range(count):
            if pos + 8 > len(raw):
                raise DescriptorError(f"ACE {seq} beyond the end of the descriptor")
            ace_type, flags, size = struct.unpack_from("<BBH", raw, pos)
            mask = struct.unpack_from("<I", raw, pos + 4)[0]
            ot = iot = None
            body = pos + 8
            if ace_type in OBJECT_TYPES:
                present = struct.unpack_from("<I", raw, body)[0]
                body += 4
                if present & 1:
                    ot, body = self.guid(raw, body), body + 16
                if present & 2:
                    iot, body = self.guid(raw, body), body + 16
            trustee, _ = self.sid(raw, body)
            if size < 8:
                raise DescriptorError(f"ACE {seq} of {size} bytes")
            pos += size
            rows["i"].append(i)
            rows["seq"].append(seq)
            rows["ace_type"].append(ace_type)
            rows["allow"].append(ace_type in ALLOW_TYPES)
            rows["deny"].append(ace_type in DENY_TYPES)
            rows["object_ace"].append(ace_type in OBJECT_TYPES)
            rows["flags"].append(flags)
            rows["mask"].append(mask)
            rows["object_type"].append(ot)
            rows["inherited_object_type"].append(iot)
            rows["trustee"].append(trustee)


def parse_many(raws: Sequence[bytes | None]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Descriptors of a whole search: (headers, entries), see :data:`HEADERS_SCHEMA` and
    :data:`ACE_ROWS_SCHEMA`. ``None`` (the server sent no descriptor) and bytes that cannot be
    parsed are rows with ``readable`` false and the reason, never an empty DACL.

    Read by :class:`_Walker`; the tests hold it equal to :func:`parse` (winacl's reading) and
    to Samba's own decoding."""
    head: dict[str, list[Any]] = {name: [] for name in HEADERS_SCHEMA.names()}
    rows: dict[str, list[Any]] = {name: [] for name in ACE_ROWS_SCHEMA.names()}
    walker = _Walker()
    for i, raw in enumerate(raws):
        error = None
        control: int | None = None
        owner = group = None
        at = 0
        if raw is None:
            error = "no descriptor returned (no READ_CONTROL for the reader)"
        else:
            mark = len(rows["i"])
            try:
                control, owner, group, at = walker.header(raw)
                if at:
                    walker.entries(raw, at, i, rows)
            except (DescriptorError, struct.error) as exc:
                for column in rows.values():  # the entries of a descriptor read part-way
                    del column[mark:]
                control, error = None, str(exc)
        head["i"].append(i)
        head["readable"].append(error is None)
        head["error"].append(error)
        head["owner_sid"].append(owner)
        head["group_sid"].append(group)
        head["control"].append(control)
        head["dacl_present"].append(None if control is None else at != 0)
        head["protected"].append(None if control is None else bool(control & SE_DACL_PROTECTED))
    return (
        pl.DataFrame(head, schema=HEADERS_SCHEMA),
        pl.DataFrame(rows, schema=ACE_ROWS_SCHEMA),
    )
