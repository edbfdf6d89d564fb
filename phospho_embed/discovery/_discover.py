"""`discover_intents` and `adiscover_intents`: check the inputs, embed, cluster, describe."""

from __future__ import annotations

import asyncio
import inspect
import math
import warnings
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import numpy as np

from phospho_embed.discovery._cluster import (
    DEFAULT_OUTLIER_THRESHOLD,
    DEFAULT_SAMPLE_SIZE,
    Selection,
    assign,
    cluster_vectors,
    default_min_size,
    to_geometry,
)
from phospho_embed.discovery._keywords import class_tfidf, keyword_name
from phospho_embed.discovery._metrics import quality
from phospho_embed.discovery._naming import Namer, name_intents, warn_failures
from phospho_embed.discovery._result import (
    DiscoveredIntent,
    DiscoveryResult,
    _Model,
    known_intents,
)
from phospho_embed.discovery._trend import parse_timestamps
from phospho_embed.encoders import Encoder, aencode, as_matrix, encode, encoder_kind

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from phospho_embed.intents import IntentClassifier

#: With known=, messages from which accepting none of them looks like a mistake.
_SUSPICIOUS_REJECTIONS = 20

#: Names asked of a namer at the same time, by default.
DEFAULT_NAMER_CONCURRENCY = 8

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _arguments_of(
    sync: Callable[_P, _R],
) -> Callable[[Callable[..., Coroutine[Any, Any, _R]]], Callable[_P, Coroutine[Any, Any, _R]]]:
    """Declares that the decorated async twin, which binds its arguments to the parameters
    of ``sync``, takes exactly those: for type checkers, and for `inspect.signature` (so
    ``help()`` lists them)."""

    def decorate(
        twin: Callable[..., Coroutine[Any, Any, _R]],
    ) -> Callable[_P, Coroutine[Any, Any, _R]]:
        twin.__signature__ = inspect.signature(sync)  # type: ignore[attr-defined]
        return twin

    return decorate


