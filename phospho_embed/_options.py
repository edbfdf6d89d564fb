"""`ClientOptions`: every setting of a client, resolved once, in one place.

An argument wins, then its ``PHOSPHO_*`` environment variable, then the default. The clients,
both framework adapters and the command line all read the list of settings from here (the
dataclass fields and their metadata), so a new setting is one field below plus its docs
entry and the adapters' field declarations.
"""

from __future__ import annotations

import dataclasses
import difflib
import hmac
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from phospho_embed.errors import MissingAPIKeyError
from phospho_embed.wire import DEFAULT_BASE_URL, DEFAULT_MODEL, RetryPolicy

__all__ = ["API_KEY_ENV", "BASE_URL_ENV", "PROJECT_ID_ENV", "ClientOptions", "Secret"]

API_KEY_ENV = "PHOSPHO_API_KEY"
BASE_URL_ENV = "PHOSPHO_BASE_URL"
PROJECT_ID_ENV = "PHOSPHO_PROJECT_ID"


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

    def __eq__(self, other: object) -> bool:
        # Constant time: comparing options must not become a timing oracle on the key.
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, len(self._value)))

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling a secret is how keys end up in caches and logs: refuse.
        raise TypeError("a Secret (the API key) cannot be pickled")

    def __copy__(self) -> Secret:
        return self  # immutable: copies (copy.deepcopy, dataclasses.asdict) share it

    def __deepcopy__(self, memo: dict[int, object]) -> Secret:
        return self


def _setting(
    default: Any,
    doc: str,
    *,
    env: str | None = None,
    flag: str | None = None,
    metavar: str | None = None,
) -> Any:
    """A `ClientOptions` field: its default, what it means, the environment variable read
    when the argument is left out, and the command-line flag that sets it (if any)."""
    metadata = {"doc": doc, "env": env, "flag": flag, "metavar": metavar}
    if isinstance(default, RetryPolicy):
        return field(default_factory=RetryPolicy, metadata=metadata)
    return field(default=default, metadata=metadata, repr=env != API_KEY_ENV)


