"""What the sync and async clients share: options, request parts, answer handling, usage,
and the public face (properties, ``repr``) of a client.

The clients themselves only do I/O and concurrency; the retry decisions are in
`phospho_embed._retry`, the bookkeeping of one ``embed_many`` call in `phospho_embed._batch`,
and the pure protocol rules in `phospho_embed.wire`.
"""

from __future__ import annotations

import ipaddress
import math
import os
import socket
import threading
import time
import warnings
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx

from phospho_embed import wire
from phospho_embed._batch import Batch
from phospho_embed._limit import AdaptiveLimit
from phospho_embed._options import ClientOptions, Secret
from phospho_embed._retry import Attempts
from phospho_embed._version import __version__
from phospho_embed.errors import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    EndpointUnreachableError,
    PhosphoError,
    ResponseFormatError,
)

_USER_AGENT = f"phospho-embed/{__version__} python-httpx/{httpx.__version__}"

HTTP = TypeVar("HTTP", httpx.Client, httpx.AsyncClient)

#: Connections per httpx pool, in both clients: httpcore 1.0 spends CPU per request in
#: proportion to a pool's connections (``_assign_requests_to_connections``, encode/httpcore
#: #1035), so one async pool of 64 reached ~13% of the throughput its connections allow
#: where 4 pools of 16 reached ~75%, and one sync pool of 128 ~15% (against the emulator).
CONNECTIONS_PER_POOL = 16


def pool_sizes(connections: int) -> list[int]:
    """``connections`` split into pools of at most `CONNECTIONS_PER_POOL`, as even as can be."""
    count = math.ceil(connections / CONNECTIONS_PER_POOL)
    return [math.ceil(connections / count)] * count


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

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.requests + other.requests,
            self.retries + other.retries,
            self.prompt_tokens + other.prompt_tokens,
            self.total_tokens + other.total_tokens,
        )


