"""`PhosphoEmbedding`: phospho intent embeddings as a LlamaIndex ``BaseEmbedding``.

The class only maps LlamaIndex's interface onto the core clients of `phospho_embed`; every
request, retry and concurrency rule lives there. What is LlamaIndex-specific lives here:
pydantic fields that survive ``to_dict`` and pickling (minus the key), live clients kept out
of both, one async client per event loop, and a ``rate_limiter`` counted per request.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr, SecretStr, field_validator
from llama_index.core.utils import get_tqdm_iterable

from phospho_embed import (
    AsyncPhosphoClient,
    BatchEmbeddingError,
    MissingAPIKeyError,
    PhosphoClient,
    PhosphoError,
    Usage,
    wire,
)
from phospho_embed._settings import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
)

#: LlamaIndex's own upper bound on ``embed_batch_size``.
_MAX_EMBED_BATCH_SIZE = 2048
#: Default batches hold this many texts per allowed request in flight (see `_default_batch_size`).
_TEXTS_PER_SLOT = 16


def _default_batch_size(max_concurrency: int) -> int:
    """The ``embed_batch_size`` used when none is given: ``16 * max_concurrency``, at most 2048.

    LlamaIndex's sync path sends one batch after the other and waits for each, so a batch
    smaller than ``max_concurrency`` can never fill the allowed requests in flight, and each
    batch's last few requests run with the others idle. Sixteen texts per slot keeps that
    idle tail to a few percent of a batch.
    """
    return max(1, min(_MAX_EMBED_BATCH_SIZE, _TEXTS_PER_SLOT * max_concurrency))


class _Config(NamedTuple):
    """The settings a live client was built from; a client is rebuilt when they change."""

    api_key: SecretStr | None
    base_url: str | None
    project_id: str | None
    model: str
    timeout: float
    max_retries: int
    max_concurrency: int
    adaptive_concurrency: bool
    retry_policy: wire.RetryPolicy | None


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(
        a.requests + b.requests,
        a.retries + b.retries,
        a.prompt_tokens + b.prompt_tokens,
        a.total_tokens + b.total_tokens,
    )


class _Clients:
    """The live clients of one `PhosphoEmbedding`: a sync client and one async client per loop.

    Connection pools, threads and asyncio primitives cannot cross a process boundary, and the
    core refuses to pickle the key they hold, so this holder pickles (and deep-copies) as an
    empty one: a copy builds its own clients at first use. That also keeps LlamaIndex's
    ``BaseComponent.__getstate__`` from logging "Removing unpickleable private attribute".
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sync: tuple[_Config, PhosphoClient] | None = None
        # Keyed by loop, because an httpx pool and a semaphore belong to the loop that made
        # them, and a program may alternate loops (notebook loop, asyncio.run in a thread).
        self.by_loop: dict[asyncio.AbstractEventLoop, tuple[_Config, AsyncPhosphoClient]] = {}
        # Usage of clients already dropped, so `PhosphoEmbedding.usage` never goes backwards.
        self.retired = Usage()

    def __reduce__(self) -> tuple[type[_Clients], tuple[()]]:
        return (_Clients, ())

    def sync_client(self, config: _Config) -> PhosphoClient:
        with self.lock:
            if self.sync is None or self.sync[0] != config:
                if self.sync is not None:
                    # Not closed: another thread may still be using it; the GC releases it.
                    self.retired = _add(self.retired, self.sync[1].usage)
                self.sync = (config, PhosphoClient(**_client_kwargs(config)))
            return self.sync[1]

    def async_client(self, config: _Config) -> AsyncPhosphoClient:
        loop = asyncio.get_running_loop()
        with self.lock:
            # A closed loop's connections are dead with it and cannot even be closed now.
            for old in [other for other in self.by_loop if other.is_closed()]:
                self.retired = _add(self.retired, self.by_loop.pop(old)[1].usage)
            entry = self.by_loop.get(loop)
            if entry is None or entry[0] != config:
                if entry is not None:
                    self.retired = _add(self.retired, entry[1].usage)
                entry = (config, AsyncPhosphoClient(**_client_kwargs(config)))
                self.by_loop[loop] = entry
            return entry[1]

    def usage(self) -> Usage:
        with self.lock:
            return self._usage()

    def take_all(self) -> tuple[PhosphoClient | None, dict[Any, AsyncPhosphoClient]]:
        """Forget every client (their usage is kept) and hand them over to be closed."""
        with self.lock:
            sync = self.sync[1] if self.sync is not None else None
            by_loop = {loop: client for loop, (_, client) in self.by_loop.items()}
            self.retired = self._usage()
            self.sync = None
            self.by_loop = {}
            return sync, by_loop

    def _usage(self) -> Usage:
        """The usage of every client, past and present (lock held)."""
        total = self.retired
        if self.sync is not None:
            total = _add(total, self.sync[1].usage)
        for _, client in self.by_loop.values():
            total = _add(total, client.usage)
        return total


