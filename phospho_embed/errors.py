"""Every exception a user of phospho-embed can catch.

All of them subclass :class:`PhosphoError`. Errors that come from an HTTP answer subclass
:class:`APIStatusError` and keep the ``status_code`` and the server's ``detail``. None of them
ever holds the API key in its message or attributes.

```text
PhosphoError
├── MissingAPIKeyError          no key given nor in PHOSPHO_API_KEY       stops the call
├── APIStatusError              an error status: .status_code, .detail, .retry_after
│   ├── EndpointNotFoundError   404: a wrong base URL                     stops the call
│   ├── AuthenticationError     401, 403                                  stops the call
│   ├── PaymentRequiredError    402                                       stops the call
│   ├── BadRequestError         400, 422
│   ├── RateLimitError          429                                       retried
│   └── ServerError             5xx                                       500/502/503/504 retried
├── APIConnectionError          no HTTP answer                            retried
│   ├── EndpointUnreachableError  no connection, and this URL never answered:
│   │                             retried, then stops the call
│   └── APITimeoutError         an attempt timed out (wall clock)         retried
├── DeadlineExceededError       the call's deadline ran out for this text
├── ClientClosedError           closed client (also a RuntimeError)       stops the call
├── ResponseFormatError         a 200 with a body of the wrong shape
└── BatchEmbeddingError         some texts of an embed_many call failed   .stopped_by
```

"Retried" is `phospho_embed.wire.is_retryable` (408 too), "stops the call" is
`phospho_embed.wire.is_fatal`: an error that every other request would get as well.

The classes are picklable (``__reduce__``), because LlamaIndex and the standard library move
exceptions across process boundaries (ingestion workers, ``concurrent.futures``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BatchEmbeddingError",
    "ClientClosedError",
    "DeadlineExceededError",
    "EndpointNotFoundError",
    "EndpointUnreachableError",
    "MissingAPIKeyError",
    "PaymentRequiredError",
    "PhosphoError",
    "RateLimitError",
    "ResponseFormatError",
    "ServerError",
]


class PhosphoError(Exception):
    """Base class of every error raised by phospho-embed."""


class MissingAPIKeyError(PhosphoError):
    """No API key was given as an argument nor found in ``PHOSPHO_API_KEY``."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "No phospho API key: set the PHOSPHO_API_KEY environment variable "
            "or pass api_key=... to the client."
        )


class APIStatusError(PhosphoError):
    """The API answered with an error status.

    Attributes:
        status_code: the HTTP status of the answer.
        detail: the server's ``detail`` (a string, or for 422 the list of validation errors),
            or the raw body text when the body was not FastAPI's ``{"detail": ...}``.
        retry_after: the server's ``Retry-After`` in seconds, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        detail: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.detail = detail
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        state = (type(self), self.message, self.status_code, self.detail, self.retry_after)
        return (_rebuild_status_error, state)


def _rebuild_status_error(
    cls: type[APIStatusError],
    message: str,
    status_code: int,
    detail: Any,
    retry_after: float | None,
) -> APIStatusError:
    return cls(message, status_code=status_code, detail=detail, retry_after=retry_after)


class EndpointNotFoundError(APIStatusError):
    """404: nothing answers at this URL; the base URL is wrong (a missing ``/v2``, a
    trailing ``/embeddings``). Every request would fail the same way."""


class AuthenticationError(APIStatusError):
    """401 (the key is not valid) or 403 (no key sent). Every request would fail the same way."""


class PaymentRequiredError(APIStatusError):
    """402: the account has no payment method. Every request would fail the same way."""


class BadRequestError(APIStatusError):
    """400 or 422: this request is invalid (too long, wrong model, ...); retrying cannot help."""


class RateLimitError(APIStatusError):
    """429: too many requests. Retried automatically; raised once the retries are spent."""


class ServerError(APIStatusError):
    """5xx: the service or a gateway in front of it failed. 500/502/503/504 are retried."""


class APIConnectionError(PhosphoError):
    """The request did not get an HTTP answer (connection refused, dropped, DNS, TLS, ...)."""


class EndpointUnreachableError(APIConnectionError):
    """No connection could be opened (refused, unknown host) to a URL that has never
    answered this client: most likely a wrong base URL, so once a text's retries are spent
    the call stops instead of trying every other text the same way."""


class APITimeoutError(APIConnectionError):
    """The request timed out (the ``timeout`` setting, per attempt)."""


class DeadlineExceededError(PhosphoError):
    """The time budget of an ``embed_many`` call (``deadline=``) ran out for this text.

    Not an `APITimeoutError`: the API did not time out, the caller's budget did, so it is
    never retried and ``except APIConnectionError`` does not catch it.
    """


class ClientClosedError(PhosphoError, RuntimeError):
    """The client was closed: before this call, or during it (``close()`` from another
    thread). A call it ends keeps the vectors that arrived (`BatchEmbeddingError`)."""


class ResponseFormatError(PhosphoError):
    """A 200 answer whose body is not the documented shape; the message says what was wrong."""


class BatchEmbeddingError(PhosphoError):
    """Some texts of an ``embed_many`` call failed; every vector that did arrive is kept.

    Attributes:
        embeddings: one entry per input text, in input order: the vector, or ``None`` where
            that text failed (or was not sent because the call stopped).
        errors: input index -> the exception that explains why that text has no vector.
        stopped_by: the error that stopped the whole call part-way (a refused key or
            account: 401/402/403), or ``None`` when every text was tried.
        texts_digest: a SHA-256 of the call's texts, so that ``resume_from=`` can refuse
            this error when it is given other texts (``None`` when not known).
    """

    def __init__(
        self,
        embeddings: Sequence[list[float] | None],
        errors: Mapping[int, BaseException],
        stopped_by: PhosphoError | None = None,
        texts_digest: str | None = None,
    ) -> None:
        self.embeddings: list[list[float] | None] = list(embeddings)
        self.errors: dict[int, BaseException] = dict(sorted(errors.items()))
        self.stopped_by = stopped_by
        self.texts_digest = texts_digest
        super().__init__(self._summary())

    def _summary(self) -> str:
        total = len(self.embeddings)
        shown = list(self.errors.items())[:3]
        lines = [f"index {i}: {type(e).__name__}: {e}" for i, e in shown]
        more = len(self.errors) - len(shown)
        if more > 0:
            lines.append(f"... and {more} more")
        stopped = f"stopped by {type(self.stopped_by).__name__}; " if self.stopped_by else ""
        return f"{len(self.errors)} of {total} texts failed; {stopped}" + "; ".join(lines)

    @property
    def failed_indices(self) -> list[int]:
        """The input indices that have no vector, in ascending order."""
        return list(self.errors)

    def __reduce__(self) -> tuple[Any, ...]:
        state = (self.embeddings, self.errors, self.stopped_by, self.texts_digest)
        return (type(self), state)
