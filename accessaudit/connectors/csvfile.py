"""Application user lists exported as CSV (e.g. a records system's or a command-and-control
system's "users and roles" report): one row per user and role.

A per-source column mapping (``CsvSource.columns``: canonical field -> CSV header) turns the
export into canonical tables: one account per distinct username (compared case-insensitively,
first spelling and the first row's other values kept; enabled when any of its rows is), one
``app-role`` group per distinct role, one membership per distinct (role, user). No grants.

Reading is strict, because a silently dropped row is a silently missed access right:

* the file is read with the stdlib ``csv`` module (quoted fields may hold the delimiter and line
  breaks) in ``strict`` mode, so an unbalanced quote is an error instead of swallowing the rest
  of the file into one field;
* every bad row -- wrong number of fields, empty username or role, unknown ``enabled`` value, a
  blank line *inside* the data (blank lines at the end are ignored), a malformed record (the
  rest of the file is then unreadable) -- marks the source **incomplete**: its ``rows`` unit
  names ``file:line``, the physical line on which the record starts, and what is wrong (never
  the cell's text); the first bad row is named and the others counted. The run then exits 3
  (an incomplete source) after collecting every other source. A row whose only fault is its
  ``enabled`` value is kept with its state unknown (treated as enabled: access is reported);
  the others are left out;
* the ``enabled`` column accepts :data:`ENABLED_VALUES` and a source's own ``enabled_values``;
  a login disabled there keeps its roles as memberships ``via`` ``csv-disabled`` (no access,
  but still held: the inactive-access rule reports them);
* a byte that is not valid in the configured encoding is an ``InputFileError`` naming the line,
  with a hint to set ``encoding`` (exports saved by Excel on Windows are often cp1252);
* header names are matched trimmed and case-insensitively; a mapped header that is missing is a
  :class:`~accessaudit.errors.ConfigError` naming ``file:1`` (the mapping or the export must
  change).

A role is named as the application writes it (so a ``name_prefix`` such as ``WMP-`` matches
``WMP-Dispatcher``); the application's name is the group's ``description``, shown beside it.

Values are untrusted text and are kept verbatim apart from trimming surrounding whitespace;
formula characters are neutralised by the exporters, markup by the report templates. An empty
optional cell becomes null.

Python touches each record once (check its width, pick the mapped cells); trimming, validation
and table building are polars expressions over whole columns.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Final, TextIO

import polars as pl

from accessaudit.config.sources import CsvSource
from accessaudit.connectors.csvguard import missing_columns, open_export
from accessaudit.errors import ConfigError, InputFileError
from accessaudit.model import (
    ACCOUNTS_SCHEMA,
    GROUPS_SCHEMA,
    LAST_LOGON,
    MEMBERSHIPS_SCHEMA,
    AccountKind,
    CollectionUnit,
    GroupKind,
    MemberKind,
    Signal,
    SourceCollection,
    Via,
    conform,
)

#: Accepted spellings of the ``enabled`` column (compared trimmed and lower-cased); a source
#: adds its own with ``enabled_values``.
ENABLED_VALUES: Final[dict[str, bool]] = {
    "true": True,
    "yes": True,
    "y": True,
    "1": True,
    "enabled": True,
    "active": True,
    "false": False,
    "no": False,
    "n": False,
    "0": False,
    "disabled": False,
    "inactive": False,
    "suspended": False,
    "locked": False,
    "blocked": False,
    "deactivated": False,
}

#: Canonical text fields copied to the accounts table (after trimming; empty -> null).
_ACCOUNT_TEXT_FIELDS: Final = ("display_name", "upn", "employee_id", "mail")

_LINE: Final = "_line"  # physical line on which a record starts
_KEY: Final = "_key"  # lower-cased username

#: ``progress("rows", rows_so_far)`` is called every this many rows, and once at the end.
PROGRESS_EVERY: Final = 10_000

_ENCODING_HINT: Final = (
    "set `encoding` for this source in config.toml to the export's encoding, "
    'e.g. encoding = "cp1252" for files saved by Excel on Windows'
)


def collect(
    cfg: CsvSource,
    *,
    now: datetime | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> SourceCollection:
    """Read one application's CSV export into canonical tables.

    ``now`` fixes the collection start and end times (tests); by default the UTC wall clock.
    ``progress("rows", rows_so_far)`` is called while reading (every :data:`PROGRESS_EVERY`
    rows) and once with the final count.
    Raises :class:`InputFileError` for a missing/unreadable file or a decode error, and
    :class:`ConfigError` for an unknown encoding or a mapped header missing from the file; bad
    rows make the ``rows`` unit incomplete (see the module docstring).
    """
    started = now or datetime.now(UTC)
    raw, bad = _read(cfg, progress)
    rows = _validated(raw, cfg, bad)
    if progress:
        progress("rows", rows.height)
    source = f"csv:{cfg.name}"
    n = rows.height
    read = f"{n} rows read from {cfg.path}"
    return SourceCollection(
        source=source,
        kind="csv",
        started=started,
        finished=now or datetime.now(UTC),
        tables={
            "accounts": _accounts(rows, cfg, source),
            "groups": _groups(rows, cfg, source),
            "memberships": _memberships(rows, cfg, source),
        },
        units=[CollectionUnit("rows", bad.first is None, bad.detail(cfg) or read, count=n)],
        signals={LAST_LOGON: Signal(False, "an application export has no last-logon column")},
    )


# --- Reading ----------------------------------------------------------------------------------


class _BadRows:
    """The first bad row (by line) and how many there are."""

    def __init__(self) -> None:
        self.first: tuple[int, str] | None = None
        self.count = 0

    def add(self, line: int, problem: str, count: int = 1) -> None:
        self.count += count
        if self.first is None or line < self.first[0]:
            self.first = (line, problem)

    def detail(self, cfg: CsvSource) -> str | None:
        """The incomplete ``rows`` unit's detail (file:line of the first bad row), or None."""
        if self.first is None:
            return None
        line, problem = self.first
        more = f" ({self.count - 1} more bad row(s) in the file)" if self.count > 1 else ""
        return (
            f"{cfg.path}:{line}: {problem}{more}; the other rows were read: fix the export "
            "(or ask the application owner for a clean one) to complete the source"
        )


