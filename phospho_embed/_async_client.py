"""`AsyncPhosphoClient`: the asyncio client, over ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

import httpx

from phospho_embed import wire
from phospho_embed._base import Batch, ClientCore, ProgressCallback, ResultCallback, Usage
from phospho_embed._limit import AsyncGate, Outcome
from phospho_embed._settings import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from phospho_embed.errors import BatchEmbeddingError, PhosphoError

#: Connections per ``httpx.AsyncClient``: httpcore 1.0's async pool spends CPU per request in
#: proportion to its connections, so one pool of 64 reaches ~13% of the throughput its
#: connections allow, where 4 pools of 16 reach ~75% (measured against the emulator).
CONNECTIONS_PER_POOL = 16


@dataclass
class _LoopState:
    """What must belong to one event loop: asyncio primitives and connections are bound to
    the loop that made them, and notebooks or ``asyncio.run`` twice bring fresh loops."""

    pools: list[httpx.AsyncClient]
    gate: AsyncGate
    closer: AsyncGenerator[None, None] | None = None
    calls: int = 0  # calls of this client running in the loop now
    busy: list[int] = field(init=False)  # requests in flight, per pool

    def __post_init__(self) -> None:
        self.busy = [0] * len(self.pools)

    def least_busy(self) -> int:
        """The pool to send the next request through."""
        return min(range(len(self.pools)), key=self.busy.__getitem__)


def _pool_sizes(connections: int) -> list[int]:
    """``connections`` split into pools of at most `CONNECTIONS_PER_POOL`, as even as can be."""
    count = math.ceil(connections / CONNECTIONS_PER_POOL)
    return [math.ceil(connections / count)] * count


class AsyncPhosphoClient:
    """Asynchronous client of the phospho intent-embed API; the same settings as
    `PhosphoClient`, with ``http_client`` an ``httpx.AsyncClient``:

    ```python
    async with AsyncPhosphoClient() as client:
        vector = await client.embed("I want to cancel my order")
        vectors = await client.embed_many(["where is my parcel?", "refund please"])
    ```

    The concurrency limit and (unless one is injected) the connection pools are created
    lazily inside the running event loop, and made anew when the client finds itself in
    another loop, so it also works across several ``asyncio.run`` calls in turn. A loop
    running outside the main thread is taken for a short-lived one (``asyncio.run`` in a
    worker thread, LlamaIndex's sync-over-async helper) that may be closed without the
    clean-up ``asyncio.run`` does: the client closes its pool there as soon as its last call
    in that loop returns, so no socket outlives it.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        project_id: str | None = None,
        model: str = wire.DEFAULT_MODEL,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        http_client: httpx.AsyncClient | None = None,
        retry_policy: wire.RetryPolicy | None = None,
        adaptive_concurrency: bool = True,
    ) -> None:
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise TypeError(
                f"http_client must be an httpx.AsyncClient, got {type(http_client).__name__}"
            )
        self._core = ClientCore(
            api_key=api_key,
            base_url=base_url,
            project_id=project_id,
            model=model,
            timeout=timeout,
            max_retries=max_retries,
            max_concurrency=max_concurrency,
            retry_policy=retry_policy,
            adaptive_concurrency=adaptive_concurrency,
        )
        self._injected_http = http_client
        # The state of the loop that used this client last. Only one is kept: a loop that
        # has been closed cannot use (or close) its connections any more anyway.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_state: _LoopState | None = None
        self._closed = False

    # -- public API -----------------------------------------------------------------------

    async def embed(self, text: str) -> list[float]:
        """Embed one text (one request, retried on transient failures).

        Raises:
            TypeError / ValueError: ``text`` is not a non-empty string; nothing is sent.
            PhosphoError: a subclass saying what went wrong.
        """
        wire.check_text(text)
        state = await self._enter()
        try:
            return await self._request(state, text, None)
        finally:
            await self._leave(state)

    async def embed_many(
        self,
        texts: Iterable[str],
        *,
        progress: ProgressCallback | None = None,
        on_embedding: ResultCallback | None = None,
        deadline: float | None = None,
        resume_from: BatchEmbeddingError | Sequence[list[float] | None] | None = None,
    ) -> list[list[float]]:
        """Embed many texts concurrently; the vectors come back in input order.

        The same contract and arguments as `PhosphoClient.embed_many`: one request per
        distinct text, at most ``max_concurrency`` in flight (across concurrent calls too),
        inputs checked before anything is sent, transient failures retried, 401/402/403
        stopping the call, ``deadline`` and ``resume_from``, and `BatchEmbeddingError`
        keeping every vector that arrived. Cancelling the call cancels its requests.
        """
        batch = Batch(texts, progress, on_embedding, deadline=deadline, resume_from=resume_from)
        if batch.distinct:
            self._core.headers()  # a missing key fails here, before any request
            state = await self._enter()
            workers = min(batch.distinct, self._core.settings.max_concurrency)
            tasks = [asyncio.ensure_future(self._work(state, batch)) for _ in range(workers)]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                # Cancelled, or a bug in a callback: no worker may outlive the call.
                batch.stop.set()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
            finally:
                await self._leave(state)
        return batch.result()

    @property
    def concurrency_limit(self) -> int:
        """Requests allowed in flight now: ``max_concurrency``, lower after 429s."""
        return self._core.limit.current

    @property
    def usage(self) -> Usage:
        """Requests billed, retries made and tokens counted so far by this client."""
        return self._core.usage

    @property
    def dimension(self) -> int | None:
        """The vectors' length, known after the first successful request."""
        return self._core.dimension

    async def aclose(self) -> None:
        """Close the connection pools this client opened (an injected client stays open).

        A pool opened in an earlier event loop was closed when that loop ended.
        """
        self._closed = True
        state, loop = self._loop_state, self._loop
        self._loop_state = self._loop = None
        if state is not None and state.closer is not None and loop is asyncio.get_running_loop():
            await state.closer.aclose()  # runs its finally: closes the pool

    async def __aenter__(self) -> AsyncPhosphoClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return self._core.describe(type(self).__name__)

    # -- I/O ------------------------------------------------------------------------------

    async def _work(self, state: _LoopState, batch: Batch) -> None:
        """One worker of an ``embed_many`` call: request texts until none is left."""
        while (text := batch.next_text()) is not None:
            try:
                outcome: list[float] | PhosphoError = await self._request(state, text, batch)
            except PhosphoError as exc:
                outcome = exc
            batch.record(text, outcome)

    async def _request(self, state: _LoopState, text: str, batch: Batch | None) -> list[float]:
        """One text, with retries; the vector or the last attempt's error."""
        core = self._core
        url, headers, body = core.settings.url, core.headers(), core.body(text)
        retry = 0
        while True:
            timeout = core.httpx_timeout(batch)
            outcome: Outcome = None
            epoch = await state.gate.acquire()
            try:
                outcome = await self._attempt(state, url, headers, body, timeout)
            finally:
                state.gate.release(epoch, outcome)
            if isinstance(outcome, list):
                return outcome
            error = core.deadline_cut(outcome, batch)
            delay = core.next_delay(error, retry, batch)
            if delay is None:
                raise error
            await asyncio.sleep(delay)
            if batch is not None and batch.stop.is_set():  # stopped while we slept
                raise error
            retry += 1

    async def _attempt(
        self,
        state: _LoopState,
        url: str,
        headers: dict[str, str],
        body: bytes,
        timeout: httpx.Timeout,
    ) -> list[float] | PhosphoError:
        pool = state.least_busy()
        state.busy[pool] += 1
        try:
            http = state.pools[pool]
            response = await http.post(url, content=body, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            return self._core.transport_error(exc)
        finally:
            state.busy[pool] -= 1
        try:
            return self._core.accept(response.status_code, response.headers, response.content)
        except PhosphoError as exc:
            return exc

    async def _enter(self) -> _LoopState:
        """The running loop's state, with this call counted in it."""
        state = await self._state()
        state.calls += 1
        return state

    async def _leave(self, state: _LoopState) -> None:
        """Count a call out; the last call in a short-lived loop closes the loop's pool."""
        state.calls -= 1
        short_lived = threading.current_thread() is not threading.main_thread()
        if state.calls or not short_lived or state.closer is None:
            return
        if self._loop_state is state:
            self._loop_state = self._loop = None
        await state.closer.aclose()

    async def _state(self) -> _LoopState:
        if self._closed:
            raise RuntimeError("this AsyncPhosphoClient is closed")
        loop = asyncio.get_running_loop()
        if self._loop_state is None or self._loop is not loop:
            if self._injected_http is not None:
                state = _LoopState([self._injected_http], AsyncGate(self._core.limit))
            else:
                timeout = self._core.httpx_timeout()
                pools = [
                    httpx.AsyncClient(timeout=timeout, limits=self._core.httpx_limits(size))
                    for size in _pool_sizes(self._core.settings.max_concurrency)
                ]
                state = _LoopState(pools, AsyncGate(self._core.limit))
                state.closer = _close_with_loop(pools)
                await anext(state.closer)
            self._loop_state, self._loop = state, loop
        return self._loop_state


async def _close_with_loop(pools: list[httpx.AsyncClient]) -> AsyncGenerator[None, None]:
    """Closes the ``pools`` when their event loop ends.

    A loop that ends (``asyncio.run`` returning, a notebook kernel restarting) finalizes the
    async generators it started: this one's ``finally`` then closes the connection pool
    inside that loop, where it still can, instead of leaving sockets for the garbage
    collector to warn about.
    """
    try:
        yield
    finally:
        for http in pools:
            await http.aclose()
