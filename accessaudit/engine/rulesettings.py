"""The settings a rule declares: each with its type and range, so that a configuration's
overrides (``[audit.rule_settings]``) are checked when it is loaded, not when a query fails.

A rule's ``[settings]`` table declares each setting either by its default alone (the type is
the default's: ``min_forces = 2`` is an integer) or as an inline table with a range::

    [settings]
    min_members = { default = 5, min = 1 }
    min_share = { default = 0.1, min = 0.0, max = 1.0 }

An integer setting takes integers only; a real one integers or reals (finite); a boolean only
``true``/``false``; a text one text. :func:`override_problems` lists every override of an
unknown rule, an unknown setting, a value of the wrong type or out of range.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from accessaudit.errors import RuleError

_TYPES: dict[type, str] = {bool: "true or false", int: "an integer", float: "a number", str: "text"}
_SPEC_KEYS = frozenset({"default", "min", "max"})


@dataclass(frozen=True)
class SettingSpec:
    """One declared setting: its name, type (of the default), default and inclusive range."""

    name: str
    kind: type
    default: Any
    min: float | None = None
    max: float | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` cannot be this setting, or None."""
        if self.kind is bool:
            ok = isinstance(value, bool)
        elif self.kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            ok = ok and math.isfinite(value)
        else:
            ok = isinstance(value, str)
        if not ok:
            return f"{value!r} is not {_TYPES[self.kind]}"
        if self.min is not None and value < self.min:
            return f"{value!r} is below the least value {self.min:g}"
        if self.max is not None and value > self.max:
            return f"{value!r} is above the greatest value {self.max:g}"
        return None

    def describe(self) -> str:
        bounds = []
        if self.min is not None:
            bounds.append(f">= {self.min:g}")
        if self.max is not None:
            bounds.append(f"<= {self.max:g}")
        return f"{self.name} ({_TYPES[self.kind]}{', ' + ' and '.join(bounds) if bounds else ''})"


def declared(
    raw: Any, where: Callable[[str], str]
) -> tuple[dict[str, Any], dict[str, SettingSpec]]:
    """A rule's ``[settings]`` table: (defaults, specs). ``where(key)`` names file:line."""
    if not isinstance(raw, dict):
        raise RuleError(f"{where('settings')}: [settings] must be a table")
    defaults: dict[str, Any] = {}
    specs: dict[str, SettingSpec] = {}
    for name, value in raw.items():
        spec = _spec(name, value, where)
        specs[name] = spec
        defaults[name] = spec.default
    return defaults, specs


def _spec(name: str, value: Any, where: Callable[[str], str]) -> SettingSpec:
    if isinstance(value, dict):
        unknown = sorted(set(value) - _SPEC_KEYS)
        if unknown or "default" not in value:
            raise RuleError(
                f"{where('settings')}: setting {name}: a declaration has 'default' and"
                f" optionally 'min' and 'max'" + (f" (not {unknown[0]!r})" if unknown else ""),
            )
        default, low, high = value["default"], value.get("min"), value.get("max")
    else:
        default, low, high = value, None, None
    kind = type(default)
    if kind not in _TYPES:
        raise RuleError(f"{where('settings')}: setting {name}: the default must be a boolean,"
                        " an integer, a number or text")  # fmt: skip
    for bound in (low, high):
        if bound is not None and (
            kind not in (int, float)
            or isinstance(bound, bool)
            or not isinstance(bound, int | float)
        ):
            raise RuleError(f"{where('settings')}: setting {name}: min and max are numbers, for"
                            " a numeric setting only")  # fmt: skip
    spec = SettingSpec(name, kind, default, low, high)
    problem = spec.problem(default)
    if problem:
        raise RuleError(f"{where('settings')}: setting {name}: its default {problem}")
    return spec


def override_problems(
    specs: Mapping[str, Mapping[str, SettingSpec]], overrides: Mapping[str, Any]
) -> list[tuple[tuple[str, ...], str]]:
    """Every problem of ``overrides`` (rule id -> {setting -> value}) against the rules'
    declared ``specs`` (rule id -> setting -> spec): ``(loc, message)``, ``loc`` the rule id
    and the setting's name."""
    out: list[tuple[tuple[str, ...], str]] = []
    for rule_id, values in overrides.items():
        declared_here = specs.get(rule_id)
        if declared_here is None:
            out.append(((rule_id,), f"unknown rule {rule_id!r}{_close(rule_id, specs)}"))
            continue
        if not isinstance(values, Mapping):
            out.append(((rule_id,), f"the settings of {rule_id} must be a table"))
            continue
        for name, value in values.items():
            spec = declared_here.get(name)
            if spec is None:
                have = ", ".join(s.describe() for s in declared_here.values()) or "none"
                out.append(
                    ((rule_id, name), f"rule {rule_id} has no setting {name!r} (it has: {have})")
                )
                continue
            problem = spec.problem(value)
            if problem:
                out.append(((rule_id, name), f"{rule_id}.{name}: {problem}; {spec.describe()}"))
    return out


def _close(name: str, known: Iterable[str]) -> str:
    import difflib

    hit = difflib.get_close_matches(name, list(known), 1, 0.7)
    return f" (did you mean {hit[0]!r}?)" if hit else ""
