"""Slicing ``config.example.toml`` the way the README tells a user to: keep the organisations,
delete the sources that do not apply."""

from __future__ import annotations

import re

#: An organisation's ``sources = [...]`` matcher line.
_SOURCES_MATCHER = re.compile(r"(?m)^sources = \[.*$\n")


def without_source_matchers(text: str) -> str:
    """``text`` without the organisations' ``sources`` matchers: they name the example's
    application exports, and a configuration that deletes those sources must delete their names
    too (a matcher naming no configured source is refused at load)."""
    return _SOURCES_MATCHER.sub("", text)
