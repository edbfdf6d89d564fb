"""The demo's five screens, on a small customer-support intent set.

Without ``PHOSPHO_API_KEY`` it starts the local emulator with LLM-like latency (and says so);
with a key it talks to the real API. The screens: intents classified with out-of-topic
messages rejected, a LangChain router chain, a LlamaIndex query engine routed by intent,
intents discovered in unlabelled messages (with the ones the classifier does not cover yet,
and an HTML report), and the speed of batch embedding against a one-by-one loop.

Every framework the screens use is imported here, at the top: importing this package is how
``phospho-embed demo`` finds out, before anything runs, whether the ``demo`` extra is there.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from langchain_core.runnables import RunnableLambda
from llama_index.core.base.response.schema import Response
from llama_index.core.llms.mock import MockLLM
from llama_index.core.query_engine import CustomQueryEngine, RouterQueryEngine
from llama_index.core.tools import QueryEngineTool

from langchain_phospho import PhosphoEmbeddings, PhosphoIntentRouter
from llama_index_phospho import PhosphoEmbedding, PhosphoIntentSelector
from phospho_embed import PhosphoClient
from phospho_embed._options import API_KEY_ENV, BASE_URL_ENV
from phospho_embed.demo_data import EXAMPLES, EXPECTED, HELD_OUT, LABELLED, MESSAGES, UNLABELLED
from phospho_embed.discovery import discover_intents
from phospho_embed.emulator import Emulator
from phospho_embed.intents import IntentClassifier
from phospho_embed.wire import DEFAULT_BASE_URL

# What an LLM-backed request costs on the emulator: a few hundred milliseconds.
EMULATED_LATENCY = 0.3
EMULATED_JITTER = 0.1

ANSWERS = {
    "cancel_order": "Your order is cancelled; the refund follows in 3 days.",
    "track_parcel": "Your parcel left the depot this morning.",
    "refund": "Refunds reach your card within 5 working days.",
    "reset_password": "We sent you a password reset link.",
    "change_address": "Your delivery address is updated.",
    "talk_to_human": "An agent will call you back within the hour.",
}
FALLBACK = "Sorry, I can only help with orders, parcels, refunds and your account."


@contextmanager
def endpoint(
    out: TextIO, latency: float | None = None, **settings: Any
) -> Iterator[dict[str, Any]]:
    """Client settings for the demo: the API when a key is given (``api_key`` or
    ``PHOSPHO_API_KEY``), else a local emulator started for the demo with ``latency``."""
    settings = {name: value for name, value in settings.items() if value is not None}
    if settings.get("api_key") or os.environ.get(API_KEY_ENV):
        where = settings.get("base_url") or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        print(f"Using the API at {where} (an API key is set).", file=out)
        yield settings
        return
    latency = EMULATED_LATENCY if latency is None else latency
    emulator = Emulator(latency=latency, jitter=min(EMULATED_JITTER, latency))
    with emulator.start():
        print(
            f"No PHOSPHO_API_KEY: using a local emulator at {emulator.base_url}, "
            f"{latency * 1000:.0f} ms per request (the real API runs an LLM per text).\n"
            f"Its vectors are {emulator.vectors_description}: stand-ins, not phospho's model.",
            file=out,
        )
        yield {**settings, "api_key": "demo", "base_url": emulator.base_url}


def classify(settings: dict[str, Any], out: TextIO) -> IntentClassifier:
    """Screen 1: classification with out-of-topic rejection; returns the fitted classifier."""
    _title("1. Classify messages by intent, rejecting out-of-topic ones", out)
    with PhosphoClient(**settings) as client:
        classifier = IntentClassifier.from_examples(EXAMPLES, client=client)
        classifier.fit([t for t, _ in LABELLED], [i for _, i in LABELLED])
        held_out = classifier.evaluate([t for t, _ in HELD_OUT], [i for _, i in HELD_OUT])
        print(
            f"{len(EXAMPLES)} intents, {sum(map(len, EXAMPLES.values()))} examples; thresholds "
            f"fitted on {len(LABELLED)} labelled messages, then measured on {held_out.size} "
            f"others: accuracy {held_out.accuracy:.0%}, out-of-topic recall "
            f"{held_out.out_of_topic_recall:.0%}.\n"
            "Fresh messages, none sharing a content word with its intent's examples:\n",
            file=out,
        )
        matches = classifier.classify_many(MESSAGES)
        for (message, meant), match in zip(EXPECTED, matches, strict=True):
            verdict = match.intent or f"OUT OF TOPIC (closest: {match.top})"
            mark = "" if match.intent == meant else f"  (meant: {meant or 'out of topic'})"
            print(f"  {message:<48} -> {verdict}  [score {match.score:.2f}]{mark}", file=out)
    return classifier


def langchain_router(settings: dict[str, Any], out: TextIO) -> None:
    """Screen 2: a LangChain chain routed by intent, out-of-topic to a fallback."""

    def _canned(answer: str) -> RunnableLambda[str, str]:
        return RunnableLambda(lambda _: answer)

    _title("2. LangChain: PhosphoIntentRouter picks the chain for each message", out)
    embeddings = PhosphoEmbeddings(**settings)
    router = PhosphoIntentRouter(
        examples=EXAMPLES,
        routes={name: _canned(answer) for name, answer in ANSWERS.items()},
        default=_canned(FALLBACK),
        embeddings=embeddings,
    )
    router.fit([t for t, _ in LABELLED], [i for _, i in LABELLED])
    for message, reply in zip(MESSAGES, router.batch(MESSAGES), strict=True):
        print(f"  {message:<48} -> {reply}", file=out)
    embeddings.close()


def discover(
    settings: dict[str, Any], classifier: IntentClassifier, out: TextIO, report_dir: Path
) -> Path:
    """Screen 4: intents found in unlabelled messages, those not covered yet, the report."""
    _title(f"4. Discover the intents in {len(UNLABELLED)} unlabelled messages", out)
    with PhosphoClient(**settings) as client:
        vectors = client.embed_many(UNLABELLED)  # once, for both discoveries
    found = discover_intents(UNLABELLED, vectors=vectors)
    print(found.summary().splitlines()[0], file=out)
    _intent_table(found.intents, out)
    # The classifier of screen 1 already covers six intents: cluster only what it rejects.
    gaps = discover_intents(UNLABELLED, vectors=vectors, known=classifier)
    print(
        f"\nNot covered yet: {gaps.covered_by_known} messages match the classifier's "
        f"{len(classifier.intents_)} intents; what it rejects holds {len(gaps.intents)} new ones:",
        file=out,
    )
    _intent_table(gaps.intents, out)
    report_dir.mkdir(parents=True, exist_ok=True)
    report = report_dir / "intents.html"
    found.report(report, title="Intents in the demo's support messages")
    print(f"\nThe report (map, table, quality): {report}  (open it in a browser)", file=out)
    return report


def _intent_table(intents: Any, out: TextIO) -> None:
    print(f"  {'size':>4}  {'share':>5}  {'name':<36} example", file=out)
    for intent in intents:
        print(
            f"  {intent.size:>4}  {intent.share:>5.0%}  {intent.name[:36]:<36} "
            f"{intent.examples[0]}",
            file=out,
        )


def speed(settings: dict[str, Any], out: TextIO, count: int = 24) -> None:
    """Screen 5: ``embed_many`` against a loop of single requests on the same endpoint."""
    _title(f"5. Speed: {count} messages, batch against one-by-one", out)
    texts = [f"{message} (ticket {i})" for i, message in enumerate(MESSAGES * count)][:count]
    with PhosphoClient(**settings) as client:
        started = time.perf_counter()
        for text in texts[: count // 2]:
            client.embed(text)
        loop = (time.perf_counter() - started) * count / (count // 2)  # half, extrapolated
        started = time.perf_counter()
        client.embed_many(texts)
        batch = time.perf_counter() - started
    print(
        f"  one request at a time: {loop:5.1f} s  ({count / loop:5.1f} texts/s, measured on "
        f"{count // 2} and scaled)\n"
        f"  PhosphoClient.embed_many: {batch:5.1f} s  ({count / batch:5.1f} texts/s), "
        f"{loop / batch:.0f}x faster",
        file=out,
    )


def llama_index_router(settings: dict[str, Any], out: TextIO) -> None:
    """Screen 3: a LlamaIndex RouterQueryEngine choosing a query engine by intent."""

    class Canned(CustomQueryEngine):
        answer: str

        def custom_query(self, query_str: str) -> Response:
            return Response(response=self.answer)

    _title("3. LlamaIndex: a RouterQueryEngine routed by PhosphoIntentSelector", out)
    names = [*ANSWERS, "fallback"]
    tools = [
        QueryEngineTool.from_defaults(
            query_engine=Canned(answer=ANSWERS.get(name, FALLBACK)),
            name=name,
            description=name.replace("_", " "),
        )
        for name in names
    ]
    embed_model = PhosphoEmbedding(**settings)
    selector = PhosphoIntentSelector(
        embed_model=embed_model, examples=EXAMPLES, fallback_index=names.index("fallback")
    )
    selector.fit([t for t, _ in LABELLED], [i for _, i in LABELLED])
    engine = RouterQueryEngine(selector=selector, query_engine_tools=tools, llm=MockLLM())

    async def ask_all() -> list[Any]:
        return await asyncio.gather(*(engine.aquery(message) for message in MESSAGES))

    for message, response in zip(MESSAGES, asyncio.run(ask_all()), strict=True):
        print(f"  {message:<48} -> {response}", file=out)


def run(
    out: TextIO,
    latency: float | None = None,
    report_dir: Path | None = None,
    **settings: Any,
) -> int:
    """The whole demo; ``settings`` are client settings (``api_key``, ``base_url``,
    ``max_concurrency``...), ``latency`` the emulator's, ``report_dir`` where the discovery
    report goes (default: a new ``phospho-embed-demo-*`` folder in the temporary directory).
    Returns the process exit code."""
    started = time.perf_counter()
    report_dir = report_dir or Path(tempfile.mkdtemp(prefix="phospho-embed-demo-"))
    with endpoint(out, latency, **settings) as settings:
        classifier = classify(settings, out)
        langchain_router(settings, out)
        llama_index_router(settings, out)
        discover(settings, classifier, out, report_dir)
        speed(settings, out)
    print(f"\nDone in {time.perf_counter() - started:.0f} s.", file=out)
    return 0


def _title(text: str, out: TextIO) -> None:
    print(f"\n{text}\n{'-' * len(text)}", file=out, flush=True)
