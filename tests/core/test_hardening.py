"""Hostile servers, contention and misuse (issue 15): each promise over a real socket, for
the sync and the async client alike (``make_client`` runs every test once per client)."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from collections.abc import Iterator

import httpx
import pytest

from phospho_embed import (
    APITimeoutError,
    AsyncPhosphoClient,
    AuthenticationError,
    BatchEmbeddingError,
    ClientClosedError,
    DeadlineExceededError,
    EndpointNotFoundError,
    EndpointUnreachableError,
    PhosphoClient,
    ResponseFormatError,
    wire,
)
from phospho_embed.emulator import Emulator, emulator_vector
from tests.core.conftest import FAST_RETRIES, MakeClient
from tests.core.hostile import answer, authorization, hostile_server

KEY = "sk-hardening-7c1e-never-shown"


def vec(text: str) -> list[float]:
    return emulator_vector(text, 1536)


def _vector_body() -> bytes:
    return json.dumps({"data": [{"embedding": [0.5, 0.5]}], "usage": {}}).encode()


# --- time bounds -----------------------------------------------------------------------------


@pytest.mark.wire
def test_a_trickling_body_is_cut_at_the_timeout_on_the_wall_clock(make_client: MakeClient) -> None:
    def trickle(_: bytes) -> Iterator[tuple[float, bytes]]:
        yield 0, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 999\r\n\r\n"
        for _ in range(40):  # a byte every 0.25 s: 10 s in all, never a read timeout
            yield 0.25, b" "

    with hostile_server(trickle) as url:
        client = make_client(api_key=KEY, base_url=url, timeout=1.0, max_retries=0)
        started = time.monotonic()
        with pytest.raises(APITimeoutError, match="timed out"):
            client.embed("a")
        assert time.monotonic() - started < 5  # not the 10 s the server would take


@pytest.mark.wire
def test_waiting_for_a_slot_counts_against_the_deadline(
    make_client: MakeClient, emulator: Emulator
) -> None:
    emulator.configure(latency=1.5)
    client = make_client(max_concurrency=1)
    holder = threading.Thread(target=client.embed, args=("slow, holding the only slot",))
    holder.start()
    try:
        while emulator.stats.in_flight == 0:  # the slot is taken once the server has it
            time.sleep(0.01)
        with pytest.raises(BatchEmbeddingError) as info:
            client.embed_many(["fast"], deadline=0.5)
        assert isinstance(info.value.errors[0], DeadlineExceededError)
    finally:
        holder.join()
    assert "fast" not in emulator.stats.inputs  # nothing is sent after the deadline


# --- a wrong base URL stops early ------------------------------------------------------------


@pytest.mark.wire
def test_a_404_stops_the_call_and_names_the_url(make_client: MakeClient) -> None:
    seen: list[bytes] = []

    def not_found(request: bytes) -> Iterator[tuple[float, bytes]]:
        seen.append(request)
        yield 0.05, answer("404 Not Found", b'{"detail":"Not Found"}')

    with hostile_server(not_found) as url:
        client = make_client(api_key=KEY, base_url=url[: -len("/v2")] + "/v1", max_concurrency=2)
        with pytest.raises(EndpointNotFoundError, match=r"/v1/embeddings: is base_url right\?"):
            client.embed_many([f"text {i}" for i in range(30)])
    assert len(seen) <= 2  # the requests already in flight, no more


@pytest.mark.wire
def test_a_url_that_never_answers_stops_after_one_texts_retries(make_client: MakeClient) -> None:
    sent: list[str] = []
    with httpx.Client(event_hooks={"request": [lambda r: sent.append(r.url.path)]}) as http:
        client = PhosphoClient(
            api_key=KEY,
            base_url="http://127.0.0.1:9/v2",  # nothing listens on the discard port
            max_retries=2,
            max_concurrency=2,
            retry_policy=FAST_RETRIES,
            http_client=http,
        )
        with pytest.raises(EndpointUnreachableError, match="never answered: is base_url right"):
            client.embed_many([f"text {i}" for i in range(200)])
    assert len(sent) <= 2 * 3 + 2  # two workers, three attempts each: not 200 x 3


# --- size bounds -----------------------------------------------------------------------------


@pytest.mark.wire
@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_an_oversized_body_is_refused_without_reading_it_all(
    make_client: MakeClient, encoding: str
) -> None:
    huge = b"[" + b" " * (64 * 1024 * 1024) + b"]"  # 64 MiB, far past the cap
    payload = gzip.compress(huge, compresslevel=1) if encoding == "gzip" else huge

    def bomb(_: bytes) -> Iterator[tuple[float, bytes]]:
        yield 0, answer("200 OK", payload, f"Content-Encoding: {encoding}")

    with hostile_server(bomb) as url:
        client = make_client(api_key=KEY, base_url=url, max_retries=0)
        with pytest.raises(ResponseFormatError, match=f"over {wire.MAX_RESPONSE_BYTES} bytes"):
            client.embed("a")


# --- the key ---------------------------------------------------------------------------------


@pytest.mark.wire
def test_a_key_echoed_by_the_server_is_redacted_everywhere(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="phospho_embed")
    calls = {"n": 0}

    def echo(request: bytes) -> Iterator[tuple[float, bytes]]:
        calls["n"] += 1
        status = "503 Service Unavailable" if calls["n"] == 1 else "401 Unauthorized"
        detail = json.dumps({"detail": f"Invalid token: {authorization(request)}"})
        yield 0, answer(status, detail.encode(), "Content-Type: application/json")

    with hostile_server(echo) as url:
        client = make_client(api_key=KEY, base_url=url, max_retries=1)
        with pytest.raises(AuthenticationError) as info:
            client.embed("a")
    error = info.value
    shown = [str(error), repr(error), repr(error.detail), *(r.getMessage() for r in caplog.records)]
    assert any("[redacted]" in line for line in shown)  # the server did echo it
    assert not [line for line in shown if KEY in line]


def test_the_key_is_not_in_a_traceback_formatted_with_its_locals(emulator: Emulator) -> None:
    emulator.configure(api_key="another key")
    client = PhosphoClient(api_key=KEY, base_url=emulator.base_url)
    try:
        client.embed("a")
    except AuthenticationError as error:
        formatted = "".join(
            traceback.TracebackException.from_exception(error, capture_locals=True).format()
        )
    assert "headers" in formatted  # the request frame's locals are there
    assert KEY not in formatted


# --- concurrency and process edge cases ------------------------------------------------------


def test_embed_many_from_its_own_callback_works_and_never_hangs(emulator: Emulator) -> None:
    client = PhosphoClient(api_key="k", base_url=emulator.base_url, max_concurrency=2)
    inner: list[list[list[float]]] = []
    outcome: list[object] = []

    def nested(index: int, vector: list[float]) -> None:
        inner.append(client.embed_many([f"inner {index}", "shared"]))

    def run() -> None:
        try:
            outcome.append(client.embed_many(["a", "b", "c"], on_embedding=nested))
        except BaseException as error:  # the test inspects it
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "embed_many hung"
    assert outcome == [[vec("a"), vec("b"), vec("c")]]
    assert sorted(v[0] for v in inner) == sorted(vec(f"inner {i}") for i in range(3))


def test_concurrent_calls_on_one_client_run_side_by_side(emulator: Emulator) -> None:
    # A small call next to a bulk one shares the bound instead of queueing behind it.
    emulator.configure(latency=0.1)
    client = PhosphoClient(api_key="k", base_url=emulator.base_url, max_concurrency=4)
    bulk = threading.Thread(target=client.embed_many, args=([f"bulk {i}" for i in range(60)],))
    bulk.start()
    try:
        while emulator.stats.in_flight < 4:
            time.sleep(0.01)
        assert client.embed_many(["small"], deadline=2.0) == [vec("small")]
        assert emulator.stats.inputs.get("bulk 59") is None  # the bulk call is still going
    finally:
        bulk.join()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_client_used_before_a_fork_works_in_the_child(emulator: Emulator) -> None:
    script = textwrap.dedent(
        f"""
        import os, sys
        from phospho_embed import PhosphoClient, AsyncPhosphoClient
        import asyncio
        client = PhosphoClient(api_key="k", base_url={emulator.base_url!r})
        aclient = AsyncPhosphoClient(api_key="k", base_url={emulator.base_url!r})
        client.embed_many(["parent one", "parent two"])
        asyncio.run(aclient.embed_many(["parent three"]))
        pid = os.fork()
        if pid == 0:
            ok = len(client.embed_many(["child one", "child two"])) == 2
            ok = ok and len(asyncio.run(aclient.embed_many(["child three"]))) == 1
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], timeout=60, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    assert {"child one", "child two", "child three"} <= set(emulator.stats.inputs)


