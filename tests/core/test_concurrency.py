"""The concurrency bound is per client, across every call sharing it; order and
de-duplication hold for any batch (hypothesis, over real HTTP)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phospho_embed import AsyncPhosphoClient, PhosphoClient
from phospho_embed._async_client import _pool_sizes
from phospho_embed.emulator import Emulator, emulator_vector
from tests.core.conftest import FAST_RETRIES


def vec(text: str) -> list[float]:
    return emulator_vector(text, 1536)


def batch(name: str, size: int = 12) -> list[str]:
    return [f"{name} message {i}" for i in range(size)]


def test_threads_sharing_a_client_share_its_bound(emulator: Emulator) -> None:
    emulator.configure(latency=0.03)
    with PhosphoClient(api_key="k", base_url=emulator.base_url, max_concurrency=3) as client:

        def run(name: str) -> bool:
            texts = batch(name)
            single = client.embed(f"{name} alone")
            return client.embed_many(texts) == [vec(t) for t in texts] and single == vec(
                f"{name} alone"
            )

        with ThreadPoolExecutor(max_workers=4) as threads:
            assert all(threads.map(run, ["north", "south", "east", "west"]))
    assert 2 <= emulator.stats.peak_in_flight <= 3
    assert emulator.stats.requests == 4 * 13


async def test_tasks_sharing_an_async_client_share_its_bound(emulator: Emulator) -> None:
    emulator.configure(latency=0.03)
    async with AsyncPhosphoClient(
        api_key="k", base_url=emulator.base_url, max_concurrency=3
    ) as client:
        names = ["north", "south", "east", "west"]
        results = await asyncio.gather(
            *(client.embed_many(batch(n)) for n in names),
            *(client.embed(f"{n} alone") for n in names),
        )
    assert results[:4] == [[vec(t) for t in batch(n)] for n in names]
    assert results[4:] == [vec(f"{n} alone") for n in names]
    assert 2 <= emulator.stats.peak_in_flight <= 3


def test_an_async_client_survives_successive_event_loops(emulator: Emulator) -> None:
    client = AsyncPhosphoClient(api_key="k", base_url=emulator.base_url)
    assert asyncio.run(client.embed_many(["first loop"])) == [vec("first loop")]
    assert asyncio.run(client.embed_many(["second loop"])) == [vec("second loop")]
    assert asyncio.run(client.embed("third loop")) == vec("third loop")
    asyncio.run(client.aclose())


def test_an_async_client_keeps_its_pool_in_the_main_threads_loop(emulator: Emulator) -> None:
    async def two_calls() -> tuple[bool, bool]:
        client = AsyncPhosphoClient(api_key="k", base_url=emulator.base_url)
        await client.embed("first")
        first = client._loop_state
        await client.embed_many(["second", "third"])
        kept = client._loop_state is first and first is not None and not first.pools[0].is_closed
        await client.aclose()
        return kept, first is not None and first.pools[0].is_closed

    # Keep-alive across calls in a long-lived loop; closed by aclose().
    assert asyncio.run(two_calls()) == (True, True)


def test_an_async_client_closes_its_pool_when_its_calls_in_a_worker_thread_end(
    emulator: Emulator,
) -> None:
    # A loop in a worker thread may be closed with no clean-up (LlamaIndex's asyncio_run
    # does so): the last call of the client in it closes the pool itself.
    client = AsyncPhosphoClient(api_key="k", base_url=emulator.base_url)
    seen: list[Any] = []

    async def overlapping_calls() -> list[list[float]]:
        first = asyncio.ensure_future(client.embed_many(["a", "b"]))
        second = asyncio.ensure_future(client.embed("c"))
        await asyncio.sleep(0)
        seen.append(client._loop_state)  # one pool shared by both calls
        return [*await first, await second]

    def bare_loop() -> None:
        loop = asyncio.new_event_loop()
        try:
            assert loop.run_until_complete(overlapping_calls()) == [vec(t) for t in "abc"]
        finally:
            loop.close()

    with ThreadPoolExecutor(1) as executor:
        executor.submit(bare_loop).result()
    (state,) = seen
    assert state is not None
    assert state.pools[0].is_closed
    assert client._loop_state is None
    # The client still works, in another loop.
    assert asyncio.run(client.embed("d")) == vec("d")
    asyncio.run(client.aclose())


def test_the_async_pool_is_split_in_pools_of_16_connections_that_all_serve(
    emulator: Emulator,
) -> None:
    # One httpx pool of 40 connections would crawl (httpcore's async pool scales badly);
    # three of 14 together keep all 40 requests in flight.
    assert _pool_sizes(16) == [16]
    assert _pool_sizes(17) == [9, 9]
    assert _pool_sizes(40) == [14, 14, 14]
    emulator.configure(latency=0.3)
    texts = [f"wide {i}" for i in range(80)]

    async def run() -> tuple[list[list[float]], list[Any]]:
        client = AsyncPhosphoClient(api_key="k", base_url=emulator.base_url, max_concurrency=40)
        vectors = await client.embed_many(texts)
        assert client._loop_state is not None
        pools = client._loop_state.pools
        await client.aclose()
        return vectors, pools

    vectors, pools = asyncio.run(run())
    assert vectors == [vec(t) for t in texts]
    assert emulator.stats.peak_in_flight == 40
    assert len(pools) == 3
    assert all(pool.is_closed for pool in pools)


def test_sync_workers_are_threads_of_one_bounded_pool(emulator: Emulator) -> None:
    emulator.configure(latency=0.01)
    before = threading.active_count()
    with PhosphoClient(api_key="k", base_url=emulator.base_url, max_concurrency=4) as client:
        for _ in range(3):
            client.embed_many(batch("pool", 20))
        assert threading.active_count() - before <= 4


# A small alphabet makes duplicates common.
texts_strategy = st.lists(
    st.sampled_from(["hello", "refund please", "cancel order", "hi", "parcel late", "thanks"])
    | st.text(alphabet="abc xyz", min_size=1, max_size=6).filter(str.strip),
    max_size=15,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(texts=texts_strategy)
def test_any_batch_keeps_order_and_requests_each_text_once(
    emulator: Emulator, texts: list[str]
) -> None:
    emulator.reset()
    with PhosphoClient(
        api_key="k", base_url=emulator.base_url, max_concurrency=4, retry_policy=FAST_RETRIES
    ) as client:
        assert client.embed_many(texts) == [vec(t) for t in texts]
    assert emulator.stats.inputs == dict.fromkeys(texts, 1)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(texts=texts_strategy)
def test_any_async_batch_keeps_order_and_requests_each_text_once(
    emulator: Emulator, texts: list[str]
) -> None:
    emulator.reset()

    async def run() -> list[list[float]]:
        async with AsyncPhosphoClient(
            api_key="k", base_url=emulator.base_url, max_concurrency=4
        ) as client:
            return await client.embed_many(texts)

    assert asyncio.run(run()) == [vec(t) for t in texts]
    assert emulator.stats.inputs == dict.fromkeys(texts, 1)
