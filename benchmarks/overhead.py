"""Client overhead: CPU time per request in the client process, ours against bare httpx.

The emulator answers at once (no latency) from its own process, so its CPU never counts.
The client's cost is the CPU time of this process (``time.process_time``: every thread, user
and system) per request. The floor for an httpx client is a bare loop of
``httpx.Client.post`` + ``json.loads``; bare httpx with 16 threads and ``httpx.AsyncClient``
with 16 requests in flight show what concurrency costs httpx itself. Variants take turns,
round after round, each on fresh texts, and the median of the rounds is reported: these
machines are noisy.

pyinstrument then shows where the time goes, grouped by who owns the code. It samples one
thread, so the sync path is profiled through ``PhosphoClient.embed`` in a loop (the same
per-request code that ``embed_many``'s worker threads run); the async client is profiled
through ``embed_many`` itself.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import httpx

from benchmarks._harness import (
    API_KEY,
    emulator_process,
    percent,
    sample_texts,
    table,
    times,
    verdict,
)
from phospho_embed import AsyncPhosphoClient, PhosphoClient, wire
from phospho_embed.emulator import emulator_vector

TITLE = "Client overhead"
HEADERS = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}

FLOOR = "bare `httpx.Client.post` + `json.loads`, one at a time"
OURS_DEFAULT = "**ours**: `PhosphoClient.embed_many` (default: 16 threads)"
BARE_ASYNC = "bare `httpx.AsyncClient.post` + `json.loads`, 16 in flight"
OURS_ASYNC = "**ours**: `AsyncPhosphoClient.embed_many` (default: 16 in flight)"
EMULATOR_BODY = "the emulator's"
DENSE_BODY = "dense, random (as a real model's)"


@dataclass(frozen=True)
class Plan:
    """How big a run is."""

    texts: int  # per variant and round
    rounds: int
    profiled: int  # requests under the profiler, per profile
    repeats: int  # in-process micro-measurements: best of this many


FULL = Plan(texts=150, rounds=3, profiled=300, repeats=100)
QUICK = Plan(texts=20, rounds=1, profiled=20, repeats=5)

Variant = Callable[[list[str]], object]


def _fresh_texts(count: int, tag: str) -> Iterator[list[str]]:
    # Fresh texts for every call: no variant is ever answered from a cache the previous one
    # filled (the emulator's, or a client's de-duplication).
    for batch in itertools.count():
        yield sample_texts(count, tag=f"{tag} {batch}")


def _decode(response: httpx.Response) -> list[float]:
    response.raise_for_status()
    vector: list[float] = json.loads(response.content)["data"][0]["embedding"]
    return vector


def _variants(url: str, stack: ExitStack, loop: asyncio.AbstractEventLoop) -> dict[str, Variant]:
    """Every way to send the texts, built once (connections open at their first call)."""
    endpoint = f"{url}/embeddings"
    http = stack.enter_context(httpx.Client(limits=httpx.Limits(max_connections=16)))

    def bare_one(text: str) -> list[float]:
        body = json.dumps({"input": text, "model": "intent-embed"}).encode()
        return _decode(http.post(endpoint, content=body, headers=HEADERS))

    pool = stack.enter_context(ThreadPoolExecutor(16))
    async_http = httpx.AsyncClient(limits=httpx.Limits(max_connections=16))
    stack.callback(lambda: loop.run_until_complete(async_http.aclose()))

    async def bare_async(texts: list[str]) -> list[list[float]]:
        slots = asyncio.Semaphore(16)

        async def one(text: str) -> list[float]:
            body = json.dumps({"input": text, "model": "intent-embed"}).encode()
            async with slots:
                return _decode(await async_http.post(endpoint, content=body, headers=HEADERS))

        return await asyncio.gather(*(one(text) for text in texts))

    one_at_a_time = stack.enter_context(
        PhosphoClient(api_key=API_KEY, base_url=url, max_concurrency=1)
    )
    default = stack.enter_context(PhosphoClient(api_key=API_KEY, base_url=url))
    aclient = AsyncPhosphoClient(api_key=API_KEY, base_url=url)
    stack.callback(lambda: loop.run_until_complete(aclient.aclose()))
    return {
        FLOOR: lambda texts: [bare_one(text) for text in texts],
        "bare `httpx.Client.post` + `json.loads`, 16 threads": lambda texts: list(
            pool.map(bare_one, texts)
        ),
        BARE_ASYNC: lambda texts: loop.run_until_complete(bare_async(texts)),
        "**ours**: `PhosphoClient.embed_many`, `max_concurrency=1`": one_at_a_time.embed_many,
        OURS_DEFAULT: default.embed_many,
        OURS_ASYNC: lambda texts: loop.run_until_complete(aclient.embed_many(texts)),
    }


def _measure(plan: Plan, url: str) -> dict[str, dict[str, float]]:
    texts = _fresh_texts(plan.texts, "overhead")
    loop = asyncio.new_event_loop()
    try:
        with ExitStack() as stack:
            variants = _variants(url, stack, loop)
            for variant in variants.values():
                variant(next(texts))  # warm-up: connections, threads, lazy imports
            cpu: dict[str, list[float]] = {name: [] for name in variants}
            rates: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(plan.rounds):
                for name, variant in variants.items():
                    batch = next(texts)
                    started, wall = time.process_time(), time.perf_counter()
                    vectors = variant(batch)
                    cpu[name].append((time.process_time() - started) / len(batch))
                    rates[name].append(len(batch) / (time.perf_counter() - wall))
                    if vectors[-1] != emulator_vector(batch[-1]):  # type: ignore[index]
                        raise RuntimeError(f"{name} returned the wrong vector")
    finally:
        # As asyncio.run does: async generators (a client's pool closer) finish in the loop.
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    return {
        name: {"cpu": statistics.median(cpu[name]), "rate": statistics.median(rates[name])}
        for name in cpu
    }


# -- the profile --------------------------------------------------------------------------

GROUPS = (
    ("ours (`phospho_embed`)", ("/phospho_embed/",)),
    ("JSON (`json`)", ("/json/",)),
    ("HTTP client (`httpx`, `httpcore`, `h11`)", ("/httpx/", "/httpcore/", "/h11/")),
    ("event loop (`asyncio`, `anyio`, `sniffio`)", ("/asyncio/", "/anyio/", "/sniffio/")),
    ("threads (`threading`, `concurrent`)", ("threading.py", "/concurrent/")),
)
SOCKET = "socket system calls (and waiting for the server)"
OTHER = "other"
_SOCKET_CALLS = ("socket.", "poll", "select", "epoll")


def _group(path: str, function: str, parent: str) -> str:
    if path.startswith("<built-in>"):
        # A C function: a socket call is I/O; anything else is its caller's work.
        return SOCKET if function.startswith(_SOCKET_CALLS) else parent
    for name, markers in GROUPS:
        if any(marker in path for marker in markers):
            return name
    return OTHER


def _breakdown(session: Any, requests: int) -> dict[str, Any]:
    """Self time by group, and our own functions, from a pyinstrument session."""
    groups: Counter[str] = Counter()
    ours: Counter[str] = Counter()

    def walk(frame: Any, parent: str) -> None:
        for child in frame.children:
            if child.is_synthetic:  # [self], [await]: their time is in total_self_time
                continue
            group = _group(child.file_path or "", child.function or "", parent)
            groups[group] += child.total_self_time
            if group == GROUPS[0][0]:
                ours[f"{child.file_path_short}:{child.function}"] += child.total_self_time
            walk(child, group)

    root = session.root_frame()
    walk(root, OTHER)
    total = sum(groups.values()) or 1.0
    return {
        "requests": requests,
        "total": total,
        "groups": {name: groups[name] / total for name in [g for g, _ in GROUPS] + [SOCKET, OTHER]},
        # Shares, not microseconds: sampling slows the program it samples several times over.
        "ours": [(name, seconds / total) for name, seconds in ours.most_common(5) if seconds > 0],
    }


def _profile(plan: Plan, url: str) -> dict[str, dict[str, Any]]:
    from pyinstrument import Profiler

    texts = _fresh_texts(plan.profiled, "profile")
    profiles = {}
    with PhosphoClient(api_key=API_KEY, base_url=url) as client:
        client.embed_many(next(texts)[:16])  # warm-up
        profiler = Profiler(interval=0.0005)
        batch = next(texts)
        profiler.start()
        for text in batch:
            client.embed(text)
        profiler.stop()
        profiles["`PhosphoClient.embed`, one text after the other"] = _breakdown(
            profiler.last_session, len(batch)
        )

    async def run_async() -> None:
        async with AsyncPhosphoClient(api_key=API_KEY, base_url=url) as client:
            await client.embed_many(next(texts)[:16])
            profiler = Profiler(interval=0.0005, async_mode="disabled")
            batch = next(texts)
            profiler.start()
            await client.embed_many(batch)
            profiler.stop()
            profiles["`AsyncPhosphoClient.embed_many`"] = _breakdown(
                profiler.last_session, len(batch)
            )

    asyncio.run(run_async())
    return profiles


# -- in-process: one response, no network -------------------------------------------------


def _dense_body(dimensions: int = 1536) -> bytes:
    """A response shaped like the API's, with a dense vector as a real model returns."""
    rng = random.Random(0)  # noqa: S311 - a fixed, reproducible vector, not a secret
    vector = [rng.gauss(0.0, 1.0 / dimensions**0.5) for _ in range(dimensions)]
    body = {
        "object": "list",
        "data": [{"object": "embedding", "embedding": vector, "index": 0}],
        "model": "intent-embed",
        "usage": {"prompt_tokens": 9, "total_tokens": 9},
    }
    return json.dumps(body).encode()