class ClientCore:
    """The I/O-free half of a client: request parts, answers, usage and the adaptive limit."""

    def __init__(self, options: ClientOptions) -> None:
        self.options = options
        _warn_if_plain_http(options.base_url)
        #: Requests allowed in flight: lowered on 429s, raised again on successes.
        self.limit = AdaptiveLimit(options.max_concurrency, adaptive=options.adaptive_concurrency)
        self.dimension: int | None = None
        self._headers: dict[str, str] | None = None
        self._lock = threading.Lock()
        self._usage = Usage()
        self._answered = False  # has any HTTP answer come from the URL?

    def headers(self) -> dict[str, str]:
        """Request headers; raises `MissingAPIKeyError` when no key is configured."""
        if self._headers is None:
            key = self.options.require_api_key()
            self._headers = _Headers(wire.request_headers(key, _USER_AGENT))
        return self._headers

    def reader(self, seconds: float) -> BodyReader:
        """A reader for one answer's body, bounded in size and by the attempt's wall clock."""
        return BodyReader(time.monotonic() + seconds, seconds)

    def body(self, text: str) -> bytes:
        """The JSON body for one text."""
        return wire.encode_request(
            text, model=self.options.model, project_id=self.options.project_id
        )

    def attempts(self, batch: Batch | None) -> Attempts:
        """The retry decisions for one text of ``batch`` (or of a single ``embed``)."""
        return Attempts(self.options, batch, self._count_retry)

    @staticmethod
    def httpx_timeout(seconds: float) -> httpx.Timeout:
        """``seconds`` for an attempt; connecting gets at most 10 s, since a dead host
        should fail fast."""
        return httpx.Timeout(seconds, connect=min(seconds, 10.0))

    def httpx_limits(self, size: int | None = None) -> httpx.Limits:
        """A connection pool of ``size`` connections (default: as wide as the concurrency),
        all kept alive, so no connection is churned."""
        size = size or self.options.max_concurrency
        return httpx.Limits(max_connections=size, max_keepalive_connections=size)

    def accept(self, status_code: int, headers: Mapping[str, str], body: bytes) -> list[float]:
        """The vector of one HTTP answer, with usage counted; raises the typed error otherwise.

        Any answer proves the URL reachable. A server echoing the key back has it redacted
        before anything is built from its text.
        """
        self._answered = True
        if not 200 <= status_code < 300 and isinstance(self.options.api_key, Secret):
            body = wire.redact(body, self.options.api_key.get())
        result = wire.parse_response(status_code, headers, body, url=self.options.url)
        vector = result.vector
        with self._lock:
            if self.dimension is None:
                self.dimension = len(vector)
            elif len(vector) != self.dimension:
                raise ResponseFormatError(
                    f"the embedding has {len(vector)} dimensions, but earlier responses of "
                    f"this client had {self.dimension}"
                )
            self._usage += Usage(1, 0, result.prompt_tokens, result.total_tokens)
        return vector

    def transport_error(self, exc: httpx.HTTPError) -> PhosphoError:
        """Map an httpx failure (no usable HTTP answer) to our hierarchy."""
        if isinstance(exc, httpx.TimeoutException):
            return self.timeout_error(type(exc).__name__)
        if isinstance(exc, httpx.DecodingError):
            return ResponseFormatError(f"the response body could not be decoded: {exc}")
        what = f"could not get an answer from {self.options.url}: {type(exc).__name__}: {exc}"
        if isinstance(exc, httpx.ConnectError) and not self._answered:
            return EndpointUnreachableError(
                f"{what}; this URL has never answered: is base_url right, and the service up?"
            )
        return APIConnectionError(what)

    def failure(self, exc: Exception, closed: bool) -> PhosphoError:
        """What an exception raised while sending or reading one request means: ours as it
        is, httpx's mapped (`transport_error`), httpx refusing a client closed meanwhile a
        `ClientClosedError`. Anything else is a bug, raised again."""
        if isinstance(exc, PhosphoError):
            return exc
        if closed and isinstance(exc, (httpx.HTTPError, RuntimeError)):
            return self.closed_error()  # the pool was closed under the request
        if isinstance(exc, httpx.HTTPError):
            return self.transport_error(exc)
        raise exc

    def timeout_error(self, what: str) -> APITimeoutError:
        """The error of an attempt that ran past ``timeout`` (``what`` says where)."""
        return APITimeoutError(
            f"the request to {self.options.url} timed out ({what}, "
            f"timeout={self.options.timeout:g}s)"
        )

    def closed_error(self) -> ClientClosedError:
        """The error of a call on, or cut short by, a closed client."""
        return ClientClosedError("this phospho client is closed")

    @property
    def usage(self) -> Usage:
        """A snapshot of the usage counters."""
        return self._usage

    def after_fork(self) -> None:
        """New locks and a fresh limit in a forked child (a lock held by another thread of
        the parent at the fork would stay held for ever)."""
        self._lock = threading.Lock()
        self.limit = AdaptiveLimit(self.options.max_concurrency, self.options.adaptive_concurrency)

    def _count_retry(self) -> None:
        with self._lock:
            self._usage += Usage(retries=1)


class _Headers(dict[str, str]):
    """Request headers whose ``repr`` hides the key: a traceback formatted with its locals
    (``capture_locals=True``, error trackers) shows the request frame's headers."""

    def __repr__(self) -> str:
        return repr({k: "[redacted]" if k == "Authorization" else v for k, v in self.items()})


