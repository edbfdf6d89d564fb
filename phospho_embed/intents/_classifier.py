"""`IntentClassifier`: texts in, intents out, through any encoder; the math on vectors lives
in `_scoring` and `_calibration`, reports in `_report`, files in `_persistence`."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from itertools import pairwise
from os import PathLike
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from phospho_embed import wire
from phospho_embed._async_client import AsyncPhosphoClient
from phospho_embed._client import PhosphoClient
from phospho_embed.encoders import (
    Encoder,
    aencode,
    as_matrix,
    encode,
    encoder_dimension,
    encoder_kind,
    encoder_model,
)
from phospho_embed.intents import _persistence
from phospho_embed.intents._calibration import choose_rejection, label_indices
from phospho_embed.intents._match import IntentMatch
from phospho_embed.intents._report import IntentReport, build_report
from phospho_embed.intents._scoring import (
    AGGREGATIONS,
    Aggregation,
    centroids,
    decide,
    intent_scores,
    unit_rows,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

Vectors: TypeAlias = "Sequence[Sequence[float]] | Sequence[NDArray[Any]] | NDArray[Any]"
"""Vectors as rows: a sequence of equal-length vectors (sequences of numbers or 1-d arrays),
or an array of shape ``(n, dim)``."""


class IntentClassifier:
    """Classify texts into intents known by their example utterances, or reject them as out
    of topic.

    Build one with `from_examples` (which embeds the examples once, concurrently) or from
    example vectors; let `fit` choose the rejection settings on labelled texts; `save` it so
    a service starts without embedding the examples again.

    Texts are embedded by ``encoder``: a `PhosphoClient` or `AsyncPhosphoClient`, a LangChain
    ``Embeddings`` (e.g. ``langchain_phospho.PhosphoEmbeddings``) or a LlamaIndex
    ``BaseEmbedding`` (e.g. ``llama_index_phospho.PhosphoEmbedding``). Every method has an
    async twin (``a`` prefix) and a twin on vectors you already have (``_vectors`` suffix),
    which sends nothing.

    Following scikit-learn, the arguments are kept as given, and what is derived from the
    examples or chosen by `fit` ends with an underscore.

    Args:
        examples: intent name -> the vectors of its example utterances, shape
            ``(n_examples_of_the_intent, dim)``.
        encoder: what embeds texts to classify; ``None`` when only vectors will be.
        client: the former name of ``encoder`` (give one of them).
        model: the model the vectors come from, recorded by `save` and checked by `load`;
            default: the one ``encoder`` names (`encoder_model`), if any.
        threshold: the global minimum score of the top intent (a cosine, unitless); ``None``
            accepts every top intent.
        thresholds: per-intent minimum scores, used instead of ``threshold`` for those intents.
        margin: the minimum lead of the top intent's score over the second's.
        aggregation: how an intent's score comes from its examples' similarities (see
            `Aggregation`).
        top_k: how many best examples ``"top_k_mean"`` averages.
        center: remove the examples' mean vector from every vector before comparing.

    Attributes:
        intents_: the intents' names, in the order of score columns.
        example_vectors_: the examples' vectors as given, shape ``(n_examples, dim)``,
            intent after intent.
        mean_: the vector removed before comparing, shape ``(dim,)`` (zeros without
            ``center``).
        centroids_: each intent's mean example, centred and of length 1, shape
            ``(n_intents, dim)``.
        threshold_: the global threshold in effect: ``threshold``, until `fit` chooses one.
        thresholds_: the per-intent thresholds in effect: ``thresholds``, until `fit`.
        margin_: the margin in effect: ``margin``, until `fit`. The three can be set by hand.
        fit_report_: the `IntentReport` of the last `fit`, on the texts it was fitted on
            (flattering: `evaluate` on other texts for an honest figure); ``None`` before.

    Raises:
        TypeError: an intent name that is not a non-empty string, both ``encoder`` and
            ``client``, or an ``encoder`` of no accepted kind.
        ValueError: no intents, an intent without examples, vectors that do not form one
            finite matrix, ``thresholds`` naming unknown intents, or a bad ``aggregation``
            or ``top_k``.
    """

    def __init__(
        self,
        examples: Mapping[str, Vectors],
        *,
        encoder: Encoder | None = None,
        client: Encoder | None = None,
        model: str | None = None,
        threshold: float | None = None,
        thresholds: Mapping[str, float] | None = None,
        margin: float | None = None,
        aggregation: Aggregation = "top_k_mean",
        top_k: int = 5,
        center: bool = True,
    ) -> None:
        if aggregation not in AGGREGATIONS:
            raise ValueError(
                f"aggregation must be one of {', '.join(AGGREGATIONS)}, not {aggregation!r}"
            )
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be an int >= 1, got {top_k!r}")
        self.encoder = _one_encoder(encoder, client)
        self.model = model
        self.aggregation: Aggregation = aggregation
        self.top_k = top_k
        self.center = center
        self.intents_, self.example_vectors_, counts = _stack(examples)
        self._bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        dimension = self.example_vectors_.shape[1]
        self.mean_ = (
            self.example_vectors_.mean(axis=0).astype(np.float32)
            if center
            else np.zeros(dimension, dtype=np.float32)
        )
        self._examples = unit_rows(self.example_vectors_, self.mean_)
        self.centroids_ = centroids(self._examples, self._bounds)
        unknown = set(thresholds or {}) - set(self.intents_)
        if unknown:
            raise ValueError(f"thresholds name unknown intents: {sorted(unknown)}")
        self.threshold_ = threshold
        self.thresholds_: dict[str, float] = dict(thresholds or {})
        self.margin_ = margin
        self.fit_report_: IntentReport | None = None

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_examples(
        cls,
        examples: Mapping[str, Sequence[str]],
        encoder: Encoder | None = None,
        *,
        client: Encoder | None = None,
        **options: Any,
    ) -> IntentClassifier:
        """Embed every example once (concurrently, duplicates once) and build a classifier.

        Args:
            examples: intent name -> its example utterances.
            encoder: what embeds them, kept for the texts to classify; default: a
                `PhosphoClient` configured from the environment.
            client: the former name of ``encoder``.
            **options: the other arguments of `IntentClassifier`.

        Raises:
            TypeError / ValueError: a bad example, named as ``examples['intent'][i]``, before
                anything is sent; or a bad option (see `IntentClassifier`).
            PhosphoError: embedding failed (e.g. ``BatchEmbeddingError``).
        """
        encoder = _one_encoder(encoder, client) or PhosphoClient()
        vectors = encode(encoder, example_texts(examples))
        return cls.from_embedded_examples(examples, vectors, encoder=encoder, **options)

    @classmethod
    async def afrom_examples(
        cls,
        examples: Mapping[str, Sequence[str]],
        encoder: Encoder | None = None,
        *,
        client: Encoder | None = None,
        **options: Any,
    ) -> IntentClassifier:
        """Async `from_examples`; the default encoder is an `AsyncPhosphoClient`.

        Raises:
            TypeError / ValueError / PhosphoError: as `from_examples`.
        """
        encoder = _one_encoder(encoder, client) or AsyncPhosphoClient()
        vectors = await aencode(encoder, example_texts(examples))
        return cls.from_embedded_examples(examples, vectors, encoder=encoder, **options)

    @classmethod
    def from_embedded_examples(
        cls,
        examples: Mapping[str, Sequence[str]],
        vectors: Vectors,
        **options: Any,
    ) -> IntentClassifier:
        """Build from examples embedded elsewhere (a cache, a framework's embedder).

        Args:
            examples: intent name -> its example utterances.
            vectors: their vectors in `example_texts` order, shape ``(n_examples, dim)``.
            **options: the other arguments of `IntentClassifier`.

        Raises:
            ValueError: not one vector per example, or bad vectors (see `IntentClassifier`).
        """
        matrix = as_matrix(vectors)
        sizes = [len(utterances) for utterances in examples.values()]
        if sum(sizes) != len(matrix):
            raise ValueError(f"got {len(matrix)} vectors for {sum(sizes)} examples")
        grouped = {
            name: matrix[start:stop]
            for name, (start, stop) in zip(examples, pairwise(np.cumsum([0, *sizes])), strict=True)
        }
        return cls(grouped, **options)

    # -- classification -----------------------------------------------------------------------

    def classify(self, text: str) -> IntentMatch:
        """Classify one text (one request).

        Raises:
            TypeError: no encoder, or ``text`` is not a string.
            ValueError: ``text`` is empty, or its vector is not of this classifier's
                dimension.
            PhosphoError: embedding failed.
        """
        return self.classify_many([wire.check_text(text)])[0]

    async def aclassify(self, text: str) -> IntentMatch:
        """Async `classify`.

        Raises:
            TypeError / ValueError / PhosphoError: as `classify`.
        """
        return (await self.aclassify_many([wire.check_text(text)]))[0]

    def classify_many(self, texts: Sequence[str]) -> list[IntentMatch]:
        """Classify texts with one concurrent embedding call; matches in input order.

        Raises:
            TypeError: no encoder, or ``texts`` is one string.
            ValueError: a bad text (named by its index) or vectors of another dimension.
            PhosphoError: embedding failed (e.g. ``BatchEmbeddingError``).
        """
        return self.classify_vectors(encode(self._encoder(), texts))

    async def aclassify_many(self, texts: Sequence[str]) -> list[IntentMatch]:
        """Async `classify_many` (a sync encoder runs in a worker thread).

        Raises:
            TypeError / ValueError / PhosphoError: as `classify_many`.
        """
        return self.classify_vectors(await aencode(self._encoder(), texts))

    def classify_vectors(self, vectors: Vectors) -> list[IntentMatch]:
        """Classify texts already embedded, shape ``(n_texts, dim)`` (no request).

        Raises:
            ValueError: the vectors are not a finite matrix of this classifier's dimension.
        """
        return [
            decide(row, self.intents_, self.threshold_, self.thresholds_, self.margin_)
            for row in self.score_vectors(vectors)
        ]

    def score_vectors(self, vectors: Vectors) -> NDArray[np.float32]:
        """Every intent's score for each vector: shape ``(n_texts, n_intents)``, columns in
        `intents_` order.

        Raises:
            ValueError: the vectors are not a finite matrix of this classifier's dimension.
        """
        queries = as_matrix(vectors)
        if not len(queries):
            return np.zeros((0, len(self.intents_)), dtype=np.float32)
        if queries.shape[1] != self.dimension:
            raise ValueError(
                f"the vectors have {queries.shape[1]} dimensions, but this classifier was "
                f"built from {self.dimension}-dimensional vectors (another model?)"
            )
        return intent_scores(
            unit_rows(queries, self.mean_),
            self._examples,
            self.centroids_,
            self._bounds,
            self.aggregation,
            self.top_k,
        )

    # -- fitting and evaluation -----------------------------------------------------------------

    def fit(
        self,
        texts: Sequence[str],
        intents: Sequence[str | None],
        *,
        per_intent: bool = True,
        margin: bool = True,
    ) -> IntentClassifier:
        """Choose the rejection settings on labelled texts; returns the classifier.

        Sets `threshold_`, `thresholds_` and `margin_`, deterministically (the same data
        gives the same settings): the global threshold that maximises accuracy (out of topic
        counted as a class of its own); then, with ``per_intent``, a threshold of its own for
        each intent on which at least 8 of the texts landed, some of them out of topic;
        then, with ``margin``, a top-two margin, kept only if it improves accuracy further.
        `fit_report_` is the report on the same texts.

        Args:
            texts: the texts, shape ``(n_texts,)``.
            intents: the intent each text should get, ``None`` when it should be rejected.
            per_intent: also choose per-intent thresholds.
            margin: also choose a margin.

        Raises:
            TypeError: no encoder.
            ValueError: no texts, not one label per text, or a label that is not an intent
                (named by its index), all before anything is sent.
            PhosphoError: embedding failed.
        """
        vectors = encode(self._encoder(), self._labelled(texts, intents))
        return self.fit_vectors(vectors, intents, per_intent=per_intent, margin=margin)

    async def afit(
        self,
        texts: Sequence[str],
        intents: Sequence[str | None],
        *,
        per_intent: bool = True,
        margin: bool = True,
    ) -> IntentClassifier:
        """Async `fit`.

        Raises:
            TypeError / ValueError / PhosphoError: as `fit`.
        """
        vectors = await aencode(self._encoder(), self._labelled(texts, intents))
        return self.fit_vectors(vectors, intents, per_intent=per_intent, margin=margin)

    def fit_vectors(
        self,
        vectors: Vectors,
        intents: Sequence[str | None],
        *,
        per_intent: bool = True,
        margin: bool = True,
    ) -> IntentClassifier:
        """`fit` on texts already embedded, shape ``(n_texts, dim)`` (no request).

        Raises:
            ValueError: as `fit`, or bad vectors.
        """
        matrix = as_matrix(vectors)
        expected = label_indices(intents, self.intents_, len(matrix))
        if not len(matrix):
            raise ValueError("fit needs at least one labelled text")
        chosen = choose_rejection(
            self.score_vectors(matrix),
            expected,
            self.intents_,
            per_intent=per_intent,
            margin=margin,
        )
        self.threshold_, self.thresholds_, self.margin_ = (
            chosen.threshold,
            chosen.thresholds,
            chosen.margin,
        )
        self.fit_report_ = self.evaluate_vectors(matrix, intents)
        return self

    def evaluate(self, texts: Sequence[str], intents: Sequence[str | None]) -> IntentReport:
        """Measure the classifier on labelled texts (``None``: should be rejected), changing
        nothing.

        Raises:
            TypeError / ValueError / PhosphoError: as `fit`.
        """
        return self.evaluate_vectors(
            encode(self._encoder(), self._labelled(texts, intents)), intents
        )

    async def aevaluate(self, texts: Sequence[str], intents: Sequence[str | None]) -> IntentReport:
        """Async `evaluate`.

        Raises:
            TypeError / ValueError / PhosphoError: as `fit`.
        """
        vectors = await aencode(self._encoder(), self._labelled(texts, intents))
        return self.evaluate_vectors(vectors, intents)

    def evaluate_vectors(self, vectors: Vectors, intents: Sequence[str | None]) -> IntentReport:
        """`evaluate` on texts already embedded, shape ``(n_texts, dim)`` (no request).

        Raises:
            ValueError: not one label per vector, a label that is not an intent, or bad
                vectors.
        """
        matrix = as_matrix(vectors)
        label_indices(intents, self.intents_, len(matrix))
        matches = self.classify_vectors(matrix)
        return build_report(
            list(intents),
            [match.intent for match in matches],
            self.intents_,
            threshold=self.threshold_,
            thresholds=self.thresholds_,
            margin=self.margin_,
        )

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: str | PathLike[str]) -> None:
        """Write the example vectors and every setting (rejection included) to ``path``, a
        numpy ``.npz`` file, so a service can `load` the classifier without embedding (or
        paying for) the examples again.

        The file is written next to ``path`` under a temporary name, then renamed over it:
        an interrupted save leaves any previous file at ``path`` intact.

        Raises:
            OSError: the file cannot be written.
        """
        _persistence.write(
            path,
            _persistence.Saved(
                vectors=self.example_vectors_,
                intents=list(self.intents_),
                counts=np.diff(self._bounds).tolist(),
                model=self.model if self.model is not None else encoder_model(self.encoder),
                aggregation=self.aggregation,
                top_k=self.top_k,
                center=self.center,
                threshold=self.threshold_,
                thresholds=dict(self.thresholds_),
                margin=self.margin_,
            ),
        )

    @classmethod
    def load(
        cls,
        path: str | PathLike[str],
        encoder: Encoder | None = None,
        *,
        client: Encoder | None = None,
        model: str | None = None,
    ) -> IntentClassifier:
        """Read a classifier written by `save`.

        Args:
            path: the ``.npz`` file.
            encoder: what embeds the texts to classify; ``None`` to classify vectors only.
            client: the former name of ``encoder``.
            model: the model the vectors must come from; default: the one ``encoder``
                names, if any.

        Raises:
            ValueError: the file is missing, not a saved classifier, damaged or inconsistent;
                or it was built with another model than ``model`` (or ``encoder``'s), or with
                vectors of another dimension than ``encoder`` has returned.
        """
        saved = _persistence.read(path)
        encoder = _one_encoder(encoder, client)
        expected_model = model if model is not None else encoder_model(encoder)
        if None not in (saved.model, expected_model) and saved.model != expected_model:
            raise ValueError(
                f"{path} was built with model {saved.model!r}, not {expected_model!r}: "
                "its vectors cannot be compared with this model's"
            )
        dimension = saved.vectors.shape[1]
        known = encoder_dimension(encoder)
        if known is not None and known != dimension:
            raise ValueError(
                f"{path} holds {dimension}-dimensional vectors, but this encoder's model "
                f"gives {known}-dimensional ones"
            )
        bounds = pairwise(np.cumsum([0, *saved.counts]))
        return cls(
            {
                name: saved.vectors[start:stop]
                for name, (start, stop) in zip(saved.intents, bounds, strict=True)
            },
            encoder=encoder,
            model=saved.model,
            threshold=saved.threshold,
            thresholds=saved.thresholds,
            margin=saved.margin,
            aggregation=saved.aggregation,
            top_k=saved.top_k,
            center=saved.center,
        )

    # -- helpers ------------------------------------------------------------------------------

    @property
    def dimension(self) -> int:
        """The length of the vectors this classifier compares."""
        return int(self.example_vectors_.shape[1])

    def __repr__(self) -> str:
        return (
            f"IntentClassifier({len(self.intents_)} intents, {len(self.example_vectors_)} "
            f"examples, aggregation={self.aggregation!r}, threshold_={self.threshold_}, "
            f"{len(self.thresholds_)} per-intent thresholds_, margin_={self.margin_})"
        )

    def _encoder(self) -> Encoder:
        if self.encoder is None:
            raise TypeError(
                "classifying texts needs an encoder: build the classifier with encoder= (a "
                "PhosphoClient or AsyncPhosphoClient, a LangChain Embeddings or a LlamaIndex "
                "BaseEmbedding), or classify vectors with classify_vectors"
            )
        return self.encoder

    def _labelled(self, texts: Sequence[str], intents: Sequence[str | None]) -> Sequence[str]:
        """``texts``, once their labels are checked: a mismatch costs no request."""
        label_indices(intents, self.intents_, len(texts))
        return texts

    # -- deprecated names, kept while callers outside this package move to the new ones ------

    @property
    def intents(self) -> list[str]:
        """Deprecated: `intents_`."""
        _renamed("intents", "intents_")
        return self.intents_

    @property
    def threshold(self) -> float | None:
        """Deprecated: `threshold_`, the global threshold in effect."""
        _renamed("threshold", "threshold_")
        return self.threshold_

    @property
    def thresholds(self) -> dict[str, float]:
        """Deprecated: `thresholds_`, the per-intent thresholds in effect."""
        _renamed("thresholds", "thresholds_")
        return self.thresholds_

    @property
    def margin(self) -> float | None:
        """Deprecated: `margin_`, the margin in effect."""
        _renamed("margin", "margin_")
        return self.margin_


def example_texts(examples: Mapping[str, Sequence[str]]) -> list[str]:
    """Every example utterance, checked, intent after intent: the order to embed them in.

    Raises:
        TypeError / ValueError: a bad example, named as ``examples['intent'][i]``.
    """
    texts: list[str] = []
    for name, utterances in examples.items():
        if isinstance(utterances, str):
            raise TypeError(f"examples[{name!r}] must be a list of strings, not one string")
        for i, text in enumerate(utterances):
            texts.append(wire.check_text(text, f"examples[{name!r}][{i}]"))
    return texts


def _one_encoder(encoder: Encoder | None, client: Encoder | None) -> Encoder | None:
    """The encoder given as ``encoder=`` or by its former name ``client=``, checked."""
    if encoder is not None and client is not None:
        raise TypeError("give encoder= or client= (its former name), not both")
    chosen = encoder if encoder is not None else client
    if chosen is not None:
        encoder_kind(chosen)  # an unaccepted encoder fails now, not at the first text
    return chosen


def _stack(examples: Mapping[str, Vectors]) -> tuple[list[str], NDArray[np.float32], list[int]]:
    """The intents' names, their example vectors stacked, and each intent's count."""
    if not examples:
        raise ValueError("examples is empty: give at least one intent")
    names: list[str] = []
    blocks: list[NDArray[np.float32]] = []
    for name, vectors in examples.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"intent names must be non-empty strings, got {name!r}")
        if len(vectors) == 0:
            raise ValueError(f"intent {name!r} has no examples")
        block = as_matrix(vectors, what=f"examples[{name!r}]")
        if blocks and block.shape[1] != blocks[0].shape[1]:
            raise ValueError(
                f"examples[{name!r}] are {block.shape[1]}-dimensional but "
                f"examples[{names[0]!r}] are {blocks[0].shape[1]}-dimensional: every example "
                "vector must have the same length"
            )
        names.append(name)
        blocks.append(block)
    return names, np.concatenate(blocks), [len(block) for block in blocks]


def _renamed(old: str, new: str) -> None:
    warnings.warn(
        f"IntentClassifier.{old} is deprecated: use IntentClassifier.{new}",
        DeprecationWarning,
        stacklevel=3,
    )
