"""The Emulator's lifecycle, the app on its own, and the pytest plugin's fixtures."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from phospho_embed import AsyncPhosphoClient, RetryPolicy
from phospho_embed.emulator import Emulator, emulator_vector
from phospho_embed.emulator._server import _bind

BODY = {"input": "hello", "model": "intent-embed"}
AUTH = {"Authorization": "Bearer k"}


def test_urls_are_only_known_while_running() -> None:
    emulator = Emulator()
    with pytest.raises(RuntimeError, match="not running"):
        _ = emulator.base_url

    with emulator.start(host="127.0.0.1", port=0) as running:
        assert running is emulator
        assert running.running
        port = int(running.url.rsplit(":", 1)[1])
        assert running.url == f"http://127.0.0.1:{port}"
        assert running.base_url == f"http://127.0.0.1:{port}/v2"
        assert httpx.post(running.base_url + "/embeddings", json=BODY, headers=AUTH).is_success

    assert not emulator.running
    with pytest.raises(RuntimeError):
        _ = emulator.url
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"http://127.0.0.1:{port}/v2/embeddings", json=BODY, headers=AUTH)


def test_with_block_starts_an_unstarted_emulator() -> None:
    with Emulator(dimensions=64) as emulator:
        response = httpx.post(emulator.base_url + "/embeddings", json=BODY, headers=AUTH)

    assert response.json()["data"][0]["embedding"] == emulator_vector("hello", 64)


def test_starting_twice_is_an_error_and_a_stopped_emulator_restarts() -> None:
    emulator = Emulator()
    with emulator.start():
        assert httpx.post(emulator.base_url + "/embeddings", json=BODY, headers=AUTH).is_success
        with pytest.raises(RuntimeError, match="already running"):
            emulator.start()
    emulator.stop()  # stopping twice is harmless

    with emulator.start():
        assert httpx.post(emulator.base_url + "/embeddings", json=BODY, headers=AUTH).is_success
    assert emulator.stats.by_status == {200: 2}  # counters survive a restart


def test_a_taken_port_raises_os_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match=r"(?i)address"):
            Emulator().start(port=taken.getsockname()[1])


def test_the_listening_socket_declares_tcp() -> None:
    # asyncio only sets TCP_NODELAY when it does; without, keep-alive requests stall ~40 ms.
    sock = _bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


async def test_the_app_runs_in_process_on_any_asgi_transport() -> None:
    emulator = Emulator(dimensions=64)
    transport = httpx.ASGITransport(app=emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
        response = await client.post("/v2/embeddings", json=BODY, headers=AUTH)

    assert response.json()["data"][0]["embedding"] == emulator_vector("hello", 64)
    assert emulator.stats.by_status == {200: 1}


async def test_a_drop_in_process_is_a_transport_error_the_client_retries() -> None:
    # No connection to drop through ASGITransport: the client must still see a transport
    # error (retried), not the emulator's own exception.
    emulator = Emulator(fault="drop", fault_every=2)
    transport = httpx.ASGITransport(app=emulator.app)
    fast = RetryPolicy(initial_delay=0.001, max_delay=0.01)
    async with (
        httpx.AsyncClient(transport=transport) as http,
        AsyncPhosphoClient(
            api_key="k", base_url="http://127.0.0.1/v2", http_client=http, retry_policy=fast
        ) as client,
    ):
        vectors = await client.embed_many(["a", "b", "c"])
        retries = client.usage.retries
    assert vectors == [emulator_vector(t) for t in "abc"]
    assert retries == emulator.stats.dropped > 0


def test_importing_the_plugin_does_not_import_the_server_stack() -> None:
    code = (
        "import sys, threading, logging; import phospho_embed.pytest_plugin; "
        "heavy = 'fastapi' in sys.modules or 'uvicorn' in sys.modules; "
        "import phospho_embed.emulator; "
        "print(heavy, threading.active_count(), logging.getLogger().handlers)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.split() == ["False", "1", "[]"]


def test_the_fixtures_give_a_fresh_emulator_to_each_test(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            """
            import httpx
            from phospho_embed.emulator import EmulatorSettings

            BODY = {"input": "hi", "model": "intent-embed"}

            def test_first(phospho_emulator):
                phospho_emulator.configure(api_key="secret", latency=0.01)
                response = httpx.post(
                    phospho_emulator.base_url + "/embeddings",
                    json=BODY,
                    headers={"Authorization": "Bearer secret"},
                )
                assert response.status_code == 200
                assert phospho_emulator.stats.requests == 1

            def test_second(phospho_emulator, phospho_emulator_server):
                assert phospho_emulator is phospho_emulator_server
                assert phospho_emulator.settings == EmulatorSettings()
                assert phospho_emulator.stats.requests == 0
                assert phospho_emulator.base_url.startswith("http://127.0.0.1:")
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
