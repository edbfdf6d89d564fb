"""Evaluation against labels, trends and drift over time, gap analysis, classifier export."""

from __future__ import annotations

import importlib.util
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest

from phospho_embed.discovery import discover_intents, evaluate_labels
from phospho_embed.discovery._trend import parse_timestamps, periods
from phospho_embed.intents import IntentClassifier
from tests.discovery.conftest import sphere_clusters, words_for

# -- evaluation ---------------------------------------------------------------------------


def test_a_perfect_clustering_scores_one_whatever_its_ids() -> None:
    report = evaluate_labels(np.array([2, 2, 0, 0, 1, 1]), ["a", "a", "b", "b", "c", "c"])
    assert (report.nmi, report.ari, report.acc, report.coverage) == (1.0, 1.0, 1.0, 1.0)
    assert (report.intents, report.classes) == (3, 3)


def test_accuracy_matches_intents_to_labels_one_to_one() -> None:
    # Intent 0 holds a and b: only one of them can be matched to it (Hungarian matching).
    report = evaluate_labels(np.array([0, 0, 0, 0, 1, 1]), ["a", "a", "b", "b", "c", "c"])
    assert report.acc == pytest.approx(4 / 6)


def test_messages_left_out_count_against_accuracy_and_coverage_only() -> None:
    report = evaluate_labels(np.array([0, 0, -1, 1, 1, -1]), ["a", "a", "a", "b", "b", "b"])
    assert report.acc == pytest.approx(4 / 6)
    assert report.coverage == pytest.approx(4 / 6)
    assert report.nmi == 1.0  # on the messages placed in an intent


def test_evaluate_needs_one_label_per_message() -> None:
    with pytest.raises(ValueError, match="2 labels for 3 messages"):
        evaluate_labels(np.array([0, 1, 1]), ["a", "b"])


# -- time ---------------------------------------------------------------------------------


def test_timestamps_of_every_accepted_kind() -> None:
    parsed = parse_timestamps(
        [
            datetime(2024, 5, 1, 12, 30),
            datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2))),  # 12:30 UTC
            date(2024, 5, 1),
            "2024-05-01T12:30:00Z",
            np.datetime64("2024-05-01T12:30"),
            1_714_566_600,  # 2024-05-01T12:30:00Z
            1_714_566_600.9,
        ]
    )
    assert parsed.astype(str).tolist() == [
        "2024-05-01T12:30:00",
        "2024-05-01T12:30:00",
        "2024-05-01T00:00:00",
        "2024-05-01T12:30:00",
        "2024-05-01T12:30:00",
        "2024-05-01T12:30:00",
        "2024-05-01T12:30:00",
    ]
    with pytest.raises(TypeError, match=r"timestamps\[0\] must be a datetime"):
        parse_timestamps([None])
    with pytest.raises(ValueError, match=r"timestamps\[1\] is NaT"):
        parse_timestamps([np.datetime64("2024-01-01"), np.datetime64("NaT")])


def test_period_labels() -> None:
    times = parse_timestamps(["2024-04-28", "2024-04-29", "2024-05-05", "2024-07-01"])
    assert periods(times, "W")[1][:2] == ["2024-04-22", "2024-04-29"]  # Monday to Sunday
    assert periods(times, "W")[0].tolist()[:3] == [0, 1, 1]
    assert periods(times, "M")[1] == ["2024-04", "2024-05", "2024-06", "2024-07"]
    assert periods(times, "Q") == (pytest.approx(np.array([0, 0, 0, 1])), ["2024-Q2", "2024-Q3"])
    assert periods(times, "Y")[1] == ["2024"]
    with pytest.raises(ValueError, match="freq must be one of H, D, W, M, Q, Y"):
        periods(times, "fortnight")
    with pytest.raises(ValueError, match="choose a longer period"):
        periods(parse_timestamps(["2000-01-01", "2024-01-01"]), "H")


@pytest.fixture
def growing() -> tuple[object, list[str]]:
    """Intent A steady over three days; intent B only on the last day (it appeared)."""
    a, _ = sphere_clusters(1, 30, dim=16, noise=0.1, seed=21)
    b, _ = sphere_clusters(1, 15, dim=16, noise=0.1, seed=22)
    vectors = np.vstack([a, b])
    texts = [f"refund question {i}" for i in range(30)] + [f"parcel late {i}" for i in range(15)]
    days = [f"2024-05-0{1 + i % 3}T09:00:00" for i in range(30)] + ["2024-05-03T10:00:00"] * 15
    found = discover_intents(texts, vectors=vectors, timestamps=days, min_size=5)
    return found, days


