"""`PhosphoEmbeddings`: phospho intent embeddings as a LangChain ``Embeddings``.

The class only maps LangChain's interface onto the core clients of `phospho_embed`; every
request, retry and concurrency rule lives there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from langchain_core.embeddings import Embeddings
from langchain_core.load.serializable import Serializable
from langchain_core.utils import from_env, secret_from_env
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, model_validator
from typing_extensions import Self

from phospho_embed import AsyncPhosphoClient, PhosphoClient, ProgressCallback, Usage
from phospho_embed._settings import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    PROJECT_ID_ENV,
)
from phospho_embed.wire import DEFAULT_MODEL, RetryPolicy


class PhosphoEmbeddings(Serializable, Embeddings):
    """phospho intent embeddings for LangChain: concurrent, ordered, retried and bounded.

    Each text is one request to the phospho API (which runs an LLM per text), so
    ``embed_documents`` sends up to ``max_concurrency`` of them at once, requests each
    distinct text once, and returns the vectors in input order. The async methods are
    natively async.

    Setup:
        ``pip install "phospho-embed[langchain]"`` and set ``PHOSPHO_API_KEY``.

    Example:
        ```python
        from langchain_phospho import PhosphoEmbeddings

        embeddings = PhosphoEmbeddings()  # PHOSPHO_API_KEY from the environment
        vectors = embeddings.embed_documents(["cancel my order", "where is my parcel?"])
        query = embeddings.embed_query("I want a refund")
        ```

    Errors are the typed exceptions of `phospho_embed` (all subclass ``PhosphoError``); when
    some texts fail, ``BatchEmbeddingError.embeddings`` keeps every vector that arrived.
    """

    model: str = DEFAULT_MODEL
    """The phospho model name."""
    api_key: SecretStr | None = Field(default_factory=secret_from_env(API_KEY_ENV, default=None))
    """API key; else ``PHOSPHO_API_KEY``. Missing: the first request raises
    ``MissingAPIKeyError``."""
    base_url: str | None = Field(default_factory=from_env(BASE_URL_ENV, default=None))
    """Endpoint; else ``PHOSPHO_BASE_URL``, else ``https://api.phospho.ai/v2``."""
    project_id: str | None = Field(default_factory=from_env(PROJECT_ID_ENV, default=None))
    """phospho project to link embeddings to; else ``PHOSPHO_PROJECT_ID``; sent only when set."""
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0)
    """Seconds per attempt (default 60)."""
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=0)
    """Retries after the first attempt, for transient failures only (default 4)."""
    max_concurrency: int = Field(default=DEFAULT_MAX_CONCURRENCY, ge=1)
    """Requests in flight at once, across every call on this instance (default 16); the sync
    and the async methods each have this bound."""
    adaptive_concurrency: bool = True
    """Lower the requests in flight after 429s and raise them again as requests succeed;
    ``False`` keeps ``max_concurrency`` fixed."""
    retry_policy: RetryPolicy | None = Field(default=None, exclude=True)
    """The backoff between attempts (``phospho_embed.RetryPolicy``); not serialized."""
    show_progress_bar: bool = False
    """Show a tqdm progress bar, advanced per text (needs ``phospho-embed[progress]``)."""
    http_client: httpx.Client | None = Field(default=None, exclude=True)
    """An ``httpx.Client`` for the sync methods (proxies, TLS...); you close it."""
    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True)
    """An ``httpx.AsyncClient`` for the async methods; you close it."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=())

    _client: PhosphoClient = PrivateAttr()
    _async_client: AsyncPhosphoClient = PrivateAttr()

    @model_validator(mode="after")
    def _validate(self) -> Self:
        """Build the core clients now, so every setting is checked at construction."""
        self._build_clients()
        return self

    def _build_clients(self) -> None:
        """Make the core clients (no network: connections open at the first request)."""
        if self.show_progress_bar:
            _tqdm()  # a missing extra should fail now, not after the first requests
        settings: dict[str, Any] = {
            "api_key": self.api_key.get_secret_value() if self.api_key else None,
            "base_url": self.base_url,
            "project_id": self.project_id,
            "model": self.model,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "max_concurrency": self.max_concurrency,
            "adaptive_concurrency": self.adaptive_concurrency,
            "retry_policy": self.retry_policy,
        }
        self._client = PhosphoClient(**settings, http_client=self.http_client)
        # The async client makes its connection pool and semaphore inside whichever event
        # loop runs it, so fresh loops (notebooks, asyncio.run twice) work.
        self._async_client = AsyncPhosphoClient(**settings, http_client=self.http_async_client)

    # -- LangChain serialization: the key is replaced by its environment variable's name ----

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """``dumpd`` / ``dumps`` record the settings; ``loads`` rebuilds the embedder."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """Where ``loads`` finds this class: ``langchain_phospho``."""
        return ["langchain_phospho"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        """The key is serialized as a reference to ``PHOSPHO_API_KEY``, never its value."""
        return {"api_key": API_KEY_ENV}

    # -- Embeddings -----------------------------------------------------------------------

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts concurrently (one request per distinct text); vectors in input order.

        Raises:
            TypeError / ValueError: a bad text, naming its index; nothing is sent.
            BatchEmbeddingError: some texts failed; it keeps every vector that arrived.
        """
        with self._progress(texts) as progress:
            return self._client.embed_many(texts, progress=progress)

    def embed_query(self, text: str) -> list[float]:
        """Embed one text (one request)."""
        return self._client.embed(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async `embed_documents`, on the event loop (no thread executor)."""
        with self._progress(texts) as progress:
            return await self._async_client.embed_many(texts, progress=progress)

    async def aembed_query(self, text: str) -> list[float]:
        """Async `embed_query`."""
        return await self._async_client.embed(text)

    # -- extras ---------------------------------------------------------------------------

    @property
    def usage(self) -> Usage:
        """Requests billed, retries and tokens so far, sync and async calls together."""
        sync, aio = self._client.usage, self._async_client.usage
        return Usage(
            sync.requests + aio.requests,
            sync.retries + aio.retries,
            sync.prompt_tokens + aio.prompt_tokens,
            sync.total_tokens + aio.total_tokens,
        )

    def close(self) -> None:
        """Close the sync connection pool (an injected ``http_client`` stays open)."""
        self._client.close()

    async def aclose(self) -> None:
        """Close the async connection pool of the running loop (injected clients stay open)."""
        await self._async_client.aclose()

    def __getstate__(self) -> dict[Any, Any]:
        # Live clients hold locks and sockets: a pickled copy rebuilds its own.
        state = super().__getstate__()
        return {**state, "__pydantic_private__": None}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._build_clients()

    @contextmanager
    def _progress(self, texts: list[str]) -> Iterator[ProgressCallback | None]:
        if not self.show_progress_bar:
            yield None
            return
        with _tqdm()(total=len(texts), desc="phospho embeddings", unit="text") as bar:
            yield bar.update


def _tqdm() -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise ImportError(
            "show_progress_bar=True needs tqdm: pip install 'phospho-embed[progress]'"
        ) from exc
    return tqdm
