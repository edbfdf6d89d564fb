"""`BatchResults`: the one definition of a partial result, for a call sent in parts."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phospho_embed import (
    AuthenticationError,
    BatchEmbeddingError,
    BatchResults,
    PhosphoError,
    ServerError,
)


def vector(text: str) -> list[float]:
    return [float(len(text)), 1.0]


def refused() -> AuthenticationError:
    return AuthenticationError("401 Unauthorized", status_code=401)


def test_parts_that_all_succeed_give_the_vectors_in_input_order() -> None:
    texts = ["a", "bb", "a", "ccc"]
    results = BatchResults(texts)
    results.add(["ccc"], [vector("ccc")])
    results.add(["a", "bb"], [vector("a"), vector("bb")])
    out = results.result()
    assert out == [vector(t) for t in texts]
    assert out[0] is not out[2]  # a repeat gets its own copy


def test_a_failed_part_keeps_the_other_parts_vectors_indexed_by_the_whole_call() -> None:
    texts = ["a", "b", "c", "d"]
    results = BatchResults(texts)
    results.add(["a", "b"], [vector("a"), vector("b")])
    partial = BatchEmbeddingError([vector("c"), None], {1: ServerError("503", status_code=503)})
    results.add(["c", "d"], partial)
    with pytest.raises(BatchEmbeddingError) as info:
        results.result()
    assert info.value.embeddings == [vector("a"), vector("b"), vector("c"), None]
    assert list(info.value.errors) == [3]
    assert info.value.stopped_by is None


def test_a_refused_key_stops_the_call_and_is_named_as_what_stopped_it() -> None:
    results = BatchResults(["a", "b", "c"])
    results.add(["a"], [vector("a")])
    results.add(["b"], refused())
    assert isinstance(results.stopped_by, AuthenticationError)
    with pytest.raises(BatchEmbeddingError) as info:
        results.result()  # "c" was never sent: it gets the error that stopped the call
    assert info.value.embeddings == [vector("a"), None, None]
    assert info.value.errors[2] is results.stopped_by
    assert info.value.stopped_by is results.stopped_by
    again = pickle.loads(pickle.dumps(info.value))
    assert isinstance(again.stopped_by, AuthenticationError)


def test_a_stop_before_any_vector_raises_the_stopping_error_itself() -> None:
    results = BatchResults(["a", "b"])
    results.add(["a", "b"], refused())
    with pytest.raises(AuthenticationError):
        results.result()


def test_what_stopped_a_part_carries_over_to_the_whole_call() -> None:
    results = BatchResults(["a", "b", "c"])
    results.add(["a", "b"], BatchEmbeddingError([vector("a"), None], {1: refused()}, refused()))
    assert isinstance(results.stopped_by, AuthenticationError)


@given(
    st.lists(st.sampled_from("abcdef"), max_size=20),
    st.integers(min_value=1, max_value=5),
    st.sets(st.sampled_from("abcdef")),
)
def test_any_split_gives_what_one_call_would(
    texts: list[str], size: int, failing: set[str]
) -> None:
    results = BatchResults(texts)
    for start in range(0, len(texts), size):
        part = texts[start : start + size]
        errors = {i: PhosphoError(t) for i, t in enumerate(part) if t in failing}
        vectors = [None if t in failing else vector(t) for t in part]
        results.add(part, BatchEmbeddingError(vectors, errors) if errors else vectors)  # type: ignore[arg-type]
    expected = [None if t in failing else vector(t) for t in texts]
    if any(t in failing for t in texts):
        with pytest.raises(BatchEmbeddingError) as info:
            results.result()
        assert info.value.embeddings == expected
        assert sorted(info.value.errors) == [i for i, t in enumerate(texts) if t in failing]
    else:
        assert results.result() == expected