class BodyReader:
    """Collects an answer's body chunk by chunk, refusing to grow past
    `wire.MAX_RESPONSE_BYTES` or to go on past the attempt's end on the wall clock (httpx's
    timeouts are per read: a server trickling a byte at a time never trips them)."""

    def __init__(self, ends_at: float, seconds: float) -> None:
        self.ends_at = ends_at
        self._seconds = seconds
        self._chunks: list[bytes] = []
        self._size = 0

    def read(self, chunks: Iterator[bytes]) -> bytes:
        """Read a sync answer's body (``response.iter_bytes()``) to the end."""
        for chunk in chunks:
            self.add(chunk)
        return self.body()

    async def aread(self, chunks: AsyncIterator[bytes]) -> bytes:
        """Read an async answer's body (``response.aiter_bytes()``) to the end."""
        async for chunk in chunks:
            self.add(chunk)
        return self.body()

    def add(self, chunk: bytes) -> None:
        """Keep one chunk.

        Raises:
            ResponseFormatError: the body is over the size cap.
            httpx.ReadTimeout: the attempt's time is up.
        """
        self._size += len(chunk)
        if self._size > wire.MAX_RESPONSE_BYTES:
            raise ResponseFormatError(
                f"the response body is over {wire.MAX_RESPONSE_BYTES} bytes: not an answer "
                "of the embeddings API"
            )
        self._chunks.append(chunk)
        self.check_time()

    def check_time(self) -> None:
        """Raise ``httpx.ReadTimeout`` when the attempt has run past its time."""
        if time.monotonic() > self.ends_at:
            raise httpx.ReadTimeout(f"the answer took longer than {self._seconds:g}s")

    def body(self) -> bytes:
        """Everything read."""
        return b"".join(self._chunks)


class ClientBase(Generic[HTTP]):
    """The part of `PhosphoClient` and `AsyncPhosphoClient` that does no I/O: construction
    from options or keywords, the properties and the ``repr``.

    Args:
        options: a `ClientOptions`; default: built from ``settings``.
        http_client: an ``httpx.Client`` (sync) or ``httpx.AsyncClient`` (async) to send
            requests with (proxies, custom TLS, ...); the caller keeps ownership and
            closes it.
        **settings: any field of `ClientOptions` (``api_key``, ``base_url``,
            ``max_concurrency``...), applied on top of ``options``.

    Raises:
        TypeError / ValueError: an unknown setting, or one of the wrong type or range.
    """

    _http_type: type[HTTP]

    def __init__(
        self,
        options: ClientOptions | None = None,
        *,
        http_client: HTTP | None = None,
        **settings: Any,
    ) -> None:
        if http_client is not None and not isinstance(http_client, self._http_type):
            raise TypeError(
                f"http_client must be an httpx.{self._http_type.__name__}, "
                f"got {type(http_client).__name__}"
            )
        self._core = ClientCore(ClientOptions.build(options, settings))
        self._injected_http: HTTP | None = http_client
        self._closed = False
        self._prepare()
        _LIVE.add(self)

    def _after_fork(self) -> None:
        """In a child process after ``os.fork()``: forget the parent's threads, locks,
        connections and event loops (they are not the child's); the next call makes its own."""
        self._core.after_fork()
        self._prepare()

    def _prepare(self) -> None:
        """Set up what the subclass's I/O needs (pools are opened later, at first use)."""
        raise NotImplementedError

    @property
    def options(self) -> ClientOptions:
        """The settings this client was built with (resolved: environment read, defaults set)."""
        return self._core.options

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

    def __repr__(self) -> str:
        o = self._core.options
        return (
            f"{type(self).__name__}(base_url={o.base_url!r}, model={o.model!r}, "
            f"project_id={o.project_id!r}, max_concurrency={o.max_concurrency}, "
            f"max_retries={o.max_retries}, adaptive_concurrency={o.adaptive_concurrency}, "
            f"timeout={o.timeout:g})"
        )


#: Every client alive, so that a forked child can reset them (`ClientBase._after_fork`).
_LIVE: weakref.WeakSet[ClientBase[Any]] = weakref.WeakSet()


def _reset_clients_after_fork() -> None:
    for client in list(_LIVE):
        client._after_fork()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_reset_clients_after_fork)


def _warn_if_plain_http(url: str) -> None:
    """Warn when the key would cross a network unencrypted (loopback, e.g. the emulator,
    is fine). The warning names the host, never the key."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")  # "localhost." is localhost
    if parts.scheme != "http" or _is_loopback(host):
        return
    warnings.warn(
        f"phospho-embed: base_url points at {host} over plain http://, so the API key will "
        "cross the network unencrypted; use https://",
        UserWarning,
        stacklevel=5,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:  # the short IPv4 spellings the resolver accepts too: 127.1, 2130706433
        return ipaddress.IPv4Address(socket.inet_aton(host)).is_loopback
    except OSError:
        return False  # a host name
