"""Real-world pace for the Graph emulator: a latency model and Microsoft's throttling model.

Both are off by default (the emulator answers at once and never throttles unless a test adds a
:class:`~accessaudit.graphemu.faults.Fault`) and switched on from the constructor::

    GraphEmulator(pki, pace=Pace(Latency(ms=150, jitter_ms=30, item_ms=2, seed=1), Throttle()))

or from the benchmark (``python benchmarks/entra.py --latency-ms 150 --jitter-ms 30 --throttle``).

**Latency** (:class:`Latency`): every Graph round trip (a plain request or a ``$batch``
envelope; token and discovery requests are left out) is answered after ``ms`` ± a uniform jitter
of ``jitter_ms`` (seeded, so a run can be repeated) plus ``item_ms`` per ``$batch`` item. The
emulator sleeps in the request's own thread, after the reply is computed and outside every lock,
so requests in flight at once overlap as they do against Graph.

**Throttling** (:class:`Throttle`), after "Microsoft Graph service-specific throttling limits",
section *Identity and access service limits* (learn.microsoft.com/graph/throttling-limits,
ms.date 2024-06-19 / 2025-01-14; the page says the limits "are subject to change"):

* a token bucket of *resource units* (RU) per application + tenant pair, refilled over
  10 seconds: S 3,500, M 5,000, L 8,000 RU per 10 s, by tenant size (S under 50 users, M 50 to
  500, L above 500). The bucket starts full and refills continuously (capacity / 10 per second);
* each request's cost: a base cost by path (``GET users`` 2, ``GET groups/{id}/members`` 3,
  ``GET groups/{id}/transitiveMembers`` 5, ``GET servicePrincipals/{id}/appRoleAssignments`` 2,
  ``GET applications`` 2, ``GET oauth2PermissionGrants`` 2, ``GET subscribedSkus`` 3,
  ``GET contracts`` 3, ``GET users/{id}/memberOf`` and the other ``me/`` paths 2,
  ``POST directoryObjects/getByIds`` 3, anything else 1), ``$select`` -1, ``$expand`` +1,
  ``$top`` below 20 -1, never below 1;
* a request whose cost the bucket cannot pay is refused with ``429 TooManyRequests``,
  ``Retry-After`` (the seconds until the bucket holds its cost, fractional like the ``2.128`` of
  learn.microsoft.com/graph/throttling), ``x-ms-throttle-scope``
  (``Tenant_Application/ReadWrite/<app>/<tenant>``) and ``x-ms-throttle-information:
  ResourceUnitLimitExceeded``; a refused request costs nothing;
* answered requests carry ``x-ms-resource-unit`` (their cost) and, past 80% of the bucket,
  ``x-ms-throttle-limit-percentage``;
* ``$batch``: "requests in a batch are evaluated individually against the applicable throttling
  limits" (learn.microsoft.com/graph/throttling): each item pays its own cost and gets its own
  429 inside a 200 envelope; the envelope itself costs nothing.

Left out: the write quota (the connector only reads), the per-application limit across tenants
(150,000 RU per 20 s, far above one tenant's) and the 429s Graph may send "even when the
following limits are not reached" (the fault switches cover those).
"""

from __future__ import annotations

import base64
import json
import math
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from accessaudit.graphemu.tenant import Tenant

#: RU per application + tenant pair per 10 seconds, by tenant size.
QUOTA: Final = {"S": 3500, "M": 5000, "L": 8000}
WINDOW: Final = 10.0  # seconds the quota is counted over