@dataclass(frozen=True)
class ClientOptions:
    """The settings of a client: where to send requests, as whom, and how hard to try.

    A frozen value, like httpx's ``Timeout``: build one and share it between clients, or let
    the clients build it from keyword arguments (``PhosphoClient(max_concurrency=32)`` is
    ``PhosphoClient(ClientOptions(max_concurrency=32))``). ``None`` for ``api_key``,
    ``base_url`` or ``project_id`` reads its ``PHOSPHO_*`` environment variable, once, here.

    ```python
    from phospho_embed import ClientOptions, PhosphoClient

    options = ClientOptions(max_concurrency=32, timeout=30.0)
    client = PhosphoClient(options)
    faster = options.replace(max_concurrency=64)
    ```

    The key is kept as a `Secret`: it is in no ``repr``, and a ``ClientOptions`` holding
    one refuses to be pickled.

    Raises:
        TypeError / ValueError: a setting of the wrong type or out of range, naming it.
    """

    # _setting returns a dataclasses.field (RUF009 cannot see through it).
    api_key: Secret | str | None = _setting(  # noqa: RUF009
        None,
        "the phospho API key, sent as a bearer token; never shown by repr, logs or errors",
        env=API_KEY_ENV,
        flag="--api-key",
        metavar="KEY",
    )
    base_url: str = _setting(
        None,
        "the API root, e.g. an emulator's http://127.0.0.1:8000/v2; must start with "
        "http:// or https://",
        env=BASE_URL_ENV,
        flag="--base-url",
        metavar="URL",
    )
    project_id: str | None = _setting(
        None,
        "the phospho project to link embeddings to; sent only when set",
        env=PROJECT_ID_ENV,
        flag="--project-id",
        metavar="ID",
    )
    model: str = _setting(DEFAULT_MODEL, "the model name the API expects")
    timeout: float = _setting(
        60.0,
        "seconds per attempt (> 0); connecting gets at most 10 s",
        flag="--timeout",
        metavar="SECONDS",
    )
    max_retries: int = _setting(
        4,
        "retries after the first attempt (>= 0), for transient failures only: "
        "timeouts, connection errors, 408, 429, 5xx",
        flag="--max-retries",
        metavar="N",
    )
    max_concurrency: int = _setting(
        16,
        "requests in flight at once (>= 1), across every call, thread, task and event "
        "loop sharing the client",
        flag="--max-concurrency",
        metavar="N",
    )
    adaptive_concurrency: bool = _setting(
        True,
        "send fewer requests at once after the API answers 429, and more again as "
        "requests succeed; False keeps max_concurrency fixed",
    )
    retry_policy: RetryPolicy = _setting(  # noqa: RUF009
        RetryPolicy(), "backoff timings between attempts (`RetryPolicy`)"
    )

    def __post_init__(self) -> None:
        resolved = {
            "api_key": _resolve_key(self.api_key),
            "base_url": _check_url(self.base_url or os.environ.get(BASE_URL_ENV)),
            "project_id": (
                self.project_id if self.project_id is not None else os.environ.get(PROJECT_ID_ENV)
            )
            or None,
            "timeout": _check_seconds("timeout", self.timeout),
            "retry_policy": self.retry_policy if self.retry_policy is not None else RetryPolicy(),
        }
        for name, value in resolved.items():
            object.__setattr__(self, name, value)  # frozen: the one place values are set
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError("model must be a non-empty string")
        if self.project_id is not None and not isinstance(self.project_id, str):
            raise TypeError(f"project_id must be a str, got {type(self.project_id).__name__}")
        _check_int("max_retries", self.max_retries, minimum=0)
        _check_int("max_concurrency", self.max_concurrency, minimum=1)
        if not isinstance(self.adaptive_concurrency, bool):
            raise TypeError(
                "adaptive_concurrency must be a bool, got "
                f"{type(self.adaptive_concurrency).__name__}"
            )
        if not isinstance(self.retry_policy, RetryPolicy):
            raise TypeError(
                f"retry_policy must be a RetryPolicy, got {type(self.retry_policy).__name__}"
            )

    @classmethod
    def build(
        cls, options: ClientOptions | None = None, settings: Mapping[str, Any] | None = None
    ) -> ClientOptions:
        """``options`` with ``settings`` (keyword arguments of a client) applied on top.

        Raises:
            TypeError: a name that is not a setting, with the closest one suggested.
        """
        settings = dict(settings or {})
        names = cls.names()
        for name in settings:
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise TypeError(f"unknown client setting {name!r}{hint}")
        if options is None:
            return cls(**settings)
        if not isinstance(options, ClientOptions):
            raise TypeError(f"options must be a ClientOptions, got {type(options).__name__}")
        return options.replace(**settings) if settings else options

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every setting's name, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of setting ``name`` (before the environment is read)."""
        spec = next(f for f in dataclasses.fields(cls) if f.name == name)
        if spec.default_factory is not dataclasses.MISSING:
            return spec.default_factory()
        return spec.default

    @classmethod
    def from_attributes(
        cls, source: object, *, renamed: Mapping[str, str] | None = None
    ) -> ClientOptions:
        """The options held by ``source``'s attributes of the same names, e.g. an adapter's
        pydantic fields; ``renamed`` maps a setting to the attribute holding it
        (``{"model": "model_name"}``). ``SecretStr`` values are unwrapped, and attributes
        ``source`` lacks keep their default."""
        renamed = renamed or {}
        values: dict[str, Any] = {}
        for name in cls.names():
            attribute = renamed.get(name, name)
            if not hasattr(source, attribute):
                continue
            value = getattr(source, attribute)
            if hasattr(value, "get_secret_value"):
                value = value.get_secret_value()
            values[name] = value
        return cls(**values)

    def replace(self, **changes: Any) -> ClientOptions:
        """A copy with ``changes`` applied (checked as in the constructor)."""
        return dataclasses.replace(self, **changes)

    @property
    def url(self) -> str:
        """The embeddings endpoint."""
        return f"{self.base_url}/embeddings"

    def require_api_key(self) -> str:
        """The key, or `MissingAPIKeyError` saying how to provide one."""
        if not isinstance(self.api_key, Secret):
            raise MissingAPIKeyError()
        return self.api_key.get()


def _resolve_key(value: object) -> Secret | None:
    if isinstance(value, Secret):
        return value
    if value is None:
        value = os.environ.get(API_KEY_ENV)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"api_key must be a str, got {type(value).__name__}")
    if not value:
        return None
    # A key read from a file often ends with a newline: a header cannot carry it, and
    # httpx's error would quote the whole header, key included.
    value = value.strip()
    if not value.isascii() or not value.isprintable():
        raise ValueError(
            "api_key holds a character an HTTP header cannot carry (a non-ASCII or control "
            "character inside it); check how the key was copied"
        )
    return Secret(value)


def _check_url(url: object) -> str:
    url = url or DEFAULT_BASE_URL
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {url!r}")
    parts = urlsplit(url)
    if not parts.hostname or parts.query or parts.fragment:
        raise ValueError(
            f"base_url must be the API root, a host and a path such as {DEFAULT_BASE_URL} "
            f"(no query or fragment), got {url!r}"
        )
    return url.rstrip("/")


def _check_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