def test_close_during_embed_many_ends_it_with_what_arrived(emulator: Emulator) -> None:
    emulator.configure(latency=0.1)
    client = PhosphoClient(api_key="k", base_url=emulator.base_url, max_concurrency=2)
    texts = [f"text {i}" for i in range(40)]
    arrived = threading.Event()
    closer = threading.Thread(target=lambda: arrived.wait(10) and client.close())
    closer.start()
    with pytest.raises(BatchEmbeddingError) as info:
        client.embed_many(texts, on_embedding=lambda i, v: arrived.set())
    closer.join()
    error = info.value
    assert isinstance(error.stopped_by, ClientClosedError)
    kept = [(t, v) for t, v in zip(texts, error.embeddings, strict=True) if v is not None]
    assert kept
    assert all(v == vec(t) for t, v in kept)
    assert len(kept) == emulator.stats.by_status[200]  # every answer paid for is kept
    with pytest.raises(ClientClosedError):
        client.embed("after close")


async def test_aclose_during_embed_many_ends_it_with_what_arrived(emulator: Emulator) -> None:
    emulator.configure(latency=0.1)
    client = AsyncPhosphoClient(api_key="k", base_url=emulator.base_url, max_concurrency=2)
    texts = [f"text {i}" for i in range(40)]
    arrived = asyncio.Event()
    call = asyncio.ensure_future(client.embed_many(texts, on_embedding=lambda i, v: arrived.set()))
    await asyncio.wait_for(arrived.wait(), 10)
    await client.aclose()
    with pytest.raises(BatchEmbeddingError) as info:
        await asyncio.wait_for(call, 10)
    assert isinstance(info.value.stopped_by, ClientClosedError)
    assert any(v is not None for v in info.value.embeddings)