def _emulator_body(url: str) -> bytes:
    response = httpx.post(
        f"{url}/embeddings",
        json={"input": "where is my parcel?", "model": "intent-embed"},
        headers=HEADERS,
    )
    response.raise_for_status()
    return response.content


def _best_cpu(
    calls: dict[str, Callable[[], object]], repeats: int, number: int = 20
) -> dict[str, float]:
    """Best of ``repeats`` of each call's thread CPU time (preemption does not count).

    The calls take turns within every repeat, so that a slower stretch of a noisy machine
    weighs on all of them alike: their difference is what matters here.
    """
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.thread_time()
            for _ in range(number):
                call()
            best[name] = min(best[name], (time.thread_time() - started) / number)
    return best


def _per_response(plan: Plan, url: str) -> dict[str, dict[str, float]]:
    bodies = {EMULATOR_BODY: _emulator_body(url), DENSE_BODY: _dense_body()}
    results = {}
    for name, body in bodies.items():
        best = _best_cpu(
            {
                "json": partial(json.loads, body),
                "ours": partial(wire.parse_embedding_body, body),
            },
            plan.repeats,
        )
        results[name] = {"bytes": len(body), **best}
    return results


def run(quick: bool = False) -> dict[str, Any]:
    """Measure CPU per request, profile our clients, and time the response parsing."""
    plan = QUICK if quick else FULL
    with emulator_process(latency=0) as url:
        variants = _measure(plan, url)
        profiles = _profile(plan, url)
        per_response = _per_response(plan, url)
    return {
        "plan": asdict(plan),
        "variants": variants,
        "profiles": profiles,
        "per_response": per_response,
    }


