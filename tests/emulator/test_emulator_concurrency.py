"""Latency, the in-flight cap, and the in-flight counters, under concurrent requests."""

from __future__ import annotations

import asyncio
import time

import httpx

from phospho_embed.emulator import Emulator

AUTH = {"Authorization": "Bearer test-key"}


async def post_concurrently(emulator: Emulator, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=emulator.base_url, headers=AUTH, timeout=30) as client:
        return list(
            await asyncio.gather(
                *(
                    client.post("/embeddings", json={"input": f"text {i}", "model": "intent-embed"})
                    for i in range(count)
                )
            )
        )


def test_latency_delays_each_response_by_at_least_that_long(
    phospho_emulator: Emulator, client: httpx.Client
) -> None:
    phospho_emulator.configure(latency=0.3)

    started = time.perf_counter()
    response = client.post("/embeddings", json={"input": "slow", "model": "intent-embed"})

    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.3


def test_jitter_keeps_the_delay_above_latency_minus_jitter(
    phospho_emulator: Emulator, client: httpx.Client
) -> None:
    phospho_emulator.configure(latency=0.25, jitter=0.1)

    started = time.perf_counter()
    client.post("/embeddings", json={"input": "slow", "model": "intent-embed"})

    assert time.perf_counter() - started >= 0.15


async def test_peak_in_flight_counts_overlapping_requests(phospho_emulator: Emulator) -> None:
    # A long latency keeps all five requests on the server at the same time.
    phospho_emulator.configure(latency=1.0)

    responses = await post_concurrently(phospho_emulator, 5)

    stats = phospho_emulator.stats
    assert [response.status_code for response in responses] == [200] * 5
    assert (stats.requests, stats.peak_in_flight, stats.in_flight) == (5, 5, 0)


async def test_peak_in_flight_ignores_requests_from_before_a_reset(
    phospho_emulator: Emulator,
) -> None:
    # A test's straggler (a slow request its client gave up on) must not count in the next
    # test's peak.
    phospho_emulator.configure(latency=0.6)
    async with httpx.AsyncClient(base_url=phospho_emulator.base_url, headers=AUTH) as client:
        body = {"input": "straggler", "model": "intent-embed"}
        straggler = asyncio.ensure_future(client.post("/embeddings", json=body))
        for _ in range(500):  # bounded: at most 5 s for it to arrive
            if phospho_emulator.stats.in_flight:
                break
            await asyncio.sleep(0.01)
        assert phospho_emulator.stats.in_flight == 1
        phospho_emulator.reset_stats()
        (response,) = await post_concurrently(phospho_emulator, 1)
        await straggler
    stats = phospho_emulator.stats
    assert response.status_code == 200
    assert (stats.requests, stats.peak_in_flight) == (1, 1)


async def test_max_in_flight_answers_429_beyond_the_cap(phospho_emulator: Emulator) -> None:
    phospho_emulator.configure(latency=1.0, max_in_flight=2, retry_after=0.5)

    started = time.perf_counter()
    responses = await post_concurrently(phospho_emulator, 6)

    codes = sorted(response.status_code for response in responses)
    assert codes == [200, 200, 429, 429, 429, 429]
    limited = [response for response in responses if response.status_code == 429]
    assert all(response.headers["Retry-After"] == "0.5" for response in limited)
    assert all("2" in response.json()["detail"] for response in limited)
    assert time.perf_counter() - started >= 1.0  # the two admitted ones were held
    stats = phospho_emulator.stats
    assert stats.by_status == {200: 2, 429: 4}
    assert stats.peak_in_flight >= 3  # a rejected request arrived while two were held


async def test_the_cap_frees_its_slots_when_requests_finish(phospho_emulator: Emulator) -> None:
    phospho_emulator.configure(max_in_flight=1)

    first = await post_concurrently(phospho_emulator, 1)
    second = await post_concurrently(phospho_emulator, 1)

    assert [first[0].status_code, second[0].status_code] == [200, 200]


async def test_a_request_from_before_a_reset_counts_for_nothing_after_it(
    phospho_emulator: Emulator,
) -> None:
    # A slow request still on the server when the next test resets the emulator.
    phospho_emulator.configure(latency=0.5)
    async with httpx.AsyncClient(base_url=phospho_emulator.base_url, headers=AUTH) as client:
        body = {"input": "straggler", "model": "intent-embed"}
        straggler = asyncio.create_task(client.post("/embeddings", json=body))
        for _ in range(500):  # bounded wait for it to reach the server
            if phospho_emulator.stats.in_flight == 1:
                break
            await asyncio.sleep(0.01)
        phospho_emulator.reset(fault="500", fault_every=2)

        late = await straggler
        fresh = [
            (await client.post("/embeddings", json={"input": "new", "model": "intent-embed"}))
            for _ in range(2)
        ]

    assert late.status_code == 200  # served under the settings it arrived with
    assert [response.status_code for response in fresh] == [200, 500]  # took no turn
    stats = phospho_emulator.stats
    assert (stats.requests, stats.by_status, stats.in_flight) == (2, {200: 1, 500: 1}, 0)
    assert stats.inputs == {"new": 2}
