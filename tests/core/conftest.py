"""Fixtures for the core's tests: both clients behind one face, pointed at the emulator.

Most behaviour is the same for `PhosphoClient` and `AsyncPhosphoClient`, so those tests take
the ``make_client`` fixture, which runs them once per client. The async face runs each call
in its own ``asyncio.run``, which also exercises the async client moving between loops.

The sync face talks to the emulator over a socket. The async face talks to the emulator's
application in-process (``httpx.ASGITransport``), where the socket adds nothing; a test
whose behaviour lives on the wire (timeouts, dropped connections) is marked
``@pytest.mark.wire`` and gets a socket for both faces.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from phospho_embed import AsyncPhosphoClient, PhosphoClient, RetryPolicy, Usage
from phospho_embed.emulator import Emulator

#: Retries in tests wait milliseconds, not seconds; Retry-After tests set their own.
FAST_RETRIES = RetryPolicy(initial_delay=0.005, max_delay=0.02)
TEST_KEY = "test-key-not-secret"


class SyncFace:
    """`PhosphoClient` as the tests drive it."""

    kind = "sync"

    def __init__(self, **kwargs: Any) -> None:
        self.client = PhosphoClient(**kwargs)

    def embed(self, text: Any) -> list[float]:
        return self.client.embed(text)

    def embed_many(self, texts: Any, **kwargs: Any) -> list[list[float]]:
        return self.client.embed_many(texts, **kwargs)

    @property
    def usage(self) -> Usage:
        return self.client.usage

    def close(self) -> None:
        self.client.close()


class AsyncFace:
    """`AsyncPhosphoClient` driven from synchronous tests, one event loop per call."""

    kind = "async"

    def __init__(self, **kwargs: Any) -> None:
        self.client = AsyncPhosphoClient(**kwargs)
        self.http: httpx.AsyncClient | None = kwargs.get("http_client")

    def embed(self, text: Any) -> list[float]:
        return asyncio.run(self.client.embed(text))

    def embed_many(self, texts: Any, **kwargs: Any) -> list[list[float]]:
        return asyncio.run(self.client.embed_many(texts, **kwargs))

    @property
    def usage(self) -> Usage:
        return self.client.usage

    def close(self) -> None:
        asyncio.run(self.client.aclose())
        if self.http is not None:
            asyncio.run(self.http.aclose())


Face = SyncFace | AsyncFace
MakeClient = Callable[..., Face]


@pytest.fixture(params=["sync", "async"])
def make_client(request: pytest.FixtureRequest, phospho_emulator: Emulator) -> Iterator[MakeClient]:
    """A factory of clients (sync or async, one test run each) aimed at the emulator."""
    faces: list[Face] = []
    face_class = SyncFace if request.param == "sync" else AsyncFace
    in_process = face_class is AsyncFace and request.node.get_closest_marker("wire") is None

    def make(**kwargs: Any) -> Face:
        kwargs.setdefault("api_key", TEST_KEY)
        kwargs.setdefault("base_url", phospho_emulator.base_url)
        kwargs.setdefault("retry_policy", FAST_RETRIES)
        if in_process and "http_client" not in kwargs:
            transport = httpx.ASGITransport(app=phospho_emulator.app)
            kwargs["http_client"] = httpx.AsyncClient(transport=transport)
        face = face_class(**kwargs)
        faces.append(face)
        return face

    yield make
    for face in faces:
        face.close()


@pytest.fixture
def emulator(phospho_emulator: Emulator) -> Emulator:
    """The emulator, reset to its defaults for this test (shorter name for these tests)."""
    return phospho_emulator
