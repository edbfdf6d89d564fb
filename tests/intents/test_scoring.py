"""How texts are scored and rejected, on hand-made vectors (no request)."""

from __future__ import annotations

import pytest

from phospho_embed.intents import Aggregation, IntentClassifier
from tests.intents.toy import AXES, unit


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


def test_rejection_settings_set_by_hand_apply_at_once() -> None:
    classifier = IntentClassifier(AXES, center=False)
    vector = unit(0, 0.8, 0.6)  # b 0.8, c 0.6
    assert classifier.classify_vectors([vector])[0].intent == "b"
    classifier.margin_ = 0.25
    assert classifier.classify_vectors([vector])[0].intent is None


@pytest.mark.parametrize("aggregation", ["top_k_mean", "max", "centroid"])
def test_aggregations_score_as_documented(aggregation: Aggregation) -> None:
    examples = {"x": [unit(1, 0), unit(0.6, 0.8)], "y": [unit(0, 1)]}
    classifier = IntentClassifier(examples, center=False, aggregation=aggregation, top_k=2)
    score = classifier.classify_vectors([unit(1, 0)])[0].scores["x"]
    expected = {"top_k_mean": (1 + 0.6) / 2, "max": 1.0, "centroid": unit(1.6, 0.8)[0]}
    assert score == pytest.approx(expected[aggregation], abs=1e-6)


def test_score_vectors_is_texts_by_intents() -> None:
    classifier = IntentClassifier(AXES, center=False)
    scores = classifier.score_vectors([unit(1, 0, 0), unit(0, 0, 1)])
    assert scores.shape == (2, 3)
    assert scores[0].tolist() == pytest.approx([1, 0, 0])
    assert scores[1].tolist() == pytest.approx([0, 0, 1])
    assert classifier.score_vectors([]).shape == (0, 3)
    assert classifier.classify_vectors([]) == []


@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        ([[1.0, 0.0]], "2 dimensions, but this classifier was built from 3"),
        ([[1.0, float("inf"), 0.0]], r"vectors\[0\] holds a NaN or infinite value"),
        ([[1.0, 0.0, 0.0], [1.0]], r"vectors\[1\] has 1 values"),
    ],
)
def test_bad_vectors_are_named(vectors: list[list[float]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IntentClassifier(AXES).classify_vectors(vectors)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"aggregation": "mean"}, "aggregation must be one of top_k_mean, max, centroid"),
        ({"top_k": 0}, "top_k must be an int >= 1"),
        ({"top_k": True}, "top_k must be an int >= 1"),
    ],
)
def test_bad_settings_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IntentClassifier(AXES, **options)  # type: ignore[arg-type]
