"""Throttling: the API caps the requests in flight and answers 429 beyond the cap.

The emulator serves at most K requests at once and answers any more with 429 and a
``Retry-After``; the clients ask for 4K. What a client loses when it asks for more than the
server gives, in throughput (against K / latency, the best any client can do under the cap)
and in requests spent on 429s.

A client sized to the cap (``max_concurrency=K``) is the reference. Ours adapt their bound
to the 429s they meet (``concurrency_limit`` is the bound each ended with); the same clients
with ``adaptive_concurrency=False`` show what a fixed bound costs, and LlamaIndex's
``OpenAIEmbedding`` async batch, which sends every text at once, what no bound at all costs.

The target for adaptive concurrency: at least 0.7 of K / latency, with at most 10% of the
requests throttled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks._harness import (
    API_KEY,
    emulator_process,
    emulator_stats,
    openai_llama,
    reset_emulator,
    sample_texts,
)
from benchmarks._page import Goal, Section, lines, percent, render
from phospho_embed import AsyncPhosphoClient, BatchEmbeddingError, PhosphoClient

#: Adaptive concurrency's target: this share of K / latency or more, ...
TARGET_THROUGHPUT = 0.7
#: ... with at most this share of the requests refused with 429.
TARGET_THROTTLED = 0.10


@dataclass(frozen=True)
class Plan:
    """How big a run is."""

    cap: int  # K: requests the emulator serves at once
    latency: float
    jitter: float
    retry_after: float  # seconds, sent with every 429
    texts: int
    timeout: float  # seconds: a client still busy after this is stopped and reported


# 400 texts: a batch long enough for the steady state to show (the 4K start-up burst is
# refused once per client, 12 requests), and short enough to run in about 25 s per client.
FULL = Plan(cap=4, latency=0.2, jitter=0.05, retry_after=1.0, texts=400, timeout=60.0)
QUICK = Plan(cap=2, latency=0.05, jitter=0.0125, retry_after=0.1, texts=8, timeout=20.0)


@dataclass(frozen=True)
class ClientState:
    """What our client reports at the end: the alternative reports neither."""

    retries: int | None
    concurrency_limit: int | None


#: Embeds the texts; returns (texts that got no vector, the client's state at the end).
Attempt = Callable[[str, list[str], Plan], tuple[int, ClientState]]


def _state(client: PhosphoClient | AsyncPhosphoClient) -> ClientState:
    return ClientState(client.usage.retries, client.concurrency_limit)


def _ours_sync(concurrency: int, **settings: Any) -> Attempt:
    def attempt(url: str, texts: list[str], plan: Plan) -> tuple[int, ClientState]:
        with PhosphoClient(
            api_key=API_KEY, base_url=url, max_concurrency=concurrency, **settings
        ) as client:
            try:
                client.embed_many(texts)
                failed = 0
            except BatchEmbeddingError as error:
                failed = len(error.errors)
            return failed, _state(client)

    return attempt


def _ours_async(concurrency: int, **settings: Any) -> Attempt:
    def attempt(url: str, texts: list[str], plan: Plan) -> tuple[int, ClientState]:
        async def main() -> tuple[int, ClientState]:
            async with AsyncPhosphoClient(
                api_key=API_KEY, base_url=url, max_concurrency=concurrency, **settings
            ) as client:
                try:
                    await client.embed_many(texts)
                    failed = 0
                except BatchEmbeddingError as error:
                    failed = len(error.errors)
                return failed, _state(client)

        return asyncio.run(main())

    return attempt


def _llama_all_at_once(url: str, texts: list[str], plan: Plan) -> tuple[int, ClientState]:
    import openai

    async def main() -> tuple[int, ClientState]:
        async with openai.DefaultAsyncHttpxClient() as http:
            model = openai_llama(url, None, http)
            # Its retry decorator logs a warning per retry: hundreds here, counted by the
            # emulator already.
            logger = logging.getLogger("llama_index.embeddings.openai")
            level = logger.level
            logger.setLevel(logging.ERROR)
            try:
                # Bounded: its retries (the SDK's, then tenacity's) could go on for minutes.
                await asyncio.wait_for(model.aget_text_embedding_batch(texts), plan.timeout)
                failed = 0
            except (TimeoutError, asyncio.TimeoutError, openai.APIError):
                failed = len(texts)  # the batch returns all its vectors or none
            finally:
                logger.setLevel(level)
            return failed, ClientState(None, None)

    return asyncio.run(main())


#: Adaptive concurrency's targets apply to these clients: ours, adapting, asking for 4K.
JUDGED = ("phospho-sync", "phospho-async")


def _attempts(plan: Plan) -> list[tuple[str, str, int | None, Attempt]]:
    """(id, label, requests in flight asked for, how to run it)."""
    k, asked = plan.cap, 4 * plan.cap
    sync, aio = "**ours**: `PhosphoClient.embed_many`", "**ours**: `AsyncPhosphoClient.embed_many`"
    fixed = "`adaptive_concurrency=False`"
    return [
        (
            "phospho-sync-cap",
            f"{sync}, `max_concurrency={k}` (the cap: reference)",
            k,
            _ours_sync(k),
        ),
        ("phospho-sync", f"{sync}, `max_concurrency={asked}`", asked, _ours_sync(asked)),
        ("phospho-async", f"{aio}, `max_concurrency={asked}`", asked, _ours_async(asked)),
        (
            "phospho-sync-fixed",
            f"{sync}, `max_concurrency={asked}`, {fixed}",
            asked,
            _ours_sync(asked, adaptive_concurrency=False),
        ),
        (
            "phospho-async-fixed",
            f"{aio}, `max_concurrency={asked}`, {fixed}",
            asked,
            _ours_async(asked, adaptive_concurrency=False),
        ),
        (
            "llama-openai-async-unbounded",
            "LlamaIndex `OpenAIEmbedding.aget_text_embedding_batch`, `embed_batch_size=1` "
            "(all at once)",
            None,
            _llama_all_at_once,
        ),
    ]


@dataclass(frozen=True)
class Row:
    """One client against the capped emulator."""

    id: str
    label: str
    asked: int | None  # requests in flight asked for; None: all at once
    seconds: float
    embedded: int
    failed: int
    requests: int  # counted by the emulator
    throttled: int  # of which answered 429
    state: ClientState

    @property
    def rate(self) -> float:
        """Texts embedded per second."""
        return self.embedded / self.seconds

    @property
    def throttled_share(self) -> float:
        return self.throttled / self.requests


def run(plan: Plan) -> Throttling:
    """Run each client against the capped emulator, one after the other."""
    rows = []
    with emulator_process(
        latency=plan.latency,
        jitter=plan.jitter,
        max_in_flight=plan.cap,
        retry_after=plan.retry_after,
    ) as url:
        for index, (id, label, asked, attempt) in enumerate(_attempts(plan)):
            texts = sample_texts(plan.texts, tag=f"throttling {index}")
            reset_emulator(url)
            started = time.perf_counter()
            failed, state = attempt(url, texts, plan)
            seconds = time.perf_counter() - started
            stats = emulator_stats(url)
            by_status = {int(code): count for code, count in stats["by_status"].items()}
            rows.append(
                Row(
                    id=id,
                    label=label,
                    asked=asked,
                    seconds=seconds,
                    embedded=plan.texts - failed,
                    failed=failed,
                    requests=stats["requests"],
                    throttled=by_status.get(429, 0),
                    state=state,
                )
            )
    return Throttling(plan, rows)


def _optional(value: int | None) -> str:
    return "n/a" if value is None else str(value)


@dataclass(frozen=True)
class Throttling(Section):
    """One row per client, in the order run."""

    plan: Plan
    rows: list[Row]

    @property
    def best_rate(self) -> float:
        """K / latency: the most any client can embed per second under the cap."""
        return self.plan.cap / self.plan.latency

    def markdown(self) -> str:
        table_lines = [
            [
                row.label,
                "all" if row.asked is None else row.asked,
                f"{row.seconds:.1f}",
                f"{row.rate:.1f}",
                percent(row.rate / self.best_rate),
                row.requests,
                percent(row.throttled_share) if row.requests else "n/a",
                _optional(row.state.retries),
                row.failed,
                _optional(row.state.concurrency_limit),
            ]
            for row in self.rows
        ]
        return render(
            "throttling",
            "section",
            plan=self.plan,
            asked=4 * self.plan.cap,
            best_rate=self.best_rate,
            rows=lines(table_lines),
        )

    def goals(self) -> list[Goal]:
        judged = [row for row in self.rows if row.id in JUDGED]
        rate = min(row.rate for row in judged) / self.best_rate
        throttled = max(row.throttled_share for row in judged)
        return [
            Goal.from_template(
                "throttling",
                "throughput",
                rate >= TARGET_THROUGHPUT,
                target=TARGET_THROUGHPUT,
                rate=rate,
            ),
            Goal.from_template(
                "throttling",
                "throttled",
                throttled <= TARGET_THROTTLED,
                target=TARGET_THROTTLED,
                throttled=throttled,
            ),
        ]
