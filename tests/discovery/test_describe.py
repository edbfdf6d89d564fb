"""How intents are described: c-TF-IDF keywords, keyword names, namers (chat models or
functions; concurrent, bounded, never fatal)."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from phospho_embed.discovery import NamingWarning, discover_intents
from phospho_embed.discovery._keywords import Keyword, class_tfidf, keyword_name
from tests.discovery.conftest import sphere_clusters

REFUNDS = ["I want a refund", "refund my order please", "can I get a refund for this"]
PARCELS = ["where is my parcel", "my parcel is late", "the parcel never arrived"]


def test_keywords_are_the_intents_distinctive_words_without_stop_words() -> None:
    texts = [*REFUNDS, *PARCELS, "order refund now"]
    labels = np.array([0, 0, 0, 1, 1, 1, -1])
    keywords = class_tfidf(texts, labels, 2, 3)
    assert keywords[0][0].term == "refund"
    assert keywords[1][0].term == "parcel"
    terms = {keyword.term for intent in keywords for keyword in intent}
    assert not terms & {"i", "my", "is", "the", "a", "for", "can"}  # English stop words
    assert keywords[0][0].occurrences == 3  # the outlier's "refund" is not counted


def test_a_word_used_by_every_intent_ranks_below_distinctive_ones() -> None:
    texts = ["order refund", "order refund", "order parcel", "order parcel"]
    keywords = class_tfidf(texts, np.array([0, 0, 1, 1]), 2, 5)
    for intent, word in ((0, "refund"), (1, "parcel")):
        ranked = [keyword.term for keyword in keywords[intent]]
        assert ranked.index(word) < ranked.index("order")


def test_only_stop_words_give_no_keywords() -> None:
    assert class_tfidf(["it is", "was it"], np.array([0, 0]), 1, 5) == [[]]


def test_keyword_names() -> None:
    def k(term: str, count: int) -> Keyword:
        return Keyword(term, 1.0, count)

    assert keyword_name([k("score", 10), k("credit score", 9), k("rating", 4)], "x") == (
        "credit score, rating"
    )
    assert keyword_name([k("uber", 10), k("need uber", 3), k("people", 3)], "x") == "uber, people"
    assert keyword_name([k("direct deposit", 5), k("deposit", 5), k("direct", 5)], "x") == (
        "direct deposit"
    )
    assert keyword_name([], "intent 3") == "intent 3"


def two_intents() -> tuple[list[str], np.ndarray]:
    vectors, labels = sphere_clusters(2, 12, dim=16, seed=11)
    texts = [REFUNDS[i % 3] if label == 0 else PARCELS[i % 3] for i, label in enumerate(labels)]
    return texts, vectors


def test_a_function_namer_names_from_the_examples() -> None:
    texts, vectors = two_intents()
    seen: list[list[str]] = []

    def namer(examples: list[str]) -> str:
        seen.append(examples)
        return '"Refund request."' if "refund" in examples[0].lower() else "Parcel tracking\nmore"

    found = discover_intents(texts, vectors=vectors, namer=namer, n_examples=3)
    assert sorted(intent.name for intent in found.intents) == ["Parcel tracking", "Refund request"]
    assert all(len(examples) == 3 for examples in seen)
    assert found.naming_errors == {}
    assert {intent.keyword_name for intent in found.intents} == {
        "refund, order, want",
        "parcel, arrived, late",
    }


class FakeChatModel:
    """A LangChain chat model's face: invoke(prompt) returns a message with .content."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.prompts: list[str] = []
        self.fail_on = fail_on

    def invoke(self, prompt: str, *args: Any, **kwargs: Any) -> Any:
        self.prompts.append(prompt)
        if self.fail_on and self.fail_on in prompt:
            raise TimeoutError("the model took too long")

        class Message:
            def __init__(self) -> None:
                self.content = [{"type": "text", "text": "Intent: Track a parcel"}]

        return Message()


def test_a_chat_model_gets_examples_and_keywords() -> None:
    texts, vectors = two_intents()
    model = FakeChatModel()
    found = discover_intents(texts, vectors=vectors, namer=model)
    assert len(model.prompts) == 2
    assert any("- where is my parcel" in prompt for prompt in model.prompts)
    assert any("Frequent keywords: parcel" in prompt for prompt in model.prompts)
    # Both answered the same: names stay unique.
    assert sorted(intent.name for intent in found.intents) == [
        "Track a parcel",
        "Track a parcel #1",
    ]


def test_a_failing_namer_keeps_keyword_names_and_warns_once() -> None:
    texts, vectors = two_intents()
    with pytest.warns(NamingWarning, match="failed for 1 of 2 intents") as caught:
        found = discover_intents(texts, vectors=vectors, namer=FakeChatModel(fail_on="refund"))
    assert len(caught) == 1
    failed = found.intents[next(iter(found.naming_errors))]
    assert failed.name == failed.keyword_name == "refund, order, want"
    assert "TimeoutError: the model took too long" in next(iter(found.naming_errors.values()))
    assert "kept their keyword names" in found.summary()


def test_a_labelled_chatty_answer_gives_the_bare_name() -> None:
    texts, vectors = two_intents()
    found = discover_intents(
        texts,
        vectors=vectors,
        namer=lambda examples: 'Name: "Parcel tracking"\nExplanation: they ask where it is',
    )
    assert {intent.name for intent in found.intents} == {"Parcel tracking", "Parcel tracking #1"}


def test_empty_answers_are_failures() -> None:
    texts, vectors = two_intents()
    with pytest.warns(NamingWarning):
        found = discover_intents(texts, vectors=vectors, namer=lambda examples: "  ")
    assert len(found.naming_errors) == 2
    assert all("empty name" in error for error in found.naming_errors.values())


def test_namer_calls_are_concurrent_and_bounded() -> None:
    vectors, labels = sphere_clusters(6, 10, dim=16, seed=12)
    texts = [f"topic{label} message {i}" for i, label in enumerate(labels)]
    lock = threading.Lock()
    active = peak = 0

    def slow(examples: list[str]) -> str:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        return examples[0].split()[0]

    found = discover_intents(texts, vectors=vectors, namer=slow, max_concurrency=3)
    assert len(found.intents) == 6
    assert peak == 3