#: Base costs of GET requests (path with ``{id}`` segments); everything else costs 1.
_GET_COSTS: Final = (
    (re.compile(r"/users(/delta)?"), 2),
    (re.compile(r"/applications"), 2),
    (re.compile(r"/applications/[^/]+/extensionProperties"), 2),
    (re.compile(r"/contracts"), 3),
    (re.compile(r"/domains/[^/]+/domainNameReferences"), 4),
    (re.compile(r"/groups/[^/]+/members"), 3),
    (re.compile(r"/groups/[^/]+/transitiveMembers"), 5),
    (re.compile(r"/(me|users/[^/]+)/(licenseDetails|memberOf|ownedObjects|transitiveMemberOf)"), 2),
    (re.compile(r"/oauth2PermissionGrants(/[^/]+)?"), 2),
    (re.compile(r"/servicePrincipals/[^/]+/appRoleAssignments"), 2),
    (re.compile(r"/subscribedSkus"), 3),
)
_POST_COSTS: Final = (
    (re.compile(r"/(directoryObjects/getByIds|getObjectsById)"), 3),
    (re.compile(r"/(me|users/[^/]+)/checkMember(Groups|Objects)|/isMemberOf"), 4),
    (re.compile(r"/(me|users/[^/]+)/getMember(Groups|Objects)"), 2),
)


def tenant_size(users: int) -> str:
    """S under 50 users, M 50 to 500, L above 500 (the note under the limits table)."""
    return "S" if users < 50 else "M" if users <= 500 else "L"


def request_cost(method: str, target: str) -> int:
    """Resource units one request costs: base cost by path, then the query-option modifiers."""
    parts = urlsplit(target)
    path = unquote(parts.path)
    for prefix in ("/v1.0", "/beta"):
        if path.startswith(prefix + "/"):
            path = path[len(prefix) :]
    path = path.rstrip("/")
    table = _GET_COSTS if method.upper() == "GET" else _POST_COSTS
    cost = next((c for pattern, c in table if pattern.fullmatch(path)), 1)
    options = {k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
    if "$select" in options:
        cost -= 1
    if "$expand" in options:
        cost += 1
    top = options.get("$top", "")
    if top.isdigit() and int(top) < 20:
        cost -= 1
    return max(1, cost)


@dataclass(frozen=True)
class Latency:
    """Per round trip: ``ms`` ± ``jitter_ms`` (uniform, seeded), plus ``item_ms`` per item."""

    ms: float = 0.0
    jitter_ms: float = 0.0
    item_ms: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.ms, self.jitter_ms, self.item_ms) < 0 or self.jitter_ms > self.ms:
            raise ValueError("latency: ms, jitter_ms and item_ms >= 0, jitter_ms <= ms")


class Delays:
    """The delays of one emulator, drawn from the latency model's seeded generator."""

    def __init__(self, model: Latency, sleep: Callable[[float], None] = time.sleep) -> None:
        self.model = model
        self._rng = random.Random(model.seed)
        self._lock = threading.Lock()
        self._sleep = sleep

    def delay(self, items: int = 0) -> float:
        """Seconds one round trip carrying ``items`` ``$batch`` items takes."""
        m = self.model
        with self._lock:
            jitter = self._rng.uniform(-m.jitter_ms, m.jitter_ms) if m.jitter_ms else 0.0
        return max(0.0, m.ms + jitter + items * m.item_ms) / 1000.0

    def wait(self, items: int = 0) -> None:
        """Sleep for one round trip (no lock held while sleeping)."""
        seconds = self.delay(items)
        if seconds > 0:
            self._sleep(seconds)


@dataclass
class Bucket:
    """Resource units of one application + tenant pair."""

    capacity: float
    tokens: float
    at: float  # monotonic time ``tokens`` was computed
    window: float = WINDOW  # seconds a full bucket takes to refill

    @property
    def rate(self) -> float:
        return self.capacity / self.window

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def take(self, cost: int, now: float) -> float | None:
        """Pay ``cost`` and return None, or the seconds until the bucket could pay it."""
        self.refill(now)
        if self.tokens >= cost:
            self.tokens -= cost
            return None
        return (cost - self.tokens) / self.rate


@dataclass
class Charge:
    """What the throttling model decided for one request."""

    cost: int
    retry_after: float | None  # None: answered; else refused with this Retry-After
    headers: dict[str, str]


