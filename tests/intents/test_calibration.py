"""`fit`: the rejection settings chosen on labelled texts."""

from __future__ import annotations

import math

import pytest

from phospho_embed.demo_data import LABELLED, MESSAGES
from phospho_embed.intents import IntentClassifier
from tests.intents.toy import AXES, unit

TEXTS = [text for text, _ in LABELLED]
LABELS = [intent for _, intent in LABELLED]


def test_fit_chooses_thresholds_that_reject_out_of_topic(classifier: IntentClassifier) -> None:
    before = classifier.evaluate(TEXTS, LABELS)
    assert before.out_of_topic_recall == 0.0  # no threshold yet: everything gets an intent
    assert classifier.fit(TEXTS, LABELS) is classifier
    report = classifier.fit_report_
    assert report is not None
    assert classifier.threshold_ is not None
    assert report.threshold == classifier.threshold_
    assert report.out_of_topic_recall >= 0.8
    assert report.accuracy > before.accuracy
    chosen = (classifier.threshold_, classifier.thresholds_, classifier.margin_)
    classifier.fit(TEXTS, LABELS)  # deterministic
    assert (classifier.threshold_, classifier.thresholds_, classifier.margin_) == chosen
    out_of_topic = [m.intent is None for m in classifier.classify_many(MESSAGES)]
    assert out_of_topic == [False, False, False, True, False, False, True]


def test_fit_finds_per_intent_thresholds() -> None:
    # A 4th axis belongs to no intent: a text at (s, 0, 0, sqrt(1 - s^2)) scores s on "a".
    examples = {"a": [[1.0, 0, 0, 0]], "b": [[0, 1.0, 0, 0]], "c": [[0, 0, 1.0, 0]]}
    vectors, labels = [], []
    # "a" texts score 0.95 on topic and 0.75 out of it; "b" texts 0.7 and 0.4: no single
    # global threshold separates both.
    for axis, score, label in [(0, 0.95, "a"), (0, 0.75, None), (1, 0.7, "b"), (1, 0.4, None)]:
        for jitter in range(10):
            value = score + jitter * 1e-3
            vector = [0.0, 0.0, 0.0, math.sqrt(1 - value * value)]
            vector[axis] = value
            vectors.append(vector)
            labels.append(label)
    classifier = IntentClassifier(examples, center=False).fit_vectors(vectors, labels)
    assert classifier.fit_report_ is not None
    assert classifier.fit_report_.accuracy == 1.0
    assert 0.76 < classifier.thresholds_["a"] < 0.95
    assert 0.41 < classifier.thresholds_["b"] < 0.7
    without = IntentClassifier(examples, center=False)
    without.fit_vectors(vectors, labels, per_intent=False)
    assert without.thresholds_ == {}
    assert without.evaluate_vectors(vectors, labels).accuracy == 0.75


def test_fit_needs_labelled_texts() -> None:
    classifier = IntentClassifier(AXES)
    with pytest.raises(ValueError, match="at least one labelled text"):
        classifier.fit_vectors([], [])
    with pytest.raises(ValueError, match="got 2 texts but 1 intents"):
        classifier.fit_vectors([unit(1, 0, 0)] * 2, ["a"])
    with pytest.raises(TypeError, match="not one string"):
        classifier.fit_vectors([unit(1, 0, 0)], "a")
