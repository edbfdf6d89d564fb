"""Latency-bound throughput: every entry point, ours and the alternatives, on one emulator.

The emulator (a separate process) answers each request after ``latency`` seconds, give or
take ``jitter``, as the real API does with an LLM behind every request. Every entry point
embeds the same distinct CLINC150 messages; the emulator has seen them all once before, so
it answers each of them equally fast from its cache. Each entry point is built, warmed up with
one call on other texts (connections open, lazy imports done), then timed on the measured
call alone; its vectors are checked against the emulator's, so a fast wrong answer cannot
score.

The limit for a client that keeps ``c`` requests in flight is ``N x latency / c`` seconds,
i.e. ``c / latency`` texts per second. The alternatives that send one request at a time are
timed on a subset of the texts: their rate does not depend on N.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks._harness import (
    API_KEY,
    MODEL,
    emulator_process,
    emulator_stats,
    openai_langchain,
    openai_llama,
    percent,
    reset_emulator,
    sample_texts,
    table,
    times,
    verdict,
)
from phospho_embed import AsyncPhosphoClient, PhosphoClient
from phospho_embed._async_client import CONNECTIONS_PER_POOL
from phospho_embed._settings import DEFAULT_MAX_CONCURRENCY
from phospho_embed.emulator import emulator_vector

TITLE = "Latency-bound throughput"
PLOT = "benchmarks-throughput.png"


@dataclass(frozen=True)
class Plan:
    """How big a run is."""

    latency: float
    jitter: float
    texts: int  # N: what the concurrent entry points embed
    sequential_texts: int  # what the one-at-a-time alternatives embed (rate independent of N)
    sweep: tuple[int, ...]  # concurrencies for the plot
    texts_per_slot: int  # sweep calls embed min(N, c * this) texts: the same rounds at any c


FULL = Plan(
    latency=0.2,
    jitter=0.05,
    texts=320,
    sequential_texts=12,
    sweep=(1, 4, 16, 64),
    texts_per_slot=12,
)
QUICK = Plan(
    latency=0.05, jitter=0.0125, texts=32, sequential_texts=4, sweep=(1, 16), texts_per_slot=4
)

#: What a measurement returns: the seconds of the timed call and the vectors it gave.
Timed = tuple[float, list[list[float]]]
#: Builds an embedder, warms it up on the first texts, times it on the second, closes it.
Measure = Callable[[str, list[str], list[str]], Timed]


@dataclass(frozen=True)
class Entry:
    """One way to embed a list of texts."""

    name: str
    group: str  # "ours", "alternative", or "floor" (bare httpx: what httpx itself does)
    concurrency: int | None  # requests it keeps in flight; None: all at once (unbounded)
    measure: Measure
    sequential: bool = False  # one request at a time: timed on a subset
    series: str | None = None  # the plot line it belongs to (concurrency sweeps)
    main: bool = True  # in the main table; else a point of its series only
    short: str = ""  # an alternative's column title in the ratio table
    texts: int | None = None  # how many texts to time, when not the usual number


def _clock(call: Callable[[], list[list[float]]]) -> Timed:
    started = time.perf_counter()
    vectors = call()
    return time.perf_counter() - started, vectors


async def _aclock(call: Callable[[], Any]) -> Timed:
    started = time.perf_counter()
    vectors = await call()
    return time.perf_counter() - started, vectors


def _limit_kwargs(concurrency: int | None) -> dict[str, Any]:
    # None: the entry point's default, i.e. the argument not passed at all.
    return {} if concurrency is None else {"max_concurrency": concurrency}


# -- ours ---------------------------------------------------------------------------------


def _phospho_client(concurrency: int | None) -> Measure:
    def measure(url: str, warmup: list[str], texts: list[str]) -> Timed:
        with PhosphoClient(api_key=API_KEY, base_url=url, **_limit_kwargs(concurrency)) as client:
            client.embed_many(warmup)
            return _clock(lambda: client.embed_many(texts))

    return measure


def _async_phospho_client(concurrency: int | None) -> Measure:
    def measure(url: str, warmup: list[str], texts: list[str]) -> Timed:
        async def main() -> Timed:
            kwargs = _limit_kwargs(concurrency)
            async with AsyncPhosphoClient(api_key=API_KEY, base_url=url, **kwargs) as client:
                await client.embed_many(warmup)
                return await _aclock(lambda: client.embed_many(texts))

        return asyncio.run(main())

    return measure


def _langchain_ours(url: str, warmup: list[str], texts: list[str]) -> Timed:
    from pydantic import SecretStr

    from langchain_phospho import PhosphoEmbeddings

    embeddings = PhosphoEmbeddings(api_key=SecretStr(API_KEY), base_url=url)
    try:
        embeddings.embed_documents(warmup)
        return _clock(lambda: embeddings.embed_documents(texts))
    finally:
        embeddings.close()


def _langchain_ours_async(url: str, warmup: list[str], texts: list[str]) -> Timed:
    from pydantic import SecretStr

    from langchain_phospho import PhosphoEmbeddings

    async def main() -> Timed:
        embeddings = PhosphoEmbeddings(api_key=SecretStr(API_KEY), base_url=url)
        try:
            await embeddings.aembed_documents(warmup)
            return await _aclock(lambda: embeddings.aembed_documents(texts))
        finally:
            await embeddings.aclose()

    return asyncio.run(main())


def _llama_ours(url: str, warmup: list[str], texts: list[str]) -> Timed:
    from llama_index_phospho import PhosphoEmbedding

    model = PhosphoEmbedding(api_key=API_KEY, base_url=url)
    try:
        model.get_text_embedding_batch(warmup)
        return _clock(lambda: model.get_text_embedding_batch(texts))
    finally:
        model.close()


def _llama_ours_async(url: str, warmup: list[str], texts: list[str]) -> Timed:
    from llama_index_phospho import PhosphoEmbedding

    async def main() -> Timed:
        model = PhosphoEmbedding(api_key=API_KEY, base_url=url)
        try:
            await model.aget_text_embedding_batch(warmup)
            return await _aclock(lambda: model.aget_text_embedding_batch(texts))
        finally:
            await model.aclose()

    return asyncio.run(main())


# -- the alternatives ---------------------------------------------------------------------


def _openai_langchain_sync(url: str, warmup: list[str], texts: list[str]) -> Timed:
    import openai

    with openai.DefaultHttpxClient() as http:
        embeddings = openai_langchain(url, http, None)
        embeddings.embed_documents(warmup)
        return _clock(lambda: embeddings.embed_documents(texts))


def _openai_langchain_async(url: str, warmup: list[str], texts: list[str]) -> Timed:
    import openai

    async def main() -> Timed:
        async with openai.DefaultAsyncHttpxClient() as http:
            embeddings = openai_langchain(url, None, http)
            await embeddings.aembed_documents(warmup)
            return await _aclock(lambda: embeddings.aembed_documents(texts))

    return asyncio.run(main())


def _openai_llama_sync(url: str, warmup: list[str], texts: list[str]) -> Timed:
    import openai

    with openai.DefaultHttpxClient() as http:
        model = openai_llama(url, http, None)
        model.get_text_embedding_batch(warmup)
        return _clock(lambda: model.get_text_embedding_batch(texts))


def _openai_llama_async(num_workers: int | None) -> Measure:
    def measure(url: str, warmup: list[str], texts: list[str]) -> Timed:
        import openai

        async def main() -> Timed:
            async with openai.DefaultAsyncHttpxClient() as http:
                model = openai_llama(url, None, http, num_workers=num_workers)
                await model.aget_text_embedding_batch(warmup)
                return await _aclock(lambda: model.aget_text_embedding_batch(texts))

        return asyncio.run(main())

    return measure


def _httpx_loop(url: str, warmup: list[str], texts: list[str]) -> Timed:
    """The design card's "loop single strings": one plain httpx post per text, in turn."""
    with httpx.Client(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as http:

        def embed(text: str) -> list[float]:
            response = http.post(f"{url}/embeddings", json={"input": text, "model": MODEL})
            response.raise_for_status()
            vector: list[float] = response.json()["data"][0]["embedding"]
            return vector

        for text in warmup:
            embed(text)
        return _clock(lambda: [embed(text) for text in texts])


def _httpx_async(concurrency: int) -> Measure:
    """Bare ``httpx.AsyncClient`` posts, ``concurrency`` in flight: httpx's own async ceiling."""

    def measure(url: str, warmup: list[str], texts: list[str]) -> Timed:
        async def main() -> Timed:
            limits = httpx.Limits(max_connections=concurrency)
            headers = {"Authorization": f"Bearer {API_KEY}"}
            async with httpx.AsyncClient(limits=limits, headers=headers, timeout=60) as http:
                slots = asyncio.Semaphore(concurrency)

                async def embed(text: str) -> list[float]:
                    async with slots:
                        response = await http.post(
                            f"{url}/embeddings", json={"input": text, "model": MODEL}
                        )
                    response.raise_for_status()
                    vector: list[float] = response.json()["data"][0]["embedding"]
                    return vector

                async def embed_all(texts: list[str]) -> list[list[float]]:
                    return list(await asyncio.gather(*(embed(text) for text in texts)))

                await embed_all(warmup)
                return await _aclock(lambda: embed_all(texts))

        return asyncio.run(main())

    return measure


# -- the run ------------------------------------------------------------------------------

OURS_SYNC = "ours: PhosphoClient.embed_many"
OURS_ASYNC = "ours: AsyncPhosphoClient.embed_many"
LLAMA_WORKERS = "LlamaIndex OpenAIEmbedding async, num_workers=c"
ALL_AT_ONCE = "default: all at once"
BARE_ASYNC = "bare httpx.AsyncClient posts, c in flight"


def entries(plan: Plan) -> list[Entry]:
    """Every measurement of the run: the main table's, then the rest of the sweep."""
    default = DEFAULT_MAX_CONCURRENCY  # ours run with their defaults
    main = [
        Entry(
            "`PhosphoClient.embed_many`", "ours", default, _phospho_client(None), series=OURS_SYNC
        ),
        Entry(
            "`AsyncPhosphoClient.embed_many`",
            "ours",
            default,
            _async_phospho_client(None),
            series=OURS_ASYNC,
        ),
        Entry("LangChain `PhosphoEmbeddings.embed_documents`", "ours", default, _langchain_ours),
        Entry(
            "LangChain `PhosphoEmbeddings.aembed_documents`", "ours", default, _langchain_ours_async
        ),
        Entry(
            "LlamaIndex `PhosphoEmbedding.get_text_embedding_batch`", "ours", default, _llama_ours
        ),
        Entry(
            "LlamaIndex `PhosphoEmbedding.aget_text_embedding_batch`",
            "ours",
            default,
            _llama_ours_async,
        ),
        Entry(
            "LangChain `OpenAIEmbeddings.embed_documents`",
            "alternative",
            1,
            _openai_langchain_sync,
            sequential=True,
            short="LangChain sync",
        ),
        Entry(
            "LangChain `OpenAIEmbeddings.aembed_documents`",
            "alternative",
            1,
            _openai_langchain_async,
            sequential=True,
            short="LangChain async",
        ),
        Entry(
            "LlamaIndex `OpenAIEmbedding.get_text_embedding_batch`",
            "alternative",
            1,
            _openai_llama_sync,
            sequential=True,
            short="LlamaIndex sync",
        ),
        Entry(
            f"LlamaIndex `OpenAIEmbedding.aget_text_embedding_batch`, {ALL_AT_ONCE}",
            "alternative",
            None,
            _openai_llama_async(None),
            short="LlamaIndex async, all at once",
        ),
        Entry(
            f"LlamaIndex `OpenAIEmbedding.aget_text_embedding_batch`, `num_workers={default}`",
            "alternative",
            default,
            _openai_llama_async(default),
            series=LLAMA_WORKERS,
            short=f"LlamaIndex async, {default} workers",
        ),
        Entry(
            "plain loop of `httpx` posts",
            "alternative",
            1,
            _httpx_loop,
            sequential=True,
            short="httpx loop",
        ),
    ]
    sweep = []
    for c in plan.sweep:
        if c == default:
            continue  # measured for the main table already
        sweep += [
            Entry(
                f"{OURS_SYNC}, max_concurrency={c}",
                "ours",
                c,
                _phospho_client(c),
                series=OURS_SYNC,
                main=False,
            ),
            Entry(
                f"{OURS_ASYNC}, max_concurrency={c}",
                "ours",
                c,
                _async_phospho_client(c),
                series=OURS_ASYNC,
                main=False,
            ),
        ]
        if c > 1:  # LlamaIndex ignores num_workers=1 and sends everything at once
            sweep.append(
                Entry(
                    f"LlamaIndex async, num_workers={c}",
                    "alternative",
                    c,
                    _openai_llama_async(c),
                    series=LLAMA_WORKERS,
                    main=False,
                )
            )
    # What httpx's own async pool does at the widest point: a client built on it cannot do
    # better. Two rounds of requests are enough to see it.
    widest = max(plan.sweep)
    sweep.append(
        Entry(
            f"bare `httpx.AsyncClient` posts, {widest} in flight",
            "floor",
            widest,
            _httpx_async(widest),
            series=BARE_ASYNC,
            main=False,
            texts=min(plan.texts, 2 * widest),
        )
    )
    return main + sweep


def _check(texts: list[str], vectors: list[list[float]]) -> None:
    """Refuse to time an entry point that returned the wrong vectors (or misordered them)."""
    if len(vectors) != len(texts):
        raise RuntimeError(f"{len(texts)} texts gave {len(vectors)} vectors")
    for index in {0, len(texts) // 2, len(texts) - 1}:
        expected = emulator_vector(texts[index], len(vectors[index]))
        if vectors[index] != expected:
            raise RuntimeError(f"the vector of text {index} is not the emulator's")


def _prime(url: str, texts: list[str]) -> None:
    # The emulator caches the answer to each text: let every entry point find it there, so
    # that none pays for being first.
    with PhosphoClient(api_key=API_KEY, base_url=url, max_concurrency=64) as client:
        client.embed_many(texts)


def run(quick: bool = False) -> dict[str, Any]:
    """Time every entry point against the same emulator, side by side in one process."""
    plan = QUICK if quick else FULL
    texts = sample_texts(plan.texts)
    warmup = sample_texts(64, tag="warm-up")
    rows: list[dict[str, Any]] = []
    with emulator_process(latency=plan.latency, jitter=plan.jitter) as url:
        _prime(url, texts + warmup)
        for entry in entries(plan):
            if entry.sequential:
                subset = texts[: plan.sequential_texts]
            elif entry.texts is not None:
                subset = texts[: entry.texts]
            elif not entry.main:
                subset = texts[: min(plan.texts, plan.texts_per_slot * (entry.concurrency or 1))]
            else:
                subset = texts
            # A warm-up call as wide as the timed one (up to 64) opens the connections it uses.
            width = min(len(warmup), entry.concurrency or len(warmup))
            reset_emulator(url)
            seconds, vectors = entry.measure(url, warmup[:width], subset)
            _check(subset, vectors)
            in_flight = entry.concurrency or len(subset)  # unbounded: all of them at once
            rows.append(
                {
                    "name": entry.name,
                    "group": entry.group,
                    "concurrency": entry.concurrency,
                    "series": entry.series,
                    "main": entry.main,
                    "short": entry.short,
                    "sequential": entry.sequential,
                    "texts": len(subset),
                    "seconds": seconds,
                    "rate": len(subset) / seconds,
                    # Texts per second if every request took exactly the mean latency.
                    "limit": min(in_flight, len(subset)) / plan.latency,
                    "peak_in_flight": emulator_stats(url)["peak_in_flight"],
                }
            )
    return {"plan": asdict(plan), "rows": rows}


# -- the page -----------------------------------------------------------------------------


def _main_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [row for row in result["rows"] if row["main"]]


def _ours(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [row for row in _main_rows(result) if row["group"] == "ours"]


def _alternatives(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [row for row in _main_rows(result) if row["group"] == "alternative"]


def _rate_of(result: dict[str, Any], fragment: str) -> float:
    return float(next(row["rate"] for row in _alternatives(result) if fragment in row["name"]))


def _sync_alternatives(result: dict[str, Any]) -> dict[str, float]:
    return {
        "LangChain `OpenAIEmbeddings.embed_documents`": _rate_of(result, "OpenAIEmbeddings.embed"),
        "LlamaIndex `OpenAIEmbedding.get_text_embedding_batch`": _rate_of(
            result, "OpenAIEmbedding.get_text"
        ),
    }


def goals(result: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The issue's goals for this scenario: (goal, what was measured, met)."""
    ours = _ours(result)
    worst_limit = min(ours, key=lambda row: row["rate"] / row["limit"])
    slowest = min(row["rate"] for row in ours)
    sync = _sync_alternatives(result)
    worst_ratio = min(slowest / rate for rate in sync.values())
    return [
        (
            "Latency-bound: each of our entry points at >= 0.9 of the limit",
            f"lowest: {percent(worst_limit['rate'] / worst_limit['limit'])} of the limit "
            f"({worst_limit['name']})",
            worst_limit["rate"] / worst_limit["limit"] >= 0.9,
        ),
        (
            "Latency-bound: each of our entry points >= 10x the sync path of both OpenAI "
            "integrations",
            f"lowest: {times(worst_ratio)}",
            worst_ratio >= 10,
        ),
    ]


def _widest(result: dict[str, Any]) -> str:
    """What the widest point of the sweep shows, from its numbers."""
    widest = max(result["plan"]["sweep"])
    points = {
        row["series"]: row
        for row in result["rows"]
        if row["concurrency"] == widest and row["series"] is not None
    }
    if not {OURS_SYNC, OURS_ASYNC, BARE_ASYNC} <= set(points):
        return ""
    sync, aio, bare = (points[s] for s in (OURS_SYNC, OURS_ASYNC, BARE_ASYNC))
    text = (
        f"At c = {widest}, the sync client reaches {percent(sync['rate'] / sync['limit'])} of "
        f"the limit ({sync['rate']:.0f} texts/s; the client and the emulator share the "
        f"machine's cores). The async client gets {percent(aio['rate'] / aio['limit'])}, and "
        f"a bare `httpx.AsyncClient` with {widest} connections "
        f"{percent(bare['rate'] / bare['limit'])}."
    )
    cause = (
        "httpx's async connection pool spends CPU per request in proportion to its "
        "connections (httpcore 1.0's `_assign_requests_to_connections`, see "
        "encode/httpcore#1035; reworked in httpx2, pydantic/httpx2#974 and #1075)"
    )
    # Each sentence only when this run's numbers show it.
    if bare["rate"] < 0.5 * bare["limit"] and aio["rate"] < 0.5 * aio["limit"]:
        text += f" The loss is httpx's: {cause}."
    elif bare["rate"] < 0.5 * bare["limit"] and aio["rate"] >= 2 * bare["rate"]:
        text += (
            f" One pool of {widest} connections collapses because {cause}; the async client "
            f"spreads its connections over pools of at most {CONNECTIONS_PER_POOL}, each "
            "request sent through the least busy."
        )
    return text


def _same_delays(result: dict[str, Any]) -> str:
    """Ours at c = 1 against the one-at-a-time alternatives: the same requests, same delays."""
    plan = result["plan"]
    ours = [
        row
        for row in result["rows"]
        if row["series"] == OURS_SYNC
        and row["concurrency"] == 1
        and row["texts"] == plan["sequential_texts"]
    ]
    if not ours:
        return ""
    loop = _rate_of(result, "httpx")
    return (
        f" At c = 1 our sync client sends those same {ours[0]['texts']} requests and meets "
        f"the same delays: {ours[0]['rate']:.2f} texts/s, against {loop:.2f} for the plain "
        "httpx loop. A request of ours is no faster than anyone's; the gain is the requests "
        "kept in flight."
    )


def markdown(result: dict[str, Any]) -> str:
    """The section of docs/benchmarks.md."""
    plan = result["plan"]
    main = _main_rows(result)

    def concurrency(row: dict[str, Any]) -> str:
        return "all at once" if row["concurrency"] is None else str(row["concurrency"])

    rows = [
        [
            ("**ours**: " if row["group"] == "ours" else "") + row["name"],
            concurrency(row),
            row["peak_in_flight"],
            row["texts"],
            f"{row['seconds']:.2f}",
            f"{row['rate']:.1f}",
            f"{row['limit']:.0f}",
            percent(row["rate"] / row["limit"]),
        ]
        for row in main
    ]
    alternatives = _alternatives(result)
    ratio_rows = [
        [row["name"], *(times(row["rate"] / alt["rate"]) for alt in alternatives)]
        for row in _ours(result)
    ]
    sweep_rows = []
    for series in (OURS_SYNC, OURS_ASYNC, LLAMA_WORKERS, BARE_ASYNC):
        points = {r["concurrency"]: r for r in result["rows"] if r["series"] == series}
        sweep_rows.append(
            [
                series,
                *(
                    f"{points[c]['rate']:.1f} ({percent(points[c]['rate'] / points[c]['limit'])})"
                    if c in points
                    else "n/a"
                    for c in plan["sweep"]
                ),
            ]
        )
    goal_rows = [[goal, measured, verdict(met)] for goal, measured, met in goals(result)]
    default = DEFAULT_MAX_CONCURRENCY
    limit = default / plan["latency"]
    return "\n\n".join(
        [
            f"## {TITLE}",
            f"The emulator (its own process) answers every request after {plan['latency']:g} s "
            f"± {plan['jitter']:g} s, as the real API does with an LLM behind each request. "
            f"N = {plan['texts']} distinct CLINC150 messages; every entry point is built, "
            "warmed up with one call on other texts, then timed on one call, and its vectors "
            "are checked against the emulator's. Our entry points run with their default "
            f"settings (`max_concurrency` {default}, the default): the limit is N x latency / "
            f"{default} = {plan['texts'] * plan['latency'] / default:.1f} s, i.e. "
            f"{limit:.0f} texts/s. "
            "*Peak in flight* is counted by the emulator.",
            f"The alternatives that send one request at a time are timed on the first "
            f"{plan['sequential_texts']} texts only (their rate does not depend on N; all "
            f"{plan['texts']} would take N / rate, e.g. "
            f"{plan['texts'] / _rate_of(result, 'OpenAIEmbeddings.embed'):.0f} s for "
            "LangChain's sync path). The emulator's jitter is seeded and starts over for each "
            "measurement, so runs of the same shape meet the very same delays; with only "
            f"{plan['sequential_texts']} of them, their mean can be a few percent off "
            f"{plan['latency']:g} s, which moves these rows' *of the limit*.{_same_delays(result)}",
            table(
                [
                    "entry point",
                    "concurrency asked",
                    "peak in flight",
                    "texts",
                    "seconds",
                    "texts/s",
                    "limit (texts/s)",
                    "of the limit",
                ],
                rows,
            ),
            "Ours against each alternative (texts/s over texts/s, same run):",
            table(["ours", *(alt["short"] for alt in alternatives)], ratio_rows),
            table(["goal", "measured", ""], goal_rows),
            "Throughput against the requests kept in flight (texts/s, and the share of the "
            f"limit c / latency); each point embeds min(N, {plan['texts_per_slot']} x c) texts "
            "(the bare httpx point: 2 x c):",
            table(["series", *(f"c = {c}" for c in plan["sweep"])], sweep_rows),
            _widest(result),
            f"![Throughput against concurrency]({PLOT})",
            "How the alternatives are configured, each in the one way that works against this "
            "API: LangChain `OpenAIEmbeddings(model='intent-embed', base_url=..., "
            "chunk_size=1, check_embedding_ctx_length=False, "
            "model_kwargs={'encoding_format': 'float'})` (the defaults send 1,000 texts per "
            "request, as token ids from tiktoken, which downloads its encodings first); "
            "LlamaIndex `OpenAIEmbedding(model_name='intent-embed', api_base=..., "
            "embed_batch_size=1, additional_kwargs={'encoding_format': 'float'})` "
            "(its `model` argument only accepts OpenAI's model names; the `model_name` "
            "keyword is sent as the model instead; the default batch is 100 texts). Both "
            "then send one request at a time, sync and async, except LlamaIndex's async "
            "batch, which by default starts *every* request at once (no bound: against the "
            "real API that means 429s, see the throttling section) and with `num_workers` "
            "keeps that many in flight.",
        ]
    )


def write_assets(result: dict[str, Any], directory: Path) -> list[Path]:
    """Draw throughput against concurrency, ours against the alternatives, as a PNG."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend
    from matplotlib.ticker import NullLocator

    plan = result["plan"]
    figure = Figure(figsize=(8, 5.5), layout="constrained")
    axes = figure.subplots()
    sweep = list(plan["sweep"])
    every_c = sorted({*sweep, 1, plan["texts"]})
    axes.plot(
        every_c,
        [c / plan["latency"] for c in every_c],
        "k--",
        linewidth=1,
        label="limit: c / latency",
    )
    styles = {OURS_SYNC: "o-", OURS_ASYNC: "s-", LLAMA_WORKERS: "^:", BARE_ASYNC: "k+"}
    for series, style in styles.items():
        points = sorted(
            (r["concurrency"], r["rate"]) for r in result["rows"] if r["series"] == series
        )
        if points:
            axes.plot(*zip(*points, strict=True), style, label=series)
    markers = iter("vDPXh*")
    one_at_a_time = 0
    for row in _alternatives(result):
        if row["series"] is not None:
            continue  # the point is on its series already
        x = row["concurrency"] or row["texts"]
        if x == 1:
            # The one-at-a-time alternatives all sit at c = 1: spread them a little to see each.
            x *= 1.07**one_at_a_time
            one_at_a_time += 1
        axes.plot(
            [x], [row["rate"]], next(markers), markersize=8, label=row["name"].replace("`", "")
        )
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    ticks = sorted({*sweep, plan["texts"]})
    axes.set_xticks(ticks, labels=[str(tick) for tick in ticks])
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_xlabel("requests in flight (max_concurrency, num_workers; 'all at once' = N)")
    axes.set_ylabel("texts per second")
    axes.set_title(
        f"Throughput at {plan['latency']:g} s ± {plan['jitter']:g} s latency (N = {plan['texts']})"
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, loc="upper left")
    path = directory / PLOT
    figure.savefig(path, dpi=110, metadata={"Software": None})
    return [path]
