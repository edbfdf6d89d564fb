"""The retry decisions for one text, as a state object with no I/O (h11's idea).

`Attempts` says what a client should do next: send (with this timeout), sleep for so many
seconds, or stop with the vector or an error. Each client is then a thin driver that does
the sending and the sleeping in its own way (threads or asyncio), and the subtle rules (which
errors are retried, how long to wait, when a deadline or a stopped call ends the text) exist
once. The clock is read only through the call's `Batch`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from phospho_embed import wire
from phospho_embed._batch import Batch
from phospho_embed._options import ClientOptions
from phospho_embed.errors import APITimeoutError, PhosphoError

logger = logging.getLogger("phospho_embed")


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` before the next attempt."""

    seconds: float


class Attempts:
    """The attempts at one text: when to send, how long each may take, when to retry.

    The driver's loop:

    ```python
    attempts = Attempts(options, batch, count_retry)
    while True:
        timeout = attempts.send()            # raises when the text must not be sent now
        step = attempts.received(outcome_of_sending(timeout))
        if isinstance(step, Sleep):
            sleep(step.seconds)
        else:
            return step                      # the vector; an error was raised instead
    ```
    """

    def __init__(
        self,
        options: ClientOptions,
        batch: Batch | None,
        count_retry: Callable[[], None],
    ) -> None:
        self._options = options
        self._batch = batch
        self._count_retry = count_retry
        self._retry = 0
        self._last_error: PhosphoError | None = None

    def wait_limit(self) -> float | None:
        """The longest wait for a slot: what is left of the call's deadline (``None``: none)."""
        remaining = self._batch.remaining() if self._batch is not None else None
        return None if remaining is None else max(0.0, remaining)

    def send(self) -> float:
        """Seconds the next attempt may take: the ``timeout``, cut to the deadline.

        Raises:
            DeadlineExceededError: the call's deadline has passed (while waiting for a slot
                or between attempts): nothing may be sent after it.
            PhosphoError: the last attempt's error, when the call stopped while this text
                waited for its retry.
        """
        batch = self._batch
        if batch is None:
            return self._options.timeout
        if self._last_error is not None and batch.stop.is_set():
            raise self._last_error
        remaining = batch.remaining()
        if remaining is None:
            return self._options.timeout
        if remaining <= 0:
            raise batch.deadline_error(during_request=False)
        return min(self._options.timeout, remaining)

    def received(self, outcome: list[float] | PhosphoError) -> list[float] | Sleep:
        """What to do after an attempt: the vector is returned, a retry is a `Sleep`.

        Raises:
            PhosphoError: the attempt's error, when it is not retried: not retryable, retries
                spent, the call stopped, or the deadline would pass while waiting (a timeout
                the deadline caused becomes `DeadlineExceededError`).
        """
        if not isinstance(outcome, PhosphoError):
            return outcome
        batch = self._batch
        remaining = batch.remaining() if batch is not None else None
        error = outcome
        deadline_passed = batch is not None and remaining is not None and remaining <= 0
        if deadline_passed and isinstance(error, APITimeoutError):
            assert batch is not None
            error = batch.deadline_error(during_request=True)
        if (
            not wire.is_retryable(error)
            or self._retry >= self._options.max_retries
            or (batch is not None and batch.stop.is_set())
        ):
            raise error
        delay = wire.retry_delay(self._retry, error, self._options.retry_policy)
        if remaining is not None and delay >= remaining:
            raise error
        self._retry += 1
        self._last_error = error
        self._count_retry()
        logger.info(
            "phospho: retry %d of %d in %.2fs after %s: %s",
            self._retry,
            self._options.max_retries,
            delay,
            type(error).__name__,
            error,
        )
        return Sleep(delay)
