"""The pure protocol rules: no network, no clock, no sleeping."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phospho_embed import wire
from phospho_embed.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    EndpointNotFoundError,
    EndpointUnreachableError,
    PaymentRequiredError,
    PhosphoError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)


def body(embedding: object, **extra: object) -> bytes:
    payload = {
        "object": "list",
        "data": [{"object": "embedding", "embedding": embedding, "index": 0}],
        "model": "intent-embed",
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
    payload.update(extra)
    return json.dumps(payload).encode()


# --- input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "error", "fragment"),
    [
        (None, TypeError, "got NoneType"),
        (b"bytes", TypeError, "got bytes"),
        (42, TypeError, "got int"),
        (["nested"], TypeError, "got list"),
        ("", ValueError, "empty or whitespace"),
        (" \n\t ", ValueError, "empty or whitespace"),
        ("a\x00b", ValueError, "NUL"),
        ("bad \ud800 surrogate", ValueError, "lone surrogate at position 4"),
    ],
)
def test_check_text_rejects_with_the_place_named(
    value: object, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match="texts\\[7\\]") as info:
        wire.check_text(value, "texts[7]")
    assert fragment in str(info.value)


def test_check_text_accepts_any_real_text() -> None:
    assert wire.check_text("  padded  ") == "  padded  "
    assert wire.check_text("émoji 🎉 ok") == "émoji 🎉 ok"


def test_check_texts_names_the_first_bad_index() -> None:
    with pytest.raises(ValueError, match=r"texts\[2\] is empty"):
        wire.check_texts(["a", "b", "  ", 5])
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got int"):
        wire.check_texts(["a", 5, ""])


@pytest.mark.parametrize("single", ["one text", b"bytes"])
def test_check_texts_refuses_a_single_string(single: object) -> None:
    with pytest.raises(TypeError, match="not a single"):
        wire.check_texts(single)  # type: ignore[arg-type]


def test_check_texts_takes_any_iterable() -> None:
    assert wire.check_texts(t for t in ("a", "b")) == ["a", "b"]


# --- request -----------------------------------------------------------------------------


def test_request_body_is_a_bare_string_and_project_only_when_set() -> None:
    assert json.loads(wire.encode_request("hi")) == {"input": "hi", "model": "intent-embed"}
    assert json.loads(wire.encode_request("hi", model="m", project_id="p1")) == {
        "input": "hi",
        "model": "m",
        "project_id": "p1",
    }
    assert "project_id" not in json.loads(wire.encode_request("hi", project_id=""))


def test_request_body_keeps_non_ascii_text_exactly() -> None:
    text = "¿Dónde está mi pedido? 📦"
    assert json.loads(wire.encode_request(text))["input"] == text


def test_headers_carry_the_bearer_key() -> None:
    headers = wire.request_headers("sk-123", "ua/1")
    assert headers["Authorization"] == "Bearer sk-123"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "ua/1"


# --- response ----------------------------------------------------------------------------


def test_parse_a_documented_answer() -> None:
    result = wire.parse_response(200, {}, body([0.5, -0.25, 1]))
    assert result.vector == [0.5, -0.25, 1.0]
    assert all(type(x) is float for x in result.vector)  # JSON ints converted
    assert (result.prompt_tokens, result.total_tokens) == (3, 3)


def test_missing_usage_counts_zero_but_keeps_the_vector() -> None:
    payload = {"data": [{"embedding": [0.1, 0.2]}]}
    result = wire.parse_embedding_body(json.dumps(payload).encode())
    assert result.vector == [0.1, 0.2]
    assert (result.prompt_tokens, result.total_tokens) == (0, 0)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"<html>bad gateway</html>", "not JSON"),
        (b"", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "is an array, not a JSON object"),
        (b'{"object": "list"}', "'data' is null, not a list"),
        (b'{"data": []}', "holds 0 items, expected exactly 1"),
        (body([1.0]).replace(b'"data": [', b'"data": [{"embedding": [1.0]}, '), "holds 2 items"),
        (b'{"data": ["x"]}', "'data[0]' is a string"),
        (body("0.1,0.2"), "embedding' is a string, not a list"),
        (body([]), "is an empty list"),
        (body([0.1, True]), "embedding[1]' is a boolean"),
        (body([0.1, "0.2"]), "embedding[1]' is a string"),
        (body([0.1, None]), "embedding[1]' is null"),
        (body([0.1, [0.2]]), "embedding[1]' is an array"),
        (b'{"data": [{"embedding": [0.1, NaN]}]}', "embedding[1]' is a number"),
        (b'{"data": [{"embedding": [Infinity]}]}', "not a finite number"),
        (body([1e400]), "not a finite number"),
        (body([10**400]), "not a finite number"),
    ],
)
def test_malformed_answers_say_what_is_wrong(raw: bytes, fragment: str) -> None:
    with pytest.raises(ResponseFormatError) as info:
        wire.parse_response(200, {}, raw)
    assert fragment in str(info.value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["data", "embedding", "usage", "x"]) | st.text(), children
        )
    ),
    max_leaves=30,
)


@given(json_values)
def test_any_json_body_gives_a_vector_or_a_format_error(value: object) -> None:
    raw = json.dumps(value).encode()
    try:
        result = wire.parse_response(200, {}, raw)
    except ResponseFormatError:
        return
    assert result.vector
    assert all(type(x) is float and math.isfinite(x) for x in result.vector)


@given(
    st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    st.lists(st.floats(allow_nan=True) | st.integers() | json_values, max_size=6),
)
def test_any_shaped_body_gives_a_vector_or_a_format_error(extra: dict, embedding: list) -> None:
    payload = {**extra, "data": [{"embedding": embedding}]}
    try:
        result = wire.parse_embedding_body(json.dumps(payload).encode())
    except ResponseFormatError:
        return
    assert result.vector == [float(x) for x in embedding]


@given(st.binary(max_size=200), st.integers(min_value=100, max_value=599))
def test_any_answer_gives_a_result_or_a_phospho_error(raw: bytes, status: int) -> None:
    try:
        result = wire.parse_response(status, {"retry-after": "x"}, raw)
    except PhosphoError as exc:
        if 200 <= status < 300:
            assert isinstance(exc, ResponseFormatError)
        else:
            assert isinstance(exc, APIStatusError)
            assert exc.status_code == status
        return
    assert 200 <= status < 300
    assert result.vector


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=1))
def test_every_valid_vector_comes_back_exactly(vector: list[float]) -> None:
    assert wire.parse_embedding_body(body(vector)).vector == vector


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (402, PaymentRequiredError),
        (403, AuthenticationError),
        (404, EndpointNotFoundError),
        (408, APIStatusError),
        (422, BadRequestError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
    ],
)
def test_statuses_map_to_typed_errors(status: int, cls: type[APIStatusError]) -> None:
    error = wire.error_from_response(status, {}, b'{"detail": "Invalid token"}')
    assert type(error) is cls
    assert error.status_code == status
    assert error.detail == "Invalid token"
    assert str(error).startswith(f"{status} ")
    assert ": Invalid token" in str(error)


def test_a_422_detail_list_reads_like_a_sentence() -> None:
    detail = [
        {"type": "literal_error", "loc": ["body", "model"], "msg": "Input should be 'x'"},
        {"type": "string_type", "loc": ["body", "input"], "msg": "Input should be a string"},
    ]
    error = wire.error_from_response(422, {}, json.dumps({"detail": detail}).encode())
    assert error.detail == detail
    # The reason phrase of 422 differs between Python versions; the rendering does not.
    assert str(error).split(": ", 1)[1] == (
        "body.model: Input should be 'x'; body.input: Input should be a string"
    )


def test_a_non_json_error_body_is_kept_short() -> None:
    error = wire.error_from_response(502, {}, b"<html>" + b"x" * 5000 + b"</html>")
    assert isinstance(error, ServerError)
    assert isinstance(error.detail, str)
    assert len(error.detail) == 500
    assert error.detail.startswith("<html>")


def test_retryable_and_fatal_classification() -> None:
    def status(code: int) -> APIStatusError:
        return wire.error_from_response(code, {}, b"{}")

    assert [c for c in (400, 401, 402, 403, 404, 408, 422, 429, 500, 501, 502, 503, 504)
            if wire.is_retryable(status(c))] == [408, 429, 500, 502, 503, 504]  # fmt: skip
    assert [c for c in (400, 401, 402, 403, 404, 422, 429, 500)
            if wire.is_fatal(status(c))] == [401, 402, 403, 404]  # fmt: skip
    assert wire.is_retryable(APIConnectionError("reset"))
    assert wire.is_retryable(APITimeoutError("slow"))
    assert not wire.is_retryable(ResponseFormatError("bad body"))
    assert not wire.is_fatal(APIConnectionError("reset"))
    assert wire.is_retryable(EndpointUnreachableError("refused"))
    assert wire.is_fatal(EndpointUnreachableError("refused"))
    assert wire.is_fatal(ClientClosedError("closed"))


def test_a_404_names_the_url_and_the_likely_fix() -> None:
    error = wire.error_from_response(404, {}, b'{"detail":"Not Found"}', url="http://h/embeddings")
    assert isinstance(error, EndpointNotFoundError)
    assert "from http://h/embeddings: is base_url right?" in str(error)
    assert "with /v2, without /embeddings" in str(error)


def test_messages_built_from_a_server_are_capped() -> None:
    detail = [{"loc": ["body", "input", i], "msg": "bad"} for i in range(20_000)]
    error = wire.error_from_response(422, {}, json.dumps({"detail": detail}).encode())
    assert len(str(error)) <= wire.MAX_MESSAGE_CHARS + 40
    assert "... and 19980 more" in str(error)
    assert len(str(wire.error_from_response(500, {}, json.dumps({"detail": "x" * 10**6})))) < 2100


def test_redact_removes_every_occurrence_of_the_key() -> None:
    body = b'{"detail": "Invalid token: Bearer sk-1 (sk-1)"}'
    assert (
        wire.redact(body, "sk-1") == b'{"detail": "Invalid token: Bearer [redacted] ([redacted])"}'
    )
    assert wire.redact(body, "") == body


# --- Retry-After and backoff -------------------------------------------------------------

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"RETRY-AFTER": " 7 "}, 7.0),
        ({"Retry-After": format_datetime(NOW + timedelta(seconds=30), usegmt=True)}, 30.0),
        ({"Retry-After": format_datetime(NOW - timedelta(seconds=30), usegmt=True)}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-5"}, None),
        ({"Retry-After": "nan"}, None),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),
        ({"retry-after-ms": "bad", "Retry-After": "9"}, 9.0),
    ],
)
def test_retry_after_as_seconds_or_http_date(
    headers: dict[str, str], expected: float | None
) -> None:
    assert wire.parse_retry_after(headers, now=NOW) == expected


def test_status_errors_carry_retry_after() -> None:
    error = wire.error_from_response(429, {"Retry-After": "2"}, b'{"detail": "slow down"}')
    assert error.retry_after == 2.0


def test_retry_after_wins_over_backoff_and_is_capped() -> None:
    policy = wire.RetryPolicy(initial_delay=1.0, max_delay=4.0, max_retry_after=10.0)
    asked = RateLimitError("429", status_code=429, retry_after=3.0)
    assert wire.retry_delay(0, asked, policy, rng=lambda: 0.0) == 3.0
    greedy = RateLimitError("429", status_code=429, retry_after=3600.0)
    assert wire.retry_delay(0, greedy, policy, rng=lambda: 0.0) == 10.0


def test_backoff_is_exponential_full_jitter_and_capped() -> None:
    policy = wire.RetryPolicy(initial_delay=0.5, max_delay=4.0)
    error = ServerError("500", status_code=500)
    ceilings = [wire.retry_delay(n, error, policy, rng=lambda: 1.0) for n in range(6)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert wire.retry_delay(3, error, policy, rng=lambda: 0.0) == 0.0
    assert wire.retry_delay(2, error, policy, rng=lambda: 0.5) == 1.0
    assert wire.retry_delay(10_000, error, policy, rng=lambda: 1.0) == 4.0  # no overflow


@given(st.integers(min_value=0, max_value=50), st.floats(min_value=0, max_value=1))
def test_backoff_stays_within_its_ceiling(retry: int, draw: float) -> None:
    policy = wire.RetryPolicy()
    delay = wire.retry_delay(retry, APIConnectionError("x"), policy, rng=lambda: draw)
    assert 0.0 <= delay <= min(policy.max_delay, policy.initial_delay * 2**retry)


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_delay"):
        wire.RetryPolicy(max_delay=-1)
