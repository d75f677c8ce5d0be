"""Several ``$batch`` envelopes in flight at once, paced by the 429s Graph sends back.

Against real Graph a round trip takes 0.2-0.5 s, so a sequential walk of a large tenant's
``$batch`` queue is bound by latency, not by the service. :class:`BatchPool` runs a bounded pool
of worker threads over the one queue of listings that :meth:`GraphClient.list_many` builds; each
worker takes the next up-to-20 ready listings, sends one envelope and puts the listings that have
more pages (or must go again after a Retry-After) back on the shared queue.

After a 429 no new envelope leaves before its Retry-After has passed (Graph's advice: wait,
then retry; at most :data:`MAX_PAUSE`: a longer wait is the throttled listing's alone). How
many envelopes may be in flight is set by :class:`Aimd`, additive increase / multiplicative
decrease as in TCP congestion control: start at ``max_concurrency``, halve on a throttled
answer (a 429 envelope or a 429 item inside one; at most once per round trip: answers to
envelopes sent before the last cut do not cut again), add one after a round's worth of
envelopes without a 429, never above the configured maximum nor below one. Microsoft's
directory throttling is a token bucket of resource units per app per tenant
(learn.microsoft.com/graph/throttling-limits); a steady client stays just under its refill
rate, which AIMD finds without knowing the tenant's size. A 429 inside an envelope whose other
items were answered is the service pacing us, not a failure: it does not use up that item's
``max_retries`` (:meth:`GraphClient._item_retry`).

Every listing still ends in exactly one result (a :class:`~.graph_http.Listing` with its proof,
or the :class:`~.graph_http.UnitFailed` that stopped it), and the run's deadline holds: a worker
checks the time budget before each envelope, every request's timeout is cut to what is left,
and queued listings still waiting when the budget runs out fail with
:class:`~.graph_http.BudgetExhausted`. An unexpected error in a worker (TLS, authority
unreachable) stops the others and is raised to the caller once every worker has ended.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

import requests

from accessaudit.config.sources import EntraSource
from accessaudit.transport.graph_types import Listing, UnitFailed, _Task

#: Envelopes answered without a 429 before one more may be in flight: a round's worth (the
#: current limit, as TCP's one more per round trip), at least this many.
SUCCESS_RUN: Final = 4
#: The longest pause of the whole pool after a 429: a longer Retry-After (one resource's own
#: limit, a fault) is that listing's wait alone.
MAX_PAUSE: Final = 1.0


class Aimd:
    """The number of envelopes allowed in flight, adapted to 429s."""

    def __init__(self, maximum: int, run: int = SUCCESS_RUN) -> None:
        if maximum < 1:
            raise ValueError("maximum concurrency must be at least 1")
        self.maximum = maximum
        self.limit = maximum
        self.run = run
        self.cuts = 0  # times the limit was halved
        self.lowest = maximum
        self._streak = 0
        self._cut_at = float("-inf")
        self.resume_at = float("-inf")  # no new envelope before (the latest Retry-After)
        self._lock = threading.Lock()

    def throttled(self, sent_at: float, wait: float = 0.0) -> None:
        """A 429 answered a request sent at ``sent_at``: no new envelope for ``wait`` seconds
        (its Retry-After), and halve, once per round trip."""
        with self._lock:
            self._streak = 0
            self.resume_at = max(self.resume_at, time.monotonic() + min(wait, MAX_PAUSE))
            if sent_at < self._cut_at:
                return  # sent before the last cut: that cut already accounts for it
            self.limit = max(1, self.limit // 2)
            self.lowest = min(self.lowest, self.limit)
            self.cuts += 1
            self._cut_at = time.monotonic()

    def succeeded(self) -> None:
        """An envelope came back without a 429: one more in flight after a run of them."""
        with self._lock:
            self._streak += 1
            if self._streak >= max(self.run, self.limit) and self.limit < self.maximum:
                self.limit += 1
                self._streak = 0


class ClientThreads:
    """The threaded side of :class:`~.graph_http.GraphClient`: a ``requests`` session per
    thread (``requests.Session`` is not documented as thread-safe: ``sessions`` makes the
    session of every thread but the client's own, which uses ``session``), counters shared
    under a lock, and the pace of the pool a worker thread is in."""

    _cfg: EntraSource

    def _threads(
        self, session: requests.Session, sessions: Callable[[], requests.Session] | None
    ) -> None:
        self._main = session
        self._sessions = sessions
        self._local = threading.local()
        self._owner = threading.current_thread()
        self._lock = threading.Lock()  # round_trips, throttled, token refresh
        self.round_trips = 0
        self.throttled = 0  # 429 answers (envelopes and $batch items)

    @property
    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            own = self._sessions is not None and threading.current_thread() is not self._owner
            session = self._sessions() if own and self._sessions else self._main
            self._local.session = session
            self._local.own = own
        return session

    def release_session(self) -> None:
        """Close this thread's own session (made by ``sessions``), if it has one."""
        session = getattr(self._local, "session", None)
        if session is not None and getattr(self._local, "own", False):
            session.close()
        self._local.session = None

    @property
    def batch_size(self) -> int:
        return self._cfg.batch_size

    @property
    def max_concurrency(self) -> int:
        return int(getattr(self._cfg, "max_concurrency", 1))

    def _count_trip(self) -> None:
        with self._lock:
            self.round_trips += 1

    def _note_throttle(self, wait: float | None) -> None:
        """A 429 (to be retried after ``wait`` s): counted, and told to this thread's pace (if
        it runs in a pool)."""
        with self._lock:
            self.throttled += 1
        pace: Aimd | None = getattr(self._local, "pace", None)
        if pace is not None:
            self._local.was_throttled = True
            pace.throttled(self._local.sent_at, wait or 0.0)

    def paced_round(
        self,
        ready: list[_Task],
        queue: deque[_Task],
        results: dict[str, Listing | UnitFailed],
        pace: Aimd,
    ) -> bool:
        """:meth:`_batch_round` in a pool's worker; True when a 429 answered it."""
        self._local.pace, self._local.sent_at = pace, time.monotonic()
        self._local.was_throttled = False
        try:
            self._batch_round(ready, queue, results)
        finally:
            self._local.pace = None
        return bool(self._local.was_throttled)

    def _batch_round(
        self, ready: list[_Task], queue: deque[_Task], results: dict[str, Listing | UnitFailed]
    ) -> None:
        raise NotImplementedError

    def remaining(self) -> float:
        raise NotImplementedError

    def exhausted(self) -> UnitFailed:
        raise NotImplementedError


class BatchPool:
    """One ``list_many`` call's queue, worked by up to ``workers`` threads."""

    def __init__(
        self,
        client: ClientThreads,
        tasks: list[_Task],
        workers: int,
        late: Callable[[float], UnitFailed],
    ) -> None:
        self.client = client
        self.pace = Aimd(workers)
        self.queue: deque[_Task] = deque(tasks)
        self.waiting: list[tuple[float, int, _Task]] = []  # throttled items, by time they may go
        self.results: dict[str, Listing | UnitFailed] = {}
        self.active = 0
        self.error: BaseException | None = None
        self._late = late  # the failure of listings left when the budget runs out
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._workers = workers

    def run(self) -> dict[str, Listing | UnitFailed]:
        threads = [
            threading.Thread(target=self._work, name=f"graph-batch-{n}", daemon=True)
            for n in range(self._workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.error is not None:
            raise self.error
        return self.results

    # --- the shared queue (every method below runs with self._cond held) -----------------------

    def _fail_all(self, failure: UnitFailed) -> None:
        self.results.update((t.key, failure) for t in [*self.queue, *(w[2] for w in self.waiting)])
        self.queue.clear()
        self.waiting.clear()

    def _ready(self, now: float, size: int) -> list[_Task]:
        """Up to ``size`` queued listings that may go now; the others wait their turn."""
        ready: list[_Task] = []
        while self.queue and len(ready) < size:
            task = self.queue.popleft()
            if task.not_before > now:
                heapq.heappush(self.waiting, (task.not_before, next(self._order), task))
            else:
                ready.append(task)
        return ready

    def _take(self) -> list[_Task] | None:
        """The next listings to send, or None when this worker is done."""
        size = self.client.batch_size
        while True:
            if self.error is not None:
                return None
            left = self.client.remaining()
            if left <= 0:
                self._fail_all(self.client.exhausted())
                return None
            now = time.monotonic()
            while self.waiting and self.waiting[0][0] <= now:
                self.queue.append(heapq.heappop(self.waiting)[2])
            if not self.queue and not self.waiting and self.active == 0:
                return None
            pause = self.pace.resume_at - now
            if self.queue and self.active < self.pace.limit and pause > 0:
                self._cond.wait(min(pause, left))  # a Retry-After is running
                continue
            if self.queue and self.active < self.pace.limit:
                ready = self._ready(now, size)
                if ready:
                    self.active += 1
                    return ready
                continue
            timeout = min(left, 1.0)
            if self.waiting and not self.queue:
                wait = self.waiting[0][0] - now
                if wait > left and self.active == 0:
                    self._fail_all(self._late(wait))
                    return None
                timeout = min(timeout, max(wait, 0.0))
            self._cond.wait(timeout)

    # --- one worker ---------------------------------------------------------------------------

    def _work(self) -> None:
        try:
            while True:
                with self._cond:
                    ready = self._take()
                if ready is None:
                    return
                self._round(ready)
        except BaseException as exc:  # re-raised by run() once every worker has ended
            with self._cond:
                self.error = self.error or exc
                self._cond.notify_all()
        finally:
            self.client.release_session()

    def _round(self, ready: list[_Task]) -> None:
        back: deque[_Task] = deque()
        done: dict[str, Listing | UnitFailed] = {}
        try:
            throttled = self.client.paced_round(ready, back, done, self.pace)
        finally:
            with self._cond:
                self.active -= 1
                self.queue.extend(back)
                self.results.update(done)
                self._cond.notify_all()
        if not throttled:
            self.pace.succeeded()