@dataclass
class Throttle:
    """Microsoft's identity-and-access resource-unit model, one bucket per app + tenant pair.

    ``size`` forces a tenant size ("S", "M", "L"); by default it follows the tenant's users.
    ``quota`` and ``window`` replace Microsoft's figures (a small, fast bucket makes a test
    tenant of a few dozen groups throttle); ``clock`` is injectable for tests.
    :attr:`charged` / :attr:`refused` count requests and :attr:`units` the RU paid."""

    size: str | None = None
    quota: int | None = None
    window: float = WINDOW
    clock: Callable[[], float] = time.monotonic
    buckets: dict[tuple[str, str], Bucket] = field(default_factory=dict)
    charged: int = 0
    refused: int = 0
    units: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.size is not None and self.size not in QUOTA:
            raise ValueError(f"throttle: tenant size {self.size!r} is not S, M or L")
        if (self.quota is not None and self.quota < 1) or self.window <= 0:
            raise ValueError("throttle: quota >= 1 and window > 0")

    def capacity(self, users: int) -> int:
        """RU per window of one app + tenant pair."""
        return self.quota or QUOTA[self.size or tenant_size(users)]

    def charge(
        self, tenant_id: str, app_id: str, users: Callable[[], int], method: str, target: str
    ) -> Charge:
        """Pay for one request of ``app_id`` in ``tenant_id`` (``users()`` sizes a new bucket)."""
        cost = request_cost(method, target)
        key = (tenant_id, app_id)
        with self._lock:
            now = self.clock()
            bucket = self.buckets.get(key)
            if bucket is None:
                capacity = float(self.capacity(users()))
                bucket = self.buckets[key] = Bucket(capacity, capacity, now, self.window)
            wait = bucket.take(cost, now)
            if wait is not None:
                self.refused += 1
                return Charge(cost, wait, self._refused_headers(app_id, tenant_id, wait))
            self.charged += 1
            self.units += cost
            used = 1.0 - bucket.tokens / bucket.capacity
        headers = {"x-ms-resource-unit": str(cost)}
        if used > 0.8:
            headers["x-ms-throttle-limit-percentage"] = f"{used:.1f}"
        return Charge(cost, None, headers)

    @staticmethod
    def _refused_headers(app_id: str, tenant_id: str, wait: float) -> dict[str, str]:
        return {
            "Retry-After": f"{math.ceil(wait * 1000) / 1000:.3f}",
            "x-ms-throttle-scope": f"Tenant_Application/ReadWrite/{app_id}/{tenant_id}",
            "x-ms-throttle-information": "ResourceUnitLimitExceeded",
        }

    def budget(self, users: int, seconds: float) -> float:
        """RU one app may spend in ``seconds`` from a full bucket: capacity + refill."""
        capacity = self.capacity(users)
        return capacity + seconds * capacity / self.window


class Pace:
    """What :class:`~accessaudit.graphemu.server.GraphEmulator` applies to every request: the
    latency of a round trip, the throttling model's charge; each off unless given."""

    def __init__(
        self,
        latency: Latency | None = None,
        throttle: Throttle | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.delays = Delays(latency, sleep) if latency else None
        self.throttle = throttle

    def wait(self, kind: str, body: Any) -> None:
        """Sleep for one Graph round trip (an envelope's delay grows with its items)."""
        if self.delays is None or kind not in ("graph", "batch", "arm"):
            return
        items = body.get("responses") if isinstance(body, dict) else None
        self.delays.wait(len(items) if isinstance(items, list) else 0)

    def charge(
        self, tenant: Tenant, headers: Mapping[str, str], method: str, target: str
    ) -> Charge:
        """The throttling model's decision for one request (or a top-level ``$batch`` item)."""
        if self.throttle is None:
            return Charge(0, None, {})
        app = app_of(headers.get("authorization", ""))
        users = lambda: sum(1 for kind in tenant.types.values() if kind == "user")  # noqa: E731
        return self.throttle.charge(tenant.tenant_id, app, users, method, target)


def app_of(authorization: str) -> str:
    """The ``appid`` claim of a bearer token (already verified by the caller), or ""."""
    token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return ""
    return str(claims.get("appid") or claims.get("azp") or "") if isinstance(claims, dict) else ""
