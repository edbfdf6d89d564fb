"""A hostile HTTP server on 127.0.0.1 for the hardening tests: it answers each request with
whatever bytes a test scripts, as slowly as the test likes. Every loop is bounded."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: What a scripted answer gets: the raw request (headers and body); it yields the chunks to
#: send, with the pause before each.
Script = Callable[[bytes], Iterator[tuple[float, bytes]]]


@contextmanager
def hostile_server(script: Script, *, max_connections: int = 64) -> Iterator[str]:
    """Serve ``script`` on 127.0.0.1 and yield the base URL (``http://127.0.0.1:PORT/v2``)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def handle(connection: socket.socket) -> None:
        with connection:
            connection.settimeout(5)
            try:
                request = _read_request(connection)
                for pause, chunk in script(request):
                    if stop.wait(pause):
                        return
                    connection.sendall(chunk)
            except OSError:
                return  # the client went away: that is what the tests expect of it

    def serve() -> None:
        served = 0
        while not stop.is_set() and served < max_connections:
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            served += 1
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/v2"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _read_request(connection: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = connection.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    deadline = time.monotonic() + 5
    while len(body) < length and time.monotonic() < deadline:
        body += connection.recv(4096)
    return head + b"\r\n\r\n" + body


def answer(status: str, body: bytes, *headers: str) -> bytes:
    """A complete HTTP/1.1 answer (the connection is closed after it)."""
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def authorization(request: bytes) -> str:
    """The Authorization header the client sent."""
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"authorization":
            return value.strip().decode()
    return ""
