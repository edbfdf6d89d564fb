"""What the sync and async clients share: options, request parts, answer handling, usage,
and the public face (properties, ``repr``) of a client.

The clients themselves only do I/O and concurrency; the retry decisions are in
`phospho_embed._retry`, the bookkeeping of one ``embed_many`` call in `phospho_embed._batch`,
and the pure protocol rules in `phospho_embed.wire`.
"""

from __future__ import annotations

import ipaddress
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx

from phospho_embed import wire
from phospho_embed._batch import Batch
from phospho_embed._limit import AdaptiveLimit
from phospho_embed._options import ClientOptions
from phospho_embed._retry import Attempts
from phospho_embed._version import __version__
from phospho_embed.errors import (
    APIConnectionError,
    APITimeoutError,
    PhosphoError,
    ResponseFormatError,
)

_USER_AGENT = f"phospho-embed/{__version__} python-httpx/{httpx.__version__}"

HTTP = TypeVar("HTTP", httpx.Client, httpx.AsyncClient)


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

    def headers(self) -> dict[str, str]:
        """Request headers; raises `MissingAPIKeyError` when no key is configured."""
        if self._headers is None:
            self._headers = wire.request_headers(self.options.require_api_key(), _USER_AGENT)
        return self._headers

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
            self._usage += Usage(1, 0, result.prompt_tokens, result.total_tokens)
        return vector

    def transport_error(self, exc: httpx.HTTPError) -> PhosphoError:
        """Map an httpx failure (no usable HTTP answer) to our hierarchy."""
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(
                f"the request to {self.options.url} timed out "
                f"({type(exc).__name__}, timeout={self.options.timeout:g}s)"
            )
        if isinstance(exc, httpx.DecodingError):
            return ResponseFormatError(f"the response body could not be decoded: {exc}")
        return APIConnectionError(
            f"could not get an answer from {self.options.url}: {type(exc).__name__}: {exc}"
        )

    @property
    def usage(self) -> Usage:
        """A snapshot of the usage counters."""
        return self._usage

    def _count_retry(self) -> None:
        with self._lock:
            self._usage += Usage(retries=1)


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
        stacklevel=5,
    )
