"""`PhosphoClient`: the synchronous client, over ``httpx.Client`` and a bounded thread pool."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

import httpx

from phospho_embed import wire
from phospho_embed._base import Batch, ClientCore, ProgressCallback, ResultCallback, Usage
from phospho_embed._limit import Outcome, ThreadGate
from phospho_embed._settings import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from phospho_embed.errors import BatchEmbeddingError, PhosphoError


class PhosphoClient:
    """Synchronous client of the phospho intent-embed API.

    Every setting is an argument first, then an environment variable, then a default:

    ```python
    with PhosphoClient() as client:              # PHOSPHO_API_KEY from the environment
        vector = client.embed("I want to cancel my order")
        vectors = client.embed_many(["where is my parcel?", "refund please"])
    ```

    Args:
        api_key: the API key; else ``PHOSPHO_API_KEY``. A missing key raises
            `MissingAPIKeyError` at the first request, not here.
        base_url: else ``PHOSPHO_BASE_URL``, else ``https://api.phospho.ai/v2``.
        project_id: else ``PHOSPHO_PROJECT_ID``; sent only when set.
        model: the model name the API expects (``"intent-embed"``).
        timeout: seconds per attempt (default 60; connecting gets at most 10 s).
        max_retries: retries after the first attempt, for transient failures only
            (default 4).
        max_concurrency: requests in flight at once, across every call on this client
            (default 16).
        http_client: an ``httpx.Client`` to send requests with (proxies, custom TLS, ...);
            the caller keeps ownership and closes it.
        retry_policy: backoff timings (`wire.RetryPolicy`); the defaults suit the real API.
        adaptive_concurrency: lower the requests in flight when the API answers 429 and
            raise them again as requests succeed (see `concurrency_limit`); ``False`` keeps
            ``max_concurrency`` whatever happens.
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
        http_client: httpx.Client | None = None,
        retry_policy: wire.RetryPolicy | None = None,
        adaptive_concurrency: bool = True,
    ) -> None:
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise TypeError(
                f"http_client must be an httpx.Client, got {type(http_client).__name__}"
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
        self._http = http_client
        self._owns_http = http_client is None
        # One slot per request in flight: bounds embed() from many threads and concurrent
        # embed_many() calls together, under the limit that adapts to 429s.
        self._gate = ThreadGate(self._core.limit)
        self._executor: ThreadPoolExecutor | None = None
        self._setup_lock = threading.Lock()
        self._closed = False

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
        self,
        texts: Iterable[str],
        *,
        progress: ProgressCallback | None = None,
        on_embedding: ResultCallback | None = None,
        deadline: float | None = None,
        resume_from: BatchEmbeddingError | Sequence[list[float] | None] | None = None,
    ) -> list[list[float]]:
        """Embed many texts concurrently; the vectors come back in input order.

        One request per distinct text, at most ``max_concurrency`` in flight. Every text is
        checked before anything is sent. Transient failures are retried per text; a 401,
        402 or 403 stops the call at once.

        Args:
            texts: the texts (any iterable of strings, not a single string).
            progress: called with the number of input texts each finished request covers.
            on_embedding: called with ``(index, vector)`` for each input as soon as its
                vector arrives, e.g. to write results out before the call ends.
                Callbacks run in the worker threads, one at a time.
            deadline: a time budget in seconds for the whole call: past it no request
                starts, requests in flight are cut short, and the texts left get
                `DeadlineExceededError` in the `BatchEmbeddingError`.
            resume_from: the `BatchEmbeddingError` (or its ``embeddings``) of an earlier
                call on the same texts: only the texts it has no vector for are sent, so
                ``client.embed_many(texts, resume_from=error)`` retries just the failures.

        Raises:
            TypeError / ValueError: a bad input, naming its index; nothing is sent.
            BatchEmbeddingError: some texts failed; ``.embeddings`` keeps every vector that
                arrived and ``.errors`` says why the others failed.
            PhosphoError: the 401/402/403 error when it stopped the call before any vector.
        """
        batch = Batch(texts, progress, on_embedding, deadline=deadline, resume_from=resume_from)
        if batch.distinct:
            self._core.headers()  # a missing key fails here, before any thread starts
            executor = self._pool()
            workers = min(batch.distinct, self._core.settings.max_concurrency)
            try:
                futures = [executor.submit(self._work, batch) for _ in range(workers)]
                for future in futures:
                    future.result()
            finally:
                # On an interrupt or a bug, workers finish their current request and take
                # no other; on success this changes nothing.
                batch.stop.set()
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

    def close(self) -> None:
        """Release the thread pool and the connection pool (an injected client stays open)."""
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._owns_http and self._http is not None:
            self._http.close()

    def __enter__(self) -> PhosphoClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return self._core.describe(type(self).__name__)

    # -- I/O ------------------------------------------------------------------------------

    def _work(self, batch: Batch) -> None:
        """One worker of an ``embed_many`` call: request texts until none is left."""
        while (text := batch.next_text()) is not None:
            try:
                outcome: list[float] | PhosphoError = self._request(text, batch)
            except PhosphoError as exc:
                outcome = exc
            batch.record(text, outcome)

    def _request(self, text: str, batch: Batch | None) -> list[float]:
        """One text, with retries; the vector or the last attempt's error."""
        http = self._client()
        core = self._core
        url, headers, body = core.settings.url, core.headers(), core.body(text)
        retry = 0
        while True:
            timeout = core.httpx_timeout(batch)
            outcome: Outcome = None
            epoch = self._gate.acquire()
            try:
                outcome = self._attempt(http, url, headers, body, timeout)
            finally:
                self._gate.release(epoch, outcome)
            if isinstance(outcome, list):
                return outcome
            error = core.deadline_cut(outcome, batch)
            delay = core.next_delay(error, retry, batch)
            if delay is None:
                raise error
            time.sleep(delay)
            if batch is not None and batch.stop.is_set():  # stopped while we slept
                raise error
            retry += 1

    def _attempt(
        self,
        http: httpx.Client,
        url: str,
        headers: dict[str, str],
        body: bytes,
        timeout: httpx.Timeout,
    ) -> list[float] | PhosphoError:
        try:
            response = http.post(url, content=body, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            return self._core.transport_error(exc)
        try:
            return self._core.accept(response.status_code, response.headers, response.content)
        except PhosphoError as exc:
            return exc

    def _client(self) -> httpx.Client:
        if self._closed:
            raise RuntimeError("this PhosphoClient is closed")
        if self._http is None:
            with self._setup_lock:
                if self._http is None:
                    # Built at first use: an SSL context costs milliseconds, and frameworks
                    # construct embedders long before (or without ever) calling them.
                    self._http = httpx.Client(
                        timeout=self._core.httpx_timeout(), limits=self._core.httpx_limits()
                    )
                    # A client dropped without close() still closes its sockets.
                    weakref.finalize(self, self._http.close)
        return self._http

    def _pool(self) -> ThreadPoolExecutor:
        self._client()  # fail on a closed client before queuing work
        if self._executor is None:
            with self._setup_lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        max_workers=self._core.settings.max_concurrency,
                        thread_name_prefix="phospho-embed",
                    )
                    weakref.finalize(self, self._executor.shutdown, wait=False)
        return self._executor
