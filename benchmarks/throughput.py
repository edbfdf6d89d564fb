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
from dataclasses import dataclass
from functools import cache
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
    reset_emulator,
    sample_texts,
)
from benchmarks._page import Goal, Section, goal_lines, lines, percent, render, table, times
from phospho_embed import AsyncPhosphoClient, PhosphoClient
from phospho_embed._core import CONNECTIONS_PER_POOL
from phospho_embed.emulator import emulator_vector

PLOT = "benchmarks-throughput.png"


@dataclass(frozen=True)
class Plan:
    """How big a run is."""

    latency: float
    jitter: float
    texts: int  # N: what the concurrent entry points embed
    # Texts per request kept in flight, for every entry timed on a subset: a sweep point at
    # c embeds min(N, c x this); the one-at-a-time alternatives (c = 1) embed this many, the
    # very same requests as our sync client's point at c = 1 (compared on the page).
    texts_per_slot: int
    sweep: tuple[int, ...]  # concurrencies for the plot; 1 is always among them

    def __post_init__(self) -> None:
        if 1 not in self.sweep:
            raise ValueError("the sweep starts at c = 1: the page compares it")


FULL = Plan(latency=0.2, jitter=0.05, texts=320, texts_per_slot=12, sweep=(1, 4, 16, 64))
QUICK = Plan(latency=0.05, jitter=0.0125, texts=32, texts_per_slot=4, sweep=(1, 16))

#: What a measurement returns: the seconds of the timed call and the vectors it gave.
Timed = tuple[float, list[list[float]]]
#: Builds an embedder, warms it up on the first texts, times it on the second, closes it.
Measure = Callable[[str, list[str], list[str]], Timed]

#: The plot's lines (and the sweep table's rows): id -> label.
SERIES = {
    "phospho-sync": "ours: PhosphoClient.embed_many",
    "phospho-async": "ours: AsyncPhosphoClient.embed_many",
    "llama-openai-workers": "LlamaIndex OpenAIEmbedding async, num_workers=c",
    "httpx-async": "bare httpx.AsyncClient posts, c in flight",
}


@dataclass(frozen=True)
class Entry:
    """One way to embed a list of texts."""

    id: str
    label: str
    group: str  # "ours", "alternative", or "floor" (bare httpx: what httpx itself does)
    concurrency: int | None  # requests it keeps in flight; None: all at once (unbounded)
    measure: Measure
    sequential: bool = False  # one request at a time: timed on a subset
    series: str | None = None  # the id of the plot line it belongs to (concurrency sweeps)
    main: bool = True  # in the main table; else a point of its series only
    short: str = ""  # an alternative's column title in the ratio table
    texts: int | None = None  # how many texts to time, when not the usual number


@dataclass(frozen=True)
class Row:
    """One entry point, timed."""

    id: str
    label: str
    group: str
    concurrency: int | None
    series: str | None
    main: bool
    short: str
    texts: int
    seconds: float
    limit: float  # texts per second if every request took exactly the mean latency
    peak_in_flight: int

    @property
    def rate(self) -> float:
        """Texts per second."""
        return self.texts / self.seconds

    @property
    def of_limit(self) -> float:
        """The share of the limit reached."""
        return self.rate / self.limit


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
    from pydantic import SecretStr

    from llama_index_phospho import PhosphoEmbedding

    model = PhosphoEmbedding(api_key=SecretStr(API_KEY), base_url=url)
    try:
        model.get_text_embedding_batch(warmup)
        return _clock(lambda: model.get_text_embedding_batch(texts))
    finally:
        model.close()


def _llama_ours_async(url: str, warmup: list[str], texts: list[str]) -> Timed:
    from pydantic import SecretStr

    from llama_index_phospho import PhosphoEmbedding

    async def main() -> Timed:
        model = PhosphoEmbedding(api_key=SecretStr(API_KEY), base_url=url)
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
    """What one writes without a client: one plain httpx post per text, in turn."""
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


@cache
def default_concurrency() -> int:
    """What our clients keep in flight by default: a fresh client's limit, before any 429."""
    with PhosphoClient(api_key=API_KEY, base_url="http://127.0.0.1:9/v2") as client:
        return client.concurrency_limit


#: The sync paths of both OpenAI integrations: ours must be 10x as fast as either.
OPENAI_SYNC = ("langchain-openai-sync", "llama-openai-sync")


