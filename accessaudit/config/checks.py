"""Checks a configuration must pass when it is loaded, for values that pydantic accepts but
that would crash a run after it has collected everything.

* :func:`document_problems` (the parsed TOML, before the models): a NUL character in any
  value or key (no path or name holds one; ``open`` refuses it), a number that is not finite
  (``connect_timeout = inf`` would wait for ever), a keyring reference that is not
  ``service:username``;
* :func:`settings_problems` (the validated settings): regular expressions polars' engine
  rejects although Python's accepts them (look-arounds, backreferences: the attribution runs
  them in polars, so they are compiled there), CSV encodings that are not text encodings
  (``rot13`` is a codec, but of text to text).

Each problem is ``(loc, message)``; :mod:`.settings` names the file and the line of ``loc``.
"""

from __future__ import annotations

import codecs
import math
from collections.abc import Iterator
from typing import Any

import polars as pl

Loc = tuple[str | int, ...]

#: TOML is nested this deep at most (tables in arrays in tables ...); deeper is refused before
#: a recursive walk could exhaust the stack.
MAX_DEPTH = 32


def _walk(value: Any, loc: Loc) -> Iterator[tuple[Loc, Any]]:
    yield loc, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, (*loc, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, (*loc, i))


def document_problems(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """Problems of the parsed document that no model would see (see the module docstring)."""
    out: list[tuple[Loc, str]] = []
    for loc, value in _walk(data, ()):
        if len(loc) > MAX_DEPTH:
            return [(loc[:MAX_DEPTH], f"values nested more than {MAX_DEPTH} deep")]
        key = loc[-1] if loc else ""
        if isinstance(key, str) and "\x00" in key:
            out.append((loc[:-1], "a key holds a NUL character"))
        if isinstance(value, str) and "\x00" in value:
            out.append((loc, "the value holds a NUL character"))
        elif isinstance(value, float) and not math.isfinite(value):
            out.append((loc, f"{value} is not a finite number"))
        if isinstance(key, str) and key.endswith("_keyring") and isinstance(value, str):
            service, _, user = value.partition(":")
            if not service.strip() or not user.strip():
                out.append((loc, f"{value!r} is not a keyring reference 'service:username'"))
    return out


def polars_regex_problem(pattern: str) -> str | None:
    """Why polars' regex engine refuses ``pattern`` (first line of its message), or None."""
    try:
        pl.Series("x", [""], dtype=pl.String).str.contains(pattern)
    except pl.exceptions.PolarsError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = next((ln for ln in reversed(lines) if ln.startswith("error:")), "")
        return f"polars cannot run this regular expression ({detail or 'regex parse error'})"
    return None


def encoding_problem(name: str) -> str | None:
    """Why ``name`` cannot decode a CSV export, or None."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        return f"unknown encoding {name!r}"
    if not getattr(info, "_is_text_encoding", True):
        return f"{name!r} is not a text encoding"
    return None


def settings_problems(settings: Any) -> list[tuple[Loc, str]]:
    """Problems of validated :class:`~accessaudit.config.settings.Settings` (see above)."""
    out: list[tuple[Loc, str]] = []
    for j, org in enumerate(settings.organisations):
        pattern = org.match.employee_id
        if pattern:
            problem = polars_regex_problem(pattern)
            if problem:
                out.append((("organisations", j, "match", "employee_id"), problem))
    for i, src in enumerate(settings.sources):
        encoding = getattr(src, "encoding", None)
        if src.kind == "csv" and isinstance(encoding, str):
            problem = encoding_problem(encoding)
            if problem:
                out.append((("sources", i, "encoding"), problem))
    return out
