"""Line numbers of the keys and tables of a TOML document (``tomllib`` keeps no positions).

:func:`key_lines` reads the text line by line and maps every key path it defines -- with the
index of each ``[[array-of-tables]]`` entry, as pydantic reports it in an error's ``loc`` -- to
the line defining it::

    [[sources]]            ("sources",) and ("sources", 0)         -> 1
    name = "a"             ("sources", 0, "name")                  -> 2
    [[sources]]            ("sources", 1)                          -> 3
    [sources.columns]      ("sources", 1, "columns")               -> 4

A missing key has no line; :func:`line_of` then gives the line of the nearest enclosing table
that has one (the header of the ``[[...]]`` entry it is missing from). Best effort: keys inside
inline tables and multi-line values are not indexed (their enclosing key is).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Path = tuple[str | int, ...]

_KEY = r"""[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*'"""
_KEYS = rf"(?:{_KEY})(?:[ \t]*\.[ \t]*(?:{_KEY}))*"
_HEADER = re.compile(rf"^[ \t]*(\[\[?)[ \t]*({_KEYS})[ \t]*\]\]?")
_ASSIGN = re.compile(rf"^[ \t]*({_KEYS})[ \t]*=(.*)$")
_SEGMENT = re.compile(_KEY)


def _segments(keys: str) -> list[str]:
    out = []
    for seg in _SEGMENT.findall(keys):
        if seg[:1] in ('"', "'"):
            seg = seg[1:-1]
        out.append(seg)
    return out


def key_lines(text: str) -> dict[Path, int]:
    """Every table and key path defined in ``text`` -> the 1-based line defining it first."""
    lines: dict[Path, int] = {}
    arrays: dict[Path, int] = {}  # array-of-tables path -> entries so far
    table: Path = ()
    closing: str | None = None  # the delimiter of the multi-line string we are inside
    for number, line in enumerate(text.splitlines(), start=1):
        if closing is not None:
            if line.count(closing) % 2 == 1:
                closing = None
            continue
        if header := _HEADER.match(line):
            table = _table(header.group(1), _segments(header.group(2)), arrays)
            _record(lines, table, number)
        elif assign := _ASSIGN.match(line):
            _record(lines, (*table, *_segments(assign.group(1))), number)
            closing = _opened(assign.group(2))
    return lines


def _table(bracket: str, segments: list[str], arrays: dict[Path, int]) -> Path:
    """The path of a ``[table]`` or ``[[array]]`` header; a new array entry is counted."""
    if bracket == "[[":
        parent = _resolve(segments[:-1], arrays)
        array = (*parent, segments[-1])
        arrays[array] = arrays.get(array, 0) + 1
        return (*array, arrays[array] - 1)
    return _resolve(segments, arrays)


def _resolve(segments: list[str], arrays: dict[Path, int]) -> Path:
    """Key segments as a path: each segment naming an array of tables refers to its latest
    entry."""
    path: Path = ()
    for seg in segments:
        path = (*path, seg)
        if path in arrays:
            path = (*path, arrays[path] - 1)
    return path


def _record(lines: dict[Path, int], path: Path, number: int) -> None:
    for end in range(1, len(path) + 1):
        lines.setdefault(path[:end], number)


def _opened(value: str) -> str | None:
    """The delimiter of a multi-line string that ``value`` opens and does not close."""
    for delimiter in ('"""', "'''"):
        if value.count(delimiter) % 2 == 1:
            return delimiter
    return None


def line_of(text: str, loc: Sequence[str | int]) -> int | None:
    """The line of ``loc``, or of the nearest enclosing table or key in the text; None if no
    part of it is in the text."""
    lines = key_lines(text)
    path = tuple(loc)
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None
