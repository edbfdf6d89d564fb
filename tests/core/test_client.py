"""Both clients against the emulator over real HTTP: order, de-duplication, concurrency
bounds, retries, errors, partial results, timeouts and input checks."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from phospho_embed import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchEmbeddingError,
    MissingAPIKeyError,
    PaymentRequiredError,
    ResponseFormatError,
    ServerError,
)
from phospho_embed.emulator import Emulator, emulator_vector
from tests.core.conftest import MakeClient

TEXTS = [f"customer message number {i} about order {i * 7 % 13}" for i in range(40)]


def vec(text: str, dimensions: int = 1536) -> list[float]:
    return emulator_vector(text, dimensions)


def test_embed_returns_the_servers_vector(make_client: MakeClient, emulator: Emulator) -> None:
    client = make_client()
    vector = client.embed("I want to cancel my order")
    assert vector == vec("I want to cancel my order")
    assert len(vector) == 1536
    assert all(type(x) is float for x in vector)
    assert emulator.stats.requests == 1
    assert client.usage.requests == 1
    assert client.usage.prompt_tokens == emulator.stats.prompt_tokens > 0


def test_order_is_kept_under_jittered_latency(make_client: MakeClient, emulator: Emulator) -> None:
    emulator.configure(latency=0.02, jitter=0.02, seed=7)
    vectors = make_client(max_concurrency=8).embed_many(TEXTS)
    assert vectors == [vec(t) for t in TEXTS]


def test_duplicates_are_requested_once(make_client: MakeClient, emulator: Emulator) -> None:
    texts = ["refund", "where is my parcel", "refund", "refund", "hello there", "hello there"]
    vectors = make_client().embed_many(texts)
    assert vectors == [vec(t) for t in texts]
    assert emulator.stats.requests == 3
    assert emulator.stats.inputs == {"refund": 1, "where is my parcel": 1, "hello there": 1}
    assert vectors[0] is not vectors[2]  # equal, but mutating one leaves the other intact


def test_empty_batch_sends_nothing(make_client: MakeClient, emulator: Emulator) -> None:
    assert make_client().embed_many([]) == []
    assert emulator.stats.requests == 0


def test_concurrency_is_used_and_bounded(make_client: MakeClient, emulator: Emulator) -> None:
    emulator.configure(latency=0.05)
    make_client(max_concurrency=5).embed_many(TEXTS)
    assert 2 <= emulator.stats.peak_in_flight <= 5
    assert emulator.stats.requests == len(TEXTS)


def test_progress_counts_every_input(make_client: MakeClient) -> None:
    seen: list[int] = []
    make_client().embed_many(["a b", "c d", "a b", "e f"], progress=seen.append)
    assert sum(seen) == 4
    assert sorted(seen) == [1, 1, 2]


def test_results_stream_out_as_they_arrive(make_client: MakeClient) -> None:
    texts = ["a b", "c d", "a b", "word " * 16_000, "e f"]
    streamed: dict[int, list[float]] = {}
    with pytest.raises(BatchEmbeddingError):
        make_client().embed_many(texts, on_embedding=streamed.__setitem__)
    assert streamed == {i: vec(t) for i, t in enumerate(texts) if i != 3}


# --- retries -----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["429", "500", "502", "503", "504", "drop"])
def test_transient_failures_are_retried_until_success(
    make_client: MakeClient, emulator: Emulator, fault: str
) -> None:
    # One request at a time makes the schedule exact: every 2nd request fails, so every
    # text after the first fails once and succeeds on its retry.
    emulator.configure(fault=fault, fault_every=2)
    client = make_client(max_concurrency=1)
    texts = TEXTS[:10]
    assert client.embed_many(texts) == [vec(t) for t in texts]
    assert client.usage.requests == 10
    assert client.usage.retries == 9
    assert emulator.stats.requests == 19
    if fault == "drop":
        assert emulator.stats.dropped == 9
    else:
        assert emulator.stats.by_status[int(fault)] == 9


def test_retries_give_up_after_max_retries(make_client: MakeClient, emulator: Emulator) -> None:
    emulator.configure(fault="503", fault_every=1)
    client = make_client(max_retries=2)
    with pytest.raises(ServerError) as info:
        client.embed("always failing")
    assert info.value.status_code == 503
    assert emulator.stats.requests == 3
    assert client.usage.retries == 2
    assert client.usage.requests == 0


def test_retry_after_is_honoured(
    make_client: MakeClient, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.configure(fault="429", fault_every=2, retry_after=0.3)
    client = make_client(max_concurrency=1)  # backoff alone would wait under 0.02 s
    caplog.set_level(logging.INFO, logger="phospho_embed")
    started = time.monotonic()
    client.embed_many(["first text", "second text"])
    assert time.monotonic() - started >= 0.3
    assert client.usage.retries == 1
    assert any("in 0.30s after RateLimitError" in r.getMessage() for r in caplog.records)


@pytest.mark.wire  # a timeout or a refused connection needs a socket
def test_a_connection_that_never_opens_is_retried_then_reported(make_client: MakeClient) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(base_url=f"http://127.0.0.1:{port}/v2", max_retries=2)
    with pytest.raises(APIConnectionError, match=f"127.0.0.1:{port}"):
        client.embed("hello")
    assert client.usage.retries == 2


@pytest.mark.wire  # a timeout or a refused connection needs a socket
def test_timeouts_are_retried_then_raised(make_client: MakeClient, emulator: Emulator) -> None:
    emulator.configure(latency=1.0)
    client = make_client(timeout=0.2, max_retries=1)
    with pytest.raises(APITimeoutError, match=r"timed out"):
        client.embed("slow text")
    assert client.usage.retries == 1
    assert emulator.stats.requests == 2


# --- errors that are not retried -----------------------------------------------------------


def test_unknown_model_is_a_bad_request_sent_once(
    make_client: MakeClient, emulator: Emulator
) -> None:
    with pytest.raises(BadRequestError) as info:
        make_client(model="gpt-embed").embed("hello")
    assert info.value.status_code == 422
    assert isinstance(info.value.detail, list)
    assert "body.model" in str(info.value)
    assert emulator.stats.requests == 1


def test_wrong_key_is_not_retried(make_client: MakeClient, emulator: Emulator) -> None:
    emulator.configure(api_key="the-right-key")
    with pytest.raises(AuthenticationError) as info:
        make_client(api_key="a-wrong-key").embed("hello")
    assert info.value.status_code == 401
    assert info.value.detail == "Invalid token"
    assert emulator.stats.requests == 1


def test_billing_required_is_not_retried(make_client: MakeClient, emulator: Emulator) -> None:
    emulator.configure(billing_required=True)
    with pytest.raises(PaymentRequiredError) as info:
        make_client().embed("hello")
    assert info.value.status_code == 402
    assert emulator.stats.requests == 1


def test_401_stops_a_large_batch_at_once(make_client: MakeClient, emulator: Emulator) -> None:
    emulator.configure(api_key="the-right-key", latency=0.01)
    client = make_client(api_key="a-wrong-key", max_concurrency=4)
    with pytest.raises(AuthenticationError):
        client.embed_many([f"text {i}" for i in range(500)])
    # Each worker stops after its first answer: at most one request per worker.
    assert emulator.stats.requests <= 4


def test_payment_failure_mid_batch_keeps_what_arrived(
    make_client: MakeClient, emulator: Emulator
) -> None:
    texts = ["one text", "two text", "three text", "four text"]

    def billing_runs_out(_: int) -> None:
        emulator.configure(billing_required=True)

    client = make_client(max_concurrency=1)
    with pytest.raises(BatchEmbeddingError) as info:
        client.embed_many(texts, progress=billing_runs_out)
    error = info.value
    assert error.embeddings == [vec("one text"), None, None, None]
    assert sorted(error.errors) == [1, 2, 3]
    assert all(isinstance(e, PaymentRequiredError) for e in error.errors.values())
    assert isinstance(error.stopped_by, PaymentRequiredError)
    assert "stopped by PaymentRequiredError" in str(error)
    assert emulator.stats.requests == 2  # the rest were never sent


def test_text_over_the_token_limit_keeps_every_other_vector(
    make_client: MakeClient, emulator: Emulator
) -> None:
    too_long = "word " * 16_000
    texts = ["short one", too_long, "short two", "short one"]
    with pytest.raises(BatchEmbeddingError) as info:
        make_client().embed_many(texts)
    error = info.value
    assert error.embeddings == [vec("short one"), None, vec("short two"), vec("short one")]
    assert list(error.errors) == [1]
    assert error.failed_indices == [1]
    assert isinstance(error.errors[1], BadRequestError)
    assert error.errors[1].status_code == 400
    assert "index 1: BadRequestError: 400" in str(error)
    assert emulator.stats.requests == 3  # the 400 was not retried


def test_malformed_body_is_a_format_error_not_retried(
    make_client: MakeClient, emulator: Emulator
) -> None:
    emulator.configure(fault="malformed", fault_every=1)
    with pytest.raises(ResponseFormatError, match="'data' holds 0 items"):
        make_client().embed("hello")
    assert emulator.stats.requests == 1


def test_malformed_body_in_a_batch_keeps_the_others(
    make_client: MakeClient, emulator: Emulator
) -> None:
    emulator.configure(fault="malformed", fault_every=3)
    texts = TEXTS[:6]
    with pytest.raises(BatchEmbeddingError) as info:
        make_client(max_concurrency=1).embed_many(texts)
    error = info.value
    assert sorted(error.errors) == [2, 5]
    assert all(isinstance(e, ResponseFormatError) for e in error.errors.values())
    assert [v for v in error.embeddings if v is not None] == [
        vec(t) for i, t in enumerate(texts) if i not in (2, 5)
    ]


def test_a_change_of_dimension_is_caught(make_client: MakeClient, emulator: Emulator) -> None:
    client = make_client()
    emulator.configure(dimensions=64)
    assert len(client.embed("first")) == 64
    emulator.configure(dimensions=128)
    with pytest.raises(ResponseFormatError, match=r"128 dimensions, but earlier responses .* 64"):
        client.embed("second")


# --- input checks --------------------------------------------------------------------------


def test_bad_input_sends_nothing(make_client: MakeClient, emulator: Emulator) -> None:
    client = make_client()
    with pytest.raises(ValueError, match=r"texts\[2\] is empty"):
        client.embed_many(["fine", "also fine", "   ", "fine again"])
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got NoneType"):
        client.embed_many(["fine", None])
    with pytest.raises(TypeError, match="not a single str"):
        client.embed_many("a whole sentence")
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        client.embed(b"bytes")
    with pytest.raises(ValueError, match="text is empty"):
        client.embed("")
    assert emulator.stats.requests == 0


def test_missing_key_is_explained_at_first_use(make_client: MakeClient, emulator: Emulator) -> None:
    client = make_client(api_key=None)  # constructing needs no key
    for call in (lambda: client.embed("hello"), lambda: client.embed_many(["a", "b"])):
        with pytest.raises(MissingAPIKeyError, match=r"PHOSPHO_API_KEY.*api_key="):
            call()
    assert emulator.stats.requests == 0
