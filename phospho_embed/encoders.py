"""Encoders: anything that turns texts into vectors, behind one function.

The intent tools (`phospho_embed.intents`, `phospho_embed.discovery`) take the embedder a
user already has, so the math never depends on a concrete client:

- a core client, `PhosphoClient` or `AsyncPhosphoClient` (``embed_many``);
- a LangChain ``Embeddings``, e.g. ``langchain_phospho.PhosphoEmbeddings``
  (``embed_documents`` / ``aembed_documents``);
- a LlamaIndex ``BaseEmbedding``, e.g. ``llama_index_phospho.PhosphoEmbedding``
  (``get_text_embedding_batch`` / ``aget_text_embedding_batch``).

The frameworks are recognised by their methods (duck typing), so neither LangChain nor
LlamaIndex is imported here:

```python
from phospho_embed import PhosphoClient
from phospho_embed.encoders import encode

with PhosphoClient() as client:
    matrix = encode(client, ["cancel my order", "where is my parcel?"])
matrix.shape  # (2, 1536), float32
```

Needs numpy (``pip install "phospho-embed[intents]"``, or the ``analytics`` extra).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, cast

from phospho_embed._async_client import AsyncPhosphoClient
from phospho_embed._client import PhosphoClient
from phospho_embed.errors import BatchEmbeddingError

try:
    import numpy as np
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "phospho_embed.encoders needs numpy: pip install 'phospho-embed[intents]'"
    ) from exc

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "Encoder",
    "LangChainEmbeddings",
    "LlamaIndexEmbedding",
    "aencode",
    "aencode_each",
    "as_matrix",
    "encode",
    "encode_each",
    "encoder_dimension",
    "encoder_kind",
    "encoder_model",
]


class LangChainEmbeddings(Protocol):
    """What is used of a LangChain ``Embeddings``: its batch methods."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts, in order."""
        ...

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts, in order (async)."""
        ...


class LlamaIndexEmbedding(Protocol):
    """What is used of a LlamaIndex ``BaseEmbedding``: its batch methods."""

    def get_text_embedding_batch(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        """Embed texts, in order."""
        ...

    async def aget_text_embedding_batch(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        """Embed texts, in order (async)."""
        ...


Encoder: TypeAlias = PhosphoClient | AsyncPhosphoClient | LangChainEmbeddings | LlamaIndexEmbedding
"""Anything `encode` accepts: a core client (sync or async), a LangChain ``Embeddings`` or a
LlamaIndex ``BaseEmbedding``."""

_Rows: TypeAlias = Sequence[Sequence[float]]
#: An encoder's batch method for synchronous code, and the one for async code.
_Methods: TypeAlias = tuple[
    Callable[[list[str]], _Rows], Callable[[list[str]], Coroutine[Any, Any, _Rows]]
]

_ACCEPTED = (
    "a PhosphoClient or AsyncPhosphoClient, a LangChain Embeddings (embed_documents), "
    "or a LlamaIndex BaseEmbedding (get_text_embedding_batch)"
)


def encoder_kind(encoder: object) -> str:
    """Which kind of encoder ``encoder`` is: ``"phospho"``, ``"phospho-async"``,
    ``"llama-index"`` or ``"langchain"``.

    Raises:
        TypeError: ``encoder`` is none of them; the message lists what is accepted.
    """
    if isinstance(encoder, PhosphoClient):
        return "phospho"
    if isinstance(encoder, AsyncPhosphoClient):
        return "phospho-async"
    # LlamaIndex first: an object with both interfaces is more likely a LlamaIndex
    # embedding wrapped for LangChain than the reverse, and both give the same vectors.
    if callable(getattr(encoder, "get_text_embedding_batch", None)):
        return "llama-index"
    if callable(getattr(encoder, "embed_documents", None)):
        return "langchain"
    raise TypeError(f"encoder must be {_ACCEPTED}; got {type(encoder).__name__}")


def encode(encoder: Encoder, texts: Sequence[str]) -> NDArray[np.float32]:
    """Embed ``texts`` with ``encoder``; return an array of shape ``(len(texts), dim)``.

    An `AsyncPhosphoClient` is run with ``asyncio.run`` (the call blocks until done). No
    texts give an array of shape ``(0, 0)`` without calling the encoder.

    Raises:
        TypeError: ``encoder`` is not an accepted encoder, or ``texts`` is a single string.
        RuntimeError: ``encoder`` is an `AsyncPhosphoClient` and an event loop is running in
            this thread (``asyncio.run`` cannot nest): ``await aencode(...)`` instead.
        ValueError: the encoder returned vectors that do not form a finite matrix (see
            `as_matrix`).
        PhosphoError: what the client raised (e.g. ``BatchEmbeddingError``).
    """
    items, (embed, _) = _prepare(encoder, texts)
    if not items:
        return np.zeros((0, 0), dtype=np.float32)
    return as_matrix(embed(items), expected=len(items), what="the encoder's vectors")


async def aencode(encoder: Encoder, texts: Sequence[str]) -> NDArray[np.float32]:
    """Async `encode`: native async calls where the encoder has them; a `PhosphoClient`
    (or a framework object without the async method) runs in a worker thread, so the event
    loop is never blocked.

    Raises:
        TypeError: ``encoder`` is not an accepted encoder, or ``texts`` is a single string.
        ValueError: the encoder returned vectors that do not form a finite matrix.
        PhosphoError: what the client raised (e.g. ``BatchEmbeddingError``).
    """
    items, (_, aembed) = _prepare(encoder, texts)
    if not items:
        return np.zeros((0, 0), dtype=np.float32)
    return as_matrix(await aembed(items), expected=len(items), what="the encoder's vectors")


def encode_each(
    encoder: Encoder, texts: Sequence[str], *, return_exceptions: bool = True
) -> list[NDArray[np.float32] | Exception]:
    """Embed ``texts`` with ``encoder``; one outcome per text, in input order: its vector,
    shape ``(dim,)``, or the exception that explains why it has none.

    When some texts fail (a text too long for the model, retries exhausted), the encoder's
    ``BatchEmbeddingError`` is split into per-text outcomes, so the vectors that did arrive
    (and were paid for) are kept; with ``return_exceptions=False`` it is raised instead, as
    `encode` does. Any other error concerns the whole call and is raised.

    Raises:
        TypeError / ValueError / RuntimeError / PhosphoError: as `encode` (a
            ``BatchEmbeddingError`` only with ``return_exceptions=False``).
    """
    try:
        return list(encode(encoder, texts))
    except BatchEmbeddingError as error:
        return _outcomes(error, return_exceptions)


async def aencode_each(
    encoder: Encoder, texts: Sequence[str], *, return_exceptions: bool = True
) -> list[NDArray[np.float32] | Exception]:
    """Async `encode_each` (through `aencode`).

    Raises:
        TypeError / ValueError / PhosphoError: as `aencode` (a ``BatchEmbeddingError`` only
            with ``return_exceptions=False``).
    """
    try:
        return list(await aencode(encoder, texts))
    except BatchEmbeddingError as error:
        return _outcomes(error, return_exceptions)


def encoder_model(encoder: object) -> str | None:
    """The name of the model ``encoder`` embeds with, or ``None`` when it does not say.

    Read from public attributes only: a core client's ``options.model``, a LangChain
    embedder's ``model`` field, a LlamaIndex embedding's ``model_name`` field, in that order.
    """
    options = getattr(encoder, "options", None)
    for value in (
        getattr(options, "model", None),
        getattr(encoder, "model", None),
        getattr(encoder, "model_name", None),
    ):
        if isinstance(value, str) and value:
            return value
    return None


def encoder_dimension(encoder: object) -> int | None:
    """The length of the vectors ``encoder`` has returned so far, when it keeps track (a core
    client after its first vector), else ``None``."""
    if isinstance(encoder, (PhosphoClient, AsyncPhosphoClient)):
        return encoder.dimension
    return None


def as_matrix(
    vectors: Any, *, expected: int | None = None, what: str = "vectors"
) -> NDArray[np.float32]:
    """``vectors`` (an array or a sequence of equal-length sequences of numbers) as a
    float32 array of shape ``(n, dim)``, checked row by row.

    An ``(n, dim)`` float32 array is returned as is (no copy).

    Args:
        vectors: the vectors.
        expected: the number of rows there must be (``None``: any).
        what: how error messages name the vectors, e.g. ``"vectors"`` gives
            ``vectors[3]``.

    Raises:
        ValueError: not two-dimensional, rows of different lengths, zero-length rows, a
            number of rows other than ``expected``, or a NaN or infinite value; the message
            names the first offending row.
        TypeError: a value is not a number.
    """
    if isinstance(vectors, np.ndarray):
        matrix = vectors
    else:
        rows = list(vectors)
        lengths = [_row_length(row, f"{what}[{i}]") for i, row in enumerate(rows)]
        for i, length in enumerate(lengths):
            if length != lengths[0]:
                raise ValueError(
                    f"{what}[{i}] has {length} values but {what}[0] has {lengths[0]}: every "
                    "vector must have the same length (vectors from different models?)"
                )
        try:
            matrix = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{what} must hold numbers only: {error}") from None
        if not rows:
            matrix = matrix.reshape(0, 0)
    if matrix.ndim != 2:
        raise ValueError(
            f"{what} must be two-dimensional, shape (n_texts, dim); got shape {matrix.shape}"
        )
    if expected is not None and matrix.shape[0] != expected:
        raise ValueError(f"{what}: expected {expected} vectors, got {matrix.shape[0]}")
    if matrix.shape[0] and matrix.shape[1] == 0:
        raise ValueError(f"{what} have zero length: there is nothing to compare")
    if matrix.dtype != np.float32:
        if not np.issubdtype(matrix.dtype, np.number) or np.iscomplexobj(matrix):
            raise TypeError(f"{what} must hold real numbers, got dtype {matrix.dtype}")
        matrix = matrix.astype(np.float32)
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise ValueError(f"{what}[{row}] holds a NaN or infinite value")
    return matrix


def _row_length(row: Any, name: str) -> int:
    if isinstance(row, (str, bytes)) or not hasattr(row, "__len__"):
        raise TypeError(f"{name} must be a sequence of numbers, got {type(row).__name__}")
    return len(row)


def _prepare(encoder: object, texts: Sequence[str]) -> tuple[list[str], _Methods]:
    """The texts as a list and the encoder's batch methods, both checked (what `encode` and
    `aencode` do before any I/O)."""
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string")
    return list(texts), _methods(encoder)


def _methods(encoder: object) -> _Methods:
    """``encoder``'s batch method for synchronous code and for async code. A method it lacks
    is made from the other: a sync one runs in a worker thread, so the event loop is never
    blocked; an `AsyncPhosphoClient` runs in a loop of its own (``asyncio.run``).

    Raises:
        TypeError: ``encoder`` is not an accepted encoder.
    """
    kind = encoder_kind(encoder)
    if isinstance(encoder, AsyncPhosphoClient):
        native = encoder.embed_many

        def in_own_loop(items: list[str]) -> _Rows:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return asyncio.run(native(items))
            raise RuntimeError(
                "an AsyncPhosphoClient cannot be used from synchronous code while an event "
                "loop is running in this thread: await the async twin instead (aclassify_many, "
                "afit, adiscover_intents, aencode, ...), or pass a PhosphoClient"
            )

        return in_own_loop, native
    embed: Callable[[list[str]], _Rows]
    asynchronous: Any = None  # the framework's async method, if it has one
    if isinstance(encoder, PhosphoClient):
        embed = encoder.embed_many
    elif kind == "llama-index":
        embed = cast(LlamaIndexEmbedding, encoder).get_text_embedding_batch
        asynchronous = getattr(encoder, "aget_text_embedding_batch", None)
    else:
        embed = cast(LangChainEmbeddings, encoder).embed_documents
        asynchronous = getattr(encoder, "aembed_documents", None)
    if callable(asynchronous):
        return embed, asynchronous

    async def in_thread(items: list[str]) -> _Rows:
        return await asyncio.to_thread(embed, items)

    return embed, in_thread


def _outcomes(
    error: BatchEmbeddingError, return_exceptions: bool
) -> list[NDArray[np.float32] | Exception]:
    """A partly failed batch as one outcome per text: its vector or its exception (or the
    error raised again, without ``return_exceptions``)."""
    if not return_exceptions:
        raise error
    outcomes: list[NDArray[np.float32] | Exception] = []
    for i, vector in enumerate(error.embeddings):
        cause = error.errors.get(i)
        if vector is not None:
            outcomes.append(as_matrix([vector], what=f"the encoder's vectors[{i}]")[0])
        else:
            # A text without an exception of its own was never sent: the batch's error says why.
            outcomes.append(cause if isinstance(cause, Exception) else error)
    return outcomes
