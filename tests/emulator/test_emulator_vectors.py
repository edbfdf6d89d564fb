"""The emulator's vectors: deterministic unit vectors; lexical ones follow wording."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from phospho_embed.emulator import count_tokens, emulator_vector
from tests.helpers import VECTOR_KINDS


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("vectors", VECTOR_KINDS)
def test_same_text_same_unit_vector_of_1536_floats(vectors: str) -> None:
    first = emulator_vector("I want to cancel my order", vectors=vectors)
    second = emulator_vector("I want to cancel my order", vectors=vectors)

    assert first == second
    assert len(first) == 1536
    assert all(isinstance(value, float) for value in first)
    assert math.isclose(math.fsum(v * v for v in first), 1.0, rel_tol=1e-9)


@pytest.mark.parametrize("vectors", VECTOR_KINDS)
def test_vectors_are_the_same_in_another_process_with_another_hash_seed(vectors: str) -> None:
    code = "import json; from phospho_embed.emulator import emulator_vector; " + (
        f"print(json.dumps(emulator_vector('refund my last payment please', 64, {vectors!r})))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout

    assert json.loads(out) == emulator_vector("refund my last payment please", 64, vectors)


def test_lexical_shared_words_give_closer_vectors_than_unrelated_text() -> None:
    def vec(text: str) -> list[float]:
        return emulator_vector(text, vectors="lexical")

    query = vec("I want to cancel my order")
    paraphrase = vec("please cancel my order now")
    unrelated = vec("what is the weather like in Paris tomorrow")

    assert cosine(query, paraphrase) > 0.4
    assert abs(cosine(query, unrelated)) < 0.15
    assert cosine(query, paraphrase) > cosine(query, unrelated) + 0.3


def test_lexical_word_pieces_make_inflections_neighbours() -> None:
    def vec(text: str) -> list[float]:
        return emulator_vector(text, vectors="lexical")

    base = vec("cancelled")

    assert cosine(base, vec("cancel")) > cosine(base, vec("banana")) + 0.2


@pytest.mark.parametrize("vectors", VECTOR_KINDS)
def test_different_texts_give_different_vectors(vectors: str) -> None:
    assert emulator_vector("cancel my order", vectors=vectors) != emulator_vector(
        "track my order", vectors=vectors
    )


@pytest.mark.parametrize("vectors", VECTOR_KINDS)
@pytest.mark.parametrize("text", ["", " ", "\n\t ", "?!", "\ud800 lone surrogate"])
def test_degenerate_texts_still_get_a_fixed_unit_vector(text: str, vectors: str) -> None:
    vector = emulator_vector(text, vectors=vectors)

    assert vector == emulator_vector(text, vectors=vectors)
    assert all(math.isfinite(v) for v in vector)
    assert math.isclose(math.fsum(v * v for v in vector), 1.0, rel_tol=1e-9)


@pytest.mark.parametrize("dimensions", [1, 2, 3, 7, 100, 1536, 3072])
def test_lexical_vectors_have_any_size(dimensions: int) -> None:
    for text in ("a", "a b", "I want to cancel my order", ""):
        vector = emulator_vector(text, dimensions, vectors="lexical")
        assert len(vector) == dimensions
        assert math.isclose(math.fsum(v * v for v in vector), 1.0, rel_tol=1e-9)


@pytest.mark.parametrize("vectors", VECTOR_KINDS)
def test_the_returned_list_is_a_copy(vectors: str) -> None:
    vector = emulator_vector("copy me", 64, vectors)
    vector[0] = 42.0

    assert emulator_vector("copy me", 64, vectors)[0] != 42.0


@pytest.mark.parametrize("dimensions", [0, -1, True, 2.0])
def test_invalid_dimensions_are_rejected(dimensions: object) -> None:
    with pytest.raises(ValueError, match="dimensions"):
        emulator_vector("a", dimensions, vectors="lexical")  # type: ignore[arg-type]  # on purpose


def test_an_unknown_kind_of_vectors_is_rejected() -> None:
    with pytest.raises(ValueError, match="vectors must be one of 'auto', 'semantic', 'lexical'"):
        emulator_vector("a", vectors="dense")


def test_non_string_text_is_rejected() -> None:
    with pytest.raises(TypeError, match="str"):
        emulator_vector(b"bytes")  # type: ignore[arg-type]  # wrong type, on purpose


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", 1), ("   ", 1), ("hello", 1), ("Hello, world!", 4), ("don't stop", 4)],
)
def test_count_tokens_counts_words_and_punctuation(text: str, expected: int) -> None:
    assert count_tokens(text) == expected
