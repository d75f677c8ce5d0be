"""Characters that do not show: the one list the report, the rule loader and the CLI share.

Control (Cc), format (Cf: bidi embeddings/overrides/isolates, zero-width, BOM, soft hyphen,
interlinear annotations), filler and line/paragraph separator characters. Any of them can make
text read differently from what it is ("Trojan Source", CVE-2021-42574). The pattern text is
valid for Python's ``re`` and for polars (Rust regex).
"""

from __future__ import annotations

import re
from typing import Final

#: everything hidden except NUL-LF (``HIDDEN_PATTERN`` and ``HIDDEN_KEEP_LINES_PATTERN`` add them)
HIDDEN_REST: Final = (
    r"\x0b-\x1f\x7f-\x9f\u00ad\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f"
    r"\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
)
HIDDEN_PATTERN: Final = rf"[\x00-\x0a{HIDDEN_REST}]"
#: the same without tab and newline, for multi-line text
HIDDEN_KEEP_LINES_PATTERN: Final = rf"[\x00-\x08{HIDDEN_REST}]"
HIDDEN: Final = re.compile(HIDDEN_PATTERN)
HIDDEN_KEEP_LINES: Final = re.compile(HIDDEN_KEEP_LINES_PATTERN)


def _marker(match: re.Match[str]) -> str:
    return f"[U+{ord(match.group()):04X}]"


def visible(value: object, *, keep_lines: bool = False) -> str:
    """``value`` as display text: ``None`` -> ``""``; hidden characters -> ``[U+XXXX]``.

    ``keep_lines`` keeps tab and newline (multi-line commands, rule queries).
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    pattern = HIDDEN_KEEP_LINES if keep_lines else HIDDEN
    return pattern.sub(_marker, text) if pattern.search(text) else text
