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

from phospho_embed import (
    AsyncPhosphoClient,
    ClientOptions,
    PhosphoClient,
    ProgressCallback,
    RetryPolicy,
    Usage,
)
from phospho_embed._adapter import Clients, OwnsClients
from phospho_embed._options import API_KEY_ENV, BASE_URL_ENV, PROJECT_ID_ENV

_default = ClientOptions.default


class PhosphoEmbeddings(OwnsClients, Serializable, Embeddings):
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

    The fields are the core's `ClientOptions` (same names and defaults). Changing one
    later (``embeddings.max_concurrency = 32``, ``model_copy(update=...)``) takes effect at
    the next call; a copy (``copy.deepcopy`` included) or an unpickled object builds its
    own clients.
    """

    model: str = _default("model")
    """The phospho model name."""
    api_key: SecretStr | None = Field(default_factory=secret_from_env(API_KEY_ENV, default=None))
    """API key; else ``PHOSPHO_API_KEY``. Missing: the first request raises
    ``MissingAPIKeyError``."""
    base_url: str | None = Field(default_factory=from_env(BASE_URL_ENV, default=None))
    """Endpoint; else ``PHOSPHO_BASE_URL``, else ``https://api.phospho.ai/v2``."""
    project_id: str | None = Field(default_factory=from_env(PROJECT_ID_ENV, default=None))
    """phospho project to link embeddings to; else ``PHOSPHO_PROJECT_ID``; sent only when set."""
    timeout: float = Field(default=_default("timeout"), gt=0)
    """Seconds per attempt (default 60)."""
    max_retries: int = Field(default=_default("max_retries"), ge=0)
    """Retries after the first attempt, for transient failures only (default 4)."""
    max_concurrency: int = Field(default=_default("max_concurrency"), ge=1)
    """Requests in flight at once, across every call on this instance (default 16); the sync
    and the async methods each have this bound."""
    adaptive_concurrency: bool = _default("adaptive_concurrency")
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

    _clients: Clients = PrivateAttr(default_factory=Clients)

    @model_validator(mode="after")
    def _validate(self) -> Self:
        """Check every setting now (no client is built and nothing is sent until first use)."""
        ClientOptions.from_attributes(self)
        if self.show_progress_bar:
            _tqdm()  # a missing extra should fail now, not after the first requests
        return self

    @property
    def _client(self) -> PhosphoClient:
        return self._clients.sync(ClientOptions.from_attributes(self), self.http_client)

    @property
    def _async_client(self) -> AsyncPhosphoClient:
        return self._clients.async_(ClientOptions.from_attributes(self), self.http_async_client)

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
        return self._clients.usage

    def close(self) -> None:
        """Close the sync connection pool (an injected ``http_client`` stays open); the
        embeddings stay usable: the next call opens a new one."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the sync and async connection pools (injected clients stay open); the
        embeddings stay usable."""
        await self._clients.aclose()

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
