"""`AsyncPhosphoClient`: the asyncio client, over ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator, Callable, Iterable
from contextlib import suppress
from functools import partial
from typing import TYPE_CHECKING

import anyio
import httpx

from phospho_embed import wire
from phospho_embed._batch import Batch, BatchOptions
from phospho_embed._core import ClientBase, ClientCore, pool_sizes
from phospho_embed._limit import AsyncGate
from phospho_embed._retry import Sleep
from phospho_embed.errors import PhosphoError

if TYPE_CHECKING:
    from typing_extensions import Unpack


class _LoopPools:
    """The connection pools of one event loop: connections belong to the loop that opened
    them, and notebooks, ``asyncio.run`` twice or several threads bring several loops.

    A request cut short while its connection was still opening can leave that connection
    stuck in httpcore's pool, counted as busy for ever: the pool it went through is then
    `renew`-ed (replaced by a fresh one, and closed once its other requests are done).
    """

    def __init__(
        self,
        pools: list[httpx.AsyncClient],
        make: Callable[[int], httpx.AsyncClient] | None,
        sizes: list[int],
    ) -> None:
        self.pools = pools
        self.closer: AsyncGenerator[None, None] | None = None
        self._make = make  # None: an injected client, which is the caller's to manage
        self._sizes = sizes
        self._busy: dict[httpx.AsyncClient, int] = dict.fromkeys(pools, 0)
        self.retired: list[httpx.AsyncClient] = []
        self._closing: set[asyncio.Task[None]] = set()

    def pick(self) -> httpx.AsyncClient:
        """The least busy pool, counted busy until `done`."""
        http = min(self.pools, key=self._busy.__getitem__)
        self._busy[http] += 1
        return http

    def done(self, http: httpx.AsyncClient) -> None:
        """A request through ``http`` ended; a renewed pool closes with its last request."""
        self._busy[http] -= 1
        if http in self.retired and not self._busy[http]:
            self.retired.remove(http)
            del self._busy[http]
            task = asyncio.get_running_loop().create_task(http.aclose())
            self._closing.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._closing.discard)

    def renew(self, http: httpx.AsyncClient) -> None:
        """Replace ``http`` by a fresh pool of the same size (see the class docstring)."""
        if self._make is None or http not in self.pools:
            return
        index = self.pools.index(http)
        fresh = self._make(self._sizes[index])
        self.pools[index] = fresh
        self._busy[fresh] = 0
        self.retired.append(http)


class AsyncPhosphoClient(ClientBase[httpx.AsyncClient]):
    """Asynchronous client of the phospho intent-embed API; the same settings as
    `PhosphoClient`, with ``http_client`` an ``httpx.AsyncClient``:

    ```python
    async with AsyncPhosphoClient() as client:
        vector = await client.embed("I want to cancel my order")
        vectors = await client.embed_many(["where is my parcel?", "refund please"])
    ```

    One client serves any number of event loops, in any threads, one after the other or at
    once, and keeps one ``max_concurrency`` bound across all of them. Connection pools
    belong to a loop: each loop gets its own, at its first call, kept for the loop's life
    and closed when the loop ends (``asyncio.run`` returning, or a loop closed by hand), or
    by `aclose`.
    """

    _http_type = httpx.AsyncClient

    def _prepare(self) -> None:
        # One gate for every loop: the bound is the client's, not a loop's.
        self._gate = AsyncGate(self._core.limit)
        # Keyed weakly: a loop that is gone takes its entry with it.
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPools] = (
            weakref.WeakKeyDictionary()
        )
        self._loops_lock = threading.Lock()

    # -- public API -----------------------------------------------------------------------

    async def embed(self, text: str) -> list[float]:
        """Embed one text (one request, retried on transient failures).

        Raises:
            TypeError / ValueError: ``text`` is not a non-empty string; nothing is sent.
            PhosphoError: a subclass saying what went wrong.
        """
        wire.check_text(text)
        return await self._request(await self._pools(), text, None)

    async def embed_many(
        self, texts: Iterable[str], **options: Unpack[BatchOptions]
    ) -> list[list[float]]:
        """Embed many texts concurrently; the vectors come back in input order.

        The same contract and arguments as `PhosphoClient.embed_many`: one request per
        distinct text, at most ``max_concurrency`` in flight (across concurrent calls too),
        inputs checked before anything is sent, transient failures retried, 401/402/403
        stopping the call, ``deadline`` and ``resume_from``, and `BatchEmbeddingError`
        keeping every vector that arrived. Cancelling the call cancels its requests.
        """
        batch = Batch(texts, dimension=self._core.dimension, **options)
        if batch.distinct:
            self._core.headers()  # a missing key fails here, before any request
            pools = await self._pools()
            workers = min(batch.distinct, self._core.options.max_concurrency)
            tasks = [asyncio.ensure_future(self._work(pools, batch)) for _ in range(workers)]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                # Cancelled, or a bug in a callback: no worker may outlive the call.
                batch.stop.set()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        return batch.result()

    async def aclose(self) -> None:
        """Close the connection pools this client opened (an injected client stays open).

        The running loop's pools are closed here; those of other loops still running are
        closed in their own loop, soon after.
        """
        self._closed = True
        with self._loops_lock:
            entries = list(self._loops.items())
            self._loops.clear()
        current = asyncio.get_running_loop()
        for loop, pools in entries:
            if pools.closer is None:
                continue
            if loop is current:
                await pools.closer.aclose()  # runs its finally: closes the pools
            elif not loop.is_closed():
                asyncio.run_coroutine_threadsafe(pools.closer.aclose(), loop)

    async def __aenter__(self) -> AsyncPhosphoClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- I/O ------------------------------------------------------------------------------

    async def _work(self, pools: _LoopPools, batch: Batch) -> None:
        """One worker of an ``embed_many`` call: request texts until none is left."""
        while (text := batch.next_text()) is not None:
            try:
                outcome: list[float] | PhosphoError = await self._request(pools, text, batch)
            except PhosphoError as exc:
                outcome = exc
            batch.record(text, outcome)

    async def _request(self, pools: _LoopPools, text: str, batch: Batch | None) -> list[float]:
        """One text, with retries; the vector or the last attempt's error."""
        core = self._core
        headers, body = core.headers(), core.body(text)
        attempts = core.attempts(batch)
        while True:
            async with self._gate.slot(attempts.wait_limit()) as slot:
                slot.outcome = await self._attempt(pools, headers, body, attempts.send())
            step = attempts.received(slot.outcome)
            if not isinstance(step, Sleep):
                return step
            await asyncio.sleep(step.seconds)

    async def _attempt(
        self, pools: _LoopPools, headers: dict[str, str], body: bytes, seconds: float
    ) -> list[float] | PhosphoError:
        """One request, read as a stream: at most ``seconds`` on the wall clock and
        `wire.MAX_RESPONSE_BYTES` of body."""
        core = self._core
        http = pools.pick()
        try:
            with anyio.fail_after(seconds):
                return await self._exchange(http, headers, body, seconds)
        except TimeoutError:
            pools.renew(http)  # cut mid-exchange: its connection may be left half-open
            return core.timeout_error("wall clock")
        except asyncio.CancelledError:
            pools.renew(http)
            raise
        finally:
            pools.done(http)

    async def _exchange(
        self, http: httpx.AsyncClient, headers: dict[str, str], body: bytes, seconds: float
    ) -> list[float] | PhosphoError:
        core = self._core
        reader = core.reader(seconds)
        url, timeout = core.options.url, core.httpx_timeout(seconds)
        try:
            async with http.stream(
                "POST", url, content=body, headers=headers, timeout=timeout
            ) as answer:
                # No local holds the raw answer: a traceback with its locals would show it.
                return core.accept(
                    answer.status_code, answer.headers, await reader.aread(answer.aiter_bytes())
                )
        except Exception as exc:  # failure() raises again what is not ours
            return core.failure(exc, self._closed)

    async def _pools(self) -> _LoopPools:
        """The running loop's pools, opened at its first call."""
        if self._closed:
            raise self._core.closed_error()
        loop = asyncio.get_running_loop()
        with self._loops_lock:
            pools = self._loops.get(loop)
        if pools is not None:
            return pools
        if self._injected_http is not None:
            pools = _LoopPools([self._injected_http], None, [0])
        else:
            sizes = pool_sizes(self._core.options.max_concurrency)
            # The factory holds the core, not the client: a reference back to the client
            # would make a cycle, which the garbage collector breaks sockets first.
            make = partial(_new_pool, self._core)
            pools = _LoopPools([make(size) for size in sizes], make, sizes)
            forget = weakref.WeakMethod(self._forget)  # weakly, for the same reason
            # The lists, not `pools`: `pools` holds the generator, and a cycle through it
            # would let the garbage collector finalize the sockets first.
            pools.closer = _close_with_loop(
                pools.pools, pools.retired, partial(_call_if_alive, forget, loop)
            )
            await anext(pools.closer)
            _close_before_loop_closes(loop, pools.closer)
        with self._loops_lock:
            return self._loops.setdefault(loop, pools)

    def _forget(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._loops_lock:
            self._loops.pop(loop, None)


def _new_pool(core: ClientCore, size: int) -> httpx.AsyncClient:
    """A connection pool of ``size`` connections for one event loop."""
    timeout = core.httpx_timeout(core.options.timeout)
    return httpx.AsyncClient(timeout=timeout, limits=core.httpx_limits(size))


def _call_if_alive(
    method: Callable[[], Callable[[asyncio.AbstractEventLoop], None] | None],
    loop: asyncio.AbstractEventLoop,
) -> None:
    bound = method()
    if bound is not None:
        bound(loop)


async def _close_with_loop(
    pools: list[httpx.AsyncClient], retired: list[httpx.AsyncClient], forget: Callable[[], None]
) -> AsyncGenerator[None, None]:
    """Closes a loop's ``pools`` (and the ``retired`` ones still open) when the loop ends.

    A loop that ends through ``asyncio.run`` (or a notebook kernel restarting) finalizes the
    async generators it started: this one's ``finally`` then closes the pools inside that
    loop, where it still can, instead of leaving sockets for the garbage collector. The
    lists are `_LoopPools`' own, changed in place when a pool is renewed.
    """
    try:
        yield
    finally:
        forget()
        for http in [*pools, *retired]:
            await http.aclose()


#: The closers still to run when a loop is closed by hand, per loop (one wrapper a loop).
_CLOSERS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, weakref.WeakSet[AsyncGenerator[None, None]]
] = weakref.WeakKeyDictionary()
_CLOSERS_LOCK = threading.Lock()