async def test_a_client_is_usable_at_once_after_cancellations_mid_connect(
    emulator: Emulator,
) -> None:
    emulator.configure(latency=0.05)
    client = AsyncPhosphoClient(api_key="k", base_url=emulator.base_url, max_concurrency=8)
    for round_ in range(15):
        call = asyncio.ensure_future(client.embed_many([f"r{round_} {i}" for i in range(30)]))
        await asyncio.sleep(0.001 * (round_ % 5))  # cut while connections are opening
        call.cancel()
        await asyncio.gather(call, return_exceptions=True)
        assert await asyncio.wait_for(client.embed(f"after {round_}"), 5) == vec(f"after {round_}")
    await client.aclose()


# --- resume_from is tied to its texts --------------------------------------------------------


def test_resume_from_refuses_the_error_of_other_texts_and_bad_entries(
    make_client: MakeClient, emulator: Emulator
) -> None:
    client = make_client(max_retries=0)
    too_long = "word " * 16_000
    with pytest.raises(BatchEmbeddingError) as info:
        client.embed_many(["alpha", too_long, "gamma"])
    with pytest.raises(ValueError, match="call on other texts"):
        client.embed_many(["one", "two", "three"], resume_from=info.value)
    for bad in (["x", None, None], [[float("nan")], None, None], [[], None, None],
                [[0.1, 0.2], [0.1], None]):  # fmt: skip
        with pytest.raises(ValueError, match=r"resume_from\[\d\] is not a vector"):
            client.embed_many(["one", "two", "three"], resume_from=bad)  # type: ignore[arg-type]
    requests = emulator.stats.requests
    assert client.embed_many(["alpha", "beta", "gamma"], resume_from=info.value.embeddings) == [
        vec("alpha"), vec("beta"), vec("gamma")]  # fmt: skip
    assert emulator.stats.requests == requests + 1  # only beta was sent


# --- warnings --------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.1/v2", "http://localhost./v2", "http://[::1]:8/v2"])
def test_loopback_in_any_spelling_gets_no_plain_http_warning(url: str) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PhosphoClient(base_url=url)


@pytest.mark.wire
def test_a_key_echoed_in_a_single_embed_is_not_in_traceback_locals(make_client: MakeClient) -> None:
    def echo(request: bytes) -> Iterator[tuple[float, bytes]]:
        detail = json.dumps({"detail": f"Invalid token: {authorization(request)}"})
        yield 0, answer("401 Unauthorized", detail.encode(), "Content-Type: application/json")

    with hostile_server(echo) as url:
        client = make_client(api_key=KEY, base_url=url)
        with pytest.raises(AuthenticationError) as info:
            client.embed("a")
    trace = traceback.TracebackException.from_exception(info.value, capture_locals=True)
    formatted = "".join(trace.format())
    assert "[redacted]" in formatted  # the echo is there, redacted
    assert KEY not in formatted


def test_resume_from_refuses_vectors_of_another_dimension_than_the_clients(
    make_client: MakeClient,
) -> None:
    client = make_client()
    client.embed("warm up: the client now knows its vectors' length")
    with pytest.raises(ValueError, match="1536 numbers, as this client's"):
        client.embed_many(["a", "b"], resume_from=[[0.1] * 8, None])
    vectors = client.embed_many(["a", "b"], resume_from=[[1] * 1536, None])
    assert type(vectors[0][0]) is float  # resumed integers come back as floats


@pytest.mark.wire
def test_trickling_headers_are_cut_at_the_timeout_too(make_client: MakeClient) -> None:
    def trickle(_: bytes) -> Iterator[tuple[float, bytes]]:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"y" * 40
        for byte in head:  # a byte every 0.25 s: 10 s before the headers even end
            yield 0.25, bytes([byte])

    with hostile_server(trickle) as url:
        client = make_client(api_key=KEY, base_url=url, timeout=1.0, max_retries=0)
        started = time.monotonic()
        with pytest.raises(APITimeoutError, match="timed out"):
            client.embed("a")
        assert time.monotonic() - started < 5
