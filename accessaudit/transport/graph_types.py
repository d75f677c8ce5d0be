"""What the Graph client hands its callers: listings with their proof, the failures that end a
collection unit, and the small parsers both the client and its worker pool use."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

RETRYABLE = frozenset({429, 500, 502, 503, 504})
MAX_RESTARTS = 3  # listings restarted after Directory_ExpiredPageToken
MAX_BACKOFF = 60.0


class UnitFailed(Exception):
    """A collection unit could not be completed; ``str(self)`` is the reason."""


class GraphFailure(UnitFailed):
    """Graph answered with an error status (after any retries)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}".strip())
        self.status = status
        self.code = code
        self.message = message


def next_link_loop(pages: int) -> str:
    return f"@odata.nextLink loop: page {pages} links back to a page already read"


class BudgetExhausted(UnitFailed):
    """Waiting any longer would exceed the source's time budget."""


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: ``"10"``, ``"2.128"`` or an HTTP-date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _error_of(body: Any) -> tuple[str, str]:
    """(code, first line of message) of a Graph error envelope (``innerError`` is not used:
    "message" is not to be branched on, code only; learn.microsoft.com/graph/errors)."""
    if not isinstance(body, Mapping) or not isinstance(body.get("error"), Mapping):
        return "", ""
    error = body["error"]
    message = str(error.get("message") or "")
    return str(error.get("code") or ""), (message.splitlines()[0][:300] if message else "")


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value)
    return None


@dataclass
class Listing:
    """Every item of a listing, with the proof it was read to the end."""

    items: list[dict[str, Any]]
    pages: int
    restarts: int = 0
    last: dict[str, Any] = field(default_factory=dict)  # the final page (holds a deltaLink)


@dataclass
class _Task:
    key: str
    first: str  # relative URL of page 1
    url: str  # relative URL of the next page
    items: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    restarts: int = 0
    attempts: int = 0
    not_before: float = 0.0
    refreshed: bool = False
    asked: set[str] = field(default_factory=set)  # pages asked for: a link back is a loop

    def __post_init__(self) -> None:
        self.asked.add(self.first)
