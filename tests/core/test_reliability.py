"""Reliability of the core: adaptive concurrency under throttling, deadlines, resuming,
stopping cleanly (cancel, interrupt, exception), a soak under mixed faults, huge batches,
and the plain-http warning."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phospho_embed import (
    AsyncPhosphoClient,
    AuthenticationError,
    BatchEmbeddingError,
    DeadlineExceededError,
    PhosphoClient,
    RateLimitError,
    ServerError,
)
from phospho_embed._limit import AdaptiveLimit
from phospho_embed.emulator import Emulator, emulator_vector
from tests.core.conftest import FAST_RETRIES, MakeClient


def vec(text: str) -> list[float]:
    return emulator_vector(text, 1536)


def texts(n: int, tag: str = "message") -> list[str]:
    return [f"{tag} {i} about order {i % 11}" for i in range(n)]


# --- adaptive concurrency ------------------------------------------------------------------


def test_limit_halves_once_per_burst_and_climbs_back() -> None:
    limit = AdaptiveLimit(16)
    burst = limit.epoch
    throttled = RateLimitError("429", status_code=429)
    limit.record(burst, throttled)
    assert limit.current == 11  # 16 * 0.7
    assert limit.epoch == burst + 1
    for _ in range(4):  # four more 429s from the same burst: the API took 16 - 5 = 11
        limit.record(burst, throttled)
    assert limit.current == 11
    assert limit.epoch == burst + 1  # one decrease per burst
    for _ in range(3):  # three more: it takes 8
        limit.record(burst, throttled)
    assert limit.current == 8
    limit.record(burst - 1, throttled)  # a straggler from an older burst changes nothing
    assert limit.current == 8
    for _ in range(400):
        limit.record(limit.epoch, [0.1])
    assert limit.current == 16  # additive increase, capped at the maximum
    limit.record(limit.epoch, ServerError("500", status_code=500))  # not a throttle
    assert limit.current == 16


def test_limit_never_drops_below_one_and_can_be_switched_off() -> None:
    limit = AdaptiveLimit(4)
    for _ in range(20):
        limit.record(limit.epoch, RateLimitError("429", status_code=429))
    assert limit.current == 1
    fixed = AdaptiveLimit(4, adaptive=False)
    fixed.record(fixed.epoch, RateLimitError("429", status_code=429))
    assert fixed.current == 4


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_throttling_lowers_concurrency_instead_of_storming(emulator: Emulator, kind: str) -> None:
    # The API serves 4 requests at once and answers 429 beyond; the client asks for 16.
    emulator.configure(latency=0.02, max_in_flight=4, retry_after=0.01)
    batch = texts(300)

    def run(adaptive: bool) -> tuple[float, int]:
        emulator.reset_stats()
        options = {
            "api_key": "k",
            "base_url": emulator.base_url,
            "max_concurrency": 16,
            "max_retries": 50,
            "retry_policy": FAST_RETRIES,
            "adaptive_concurrency": adaptive,
        }
        if kind == "sync":
            with PhosphoClient(**options) as client:
                assert client.embed_many(batch) == [vec(t) for t in batch]
                limit = client.concurrency_limit
        else:

            async def go() -> int:
                async with AsyncPhosphoClient(**options) as client:
                    assert await client.embed_many(batch) == [vec(t) for t in batch]
                    return client.concurrency_limit

            limit = asyncio.run(go())
        stats = emulator.stats
        return stats.by_status.get(429, 0) / stats.requests, limit

    adaptive_share, adaptive_limit = run(adaptive=True)
    fixed_share, fixed_limit = run(adaptive=False)
    # Adapting, few attempts are refused (startup burst, then about one per probe of the
    # cap); without it, the extra workers keep being refused.
    assert adaptive_share <= 0.12
    assert fixed_share > adaptive_share
    assert adaptive_limit <= 6
    assert fixed_limit == 16


# --- deadline and resume -------------------------------------------------------------------


def test_a_deadline_ends_a_stuck_batch_with_its_partial_results(
    make_client: MakeClient, emulator: Emulator
) -> None:
    emulator.configure(latency=0.2)
    batch = texts(80)  # 4 at a time: 4 s without a deadline
    started = time.monotonic()
    with pytest.raises(BatchEmbeddingError) as info:
        make_client(max_concurrency=4).embed_many(batch, deadline=0.5)
    assert time.monotonic() - started < 2.0
    error = info.value
    arrived = [i for i, v in enumerate(error.embeddings) if v is not None]
    assert 4 <= len(arrived) <= 12
    assert all(error.embeddings[i] == vec(batch[i]) for i in arrived)
    assert all(isinstance(e, DeadlineExceededError) for e in error.errors.values())
    assert "deadline of 0.5s passed" in str(error)


@pytest.mark.wire  # a timeout or a refused connection needs a socket
def test_a_deadline_cuts_a_request_in_flight(make_client: MakeClient, emulator: Emulator) -> None:
    emulator.configure(latency=2.0)
    with pytest.raises(BatchEmbeddingError) as info:
        make_client().embed_many(["slow one"], deadline=0.3)
    [failure] = info.value.errors.values()
    assert isinstance(failure, DeadlineExceededError)
    assert "during its request" in str(failure)


def test_bad_deadline_is_refused(make_client: MakeClient) -> None:
    with pytest.raises(ValueError, match="deadline must be a positive"):
        make_client().embed_many(["a"], deadline=0)


def test_resume_sends_only_the_failed_texts(make_client: MakeClient, emulator: Emulator) -> None:
    emulator.configure(fault="500", fault_every=3)
    client = make_client(max_concurrency=1, max_retries=0)
    batch = [*texts(9), "message 0 about order 0"]  # a duplicate, sent once
    with pytest.raises(BatchEmbeddingError) as info:
        client.embed_many(batch)
    failed = sorted(info.value.errors)
    assert failed == [2, 5, 8]
    emulator.reset()  # no more faults, fresh counters
    assert client.embed_many(batch, resume_from=info.value) == [vec(t) for t in batch]
    assert emulator.stats.inputs == {batch[i]: 1 for i in failed}


def test_resume_needs_the_same_texts(make_client: MakeClient) -> None:
    with pytest.raises(ValueError, match="resume_from holds 2 results for 3 texts"):
        make_client().embed_many(["a", "b", "c"], resume_from=[[0.1], None])


# --- stopping cleanly ----------------------------------------------------------------------


async def test_cancelling_an_async_batch_stops_its_requests(emulator: Emulator) -> None:
    emulator.configure(latency=0.3)
    async with AsyncPhosphoClient(
        api_key="k", base_url=emulator.base_url, max_concurrency=4
    ) as client:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.embed_many(texts(40)), timeout=0.1)
        # Longer than a request: a batch still running would have sent its next wave by
        # now. Counted after the wait, since the first wave may still be connecting when
        # the call is cancelled (reading the count then raced with its arrival).
        await asyncio.sleep(0.5)
        assert emulator.stats.requests <= 4  # the first wave at most: nothing new started
        assert asyncio.all_tasks() == {asyncio.current_task()}  # no worker left behind
        assert await client.embed("still usable") == vec("still usable")


def test_an_interrupt_stops_a_sync_batch_and_leaves_the_client_usable(
    emulator: Emulator,
) -> None:
    emulator.configure(latency=0.1)
    with PhosphoClient(api_key="k", base_url=emulator.base_url, max_concurrency=4) as client:
        # A real SIGINT to the main thread, as Ctrl-C sends: it interrupts blocking waits.
        main = threading.main_thread().ident
        assert main is not None
        timer = threading.Timer(0.25, signal.pthread_kill, (main, signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            client.embed_many(texts(200))
        time.sleep(0.3)  # requests in flight at the interrupt finish
        sent = emulator.stats.requests
        assert sent <= 4 * 5
        time.sleep(0.3)
        assert emulator.stats.requests == sent  # nothing queued was sent afterwards
        assert client.embed("still usable") == vec("still usable")


def test_an_exception_in_a_callback_stops_the_batch(emulator: Emulator) -> None:
    emulator.configure(latency=0.05)

    def explode(_: int) -> None:
        raise RuntimeError("the progress bar broke")

    with PhosphoClient(api_key="k", base_url=emulator.base_url, max_concurrency=4) as client:
        with pytest.raises(RuntimeError, match="progress bar broke"):
            client.embed_many(texts(100), progress=explode)
        time.sleep(0.2)
        sent = emulator.stats.requests
        assert sent <= 8
        time.sleep(0.2)
        assert emulator.stats.requests == sent


def test_huge_batches_stay_bounded(emulator: Emulator) -> None:
    emulator.configure(api_key="right-key")
    before = threading.active_count()
    with PhosphoClient(api_key="wrong-key", base_url=emulator.base_url) as client:
        with pytest.raises(AuthenticationError):
            client.embed_many(texts(200_000))
        assert threading.active_count() - before <= 16  # one pool, not a thread per text
    assert emulator.stats.requests <= 16


# --- faults survived, nothing lost -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_soak_under_mixed_faults_loses_nothing(emulator: Emulator, kind: str) -> None:
    emulator.configure(
        latency=0.004,
        jitter=0.004,
        fault="429,429-bare,500,502,503,drop,slow",
        fault_rate=0.15,
        retry_after=0.01,
        slow_latency=1.5,
        seed=7,
    )
    batch = texts(300, tag=f"soak {kind}")
    options = {
        "api_key": "k",
        "base_url": emulator.base_url,
        "max_concurrency": 32,
        "max_retries": 10,
        # The "slow" fault answers after 1.5 s: a timeout, retried. Wide enough that a
        # plain request on a loaded machine does not time out too (a retry the server may
        # never count, which the bound on retries below would take for a double retry).
        "timeout": 1.0,
        "retry_policy": FAST_RETRIES,
    }
    if kind == "sync":
        with PhosphoClient(**options) as client:
            vectors = client.embed_many(batch)
            usage = client.usage
    else:

        async def go() -> tuple[list[list[float]], object]:
            async with AsyncPhosphoClient(**options) as client:
                return await client.embed_many(batch), client.usage

        vectors, usage = asyncio.run(go())  # type: ignore[assignment]
    assert vectors == [vec(t) for t in batch]
    stats = emulator.stats
    faulted = stats.requests - len(batch)
    assert faulted > 30
    assert usage.requests == len(batch)  # type: ignore[attr-defined]
    # Every faulted request was retried. A few retries more are possible: after a dropped
    # connection, a pooled connection the server closed can fail before the server counts it.
    assert faulted <= usage.retries <= faulted * 1.05 + 10  # type: ignore[attr-defined]
    assert stats.dropped > 0
    assert stats.by_status[429] > 0
    assert stats.by_status[503] > 0


# --- bad input -------------------------------------------------------------------------------

valid = st.text(alphabet="abcdef xyz", min_size=1, max_size=8).filter(str.strip)
invalid = st.sampled_from(["", "  ", "\t\n", "nul\x00", "lone \ud800", None, 3, 2.5, b"b", ["x"]])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=st.lists(st.one_of(valid, valid, invalid), max_size=12))
def test_any_mix_of_inputs_is_embedded_or_refused_before_sending(
    emulator: Emulator, items: list[object]
) -> None:
    emulator.reset()
    bad = [
        i for i, item in enumerate(items) if not (isinstance(item, str) and item in valid_set(item))
    ]
    with PhosphoClient(api_key="k", base_url=emulator.base_url, retry_policy=FAST_RETRIES) as c:
        if bad:
            with pytest.raises((TypeError, ValueError), match=rf"texts\[{bad[0]}\]"):
                c.embed_many(items)  # type: ignore[arg-type]
            assert emulator.stats.requests == 0
        else:
            assert c.embed_many(items) == [vec(t) for t in items]  # type: ignore[arg-type]


def valid_set(item: str) -> set[str]:
    """``{item}`` when the API can embed it (not blank, no NUL, valid UTF-8), else empty."""
    try:
        item.encode("utf-8")
    except UnicodeEncodeError:
        return set()
    return {item} if item.strip() and "\x00" not in item else set()


# --- security --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "warns"),
    [
        ("http://api.example.com/v2", True),
        ("http://10.1.2.3:8000/v2", True),
        ("https://api.example.com/v2", False),
        ("http://127.0.0.1:8000/v2", False),
        ("http://localhost:8000/v2", False),
        ("http://[::1]:8000/v2", False),
    ],
)
def test_plain_http_to_a_remote_host_warns_without_the_key(url: str, warns: bool) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        PhosphoClient(api_key="sk-SENTINEL-http", base_url=url)
        AsyncPhosphoClient(api_key="sk-SENTINEL-http", base_url=url)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == (2 if warns else 0)
    for message in messages:
        assert "plain http://" in message
        assert "sk-SENTINEL-http" not in message
