"""`PhosphoClient`: the synchronous client, over ``httpx.Client`` and a bounded thread pool."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

import httpx

from phospho_embed import wire
from phospho_embed._batch import Batch, BatchOptions
from phospho_embed._core import ClientBase, ClientCore, pool_sizes
from phospho_embed._deadline import attempt_ends_at, bound_sockets
from phospho_embed._limit import ThreadGate
from phospho_embed._options import ClientOptions
from phospho_embed._retry import Sleep
from phospho_embed.errors import PhosphoError

if TYPE_CHECKING:
    from typing_extensions import Unpack


class _Pools:
    """The connection pools of a sync client: at most `CONNECTIONS_PER_POOL` connections
    each (see there why), every request sent through the least busy."""

    def __init__(self, pools: list[httpx.Client]) -> None:
        self.pools = pools
        self._busy = [0] * len(pools)
        self._lock = threading.Lock()

    @contextmanager
    def pick(self) -> Iterator[httpx.Client]:
        """The least busy pool, counted busy for the ``with`` block."""
        with self._lock:
            index = min(range(len(self._busy)), key=self._busy.__getitem__)
            self._busy[index] += 1
        try:
            yield self.pools[index]
        finally:
            with self._lock:
                self._busy[index] -= 1

    def close(self) -> None:
        """Close every pool."""
        for http in self.pools:
            http.close()


def open_pools(options: ClientOptions) -> list[httpx.Client]:
    """Connection pools for ``options.max_concurrency`` connections, sized by `pool_sizes`,
    each cut at an attempt's end on the wall clock (`bound_sockets`). Shared with the Dask
    workers, which hand them to many clients."""
    timeout = ClientCore.httpx_timeout(options.timeout)
    pools = []
    for size in pool_sizes(options.max_concurrency):
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        http = httpx.Client(timeout=timeout, limits=limits)
        bound_sockets(http)
        pools.append(http)
    return pools


class PhosphoClient(ClientBase[httpx.Client]):
    """Synchronous client of the phospho intent-embed API.

    Every setting is an argument first, then an environment variable, then a default
    (the table is `ClientOptions`):

    ```python
    with PhosphoClient() as client:              # PHOSPHO_API_KEY from the environment
        vector = client.embed("I want to cancel my order")
        vectors = client.embed_many(["where is my parcel?", "refund please"])
    ```

    Takes ``options`` (a `ClientOptions`), ``http_client`` (an ``httpx.Client``) and
    ``**settings`` (any field of `ClientOptions`) as described in `ClientBase`.
    """

    _http_type = httpx.Client

    def _prepare(self) -> None:
        # Also run in a child process after os.fork(): the parent's threads, locks and
        # connections are not the child's to use.
        self._pools = None if self._injected_http is None else _Pools([self._injected_http])
        # One slot per request in flight: bounds embed() from many threads and concurrent
        # embed_many() calls together, under the limit that adapts to 429s.
        self._gate = ThreadGate(self._core.limit)
        self._setup_lock = threading.Lock()

    # -- public API -----------------------------------------------------------------------

    def embed(self, text: str) -> list[float]:
        """Embed one text (one request, retried on transient failures).

        Raises:
            TypeError / ValueError: ``text`` is not a non-empty string; nothing is sent.
            PhosphoError: a subclass saying what went wrong.
        """
        wire.check_text(text)
        return self._request(text, None)

    def embed_many(
        self, texts: Iterable[str], **options: Unpack[BatchOptions]
    ) -> list[list[float]]:
        """Embed many texts concurrently; the vectors come back in input order.

        One request per distinct text, at most ``max_concurrency`` in flight. Every text is
        checked before anything is sent. Transient failures are retried per text; a 401,
        402 or 403 stops the call at once.

        Args:
            texts: the texts (any iterable of strings, not a single string).
            **options: any of these keywords (`BatchOptions`):

                - ``progress``: called with the number of input texts each finished
                  request covers.
                - ``on_embedding``: called with ``(index, vector)`` for each input as soon
                  as its vector arrives, e.g. to write results out before the call ends.
                  Callbacks run in the worker threads, one at a time.
                - ``deadline``: a time budget in seconds for the whole call, waiting for a
                  free slot included: past it no request starts, requests in flight are
                  cut short, and the texts left get `DeadlineExceededError` in the
                  `BatchEmbeddingError`.
                - ``resume_from``: the `BatchEmbeddingError` (or its ``embeddings``) of an
                  earlier call on the same texts: only the texts it has no vector for are
                  sent, so ``client.embed_many(texts, resume_from=error)`` retries just the
                  failures.

        Raises:
            TypeError / ValueError: a bad input, naming its index; nothing is sent.
            BatchEmbeddingError: some texts failed; ``.embeddings`` keeps every vector that
                arrived, ``.errors`` says why the others failed, and ``.stopped_by`` is the
                401/402/403 that stopped the call, if one did.
            PhosphoError: the 401/402/403 error when it stopped the call before any vector.
        """
        batch = Batch(texts, dimension=self._core.dimension, **options)
        if batch.distinct:
            self._core.headers()  # a missing key fails here, before any thread starts
            self._client()  # and a closed client
            # A pool of this call's own (not one shared by every call): concurrent calls on
            # one client then run side by side under its one bound, instead of queueing for
            # workers. At exit, Python waits for executor threads, so after Ctrl-C the
            # requests in flight still land (the command line relies on it).
            workers = min(batch.distinct, self._core.options.max_concurrency)
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="phospho-embed")
            try:
                futures = [pool.submit(self._work, batch) for _ in range(workers)]
                for future in futures:
                    future.result()  # a bug in a callback is raised here
            finally:
                # On an interrupt or a bug, workers finish their current request and take
                # no other; on success this changes nothing.
                batch.stop.set()
                pool.shutdown(wait=False)
        return batch.result()

    def close(self) -> None:
        """Release the connection pool (an injected client stays open). A call running
        meanwhile sends nothing more and ends with `ClientClosedError`, keeping every vector
        that arrived: the requests in flight are paid for, so the pool closes when they end."""
        self._closed = True
        self._close_if_idle()

    def _close_if_idle(self) -> None:
        with self._setup_lock:
            if self._injected_http is None and self._pools is not None and self._gate.idle:
                self._pools.close()

    def __enter__(self) -> PhosphoClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- I/O ------------------------------------------------------------------------------

    def _work(self, batch: Batch) -> None:
        """One worker of an ``embed_many`` call: request texts until none is left. Anything
        but a `PhosphoError` (a bug in a callback) stops the call and is raised by it."""
        try:
            while (text := batch.next_text()) is not None:
                try:
                    outcome: list[float] | PhosphoError = self._request(text, batch)
                except PhosphoError as exc:
                    outcome = exc
                batch.record(text, outcome)
        except BaseException:
            batch.stop.set()  # the other workers take no other text
            raise

    def _request(self, text: str, batch: Batch | None) -> list[float]:
        """One text, with retries; the vector or the last attempt's error."""
        pools = self._client()
        core = self._core
        headers, body = core.headers(), core.body(text)
        attempts = core.attempts(batch)
        while True:
            if self._closed:  # nothing is sent once the client is closed, retries included
                raise core.closed_error()
            with self._gate.slot(attempts.wait_limit()) as slot, pools.pick() as http:
                slot.outcome = self._attempt(http, headers, body, attempts.send())
            if self._closed:  # closed while this request was in flight
                self._close_if_idle()
            step = attempts.received(slot.outcome)
            if not isinstance(step, Sleep):
                return step
            time.sleep(step.seconds)

    def _attempt(
        self, http: httpx.Client, headers: dict[str, str], body: bytes, seconds: float
    ) -> list[float] | PhosphoError:
        """One request, read as a stream: at most ``seconds`` on the wall clock and
        `wire.MAX_RESPONSE_BYTES` of body."""
        core = self._core
        reader = core.reader(seconds)
        url, timeout = core.options.url, core.httpx_timeout(seconds)
        try:
            with (
                attempt_ends_at(reader.ends_at),
                http.stream("POST", url, content=body, headers=headers, timeout=timeout) as answer,
            ):
                # No local holds the raw answer: a traceback with its locals would show it.
                return core.accept(
                    answer.status_code, answer.headers, reader.read(answer.iter_bytes())
                )
        except Exception as exc:  # failure() raises again what is not ours
            return core.failure(exc, self._closed)

    def _client(self) -> _Pools:
        if self._closed:
            raise self._core.closed_error()
        if self._pools is None:
            with self._setup_lock:
                if self._pools is None:
                    # Built at first use: an SSL context costs milliseconds, and frameworks
                    # construct embedders long before (or without ever) calling them.
                    pools = _Pools(open_pools(self._core.options))
                    # A client dropped without close() still closes its sockets.
                    weakref.finalize(self, pools.close)
                    self._pools = pools
        return self._pools
