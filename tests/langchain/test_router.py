"""`PhosphoIntentRouter` as a Runnable in chains: routing, out-of-topic default, batches
classified in one concurrent call, async, and configuration errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableLambda

from langchain_phospho import PhosphoIntentRouter
from phospho_embed.demo_data import EXAMPLES, LABELLED, MESSAGES
from phospho_embed.demo_data import EXPECTED as MEANT
from phospho_embed.emulator import Emulator
from phospho_embed.errors import BadRequestError, BatchEmbeddingError
from phospho_embed.intents import IntentClassifier, OutOfTopicError
from tests.langchain.conftest import MakeEmbeddings

ROUTES = {name: RunnableLambda(lambda text, name=name: f"{name}: {text}") for name in EXAMPLES}
DEFAULT = RunnableLambda(lambda text: f"small talk: {text}")
# The demo's messages match their intents by meaning, not wording: semantic vectors.
pytestmark = pytest.mark.usefixtures("semantic_vectors")
EXPECTED = [f"{intent or 'small talk'}: {text}" for text, intent in MEANT]


@pytest.fixture
def router(make_embeddings: MakeEmbeddings) -> PhosphoIntentRouter:
    router = PhosphoIntentRouter(
        examples=EXAMPLES, routes=ROUTES, default=DEFAULT, embeddings=make_embeddings()
    )
    router.fit([t for t, _ in LABELLED], [i for _, i in LABELLED])
    return router


def test_invoke_routes_by_intent_and_defaults_out_of_topic(router: PhosphoIntentRouter) -> None:
    assert [router.invoke(message) for message in MESSAGES] == EXPECTED


def test_the_router_composes_in_a_chain(router: PhosphoIntentRouter) -> None:
    chain = RunnableLambda(str.strip) | router | RunnableLambda(str.upper)
    assert chain.invoke("  track my package  ") == "TRACK_PARCEL: TRACK MY PACKAGE"


async def test_ainvoke_routes_by_intent(router: PhosphoIntentRouter) -> None:
    assert await router.ainvoke(MESSAGES[1]) == EXPECTED[1]
    assert await router.ainvoke(MESSAGES[3]) == EXPECTED[3]


def test_batch_classifies_in_one_concurrent_call(
    router: PhosphoIntentRouter, phospho_emulator: Emulator
) -> None:
    phospho_emulator.reset(latency=0.03)
    assert router.batch(MESSAGES) == EXPECTED
    assert phospho_emulator.stats.requests == len(MESSAGES)
    assert phospho_emulator.stats.peak_in_flight > 1


async def test_abatch_classifies_in_one_concurrent_call(
    router: PhosphoIntentRouter, phospho_emulator: Emulator
) -> None:
    phospho_emulator.reset(latency=0.03)
    assert await router.abatch(MESSAGES) == EXPECTED
    assert phospho_emulator.stats.peak_in_flight > 1


def test_examples_are_embedded_once_at_first_use(
    make_embeddings: MakeEmbeddings, phospho_emulator: Emulator
) -> None:
    router = PhosphoIntentRouter(examples=EXAMPLES, routes=ROUTES, embeddings=make_embeddings())
    assert phospho_emulator.stats.requests == 0  # construction sends nothing
    router.invoke("track my package")
    router.invoke("refund please")
    examples = sum(len(v) for v in EXAMPLES.values())
    assert phospho_emulator.stats.requests == examples + 2


def test_without_default_out_of_topic_is_an_error(make_embeddings: MakeEmbeddings) -> None:
    router = PhosphoIntentRouter(
        examples=EXAMPLES, routes=ROUTES, embeddings=make_embeddings(), threshold=0.2
    )
    with pytest.raises(OutOfTopicError, match="matches none of the intents") as info:
        router.invoke(MESSAGES[-1])
    assert info.value.match.intent is None
    results = router.batch(MESSAGES[2:4], return_exceptions=True)
    assert results[0] == EXPECTED[2]
    assert isinstance(results[1], OutOfTopicError)


def test_dict_inputs_with_an_input_key(make_embeddings: MakeEmbeddings) -> None:
    routes = {name: RunnableLambda(lambda d, name=name: (name, d["user"])) for name in EXAMPLES}
    router = PhosphoIntentRouter(
        examples=EXAMPLES, routes=routes, embeddings=make_embeddings(), input_key="question"
    )
    assert router.invoke({"question": "reset my password", "user": "ada"}) == (
        "reset_password",
        "ada",
    )
    with pytest.raises(TypeError, match="key 'question'"):
        router.invoke({"text": "reset my password"})


def test_a_saved_classifier_routes_without_re_embedding(
    make_embeddings: MakeEmbeddings, phospho_emulator: Emulator, tmp_path: Path
) -> None:
    embeddings = make_embeddings()
    trained = PhosphoIntentRouter(examples=EXAMPLES, routes=ROUTES, embeddings=embeddings)
    trained.classifier.save(tmp_path / "intents.npz")
    phospho_emulator.reset_stats()
    router = PhosphoIntentRouter(
        classifier=IntentClassifier.load(tmp_path / "intents.npz"),
        routes=ROUTES,
        embeddings=embeddings,
    )
    assert router.invoke("where is my parcel") == "track_parcel: where is my parcel"
    assert phospho_emulator.stats.requests == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"routes": {"refund": DEFAULT}}, "no route for"),
        ({"routes": {**ROUTES, "extra": DEFAULT}}, "no intent for"),
        ({"routes": ROUTES, "classifier": IntentClassifier({"a": [[1.0]]})}, "exactly one of"),
    ],
)
def test_configuration_errors_are_clear(
    make_embeddings: MakeEmbeddings, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        PhosphoIntentRouter(examples=EXAMPLES, embeddings=make_embeddings(), **kwargs)


def test_rejection_settings_beside_a_classifier_are_refused_not_ignored(
    make_embeddings: MakeEmbeddings,
) -> None:
    classifier = IntentClassifier({name: [[1.0, float(i)]] for i, name in enumerate(EXAMPLES)})
    with pytest.raises(ValueError, match="threshold, margin cannot be given with classifier="):
        PhosphoIntentRouter(
            classifier=classifier,
            routes=ROUTES,
            embeddings=make_embeddings(),
            threshold=0.99,
            margin=0.5,
        )


# -- return_exceptions, per input (issue 15, item 19) -----------------------------------------

TOO_LONG = "word " * 16_000  # over the emulator's 15,000-token limit: a 400 for this text only
BATCH = ["where is my parcel, it is late", "   ", TOO_LONG, 42, "I want my money back"]


def _check_per_input_outcomes(results: list[Any]) -> None:
    assert results[0] == "track_parcel: where is my parcel, it is late"
    assert isinstance(results[1], ValueError)
    assert "inputs[1] is empty" in str(results[1])
    assert isinstance(results[2], BadRequestError)
    assert "Input too long" in str(results[2])
    assert isinstance(results[3], TypeError)
    assert results[4] == "refund: I want my money back"


def test_batch_returns_each_inputs_exception_and_keeps_the_others(
    router: PhosphoIntentRouter, phospho_emulator: Emulator
) -> None:
    phospho_emulator.reset_stats()
    _check_per_input_outcomes(router.batch(BATCH, return_exceptions=True))
    # The two good texts and the long one were sent once each: no vector was thrown away.
    assert phospho_emulator.stats.requests == 3


async def test_abatch_returns_each_inputs_exception_and_keeps_the_others(
    router: PhosphoIntentRouter, phospho_emulator: Emulator
) -> None:
    phospho_emulator.reset_stats()
    _check_per_input_outcomes(await router.abatch(BATCH, return_exceptions=True))
    assert phospho_emulator.stats.requests == 3


async def test_without_return_exceptions_a_bad_input_fails_the_batch_before_any_request(
    router: PhosphoIntentRouter, phospho_emulator: Emulator
) -> None:
    phospho_emulator.reset_stats()
    with pytest.raises(ValueError, match=r"inputs\[1\] is empty"):
        router.batch(BATCH)
    with pytest.raises(ValueError, match=r"inputs\[1\] is empty"):
        await router.abatch(BATCH)
    assert phospho_emulator.stats.requests == 0
    with pytest.raises(BatchEmbeddingError, match="Input too long"):
        router.batch([BATCH[0], TOO_LONG])


def test_a_route_error_stays_with_its_input(make_embeddings: MakeEmbeddings) -> None:
    def refuse(text: str) -> str:
        raise RuntimeError(f"refund desk closed: {text}")

    router = PhosphoIntentRouter(
        examples=EXAMPLES, routes={**ROUTES, "refund": refuse}, embeddings=make_embeddings()
    )
    results = router.batch(["I want my money back", "track my package"], return_exceptions=True)
    assert isinstance(results[0], RuntimeError)
    assert results[1] == "track_parcel: track my package"
