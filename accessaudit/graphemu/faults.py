"""Fault switches of the Graph emulator, settable per test.

A :class:`Fault` matches requests by path substring (top-level requests, ``$batch`` items or
both) and fires a number of times, optionally after letting some matching requests through::

    emu.faults.add(Fault(match="/users", status=429, retry_after="0.05", times=2))
    emu.faults.add(Fault(match="/members", where="batch", status=429, retry_after="0.05"))
    emu.faults.add(Fault(match="$skiptoken", action="expired-page-token"))
    emu.faults.add(Fault(match="/groups", action="drop"))          # connection cut mid-body
    emu.faults.add(Fault(match="/servicePrincipals", action="expire-token", times=1))
    emu.faults.add(Fault(match="deltatoken=", action="delta-reset"))  # 410 Gone + Location

``retry_after`` is the literal header value (``"2"``, ``"0.05"``, an HTTP-date) or ``None`` for
"no Retry-After header at all" (real directory 429s sometimes omit it: AzureHound issue #35).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

Where = Literal["any", "top", "batch"]
Action = Literal[
    "status",  # reply with `status` (429, 503, 504, 500, 401, 403 ...) and a Graph error body
    "drop",  # send the headers and half of the body, then close the connection
    "expire-token",  # revoke every access token issued so far; the request then fails with 401
    "expired-page-token",  # 400 Directory_ExpiredPageToken (undocumented 4xx; 400 assumed)
    "delta-reset",  # 410 Gone with a Location header holding an empty $deltatoken
]

#: Default error codes and messages per status, from learn.microsoft.com/graph/errors and
#: learn.microsoft.com/graph/throttling.
DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("Request_BadRequest", "Bad request."),
    401: ("InvalidAuthenticationToken", "Access token has expired or is not yet valid."),
    403: ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
    404: ("Request_ResourceNotFound", "Resource does not exist."),
    429: ("TooManyRequests", "Please retry again later."),
    500: ("generalException", "An unspecified error has occurred."),
    502: ("badGateway", "Bad gateway."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable."),
    504: ("gatewayTimeout", "The gateway did not receive a response in time."),
}


@dataclass
class Fault:
    match: str = ""  # substring of the request path + query ("" matches everything)
    status: int = 429
    action: Action = "status"
    retry_after: str | None = "1"
    where: Where = "any"
    times: int | None = 1  # None: every matching request, forever
    skip: int = 0  # let this many matching requests through first
    method: str | None = None
    code: str | None = None
    message: str | None = None
    seen: int = 0
    fired: int = 0

    def wants(self, method: str, target: str, in_batch: bool) -> bool:
        if self.where == "top" and in_batch:
            return False
        if self.where == "batch" and not in_batch:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        if self.match and self.match not in target:
            return False
        self.seen += 1
        if self.seen <= self.skip:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        return True


@dataclass
class Faults:
    """All active faults plus emulator-wide switches."""

    rules: list[Fault] = field(default_factory=list)
    #: how $batch responses are ordered: Graph documents "any order"; "reversed" keeps clients
    #: honest about matching responses by id.
    batch_order: Literal["request", "reversed"] = "reversed"
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.rules.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def pick(self, method: str, target: str, in_batch: bool) -> Fault | None:
        """The first fault that fires for this request, if any (counts the hit)."""
        with self._lock:
            for fault in self.rules:
                if fault.wants(method, target, in_batch):
                    return fault
        return None
