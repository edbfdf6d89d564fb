"""`IntentClassifier` on texts: examples embedded once, classification sync and async,
through every kind of encoder (core clients, LangChain, LlamaIndex), over the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import pytest
from pydantic import SecretStr

from langchain_phospho import PhosphoEmbeddings
from llama_index_phospho import PhosphoEmbedding
from phospho_embed import AsyncPhosphoClient, PhosphoClient
from phospho_embed.demo_data import EXAMPLES, LABELLED, MESSAGES
from phospho_embed.emulator import Emulator, emulator_vector
from phospho_embed.intents import IntentClassifier
from tests.intents.toy import AXES, unit

TEXTS = [text for text, _ in LABELLED]
LABELS = [intent for _, intent in LABELLED]
# Which of the demo's MESSAGES are out of topic.
OUT_OF_TOPIC = [False, False, False, True, False, False, True]


def test_examples_are_embedded_once_concurrently(emulator: Emulator, client: PhosphoClient) -> None:
    emulator.configure(latency=0.02)
    examples = {**EXAMPLES, "duplicate": ["I want a refund"]}  # also in "refund"
    IntentClassifier.from_examples(examples, client)
    distinct = {t for utterances in examples.values() for t in utterances}
    assert emulator.stats.requests == len(distinct)
    assert emulator.stats.peak_in_flight > 1


def test_classify_picks_the_intent(classifier: IntentClassifier, emulator: Emulator) -> None:
    emulator.reset_stats()
    match = classifier.classify("where is my parcel, it is late")
    assert match.intent == match.top == "track_parcel"
    assert set(match.scores) == set(EXAMPLES)
    assert match.score == max(match.scores.values())
    second = sorted(match.scores.values())[-2]
    assert match.margin == pytest.approx(match.score - second)
    assert emulator.stats.requests == 1


def test_classify_many_is_one_concurrent_call(
    classifier: IntentClassifier, emulator: Emulator
) -> None:
    emulator.reset(latency=0.02)
    matches = classifier.classify_many(MESSAGES)
    assert [m.top for m in matches][:3] == ["cancel_order", "track_parcel", "refund"]
    assert emulator.stats.requests == len(MESSAGES)
    assert emulator.stats.peak_in_flight > 1
    assert classifier.classify_many([]) == []
    assert emulator.stats.requests == len(MESSAGES)


async def test_async_classification_and_fit(emulator: Emulator, semantic_vectors: Emulator) -> None:
    emulator.configure(latency=0.02)
    async with AsyncPhosphoClient(api_key="k", base_url=emulator.base_url) as aclient:
        classifier = await IntentClassifier.afrom_examples(EXAMPLES, aclient)
        assert await classifier.afit(TEXTS, LABELS) is classifier
        assert classifier.fit_report_ is not None
        assert classifier.fit_report_.out_of_topic_recall >= 0.8
        match = await classifier.aclassify("please cancel the order")
        assert match.intent == "cancel_order"
        emulator.reset_stats()
        matches = await classifier.aclassify_many(MESSAGES)
    assert [m.intent is None for m in matches] == OUT_OF_TOPIC
    assert emulator.stats.requests == len(MESSAGES)
    assert emulator.stats.peak_in_flight > 1


async def test_a_sync_client_also_serves_the_async_methods(
    classifier: IntentClassifier,
) -> None:
    assert (await classifier.aclassify("track my package")).intent == "track_parcel"


def test_an_async_client_serves_the_sync_methods_outside_a_loop(
    emulator: Emulator, semantic_vectors: Emulator
) -> None:
    aclient = AsyncPhosphoClient(api_key="k", base_url=emulator.base_url)
    classifier = IntentClassifier.from_examples(EXAMPLES, aclient)
    assert classifier.classify("track my package").intent == "track_parcel"
    asyncio.run(aclient.aclose())


def _langchain(emulator: Emulator) -> PhosphoEmbeddings:
    return PhosphoEmbeddings(api_key=SecretStr("k"), base_url=emulator.base_url)


def _llama_index(emulator: Emulator) -> PhosphoEmbedding:
    return PhosphoEmbedding(api_key=SecretStr("k"), base_url=emulator.base_url)


@pytest.mark.parametrize("make", [_langchain, _llama_index], ids=["langchain", "llama-index"])
async def test_framework_embedders_are_encoders(
    make: Callable[[Emulator], PhosphoEmbeddings | PhosphoEmbedding],
    classifier: IntentClassifier,
    emulator: Emulator,
) -> None:
    encoder = make(emulator)  # typed: mypy checks that both adapters are an Encoder
    framed = IntentClassifier.from_examples(EXAMPLES, encoder=encoder)
    assert framed.encoder is encoder
    np.testing.assert_allclose(framed.example_vectors_, classifier.example_vectors_, atol=1e-6)
    assert framed.fit(TEXTS, LABELS) is framed
    assert framed.fit_report_ is not None
    assert classifier.fit(TEXTS, LABELS).threshold_ == pytest.approx(framed.threshold_)
    assert [m.intent is None for m in framed.classify_many(MESSAGES)] == OUT_OF_TOPIC
    emulator.reset_stats()
    assert (await framed.aclassify("please cancel the order")).intent == "cancel_order"
    assert (await framed.aevaluate(TEXTS, LABELS)).accuracy == framed.fit_report_.accuracy
    assert emulator.stats.requests == 1 + len(TEXTS)
    encoder.close()


def test_client_is_the_former_name_of_encoder(client: PhosphoClient) -> None:
    assert IntentClassifier(AXES, client=client).encoder is client
    with pytest.raises(TypeError, match="encoder= or client="):
        IntentClassifier(AXES, encoder=client, client=client)
    with pytest.raises(TypeError, match="LangChain Embeddings"):
        IntentClassifier(AXES, encoder=object())  # type: ignore[arg-type]


def test_vectors_only_classifier_explains_how_to_classify_text() -> None:
    classifier = IntentClassifier(AXES)
    with pytest.raises(TypeError, match=r"needs an encoder.*classify_vectors"):
        classifier.classify("hello")


def test_bad_examples_and_labels_are_named(client: PhosphoClient, emulator: Emulator) -> None:
    with pytest.raises(ValueError, match=r"examples\['refund'\]\[1\] is empty"):
        IntentClassifier.from_examples({"refund": ["money back", "  "]}, client)
    with pytest.raises(TypeError, match=r"examples\['refund'\] must be a list"):
        IntentClassifier.from_examples({"refund": "money back"}, client)
    with pytest.raises(ValueError, match="examples is empty"):
        IntentClassifier({})
    with pytest.raises(ValueError, match=r"examples\['b'\] are 2-dimensional but"):
        IntentClassifier({"a": [[1.0, 0.0, 0.0]], "b": [[0.0, 1.0]]})
    with pytest.raises(ValueError, match=r"examples\['a'\]\[0\] holds a NaN"):
        IntentClassifier({"a": [[float("nan"), 1.0]]})
    classifier = IntentClassifier(AXES, encoder=client)
    # A label mismatch is found before the texts are embedded (and paid for).
    with pytest.raises(ValueError, match="got 2 texts but 1 intents"):
        classifier.fit(["track my parcel", "refund me"], ["a"])
    with pytest.raises(ValueError, match=r"intents\[1\] is 'z', which is not one of"):
        classifier.evaluate(["track my parcel", "refund me"], ["a", "z"])
    assert emulator.stats.requests == 0
    with pytest.raises(ValueError, match="unknown intents"):
        IntentClassifier(AXES, thresholds={"nope": 0.5})


def test_learned_values_end_with_an_underscore() -> None:
    examples = {"a": [unit(1, 0, 0), unit(1, 1, 0)], "b": [unit(0, 1, 1)]}
    classifier = IntentClassifier(examples, threshold=0.3, thresholds={"a": 0.5}, margin=0.1)
    assert classifier.intents_ == ["a", "b"]
    assert classifier.example_vectors_.shape == (3, 3)
    np.testing.assert_allclose(classifier.mean_, np.mean(classifier.example_vectors_, axis=0))
    assert classifier.centroids_.shape == (2, 3)
    np.testing.assert_allclose(np.linalg.norm(classifier.centroids_, axis=1), 1.0, rtol=1e-6)
    # The arguments give the rejection settings in effect until fit chooses others.
    assert (classifier.threshold_, classifier.thresholds_, classifier.margin_) == (
        0.3,
        {"a": 0.5},
        0.1,
    )
    assert classifier.fit_report_ is None
    vectors = [unit(1, 0.1, 0), unit(0, 1, 1), unit(-1, 0, 0)]
    assert classifier.fit_vectors(vectors, ["a", "b", None], per_intent=False) is classifier
    assert classifier.threshold_ != 0.3
    assert classifier.fit_report_ is not None
    assert classifier.fit_report_.size == 3
    uncentred = IntentClassifier(examples, center=False)
    assert not uncentred.mean_.any()


def test_the_former_names_still_read_with_a_warning() -> None:
    classifier = IntentClassifier(AXES, threshold=0.4, margin=0.1)
    for old, new in [
        ("intents", "intents_"),
        ("threshold", "threshold_"),
        ("thresholds", "thresholds_"),
        ("margin", "margin_"),
    ]:
        with pytest.warns(DeprecationWarning, match=f"use IntentClassifier.{new}"):
            assert getattr(classifier, old) == getattr(classifier, new)


def test_centering_uses_the_emulators_real_vectors(classifier: IntentClassifier) -> None:
    # The same text as an example is its own best match, centred or not.
    vector = emulator_vector("track my package", 1536)
    assert classifier.classify_vectors([vector])[0].top == "track_parcel"
