"""How many requests a client keeps in flight: a bound that adapts to throttling (AIMD).

When the API answers 429 the client lowers the requests it keeps in flight to 0.7 of the
limit, and then raises the limit by one every three round trips as requests succeed (additive
increase, multiplicative decrease, as TCP does), between 1 and ``max_concurrency``. A burst
of 429s from requests sent at the same time counts as one decrease, not one per 429: each
request carries the *epoch* it was sent in, and only a 429 from the current epoch opens a
new one; the other 429s of the burst only bring the limit down to what the API accepted
(the burst's limit minus its refusals), which finds a hard cap in one step.

`AdaptiveLimit` is the arithmetic, shared by every thread and event loop of a client;
`ThreadGate` and `AsyncGate` make callers wait for a free `Slot`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass

from phospho_embed.errors import PhosphoError, RateLimitError

#: The limit kept after a 429; 0.7 (TCP CUBIC's choice) keeps throughput high on a hard cap.
DECREASE = 0.7
#: Round trips of successes per +1 of the limit.
INCREASE_WINDOWS = 3

Outcome = list[float] | PhosphoError | None
"""What an attempt ended with: a vector, an error, or ``None`` (interrupted)."""


class AdaptiveLimit:
    """The current bound on requests in flight (thread-safe)."""

    def __init__(self, maximum: int, adaptive: bool = True) -> None:
        self.maximum = maximum
        self.adaptive = adaptive
        self._limit = float(maximum)
        self._epoch = 0
        # The burst that ended the last epoch: its limit, and how many of its requests the
        # API refused. limit - refused is about what the API accepts at once.
        self._burst_limit = float(maximum)
        self._burst_refused = 0
        self._lock = threading.Lock()

    @property
    def current(self) -> int:
        """Requests allowed in flight now."""
        return max(1, int(self._limit))

    @property
    def epoch(self) -> int:
        """Bumped at every decrease; requests remember the epoch they were sent in."""
        return self._epoch

    def record(self, epoch: int, outcome: Outcome) -> None:
        """Adapt to one attempt's outcome (only successes and 429s count)."""
        if not self.adaptive:
            return
        with self._lock:
            if isinstance(outcome, RateLimitError):
                self._throttled(epoch)
            elif isinstance(outcome, list) and self._limit < self.maximum:
                # +1 per `INCREASE_WINDOWS` windows of `limit` successes: slow enough that
                # a hard cap is probed rarely, so few requests are refused.
                step = 1.0 / (INCREASE_WINDOWS * self._limit)
                self._limit = min(float(self.maximum), self._limit + step)

    def _throttled(self, epoch: int) -> None:
        if epoch == self._epoch:  # the first 429 of a burst: decrease, open a new epoch
            self._burst_limit, self._burst_refused = self._limit, 1
            self._limit = max(1.0, self._limit * DECREASE)
            self._epoch += 1
        elif epoch == self._epoch - 1:  # more 429s of that burst: the cap is lower still
            self._burst_refused += 1
            self._limit = max(1.0, min(self._limit, self._burst_limit - self._burst_refused))


@dataclass
class Slot:
    """One request's place under the limit: the epoch it was sent in (``None`` when the wait
    for a slot ran out) and what the attempt ended with, recorded on release."""

    epoch: int | None
    outcome: Outcome = None


class ThreadGate:
    """Makes threads wait for a slot under an `AdaptiveLimit`."""

    def __init__(self, limit: AdaptiveLimit) -> None:
        self._limit = limit
        self._active = 0
        self._changed = threading.Condition()

    @contextmanager
    def slot(self, timeout: float | None) -> Iterator[Slot]:
        """Hold a slot for the ``with`` block, waiting at most ``timeout`` seconds for one
        (``None``: as long as it takes); past that the slot's ``epoch`` is ``None``."""
        held = Slot(self._acquire(timeout))
        try:
            yield held
        finally:
            if held.epoch is not None:
                self._release(held)

    def _acquire(self, timeout: float | None) -> int | None:
        ends_at = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._active >= self._limit.current:
                left = None if ends_at is None else ends_at - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._changed.wait(left)
            self._active += 1
            return self._limit.epoch

    def _release(self, held: Slot) -> None:
        assert held.epoch is not None
        self._limit.record(held.epoch, held.outcome)
        with self._changed:
            self._active -= 1
            self._changed.notify_all()


class AsyncGate:
    """Makes tasks wait for a slot under an `AdaptiveLimit`, across every event loop and
    thread that shares it: one client keeps one bound, however many loops run it.

    A waiting task sleeps on a future of its own loop; a release from another loop wakes it
    through ``call_soon_threadsafe``.
    """

    def __init__(self, limit: AdaptiveLimit) -> None:
        self._limit = limit
        self._active = 0
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @asynccontextmanager
    async def slot(self, timeout: float | None) -> AsyncIterator[Slot]:
        """Hold a slot for the ``async with`` block, waiting at most ``timeout`` seconds for
        one (``None``: as long as it takes); past that the slot's ``epoch`` is ``None``."""
        held = Slot(await self._acquire(timeout))
        try:
            yield held
        finally:
            # Synchronous, so that a cancelled task frees its slot without awaiting.
            if held.epoch is not None:
                self._release(held)

    async def _acquire(self, timeout: float | None) -> int | None:
        loop = asyncio.get_running_loop()
        ends_at = None if timeout is None else loop.time() + timeout
        while True:
            with self._lock:
                if self._active < self._limit.current:
                    self._active += 1
                    return self._limit.epoch
                waiter = loop.create_future()
                self._waiters.append((loop, waiter))
            try:
                if ends_at is None:
                    await waiter
                else:
                    await asyncio.wait_for(waiter, ends_at - loop.time())
            except TimeoutError:
                return None
            finally:
                with self._lock:
                    if (loop, waiter) in self._waiters:
                        self._waiters.remove((loop, waiter))

    def _release(self, held: Slot) -> None:
        assert held.epoch is not None
        self._limit.record(held.epoch, held.outcome)
        with self._lock:
            self._active -= 1
            waiters, self._waiters = self._waiters, []
        current = _running_loop()
        for loop, waiter in waiters:  # every waiter checks again: the limit may have grown
            if loop is current:
                _wake(waiter)
            else:
                with suppress(RuntimeError):  # that loop has closed: nobody waits there
                    loop.call_soon_threadsafe(_wake, waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
