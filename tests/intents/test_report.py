"""`evaluate` and `IntentReport`: the figures, in phospho's words (out of topic)."""

from __future__ import annotations

import pytest

from phospho_embed.intents import IntentClassifier
from tests.intents.toy import AXES, unit

VECTORS = [unit(1, 0, 0), unit(0.9, 0.1, 0), unit(0, 1, 0), unit(0.5, 0.5, 0.5), unit(0.1, 1, 0)]
LABELS = ["a", "b", "b", None, None]


def test_evaluate_reports_figures_and_changes_nothing() -> None:
    classifier = IntentClassifier(AXES, center=False, threshold=0.7)
    report = classifier.evaluate_vectors(VECTORS, LABELS)
    # predictions: a, a, b, None (0.577 < 0.7), b
    assert report.size == 5
    assert report.accuracy == pytest.approx(3 / 5)
    assert report.on_topic_accuracy == pytest.approx(2 / 3)
    assert report.out_of_topic_recall == pytest.approx(1 / 2)
    assert report.out_of_topic_precision == pytest.approx(1.0)
    assert report.per_intent["a"].precision == pytest.approx(1 / 2)
    assert report.per_intent["b"].recall == pytest.approx(1 / 2)
    assert report.per_intent["b"].support == 2
    assert set(report.confusions) == {("b", "a", 1), (None, "b", 1)}
    assert classifier.threshold_ == 0.7
    assert report.threshold == 0.7
    assert classifier.fit_report_ is None


def test_the_report_says_out_of_topic() -> None:
    report = IntentClassifier(AXES, center=False, threshold=0.7).evaluate_vectors(VECTORS, LABELS)
    text = str(report)
    assert text.splitlines()[0] == (
        "5 texts: accuracy 60.0%, on-topic accuracy 66.7%, out-of-topic recall 50.0%, "
        "precision 100.0%"
    )
    assert "1 x (out of topic) -> b" in text
    assert "scope" not in text


def test_the_former_report_names_still_read_with_a_warning() -> None:
    report = IntentClassifier(AXES, center=False, threshold=0.7).evaluate_vectors(VECTORS, LABELS)
    for old, new in [
        ("oos_recall", "out_of_topic_recall"),
        ("oos_precision", "out_of_topic_precision"),
        ("in_scope_accuracy", "on_topic_accuracy"),
    ]:
        with pytest.warns(DeprecationWarning, match=f"use IntentReport.{new}"):
            assert getattr(report, old) == getattr(report, new)