@dataclass(frozen=True)
class _Options:
    """The settings of one discovery, checked when made.

    Raises:
        TypeError / ValueError: a setting out of range, ``known`` or ``namer`` unusable (see
            `discover_intents`).
    """

    n_intents: int | None
    min_size: int | None
    outlier_threshold: float | None
    known: IntentClassifier | None
    namer: Namer | None
    max_concurrency: int
    n_keywords: int
    n_examples: int
    stop_words: str | Sequence[str] | None
    sample_size: int
    random_state: int

    def __post_init__(self) -> None:
        for name, least in (
            ("n_intents", 1),
            ("min_size", 1),
            ("max_concurrency", 1),
            ("n_keywords", 0),
            ("n_examples", 0),
            ("sample_size", 10),
            ("random_state", 0),
        ):
            value = getattr(self, name)
            if value is None and name in ("n_intents", "min_size"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
        threshold = self.outlier_threshold
        if threshold is not None and not (
            isinstance(threshold, (int, float))
            and not isinstance(threshold, bool)
            and math.isfinite(threshold)
            and threshold > 0
        ):
            raise ValueError(
                f"outlier_threshold must be a positive number or None, got {threshold!r}"
            )
        if self.known is not None:
            _check_known(self.known)
        namer = self.namer
        if namer is not None and not (callable(getattr(namer, "invoke", None)) or callable(namer)):
            raise TypeError(
                "namer must be a LangChain chat model (with .invoke) or a function from a list of "
                f"example texts to a name; got {type(namer).__name__}"
            )


@dataclass(frozen=True)
class _Job:
    """One discovery, every input checked before anything is embedded (and paid for): what
    is left is to embed the texts, unless ``vectors`` were given, and `_discover`."""

    texts: list[str]
    vectors: NDArray[np.float32] | None
    encoder: Encoder | None
    times: NDArray[np.datetime64] | None
    options: _Options

    @classmethod
    def check(
        cls,
        texts: Sequence[str],
        vectors: Any,
        encoder: Encoder | None,
        timestamps: Sequence[Any] | None,
        **settings: Any,
    ) -> _Job:
        """The arguments of `discover_intents`, checked; ``settings`` are `_Options`'."""
        options = _Options(**settings)
        items, times = _check_inputs(texts, vectors, encoder, timestamps)
        matrix = None if vectors is None else as_matrix(vectors, expected=len(items))
        return cls(items, matrix, encoder, times, options)

    def embedder(self) -> Encoder:
        """The encoder of the texts, when no vectors were given."""
        assert self.encoder is not None  # _check_inputs refused neither vectors nor encoder
        return self.encoder


def discover_intents(
    texts: Sequence[str],
    *,
    vectors: Any = None,
    encoder: Encoder | None = None,
    n_intents: int | None = None,
    min_size: int | None = None,
    outlier_threshold: float | None = DEFAULT_OUTLIER_THRESHOLD,
    known: IntentClassifier | None = None,
    timestamps: Sequence[Any] | None = None,
    namer: Namer | None = None,
    max_concurrency: int = DEFAULT_NAMER_CONCURRENCY,
    n_keywords: int = 10,
    n_examples: int = 5,
    stop_words: str | Sequence[str] | None = "english",
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    random_state: int = 0,
) -> DiscoveryResult:
    """Find the intents in unlabelled messages.

    ```python
    from phospho_embed import PhosphoClient
    from phospho_embed.discovery import discover_intents

    with PhosphoClient() as client:
        found = discover_intents(messages, encoder=client)
    for intent in found.intents[:5]:
        print(intent.id, intent.size, intent.name, intent.examples[0])
    ```

    Args:
        texts: the messages, in any order (their positions index every result).
        vectors: their embeddings, shape (len(texts), dim), instead of embedding them:
            nothing is sent then. Any array or sequence of equal-length number sequences.
        encoder: embeds ``texts`` when ``vectors`` is not given: a `PhosphoClient` or
            `AsyncPhosphoClient`, a LangChain ``Embeddings`` or a LlamaIndex
            ``BaseEmbedding`` (see `phospho_embed.encoders`). Kept for `assign` on texts.
        n_intents: how many intents to look for; default: chosen by the silhouette scan of
            the package's docstring. Intents under ``min_size`` are still dissolved, so
            fewer may come back.
        min_size: the fewest messages an intent may have; default 0.2% of the messages
            clustered, at least 5. Larger: fewer, broader intents and more messages left
            out; smaller: more, narrower intents.
        outlier_threshold: how far under an intent's typical similarity a message may be
            and still belong to it, in robust standard deviations (default 3.0). Lower
            leaves more messages out for purer intents; ``None`` leaves none out.
        known: gap analysis: an `IntentClassifier` of the intents already covered. Messages
            it accepts are counted per known intent (`DiscoveryResult.known_labels`), and
            only those it rejects as out of topic are clustered into new intents.
        timestamps: one per message (datetime, date, ISO 8601 string, datetime64 or Unix
            seconds), for `DiscoveryResult.trend`, ``drift`` and the report's chart.
        namer: names each intent from its examples: a LangChain chat model (``.invoke``)
            or a function from a list of texts to a name. Failures keep the keyword name
            (see `NamingWarning`).
        max_concurrency: names asked of ``namer`` at the same time (threads).
        n_keywords: keywords kept per intent.
        n_examples: representative messages kept per intent.
        stop_words: the stop words of the keywords: ``"english"`` (scikit-learn's list),
            your own list, or ``None``.
        sample_size: messages the number of intents is chosen on, and the silhouette
            computed on (both are quadratic in it).
        random_state: the seed of every random choice: the same inputs and seed give the
            same result.

    Returns:
        A `DiscoveryResult`. With fewer messages than ``min_size`` it holds no intent and
        every label is -1; one distinct vector (all messages alike) gives one intent.

    Raises:
        TypeError: neither ``vectors`` nor ``encoder``; an unaccepted encoder or namer; a
            text that is not a string.
        ValueError: no texts; vectors not (len(texts), dim), of mixed lengths, or holding
            NaN or infinity, or all zeros; ``known`` built on another dimension, or without any
            threshold; timestamps not one per message or unreadable; a setting out of
            range. Each message names the offending item.
        RuntimeError: an `AsyncPhosphoClient` from inside a running event loop (use
            `adiscover_intents`).
        ImportError: scikit-learn is not installed (the ``analytics`` extra).
        PhosphoError: the encoder failed (e.g. ``BatchEmbeddingError`` keeps the vectors
            that arrived).
    """
    job = _Job.check(**locals())  # every argument by name: nothing else is defined yet
    matrix = job.vectors if job.vectors is not None else encode(job.embedder(), job.texts)
    return _discover(job, matrix)


@_arguments_of(discover_intents)
async def adiscover_intents(texts: Sequence[str], **arguments: Any) -> DiscoveryResult:
    """Async `discover_intents`: the same arguments and result.

    Every argument is checked before anything is embedded, as by `discover_intents`. Texts
    are embedded with the encoder's async methods (an `AsyncPhosphoClient`,
    ``aembed_documents``, ``aget_text_embedding_batch``); the clustering and naming run in a
    worker thread, so the event loop is not blocked.
    """
    call = inspect.signature(discover_intents).bind(texts, **arguments)
    call.apply_defaults()
    job = _Job.check(**call.arguments)
    matrix = job.vectors if job.vectors is not None else await aencode(job.embedder(), job.texts)
    return await asyncio.to_thread(_discover, job, matrix)


def _check_known(known: IntentClassifier) -> None:
    from phospho_embed.intents import IntentClassifier

    if not isinstance(known, IntentClassifier):
        raise TypeError(f"known must be an IntentClassifier, got {type(known).__name__}")
    if known.threshold_ is None and not known.thresholds_ and known.margin_ is None:
        raise ValueError(
            "known has no threshold, so it rejects no message and nothing would be left "
            "to discover: fit it first (IntentClassifier.fit) or set its threshold"
        )


def _check_inputs(
    texts: Sequence[str], vectors: Any, encoder: Encoder | None, timestamps: Sequence[Any] | None
) -> tuple[list[str], NDArray[np.datetime64] | None]:
    """Everything that can be checked before anything is embedded (and paid for)."""
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string")
    items = list(texts)
    if not items:
        raise ValueError("texts is empty: give at least one message")
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a string, got {type(text).__name__}")
    if vectors is None and encoder is None:
        raise TypeError("give vectors=... (already embedded) or encoder=... to embed the texts")
    if encoder is not None:
        encoder_kind(encoder)  # an unaccepted encoder fails now, not after the clustering
    times = None
    if timestamps is not None:
        times = parse_timestamps(timestamps)
        if len(times) != len(items):
            raise ValueError(f"got {len(times)} timestamps for {len(items)} texts")
    return items, times


def _discover(job: _Job, matrix: NDArray[np.float32]) -> DiscoveryResult:
    """Cluster and describe the checked, embedded messages (CPU only: no I/O)."""
    options = job.options
    n = len(job.texts)
    zero = ~matrix.any(axis=1)
    if zero.any():
        raise ValueError(
            f"vectors[{int(np.argmax(zero))}] is all zeros: it has no direction to compare"
        )
    known = options.known
    known_labels: list[str | None] | None = None
    rows = np.arange(n)
    if known is not None:
        if matrix.shape[1] != known.dimension:
            raise ValueError(
                f"known was built from {known.dimension}-dimensional vectors, but the "
                f"messages' vectors have {matrix.shape[1]} dimensions (another model?)"
            )
        known_labels = known_intents(known, matrix)
        rows = np.flatnonzero([label is None for label in known_labels])
        if n >= _SUSPICIOUS_REJECTIONS and rows.size == n:
            # A classifier of another model with the same size cannot be told apart by its
            # shape; accepting nothing at all is the symptom.
            warnings.warn(
                f"known accepted none of the {n} messages: was it built on vectors of another "
                "model? Every message is clustered as new",
                UserWarning,
                stacklevel=3,
            )
    if options.n_intents is not None and options.n_intents > max(1, rows.size):
        where = " rejected by known" if known is not None else ""
        raise ValueError(
            f"n_intents={options.n_intents} but there are only {rows.size} messages{where}"
        )
    min_size = options.min_size or default_min_size(rows.size)
    if rows.size:
        clustering = cluster_vectors(
            matrix[rows] if known is not None else matrix,
            n_intents=options.n_intents,
            min_size=min_size,
            outlier_threshold=options.outlier_threshold,
            sample_size=options.sample_size,
            random_state=options.random_state,
        )
        model = _Model(clustering.mean, clustering.centres, clustering.cutoffs)
        selection = clustering.selection
        unit = clustering.unit if known is None else None
    else:  # the known intents covered everything
        dim = matrix.shape[1]
        empty = np.zeros(0, np.float32)
        model = _Model(np.zeros(dim, np.float32), np.zeros((0, dim), np.float32), empty)
        selection = Selection("none", 0)
        unit = None
    # The labels are what assign() gives on these vectors, by construction.
    if unit is None:
        unit = to_geometry(matrix, model.mean)
    labels, similarity = assign(unit, model.centres, model.cutoffs)
    if known_labels is not None:
        labels[[label is not None for label in known_labels]] = -1
    intents, errors = _describe(job.texts, labels, similarity, len(model.centres), options)
    return DiscoveryResult(
        texts=job.texts,
        vectors=matrix,
        unit=unit,
        labels=labels,
        similarity=similarity,
        intents=intents,
        quality=quality(
            unit, labels, sample_size=options.sample_size, random_state=options.random_state
        ),
        selection=selection,
        model=model,
        known=known,
        known_labels=known_labels,
        timestamps=job.times,
        naming_errors=errors,
        encoder=job.encoder,
        random_state=options.random_state,
        sample_size=options.sample_size,
    )


def _describe(
    texts: list[str],
    labels: NDArray[np.int64],
    similarity: NDArray[np.float32],
    k: int,
    options: _Options,
) -> tuple[list[DiscoveredIntent], dict[int, str]]:
    """Sizes, keywords, examples and names of the ``k`` intents."""
    n = len(texts)
    sizes = np.bincount(labels[labels >= 0], minlength=k)
    keywords = class_tfidf(texts, labels, k, options.n_keywords, options.stop_words)
    members = _members(labels, similarity, k)
    examples = [_distinct(texts, group, options.n_examples) for group in members]
    keyword_names = [
        keyword_name(keywords[j], f"intent {j}") if keywords[j] else f"intent {j}" for j in range(k)
    ]
    names: list[str] = list(keyword_names)
    errors: dict[int, str] = {}
    if options.namer is not None and k:
        asked, errors = name_intents(
            options.namer,
            [[texts[i] for i in chosen] for chosen in examples],
            [[keyword.term for keyword in terms] for terms in keywords],
            max_concurrency=options.max_concurrency,
        )
        names = [given or fallback for given, fallback in zip(asked, keyword_names, strict=True)]
        warn_failures(errors, k)
    names = _unique(names)
    intents = [
        DiscoveredIntent(
            id=j,
            name=names[j],
            size=int(sizes[j]),
            share=float(sizes[j] / n),
            keywords=[keyword.term for keyword in keywords[j]],
            examples=[texts[i] for i in examples[j]],
            example_indices=[int(i) for i in examples[j]],
            cohesion=float(similarity[members[j]].mean()) if members[j].size else math.nan,
            keyword_name=keyword_names[j],
        )
        for j in range(k)
    ]
    return intents, errors


def _members(
    labels: NDArray[np.int64], similarity: NDArray[np.float32], k: int
) -> list[NDArray[np.int64]]:
    """Each intent's message positions, most similar to its centre first."""
    order = np.lexsort((-similarity, labels))  # by intent, then closest first
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    return [order[bounds[j] : bounds[j + 1]].astype(np.int64) for j in range(k)]


def _distinct(texts: list[str], ranked: NDArray[np.int64], count: int) -> list[int]:
    """The first ``count`` positions of ``ranked`` whose texts differ (ignoring case and
    spacing): the representative examples."""
    seen: set[str] = set()
    chosen: list[int] = []
    for i in ranked:
        key = " ".join(texts[i].split()).casefold()
        if key not in seen:
            seen.add(key)
            chosen.append(int(i))
            if len(chosen) == count:
                break
    return chosen


def _unique(names: list[str]) -> list[str]:
    """Names made unique: a repeated name gets its intent's id (``"refund #7"``)."""
    seen: set[str] = set()
    unique: list[str] = []
    for j, name in enumerate(names):
        unique.append(name if name not in seen else f"{name} #{j}")
        seen.add(unique[-1])
    return unique
