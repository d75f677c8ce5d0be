"""One search's entries held column-wise, and the polars frame built from them.

:func:`~accessaudit.connectors.ldap.wire.search` appends, per requested attribute, the entry
number and the raw bytes of every value to two flat lists of a :class:`Columns`; the lists become
polars columns once per page. :func:`raw_frame` then gives a search one frame (a row per entry,
one column per attribute) for the table builders, never going entry by entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from accessaudit.connectors.ldap import arrowc, ber
from accessaudit.connectors.ldap.decode import utf8

#: :meth:`Columns.slot_for` of an attribute that was not requested, or answered with a partial
#: range (more values to fetch)
UNREQUESTED, RANGED = -1, ber.RANGED_SLOT


@dataclass
class Block:
    """Entries ``first`` on, located in ``buf`` by :func:`.ber.walk` (rows as it writes them)."""

    buf: bytes
    first: int
    vals: np.ndarray
    dns: np.ndarray


class Columns:
    """The entries of one paged search, column-wise.

    ``dn`` holds each entry's DN; per requested attribute, :meth:`exploded` gives one row per
    value (entry number ``i``, raw value ``v``) in the order the server sent them. An attribute
    the server answered with a partial range (``member;range=0-999``: more values to fetch) is
    kept aside in :attr:`ranged` as (entry, attribute key, values) for the range loop.
    """

    def __init__(self, attrs: Iterable[str]) -> None:
        self.names = list(dict.fromkeys(attrs))  # as requested, e.g. member;range=0-999
        self._slot = {_base(a): k for k, a in enumerate(self.names)}
        self.slots: dict[bytes, int] = {}
        self._types: list[bytes] = []
        self._table: tuple[np.ndarray, np.ndarray, np.ndarray] = ber.type_table({})
        self.n = 0
        self._blocks: list[Block] = []  # batches read, not flushed yet
        self.ranged: list[tuple[int, str, list[bytes]]] = []
        self.references = 0
        self._page_lengths: list[np.ndarray] = []  # this page's DN lengths, per block
        self._page_names: list[np.ndarray] = []  # and their bytes
        self._dn_parts: list[pl.Series] = []
        self._parts: list[list[pl.DataFrame]] = [[] for _ in self.names]

    def type_table(self) -> tuple[list[bytes], tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The attribute spellings seen so far, in the arrays :func:`.ber.walk` matches against."""
        if len(self._types) != len(self.slots):
            self._types = list(self.slots)
            self._table = ber.type_table(self.slots)
        return self._types, self._table

    def add_block(self, buf: bytes, vals: np.ndarray, dns: np.ndarray) -> None:
        """Entries ``self.n`` on, as :func:`.ber.walk` located them in ``buf``: ``dns`` rows
        (offset, length), ``vals`` rows (slot, entry, offset, length)."""
        if len(dns):
            self._blocks.append(Block(buf, self.n, vals, dns))
            self.n += len(dns)
            offsets = np.empty(len(dns) + 1, np.int64)
            names = np.empty(int(dns[:, 1].sum()), np.uint8)
            ber.gather(np.frombuffer(buf, np.uint8), dns, offsets, names)
            # kept per page and hashed whole in page_digest(): the same page must give the
            # same digest however the reads cut it into blocks
            self._page_lengths.append(np.diff(offsets))
            self._page_names.append(names)

    def page_digest(self) -> bytes:
        """Digest of the DNs added since the last call (one page: a page the server already
        sent is a cookie loop)."""
        page = hashlib.blake2b(digest_size=16)
        if self._page_lengths:
            page.update(np.concatenate(self._page_lengths).tobytes())
            page.update(np.concatenate(self._page_names).tobytes())
        self._page_lengths, self._page_names = [], []
        return page.digest()

    @property
    def pending(self) -> bool:
        """Whether values read are waiting for :meth:`flush`."""
        return bool(self._blocks)

    def slot_for(self, wire_type: bytes) -> int:
        """Where values of this attribute type go (cached per spelling the server uses)."""
        name = wire_type.decode("utf-8", "replace")
        slot = self._slot.get(_base(name), UNREQUESTED)
        options = name.partition(";")[2].lower()
        # a whole answer is range=0-*; any other range has more values to fetch
        if slot >= 0 and options.startswith("range=") and options != "range=0-*":
            slot = RANGED
        self.slots[wire_type] = slot
        return slot

    def keep_ranged(self, entry: int, wire_type: bytes, values: list[bytes]) -> None:
        self.ranged.append((entry, wire_type.decode("utf-8", "replace"), values))

    def rollback(self, n: int) -> None:
        """Forget entries from number ``n`` on (a page that failed part-way)."""
        flushed = self.n - sum(len(b.dns) for b in self._blocks)
        if n < flushed:  # cut out of the columns too (a page flushed while waiting for more)
            dn = pl.concat(self._dn_parts).head(n)
            self._dn_parts = [dn] if len(dn) else []
            for parts in self._parts:
                parts[:] = [p.filter(pl.col("i") < n) for p in parts]
        kept: list[Block] = []
        for b in self._blocks:
            if b.first + len(b.dns) <= n:
                kept.append(b)
            elif b.first < n:
                vals = b.vals[b.vals[:, 1] < n]
                kept.append(Block(b.buf, b.first, vals, b.dns[: n - b.first]))
        self._blocks = kept
        self.ranged = [r for r in self.ranged if r[0] < n]
        self.n = min(self.n, n)

    def flush(self) -> None:
        """Cut the values read so far out of their batches into polars columns: one compiled
        copy of the spans the walk found per attribute, handed to polars as an Arrow buffer; no
        value passes through Python. :mod:`.wire` calls it while the server has nothing more
        to send yet (the time otherwise spent waiting), and any reader of the columns first."""
        if not self._blocks:
            return
        blocks, self._blocks = self._blocks, []
        starts = np.cumsum([0] + [len(b.buf) for b in blocks[:-1]], dtype=np.int64)
        buf = b"".join(b.buf for b in blocks) if len(blocks) > 1 else blocks[0].buf
        shift = [np.array([s, 0, 0, 0]) for s in starts.tolist()]
        dns = np.concatenate([b.dns + d[:2] for b, d in zip(blocks, shift, strict=True)])
        vals = np.concatenate([b.vals + np.roll(d, 2) for b, d in zip(blocks, shift, strict=True)])
        page = np.frombuffer(buf, np.uint8)
        self._dn_parts.append(_cut(page, dns, "dn"))
        vals = vals[np.argsort(vals[:, 0], kind="stable")]  # by slot, in order within one
        bounds = np.searchsorted(vals[:, 0], np.arange(len(self.names) + 1)).tolist()
        for k in range(len(self.names)):
            a, b = bounds[k], bounds[k + 1]
            if b > a:
                v = _cut(page, vals[a:b, 2:], "v")
                i = pl.Series("i", vals[a:b, 1], dtype=pl.UInt32)
                self._parts[k].append(pl.DataFrame([i, v]))

    @property
    def dn(self) -> pl.Series:
        """Every entry's DN as text, in order."""
        self.flush()
        raw = pl.concat(self._dn_parts) if self._dn_parts else pl.Series("dn", [], pl.Binary)
        return utf8(raw).alias("dn")

    def exploded(self, attr: str) -> pl.DataFrame:
        """One row per value of ``attr``: ``i`` (entry number, UInt32) and ``v`` (Binary)."""
        self.flush()
        parts = self._parts[self._slot[_base(attr)]]
        if not parts:
            return pl.DataFrame(schema={"i": pl.UInt32, "v": pl.Binary})
        if len(parts) > 1:  # the pages' parts give way to their concatenation: held once
            parts[:] = [pl.concat(parts, rechunk=True)]
        return parts[0]

    def first(self, attr: str) -> pl.Series:
        """The first value of ``attr`` per entry (Binary; null where absent)."""
        values = self.exploded(attr)
        if values.height == self.n and values.get_column("i").equals(_rows(self.n)):
            return values.get_column("v").alias(attr)  # one value in every entry: as it is
        values = values.unique("i", keep="first", maintain_order=True)
        return _spread(values, self.n).get_column("v").alias(attr)

    def lists(self, attr: str) -> pl.Series:
        """Every value of ``attr`` per entry (List(Binary); an empty list where absent)."""
        grouped = self.exploded(attr).group_by("i", maintain_order=True).agg(pl.col("v"))
        out = _spread(grouped, self.n).get_column("v")
        return out.fill_null(pl.lit([], pl.List(pl.Binary))).alias(attr)


