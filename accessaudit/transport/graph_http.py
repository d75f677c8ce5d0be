"""Microsoft Graph over HTTPS for the Entra connector: retries, paging and ``$batch``.

Every Graph request goes through :meth:`GraphClient._send`, which

* sends the bearer token and a ``client-request-id``;
* on 401 gets a fresh token once (learn.microsoft.com/graph/errors: expired tokens give
  ``InvalidAuthenticationToken``) and gives up on the second 401;
* on 429 / 5xx honours ``Retry-After`` (integer, fractional or HTTP-date; Graph's throttling page
  shows both ``10`` and ``2.128``) or, without it, backs off exponentially with jitter
  (real directory 429s may omit the header: AzureHound issue #35);
* stops at ``max_retries`` and at the source's total ``time_budget`` — a wait that would outlast
  the budget is not slept but reported.

Failures that end a collection unit raise :class:`UnitFailed` (one-line reason); the caller
records the unit as incomplete and carries on with the others.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from accessaudit.config.sources import EntraSource
from accessaudit.transport.graph_auth import TokenSource, transport_error
from accessaudit.transport.graph_pool import BatchPool, ClientThreads
from accessaudit.transport.graph_types import (
    MAX_BACKOFF,
    MAX_RESTARTS,
    RETRYABLE,
    BudgetExhausted,
    GraphFailure,
    Listing,
    UnitFailed,
    _error_of,
    _header,
    _Task,
    next_link_loop,
    parse_retry_after,
)

log = logging.getLogger(__name__)

__all__ = [
    "BudgetExhausted",
    "GraphClient",
    "GraphFailure",
    "Listing",
    "UnitFailed",
    "next_link_loop",
    "parse_retry_after",
]


class GraphClient(ClientThreads):
    """A small Graph client: one token source, one time budget, one session per thread.

    ``sessions`` makes the session of each further thread (``list_many``'s workers, a listing
    run aside): ``requests.Session`` is not documented as thread-safe. Without it every thread
    shares ``session``.
    """

    def __init__(
        self,
        cfg: EntraSource,
        session: requests.Session,
        tokens: TokenSource,
        source: str,
        *,
        deadline: float,
        sleep: Callable[[float], None] = time.sleep,
        sessions: Callable[[], requests.Session] | None = None,
    ) -> None:
        self._cfg = cfg
        self._threads(session, sessions)
        self._tokens = tokens
        self._source = source
        self._deadline = deadline
        self._sleep = sleep
        self.graph_url = cfg.graph_url.rstrip("/")
        parts = urlsplit(self.graph_url)
        self._origin = f"{parts.scheme}://{parts.netloc}".lower()
        self._prefix = parts.path.rstrip("/")
        self.host = parts.netloc
        self._ever_ok = False

    # --- budget and waiting -------------------------------------------------------------------

    def remaining(self) -> float:
        return self._deadline - time.monotonic()

    def exhausted(self) -> BudgetExhausted:
        return BudgetExhausted(f"time budget of {self._cfg.time_budget:g} s exhausted")

    def check_budget(self) -> None:
        if self.remaining() <= 0:
            raise self.exhausted()

    def _backoff(self, attempt: int) -> float:
        base = self._cfg.retry_backoff * 2.0 ** (attempt - 1)
        return min(MAX_BACKOFF, base) * (0.5 + random.random() / 2)

    def _wait(self, delay: float | None, attempt: int, what: str) -> None:
        told = delay is not None
        wait = delay if delay is not None else self._backoff(attempt)
        left = self.remaining()
        if wait > left:
            source = f"Retry-After {wait:g} s" if told else f"backoff of {wait:.1f} s"
            raise BudgetExhausted(
                f"{what}: {source} exceeds the remaining time budget "
                f"({max(left, 0.0):.1f} s of {self._cfg.time_budget:g} s)"
            )
        log.debug("%s: %s, waiting %.2f s (attempt %d)", self._source, what, wait, attempt)
        self._sleep(wait)

    # --- URLs ---------------------------------------------------------------------------------

    def url(self, relative: str) -> str:
        return self.graph_url + relative

    def relative(self, link: str) -> str:
        """An absolute ``@odata.nextLink`` on our Graph endpoint -> the relative URL ``$batch``
        needs ("absolute URLs in batch items fail", json-batching). Links to any other host are
        refused: following them would hand our bearer token to that host."""
        parts = urlsplit(link)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        if origin != self._origin or not parts.path.startswith(self._prefix + "/"):
            raise UnitFailed(f"link {link[:120]!r} is outside {self.graph_url}; not followed")
        rel = parts.path[len(self._prefix) :]
        return rel + (f"?{parts.query}" if parts.query else "")

    # --- one request --------------------------------------------------------------------------

    def _refresh(self, used: str) -> None:
        with self._lock:
            if self._tokens.token == used:  # nobody refreshed since this request was sent
                log.info("%s: Graph answered 401, acquiring a new token", self._source)
                self._tokens.refresh()

    def send(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One Graph request with retries; the parsed JSON body of a 2xx answer."""
        attempt = 0
        refreshed = False
        while True:
            self.check_budget()
            token = self._tokens.token
            send_headers = {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "client-request-id": str(uuid.uuid4()),
                **(headers or {}),
            }
            try:
                resp = self._session.request(
                    method,
                    url,
                    json=body,
                    headers=send_headers,
                    timeout=min(self._cfg.timeout, max(self.remaining(), 0.1)),
                    allow_redirects=False,
                )
                content = resp.content  # read fully here: a cut body raises now
            except requests.exceptions.SSLError as exc:
                raise transport_error(exc, self.host, self._source) from None
            except requests.RequestException as exc:
                self._count_trip()
                attempt += 1
                self._retry_connection(exc, attempt)
                continue
            self._count_trip()
            status = resp.status_code
            try:
                parsed: Any = resp.json() if content else {}
            except ValueError:
                parsed = {}
            code, message = _error_of(parsed)
            if status == 401:
                if refreshed:
                    raise GraphFailure(
                        status, code or "Unauthorized", f"{message} (after token refresh)"
                    )
                self._refresh(token)
                refreshed = True
                continue
            if status in RETRYABLE:
                delay = parse_retry_after(resp.headers.get("Retry-After"))
                if status == 429:
                    self._note_throttle(delay)
                attempt += 1
                if attempt > self._cfg.max_retries:
                    raise GraphFailure(
                        status, code, f"{message} (gave up after {self._cfg.max_retries} retries)"
                    )
                self._wait(delay, attempt, f"HTTP {status} {code}".strip())
                continue
            if status >= 400:
                raise GraphFailure(status, code or resp.reason or "error", message)
            if not isinstance(parsed, dict):
                raise UnitFailed(f"HTTP {status} with a body that is not a JSON object")
            self._ever_ok = True
            return parsed

    def _retry_connection(self, exc: requests.RequestException, attempt: int) -> None:
        """Wait before try ``attempt`` after a failed connection; raise once retries run out."""
        if attempt > self._cfg.max_retries:
            if not self._ever_ok:
                raise transport_error(
                    exc, f"Microsoft Graph at {self.graph_url}", self._source
                ) from None
            raise UnitFailed(
                f"connection to {self.host} failed {attempt} times: {type(exc).__name__}"
            ) from None
        self._wait(None, attempt, f"connection error ({type(exc).__name__})")

    # --- listings -----------------------------------------------------------------------------

    def list_all(self, target: str, *, headers: Mapping[str, str] | None = None) -> Listing:
        """Every page of a collection, following ``@odata.nextLink`` exactly as given.

        ``target`` is relative to graph_url, or an absolute link (a stored deltaLink).
        ``headers`` (e.g. ``ConsistencyLevel``) are resent on every page: Graph does not carry
        them over to nextLink requests (paging.md). An expired page token restarts the
        listing from page 1 and discards the partial result (cartography PR #2853).
        """
        first = target if target.startswith("https://") else self.url(target)
        if target.startswith("https://"):
            self.relative(target)  # same-origin check
        restarts = 0
        while True:
            items: list[dict[str, Any]] = []
            pages = 0
            url = first
            asked = {url}
            try:
                while True:
                    page = self.send("GET", url, headers=headers)
                    pages += 1
                    value = page.get("value") or []
                    items.extend(v for v in value if isinstance(v, dict))
                    link = page.get("@odata.nextLink")
                    if not link:
                        return Listing(items, pages, restarts, page)
                    self.relative(str(link))
                    url = str(link)
                    if url in asked:
                        raise UnitFailed(next_link_loop(pages))
                    asked.add(url)
            except GraphFailure as failure:
                if failure.code == "Directory_ExpiredPageToken" and restarts < MAX_RESTARTS:
                    restarts += 1
                    log.info(
                        "%s: page token expired after %d pages, restarting", self._source, pages
                    )
                    continue
                raise

    def list_many(self, jobs: list[tuple[str, str]]) -> dict[str, Listing | UnitFailed]:
        """Several listings (key, relative URL of page 1), packed into ``$batch`` requests.

        Up to ``batch_size`` (at most 20) requests per round trip; a listing's next page joins
        the queue behind the others. Items throttled inside a batch (429 with its own
        Retry-After, envelope 200) are retried after their delay; the SDKs do not do this
        (learn.microsoft.com/graph/throttling). With ``max_concurrency`` above 1 up to that many
        envelopes are in flight at once (:mod:`.graph_pool`, paced by 429s). The results come
        in the order of ``jobs`` whatever order the listings finished in.
        """
        if self._cfg.batch_size > 1 and self.max_concurrency > 1 and len(jobs) > 1:
            tasks = [_Task(key, target, target) for key, target in jobs]
            pool = BatchPool(self, tasks, self.max_concurrency, self._late)
            done = pool.run()
            log.info(
                "%s: %d listings, up to %d $batch requests in flight (lowest %d, %d cuts)",
                self._source, len(jobs), self.max_concurrency, pool.pace.lowest, pool.pace.cuts,
            )  # fmt: skip
            return {key: done.get(key, self.exhausted()) for key, _ in jobs}
        if self._cfg.batch_size == 1:
            out: dict[str, Listing | UnitFailed] = {}
            for key, target in jobs:
                try:
                    out[key] = self.list_all(target)
                except UnitFailed as failure:
                    out[key] = failure
            return out
        queue: deque[_Task] = deque(_Task(key, target, target) for key, target in jobs)
        waiting: list[tuple[float, int, _Task]] = []  # throttled items, by time they may go
        order = itertools.count()
        results: dict[str, Listing | UnitFailed] = {}
        while queue or waiting:
            try:
                self.check_budget()
            except BudgetExhausted as failure:
                results.update((t.key, failure) for t in [*queue, *(w[2] for w in waiting)])
                break
            now = time.monotonic()
            while waiting and waiting[0][0] <= now:
                queue.append(heapq.heappop(waiting)[2])
            ready: list[_Task] = []
            while queue and len(ready) < self._cfg.batch_size:
                task = queue.popleft()
                if task.not_before > now:
                    heapq.heappush(waiting, (task.not_before, next(order), task))
                else:
                    ready.append(task)
            if ready:
                self._batch_round(ready, queue, results)
                continue
            wait = waiting[0][0] - now
            if wait > self.remaining():
                late = self._late(wait)
                results.update((t.key, late) for t in [*queue, *(w[2] for w in waiting)])
                break
            self._sleep(wait)
        return results

    def _late(self, wait: float) -> BudgetExhausted:
        return BudgetExhausted(
            f"item Retry-After {wait:.2f} s exceeds the remaining time budget "
            f"({max(self.remaining(), 0):.1f} s of {self._cfg.time_budget:g} s)"
        )

    def _batch_round(
        self, ready: list[_Task], queue: deque[_Task], results: dict[str, Listing | UnitFailed]
    ) -> None:
        """One ``$batch`` request for the ``ready`` listings' next pages.

        A listing that is finished or failed goes into ``results``; one with more to read (its
        next page, or the same page again after a token refresh or a Retry-After) goes back on
        ``queue``.
        """
        payload = {
            "requests": [
                {"id": str(n), "method": "GET", "url": t.url} for n, t in enumerate(ready, 1)
            ]
        }
        token = self._tokens.token
        try:
            envelope = self.send("POST", self.url("/$batch"), body=payload)
        except UnitFailed as failure:
            results.update((t.key, failure) for t in ready)
            return
        by_id = {
            str(r.get("id")): r for r in envelope.get("responses") or [] if isinstance(r, dict)
        }
        unauthorized = False
        # a 429 in an envelope whose other items were answered is the service pacing us, not a
        # failure: it does not use up the item's retries (an envelope with no answered item does)
        progress = any(200 <= int(r.get("status") or 0) < 300 for r in by_id.values())
        for n, task in enumerate(ready, 1):
            answer = by_id.get(str(n))
            if answer is None:
                results[task.key] = UnitFailed("$batch response lacks this request's answer")
                continue
            status = int(answer.get("status") or 0)
            body = answer.get("body") if isinstance(answer.get("body"), dict) else {}
            assert isinstance(body, dict)
            if 200 <= status < 300:
                outcome = self._item_page(task, body)
            else:
                outcome = self._item_error(task, status, body, answer, progress)
                unauthorized = unauthorized or (status == 401 and outcome is None)
            if outcome is None:
                queue.append(task)
            else:
                results[task.key] = outcome
        if unauthorized:
            self._refresh(token)

    def _item_page(self, task: _Task, body: dict[str, Any]) -> Listing | UnitFailed | None:
        """A page a ``$batch`` item brought: the finished listing, its failure, or None when
        ``task`` has a next page to read."""
        task.pages += 1
        task.attempts = 0
        task.items.extend(v for v in body.get("value") or [] if isinstance(v, dict))
        link = body.get("@odata.nextLink")
        if not link:
            return Listing(task.items, task.pages, task.restarts, body)
        try:
            task.url = self.relative(str(link))
        except UnitFailed as failure:
            return failure
        if task.url in task.asked:
            return UnitFailed(next_link_loop(task.pages))
        task.asked.add(task.url)
        return None

    def _item_error(
        self,
        task: _Task,
        status: int,
        body: dict[str, Any],
        answer: dict[str, Any],
        progress: bool = False,
    ) -> UnitFailed | None:
        """A ``$batch`` item that failed: the listing's failure, or None when ``task`` goes
        round again (after a token refresh, after its Retry-After or backoff, or from page 1
        when its page token expired)."""
        code, message = _error_of(body)
        if status == 401:
            if task.refreshed:
                return GraphFailure(401, code, f"{message} (after token refresh)")
            task.refreshed = True
            return None
        if status in RETRYABLE:
            return self._item_retry(task, status, code, message, answer, progress)
        if code == "Directory_ExpiredPageToken" and task.restarts < MAX_RESTARTS:
            task.restarts += 1
            task.items, task.pages, task.url = [], 0, task.first
            task.asked = {task.first}
            return None
        return GraphFailure(status, code, message)

    def _item_retry(
        self,
        task: _Task,
        status: int,
        code: str,
        message: str,
        answer: dict[str, Any],
        progress: bool = False,
    ) -> UnitFailed | None:
        """A throttled or failing (5xx) item: when it may go again (``task.not_before``), or its
        failure once retries or the time budget run out. A 429 with a Retry-After in an
        envelope that made ``progress`` keeps the item's retries."""
        headers = answer.get("headers") if isinstance(answer.get("headers"), dict) else {}
        assert isinstance(headers, dict)
        delay = parse_retry_after(_header(headers, "Retry-After"))
        if status == 429:
            self._note_throttle(delay)
        if not (status == 429 and progress and delay is not None):
            task.attempts += 1
        if task.attempts > self._cfg.max_retries:
            return GraphFailure(
                status, code, f"{message} (gave up after {self._cfg.max_retries} retries)"
            )
        wait = delay if delay is not None else self._backoff(task.attempts)
        if wait > self.remaining():
            return BudgetExhausted(
                f"HTTP {status} {code}: Retry-After {wait:g} s exceeds the remaining "
                f"time budget ({max(self.remaining(), 0):.1f} s of "
                f"{self._cfg.time_budget:g} s)"
            )
        task.not_before = time.monotonic() + wait
        return None
