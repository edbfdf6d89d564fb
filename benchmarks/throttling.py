"""Throttling: the API caps the requests in flight and answers 429 beyond the cap.

The emulator serves at most K requests at once and answers any more with 429 and a
``Retry-After``; the client asks for 4K. This is the baseline for adaptive concurrency: what
a client loses when it asks for more than the server gives, in throughput (against K /
latency, the best any client can do under the cap) and in requests spent on 429s.

A client sized to the cap (``max_concurrency=K``) is the reference. When the core has
adaptive concurrency (an ``adaptive_concurrency`` argument and a ``concurrency_limit``
attribute), the fixed bound is measured too and the limit the client ended with is shown;
the scenario only looks for them (``getattr``, ``inspect``), so it runs on either core.
LlamaIndex's ``OpenAIEmbedding`` async batch, which sends every text at once, shows what no
bound at all costs.

The target for adaptive concurrency: at least 0.7 of K / latency, with at most 10% of the
requests throttled.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks._harness import (
    API_KEY,
    emulator_process,
    emulator_stats,
    openai_llama,
    percent,
    reset_emulator,
    sample_texts,
    table,
)
from phospho_embed import AsyncPhosphoClient, BatchEmbeddingError, PhosphoClient

TITLE = "Throttling: a cap on requests in flight"
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

#: Embeds the texts; returns (texts that got no vector, the client's state worth reporting).
Attempt = Callable[[str, list[str], Plan], tuple[int, dict[str, Any]]]


def _adaptive_supported() -> bool:
    return "adaptive_concurrency" in inspect.signature(PhosphoClient).parameters


def _client_state(client: Any) -> dict[str, Any]:
    usage = getattr(client, "usage", None)
    return {
        "retries": getattr(usage, "retries", None),
        # Only on a core with adaptive concurrency; absent, the column says so.
        "concurrency_limit": getattr(client, "concurrency_limit", None),
    }


def _ours_sync(concurrency: int, **settings: Any) -> Attempt:
    def attempt(url: str, texts: list[str], plan: Plan) -> tuple[int, dict[str, Any]]:
        with PhosphoClient(
            api_key=API_KEY, base_url=url, max_concurrency=concurrency, **settings
        ) as client:
            try:
                client.embed_many(texts)
                failed = 0
            except BatchEmbeddingError as error:
                failed = len(error.errors)
            return failed, _client_state(client)

    return attempt


def _ours_async(concurrency: int, **settings: Any) -> Attempt:
    def attempt(url: str, texts: list[str], plan: Plan) -> tuple[int, dict[str, Any]]:
        async def main() -> tuple[int, dict[str, Any]]:
            async with AsyncPhosphoClient(
                api_key=API_KEY, base_url=url, max_concurrency=concurrency, **settings
            ) as client:
                try:
                    await client.embed_many(texts)
                    failed = 0
                except BatchEmbeddingError as error:
                    failed = len(error.errors)
                return failed, _client_state(client)

        return asyncio.run(main())

    return attempt


def _llama_all_at_once(url: str, texts: list[str], plan: Plan) -> tuple[int, dict[str, Any]]:
    import openai

    async def main() -> tuple[int, dict[str, Any]]:
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
            return failed, {"retries": None, "concurrency_limit": None}

    return asyncio.run(main())


def _attempts(plan: Plan) -> list[tuple[str, int | None, Attempt]]:
    """(name, requests in flight asked for, how to run it)."""
    k, asked = plan.cap, 4 * plan.cap
    rows: list[tuple[str, int | None, Attempt]] = [
        (
            f"**ours**: `PhosphoClient.embed_many`, `max_concurrency={k}` (the cap: reference)",
            k,
            _ours_sync(k),
        ),
        (
            f"**ours**: `PhosphoClient.embed_many`, `max_concurrency={asked}`",
            asked,
            _ours_sync(asked),
        ),
        (
            f"**ours**: `AsyncPhosphoClient.embed_many`, `max_concurrency={asked}`",
            asked,
            _ours_async(asked),
        ),
    ]
    if _adaptive_supported():
        fixed = "`adaptive_concurrency=False`"
        rows += [
            (
                f"**ours**: `PhosphoClient.embed_many`, `max_concurrency={asked}`, {fixed}",
                asked,
                _ours_sync(asked, adaptive_concurrency=False),
            ),
            (
                f"**ours**: `AsyncPhosphoClient.embed_many`, `max_concurrency={asked}`, {fixed}",
                asked,
                _ours_async(asked, adaptive_concurrency=False),
            ),
        ]
    rows.append(
        (
            "LlamaIndex `OpenAIEmbedding.aget_text_embedding_batch`, `embed_batch_size=1` "
            "(all at once)",
            None,
            _llama_all_at_once,
        )
    )
    return rows


def run(quick: bool = False) -> dict[str, Any]:
    """Run each client against the capped emulator, one after the other."""
    plan = QUICK if quick else FULL
    adaptive = _adaptive_supported()
    rows = []
    with emulator_process(
        latency=plan.latency,
        jitter=plan.jitter,
        max_in_flight=plan.cap,
        retry_after=plan.retry_after,
    ) as url:
        for index, (name, asked, attempt) in enumerate(_attempts(plan)):
            texts = sample_texts(plan.texts, tag=f"throttling {index}")
            reset_emulator(url)
            started = time.perf_counter()
            failed, state = attempt(url, texts, plan)
            seconds = time.perf_counter() - started
            stats = emulator_stats(url)
            by_status = {int(code): count for code, count in stats["by_status"].items()}
            rows.append(
                {
                    "name": name,
                    "asked": asked,
                    "seconds": seconds,
                    "embedded": plan.texts - failed,
                    "failed": failed,
                    "requests": stats["requests"],
                    "throttled": by_status.get(429, 0),
                    # Adaptive concurrency's target applies to these rows.
                    "judged": adaptive and asked == 4 * plan.cap and "False" not in name,
                    **state,
                }
            )
    return {"plan": asdict(plan), "rows": rows, "adaptive": adaptive}


def markdown(result: dict[str, Any]) -> str:
    """The section of docs/benchmarks.md."""
    plan, rows = result["plan"], result["rows"]
    limit = plan["cap"] / plan["latency"]

    def optional(value: Any) -> str:
        return "n/a" if value is None else str(value)

    table_rows = [
        [
            row["name"],
            "all" if row["asked"] is None else row["asked"],
            f"{row['seconds']:.1f}",
            f"{row['embedded'] / row['seconds']:.1f}",
            percent(row["embedded"] / row["seconds"] / limit),
            row["requests"],
            percent(row["throttled"] / row["requests"]) if row["requests"] else "n/a",
            optional(row["retries"]),
            row["failed"],
            optional(row["concurrency_limit"]),
        ]
        for row in rows
    ]
    adaptive = (
        "This core adapts: `concurrency_limit` is the bound each client ended with."
        if result["adaptive"]
        else "This core has no adaptive concurrency yet (no `concurrency_limit`): these "
        "rows are the baseline it will be measured against."
    )
    return "\n\n".join(
        [
            f"## {TITLE}",
            f"The emulator serves at most K = {plan['cap']} requests at once, each after "
            f"{plan['latency']:g} s ± {plan['jitter']:g} s, and answers any more with 429 and "
            f"`Retry-After: {plan['retry_after']:g}`; the clients ask for up to "
            f"{4 * plan['cap']} (4K). {plan['texts']} fresh texts per client. The best any "
            f"client can do under the cap is K / latency = {limit:.0f} texts/s. *Requests* "
            "and *throttled* are counted by the emulator; *retries* by our client; a client "
            f"still busy after {plan['timeout']:g} s is stopped. {adaptive}",
            table(
                [
                    "client",
                    "in flight asked",
                    "seconds",
                    "texts/s",
                    "of K / latency",
                    "requests",
                    "throttled (429)",
                    "retries",
                    "texts failed",
                    "concurrency_limit at the end",
                ],
                table_rows,
            ),
        ]
    )


def goals(result: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Adaptive concurrency's goals (issue 7): (goal, what was measured, met)."""
    if not result["adaptive"]:
        return []
    limit = result["plan"]["cap"] / result["plan"]["latency"]
    judged = [row for row in result["rows"] if row["judged"]]
    worst_rate = min(judged, key=lambda row: row["embedded"] / row["seconds"])
    worst_throttled = max(judged, key=lambda row: row["throttled"] / row["requests"])
    rate = worst_rate["embedded"] / worst_rate["seconds"] / limit
    throttled = worst_throttled["throttled"] / worst_throttled["requests"]
    return [
        (
            f"Throttling: adaptive clients asking for 4K reach >= "
            f"{percent(TARGET_THROUGHPUT)} of K / latency",
            f"lowest: {percent(rate)}",
            rate >= TARGET_THROUGHPUT,
        ),
        (
            f"Throttling: at most {percent(TARGET_THROTTLED)} of their requests throttled",
            f"highest: {percent(throttled)}",
            throttled <= TARGET_THROTTLED,
        ),
    ]
