"""What the sync and async clients share: settings, request parts, answer handling, retry
decisions, usage accounting and the bookkeeping of one ``embed_many`` call.

The clients themselves only do I/O and concurrency; everything they would otherwise both
write lives here (and the pure protocol rules in `phospho_embed.wire`).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from phospho_embed import wire
from phospho_embed._limit import AdaptiveLimit
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
    DeadlineExceededError,
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
        adaptive_concurrency: bool = True,
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
        _warn_if_plain_http(self.settings.base_url)
        #: Requests allowed in flight: lowered on 429s, raised again on successes.
        self.limit = AdaptiveLimit(max_concurrency, adaptive=adaptive_concurrency)
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

    def httpx_timeout(self, batch: Batch | None = None) -> httpx.Timeout:
        """Per-attempt timeout, cut to what is left of the batch's deadline; connecting gets
        at most 10 s, since a dead host should fail fast.

        Raises:
            DeadlineExceededError: the batch's deadline has passed.
        """
        seconds = self.settings.timeout
        remaining = batch.remaining() if batch is not None else None
        if batch is not None and remaining is not None:
            if remaining <= 0:
                raise batch.deadline_error(during_request=False)
            seconds = min(seconds, remaining)
        return httpx.Timeout(seconds, connect=min(seconds, 10.0))

    def httpx_limits(self, size: int | None = None) -> httpx.Limits:
        """A connection pool of ``size`` connections (default: as wide as the concurrency),
        all kept alive, so no connection is churned."""
        size = size or self.settings.max_concurrency
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

    def deadline_cut(self, error: PhosphoError, batch: Batch | None) -> PhosphoError:
        """A timeout caused by the batch's deadline, rather than by the API, says so."""
        remaining = batch.remaining() if batch is not None else None
        timed_out = isinstance(error, APITimeoutError)
        if timed_out and batch is not None and remaining is not None and remaining <= 0:
            return batch.deadline_error(during_request=True)
        return error

    # -- retries --------------------------------------------------------------------------

    def next_delay(self, error: PhosphoError, retry: int, batch: Batch | None) -> float | None:
        """Seconds to wait before retry number ``retry``, or ``None`` to give up with ``error``.

        Gives up on a non-retryable error, when the retries are spent, or when the batch this
        request belongs to has stopped or would pass its deadline while waiting.
        """
        if (
            not wire.is_retryable(error)
            or retry >= self.settings.max_retries
            or (batch is not None and batch.stop.is_set())
        ):
            return None
        delay = wire.retry_delay(retry, error, self.settings.retry_policy)
        remaining = batch.remaining() if batch is not None else None
        if remaining is not None and delay >= remaining:
            return None
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
            f"adaptive_concurrency={self.limit.adaptive}, "
            f"timeout={s.timeout:g})"
        )


def _warn_if_plain_http(url: str) -> None:
    """Warn when the key would cross a network unencrypted (loopback, e.g. the emulator,
    is fine). The warning names the host, never the key."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "http" or host == "localhost" or host.endswith(".localhost"):
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass  # a host name
    warnings.warn(
        f"phospho-embed: base_url points at {host} over plain http://, so the API key will "
        "cross the network unencrypted; use https://",
        UserWarning,
        stacklevel=4,
    )


class Batch:
    """The bookkeeping of one ``embed_many`` call, shared by its workers (threads or tasks).

    It checks every input up front (nothing is sent if one is bad), takes the vectors a
    previous attempt already got (``resume_from``), hands out each remaining distinct text
    once, collects the outcomes, and assembles the result in input order.
    """

    def __init__(
        self,
        texts: Iterable[object],
        progress: ProgressCallback | None = None,
        on_embedding: ResultCallback | None = None,
        *,
        deadline: float | None = None,
        resume_from: BatchEmbeddingError | Sequence[list[float] | None] | None = None,
    ) -> None:
        checked = wire.check_texts(texts)
        self.size = len(checked)
        self._positions: dict[str, list[int]] = {}
        for index, text in enumerate(checked):
            self._positions.setdefault(text, []).append(index)
        self._vectors: dict[str, list[float]] = _resumed(self._positions, self.size, resume_from)
        self._pending = iter([text for text in self._positions if text not in self._vectors])
        self._errors: dict[str, PhosphoError] = {}
        self._progress = progress
        self._on_embedding = on_embedding
        self._lock = threading.Lock()
        self._deadline = _check_deadline(deadline)
        self._ends_at = None if deadline is None else time.monotonic() + deadline
        self.fatal: PhosphoError | None = None
        #: Set when the call must end: a fatal error, an interrupt, a bug in a callback.
        self.stop = threading.Event()

    @property
    def distinct(self) -> int:
        """How many requests the batch needs (one per distinct text not already resumed)."""
        return len(self._positions) - len(self._vectors)

    def remaining(self) -> float | None:
        """Seconds left before the call's deadline (``None``: no deadline)."""
        return None if self._ends_at is None else self._ends_at - time.monotonic()

    def deadline_error(self, during_request: bool) -> DeadlineExceededError:
        """The error of a text the deadline cut short."""
        when = "during its request" if during_request else "before it was sent"
        return DeadlineExceededError(f"the call's deadline of {self._deadline:g}s passed {when}")

    def next_text(self) -> str | None:
        """The next text to request, or ``None`` when there is none, the call stopped, or
        its deadline passed."""
        with self._lock:
            remaining = self.remaining()
            if self.stop.is_set() or (remaining is not None and remaining <= 0):
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
                error = self._errors.get(text) or self._unsent_error()
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

    def _unsent_error(self) -> PhosphoError:
        """Why a text has no outcome of its own: the call stopped before sending it."""
        if self.fatal is not None:
            return self.fatal
        if self._ends_at is not None and time.monotonic() >= self._ends_at:
            return self.deadline_error(during_request=False)
        return PhosphoError("not sent: the call stopped early")


def _check_deadline(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)):
        raise TypeError(f"deadline must be a number of seconds, got {type(deadline).__name__}")
    if not deadline > 0:
        raise ValueError(f"deadline must be a positive number of seconds, got {deadline!r}")
    return float(deadline)


def _resumed(
    positions: dict[str, list[int]],
    size: int,
    previous: BatchEmbeddingError | Sequence[list[float] | None] | None,
) -> dict[str, list[float]]:
    """The vectors an earlier attempt at the same texts already got, by text."""
    if previous is None:
        return {}
    embeddings = previous.embeddings if isinstance(previous, BatchEmbeddingError) else previous
    if len(embeddings) != size:
        raise ValueError(
            f"resume_from holds {len(embeddings)} results for {size} texts: "
            "pass the same texts as the call that raised it"
        )
    vectors: dict[str, list[float]] = {}
    for text, indices in positions.items():
        vector = next((embeddings[i] for i in indices if embeddings[i] is not None), None)
        if vector is not None:
            vectors[text] = vector
    return vectors
