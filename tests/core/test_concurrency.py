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
from phospho_embed._core import pool_sizes
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


def test_an_async_client_keeps_a_loops_pools_for_the_loops_life(emulator: Emulator) -> None:
    async def calls() -> tuple[bool, list[Any]]:
        client = AsyncPhosphoClient(api_key="k", base_url=emulator.base_url)
        await client.embed("first")
        first = client._loops[asyncio.get_running_loop()]
        await client.embed_many(["second", "third"])
        kept = client._loops[asyncio.get_running_loop()] is first
        return kept and not first.pools[0].is_closed, first.pools

    # Keep-alive across calls in a loop; closed when asyncio.run finalizes the loop.
    kept, pools = asyncio.run(calls())
    assert kept
    assert all(pool.is_closed for pool in pools)


def test_a_bare_loop_in_a_worker_thread_keeps_its_pools_until_it_is_closed(
    emulator: Emulator,
) -> None:
    # LlamaIndex's asyncio_run runs a loop in a worker thread and closes it with no clean-up.
    # The pools live as long as that loop (no new connection per call), and its close()
    # closes them.
    client = AsyncPhosphoClient(api_key="k", base_url=emulator.base_url)
    seen: list[Any] = []

    async def sequential_calls() -> list[list[float]]:
        vectors = []
        for text in ["a", "b", "c"]:
            vectors.append(await client.embed(text))
            pools = client._loops[asyncio.get_running_loop()]
            assert not pools.pools[0].is_closed
            seen.append(pools)
        return vectors

    def bare_loop() -> None:
        loop = asyncio.new_event_loop()
        try:
            assert loop.run_until_complete(sequential_calls()) == [vec(t) for t in "abc"]
        finally:
            loop.close()

    with ThreadPoolExecutor(1) as executor:
        executor.submit(bare_loop).result()
    assert seen[0] is seen[1] is seen[2]
    assert all(pool.is_closed for pool in seen[0].pools)
    assert len(client._loops) == 0
    # The client still works, in another loop.
    assert asyncio.run(client.embed("d")) == vec("d")


def test_one_bound_for_every_thread_and_loop_sharing_an_async_client(
    emulator: Emulator,
) -> None:
    emulator.configure(latency=0.05)
    client = AsyncPhosphoClient(api_key="k", base_url=emulator.base_url, max_concurrency=4)

    def run(name: str) -> bool:
        texts = batch(name, 16)
        return asyncio.run(client.embed_many(texts)) == [vec(t) for t in texts]

    with ThreadPoolExecutor(max_workers=3) as threads:
        assert all(threads.map(run, ["north", "south", "east"]))
    assert emulator.stats.peak_in_flight == 4
    assert emulator.stats.requests == 48


def test_the_async_pool_is_split_in_pools_of_16_connections_that_all_serve(
    emulator: Emulator,
) -> None:
    # One httpx pool of 40 connections would crawl (httpcore's async pool scales badly);
    # three of 14 together keep all 40 requests in flight.
    assert pool_sizes(16) == [16]
    assert pool_sizes(17) == [9, 9]
    assert pool_sizes(40) == [14, 14, 14]
    emulator.configure(latency=0.3)
    texts = [f"wide {i}" for i in range(80)]

    async def run() -> tuple[list[list[float]], list[Any]]:
        client = AsyncPhosphoClient(api_key="k", base_url=emulator.base_url, max_concurrency=40)
        vectors = await client.embed_many(texts)
        pools = client._loops[asyncio.get_running_loop()].pools
        await client.aclose()
        return vectors, pools

    vectors, pools = asyncio.run(run())
    assert vectors == [vec(t) for t in texts]
    assert emulator.stats.peak_in_flight == 40
    assert len(pools) == 3
    assert all(pool.is_closed for pool in pools)


def test_the_sync_pool_is_split_in_pools_of_16_connections_that_all_serve(
    emulator: Emulator,
) -> None:
    # httpcore's sync pool scales as badly: one pool of 128 connections reached 15% of the
    # limit, pools of 16 together 45% (benchmarks/throughput.py measures it).
    emulator.configure(latency=0.3)
    texts = [f"wide sync {i}" for i in range(80)]
    client = PhosphoClient(api_key="k", base_url=emulator.base_url, max_concurrency=40)
    assert client.embed_many(texts) == [vec(t) for t in texts]
    assert client._pools is not None
    pools = client._pools.pools
    opened = [len(pool._transport._pool.connections) for pool in pools]  # type: ignore[attr-defined]
    assert len(opened) == 3
    assert sum(opened) == 40
    assert max(opened) <= 14
    assert emulator.stats.peak_in_flight == 40
    client.close()
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


def test_a_dropped_async_client_leaves_no_socket_to_the_garbage_collector(
    emulator: Emulator,
) -> None:
    # A cycle between the client's pools and their closer once let the collector finalize
    # sockets before the closer could close them (ResourceWarning: unclosed transport).
    import gc
    import warnings

    loop = asyncio.new_event_loop()
    try:
        client = AsyncPhosphoClient(api_key="k", base_url=emulator.base_url)
        assert loop.run_until_complete(client.embed_many(["a", "b"])) == [vec("a"), vec("b")]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            del client
            gc.collect()
        assert [str(w.message) for w in caught if w.category is ResourceWarning] == []
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
