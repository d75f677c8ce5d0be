"""One search's entries held column-wise, and the polars frame built from them.

:func:`~accessaudit.connectors.ldap.wire.search` appends, per requested attribute, the entry
number and the raw bytes of every value to two flat lists of a :class:`Columns`; the lists become
polars columns once per page. :func:`raw_frame` then gives a search one frame (a row per entry,
one column per attribute) for the table builders, never going entry by entry.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping

import polars as pl

from accessaudit.connectors.ldap.decode import utf8

#: :meth:`Columns.slot_for` of an attribute that was not requested, or answered with a partial
#: range (more values to fetch)
UNREQUESTED, RANGED = -1, -2


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
        self.n = 0
        self.dns: list[bytes] = []
        self.idx: list[list[int]] = [[] for _ in self.names]
        self.vals: list[list[bytes]] = [[] for _ in self.names]
        self.ranged: list[tuple[int, str, list[bytes]]] = []
        self.references = 0
        self._dn_parts: list[pl.Series] = []
        self._parts: list[list[pl.DataFrame]] = [[] for _ in self.names]

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
        """Forget entries from number ``n`` on (a page that failed part-way; never flushed)."""
        keep = n - (self.n - len(self.dns))
        if keep < 0:
            raise ValueError("cannot roll back past a flushed page")
        del self.dns[keep:]
        for k in range(len(self.names)):
            cut = bisect.bisect_left(self.idx[k], n)
            del self.idx[k][cut:]
            del self.vals[k][cut:]
        self.ranged = [r for r in self.ranged if r[0] < n]
        self.n = n

    def flush(self) -> None:
        """Move the values read so far into polars columns (once per page)."""
        if self.dns:
            self._dn_parts.append(pl.Series("dn", self.dns, dtype=pl.Binary))
            self.dns = []
        for k in range(len(self.names)):
            if self.vals[k]:
                self._parts[k].append(
                    pl.DataFrame(
                        {
                            "i": pl.Series("i", self.idx[k], dtype=pl.UInt32),
                            "v": pl.Series("v", self.vals[k], dtype=pl.Binary),
                        }
                    )
                )
                self.idx[k] = []
                self.vals[k] = []

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
        return pl.concat(parts, rechunk=True)

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
