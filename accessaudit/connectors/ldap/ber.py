"""The BER walk of search responses, compiled (numba): offsets out, no Python object per value.

:mod:`.wire` reads the raw response bytes off ldap3's connection; :func:`walk` goes through the
complete LDAPMessages at the start of a batch of them and writes, for every value of a requested
attribute, four integers (attribute slot, entry number, offset and length of the value in the
batch) and for every entry the offset and length of its DN. The values themselves are cut out of
the batch later by polars, a page at a time (``bin.slice`` in :meth:`.columns.Columns.flush`):
the Python interpreter never touches a single value. This walk was 55% of a collection when it
ran in Python (~9 µs per entry of 11 attributes, benchmarks/README.md).

The SearchResultEntry walked ([RFC 4511] 4.5.2, BER definite lengths):
``30 len | 02 len msgid | 64 len | 04 len dn | 30 len { 30 len | 04 len type | 31 len {04 len
value}* }* [| a0 controls]``. Every offset is checked against the end of what holds it (the
message, the attribute list, the value set) before it is read: the server is not trusted, and a
compiled loop has no IndexError to fall back on. Anything that does not fit is reported as
malformed (:data:`MESSAGES`), and :mod:`.wire` ends the search with an error.

Attribute types are matched exactly as the server spells them against a small table (the
spellings seen so far, :attr:`.columns.Columns.slots`); on a spelling not in it the walk stops at
the start of that message and says which (:data:`UNKNOWN`), the caller decides its slot
(requested, unrequested, a partial range) in Python and walks on. Messages that are not entries
of this search (searchResDone, references, notices) are only located, for ldap3 to decode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

#: status codes of :func:`walk` (``state[0]``)
DONE, UNKNOWN = 0, 6
#: the malformed cases, by status code
MESSAGES = {
    1: "LDAPMessage expected, found tag 0x{aux:02x}",
    2: "messageID expected",
    3: "truncated searchResEntry",
    5: "attribute values overrun their set",
    7: "BER length of {aux} bytes",
}
#: slot of a partial range answer (``member;range=0-999``): kept aside, see Columns.RANGED
RANGED_SLOT = -2
_ENTRY = 0x64


def _compile(f: F) -> F:
    try:
        return cast(F, numba.njit(cache=True, nogil=True)(f))
    except RuntimeError:  # no writable cache location: compile in each process instead
        return cast(F, numba.njit(nogil=True)(f))


@_compile
def _length(b: np.ndarray, q: int, lim: int) -> tuple[int, int]:
    """The TLV whose tag is at ``b[q]``: (offset of its content, its length); (-1, 0) when the
    header or the content would run past ``lim``; (-2, k) for a length of more than 4 bytes."""
    if q + 2 > lim:
        return -1, 0
    ln = int(b[q + 1])
    q += 2
    if ln & 0x80:
        k = ln & 0x7F
        if k > 4:
            return -2, k
        if q + k > lim:
            return -1, 0
        ln = 0
        for j in range(k):
            ln = (ln << 8) | int(b[q + j])
        q += k
    if q + ln > lim:
        return -1, 0
    return q, ln


@_compile
def _type_index(b: np.ndarray, ts: int, tl: int, tblob: np.ndarray, toff: np.ndarray) -> int:
    """Which known spelling ``b[ts:ts + tl]`` is (its index), or the number of known ones."""
    ntypes: int = toff.shape[0] - 1
    for t in range(ntypes):
        if toff[t + 1] - toff[t] == tl:
            o = toff[t]
            j = 0
            while j < tl and tblob[o + j] == b[ts + j]:
                j += 1
            if j == tl:
                return t
    return ntypes


@_compile
def _attributes(
    b: np.ndarray,
    q: int,
    attrs_end: int,
    i: int,
    table: tuple[np.ndarray, np.ndarray, np.ndarray],
    vals: np.ndarray,
    nv: int,
    ranged: np.ndarray,
    nr: int,
) -> tuple[int, int, int, int, int]:
    """The PartialAttributes of entry ``i``, ``b[q:attrs_end]``, into ``vals`` and ``ranged``
    (rows from ``nv`` / ``nr``): (status, values, ranged, aux, aux2) as :func:`walk` says."""
    tblob, toff, tslot = table
    while q < attrs_end:
        q, ln = _length(b, q, attrs_end)  # PartialAttribute (30)
        if q < 0:
            return 3, nv, nr, 0, 0
        q, ln = _length(b, q, attrs_end)  # type (04)
        if q < 0:
            return 3, nv, nr, 0, 0
        t = _type_index(b, q, ln, tblob, toff)
        if t == tslot.shape[0]:
            return UNKNOWN, nv, nr, q, ln
        q, ln = _length(b, q + ln, attrs_end)  # vals (31)
        if q < 0:
            return 5, nv, nr, 0, 0
        set_end = q + ln
        slot = tslot[t]
        if slot == RANGED_SLOT:
            ranged[nr, 0] = i
            ranged[nr, 1] = t
            ranged[nr, 2] = q
            ranged[nr, 3] = set_end
            nr += 1
            q = set_end
        elif slot < 0:
            q = set_end
        while q < set_end:
            q, ln = _length(b, q, set_end)  # value (04)
            if q < 0:
                return 5, nv, nr, 0, 0
            vals[nv, 0] = slot
            vals[nv, 1] = i
            vals[nv, 2] = q
            vals[nv, 3] = ln
            nv += 1
            q += ln
    return 0, nv, nr, 0, 0


@_compile
def _message_id(b: np.ndarray, q: int, end: int) -> tuple[int, int]:
    """The messageID (02) at ``b[q]`` of a message ending at ``end``: (where the protocolOp
    starts, the id); (-1, 0) when it is not one."""
    if q + 2 > end or b[q] != 0x02:
        return -1, 0
    k = int(b[q + 1])
    if k > 8 or q + 2 + k >= end:
        return -1, 0
    mid = 0
    for j in range(k):
        mid = (mid << 8) | int(b[q + 2 + j])
    return q + 2 + k, mid


@_compile
def walk(
    b: np.ndarray,
    p: int,
    msgid: int,
    entry0: int,
    tblob: np.ndarray,
    toff: np.ndarray,
    tslot: np.ndarray,
    vals: np.ndarray,
    dns: np.ndarray,
    ranged: np.ndarray,
    others: np.ndarray,
    state: np.ndarray,
) -> None:
    """Walk the complete messages of ``b`` from offset ``p``.

    Outputs (rows used are counted in ``state``): ``vals[k] = (slot, entry, offset, length)``,
    ``dns[k] = (offset, length)``, ``ranged[k] = (entry, type index, set start, set end)``,
    ``others[k] = (start, end)``. ``state`` = [status, offset reached, values, entries, ranged,
    others, aux, aux2]: the offset reached is the end of the last message taken whole (a message
    not complete in ``b`` is left for the next batch); on :data:`UNKNOWN` it is the start of the
    message naming the unknown type at ``b[aux:aux + aux2]``, on a malformed message its start.
    Entries are numbered from ``entry0``. ``tblob[toff[t]:toff[t + 1]]`` is the t-th known type,
    ``tslot[t]`` its slot (-1 unrequested, -2 partial range).
    """
    n = b.shape[0]
    nv = nd = nr = no = 0
    status = aux = aux2 = 0
    while p + 2 <= n:
        if b[p] != 0x30:
            status, aux = 1, int(b[p])
            break
        q, ln = _length(b, p, n)
        if q == -2:
            status, aux = 7, ln
            break
        if q < 0:
            break  # the rest of this message has not arrived yet
        end = q + ln
        q, mid = _message_id(b, q, end)
        if q < 0:
            status = 2
            break
        if mid != msgid or b[q] != _ENTRY:
            others[no, 0] = p
            others[no, 1] = end
            no += 1
            p = end
            continue
        # searchResEntry (its end is the message's), objectName (04), attributes (30)
        q, ln = _length(b, q, end)
        dn, dn_len = _length(b, q, end) if q >= 0 else (-1, 0)
        q, ln = _length(b, dn + dn_len, end) if dn >= 0 else (-1, 0)
        if q < 0:
            status = 3
            break
        status, nv2, nr2, aux, aux2 = _attributes(
            b, q, q + ln, entry0 + nd, (tblob, toff, tslot), vals, nv, ranged, nr
        )
        if status != 0:
            break  # nothing of a message that is not taken whole: nv and nr stay
        dns[nd, 0] = dn
        dns[nd, 1] = dn_len
        nv, nr = nv2, nr2
        nd += 1
        p = end
    state[0] = status
    state[1] = p
    state[2] = nv
    state[3] = nd
    state[4] = nr
    state[5] = no
    state[6] = aux
    state[7] = aux2


def type_table(slots: dict[bytes, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The attribute spellings known so far as :func:`walk` takes them (blob, offsets, slots)."""
    names = list(slots)
    blob = np.frombuffer(b"".join(names), np.uint8) if names else np.zeros(0, np.uint8)
    off = np.zeros(len(names) + 1, np.int64)
    np.cumsum([len(t) for t in names], out=off[1:])
    return blob, off, np.array([slots[t] for t in names], np.int64)


@_compile
def gather(b: np.ndarray, spans: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    """Copy the ``spans`` rows (offset, length) of ``b`` one after the other into ``out``;
    ``offsets`` (one longer than ``spans``) receives where each one starts there, and the end."""
    o = 0
    offsets[0] = 0
    for k in range(spans.shape[0]):
        s = spans[k, 0]
        ln = spans[k, 1]
        out[o : o + ln] = b[s : s + ln]
        o += ln
        offsets[k + 1] = o
