"""The slot gates: first come, first served, one waiter woken per free slot, and a slot
given to a waiter that gives up is handed on (no slot leaks)."""

from __future__ import annotations

import asyncio
import threading

from phospho_embed._limit import AdaptiveLimit, AsyncGate, Slot, ThreadGate


async def test_a_release_wakes_one_waiter_in_arrival_order() -> None:
    gate = AsyncGate(AdaptiveLimit(1, adaptive=False))
    order: list[int] = []
    entered = asyncio.Event()

    async def holder() -> None:
        async with gate.slot(None):
            entered.set()
            await asyncio.sleep(0.05)

    async def waiter(number: int) -> None:
        async with gate.slot(None):
            order.append(number)

    first = asyncio.ensure_future(holder())
    await entered.wait()
    waiters = [asyncio.ensure_future(waiter(n)) for n in range(50)]
    await asyncio.sleep(0)  # every waiter queued
    assert len(gate._waiters) == 50
    await asyncio.gather(first, *waiters)
    assert order == list(range(50))
    assert gate._active == 0


async def test_a_cancelled_waiter_hands_its_slot_on() -> None:
    gate = AsyncGate(AdaptiveLimit(1, adaptive=False))
    epoch = await gate._acquire(None)
    doomed = asyncio.ensure_future(gate._acquire(None))
    patient = asyncio.ensure_future(gate._acquire(None))
    await asyncio.sleep(0)  # both queued
    gate._release(Slot(epoch))  # the slot goes to `doomed`...
    doomed.cancel()  # ...which is cancelled before it could run
    await asyncio.gather(doomed, return_exceptions=True)
    assert await asyncio.wait_for(patient, 1) is not None  # handed on, not leaked
    assert gate._active == 1
    assert not gate._waiters


async def test_a_wait_past_its_timeout_gives_none_and_leaves_the_queue() -> None:
    gate = AsyncGate(AdaptiveLimit(1, adaptive=False))
    async with gate.slot(None):
        assert await gate._acquire(0.01) is None
    assert not gate._waiters
    assert gate._active == 0


def test_threads_are_served_in_arrival_order() -> None:
    gate = ThreadGate(AdaptiveLimit(1, adaptive=False))
    order: list[int] = []

    def waiter(number: int) -> None:
        with gate.slot(None):
            order.append(number)

    with gate.slot(None):
        threads = []
        for number in range(10):
            thread = threading.Thread(target=waiter, args=(number,))
            thread.start()
            while len(gate._waiters) < number + 1:  # each queues before the next starts
                threading.Event().wait(0.001)
            threads.append(thread)
    for thread in threads:
        thread.join(5)
    assert order == list(range(10))
    assert gate._active == 0
