"""``Emulator``: the app, its settings and counters, and a uvicorn server in a thread."""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import uvicorn

from ._app import build_app
from ._faults import silence_dropped_connection_logs
from ._semantic import load_model
from ._settings import EmulatorSettings
from ._state import EmulatorState, EmulatorStats
from ._vectors import describe_vectors

if TYPE_CHECKING:
    from fastapi import FastAPI
    from typing_extensions import Self, Unpack

    from ._settings import SettingsChanges

logger = logging.getLogger("phospho_embed.emulator")


class Emulator:
    """A local stand-in for phospho's embeddings API, with knobs and counters for tests.

    Example:

    ```python
    with Emulator(latency=0.05).start() as emu:
        client = PhosphoClient(api_key="anything", base_url=emu.base_url)
        ...
        assert emu.stats.by_status == {200: 3}
    ```

    ``Emulator(settings)`` takes an ``EmulatorSettings``; keyword arguments override some of
    its fields (``Emulator(latency=0.05)``). ``app`` can also be served by any ASGI server.
    """

    def __init__(
        self, settings: EmulatorSettings | None = None, **changes: Unpack[SettingsChanges]
    ) -> None:
        base = settings if settings is not None else EmulatorSettings()
        self._initial = replace(base, **changes) if changes else base
        self._state = EmulatorState(self._initial)
        self._app = build_app(self._state)
        self._lifecycle = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    def __repr__(self) -> str:
        where = self._url or "not started"
        return f"Emulator({where}, {self.settings!r})"

    # -- knobs and counters -----------------------------------------------------------------

    @property
    def app(self) -> FastAPI:
        """The FastAPI application (usable with any ASGI server or ``httpx.ASGITransport``)."""
        return self._app

    @property
    def settings(self) -> EmulatorSettings:
        """The settings in force now."""
        return self._state.settings

    @property
    def stats(self) -> EmulatorStats:
        """A snapshot of the counters since the last reset."""
        return self._state.snapshot()

    @property
    def vectors_description(self) -> str:
        """One line saying which vectors the emulator serves now, and where they come from."""
        settings = self.settings
        return describe_vectors(settings.vector_kind, settings.dimensions, asked=settings.vectors)

    def configure(self, **changes: Unpack[SettingsChanges]) -> EmulatorSettings:
        """Change some settings now, from any thread; returns the new settings.

        Invalid values raise ``ValueError`` and change nothing. Changing ``fault``,
        ``fault_rate``, ``fault_every`` or ``seed`` restarts the fault schedule.
        """
        return self._state.configure(dict(changes))

    def reset(self, **changes: Unpack[SettingsChanges]) -> None:
        """Go back to the settings given at construction, plus ``changes``; zero the counters."""
        self._state.reset(replace(self._initial, **changes))

    def reset_stats(self) -> None:
        """Zero the counters (what ``POST /_emulator/reset`` does); keep the settings."""
        self._state.reset_counters()

    # -- serving in a background thread -----------------------------------------------------

    def start(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_level: str = "warning",
        access_log: bool = False,
        timeout: float = 10.0,
    ) -> Self:
        """Serve on ``host:port`` from a daemon thread; return once connections are accepted.

        ``port=0`` picks a free port (see ``url``). Logs (INFO, logger
        ``phospho_embed.emulator``) which vectors it serves; ``vectors_description`` says the
        same. Raises ``RuntimeError`` when already started or when the server fails to start,
        ``OSError`` when the port is taken.
        """
        with self._lifecycle:
            if self._thread is not None:
                raise RuntimeError(f"the emulator is already running at {self._url}")
            if self.settings.vector_kind == "semantic":
                load_model()  # once per process, here rather than in the first request
            # Bound here rather than by uvicorn, so that the port is known before it runs.
            sock = _bind(host, port)
            try:
                config = uvicorn.Config(
                    self._app,
                    log_level=log_level,
                    access_log=access_log,
                    # No dictConfig of the process's logging: records propagate to the root
                    # logger, where pytest and applications already look.
                    log_config=None,
                    lifespan="off",
                    timeout_graceful_shutdown=5,
                )
                silence_dropped_connection_logs()
                server = uvicorn.Server(config)
                errors: list[BaseException] = []
                thread = threading.Thread(
                    target=_serve, args=(server, sock, errors), name="phospho-emulator", daemon=True
                )
                thread.start()
                _wait_started(server, thread, errors, timeout)
            except BaseException:
                sock.close()
                raise
            bound_host, bound_port = sock.getsockname()[:2]
            self._server, self._thread = server, thread
            self._url = f"http://{_url_host(bound_host)}:{bound_port}"
        logger.info("phospho emulator at %s serving %s", self._url, self.vectors_description)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and join the thread (requests still running get a few seconds)."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            self._url = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether the background server is up."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def url(self) -> str:
        """The server's root, e.g. ``http://127.0.0.1:54321`` (``RuntimeError`` if not started)."""
        if self._url is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return self._url

    @property
    def base_url(self) -> str:
        """The API base URL to give a client, e.g. ``http://127.0.0.1:54321/v2``."""
        return f"{self.url}/v2"

    def __enter__(self) -> Self:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio only sets TCP_NODELAY on accepted connections when the
    # listening socket says so, and without it keep-alive requests stall ~40 ms (Nagle's
    # algorithm against delayed ACKs).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if sys.platform != "win32":
            # Restarting on the same port must not wait for old connections in TIME_WAIT
            # (on Windows the option would let two servers share the port).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _serve(server: uvicorn.Server, sock: socket.socket, errors: list[BaseException]) -> None:
    try:
        server.run(sockets=[sock])
    except BaseException as error:  # reported by _wait_started, or lost with the daemon thread
        errors.append(error)


def _wait_started(
    server: uvicorn.Server,
    thread: threading.Thread,
    errors: list[BaseException],
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the emulator's server stopped during startup") from (
                errors[0] if errors else None
            )
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the emulator's server did not start within {timeout} s")
        time.sleep(0.005)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
