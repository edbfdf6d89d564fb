"""How a client's settings travel from the driver to Dask workers without showing the key.

A `ClientOptions` holding a key refuses to be pickled (its `Secret` does), and Dask pickles
every argument of a task. `WorkerSettings` is what travels instead: every setting but the key
as plain values, plus the key either left out (each worker reads ``PHOSPHO_API_KEY`` from its
own environment) or carried in a `HiddenKey`, whose ``repr``, ``str`` and Dask token never
contain it. Task reprs, the dashboard, "Compute Failed" log lines and exceptions print the
arguments of a task with ``repr``: they show ``HiddenKey('**********')``.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from phospho_embed._options import API_KEY_ENV, ClientOptions, Secret
from phospho_embed.errors import MissingAPIKeyError

__all__ = ["HiddenKey", "WorkerSettings"]

_MASK = "**********"


class HiddenKey:
    """An API key that can be pickled (to reach a worker) but never printed.

    Unlike `Secret`, which refuses pickling so that keys stay out of caches, this one is
    made to be sent, and only to Dask workers: its ``repr`` and ``str`` are masked, and its
    Dask token is a random id drawn once per key object, so the key is not even hashed into
    task names.
    """

    __slots__ = ("_token", "_value")

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise TypeError("HiddenKey needs a non-empty str")
        self._value = value
        self._token = uuid.uuid4().hex

    def get(self) -> str:
        """The key itself."""
        return self._value

    def __repr__(self) -> str:
        return f"HiddenKey({_MASK!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HiddenKey):
            return NotImplemented
        return Secret(self._value) == Secret(other._value)  # constant time

    def __hash__(self) -> int:
        return hash((HiddenKey, len(self._value)))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_key, (self._value, self._token))

    def __dask_tokenize__(self) -> str:
        return self._token


def _rebuild_key(value: str, token: str) -> HiddenKey:
    key = HiddenKey(value)
    key._token = token
    return key


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker needs to build its client and join the cluster-wide bound.

    Attributes:
        options: every `ClientOptions` setting except ``api_key``, resolved on the driver
            (``base_url`` from ``PHOSPHO_BASE_URL`` there, defaults applied), as
            ``(name, value)`` pairs.
        key: the key given as an argument, hidden; ``None``: each worker reads
            ``PHOSPHO_API_KEY`` from its own environment.
        max_concurrency: requests in flight across the whole cluster (>= 1).
        bound_name: the name of the cluster-wide semaphore; calls sharing a name share
            one bound.
    """

    options: tuple[tuple[str, Any], ...]
    key: HiddenKey | None = field(default=None)
    max_concurrency: int = 16
    bound_name: str = "phospho-embed"

    @classmethod
    def build(
        cls,
        max_concurrency: int,
        bound_name: str | None,
        settings: dict[str, Any],
    ) -> WorkerSettings:
        """Check ``settings`` (any `ClientOptions` field) on the driver and pack them.

        Raises:
            TypeError / ValueError: an unknown setting, or one of the wrong type or range
                (as the core clients do), before anything is scheduled.
        """
        settings = dict(settings)
        raw_key = settings.pop("api_key", None)
        if isinstance(raw_key, Secret):
            raw_key = raw_key.get()
        elif hasattr(raw_key, "get_secret_value"):  # pydantic's SecretStr
            raw_key = raw_key.get_secret_value()
        if raw_key is not None and not isinstance(raw_key, str):
            raise TypeError(f"api_key must be a str, got {type(raw_key).__name__}")
        settings["max_concurrency"] = max_concurrency
        # Validated here (with a throwaway key when none is given), so that a bad setting
        # fails on the driver rather than once per partition on the workers.
        checked = ClientOptions.build(None, {**settings, "api_key": raw_key or "driver-check"})
        if raw_key:
            raw_key = checked.require_api_key()  # stripped, and refused if it cannot be sent
        options = tuple(
            (name, getattr(checked, name)) for name in ClientOptions.names() if name != "api_key"
        )
        name = bound_name if bound_name is not None else f"phospho-embed/{max_concurrency}"
        if not isinstance(name, str) or not name:
            raise ValueError("bound_name must be a non-empty str")
        return cls(options, HiddenKey(raw_key) if raw_key else None, max_concurrency, name)

    def client_options(self) -> ClientOptions:
        """The options of this worker's clients (the key: carried, else this process's
        ``PHOSPHO_API_KEY``).

        Raises:
            MissingAPIKeyError: no key was carried and this process's environment has none.
        """
        key = self.key.get() if self.key is not None else os.environ.get(API_KEY_ENV)
        if not key:
            raise MissingAPIKeyError(
                "No phospho API key on this Dask worker: pass api_key=... to the phospho_embed."
                f"dask call, or set {API_KEY_ENV} in every worker's environment."
            )
        return ClientOptions(api_key=key, **dict(self.options))

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        # Without this Dask would hash the pickled object, key included, into task names.
        key_token = self.key.__dask_tokenize__() if self.key is not None else None
        return (type(self).__name__, repr(self.options), key_token, self.bound_name)

    @property
    def model(self) -> str:
        """The model the vectors come from (written into each output file)."""
        return str(dict(self.options)["model"])
