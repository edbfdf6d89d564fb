"""The end of a sync attempt on the wall clock, enforced at the socket.

httpx's timeouts are per read: a server that trickles its status line and headers one byte
at a time never trips them, and the sync client cannot cancel a blocking read from outside.
So the client's own connection pool gets a network backend whose streams cut every socket
timeout to what is left of the current attempt (a thread-local: each worker thread runs one
attempt at a time), and a read past the attempt's end times out. The body is also bounded
between chunks by `phospho_embed._core.BodyReader`; the async client bounds the whole
attempt with a cancel scope instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

_END = threading.local()
#: A socket timeout of 0 means "do not wait" to some backends and "no timeout" to others.
_SHORTEST = 0.001


@contextmanager
def attempt_ends_at(ends_at: float) -> Iterator[None]:
    """Within the block, this thread's socket reads and writes end by ``ends_at``
    (``time.monotonic()`` seconds)."""
    _END.at = ends_at
    try:
        yield
    finally:
        _END.at = None


def _clamp(timeout: float | None) -> float | None:
    ends_at: float | None = getattr(_END, "at", None)
    if ends_at is None:
        return timeout
    left = max(ends_at - time.monotonic(), _SHORTEST)
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _clamp(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _clamp(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, _clamp(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host, port, _clamp(timeout), local_address, socket_options
        )
        return _Stream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return _Stream(self._backend.connect_unix_socket(path, _clamp(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def bound_sockets(client: httpx.Client) -> None:
    """Make ``client``'s own connections honour `attempt_ends_at`.

    It reaches into httpx's transport and httpcore's pool, whose attributes have not changed
    since httpx 0.18 and httpcore 0.17; should they change, the body is still bounded between
    chunks (tests/core/test_hardening.py checks the headers case).
    """
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, httpcore.NetworkBackend):
        pool._network_backend = _Backend(backend)  # type: ignore[union-attr]
