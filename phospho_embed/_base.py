"""What the sync and async clients share: settings, request parts, answer handling, retry
decisions, usage accounting and the bookkeeping of one ``embed_many`` call.

The clients themselves only do I/O and concurrency; everything they would otherwise both
write lives here (and the pure protocol rules in `phospho_embed.wire`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import httpx

from phospho_embed import wire
from phospho_embed._settings import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    Settings,
    resolve_settings,
)
from phospho_embed._version import __version__
from phospho_embed.errors import (
    APIConnectionError,
    APITimeoutError,
    BatchEmbeddingError,
    PhosphoError,
    ResponseFormatError,
)

logger = logging.getLogger("phospho_embed")

#: Called with the number of input texts that just finished (duplicates included).
ProgressCallback = Callable[[int], None]
#: Called with each input index and its vector as soon as the vector arrives.
ResultCallback = Callable[[int, list[float]], None]

_USER_AGENT = f"phospho-embed/{__version__} python-httpx/{httpx.__version__}"


@dataclass(frozen=True)
class Usage:
    """What a client has done so far.

    Attributes:
        requests: successful requests, i.e. the ones the account is billed for.
        retries: extra attempts made after transient failures.
        prompt_tokens: input tokens billed, as reported by the API.
        total_tokens: total tokens billed, as reported by the API.
    """

    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    total_tokens: int = 0


class ClientCore:
    """The I/O-free half of a client, shared by `PhosphoClient` and `AsyncPhosphoClient`."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        project_id: str | None = None,
        model: str = wire.DEFAULT_MODEL,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        retry_policy: wire.RetryPolicy | None = None,
    ) -> None:
        self.settings: Settings = resolve_settings(
            api_key=api_key,
            base_url=base_url,
            project_id=project_id,
            model=model,
            timeout=timeout,
            max_retries=max_retries,
            max_concurrency=max_concurrency,
            retry_policy=retry_policy,
        )
        self.dimension: int | None = None
        self._headers: dict[str, str] | None = None
        self._lock = threading.Lock()
        self._usage = Usage()

    # -- request --------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        """Request headers; raises `MissingAPIKeyError` when no key is configured."""
        if self._headers is None:
            self._headers = wire.request_headers(self.settings.require_api_key(), _USER_AGENT)
        return self._headers

    def body(self, text: str) -> bytes:
        """The JSON body for one text."""
        return wire.encode_request(
            text, model=self.settings.model, project_id=self.settings.project_id
        )

    def httpx_timeout(self) -> httpx.Timeout:
        """Per-attempt timeout; connecting gets less, since a dead host should fail fast."""
        return httpx.Timeout(self.settings.timeout, connect=min(self.settings.timeout, 10.0))

    def httpx_limits(self) -> httpx.Limits:
        """A connection pool as wide as the concurrency, so no connection is churned."""
        size = self.settings.max_concurrency
        return httpx.Limits(max_connections=size, max_keepalive_connections=size)

    # -- answer ---------------------------------------------------------------------------

    def accept(self, status_code: int, headers: Mapping[str, str], body: bytes) -> list[float]:
        """The vector of one HTTP answer, with usage counted; raises the typed error otherwise."""
        result = wire.parse_response(status_code, headers, body)
        vector = result.vector
        with self._lock:
            if self.dimension is None:
                self.dimension = len(vector)
            elif len(vector) != self.dimension:
                raise ResponseFormatError(
                    f"the embedding has {len(vector)} dimensions, but earlier responses of "
                    f"this client had {self.dimension}"
                )
            usage = self._usage
            self._usage = Usage(
                usage.requests + 1,
                usage.retries,
                usage.prompt_tokens + result.prompt_tokens,
                usage.total_tokens + result.total_tokens,
            )
        return vector

    def transport_error(self, exc: httpx.HTTPError) -> PhosphoError:
        """Map an httpx failure (no usable HTTP answer) to our hierarchy."""
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(
                f"the request to {self.settings.url} timed out "
                f"({type(exc).__name__}, timeout={self.settings.timeout:g}s)"
            )
        if isinstance(exc, httpx.DecodingError):
            return ResponseFormatError(f"the response body could not be decoded: {exc}")
        return APIConnectionError(
            f"could not get an answer from {self.settings.url}: {type(exc).__name__}: {exc}"
        )

    # -- retries --------------------------------------------------------------------------

    def next_delay(
        self, error: PhosphoError, retry: int, stop: threading.Event | None
    ) -> float | None:
        """Seconds to wait before retry number ``retry``, or ``None`` to give up with ``error``.

        Gives up on a non-retryable error, when the retries are spent, or when the batch this
        request belongs to has been stopped.
        """
        if (
            not wire.is_retryable(error)
            or retry >= self.settings.max_retries
            or (stop is not None and stop.is_set())
        ):
            return None
        delay = wire.retry_delay(retry, error, self.settings.retry_policy)
        with self._lock:
            usage = self._usage
            self._usage = Usage(
                usage.requests, usage.retries + 1, usage.prompt_tokens, usage.total_tokens
            )
        logger.info(
            "phospho: retry %d of %d in %.2fs after %s: %s",
            retry + 1,
            self.settings.max_retries,
            delay,
            type(error).__name__,
            error,
        )
        return delay

    @property
    def usage(self) -> Usage:
        """A snapshot of the usage counters."""
        return self._usage

    def describe(self, cls: str) -> str:
        """A repr that shows where the client points and never the key."""
        s = self.settings
        return (
            f"{cls}(base_url={s.base_url!r}, model={s.model!r}, project_id={s.project_id!r}, "
            f"max_concurrency={s.max_concurrency}, max_retries={s.max_retries}, "
            f"timeout={s.timeout:g})"
        )