def _client_kwargs(config: _Config) -> dict[str, Any]:
    return {
        "api_key": config.api_key.get_secret_value() if config.api_key is not None else None,
        "base_url": config.base_url,
        "project_id": config.project_id,
        "model": config.model,
        "timeout": config.timeout,
        "max_retries": config.max_retries,
        "max_concurrency": config.max_concurrency,
        "adaptive_concurrency": config.adaptive_concurrency,
        "retry_policy": config.retry_policy,
    }


#: ``OpenAIEmbedding`` arguments that have another name here.
_RENAMED = {"api_base": "base_url", "model": "model_name"}


def _refuse_unknown(kwargs: dict[str, Any]) -> None:
    """Refuse keywords neither this class nor ``BaseEmbedding`` knows: pydantic would drop
    them silently, and an ``api_base=`` kept from ``OpenAIEmbedding`` would then send the
    texts (and the key) to the default endpoint."""
    unknown = sorted(set(kwargs) - set(BaseEmbedding.model_fields))
    if not unknown:
        return
    hints = [
        f"{name!r} (use {_RENAMED[name]!r})" if name in _RENAMED else repr(name) for name in unknown
    ]
    raise TypeError(f"PhosphoEmbedding got unknown arguments: {', '.join(hints)}")


class _Outcomes:
    """What the parts of one call delivered, by text, assembled in input order at the end.

    A call sent in parts (LlamaIndex's batches, rate-limited slices) keeps every vector a
    part delivered when another part fails, and raises one `BatchEmbeddingError` indexed by
    the whole call's input, as ``embed_many`` does.
    """

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = list(texts)
        self.vectors: dict[str, list[float]] = {}
        self.errors: dict[str, BaseException] = {}
        self.fatal: PhosphoError | None = None

    def done(self, chunk: list[str], vectors: list[list[float]]) -> None:
        self.vectors.update(zip(chunk, vectors, strict=True))

    def failed(self, chunk: list[str], error: PhosphoError) -> None:
        """Keep what a part delivered; a 401/402/403 or no key stops the parts to come."""
        if isinstance(error, BatchEmbeddingError):
            for index, text in enumerate(chunk):
                vector = error.embeddings[index]
                if vector is None:
                    self.errors[text] = error.errors[index]
                else:
                    self.vectors[text] = vector
            cause = error.__cause__
            if isinstance(cause, PhosphoError) and wire.is_fatal(cause):
                self.fatal = cause
        else:
            self.errors.update(dict.fromkeys(chunk, error))
            if wire.is_fatal(error) or isinstance(error, MissingAPIKeyError):
                self.fatal = error  # every other part would fail the same way

    @property
    def stopped(self) -> bool:
        return self.fatal is not None

    def result(self) -> list[list[float]]:
        """The vectors in input order, or the same errors `embed_many` would raise."""
        embeddings: list[list[float] | None] = []
        errors: dict[int, BaseException] = {}
        seen: set[str] = set()
        for index, text in enumerate(self.texts):
            vector = self.vectors.get(text)
            if vector is None:
                errors[index] = self.errors.get(text) or self.fatal or PhosphoError("not sent")
                embeddings.append(None)
            else:
                # A copy for repeats, as the core does: callers may mutate vectors in place.
                embeddings.append(list(vector) if text in seen else vector)
                seen.add(text)
        if not errors:
            return embeddings  # type: ignore[return-value]  # no None left
        if self.fatal is not None and not self.vectors:
            raise self.fatal
        raise BatchEmbeddingError(embeddings, errors) from self.fatal


