"""Client settings: an argument wins, then the environment variable, then the default."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from phospho_embed.errors import MissingAPIKeyError
from phospho_embed.wire import DEFAULT_BASE_URL, RetryPolicy

API_KEY_ENV = "PHOSPHO_API_KEY"
BASE_URL_ENV = "PHOSPHO_BASE_URL"
PROJECT_ID_ENV = "PHOSPHO_PROJECT_ID"

DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 4
DEFAULT_MAX_CONCURRENCY = 16


class Secret:
    """Holds the API key so that printing, logging or ``repr`` of a settings object cannot
    reveal it. ``get()`` is the one way to read it, used only to build the header."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        """The secret itself."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling a secret is how keys end up in caches and logs: refuse.
        raise TypeError("a Secret (the API key) cannot be pickled")


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of one client."""

    api_key: Secret | None = field(repr=False)
    base_url: str
    project_id: str | None
    model: str
    timeout: float
    max_retries: int
    max_concurrency: int
    retry_policy: RetryPolicy

    @property
    def url(self) -> str:
        """The embeddings endpoint."""
        return f"{self.base_url}/embeddings"

    def require_api_key(self) -> str:
        """The key, or `MissingAPIKeyError` saying how to provide one."""
        if self.api_key is None:
            raise MissingAPIKeyError()
        return self.api_key.get()


def resolve_settings(
    *,
    api_key: str | None,
    base_url: str | None,
    project_id: str | None,
    model: str,
    timeout: float,
    max_retries: int,
    max_concurrency: int,
    retry_policy: RetryPolicy | None,
) -> Settings:
    """Merge arguments with ``PHOSPHO_*`` environment variables and check every value.

    Raises:
        ValueError / TypeError: a setting is out of range, naming the setting.
    """
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    project = project_id if project_id is not None else os.environ.get(PROJECT_ID_ENV)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {url!r}")
    if not isinstance(model, str) or not model:
        raise ValueError("model must be a non-empty string")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, got {type(timeout).__name__}")
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    _check_int("max_retries", max_retries, minimum=0)
    _check_int("max_concurrency", max_concurrency, minimum=1)
    return Settings(
        api_key=Secret(key) if key else None,
        base_url=url.rstrip("/"),
        project_id=project or None,
        model=model,
        timeout=float(timeout),
        max_retries=max_retries,
        max_concurrency=max_concurrency,
        retry_policy=retry_policy or RetryPolicy(),
    )


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
