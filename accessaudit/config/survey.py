"""``[survey]`` (the coverage gate and how sure a proposal must be) and ``[[matchers]]`` (matchers
added to an organisation after its own, as ``accessaudit survey --write`` appends them).

``[[matchers]]`` exists so a proposal can be applied by appending to the user's file, never by
rewriting it: an ``[[organisations]]`` entry cannot be extended further down a TOML file, an
array of tables can. Each entry names its organisation (``org``) and the matchers it adds: lists
are appended to the organisation's own (without repeats), an ``employee_id`` pattern is tried as
an alternative to the organisation's (``(?:own)|(?:added)``). :func:`merge_matchers` does it
once, when the configuration is loaded, so attribution sees one list of matchers per
organisation.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Annotated, Any

import polars as pl
from pydantic import BaseModel, Field, field_validator

from accessaudit.config.base import STRICT
from accessaudit.config.organisations import Organisation

#: The matcher keys a ``[[matchers]]`` entry may add (those holding values read from the data).
ADDED_KEYS: tuple[str, ...] = (
    "ou",
    "upn_suffix",
    "mail_domain",
    "company",
    "employee_id",
    "name_prefix",
    "names",
    "ids",
)


class _Model(BaseModel):
    model_config = STRICT


class SurveySettings(_Model):
    """``accessaudit survey``: the thresholds of ``--check`` (objects holding access that are
    unattributed or conflicting; more than these exits 1) and how sure a proposal must be."""

    max_unattributed_accounts: Annotated[int, Field(ge=0)] = 0
    max_conflicting_accounts: Annotated[int, Field(ge=0)] = 0
    max_unattributed_groups: Annotated[int, Field(ge=0)] = 0
    max_conflicting_groups: Annotated[int, Field(ge=0)] = 0
    #: a value is proposed for an organisation when at least this share of the attributed
    #: objects carrying it are that organisation's
    min_share: Annotated[float, Field(gt=0.5, le=1)] = 0.97
    #: ... and at least this many attributed objects carry it
    min_support: Annotated[int, Field(ge=1)] = 5


class AddedMatchers(_Model):
    """One ``[[matchers]]`` entry: matchers added to organisation ``org``."""

    org: str
    reason: str = ""  # why it was added (the survey writes its evidence here)
    ou: list[str] = []
    upn_suffix: list[str] = []
    mail_domain: list[str] = []
    company: list[str] = []
    employee_id: str | None = None
    name_prefix: list[str] = []
    names: list[str] = []
    ids: list[str] = []

    @field_validator("employee_id")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value


def added_problems(
    organisations: Sequence[Organisation], added: Sequence[AddedMatchers]
) -> list[tuple[tuple[str | int, ...], str]]:
    """Entries naming an organisation that is not configured, or an ``employee_id`` pattern
    polars cannot run, as ``(loc, message)``."""
    known = [o.id for o in organisations]
    out: list[tuple[tuple[str | int, ...], str]] = []
    for i, a in enumerate(added):
        if a.org not in known:
            out.append((("matchers", i, "org"), f"'{a.org}' is not a configured organisation "
                        f"(one of: {', '.join(known)})"))  # fmt: skip
        problem = polars_regex_problem(a.employee_id) if a.employee_id else None
        if problem:
            out.append((("matchers", i, "employee_id"), problem))
    return out


def polars_regex_problem(pattern: str) -> str | None:
    """Why polars' regex engine (the one attribution runs) refuses ``pattern``, or None."""
    try:
        pl.Series("x", [""], dtype=pl.String).str.contains(pattern)
    except pl.exceptions.PolarsError:
        return "polars cannot run this regular expression (look-arounds, backreferences)"
    return None


def _either(first: str | None, second: str | None) -> str | None:
    if not first or not second or first == second:
        return first or second
    return f"(?:{first})|(?:{second})"


def merge_matchers(
    organisations: Sequence[Organisation], added: Sequence[AddedMatchers]
) -> list[Organisation]:
    """``organisations`` with every entry of ``added`` merged into its organisation's
    matchers (see the module docstring); an entry for an unknown organisation is ignored
    (:func:`added_problems` reports it)."""
    out = []
    for org in organisations:
        mine = [a for a in added if a.org == org.id]
        if not mine:
            out.append(org)
            continue
        update: dict[str, Any] = {}
        for key in ADDED_KEYS:
            current = getattr(org.match, key)
            for a in mine:
                value = getattr(a, key)
                if key == "employee_id":
                    current = _either(current, value)
                else:
                    current = [*current, *(v for v in value if v not in current)]
            update[key] = current
        out.append(org.model_copy(update={"match": org.match.model_copy(update=update)}))
    return out


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string: quotes, backslashes, control and invisible characters
    (bidi overrides, zero-width, line separators) escaped, so directory text written into a
    configuration reads as what it is."""
    out = []
    for ch in value:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif code < 0x20 or code == 0x7F or unicodedata.category(ch) in ("Cf", "Zl", "Zp", "Cs"):
            out.append(f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def fragment(entries: Sequence[tuple[AddedMatchers, Sequence[str]]], heading: str) -> str:
    """``[[matchers]]`` entries as TOML, each after its comment lines, under ``heading`` (a
    comment line); comment lines hold no directory text (the values are in strings)."""
    lines = [f"# {_plain(heading)}"]
    for added, comments in entries:
        lines += ["", *(f"# {_plain(c)}" for c in comments), "[[matchers]]"]
        lines.append(f"org = {toml_string(added.org)}")
        if added.reason:
            lines.append(f"reason = {toml_string(added.reason)}")
        for key in ADDED_KEYS:
            value = getattr(added, key)
            if key == "employee_id" and value:
                lines.append(f"{key} = {toml_string(value)}")
            elif key != "employee_id" and value:
                lines.append(f"{key} = [{', '.join(toml_string(v) for v in value)}]")
    return "\n".join(lines) + "\n"


def _plain(text: str) -> str:
    """A comment line: printable ASCII only."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text)
