"""The failures the emulator can inject, including a connection dropped mid-response."""

from __future__ import annotations

import logging

import httpx
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ._settings import EmulatorSettings

_DETAILS = {
    "429": "Rate limit exceeded, retry later.",
    "429-bare": "Rate limit exceeded, retry later.",
    "500": "Failed to generate embeddings for the request.",
    "502": "Bad Gateway",
    "503": "Service Unavailable",
    "504": "Gateway Timeout",
}

# A 200 that breaks the documented shape: no item in "data", no "usage".
_MALFORMED_BODY = b'{"object":"list","data":[],"model":"intent-embed"}'

# The size announced before the connection is cut: the client waits for bytes that never come.
_PROMISED_LENGTH = b"1024"


class ConnectionDropped(httpx.RemoteProtocolError):
    """Raised after a response has started, so that the ASGI server closes the connection.

    Uvicorn (and other servers) close the transport when the application fails after
    ``http.response.start``: the client reads the status line and headers, then an early end
    of stream, and sees a transport error (httpx: ``RemoteProtocolError``), never a status.
    Served in-process through ``httpx.ASGITransport``, there is no connection to drop and
    the exception reaches the client itself: being an ``httpx.RemoteProtocolError``, it
    then looks to the client exactly as a dropped connection does.
    """


class DropConnectionResponse(Response):
    """A response that announces a body, sends none of it, and aborts the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", _PROMISED_LENGTH),
                ],
            }
        )
        raise ConnectionDropped("phospho emulator: connection dropped on purpose (fault='drop')")


def rate_limited(
    detail: str, settings: EmulatorSettings, *, retry_after: bool = True
) -> JSONResponse:
    """A 429 in FastAPI's error shape, with ``Retry-After`` when the settings ask for one."""
    header = settings.retry_after_header if retry_after else None
    headers = {"Retry-After": header} if header is not None else None
    return JSONResponse({"detail": detail}, status_code=429, headers=headers)


def fault_response(fault: str, settings: EmulatorSettings) -> Response:
    """The response for an injected ``fault`` (one of ``FAULTS``, except ``"slow"``, which
    the endpoint handles by waiting, then answering normally)."""
    if fault == "drop":
        return DropConnectionResponse()
    if fault == "malformed":
        return Response(_MALFORMED_BODY, media_type="application/json")
    if fault in ("429", "429-bare"):
        return rate_limited(_DETAILS[fault], settings, retry_after=fault == "429")
    return JSONResponse({"detail": _DETAILS[fault]}, status_code=int(fault))


class _QuietDrops(logging.Filter):
    """Hides the server's error report for connections dropped on purpose, and only those."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not _is_drop(error)


def _is_drop(error: BaseException | None) -> bool:
    if isinstance(error, ConnectionDropped):
        return True
    # Some ASGI stacks wrap application errors in an exception group.
    nested = getattr(error, "exceptions", None)
    return isinstance(nested, tuple) and any(_is_drop(item) for item in nested)


_FILTER = _QuietDrops()


def silence_dropped_connection_logs() -> None:
    """Install the filter on uvicorn's error logger (idempotent: adding it twice is a no-op)."""
    logging.getLogger("uvicorn.error").addFilter(_FILTER)
