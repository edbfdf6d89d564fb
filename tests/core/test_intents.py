"""The intent classifier: embedding examples once, rejection rules, fit/evaluate, save/load,
sync and async, through the emulator where texts are embedded."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from phospho_embed import AsyncPhosphoClient, PhosphoClient
from phospho_embed.demo_data import EXAMPLES, LABELLED, MESSAGES
from phospho_embed.emulator import Emulator, emulator_vector
from phospho_embed.intents import IntentClassifier

# The demo's messages match their intents by meaning, not wording: semantic vectors.
pytestmark = pytest.mark.usefixtures("semantic_vectors")
TEXTS = [text for text, _ in LABELLED]
LABELS = [intent for _, intent in LABELLED]


@pytest.fixture
def client(emulator: Emulator) -> PhosphoClient:
    return PhosphoClient(api_key="k", base_url=emulator.base_url)


@pytest.fixture
def classifier(client: PhosphoClient) -> IntentClassifier:
    return IntentClassifier.from_examples(EXAMPLES, client=client)


def unit(*values: float) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


# Three intents on the axes of a 3-d space: easy to reason about by hand.
AXES = {"a": [unit(1, 0, 0)], "b": [unit(0, 1, 0)], "c": [unit(0, 0, 1)]}


def test_examples_are_embedded_once_concurrently(emulator: Emulator, client: PhosphoClient) -> None:
    emulator.configure(latency=0.02)
    examples = {**EXAMPLES, "duplicate": ["I want a refund"]}  # also in "refund"
    IntentClassifier.from_examples(examples, client=client)
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


def test_a_threshold_rejects_out_of_topic_without_fall_through() -> None:
    classifier = IntentClassifier(AXES, center=False, threshold=0.5, thresholds={"a": 0.9})
    close_to_a = unit(0.8, 0.6, 0)  # a scores 0.8 (< its 0.9), b scores 0.6 (>= 0.5)
    match = classifier.classify_vectors([close_to_a])[0]
    assert match.top == "a"
    assert match.intent is None  # not "b": a failing top intent means out of topic
    assert match.out_of_topic
    assert classifier.classify_vectors([unit(0, 0.8, 0.6)])[0].intent == "b"


def test_a_margin_rejects_ambiguous_texts() -> None:
    classifier = IntentClassifier(AXES, center=False, margin=0.2)
    [ambiguous, clear] = classifier.classify_vectors([unit(1, 0.95, 0), unit(1, 0.2, 0)])
    assert ambiguous.top == "a"
    assert ambiguous.intent is None
    assert ambiguous.margin < 0.2
    assert clear.intent == "a"


@pytest.mark.parametrize("aggregation", ["top_k_mean", "max", "centroid"])
def test_aggregations_score_as_documented(aggregation: str) -> None:
    examples = {"x": [unit(1, 0), unit(0.6, 0.8)], "y": [unit(0, 1)]}
    classifier = IntentClassifier(examples, center=False, aggregation=aggregation, top_k=2)  # type: ignore[arg-type]
    score = classifier.classify_vectors([unit(1, 0)])[0].scores["x"]
    expected = {"top_k_mean": (1 + 0.6) / 2, "max": 1.0, "centroid": unit(1.6, 0.8)[0]}
    assert score == pytest.approx(expected[aggregation], abs=1e-6)


def test_fit_chooses_thresholds_that_reject_out_of_topic(
    classifier: IntentClassifier,
) -> None:
    before = classifier.evaluate(TEXTS, LABELS)
    assert before.oos_recall == 0.0  # no threshold yet: everything gets an intent
    report = classifier.fit(TEXTS, LABELS)
    assert classifier.threshold is not None
    assert report.oos_recall >= 0.8
    assert report.accuracy > before.accuracy
    again = classifier.fit(TEXTS, LABELS)  # deterministic
    assert (again.threshold, again.thresholds, again.margin) == (
        report.threshold,
        report.thresholds,
        report.margin,
    )
    out_of_topic = classifier.classify_many(MESSAGES)
    assert [m.intent is None for m in out_of_topic] == [
        False,
        False,
        False,
        True,
        False,
        False,
        True,
    ]


def test_evaluate_reports_figures_and_changes_nothing() -> None:
    classifier = IntentClassifier(AXES, center=False, threshold=0.7)
    vectors = [
        unit(1, 0, 0),
        unit(0.9, 0.1, 0),
        unit(0, 1, 0),
        unit(0.5, 0.5, 0.5),
        unit(0.1, 1, 0),
    ]
    labels = ["a", "b", "b", None, None]
    report = classifier.evaluate_vectors(vectors, labels)
    # predictions: a, a, b, None (0.577 < 0.7), b
    assert report.size == 5
    assert report.accuracy == pytest.approx(3 / 5)
    assert report.in_scope_accuracy == pytest.approx(2 / 3)
    assert report.oos_recall == pytest.approx(1 / 2)
    assert report.oos_precision == pytest.approx(1.0)
    assert report.per_intent["a"].precision == pytest.approx(1 / 2)
    assert report.per_intent["b"].recall == pytest.approx(1 / 2)
    assert report.per_intent["b"].support == 2
    assert set(report.confusions) == {("b", "a", 1), (None, "b", 1)}
    assert classifier.threshold == 0.7
    assert report.threshold == 0.7
    assert "accuracy 60.0%" in str(report)


def test_fit_finds_per_intent_thresholds() -> None:
    # A 4th axis belongs to no intent: a text at (s, 0, 0, sqrt(1 - s^2)) scores s on "a".
    examples = {"a": [[1.0, 0, 0, 0]], "b": [[0, 1.0, 0, 0]], "c": [[0, 0, 1.0, 0]]}
    classifier = IntentClassifier(examples, center=False)
    vectors, labels = [], []
    # "a" texts score 0.95 in scope and 0.75 out of it; "b" texts 0.7 and 0.4: no single
    # global threshold separates both.
    for axis, score, label in [(0, 0.95, "a"), (0, 0.75, None), (1, 0.7, "b"), (1, 0.4, None)]:
        for jitter in range(10):
            value = score + jitter * 1e-3
            vector = [0.0, 0.0, 0.0, math.sqrt(1 - value * value)]
            vector[axis] = value
            vectors.append(vector)
            labels.append(label)
    report = classifier.fit_vectors(vectors, labels)
    assert report.accuracy == 1.0
    assert 0.76 < classifier.thresholds["a"] < 0.95
    assert 0.41 < classifier.thresholds["b"] < 0.7
    without = IntentClassifier(examples, center=False).fit_vectors(
        vectors, labels, per_intent=False
    )
    assert without.accuracy == 0.75


async def test_async_classification_and_fit(emulator: Emulator) -> None:
    emulator.configure(latency=0.02)
    async with AsyncPhosphoClient(api_key="k", base_url=emulator.base_url) as aclient:
        classifier = await IntentClassifier.afrom_examples(EXAMPLES, client=aclient)
        report = await classifier.afit(TEXTS, LABELS)
        assert report.oos_recall >= 0.8
        match = await classifier.aclassify("please cancel the order")
        assert match.intent == "cancel_order"
        emulator.reset_stats()
        matches = await classifier.aclassify_many(MESSAGES)
    assert [m.intent is None for m in matches].count(True) == 2
    assert emulator.stats.requests == len(MESSAGES)
    assert emulator.stats.peak_in_flight > 1


async def test_a_sync_client_also_serves_the_async_methods(
    classifier: IntentClassifier,
) -> None:
    assert (await classifier.aclassify("track my package")).intent == "track_parcel"


def test_save_and_load_without_re_embedding(
    classifier: IntentClassifier, client: PhosphoClient, emulator: Emulator, tmp_path: Path
) -> None:
    classifier.fit(TEXTS, LABELS)
    path = tmp_path / "support-intents.npz"
    classifier.save(path)
    emulator.reset_stats()
    loaded = IntentClassifier.load(path, client=client)
    assert emulator.stats.requests == 0  # the examples were not embedded again
    assert (loaded.threshold, loaded.thresholds, loaded.margin) == (
        classifier.threshold,
        classifier.thresholds,
        classifier.margin,
    )
    assert loaded.classify_many(MESSAGES) == classifier.classify_many(MESSAGES)


def test_load_refuses_another_model_or_dimension(
    classifier: IntentClassifier, emulator: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "intents.npz"
    classifier.save(path)
    other_model = PhosphoClient(api_key="k", base_url=emulator.base_url, model="other-embed")
    with pytest.raises(ValueError, match="built with model 'intent-embed', not 'other-embed'"):
        IntentClassifier.load(path, client=other_model)
    emulator.configure(dimensions=64)
    small = PhosphoClient(api_key="k", base_url=emulator.base_url)
    small.embed("learn the dimension")
    with pytest.raises(ValueError, match=r"1536-dimensional vectors, but .* 64-dimensional"):
        IntentClassifier.load(path, client=small)
    loaded = IntentClassifier.load(
        path, client=PhosphoClient(api_key="k", base_url=emulator.base_url)
    )
    with pytest.raises(ValueError, match="64 dimensions, but this classifier was built from 1536"):
        loaded.classify("a text embedded by a 64-dimensional model")
    (tmp_path / "junk.npz").write_bytes(b"not a classifier")
    with pytest.raises(ValueError, match="not a saved IntentClassifier"):
        IntentClassifier.load(tmp_path / "junk.npz")


def test_bad_examples_and_labels_are_named(client: PhosphoClient, emulator: Emulator) -> None:
    with pytest.raises(ValueError, match=r"examples\['refund'\]\[1\] is empty"):
        IntentClassifier.from_examples({"refund": ["money back", "  "]}, client=client)
    with pytest.raises(TypeError, match=r"examples\['refund'\] must be a list"):
        IntentClassifier.from_examples({"refund": "money back"}, client=client)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="examples is empty"):
        IntentClassifier({})
    assert emulator.stats.requests == 0
    classifier = IntentClassifier(AXES)
    with pytest.raises(ValueError, match=r"intents\[1\] is 'z', which is not one of"):
        classifier.evaluate_vectors([unit(1, 0, 0)] * 2, ["a", "z"])
    with pytest.raises(ValueError, match="got 2 texts but 1 intents"):
        classifier.fit_vectors([unit(1, 0, 0)] * 2, ["a"])
    with pytest.raises(ValueError, match="unknown intents"):
        IntentClassifier(AXES, thresholds={"nope": 0.5})


def test_vectors_only_classifier_explains_how_to_classify_text() -> None:
    classifier = IntentClassifier(AXES)
    with pytest.raises(TypeError, match="needs a PhosphoClient"):
        classifier.classify("hello")


def test_centering_uses_the_emulators_real_vectors(classifier: IntentClassifier) -> None:
    # The same text as an example is its own best match, centred or not.
    vector = emulator_vector("track my package", 1536)
    assert classifier.classify_vectors([vector])[0].top == "track_parcel"