# -- the page -----------------------------------------------------------------------------


def goals(result: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The issue's goal for this scenario: (goal, what was measured, met)."""
    variants = result["variants"]
    ratio = variants[OURS_DEFAULT]["cpu"] / variants[FLOOR]["cpu"]
    return [
        (
            "Overhead: at most 1.3x the CPU per request of the bare httpx loop",
            f"`PhosphoClient.embed_many`: {times(ratio)}",
            ratio <= 1.3,
        )
    ]


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f}"


def _async_note(variants: dict[str, dict[str, float]]) -> str:
    """Ours async against both floors, said from this run's numbers."""
    ours = variants[OURS_ASYNC]["cpu"]
    bare, floor = variants[BARE_ASYNC]["cpu"], variants[FLOOR]["cpu"]
    text = (
        f"The async client costs {times(ours / floor)} the sync floor and "
        f"{times(ours / bare)} a bare `httpx.AsyncClient` with the same 16 in flight, which "
        f"itself costs {times(bare / floor)} the sync floor."
    )
    if bare / floor > 1.3 and ours / bare <= 1.2:
        text += (
            " The difference is httpx's asyncio stack (`httpcore`'s async pool, `anyio`), "
            "not our code."
        )
    return text


def _bodies_note(per_response: dict[str, dict[str, float]]) -> str:
    emulator, dense = per_response[EMULATOR_BODY], per_response[DENSE_BODY]
    if emulator["bytes"] >= dense["bytes"] / 2:
        return ""
    return (
        f" **The emulator's answers are {emulator['bytes'] / dense['bytes']:.0%} the size of "
        "a dense vector's** (its vectors are mostly zeros), so every client decodes them "
        f"{times(dense['json'] / emulator['json'])} faster than it would a real model's: the "
        "CPU figures above understate what a real answer costs, ours and the floor's alike."
    )


