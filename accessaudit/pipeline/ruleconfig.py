"""A configuration's rule settings checked against the rules' declarations when it is loaded.

``[audit.rule_settings]`` names rules and their settings; a typo (an unknown rule id or
setting), a value of the wrong type (``min_share = "lots"``) or out of range
(``min_members = -5``) fails here, naming the configuration file and line, before anything is
collected -- and ``rules list --config`` fails the same way, since it loads the configuration
through the same function. The declarations are the rules' (:mod:`accessaudit.engine.rulesettings`).
"""

from __future__ import annotations

from pathlib import Path

from accessaudit.config.settings import Settings
from accessaudit.config.tomlpos import line_of
from accessaudit.engine.rulefile import load_rules
from accessaudit.engine.rulesettings import override_problems
from accessaudit.errors import ConfigError


def check_rule_settings(settings: Settings, path: Path) -> None:
    """Raise a :class:`ConfigError` for the first problem of ``audit.rule_settings`` (file:line,
    the key, what is wrong and how many more problems there are)."""
    overrides = settings.audit.rule_settings
    if not overrides:
        return
    rules = load_rules(settings.audit.rules_dirs)
    problems = override_problems({r.id: r.setting_specs for r in rules}, overrides)
    if not problems:
        return
    loc, message = problems[0]
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        text = ""
    line = line_of(text, ["audit", "rule_settings", *loc])
    where = f"{path}:{line}" if line else str(path)
    more = (
        f" ({len(problems) - 1} more problem(s) in audit.rule_settings)"
        if len(problems) > 1
        else ""
    )
    raise ConfigError(
        f"{where}: audit.rule_settings.{'.'.join(loc)}: {message}{more}",
        "accessaudit rules show <id> lists a rule's settings; fix or remove the override",
    )
