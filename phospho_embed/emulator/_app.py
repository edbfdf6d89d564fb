"""The FastAPI application that speaks the phospho embeddings contract.

Checks run in the service's order: authentication (403/401), body validation (422, by
FastAPI itself, so the detail has pydantic's shape), input checks (400), billing (402), the
in-flight cap (429), then the latency wait, the injected fault, and the embedding.
"""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

import asyncio
import json
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Literal

import orjson
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._version import __version__
from ._faults import ConnectionDropped, fault_response, rate_limited
from ._state import EmulatorState, Ticket
from ._vectors import TOKEN_LIMIT, VectorKind, count_tokens, vector_values

EMBEDDING_PATHS = ("/v2/embeddings", "/v0/embeddings")
"""Where the service mounts its embeddings endpoint (the same app is mounted twice)."""

_EXCHANGE_KEY = "phospho_emulator.exchange"


class EmbeddingRequest(BaseModel):
    """The request body. Unknown fields (``encoding_format``, ``dimensions``...) are ignored."""

    input: str | list[str]
    model: Literal["intent-embed"]
    project_id: str | None = None


@dataclass
class _Exchange:
    """One request, as shared by the accounting layer and the handlers."""

    ticket: Ticket
    prompt_tokens: int = 0


def _exchange(request: Request) -> _Exchange:
    exchange = request.scope.get(_EXCHANGE_KEY)
    if not isinstance(exchange, _Exchange):  # build_app always installs _Accounting
        raise RuntimeError("the emulator's endpoint runs without its accounting layer")
    return exchange


def build_app(state: EmulatorState) -> FastAPI:
    """A FastAPI app serving the contract, reading its knobs from and counting into ``state``."""
    app = FastAPI(
        title="phospho intent-embed emulator",
        version=__version__,
        description="A local stand-in for phospho's embeddings API, for tests and demos.",
    )
    # auto_error=False: FastAPI's own error is a 401 nowadays, the service answers 403.
    bearer = HTTPBearer(auto_error=False)

    async def authenticate(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if credentials is None:
            raise HTTPException(status_code=403, detail="Not authenticated")
        expected = _exchange(request).ticket.settings.api_key
        if expected is not None and not secrets.compare_digest(
            credentials.credentials.encode(), expected.encode()
        ):
            raise HTTPException(status_code=401, detail="Invalid token")

    async def create_embedding(body: EmbeddingRequest, request: Request) -> Response:
        exchange = _exchange(request)
        settings = exchange.ticket.settings
        text = _single_text(body.input)
        tokens = count_tokens(text)
        if tokens > TOKEN_LIMIT:
            raise HTTPException(
                status_code=400,
                detail=f"Input too long: {tokens} tokens, the limit is {TOKEN_LIMIT} tokens.",
            )
        if settings.billing_required:
            raise HTTPException(
                status_code=402,
                detail="Payment required: add a payment method to your phospho account "
                "to use intent-embed.",
            )
        if not state.try_admit(settings.max_in_flight):
            return rate_limited(
                f"Too many requests in flight (limit {settings.max_in_flight}), retry later.",
                settings,
            )
        try:
            delay = state.draw_delay(settings)
            if delay > 0:
                await asyncio.sleep(delay)
            fault = state.draw_fault(exchange.ticket)
        finally:
            state.release()
        if fault == "slow":
            # Past the client's timeout, typically: the client gives up, the server carries on.
            await asyncio.sleep(settings.slow_latency)
        elif fault is not None:
            return fault_response(fault, settings)
        exchange.prompt_tokens = tokens
        return Response(
            _success_body(text, settings.dimensions, settings.vector_kind),
            media_type="application/json",
        )

    for path in EMBEDDING_PATHS:
        app.add_api_route(
            path,
            create_embedding,
            methods=["POST"],
            dependencies=[Depends(authenticate)],
            summary="Embed one text with intent-embed",
            response_class=Response,
        )

    # Not part of the phospho contract: for users watching a CLI-started emulator.
    async def read_stats(include_inputs: bool = False) -> Response:
        stats = state.snapshot().to_dict(include_inputs=include_inputs)
        return Response(json.dumps(stats), media_type="application/json")

    async def reset_stats() -> Response:
        state.reset_counters()
        return await read_stats()

    app.add_api_route("/_emulator/stats", read_stats, methods=["GET"], include_in_schema=False)
    app.add_api_route("/_emulator/reset", reset_stats, methods=["POST"], include_in_schema=False)

    app.add_middleware(_Accounting, state=state)
    return app


def _single_text(value: str | list[str]) -> str:
    if isinstance(value, str):
        return value
    if len(value) != 1:
        raise HTTPException(
            status_code=400,
            detail=f"Exactly one input string per request is supported, got {len(value)}.",
        )
    return value[0]


# The success body only depends on the text, the size and the kind of vector, and benchmarks
# repeat texts: caching the serialized bytes skips serializing 1536 floats again. orjson writes
# the same shortest round-trip floats as json.dumps, about 30 times faster (1536 dense floats:
# 40 us against 1.3 ms), which keeps the emulator's CPU small beside a client's.
@lru_cache(maxsize=1024)
def _success_body(text: str, dimensions: int, kind: VectorKind) -> bytes:
    tokens = count_tokens(text)
    body = {
        "object": "list",
        "data": [
            {"object": "embedding", "embedding": vector_values(text, dimensions, kind), "index": 0}
        ],
        "model": "intent-embed",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return orjson.dumps(body)


class _Accounting:
    """ASGI layer around the app counting every embeddings request, whatever its outcome.

    It sits outside FastAPI's routing because 403s and 422s never reach the endpoint, yet
    they must be counted (with their input text) like any other request.
    """

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in EMBEDDING_PATHS:
            await self.app(scope, receive, send)
            return
        body, receive = await _buffer_body(receive)
        exchange = _Exchange(self.state.arrived(_input_texts(body)))
        scope = {**scope, _EXCHANGE_KEY: exchange}
        status: int | None = None
        recorded = False

        def record(final_status: int | None) -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                self.state.finished(exchange.ticket, final_status, exchange.prompt_tokens)

        async def record_then_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Recorded before the last byte leaves: once a client has its response, the
                # counters already include it (a test may reset them right after).
                record(status)
            await send(message)

        try:
            await self.app(scope, receive, record_then_send)
        except ConnectionDropped:
            record(None)
            raise
        finally:
            # An unexpected error before any response: the server error middleware answers 500.
            record(status if status is not None else 500)


async def _buffer_body(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole request body, and return a ``receive`` that replays it to the app."""
    chunks: list[bytes] = []
    first: Message | None = None
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: pass that on
            first = message
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    pending: Message = first or {"type": "http.request", "body": body, "more_body": False}
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return pending

    return body, replay


def _input_texts(body: bytes) -> list[str]:
    """The input strings a request body carries, if it is JSON of roughly the right shape."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return []
    value = data.get("input") if isinstance(data, dict) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []
