"""Client overhead: CPU time per request in the client process, ours against bare httpx.

The emulator answers at once (no latency) from its own process, so its CPU never counts.
The client's cost is the CPU time of this process (``time.process_time``: every thread, user
and system) per request. The floor for an httpx client is a bare loop of
``httpx.Client.post`` + ``orjson.loads`` (the parser our clients use, so that the floor
is not slower than ours by its parser); bare httpx with 16 threads and ``httpx.AsyncClient``
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
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import orjson

from benchmarks._harness import API_KEY, emulator_process, sample_texts
from benchmarks._page import Goal, Section, goal_lines, lines, percent, render, table, times
from phospho_embed import AsyncPhosphoClient, PhosphoClient, wire
from phospho_embed.emulator import emulator_vector

HEADERS = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}

#: The ways to send texts, measured side by side: id -> label.
VARIANTS = {
    "httpx-sync": "bare `httpx.Client.post` + `orjson.loads`, one at a time",
    "httpx-threads": "bare `httpx.Client.post` + `orjson.loads`, 16 threads",
    "httpx-async": "bare `httpx.AsyncClient.post` + `orjson.loads`, 16 in flight",
    "phospho-sync-c1": "**ours**: `PhosphoClient.embed_many`, `max_concurrency=1`",
    "phospho-sync": "**ours**: `PhosphoClient.embed_many` (default: 16 threads)",
    "phospho-async": "**ours**: `AsyncPhosphoClient.embed_many` (default: 16 in flight)",
}
#: The bodies parsed in-process: id -> label.
BODIES = {"emulator": "the emulator's", "dense": "dense, random (as a real model's)"}


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
    vector: list[float] = orjson.loads(response.content)["data"][0]["embedding"]
    return vector


def _variants(url: str, stack: ExitStack, loop: asyncio.AbstractEventLoop) -> dict[str, Variant]:
    """Every way to send the texts, by id, built once (connections open at their first call)."""
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
        "httpx-sync": lambda texts: [bare_one(text) for text in texts],
        "httpx-threads": lambda texts: list(pool.map(bare_one, texts)),
        "httpx-async": lambda texts: loop.run_until_complete(bare_async(texts)),
        "phospho-sync-c1": one_at_a_time.embed_many,
        "phospho-sync": default.embed_many,
        "phospho-async": lambda texts: loop.run_until_complete(aclient.embed_many(texts)),
    }


@dataclass(frozen=True)
class VariantRow:
    """One way to send texts: its CPU per request, the medians of the rounds."""

    id: str
    label: str
    cpu: float  # seconds of CPU per request
    rate: float  # requests per second: indicative only (no latency, shared cores)


def _measure(plan: Plan, url: str) -> list[VariantRow]:
    texts = _fresh_texts(plan.texts, "overhead")
    loop = asyncio.new_event_loop()
    try:
        with ExitStack() as stack:
            variants = _variants(url, stack, loop)
            for variant in variants.values():
                variant(next(texts))  # warm-up: connections, threads, lazy imports
            cpu: dict[str, list[float]] = {id: [] for id in variants}
            rates: dict[str, list[float]] = {id: [] for id in variants}
            for _ in range(plan.rounds):
                for id, variant in variants.items():
                    batch = next(texts)
                    started, wall = time.process_time(), time.perf_counter()
                    vectors = variant(batch)
                    cpu[id].append((time.process_time() - started) / len(batch))
                    rates[id].append(len(batch) / (time.perf_counter() - wall))
                    if vectors[-1] != emulator_vector(batch[-1]):  # type: ignore[index]
                        raise RuntimeError(f"{id} returned the wrong vector")
    finally:
        # As asyncio.run does: async generators (a client's pool closer) finish in the loop.
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    return [
        VariantRow(id, VARIANTS[id], statistics.median(cpu[id]), statistics.median(rates[id]))
        for id in cpu
    ]


# -- the profile --------------------------------------------------------------------------

#: Who owns the code a sample is in: id -> (label, markers in the code's path).
GROUPS = {
    "ours": ("ours (`phospho_embed`)", ("/phospho_embed/",)),
    "json": ("JSON (`json`)", ("/json/",)),
    "http": ("HTTP client (`httpx`, `httpcore`, `h11`)", ("/httpx/", "/httpcore/", "/h11/")),
    "event-loop": (
        "event loop (`asyncio`, `anyio`, `sniffio`)",
        ("/asyncio/", "/anyio/", "/sniffio/"),
    ),
    "threads": ("threads (`threading`, `concurrent`)", ("threading.py", "/concurrent/")),
    "socket": ("socket system calls (and waiting for the server)", ()),
    "other": ("other", ()),
}
_SOCKET_CALLS = ("socket.", "poll", "select", "epoll")


def _group(path: str, function: str, parent: str) -> str:
    if path.startswith("<built-in>"):
        # A C function: a socket call is I/O; anything else is its caller's work.
        return "socket" if function.startswith(_SOCKET_CALLS) else parent
    for id, (_, markers) in GROUPS.items():
        if any(marker in path for marker in markers):
            return id
    return "other"


@dataclass(frozen=True)
class Profile:
    """Where one client's time goes, as shares of the profiler's samples."""

    id: str
    label: str
    shares: dict[str, float]  # group id -> share of the self time
    # Our functions with the most self time: (file:function, share). Shares, not
    # microseconds: sampling slows the program it samples several times over.
    ours: list[tuple[str, float]]


def _breakdown(id: str, label: str, session: Any) -> Profile:
    """Self time by group, and our own functions, from a pyinstrument session."""
    groups: Counter[str] = Counter()
    ours: Counter[str] = Counter()

    def walk(frame: Any, parent: str) -> None:
        for child in frame.children:
            if child.is_synthetic:  # [self], [await]: their time is in total_self_time
                continue
            group = _group(child.file_path or "", child.function or "", parent)
            groups[group] += child.total_self_time
            if group == "ours":
                ours[f"{child.file_path_short}:{child.function}"] += child.total_self_time
            walk(child, group)

    walk(session.root_frame(), "other")
    total = sum(groups.values()) or 1.0
    return Profile(
        id,
        label,
        {group: groups[group] / total for group in GROUPS},
        [(name, seconds / total) for name, seconds in ours.most_common(5) if seconds > 0],
    )


def _profile(plan: Plan, url: str) -> list[Profile]:
    from pyinstrument import Profiler

    texts = _fresh_texts(plan.profiled, "profile")
    profiles = []
    with PhosphoClient(api_key=API_KEY, base_url=url) as client:
        client.embed_many(next(texts)[:16])  # warm-up
        profiler = Profiler(interval=0.0005)
        batch = next(texts)
        profiler.start()
        for text in batch:
            client.embed(text)
        profiler.stop()
        profiles.append(
            _breakdown(
                "sync-embed",
                "`PhosphoClient.embed`, one text after the other",
                profiler.last_session,
            )
        )

    async def run_async() -> None:
        async with AsyncPhosphoClient(api_key=API_KEY, base_url=url) as client:
            await client.embed_many(next(texts)[:16])
            profiler = Profiler(interval=0.0005, async_mode="disabled")
            batch = next(texts)
            profiler.start()
            await client.embed_many(batch)
            profiler.stop()
            profiles.append(
                _breakdown(
                    "async-embed-many", "`AsyncPhosphoClient.embed_many`", profiler.last_session
                )
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


@dataclass(frozen=True)
class ParseRow:
    """One response body parsed in-process: ``orjson.loads`` alone, then ours."""

    id: str
    label: str
    bytes: int
    json: float  # seconds of thread CPU: orjson.loads alone
    ours: float  # seconds of thread CPU: orjson.loads and our checks


def _per_response(plan: Plan, url: str) -> list[ParseRow]:
    bodies = {"emulator": _emulator_body(url), "dense": _dense_body()}
    rows = []
    for id, body in bodies.items():
        best = _best_cpu(
            {
                "json": partial(orjson.loads, body),
                "ours": partial(wire.parse_embedding_body, body),
            },
            plan.repeats,
        )
        rows.append(ParseRow(id, BODIES[id], len(body), best["json"], best["ours"]))
    return rows


def run(plan: Plan) -> Overhead:
    """Measure CPU per request, profile our clients, and time the response parsing."""
    with emulator_process(latency=0) as url:
        return Overhead(plan, _measure(plan, url), _profile(plan, url), _per_response(plan, url))


# -- the page -----------------------------------------------------------------------------


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f}"


@dataclass(frozen=True)
class Overhead(Section):
    """CPU per request of every variant, where our time goes, and parsing one body."""

    plan: Plan
    variants: list[VariantRow]
    profiles: list[Profile]
    parses: list[ParseRow]

    def cpu(self, id: str) -> float:
        """A variant's CPU seconds per request."""
        return next(row.cpu for row in self.variants if row.id == id)

    def goals(self) -> list[Goal]:
        ratio = self.cpu("phospho-sync") / self.cpu("httpx-sync")
        return [Goal.from_template("overhead", "cpu", ratio <= 1.3, ratio=ratio)]

    def _async_note(self) -> str:
        """Ours async against both floors, said from this run's numbers."""
        ours, bare, floor = (self.cpu(id) for id in ("phospho-async", "httpx-async", "httpx-sync"))
        why = bare / floor > 1.3 and ours / bare <= 1.2
        return render(
            "overhead",
            "async-note",
            ours_vs_floor=ours / floor,
            ours_vs_bare=ours / bare,
            bare_vs_floor=bare / floor,
            why=render("overhead", "async-note.httpx") if why else "",
        )

    def _bodies_note(self) -> str:
        emulator, dense = (next(row for row in self.parses if row.id == id) for id in BODIES)
        if emulator.bytes >= dense.bytes / 2:
            return ""
        return render(
            "overhead",
            "bodies-note",
            size=emulator.bytes / dense.bytes,
            faster=dense.json / emulator.json,
        )

    def markdown(self) -> str:
        floor = self.cpu("httpx-sync")
        variant_lines = [
            [row.label, _us(row.cpu), times(row.cpu / floor), f"{row.rate:.0f}"]
            for row in self.variants
        ]
        profile_table = table(
            ["owner", *(profile.label for profile in self.profiles)],
            [
                [label, *(percent(profile.shares[group]) for profile in self.profiles)]
                for group, (label, _) in GROUPS.items()
            ],
        )
        ours_lines = [
            [profile.label, f"`{function}`", percent(share)]
            for profile in self.profiles
            for function, share in profile.ours
        ]
        parse_lines = [
            [row.label, row.bytes, _us(row.json), _us(row.ours), _us(row.ours - row.json)]
            for row in self.parses
        ]
        return render(
            "overhead",
            "section",
            plan=self.plan,
            variants=lines(variant_lines),
            goals=goal_lines(self.goals()),
            async_note=self._async_note(),
            profile_table=profile_table,
            ours=lines(ours_lines or [["", "none", ""]]),
            bodies_note=self._bodies_note(),
            parses=lines(parse_lines),
        )
