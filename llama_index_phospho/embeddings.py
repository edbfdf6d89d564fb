"""`PhosphoEmbedding`: phospho intent embeddings as a LlamaIndex ``BaseEmbedding``.

The class maps LlamaIndex's hooks onto the core clients of `phospho_embed`; every request,
retry and concurrency rule lives there, and the live clients are the core's adapter
`Clients` (rebuilt when a field changes, never pickled). What is LlamaIndex-specific lives
here: pydantic fields that survive ``to_dict`` and pickling (minus the key), the batch size,
and a ``rate_limiter`` charged per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr, SecretStr, model_validator
from llama_index.core.utils import get_tqdm_iterable

from phospho_embed import (
    AsyncPhosphoClient,
    BatchResults,
    ClientOptions,
    PhosphoClient,
    PhosphoError,
    Usage,
    wire,
)
from phospho_embed._adapter import Clients, OwnsClients

_default = ClientOptions.default
#: LlamaIndex's own upper bound on ``embed_batch_size``.
_MAX_EMBED_BATCH_SIZE = 2048
#: Default batches hold this many texts per allowed request in flight (see `_default_batch_size`).
_TEXTS_PER_SLOT = 16
#: ``OpenAIEmbedding`` arguments that have another name here.
_RENAMED = {"api_base": "base_url", "model": "model_name"}


def _default_batch_size(max_concurrency: object) -> int:
    """The ``embed_batch_size`` used when none is given: ``16 * max_concurrency``, at most 2048.

    LlamaIndex's sync path sends one batch after the other and waits for each, so a batch
    smaller than ``max_concurrency`` can never fill the allowed requests in flight, and each
    batch's last few requests run with the others idle. Sixteen texts per slot keeps that
    idle tail to a few percent of a batch.
    """
    slots: int = _default("max_concurrency")
    if isinstance(max_concurrency, int) and not isinstance(max_concurrency, bool):
        slots = max_concurrency  # anything else: the field's own check reports it
    return max(1, min(_MAX_EMBED_BATCH_SIZE, _TEXTS_PER_SLOT * slots))


def _paced(texts: list[str], step: int) -> list[tuple[list[str], int]]:
    """A rate-limited batch's distinct texts in slices of ``step``, each with the permits to
    take just before sending it: one per request, less the one LlamaIndex took for the
    batch. Slice by slice, requests leave at the limiter's pace, not all after one long wait.
    """
    distinct = list(dict.fromkeys(texts))
    slices = [distinct[start : start + step] for start in range(0, len(distinct), step)]
    return [(part, len(part) - (index == 0)) for index, part in enumerate(slices)]


class PhosphoEmbedding(OwnsClients, BaseEmbedding):
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
    ``PHOSPHO_PROJECT_ID``, then the defaults (the core's `ClientOptions`). ``None`` in a
    field means "from the environment", read at each call. A field changed later
    (``model.max_concurrency = 32``, ``model_copy(update=...)``) takes effect at the next
    call; a copy (``copy.deepcopy`` included) or an unpickled model builds its own clients.
    The key is never part of ``to_dict()``, ``to_json()``, ``repr()`` or instrumentation
    payloads; ``pickle`` keeps an explicitly given key so that worker processes
    (``IngestionPipeline.run(num_workers=...)``) work.

    Every ``BaseEmbedding`` keyword works: ``callback_manager``, ``num_workers``,
    ``embeddings_cache``, and ``rate_limiter``, which is charged one permit per request sent
    (LlamaIndex itself charges one per batch). Errors are the typed exceptions of
    `phospho_embed` (all subclass ``PhosphoError``); when some texts of a batch fail,
    ``BatchEmbeddingError.embeddings`` keeps every vector that arrived.
    """

    model_name: str = Field(
        default=_default("model"), description="The phospho model: 'intent-embed'."
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
        description="The API base URL; None reads PHOSPHO_BASE_URL, else the phospho API.",
    )
    project_id: str | None = Field(
        default=None,
        description="The phospho project to link embeddings to; None reads PHOSPHO_PROJECT_ID.",
    )
    timeout: float = Field(
        default=_default("timeout"), gt=0, allow_inf_nan=False, description="Seconds per attempt."
    )
    max_retries: int = Field(
        default=_default("max_retries"),
        ge=0,
        strict=True,
        description="Retries after the first attempt, for transient failures only.",
    )
    max_concurrency: int = Field(
        default=_default("max_concurrency"),
        ge=1,
        strict=True,
        description="Requests in flight at once, across every call on this instance.",
    )
    adaptive_concurrency: bool = Field(
        default=_default("adaptive_concurrency"),
        description="Fewer requests in flight after 429s, more again as requests succeed.",
    )
    retry_policy: wire.RetryPolicy | None = Field(
        default=None,
        exclude=True,  # not serialized, like an injected client
        description="The backoff between attempts (phospho_embed.RetryPolicy).",
    )

    _clients: Clients = PrivateAttr(default_factory=Clients)
    # The default batch size last set, while it follows max_concurrency (None: chosen).
    _auto_batch_size: int | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any) -> Any:
        """Refuse unknown keywords and size the default batches to ``max_concurrency``.

        pydantic would drop an unknown keyword silently, and an ``api_base=`` kept from
        ``OpenAIEmbedding`` would then send the texts (and the key) to the default endpoint.
        """
        if not isinstance(data, dict):
            return data
        unknown = sorted(set(data) - set(cls.model_fields))
        if unknown:
            hints = [f"{n!r} (use {_RENAMED[n]!r})" if n in _RENAMED else repr(n) for n in unknown]
            raise TypeError(f"PhosphoEmbedding got unknown arguments: {', '.join(hints)}")
        if data.get("embed_batch_size") is None:
            concurrency = data.get("max_concurrency", _default("max_concurrency"))
            data = {**data, "embed_batch_size": _default_batch_size(concurrency)}
        return data

    @model_validator(mode="after")
    def _check(self) -> PhosphoEmbedding:
        """Check every setting as the core will (a typo fails where it is made)."""
        self._options()
        if self.embed_batch_size == _default_batch_size(self.max_concurrency):
            self._auto_batch_size = self.embed_batch_size
        return self

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex stores in ``to_dict()`` to find the class again."""
        return "PhosphoEmbedding"

    # -- LlamaIndex's hooks -------------------------------------------------------------------

    def _get_query_embedding(self, query: str) -> Embedding:
        """One query, one request (intent-embed embeds queries and texts alike)."""
        return self._sync_client().embed(query)

    async def _aget_query_embedding(self, query: str) -> Embedding:
        """One query, one request."""
        return await self._async_client().embed(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        """One text, one request."""
        return self._sync_client().embed(text)

    async def _aget_text_embedding(self, text: str) -> Embedding:
        """One text, one request."""
        return await self._async_client().embed(text)

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        """One LlamaIndex batch: concurrent, in input order, each distinct text sent once."""
        client = self._sync_client()
        limiter = self._rate_limiter()
        if limiter is None:
            return client.embed_many(texts)
        results = BatchResults(texts)
        for part, permits in _paced(texts, self.max_concurrency):
            if results.stopped_by is not None:
                break
            for _ in range(permits):
                limiter.acquire()
            try:
                results.add(part, client.embed_many(part))
            except PhosphoError as error:
                results.add(part, error)
        return results.result()

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        """One LlamaIndex batch, async; batches gathered at once share the same bound."""
        client = self._async_client()
        limiter = self._rate_limiter()
        if limiter is None:
            return await client.embed_many(texts)
        results = BatchResults(texts)
        for part, permits in _paced(texts, self.max_concurrency):
            if results.stopped_by is not None:
                break
            for _ in range(permits):
                await limiter.async_acquire()
            try:
                results.add(part, await client.embed_many(part))
            except PhosphoError as error:
                results.add(part, error)
        return results.result()

    # -- the two public methods overridden ---------------------------------------------------

    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        """Embed ``texts`` in batches of ``embed_batch_size``, in input order.

        Overridden because LlamaIndex's version raises at the first failed batch and drops
        the vectors of the batches before it, which are paid for. Here every text is
        checked first (the error names its index in ``texts``), each batch still goes
        through LlamaIndex's own method (events, cache, rate limiter), the other batches
        run when one fails (but none after a 401/402/403), and the `BatchEmbeddingError`
        holds every vector of the call, indexed as ``texts``.

        Raises:
            TypeError / ValueError: a non-string, or an empty or whitespace-only text.
            PhosphoError: a subclass saying what went wrong (see ``phospho_embed.errors``).
        """
        checked = wire.check_texts(texts)  # also refuses a lone str, which would go by char
        results = BatchResults(checked)
        parts = get_tqdm_iterable(self._batches(checked), show_progress, "Generating embeddings")
        for part in parts:
            if results.stopped_by is not None:
                break
            try:
                results.add(part, super().get_text_embedding_batch(part, **kwargs))
            except PhosphoError as error:
                results.add(part, error)
        return results.result()

    async def aget_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        """Async `get_text_embedding_batch`, overridden for the same reason: LlamaIndex's
        version loses every batch's vectors when one batch fails. Batches run concurrently
        (``num_workers`` at once when set), all within this instance's ``max_concurrency``."""
        checked = wire.check_texts(texts)
        parts = self._batches(checked)
        workers = asyncio.Semaphore(self.num_workers or len(parts) or 1)
        embed_part: Callable[..., Awaitable[list[Embedding]]] = super().aget_text_embedding_batch

        async def one(part: list[str]) -> list[Embedding] | PhosphoError:
            async with workers:
                try:
                    return await embed_part(part, **kwargs)
                except PhosphoError as error:
                    return error

        jobs = [one(part) for part in parts]
        if show_progress:
            from tqdm.asyncio import tqdm_asyncio

            outcomes = await tqdm_asyncio.gather(*jobs, desc="Generating embeddings")
        else:
            outcomes = await asyncio.gather(*jobs)
        results = BatchResults(checked)
        for part, outcome in zip(parts, outcomes, strict=True):
            results.add(part, outcome)
        return results.result()

    def _batches(self, texts: list[str]) -> list[list[str]]:
        if self._auto_batch_size == self.embed_batch_size:  # not set by hand since
            # The default follows a max_concurrency assigned later.
            self.embed_batch_size = self._auto_batch_size = _default_batch_size(
                self.max_concurrency
            )
        size = self.embed_batch_size
        return [texts[start : start + size] for start in range(0, len(texts), size)]

    # -- clients and resources --------------------------------------------------------------

    @property
    def usage(self) -> Usage:
        """Requests billed, retries and tokens so far, over every client of this instance."""
        return self._clients.usage

    def close(self) -> None:
        """Release the sync connection pool and threads; the model stays usable (a new
        client is built at the next call)."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the sync and async clients; the model stays usable."""
        await self._clients.aclose()

    def _options(self) -> ClientOptions:
        return ClientOptions.from_attributes(self, renamed={"model": "model_name"})

    def _sync_client(self) -> PhosphoClient:
        return self._clients.sync(self._options(), None)

    def _async_client(self) -> AsyncPhosphoClient:
        return self._clients.async_(self._options(), None)

    def _rate_limiter(self) -> Any:
        # BaseEmbedding gained `rate_limiter` in 2026 (llama-index-core 0.14.x); on the older
        # cores the `llama-index` extra allows, the field does not exist and nothing is paced.
        return getattr(self, "rate_limiter", None)
