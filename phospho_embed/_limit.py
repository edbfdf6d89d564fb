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
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
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


class _Ticket:
    """A caller waiting for a slot. A release hands a free slot straight to the first
    ticket (first come, first served), so a call that arrives while another keeps every
    slot busy is not starved, and a release wakes one waiter, not all of them."""

    __slots__ = ("epoch", "granted", "loop", "wake")

    def __init__(
        self,
        wake: threading.Event | asyncio.Future[None],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.wake = wake
        self.loop = loop
        self.granted = False
        self.epoch = 0


class _Gate:
    """The slot accounting shared by `ThreadGate` and `AsyncGate` (thread-safe)."""

    def __init__(self, limit: AdaptiveLimit) -> None:
        self._limit = limit
        self._active = 0
        self._lock = threading.Lock()
        self._waiters: deque[_Ticket] = deque()

    @property
    def idle(self) -> bool:
        """Whether no request holds a slot."""
        return self._active == 0

    def _take_or_queue(self, ticket: _Ticket) -> int | None:
        """The epoch of a free slot taken now, or ``None`` with ``ticket`` queued."""
        with self._lock:
            if self._active < self._limit.current and not self._waiters:
                self._active += 1
                return self._limit.epoch
            self._waiters.append(ticket)
            return None

    def _settle(self, ticket: _Ticket) -> int | None:
        """After a wait: the epoch if ``ticket`` was given a slot, else ``None`` (dequeued)."""
        with self._lock:
            if ticket.granted:
                return ticket.epoch
            self._waiters.remove(ticket)
            return None

    def _give_back(self, ticket: _Ticket) -> None:
        """A waiter that stops waiting (cancelled) frees the slot it may have been given."""
        with self._lock:
            if ticket.granted:
                self._active -= 1
                self._grant()
            else:
                self._waiters.remove(ticket)

    def _release(self, held: Slot) -> None:
        assert held.epoch is not None
        self._limit.record(held.epoch, held.outcome)
        with self._lock:
            self._active -= 1
            self._grant()

    def _grant(self) -> None:
        """Hand free slots to the first waiters (lock held)."""
        while self._waiters and self._active < self._limit.current:
            ticket = self._waiters.popleft()
            ticket.granted, ticket.epoch = True, self._limit.epoch
            self._active += 1
            if not _wake(ticket):
                ticket.granted = False  # its event loop has closed: nobody waits there
                self._active -= 1


def _wake(ticket: _Ticket) -> bool:
    """Wake a ticket's owner; ``False`` when its event loop has closed."""
    wake = ticket.wake
    if isinstance(wake, threading.Event):
        wake.set()
        return True
    if ticket.loop is _running_loop():
        _resolve(wake)
        return True
    try:
        assert ticket.loop is not None
        ticket.loop.call_soon_threadsafe(_resolve, wake)
    except RuntimeError:
        return False
    return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class ThreadGate(_Gate):
    """Makes threads wait for a slot under an `AdaptiveLimit`."""

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
        ticket = _Ticket(threading.Event())
        epoch = self._take_or_queue(ticket)
        if epoch is not None:
            return epoch
        assert isinstance(ticket.wake, threading.Event)
        try:
            ticket.wake.wait(timeout)
        except BaseException:  # Ctrl-C in the main thread: hand on a slot given meanwhile
            self._give_back(ticket)
            raise
        return self._settle(ticket)


class AsyncGate(_Gate):
    """Makes tasks wait for a slot under an `AdaptiveLimit`, across every event loop and
    thread that shares it: one client keeps one bound, however many loops run it.

    A waiting task sleeps on a future of its own loop; a release from another loop wakes it
    through ``call_soon_threadsafe``.
    """

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
        ticket = _Ticket(loop.create_future(), loop)
        epoch = self._take_or_queue(ticket)
        if epoch is not None:
            return epoch
        assert isinstance(ticket.wake, asyncio.Future)
        try:
            await asyncio.wait_for(ticket.wake, timeout)
        except (TimeoutError, asyncio.TimeoutError):  # one class since 3.11, two before
            pass
        except BaseException:  # cancelled: a slot given meanwhile goes to the next waiter
            self._give_back(ticket)
            raise
        return self._settle(ticket)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