def _cut(page: np.ndarray, spans: np.ndarray, name: str) -> pl.Series:
    """The ``spans`` (offset, length rows) of ``page`` as a Binary column: copied out by one
    compiled loop, handed to polars as an Arrow buffer (:mod:`.arrowc`)."""
    spans = np.ascontiguousarray(spans)
    offsets = np.empty(len(spans) + 1, np.int64)
    out = np.empty(int(spans[:, 1].sum()), np.uint8)
    ber.gather(page, spans, offsets, out)
    return arrowc.binary(name, offsets, out)


def _base(attr: str) -> str:
    """``member;range=0-999`` -> ``member`` (attribute names compare case-insensitively)."""
    return attr.partition(";")[0].lower()


def _rows(n: int) -> pl.Series:
    return pl.arange(0, n, dtype=pl.UInt32, eager=True).alias("i")


def _spread(df: pl.DataFrame, n: int) -> pl.DataFrame:
    """``df`` (keyed by entry number ``i``) placed on rows 0..n-1, nulls where it has none."""
    return _rows(n).to_frame().join(df, on="i", how="left", maintain_order="left")


def raw_frame(
    cols: Columns,
    attrs: Iterable[str],
    multi: Iterable[str] = (),
    convert: Mapping[str, Callable[[bytes], str]] | None = None,
) -> pl.DataFrame:
    """One frame for a search: ``dn`` plus one column per attribute, a row per entry.

    Single-valued attributes keep their first value (``Binary``); ``multi`` attributes keep all
    (``List(Binary)``); ``convert`` decodes binary values (SIDs) into ``List(String)``. Built from
    the exploded columns of :class:`Columns` by polars, never entry by entry.
    """
    convert = convert or {}
    multi = set(multi)
    data: dict[str, pl.Series] = {"dn": cols.dn}
    for attr in attrs:
        fn = convert.get(attr)
        if fn is not None:  # few values (sIDHistory): Python per value is fine
            values = cols.exploded(attr)
            text_values = pl.Series("v", [fn(v) for v in values.get_column("v")], pl.String)
            grouped = (
                values.with_columns(v=text_values)
                .group_by("i", maintain_order=True)
                .agg(pl.col("v"))
            )
            rows = pl.DataFrame({"i": pl.arange(0, cols.n, dtype=pl.UInt32, eager=True)})
            joined = rows.join(grouped, on="i", how="left", maintain_order="left")
            data[attr] = joined.get_column("v").alias(attr)
        elif attr in multi:
            data[attr] = cols.lists(attr)
        else:
            data[attr] = cols.first(attr)
    return pl.DataFrame(data)
