"""The exception hierarchy: what users catch, what the errors keep, and pickling (LlamaIndex
and concurrent.futures move exceptions between processes)."""

from __future__ import annotations

import pickle

import pytest

from phospho_embed import errors, wire


@pytest.mark.parametrize(
    "cls",
    [
        errors.APIStatusError,
        errors.AuthenticationError,
        errors.PaymentRequiredError,
        errors.BadRequestError,
        errors.RateLimitError,
        errors.ServerError,
    ],
)
def test_status_errors_survive_pickling(cls: type[errors.APIStatusError]) -> None:
    original = cls("429 Too Many Requests: slow", status_code=429, detail="slow", retry_after=2.0)
    copy = pickle.loads(pickle.dumps(original))
    assert type(copy) is cls
    assert (copy.status_code, copy.detail, copy.retry_after, str(copy)) == (
        429,
        "slow",
        2.0,
        "429 Too Many Requests: slow",
    )


def test_batch_error_keeps_vectors_and_errors_through_pickling() -> None:
    cause = errors.BadRequestError("400 Bad Request: too long", status_code=400)
    original = errors.BatchEmbeddingError([[0.1], None, [0.3]], {1: cause})
    copy = pickle.loads(pickle.dumps(original))
    assert copy.embeddings == [[0.1], None, [0.3]]
    assert list(copy.errors) == [1]
    assert copy.errors[1].status_code == 400
    assert (
        str(copy)
        == str(original)
        == ("1 of 3 texts failed; index 1: BadRequestError: 400 Bad Request: too long")
    )


def test_batch_error_summary_stays_short() -> None:
    failures = {i: errors.ServerError(f"500 boom {i}", status_code=500) for i in range(10)}
    error = errors.BatchEmbeddingError([None] * 10, failures)
    assert str(error).endswith("; ... and 7 more")
    assert str(error).startswith("10 of 10 texts failed; index 0:")


def test_hierarchy_lets_users_catch_broadly() -> None:
    assert issubclass(errors.APITimeoutError, errors.APIConnectionError)
    # The caller's budget ran out, not the API: never retried, not a connection error.
    assert not issubclass(errors.DeadlineExceededError, errors.APIConnectionError)
    assert not wire.is_retryable(errors.DeadlineExceededError("the deadline passed"))
    for cls in (
        errors.APIStatusError,
        errors.APIConnectionError,
        errors.ResponseFormatError,
        errors.BatchEmbeddingError,
        errors.MissingAPIKeyError,
    ):
        assert issubclass(cls, errors.PhosphoError)
    assert "PHOSPHO_API_KEY" in str(errors.MissingAPIKeyError())
