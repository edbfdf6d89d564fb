"""The phospho embeddings protocol as pure functions: no sockets, no clocks, no sleeping.

Both clients call these, so the rules for building a request, reading an answer, and deciding
whether and when to retry exist exactly once and are tested without a network (the sans-I/O
idea of h11). Everything here is deterministic given its arguments; randomness (backoff
jitter) and the current time (HTTP-date ``Retry-After``) are parameters.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any

import orjson

from phospho_embed.errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    EndpointNotFoundError,
    EndpointUnreachableError,
    MissingAPIKeyError,
    PaymentRequiredError,
    PhosphoError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "MAX_MESSAGE_CHARS",
    "MAX_RESPONSE_BYTES",
    "RETRYABLE_STATUS_CODES",
    "EmbeddingResult",
    "RetryPolicy",
    "check_text",
    "check_texts",
    "encode_request",
    "error_from_response",
    "format_detail",
    "is_fatal",
    "is_retryable",
    "parse_embedding_body",
    "parse_response",
    "parse_retry_after",
    "redact",
    "request_headers",
    "retry_delay",
    "truncate",
]

DEFAULT_BASE_URL = "https://api.phospho.ai/v2"
DEFAULT_MODEL = "intent-embed"

#: Statuses worth another attempt: the same request may well succeed a moment later.
RETRYABLE_STATUS_CODES = frozenset({408, 429, 500, 502, 503, 504})

# Error bodies are echoed into messages; a proxy's HTML error page should not flood them.
_MAX_ECHOED_BODY = 500
#: The longest message built from a server's text (a 422 may list thousands of errors).
MAX_MESSAGE_CHARS = 2000
#: The largest response body read, in bytes: a vector is a few tens of KB, so a body past
#: this is not an answer of the API (a misrouted download, a decompression bomb).
MAX_RESPONSE_BYTES = 4 * 1024 * 1024


# --- input -------------------------------------------------------------------------------


def check_text(text: object, where: str = "text") -> str:
    """Return ``text`` if the API can embed it, else raise naming ``where`` (e.g. ``texts[3]``).

    Raises:
        TypeError: ``text`` is not a ``str``.
        ValueError: ``text`` is empty or whitespace only, holds a NUL character, or holds
            a lone surrogate (it cannot be encoded as UTF-8).
    """
    if not isinstance(text, str):
        raise TypeError(f"{where} must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError(f"{where} is empty or whitespace only: there is nothing to embed")
    if "\x00" in text:
        raise ValueError(f"{where} contains a NUL character (\\x00)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{where} contains a lone surrogate at position {exc.start}: it is not valid UTF-8"
        ) from None
    return text


def check_texts(texts: Iterable[object]) -> list[str]:
    """Check every text of a batch before anything is sent; errors name the first bad index.

    Raises:
        TypeError: ``texts`` is a single string (a common slip for ``[text]``), or an item is
            not a ``str``.
        ValueError: an item is empty, whitespace only, or not encodable (see `check_text`).
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            "texts must be a list of strings, not a single "
            f"{type(texts).__name__}; to embed one text use embed(text)"
        )
    return [check_text(text, f"texts[{index}]") for index, text in enumerate(texts)]


# --- request -----------------------------------------------------------------------------


def encode_request(
    text: str, *, model: str = DEFAULT_MODEL, project_id: str | None = None
) -> bytes:
    """The JSON body for one text: a bare string ``input``, and ``project_id`` only when set."""
    body: dict[str, str] = {"input": text, "model": model}
    if project_id:
        body["project_id"] = project_id
    return json.dumps(body).encode("ascii")


def request_headers(api_key: str, user_agent: str) -> dict[str, str]:
    """The headers of every request: bearer authentication and a JSON body."""
    return {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": user_agent,
    }


# --- response ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddingResult:
    """One successful answer: the vector and what the account is billed for."""

    vector: list[float]
    prompt_tokens: int
    total_tokens: int


def parse_response(
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime | None = None,
    url: str | None = None,
) -> EmbeddingResult:
    """Turn one HTTP answer into an `EmbeddingResult`, or raise the matching typed error.

    Raises:
        APIStatusError: (a subclass of it) for any status outside 2xx.
        ResponseFormatError: a 2xx whose body is not the documented shape.
    """
    if 200 <= status_code < 300:
        return parse_embedding_body(body)
    raise error_from_response(status_code, headers, body, now=now, url=url)