def markdown(result: dict[str, Any]) -> str:
    """The section of docs/benchmarks.md."""
    plan, variants = result["plan"], result["variants"]
    floor = variants[FLOOR]["cpu"]
    rows = [
        [name, _us(v["cpu"]), times(v["cpu"] / floor), f"{v['rate']:.0f}"]
        for name, v in variants.items()
    ]
    profile_names = list(result["profiles"])
    group_names = list(next(iter(result["profiles"].values()))["groups"])
    profile_rows = [
        [group, *(percent(result["profiles"][p]["groups"][group]) for p in profile_names)]
        for group in group_names
    ]
    ours_rows = [
        [profile, f"`{function}`", percent(share)]
        for profile in profile_names
        for function, share in result["profiles"][profile]["ours"]
    ]
    response_rows = [
        [name, r["bytes"], _us(r["json"]), _us(r["ours"]), _us(r["ours"] - r["json"])]
        for name, r in result["per_response"].items()
    ]
    return "\n\n".join(
        [
            f"## {TITLE}",
            "The emulator answers at once, from its own process. CPU time of the client "
            "process (every thread, user + system) per request, the median of "
            f"{plan['rounds']} rounds of {plan['texts']} fresh texts per variant, the variants "
            "taking turns. *Requests/s* is only indicative: with no latency the two processes "
            "share the machine's cores.",
            table(["variant", "CPU µs per request", "vs the bare loop", "requests/s"], rows),
            table(["goal", "measured", ""], [[g, m, verdict(ok)] for g, m, ok in goals(result)]),
            _async_note(variants),
            f"Where the time goes (pyinstrument, {plan['profiled']} requests each; self time "
            "by owner of the code, as a share of the samples; a C function counts for its "
            "caller, except socket calls, which also hold the time spent waiting for the "
            "emulator):",
            table(["owner", *profile_names], profile_rows),
            "Our own functions with the most self time (a built-in counts for the function of "
            "ours that called it; in the async profile a coroutine's self time includes "
            "resuming the coroutines it awaits):",
            table(["profile", "function", "share of the samples"], ours_rows or [["", "none", ""]]),
            "One response parsed in-process (no network; thread CPU time, best of "
            f"{plan['repeats']}): `json.loads` alone against `wire.parse_embedding_body` "
            "(`json.loads` plus our checks of the body's shape and of every number), on the "
            "emulator's answer and on a dense vector of the same length."
            + _bodies_note(result["per_response"]),
            table(
                ["body", "bytes", "`json.loads` µs", "`parse_embedding_body` µs", "ours on top µs"],
                response_rows,
            ),
        ]
    )