def entries(plan: Plan) -> list[Entry]:
    """Every measurement of the run: the main table's, then the rest of the sweep."""
    default = default_concurrency()  # ours run with their defaults
    llama_async = "LlamaIndex `OpenAIEmbedding.aget_text_embedding_batch`"
    main = [
        Entry(
            "phospho-sync",
            "`PhosphoClient.embed_many`",
            "ours",
            default,
            _phospho_client(None),
            series="phospho-sync",
        ),
        Entry(
            "phospho-async",
            "`AsyncPhosphoClient.embed_many`",
            "ours",
            default,
            _async_phospho_client(None),
            series="phospho-async",
        ),
        Entry(
            "langchain-phospho-sync",
            "LangChain `PhosphoEmbeddings.embed_documents`",
            "ours",
            default,
            _langchain_ours,
        ),
        Entry(
            "langchain-phospho-async",
            "LangChain `PhosphoEmbeddings.aembed_documents`",
            "ours",
            default,
            _langchain_ours_async,
        ),
        Entry(
            "llama-phospho-sync",
            "LlamaIndex `PhosphoEmbedding.get_text_embedding_batch`",
            "ours",
            default,
            _llama_ours,
        ),
        Entry(
            "llama-phospho-async",
            "LlamaIndex `PhosphoEmbedding.aget_text_embedding_batch`",
            "ours",
            default,
            _llama_ours_async,
        ),
        Entry(
            "langchain-openai-sync",
            "LangChain `OpenAIEmbeddings.embed_documents`",
            "alternative",
            1,
            _openai_langchain_sync,
            sequential=True,
            short="LangChain sync",
        ),
        Entry(
            "langchain-openai-async",
            "LangChain `OpenAIEmbeddings.aembed_documents`",
            "alternative",
            1,
            _openai_langchain_async,
            sequential=True,
            short="LangChain async",
        ),
        Entry(
            "llama-openai-sync",
            "LlamaIndex `OpenAIEmbedding.get_text_embedding_batch`",
            "alternative",
            1,
            _openai_llama_sync,
            sequential=True,
            short="LlamaIndex sync",
        ),
        Entry(
            "llama-openai-async-unbounded",
            f"{llama_async}, default: all at once",
            "alternative",
            None,
            _openai_llama_async(None),
            short="LlamaIndex async, all at once",
        ),
        Entry(
            "llama-openai-workers",
            f"{llama_async}, `num_workers={default}`",
            "alternative",
            default,
            _openai_llama_async(default),
            series="llama-openai-workers",
            short=f"LlamaIndex async, {default} workers",
        ),
        Entry(
            "httpx-loop",
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
                f"phospho-sync-c{c}",
                f"{SERIES['phospho-sync']}, max_concurrency={c}",
                "ours",
                c,
                _phospho_client(c),
                series="phospho-sync",
                main=False,
            ),
            Entry(
                f"phospho-async-c{c}",
                f"{SERIES['phospho-async']}, max_concurrency={c}",
                "ours",
                c,
                _async_phospho_client(c),
                series="phospho-async",
                main=False,
            ),
        ]
        if c > 1:  # LlamaIndex ignores num_workers=1 and sends everything at once
            sweep.append(
                Entry(
                    f"llama-openai-workers-c{c}",
                    f"LlamaIndex async, num_workers={c}",
                    "alternative",
                    c,
                    _openai_llama_async(c),
                    series="llama-openai-workers",
                    main=False,
                )
            )
    # What httpx's own async pool does at the widest point: a client built on it cannot do
    # better. Two rounds of requests are enough to see it.
    widest = max(plan.sweep)
    sweep.append(
        Entry(
            f"httpx-async-c{widest}",
            f"bare `httpx.AsyncClient` posts, {widest} in flight",
            "floor",
            widest,
            _httpx_async(widest),
            series="httpx-async",
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


def _subset(plan: Plan, entry: Entry, texts: list[str]) -> list[str]:
    if entry.texts is not None:
        return texts[: entry.texts]
    if entry.main and not entry.sequential:
        return texts
    return texts[: min(plan.texts, plan.texts_per_slot * (entry.concurrency or 1))]


def run(plan: Plan) -> Throughput:
    """Time every entry point against one emulator, one after the other."""
    texts = sample_texts(plan.texts)
    warmup = sample_texts(64, tag="warm-up")
    rows: list[Row] = []
    with emulator_process(latency=plan.latency, jitter=plan.jitter) as url:
        _prime(url, texts + warmup)
        for entry in entries(plan):
            subset = _subset(plan, entry, texts)
            # A warm-up call as wide as the timed one (up to 64) opens the connections it uses.
            width = min(len(warmup), entry.concurrency or len(warmup))
            reset_emulator(url)
            seconds, vectors = entry.measure(url, warmup[:width], subset)
            _check(subset, vectors)
            in_flight = entry.concurrency or len(subset)  # unbounded: all of them at once
            rows.append(
                Row(
                    id=entry.id,
                    label=entry.label,
                    group=entry.group,
                    concurrency=entry.concurrency,
                    series=entry.series,
                    main=entry.main,
                    short=entry.short,
                    texts=len(subset),
                    seconds=seconds,
                    limit=min(in_flight, len(subset)) / plan.latency,
                    peak_in_flight=emulator_stats(url)["peak_in_flight"],
                )
            )
    return Throughput(plan, rows)


# -- the page -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Throughput(Section):
    """Every entry point's row, in the order measured."""

    plan: Plan
    rows: list[Row]

    @property
    def by_id(self) -> dict[str, Row]:
        return {row.id: row for row in self.rows}

    def _main(self, group: str) -> list[Row]:
        return [row for row in self.rows if row.main and row.group == group]

    def point(self, series: str, concurrency: int) -> Row:
        """The row of a series at one concurrency (the main table's row at the default)."""
        return next(r for r in self.rows if r.series == series and r.concurrency == concurrency)

    def goals(self) -> list[Goal]:
        ours = self._main("ours")
        worst = min(ours, key=lambda row: row.of_limit)
        slowest = min(row.rate for row in ours)
        ratio = min(slowest / self.by_id[id].rate for id in OPENAI_SYNC)
        return [
            Goal.from_template("throughput", "limit", worst.of_limit >= 0.9, worst=worst),
            Goal.from_template("throughput", "vs-openai-sync", ratio >= 10, ratio=ratio),
        ]

    def _widest(self) -> str:
        """What the widest point of the sweep shows, each sentence only when its numbers do."""
        widest = max(self.plan.sweep)
        sync, aio, bare = (
            self.point(series, widest)
            for series in ("phospho-sync", "phospho-async", "httpx-async")
        )
        values = {"c": widest, "sync": sync, "aio": aio, "bare": bare}
        cause = render("throughput", "widest.cause")
        if bare.of_limit < 0.5 and aio.of_limit < 0.5:
            because = render("throughput", "widest.httpx-loss", cause=cause)
        elif bare.of_limit < 0.5 and aio.rate >= 2 * bare.rate:
            because = render(
                "throughput",
                "widest.pool-collapse",
                cause=cause,
                c=widest,
                per_pool=CONNECTIONS_PER_POOL,
            )
        else:
            because = ""
        return render("throughput", "widest", because=because, **values)

    def _sweep_lines(self) -> list[list[str]]:
        out = []
        for series, label in SERIES.items():
            points = {r.concurrency: r for r in self.rows if r.series == series}
            cells = [
                f"{points[c].rate:.1f} ({percent(points[c].of_limit)})" if c in points else "n/a"
                for c in self.plan.sweep
            ]
            out.append([label, *cells])
        return out

    def markdown(self) -> str:
        plan, default = self.plan, default_concurrency()
        alternatives = self._main("alternative")
        main_lines = [
            [
                ("**ours**: " if row.group == "ours" else "") + row.label,
                "all at once" if row.concurrency is None else row.concurrency,
                row.peak_in_flight,
                row.texts,
                f"{row.seconds:.2f}",
                f"{row.rate:.1f}",
                f"{row.limit:.0f}",
                percent(row.of_limit),
            ]
            for row in self.rows
            if row.main
        ]
        ratio_lines = [
            [row.label, *(times(row.rate / alt.rate) for alt in alternatives)]
            for row in self._main("ours")
        ]
        return render(
            "throughput",
            "section",
            plan=plan,
            rows=self.by_id,
            default=default,
            limit_seconds=plan.texts * plan.latency / default,
            limit_rate=default / plan.latency,
            sequential_seconds=plan.texts / self.by_id["langchain-openai-sync"].rate,
            main_table=lines(main_lines),
            ratio_table=table(["ours", *(alt.short for alt in alternatives)], ratio_lines),
            goals=goal_lines(self.goals()),
            sweep_table=table(["series", *(f"c = {c}" for c in plan.sweep)], self._sweep_lines()),
            widest=self._widest(),
            plot=PLOT,
        )

    def write_assets(self, directory: Path) -> list[Path]:
        """Draw throughput against concurrency, ours against the alternatives, as a PNG."""
        from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend
        from matplotlib.ticker import NullLocator

        plan = self.plan
        figure = Figure(figsize=(8, 5.5), layout="constrained")
        axes = figure.subplots()
        every_c = sorted({*plan.sweep, 1, plan.texts})
        axes.plot(
            every_c,
            [c / plan.latency for c in every_c],
            "k--",
            linewidth=1,
            label="limit: c / latency",
        )
        styles = {
            "phospho-sync": "o-",
            "phospho-async": "s-",
            "llama-openai-workers": "^:",
            "httpx-async": "k+",
        }
        for series, style in styles.items():
            points = sorted((r.concurrency or 0, r.rate) for r in self.rows if r.series == series)
            if points:
                axes.plot(*zip(*points, strict=True), style, label=SERIES[series])
        markers = iter("vDPXh*")
        one_at_a_time = 0
        for row in self._main("alternative"):
            if row.series is not None:
                continue  # the point is on its series already
            x: float = row.concurrency or row.texts
            if x == 1:
                # The one-at-a-time alternatives all sit at c = 1: spread them a little.
                x *= 1.07**one_at_a_time
                one_at_a_time += 1
            axes.plot(
                [x], [row.rate], next(markers), markersize=8, label=row.label.replace("`", "")
            )
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        ticks = sorted({*plan.sweep, plan.texts})
        axes.set_xticks(ticks, labels=[str(tick) for tick in ticks])
        axes.xaxis.set_minor_locator(NullLocator())
        axes.set_xlabel("requests in flight (max_concurrency, num_workers; 'all at once' = N)")
        axes.set_ylabel("texts per second")
        axes.set_title(
            f"Throughput at {plan.latency:g} s ± {plan.jitter:g} s latency (N = {plan.texts})"
        )
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=7, loc="upper left")
        path = directory / PLOT
        figure.savefig(path, dpi=110, metadata={"Software": None})
        return [path]