class Batch:
    """The bookkeeping of one ``embed_many`` call, shared by its workers (threads or tasks).

    It checks every input up front (nothing is sent if one is bad), hands out each distinct
    text once, collects the outcomes, and assembles the result in input order.
    """

    def __init__(
        self,
        texts: Iterable[object],
        progress: ProgressCallback | None = None,
        on_embedding: ResultCallback | None = None,
    ) -> None:
        checked = wire.check_texts(texts)
        self.size = len(checked)
        self._positions: dict[str, list[int]] = {}
        for index, text in enumerate(checked):
            self._positions.setdefault(text, []).append(index)
        self._pending = iter(list(self._positions))
        self._vectors: dict[str, list[float]] = {}
        self._errors: dict[str, PhosphoError] = {}
        self._progress = progress
        self._on_embedding = on_embedding
        self._lock = threading.Lock()
        self.fatal: PhosphoError | None = None
        #: Set when the call must end: a fatal error, an interrupt, a bug in a callback.
        self.stop = threading.Event()

    @property
    def distinct(self) -> int:
        """How many requests the batch needs (one per distinct text)."""
        return len(self._positions)

    def next_text(self) -> str | None:
        """The next text to request, or ``None`` when there is none or the call stopped."""
        with self._lock:
            if self.stop.is_set():
                return None
            return next(self._pending, None)

    def record(self, text: str, outcome: list[float] | PhosphoError) -> None:
        """Keep a text's vector or error; a fatal error stops the call for every worker.

        The callbacks run under the batch's lock, so they are never called concurrently.
        """
        with self._lock:
            if isinstance(outcome, PhosphoError):
                self._errors[text] = outcome
                if wire.is_fatal(outcome) and self.fatal is None:
                    self.fatal = outcome
                    self.stop.set()
            else:
                self._vectors[text] = outcome
                if self._on_embedding is not None:
                    for index in self._positions[text]:
                        self._on_embedding(index, outcome)
            if self._progress is not None:
                self._progress(len(self._positions[text]))

    def result(self) -> list[list[float]]:
        """The vectors in input order, or the error that explains what is missing.

        Raises:
            PhosphoError: the fatal error (401/402/403) when no vector arrived at all.
            BatchEmbeddingError: when some texts have no vector; it holds all the others.
        """
        embeddings: list[list[float] | None] = [None] * self.size
        errors: dict[int, BaseException] = {}
        for text, positions in self._positions.items():
            vector = self._vectors.get(text)
            if vector is None:
                # No outcome of its own: the text was never sent because the call stopped.
                error = self._errors.get(text) or self.fatal or PhosphoError("not sent")
                errors.update(dict.fromkeys(positions, error))
                continue
            embeddings[positions[0]] = vector
            for index in positions[1:]:
                embeddings[index] = list(vector)  # a copy: callers may mutate vectors in place
        if not errors:
            return embeddings  # type: ignore[return-value]  # no None left
        if self.fatal is not None and not self._vectors:
            raise self.fatal
        raise BatchEmbeddingError(embeddings, errors) from self.fatal