def _read(
    cfg: CsvSource, progress: Callable[[str, int], None] | None = None
) -> tuple[pl.DataFrame, _BadRows]:
    """Mapped cells as raw strings (untrimmed) plus the start line of each record; rows of the
    wrong width and blank lines inside the data are left out and recorded as bad."""
    path = cfg.path
    try:
        codecs.lookup(cfg.encoding)
    except LookupError:
        raise ConfigError(
            f"source {cfg.name}: unknown encoding {cfg.encoding!r}",
            "use a Python codec name such as utf-8-sig, utf-8, cp1252 or utf-16",
        ) from None
    fields = list(cfg.columns)
    bad = _BadRows()
    try:
        with open_export(path, cfg.encoding) as fh:
            picked, lines = _records(fh, cfg, bad, progress)
    except FileNotFoundError:
        raise InputFileError(
            f"CSV export {path} not found",
            f"check `path` of source {cfg.name} in config.toml, or export the file again",
        ) from None
    except UnicodeDecodeError as exc:
        line = _decode_error_line(path, cfg.encoding)
        byte = exc.object[exc.start : exc.end].hex(" ")
        raise InputFileError(
            f"{path}:{line}: byte(s) {byte} are not valid {cfg.encoding}", _ENCODING_HINT
        ) from None
    except OSError as exc:
        raise InputFileError(f"cannot read CSV export {path}: {exc.strerror}") from None
    frame = pl.DataFrame(picked, schema=[(f, pl.String) for f in fields], orient="row")
    return frame.with_columns(pl.Series(_LINE, lines, dtype=pl.Int64)), bad


def _records(
    fh: TextIO,
    cfg: CsvSource,
    bad: _BadRows,
    progress: Callable[[str, int], None] | None,
) -> tuple[list[tuple[str, ...]], list[int]]:
    """The mapped cells of every well-formed record after the header, and the line each
    starts on; the others are recorded in ``bad``."""
    picked: list[tuple[str, ...]] = []
    lines: list[int] = []
    reader = csv.reader(fh, delimiter=cfg.delimiter, strict=True)
    last = 0  # reader.line_num after the previous record
    try:
        header = _header(cfg.path, next(reader, None))
        last = reader.line_num
        pick = itemgetter(*_header_positions(header, cfg))
        width = len(header)
        blank_at: int | None = None
        for row in reader:
            start, last = last + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                if blank_at is None:
                    blank_at = start
                continue
            if blank_at is not None:  # a blank line followed by data is not "trailing"
                bad.add(blank_at, "blank line inside the data")
                blank_at = None
            if len(row) != width:
                bad.add(start, f"row has {len(row)} fields, the header has {width}")
                continue
            picked.append(pick(row))
            lines.append(start)
            if progress and len(picked) % PROGRESS_EVERY == 0:
                progress("rows", len(picked))
    except csv.Error as exc:
        # the reader cannot go on past it: the rows before it are kept, the source incomplete
        bad.add(
            last + 1,
            f"malformed CSV record ({exc}; an unbalanced quote?), the rest of the file unread",
        )
    return picked, lines