def parse_embedding_body(body: bytes | str) -> EmbeddingResult:
    """Validate a 200 body and extract its vector as ``list[float]`` (JSON ints converted).

    The body must be a JSON object whose ``data`` holds exactly one object whose
    ``embedding`` is a non-empty list of finite numbers. ``usage`` is read when well formed
    and counted as zero otherwise: it is informative, the vector is the product.

    Raises:
        ResponseFormatError: with a message saying what was wrong; never any other exception.
    """
    payload = _loads(body)
    if not isinstance(payload, dict):
        raise ResponseFormatError(f"the response body is {_json_type(payload)}, not a JSON object")
    data = payload.get("data")
    if not isinstance(data, list):
        raise ResponseFormatError(f"'data' is {_json_type(data)}, not a list")
    if len(data) != 1:
        raise ResponseFormatError(f"'data' holds {len(data)} items, expected exactly 1")
    item = data[0]
    if not isinstance(item, dict):
        raise ResponseFormatError(f"'data[0]' is {_json_type(item)}, not an object")
    vector = _as_vector(item.get("embedding"))
    prompt_tokens, total_tokens = _usage(payload.get("usage"))
    return EmbeddingResult(vector, prompt_tokens, total_tokens)


def _loads(body: bytes | str) -> Any:
    """The JSON value of a 200 body. orjson parses a vector about ten times as fast as
    ``json`` (50 against 530 µs for 1,536 floats, a fifth of a request's CPU); what orjson
    refuses (``NaN``, a lone surrogate, bad bytes) goes to ``json``, so the error names it."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ResponseFormatError(f"the response body is not JSON: {_excerpt(body)}") from exc


def _as_vector(embedding: object) -> list[float]:
    if not isinstance(embedding, list):
        raise ResponseFormatError(f"'data[0].embedding' is {_json_type(embedding)}, not a list")
    if not embedding:
        raise ResponseFormatError("'data[0].embedding' is an empty list")
    # Fast path, the usual case: all floats, and a finite sum proves all finite.
    if set(map(type, embedding)) == {float} and math.isfinite(sum(embedding)):
        return embedding
    vector: list[float] = []
    for position, value in enumerate(embedding):
        if type(value) is float or type(value) is int:  # bool is not a number here
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if math.isfinite(number):
                vector.append(number)
                continue
        raise ResponseFormatError(
            f"'data[0].embedding[{position}]' is {_json_type(value)} {_excerpt(value)}, "
            "not a finite number"
        )
    return vector


def _usage(usage: object) -> tuple[int, int]:
    if not isinstance(usage, dict):
        return 0, 0
    prompt = usage.get("prompt_tokens")
    total = usage.get("total_tokens")
    prompt_tokens = prompt if type(prompt) is int and prompt >= 0 else 0
    total_tokens = total if type(total) is int and total >= 0 else prompt_tokens
    return prompt_tokens, total_tokens


def error_from_response(
    status_code: int,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    now: datetime | None = None,
    url: str | None = None,
) -> APIStatusError:
    """The typed error for a non-2xx answer, carrying ``status_code``, ``detail``, ``retry_after``.

    ``detail`` is FastAPI's ``{"detail": ...}`` value when the body has that shape (a string,
    or for 422 the list of validation errors, rendered readably in the message); otherwise the
    start of the raw body text. The message is at most `MAX_MESSAGE_CHARS` long. A 404 is
    `EndpointNotFoundError`, whose message names ``url`` and the likely fix.
    """
    detail = _detail(body)
    try:
        reason = HTTPStatus(status_code).phrase
    except ValueError:
        reason = "Error"
    rendered = format_detail(detail)
    message = f"{status_code} {reason}: {rendered}" if rendered else f"{status_code} {reason}"
    message = truncate(message)
    cls: type[APIStatusError]
    if status_code == 404:
        cls = EndpointNotFoundError
        message += (
            f" from {url or 'the endpoint'}: is base_url right? It is the API root, "
            f"such as {DEFAULT_BASE_URL} (with /v2, without /embeddings)"
        )
    elif status_code in (401, 403):
        cls = AuthenticationError
    elif status_code == 402:
        cls = PaymentRequiredError
    elif status_code in (400, 422):
        cls = BadRequestError
    elif status_code == 429:
        cls = RateLimitError
    elif status_code >= 500:
        cls = ServerError
    else:
        cls = APIStatusError
    return cls(
        message,
        status_code=status_code,
        detail=detail,
        retry_after=parse_retry_after(headers, now=now),
    )


def _detail(body: bytes | str) -> Any:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        payload = None
    if isinstance(payload, dict) and "detail" in payload:
        return payload["detail"]
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return text.strip()[:_MAX_ECHOED_BODY]


def truncate(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``message`` cut to ``limit`` characters, saying how much was left out."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}... ({len(message) - limit} more characters)"


def redact(text: bytes, secret: str) -> bytes:
    """``text`` (a server's answer) with every occurrence of ``secret`` (the API key)
    replaced, so that a server echoing the key cannot put it in a message or a log."""
    return text.replace(secret.encode(), b"[redacted]") if secret else text


def format_detail(detail: Any) -> str:
    """Render a ``detail`` for a message; a 422 list becomes ``body.model: msg; ...`` (the
    first 20 entries, then how many more)."""
    if isinstance(detail, list):
        shown = "; ".join(_format_validation_error(item) for item in detail[:20])
        more = f"; ... and {len(detail) - 20} more" if len(detail) > 20 else ""
        return shown + more
    if detail is None:
        return ""
    if isinstance(detail, str):
        return detail
    return json.dumps(detail)[:_MAX_ECHOED_BODY]


def _format_validation_error(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    loc = item.get("loc")
    where = ".".join(str(part) for part in loc) if isinstance(loc, list) else ""
    msg = str(item.get("msg", item.get("type", "invalid")))
    return f"{where}: {msg}" if where else msg


def parse_retry_after(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """Seconds the server asks us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be a number of seconds (fractions accepted) or an HTTP date, which is
    compared with ``now`` (the current UTC time by default). Returns ``None`` when there is
    no usable value; a date in the past gives ``0.0``.
    """
    milliseconds = _header(headers, "retry-after-ms")
    if milliseconds is not None:
        seconds = _seconds(milliseconds)
        if seconds is not None:
            return seconds / 1000
    value = _header(headers, "retry-after")
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now or datetime.now(timezone.utc)
    return max(0.0, (when - current).total_seconds())


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts are case-sensitive; httpx.Headers is not
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


# --- retries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait between attempts.

    Attributes:
        initial_delay: the backoff ceiling of the first retry, in seconds; it doubles per retry.
        max_delay: the largest backoff ceiling, in seconds.
        max_retry_after: the longest server-requested wait (``Retry-After``) honoured; longer
            requests are capped to this.
    """

    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        for name in ("initial_delay", "max_delay", "max_retry_after"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"RetryPolicy.{name} must be a finite number >= 0, got {value!r}")


def is_retryable(error: BaseException) -> bool:
    """Whether another attempt may succeed: timeouts, connection errors, 408/429/5xx gateway."""
    if isinstance(error, APIStatusError):
        return error.status_code in RETRYABLE_STATUS_CODES
    return isinstance(error, APIConnectionError)


def is_fatal(error: BaseException) -> bool:
    """Whether every other request of the call would fail the same way, so it stops: no key
    (`MissingAPIKeyError`), a refused key (`AuthenticationError`, 401/403), billing
    (`PaymentRequiredError`, 402), or a wrong URL (`EndpointNotFoundError`, 404, and
    `EndpointUnreachableError`, a URL that has never answered), or a closed client
    (`ClientClosedError`)."""
    return isinstance(
        error,
        (
            MissingAPIKeyError,
            AuthenticationError,
            PaymentRequiredError,
            EndpointNotFoundError,
            EndpointUnreachableError,
            ClientClosedError,
        ),
    )


def retry_delay(
    retry: int,
    error: PhosphoError,
    policy: RetryPolicy = RetryPolicy(),
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``retry`` (0 for the first retry) after ``error``.

    A server's ``Retry-After`` wins, capped at ``policy.max_retry_after``. Otherwise
    exponential backoff with full jitter: uniform in ``[0, min(max_delay, initial * 2**retry))``,
    which spreads the retries of many concurrent requests instead of synchronising them.
    """
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        return float(min(retry_after, policy.max_retry_after))
    ceiling = min(policy.max_delay, policy.initial_delay * 2.0 ** min(retry, 64))
    return ceiling * rng()


# --- helpers -----------------------------------------------------------------------------


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _excerpt(value: object, limit: int = 80) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    return repr(text[:limit] + ("..." if len(text) > limit else ""))