class _Paced(_Outcomes):
    """One rate-limited batch: its distinct texts in slices of ``step``, one permit per request.

    LlamaIndex acquires its ``rate_limiter`` once per batch, as if a batch were one request;
    here a batch is one request per distinct text, so the adapter takes the other permits
    itself. It takes them slice by slice, just before sending each slice, so that requests
    leave at the limiter's pace rather than all at once after a long wait.
    """

    def __init__(self, texts: Sequence[str], step: int) -> None:
        super().__init__(texts)
        self.distinct = list(dict.fromkeys(self.texts))
        self.step = step

    def slices(self) -> list[tuple[list[str], int]]:
        """Each slice with the permits to take before sending it (LlamaIndex took one)."""
        chunks = [
            self.distinct[start : start + self.step]
            for start in range(0, len(self.distinct), self.step)
        ]
        return [(chunk, len(chunk) - (index == 0)) for index, chunk in enumerate(chunks)]


class PhosphoEmbedding(BaseEmbedding):
    """phospho intent embeddings for LlamaIndex: concurrent, ordered, retried and bounded.

    Each text is one request to the phospho API (which runs an LLM per text), so the batch
    methods send up to ``max_concurrency`` requests at once, request each distinct text of a
    batch once, and return the vectors in input order; the async methods are natively async.
    Queries and documents are embedded the same way: intent-embed has no separate query mode.

    Setup:
        ``pip install "phospho-embed[llama-index]"`` and set ``PHOSPHO_API_KEY``.

    Example:
        ```python
        from llama_index.core import Settings
        from llama_index.embeddings.phospho import PhosphoEmbedding

        Settings.embed_model = PhosphoEmbedding()  # PHOSPHO_API_KEY from the environment
        vector = Settings.embed_model.get_query_embedding("I want a refund")
        ```

    Settings: an argument wins, then ``PHOSPHO_API_KEY`` / ``PHOSPHO_BASE_URL`` /
    ``PHOSPHO_PROJECT_ID``, then the defaults. ``None`` in a field means "from the
    environment, when the client is built". The key is never part of ``to_dict()``,
    ``to_json()``, ``repr()`` or instrumentation payloads; ``pickle`` keeps an explicitly
    given key so that worker processes (``IngestionPipeline.run(num_workers=...)``) work.

    Every ``BaseEmbedding`` keyword works: ``callback_manager``, ``num_workers``,
    ``embeddings_cache``, and ``rate_limiter``, which is charged one permit per request sent
    (LlamaIndex itself charges one per batch). Errors are the typed exceptions of
    `phospho_embed` (all subclass ``PhosphoError``); when some texts of a batch fail,
    ``BatchEmbeddingError.embeddings`` keeps every vector that arrived.
    """

    model_name: str = Field(
        default=wire.DEFAULT_MODEL, description="The phospho model: 'intent-embed'."
    )
    api_key: SecretStr | None = Field(
        default=None,
        # Excluded from to_dict/to_json and repr; pickling keeps it (worker processes).
        exclude=True,
        repr=False,
        description="The phospho API key; None reads PHOSPHO_API_KEY.",
    )
    base_url: str | None = Field(
        default=None,
        description=(
            "The API base URL; None reads PHOSPHO_BASE_URL, else https://api.phospho.ai/v2."
        ),
    )
    project_id: str | None = Field(
        default=None,
        description="The phospho project to link embeddings to; None reads PHOSPHO_PROJECT_ID.",
    )
    timeout: float = Field(
        default=DEFAULT_TIMEOUT, gt=0, allow_inf_nan=False, description="Seconds per attempt."
    )
    max_retries: int = Field(
        default=DEFAULT_MAX_RETRIES,
        ge=0,
        strict=True,
        description="Retries after the first attempt, for transient failures only.",
    )
    max_concurrency: int = Field(
        default=DEFAULT_MAX_CONCURRENCY,
        ge=1,
        strict=True,
        description="Requests in flight at once, across every call on this instance.",
    )
    adaptive_concurrency: bool = Field(
        default=True,
        description=(
            "Lower the requests in flight after 429s and raise them again as requests "
            "succeed; False keeps max_concurrency fixed."
        ),
    )
    retry_policy: wire.RetryPolicy | None = Field(
        default=None,
        exclude=True,  # not serialized, like an injected client
        description="The backoff between attempts (phospho_embed.RetryPolicy).",
    )

    _clients: _Clients = PrivateAttr(default_factory=_Clients)

    def __init__(
        self,
        model_name: str = wire.DEFAULT_MODEL,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        project_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        embed_batch_size: int | None = None,
        adaptive_concurrency: bool = True,
        retry_policy: wire.RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        """Configure the model; nothing is sent and no client is built until first use.

        Args:
            model_name: the phospho model, ``"intent-embed"``.
            api_key: the API key; else ``PHOSPHO_API_KEY`` (read when the client is built).
                A missing key raises ``MissingAPIKeyError`` at the first request.
            base_url: else ``PHOSPHO_BASE_URL``, else ``https://api.phospho.ai/v2``.
            project_id: else ``PHOSPHO_PROJECT_ID``; sent only when set.
            timeout: seconds per attempt (default 60).
            max_retries: retries after the first attempt, for transient failures only
                (default 4).
            max_concurrency: requests in flight at once, across every call on this instance
                (per event loop for the async methods; default 16).
            embed_batch_size: texts per LlamaIndex batch; by default
                ``16 * max_concurrency`` (at most 2048) so batches keep every slot busy.
            adaptive_concurrency: lower the requests in flight after 429s and raise them
                again as requests succeed; ``False`` keeps ``max_concurrency`` fixed.
            retry_policy: the backoff between attempts (``phospho_embed.RetryPolicy``); not
                serialized by ``to_dict``.
            **kwargs: passed to ``BaseEmbedding``: ``callback_manager``, ``num_workers``,
                ``embeddings_cache``, ``rate_limiter``.
        """
        _refuse_unknown(kwargs)
        if embed_batch_size is None:
            embed_batch_size = (
                _default_batch_size(max_concurrency)
                if isinstance(max_concurrency, int) and not isinstance(max_concurrency, bool)
                else _TEXTS_PER_SLOT * DEFAULT_MAX_CONCURRENCY  # the field check reports it
            )
        # A dict, because type checkers see BaseEmbedding's synthesized __init__, which does
        # not know the fields this subclass adds; pydantic validates every one of them.
        fields: dict[str, Any] = {
            "model_name": model_name,
            "api_key": api_key,
            "base_url": base_url,
            "project_id": project_id,
            "timeout": timeout,
            "max_retries": max_retries,
            "max_concurrency": max_concurrency,
            "embed_batch_size": embed_batch_size,
            "adaptive_concurrency": adaptive_concurrency,
            "retry_policy": retry_policy,
        }
        super().__init__(**fields, **kwargs)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        # The core checks this too, but only at first use; a typo should fail where it is made.
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {value!r}")
        return value

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex stores in ``to_dict()`` to find the class again."""
        return "PhosphoEmbedding"

    # -- single texts -----------------------------------------------------------------------

    def _get_query_embedding(self, query: str) -> Embedding:
        """One query, one request (intent-embed embeds queries and texts alike)."""
        return self._sync_client().embed(query)

    async def _aget_query_embedding(self, query: str) -> Embedding:
        """One query, one request, on this event loop's client."""
        return await self._async_client().embed(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        """One text, one request."""
        return self._sync_client().embed(text)

    async def _aget_text_embedding(self, text: str) -> Embedding:
        """One text, one request, on this event loop's client."""
        return await self._async_client().embed(text)

    # -- batches ----------------------------------------------------------------------------

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        """One LlamaIndex batch: concurrent, in input order, each distinct text sent once."""
        client = self._sync_client()
        limiter = self._rate_limiter()
        if limiter is None:
            return client.embed_many(texts)
        paced = _Paced(texts, self.max_concurrency)
        for chunk, permits in paced.slices():
            for _ in range(permits):
                limiter.acquire()
            try:
                paced.done(chunk, client.embed_many(chunk))
            except PhosphoError as error:
                paced.failed(chunk, error)
                if paced.stopped:
                    break
        return paced.result()

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        """One LlamaIndex batch, async; batches gathered at once share the same bound."""
        client = self._async_client()
        limiter = self._rate_limiter()
        if limiter is None:
            return await client.embed_many(texts)
        paced = _Paced(texts, self.max_concurrency)
        for chunk, permits in paced.slices():
            for _ in range(permits):
                await limiter.async_acquire()
            try:
                paced.done(chunk, await client.embed_many(chunk))
            except PhosphoError as error:
                paced.failed(chunk, error)
                if paced.stopped:
                    break
        return paced.result()

    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        """Embed ``texts`` in batches of ``embed_batch_size``, in input order.

        Every text is checked first, so a bad one fails the call before any batch is sent,
        and the error names its index in ``texts`` (not in a batch). When texts fail, the
        other batches still run (but after a 401/402/403) and the `BatchEmbeddingError`
        holds every vector of the call, indexed as ``texts``.

        Raises:
            TypeError / ValueError: a non-string, or an empty or whitespace-only text.
            PhosphoError: a subclass saying what went wrong (see ``phospho_embed.errors``).
        """
        checked = wire.check_texts(texts)  # also refuses a lone str, which would go by char
        outcomes = _Outcomes(checked)
        # One LlamaIndex batch per call of the base method (its events, cache and rate
        # limiter unchanged), so that a failing batch cannot drop the others' vectors.
        batches = get_tqdm_iterable(self._batches(checked), show_progress, "Generating embeddings")
        for batch in batches:
            if outcomes.stopped:  # a 401/402/403: the texts left get that error, unsent
                break
            try:
                outcomes.done(batch, super().get_text_embedding_batch(batch, **kwargs))
            except PhosphoError as error:
                outcomes.failed(batch, error)
        return outcomes.result()

    async def aget_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        """Async `get_text_embedding_batch`: batches run concurrently (``num_workers`` at
        once when set), all within this instance's ``max_concurrency``; a failing batch
        keeps the others' vectors in the `BatchEmbeddingError`, as in the sync method."""
        checked = wire.check_texts(texts)
        outcomes = _Outcomes(checked)
        embed_batch = super().aget_text_embedding_batch
        workers = asyncio.Semaphore(self.num_workers or len(checked) or 1)

        async def one(batch: list[str]) -> list[Embedding] | PhosphoError:
            async with workers:
                try:
                    return await embed_batch(batch, **kwargs)
                except PhosphoError as error:
                    return error

        batches = self._batches(checked)
        jobs = [one(batch) for batch in batches]
        if show_progress:
            from tqdm.asyncio import tqdm_asyncio

            results = await tqdm_asyncio.gather(*jobs, desc="Generating embeddings")
        else:
            results = await asyncio.gather(*jobs)
        for batch, result in zip(batches, results, strict=True):
            if isinstance(result, PhosphoError):
                outcomes.failed(batch, result)
            else:
                outcomes.done(batch, result)
        return outcomes.result()

    def _batches(self, texts: list[str]) -> list[list[str]]:
        size = self.embed_batch_size
        return [texts[start : start + size] for start in range(0, len(texts), size)]

    # -- clients and resources --------------------------------------------------------------

    @property
    def usage(self) -> Usage:
        """Requests billed, retries and tokens so far, over every client of this instance."""
        return self._clients.usage()

    def close(self) -> None:
        """Release the connection pools and threads; the model stays usable (new clients are
        built at the next call). Async pools of still-running loops are best closed with
        `aclose` from inside their loop."""
        sync, _ = self._clients.take_all()
        if sync is not None:
            sync.close()

    async def aclose(self) -> None:
        """Close the clients: this event loop's async pool and the sync pool; others dropped."""
        sync, by_loop = self._clients.take_all()
        if sync is not None:
            sync.close()
        client = by_loop.get(asyncio.get_running_loop())
        if client is not None:
            await client.aclose()

    def _config(self) -> _Config:
        key: object = self.api_key
        # Assignment is not validated (BaseEmbedding's config), so `model.api_key = "..."`
        # leaves a plain str here.
        if isinstance(key, str):
            key = SecretStr(key)
        return _Config(
            api_key=key if isinstance(key, SecretStr) else None,
            base_url=self.base_url,
            project_id=self.project_id,
            model=self.model_name,
            timeout=self.timeout,
            max_retries=self.max_retries,
            max_concurrency=self.max_concurrency,
            adaptive_concurrency=self.adaptive_concurrency,
            retry_policy=self.retry_policy,
        )

    def _rate_limiter(self) -> Any:
        # BaseEmbedding gained `rate_limiter` in 2026 (llama-index-core 0.14.x); on the older
        # cores the `llama-index` extra allows, the field does not exist and nothing is paced.
        return getattr(self, "rate_limiter", None)

    def _sync_client(self) -> PhosphoClient:
        return self._clients.sync_client(self._config())

    def _async_client(self) -> AsyncPhosphoClient:
        return self._clients.async_client(self._config())