def test_trend_counts_shares_and_changes(growing: tuple[object, list[str]]) -> None:
    found, _ = growing
    rows = found.trend(freq="D")  # type: ignore[attr-defined]
    assert [row.period for row in rows][::3] == ["2024-05-01", "2024-05-02", "2024-05-03"]
    parcel = next(intent for intent in found.intents if "parcel" in intent.name)  # type: ignore[attr-defined]
    last = [row for row in rows if row.period == "2024-05-03"]
    counts = {row.intent_id: row.count for row in last}
    assert counts[parcel.id] == 15
    assert sum(counts.values()) == 25
    assert sum(row.share for row in last) == pytest.approx(1.0)
    first = [row for row in rows if row.period == "2024-05-01"]
    assert all(row.change is None for row in first)
    grew = next(row for row in last if row.intent_id == parcel.id)
    assert (grew.change, grew.share_change) == (15, pytest.approx(0.6))
    assert rows.to_dicts()[0]["period"] == "2024-05-01"


def test_drift_finds_the_intent_that_appeared(growing: tuple[object, list[str]]) -> None:
    found, days = growing
    rows = found.drift(days, freq="D")  # type: ignore[attr-defined]
    changes = [abs(row.share_change) for row in rows]
    assert changes == sorted(changes, reverse=True)
    parcel = next(row for row in rows if "parcel" in row.name)
    assert (parcel.before, parcel.after, parcel.status) == (0, 15, "appeared")
    refund = next(row for row in rows if "refund" in row.name)
    assert refund.status == "shrank"  # all of day 2's messages, a minority of day 3's
    compared = found.drift(freq="D", before="2024-05-01", after=datetime(2024, 5, 2, 18))  # type: ignore[attr-defined]
    assert all(row.status == "steady" for row in compared)
    with pytest.raises(ValueError, match="messages in two periods"):
        found.drift(freq="M")  # type: ignore[attr-defined]


def test_trend_needs_timestamps() -> None:
    vectors, labels = sphere_clusters(2, 10, dim=8, seed=23)
    found = discover_intents(words_for(labels), vectors=vectors)
    with pytest.raises(ValueError, match="no timestamps"):
        found.trend()
    with pytest.raises(ValueError, match="got 2 timestamps for 20 messages"):
        found.trend(["2024-01-01", "2024-01-02"])


def test_tables_convert_to_pandas_when_installed() -> None:
    vectors, labels = sphere_clusters(2, 10, dim=8, seed=24)
    found = discover_intents(words_for(labels), vectors=vectors, timestamps=["2024-01-01"] * 20)
    rows = found.trend(freq="M")
    if importlib.util.find_spec("pandas") is None:
        with pytest.raises(ImportError, match="pip install pandas"):
            rows.to_pandas()
    else:
        frame = rows.to_pandas()
        assert list(frame.columns)[:3] == ["period", "intent_id", "name"]
        assert len(frame) == len(rows)


# -- gap analysis and the classifier --------------------------------------------------------


def test_gap_analysis_clusters_only_what_known_intents_reject() -> None:
    vectors, labels = sphere_clusters(4, 25, dim=24, noise=0.2, seed=25)
    texts = [f"topic{label} text {i}" for i, label in enumerate(labels)]
    covered = {"first": vectors[labels == 0][:5], "second": vectors[labels == 1][:5]}
    known = IntentClassifier(covered, threshold=0.6, center=False)
    found = discover_intents(texts, vectors=vectors, known=known, outlier_threshold=None)
    assert found.known_counts() == {"first": 25, "second": 25}
    assert found.covered_by_known == 50
    assert len(found.intents) == 2
    assert sorted(intent.size for intent in found.intents) == [25, 25]
    assert set(found.labels[labels < 2].tolist()) == {-1}  # covered ones are in no new intent
    assert found.outliers.size == 0
    assert found.coverage == 1.0
    assert "covered by 2 known intents" in found.summary()
    assert (found.assign(vectors) == found.labels).all()
    report = found.evaluate(labels.tolist())  # known and new intents together
    assert (report.acc, report.intents) == (1.0, 4)


def test_to_classifier_classifies_into_the_discovered_intents() -> None:
    vectors, labels = sphere_clusters(3, 20, dim=24, noise=0.2, seed=26)
    found = discover_intents(words_for(labels), vectors=vectors)
    classifier = found.to_classifier(examples_per_intent=5)
    assert classifier.intents_ == [intent.name for intent in found.intents]
    predicted = [match.intent for match in classifier.classify_vectors(vectors)]
    assert predicted == [found.intents[label].name for label in found.labels]
    with pytest.raises(ValueError, match="examples_per_intent must be >= 1"):
        found.to_classifier(examples_per_intent=0)
