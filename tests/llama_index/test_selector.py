"""`PhosphoIntentSelector`: choosing by intent with an out-of-topic fallback, alone and
inside RouterQueryEngine and RouterRetriever, sync and async."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.base_selector import SelectorResult
from llama_index.core.base.response.schema import Response
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import CustomQueryEngine, RouterQueryEngine
from llama_index.core.retrievers import RouterRetriever
from llama_index.core.tools import QueryEngineTool, RetrieverTool, ToolMetadata

from llama_index_phospho import PhosphoIntentSelector
from phospho_embed.demo_data import EXAMPLES, LABELLED
from phospho_embed.emulator import Emulator
from phospho_embed.errors import PhosphoError
from phospho_embed.intents import OutOfTopicError
from tests.llama_index.conftest import MakeModel

# The selector's queries match their intents by meaning as much as by wording.
pytestmark = pytest.mark.usefixtures("semantic_vectors")
NAMES = [*EXAMPLES, "fallback"]
CHOICES = [ToolMetadata(name=name, description=name.replace("_", " ")) for name in NAMES]
FALLBACK = len(NAMES) - 1
EXAMPLE_COUNT = sum(len(texts) for texts in EXAMPLES.values())
TEXTS = [text for text, _ in LABELLED]
INTENTS = [intent for _, intent in LABELLED]


class Canned(CustomQueryEngine):
    """A query engine that answers with its own name."""

    answer: str

    def custom_query(self, query_str: str) -> Response:
        return Response(response=self.answer)


@pytest.fixture
def selector(make_model: MakeModel) -> PhosphoIntentSelector:
    selector = PhosphoIntentSelector(
        embed_model=make_model(), examples=EXAMPLES, fallback_index=FALLBACK
    )
    selector.fit(TEXTS, INTENTS)
    return selector


def test_select_by_intent_and_fall_back_out_of_topic(selector: PhosphoIntentSelector) -> None:
    chosen = selector.select(CHOICES, "where is my parcel, it is late")
    assert chosen.ind == NAMES.index("track_parcel")
    assert "track_parcel" in chosen.reason
    off_topic = selector.select(CHOICES, "what's the weather like on Mars?")
    assert off_topic.ind == FALLBACK
    assert "out of topic" in off_topic.reason


async def test_aselect_by_intent(selector: PhosphoIntentSelector) -> None:
    assert (await selector.aselect(CHOICES, "reset my password")).ind == NAMES.index(
        "reset_password"
    )
    assert (await selector.aselect(CHOICES, "recommend a pizza recipe")).ind == FALLBACK


def test_examples_are_embedded_once(make_model: MakeModel, emulator: Emulator) -> None:
    selector = PhosphoIntentSelector(embed_model=make_model(), examples=EXAMPLES)
    for query in ("track my package", "refund please", "cancel my order"):
        selector.select(CHOICES[:-1], query)
    assert emulator.stats.requests == EXAMPLE_COUNT + 3


async def test_concurrent_first_queries_share_one_build(
    make_model: MakeModel, emulator: Emulator
) -> None:
    selector = PhosphoIntentSelector(embed_model=make_model(), examples=EXAMPLES)
    queries = ["track my package", "refund please", "cancel my order", "reset my password"]
    results = await asyncio.gather(*(selector.aselect(CHOICES[:-1], q) for q in queries))
    assert [NAMES[r.ind] for r in results] == [
        "track_parcel",
        "refund",
        "cancel_order",
        "reset_password",
    ]
    assert emulator.stats.requests == EXAMPLE_COUNT + len(queries)


def test_choices_without_examples_are_scored_by_description(make_model: MakeModel) -> None:
    selector = PhosphoIntentSelector(embed_model=make_model())
    choices = [
        ToolMetadata(name="billing", description="invoices, payments and refunds of charges"),
        ToolMetadata(name="shipping", description="parcels, delivery and tracking numbers"),
    ]
    assert selector.select(choices, "my parcel has no tracking number").ind == 1
    assert selector.select(choices, "I was charged twice on my invoice").ind == 0


def test_without_fallback_out_of_topic_is_an_error(make_model: MakeModel) -> None:
    selector = PhosphoIntentSelector(embed_model=make_model(), examples=EXAMPLES)
    selector.fit(TEXTS, INTENTS)
    with pytest.raises(OutOfTopicError) as info:
        selector.select(CHOICES[:-1], "what's the weather like on Mars?")
    assert info.value.match.intent is None


def test_bad_examples_fail_before_any_request(make_model: MakeModel, emulator: Emulator) -> None:
    with pytest.raises(ValueError, match=r"examples\['refund'\]\[0\] is empty"):
        PhosphoIntentSelector(embed_model=make_model(), examples={"refund": [""]})
    assert emulator.stats.requests == 0


def _engine(selector: PhosphoIntentSelector) -> RouterQueryEngine:
    tools = [
        QueryEngineTool.from_defaults(
            query_engine=Canned(answer=f"answered by {name}"),
            name=name,
            description=name.replace("_", " "),
        )
        for name in NAMES
    ]
    return RouterQueryEngine(selector=selector, query_engine_tools=tools, llm=MockLLM())


def test_router_query_engine_routes_by_intent(selector: PhosphoIntentSelector) -> None:
    engine = _engine(selector)
    assert str(engine.query("please cancel my order now")) == "answered by cancel_order"
    assert str(engine.query("who won the football game")) == "answered by fallback"


async def test_router_query_engine_routes_by_intent_async(
    selector: PhosphoIntentSelector,
) -> None:
    engine = _engine(selector)
    answers = await asyncio.gather(
        engine.aquery("let me talk to a human"), engine.aquery("the best pizza in Naples?")
    )
    assert [str(a) for a in answers] == ["answered by talk_to_human", "answered by fallback"]


def test_router_retriever_routes_by_intent(make_model: MakeModel) -> None:
    model = make_model()
    refunds = VectorStoreIndex.from_documents(
        [Document(text="Refunds reach your card within five working days.")], embed_model=model
    )
    parcels = VectorStoreIndex.from_documents(
        [Document(text="Parcels ship with a tracking number by email.")], embed_model=model
    )
    retriever = RouterRetriever(
        selector=PhosphoIntentSelector(
            embed_model=model,
            examples={"refund": EXAMPLES["refund"], "track_parcel": EXAMPLES["track_parcel"]},
        ),
        retriever_tools=[
            RetrieverTool.from_defaults(
                retriever=refunds.as_retriever(), name="refund", description="refunds"
            ),
            RetrieverTool.from_defaults(
                retriever=parcels.as_retriever(), name="track_parcel", description="parcels"
            ),
        ],
        llm=MockLLM(),
    )
    [hit] = retriever.retrieve("where is my parcel")
    assert "tracking number" in hit.node.get_content()
    [ahit] = asyncio.run(retriever.aretrieve("I want a refund"))
    assert "Refunds" in ahit.node.get_content()


# -- a fallback_index the choices do not have (issue 15, item 21) -----------------------------


def test_a_fallback_index_beyond_the_choices_is_a_clear_error(
    make_model: MakeModel, emulator: Emulator
) -> None:
    three = CHOICES[:3]
    selector = PhosphoIntentSelector(embed_model=make_model(), examples=EXAMPLES, fallback_index=5)
    message = r"fallback_index is 5, but there are only 3 choices \(positions 0 to 2\)"
    with pytest.raises(ValueError, match=message):
        selector.select(three, "what's the weather like on Mars?")
    engine = RouterQueryEngine(
        selector=selector,
        query_engine_tools=[
            QueryEngineTool.from_defaults(
                query_engine=Canned(answer=choice.description), name=choice.name
            )
            for choice in three
        ],
        llm=MockLLM(),
    )
    with pytest.raises(ValueError, match=message):
        engine.query("where is my parcel")
    assert emulator.stats.requests == 0  # refused before anything is embedded
    with pytest.raises(ValueError, match="fallback_index must be an int >= 0"):
        PhosphoIntentSelector(embed_model=make_model(), fallback_index=-1)


# -- the shared first build: failed or cancelled (issue 15, item 18) --------------------------


async def test_a_failed_first_build_is_not_kept(make_model: MakeModel, emulator: Emulator) -> None:
    selector = PhosphoIntentSelector(embed_model=make_model(max_retries=0), examples=EXAMPLES)
    emulator.configure(fault="500")  # every request fails
    with pytest.raises(PhosphoError):
        await selector.aselect(CHOICES[:-1], "track my package")
    emulator.configure(fault=None)
    emulator.reset_stats()
    chosen = await selector.aselect(CHOICES[:-1], "track my package")
    assert NAMES[chosen.ind] == "track_parcel"
    assert emulator.stats.requests == EXAMPLE_COUNT + 1  # built again, once


async def _start_building(
    make_model: MakeModel, emulator: Emulator, *queries: str
) -> tuple[PhosphoIntentSelector, list[asyncio.Future[SelectorResult]]]:
    """A selector whose requests take 0.1 s, and its first ``queries`` started concurrently,
    returned once the examples' requests reach the emulator: a build in flight (counted from
    this reset, so an earlier test's requests do not count)."""
    selector = PhosphoIntentSelector(embed_model=make_model(), examples=EXAMPLES)
    emulator.configure(latency=0.1)
    emulator.reset_stats()
    started = [asyncio.ensure_future(selector.aselect(CHOICES[:-1], q)) for q in queries]
    # The emulator runs in another thread: there is no event to wait on, so poll.
    for _ in range(400):
        if emulator.stats.requests:
            return selector, started
        await asyncio.sleep(0.005)
    pytest.fail("the examples were never sent")


async def test_one_cancelled_query_leaves_the_shared_build_to_the_others(
    make_model: MakeModel, emulator: Emulator
) -> None:
    selector, [cancelled, waiting] = await _start_building(
        make_model, emulator, "refund please", "track my package"
    )
    cancelled.cancel()
    chosen = await waiting
    assert cancelled.cancelled()
    assert NAMES[chosen.ind] == "track_parcel"
    later = await selector.aselect(CHOICES[:-1], "cancel my order")
    assert NAMES[later.ind] == "cancel_order"
    # The examples were embedded once, for both the survivor and the later query.
    assert emulator.stats.requests == EXAMPLE_COUNT + 2


async def test_a_build_whose_only_caller_was_cancelled_still_serves_the_next_query(
    make_model: MakeModel, emulator: Emulator
) -> None:
    selector, [alone] = await _start_building(make_model, emulator, "refund please")
    alone.cancel()
    chosen = await selector.aselect(CHOICES[:-1], "reset my password")
    assert NAMES[chosen.ind] == "reset_password"
    assert emulator.stats.requests == EXAMPLE_COUNT + 1