def _header(path: Path, header: list[str] | None) -> list[str]:
    """The header row, once it is known to name columns."""
    if header is None or not any(cell.strip() for cell in header):
        raise InputFileError(
            f"{path}:1: no header row" + (" (the file is empty)" if header is None else ""),
            "export the user list again, with its header row on the first line",
        )
    if "\x00" in "".join(header):
        raise InputFileError(
            f"{path}:1: the header contains NUL characters",
            'the file is probably UTF-16: set encoding = "utf-16" for this source',
        )
    return header


def _header_positions(header: list[str], cfg: CsvSource) -> list[int]:
    """Index of each mapped header (trimmed, case-insensitive), in ``cfg.columns`` order."""
    names = [h.strip().casefold() for h in header]
    if names:
        names[0] = names[0].removeprefix("\ufeff")  # a BOM read with encoding="utf-8"
    positions: list[int] = []
    missing: list[tuple[str, str]] = []
    for canonical, wanted in cfg.columns.items():
        hits = [i for i, name in enumerate(names) if name == wanted.strip().casefold()]
        if not hits:
            missing.append((canonical, wanted))
        elif len(hits) > 1:
            raise InputFileError(
                f"{cfg.path}:1: column {wanted!r} appears {len(hits)} times in the header",
                "rename the duplicate columns in the export, or map another column",
            )
        else:
            positions.append(hits[0])
    if missing:
        raise missing_columns(cfg.name, cfg.path, header, missing)
    return positions