def _close_before_loop_closes(
    loop: asyncio.AbstractEventLoop, closer: AsyncGenerator[None, None]
) -> None:
    """Run ``closer`` when ``loop`` is closed without finalizing its async generators.

    ``loop.run_until_complete(...)`` then ``loop.close()``, as LlamaIndex's ``asyncio_run``
    does in a worker thread, skips the clean-up ``asyncio.run`` does; the pools would then
    keep their sockets until the garbage collector finds them. The loop's ``close`` is
    wrapped once, on this loop object only, to run every client's closer first.
    """
    with _CLOSERS_LOCK:
        closers = _CLOSERS.get(loop)
        if closers is None:
            closers = _CLOSERS[loop] = weakref.WeakSet()
            _wrap_close(loop, closers)
        closers.add(closer)


def _wrap_close(
    loop: asyncio.AbstractEventLoop, closers: weakref.WeakSet[AsyncGenerator[None, None]]
) -> None:
    close = loop.close

    def close_pools_then_loop() -> None:
        if not loop.is_running() and not loop.is_closed():
            for pending in list(closers):
                loop.run_until_complete(pending.aclose())  # a no-op once it has run
        close()

    with suppress(AttributeError):  # a loop implemented in C (uvloop) takes no new attribute
        loop.close = close_pools_then_loop  # type: ignore[method-assign]