def _decode_error_line(path: Path, encoding: str) -> int:
    """Physical line of the first byte that does not decode (a second, error-only pass).

    Binary lines are fed to an incremental decoder, which carries partial multi-byte sequences
    over; line breaks are counted like ``csv`` counts them (``\\n``, ``\\r\\n``, lone ``\\r``).
    """
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    line = 1
    with path.open("rb") as fh:
        for raw in fh:
            try:
                text = decoder.decode(raw)
            except UnicodeDecodeError:
                return line
            line += text.count("\n") + text.count("\r") - text.count("\r\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return line
    return line


# --- Validation -------------------------------------------------------------------------------


def enabled_spellings(cfg: CsvSource) -> dict[str, bool]:
    """:data:`ENABLED_VALUES` with the source's own ``enabled_values`` (trimmed, lower-cased)."""
    own = {k.strip().lower(): v for k, v in cfg.enabled_values.items()}
    return {**ENABLED_VALUES, **own}


def _validated(raw: pl.DataFrame, cfg: CsvSource, bad: _BadRows) -> pl.DataFrame:
    """Trim every value (empty -> null), check the required ones, parse ``enabled``. Bad rows
    are recorded in ``bad`` (with those :func:`_read` found) and left out, but for a row whose
    only fault is its ``enabled`` value: it is kept with its state unknown (null)."""
    fields = list(cfg.columns)
    rows = raw.with_columns(
        pl.when(pl.col(f).str.strip_chars() != "")
        .then(pl.col(f).str.strip_chars())
        .otherwise(None)
        .alias(f)
        for f in fields
    )
    # (condition, problem, whether the row is left out) -- every check is one vectorised filter;
    # a problem names the column, never the cell's text (it may be personal data)
    checks: list[tuple[pl.Expr, str, bool]] = [
        (pl.col(f).is_null(), f"empty {f} (column {cfg.columns[f]!r})", True)
        for f in ("username", "role")
    ]
    # A NUL is never text: a corrupt export, or UTF-16 read with a byte encoding.
    checks += [
        (
            pl.col(f).str.contains("\x00", literal=True).fill_null(False),
            f"NUL character in column {cfg.columns[f]!r} (a corrupt or UTF-16 file?)",
            True,
        )
        for f in fields
    ]
    if "enabled" in cfg.columns:
        rows = rows.with_columns(
            pl.col("enabled")
            .str.to_lowercase()
            .replace_strict(enabled_spellings(cfg), default=None, return_dtype=pl.Boolean)
            .alias("_enabled")
        )
        checks.append(
            (
                pl.col("_enabled").is_null(),
                f"enabled value (column {cfg.columns['enabled']!r}) is not an accepted spelling "
                f"(add it to enabled_values of source {cfg.name}; kept as enabled)",
                False,
            )
        )
    for condition, problem, _ in checks:
        lines = rows.filter(condition)[_LINE]
        if lines.len():
            bad.add(int(lines[0]), problem, count=0)
    bad.count += rows.filter(pl.any_horizontal([c for c, _, _ in checks])).height
    rows = rows.filter(~pl.any_horizontal([c for c, _, drop in checks if drop]))
    if "enabled" in cfg.columns:
        rows = rows.drop("enabled").rename({"_enabled": "enabled"})
    return rows.with_columns(pl.col("username").str.to_lowercase().alias(_KEY))


# --- Tables -----------------------------------------------------------------------------------


def _account_id(cfg: CsvSource) -> pl.Expr:
    return pl.concat_str(pl.lit(f"csv:{cfg.name}:user:"), pl.col(_KEY))


def _group_id(cfg: CsvSource) -> pl.Expr:
    return pl.concat_str(pl.lit(f"csv:{cfg.name}:role:"), pl.col("role"))


def _any_enabled(rows: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """One row per ``by`` (in first-seen order) with ``enabled`` over its rows: enabled when one
    is, unknown when none is and one is unknown, disabled only when every row says so."""
    if "enabled" not in rows.columns:
        return rows.select(by).unique(keep="first", maintain_order=True)
    enabled = pl.col("enabled")
    state = rows.group_by(by, maintain_order=True).agg(
        _on=enabled.any(), _unknown=enabled.is_null().any()
    )
    return state.select(
        *by,
        enabled=pl.when("_on")
        .then(pl.lit(True))
        .when("_unknown")
        .then(pl.lit(None, pl.Boolean))
        .otherwise(pl.lit(False)),
    )


def _accounts(rows: pl.DataFrame, cfg: CsvSource, source: str) -> pl.DataFrame:
    first = rows.unique(_KEY, keep="first", maintain_order=True)
    if "enabled" in cfg.columns:
        state = _any_enabled(rows, [_KEY])
        first = first.drop("enabled").join(state, on=_KEY, how="left", maintain_order="left")
    mapped = [pl.col(f) for f in (*_ACCOUNT_TEXT_FIELDS, "enabled") if f in cfg.columns]
    accounts = first.select(
        pl.lit(source).alias("source"),
        _account_id(cfg).alias("account_id"),
        pl.col("username"),
        *mapped,
        pl.lit(AccountKind.USER.value).alias("kind"),
    ).with_columns(
        pl.lit([], pl.List(pl.String)).alias("sid_history"),
        pl.lit(False).alias("privileged"),
        pl.lit(False).alias("activity_tracked"),  # no sign-ins: dormancy unknown
    )
    return conform(accounts, ACCOUNTS_SCHEMA)


def _groups(rows: pl.DataFrame, cfg: CsvSource, source: str) -> pl.DataFrame:
    application = cfg.application or cfg.name
    groups = (
        rows.select("role")
        .unique(keep="first", maintain_order=True)
        .select(
            pl.lit(source).alias("source"),
            _group_id(cfg).alias("group_id"),
            pl.col("role").alias("name"),  # as the application writes it
            pl.lit(application).alias("description"),  # shown beside the role
            pl.lit("application").alias("scope"),
            pl.lit(GroupKind.APP_ROLE.value).alias("kind"),
        )
        .with_columns(
            pl.lit(False).alias("privileged"),
            pl.lit([], pl.List(pl.String)).alias("owners"),
            pl.lit("app").alias("mastered"),
        )
    )
    return conform(groups, GROUPS_SCHEMA)


def _memberships(rows: pl.DataFrame, cfg: CsvSource, source: str) -> pl.DataFrame:
    """One edge per (role, login); ``via`` ``csv-disabled`` when every row of it says the
    login is disabled (no access, still held)."""
    pairs = _any_enabled(rows, ["role", _KEY])  # deduplicated first: fewer ids to build
    if "enabled" not in pairs.columns:
        pairs = pairs.with_columns(enabled=pl.lit(None, pl.Boolean))
    edges = pairs.select(
        pl.lit(source).alias("source"),
        _group_id(cfg).alias("group_id"),
        _account_id(cfg).alias("member_id"),
        pl.lit(MemberKind.ACCOUNT.value).alias("member_kind"),
        pl.when(pl.col("enabled").not_().fill_null(False))
        .then(pl.lit(Via.CSV_DISABLED.value))
        .otherwise(pl.lit(Via.CSV.value))
        .alias("via"),
    )
    return conform(edges, MEMBERSHIPS_SCHEMA)
