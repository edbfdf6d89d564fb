"""Intent classification with out-of-topic rejection, on phospho intent embeddings.

    from phospho_embed import PhosphoClient
    from phospho_embed.intents import IntentClassifier

    classifier = IntentClassifier.from_examples(
        {"refund": ["I want my money back", "refund my order"],
         "shipping": ["where is my parcel", "my delivery is late"]},
        client=PhosphoClient(),
    )
    classifier.fit(validation_texts, validation_intents)   # None = out of scope
    match = classifier.classify("has my package shipped?")
    match.intent        # "shipping", or None when the message matches no intent

How a text is scored: its embedding is compared (cosine) with every example of every intent,
after removing the examples' mean vector from both ("centering", which stops words and
phrasings shared by all intents from dominating), and an intent's score is the **mean of its
top-k example similarities** (k=5). On CLINC150 this beat taking the best single example
and the intent centroid (see docs/benchmarks.md). The text gets the top intent, unless that
intent's score is under its threshold (a per-intent one, else the global one) or the gap to
the second intent is under ``margin``: then it is out of topic (``intent=None``). There is
no silent fall-through to a lower intent. `IntentClassifier.fit` chooses the thresholds on
labelled data.

Needs numpy (``pip install "phospho-embed[intents]"``).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from os import PathLike
from typing import TYPE_CHECKING, Any, Literal

from phospho_embed import wire
from phospho_embed._async_client import AsyncPhosphoClient
from phospho_embed._client import PhosphoClient
from phospho_embed.errors import PhosphoError

try:
    import numpy as np
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "phospho_embed.intents needs numpy: pip install 'phospho-embed[intents]'"
    ) from exc

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Matrix = NDArray[np.float32]

__all__ = [
    "Aggregation",
    "IntentClassifier",
    "IntentMatch",
    "IntentReport",
    "IntentStats",
    "OutOfTopicError",
    "example_texts",
]

Aggregation = Literal["top_k_mean", "max", "centroid"]
Client = PhosphoClient | AsyncPhosphoClient

_FORMAT = "phospho-embed-intents/1"
# Per-intent thresholds need enough validation texts that landed on the intent to be
# trusted; with fewer, the global threshold applies.
_MIN_SUPPORT = 8


@dataclass(frozen=True)
class IntentMatch:
    """The outcome of classifying one text.

    Attributes:
        intent: the chosen intent, or ``None`` when the text is out of topic.
        score: the top intent's score (cosine-based, higher is closer).
        margin: the top score minus the second intent's score (the top score itself when
            there is a single intent).
        scores: every intent's score.
        top: the best-scoring intent, even when it was rejected.
    """

    intent: str | None
    score: float
    margin: float
    scores: dict[str, float]
    top: str

    @property
    def out_of_topic(self) -> bool:
        """Whether the text matched none of the intents."""
        return self.intent is None


class OutOfTopicError(PhosphoError, ValueError):
    """A text matched none of the intents and there is no fallback to send it to.

    Attributes:
        match: the rejected `IntentMatch` (its ``top``, ``score`` and ``scores`` say how close
            the text came).
    """

    def __init__(self, match: IntentMatch) -> None:
        super().__init__(
            f"the text matches none of the intents (closest: {match.top!r}, "
            f"score {match.score:.3f}) and no default route is set"
        )
        self.match = match

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.match,))


@dataclass(frozen=True)
class IntentStats:
    """Precision and recall of one class (an intent, or ``None`` for out of scope)."""

    precision: float
    recall: float
    support: int


@dataclass(frozen=True)
class IntentReport:
    """How well a classifier does on labelled texts (``None`` labels are out of scope).

    Attributes:
        size: number of texts.
        accuracy: exact matches, out of scope counted as its own class.
        in_scope_accuracy: accuracy on the in-scope texts (rejecting one counts as wrong).
        oos_recall: share of out-of-scope texts rejected (``nan`` without any).
        oos_precision: share of rejections that were out of scope (``nan`` without any).
        per_intent: precision, recall and support of each intent.
        confusions: the most frequent mistakes, ``(expected, predicted, count)``.
        threshold, thresholds, margin: the rejection settings evaluated.
    """

    size: int
    accuracy: float
    in_scope_accuracy: float
    oos_recall: float
    oos_precision: float
    per_intent: dict[str, IntentStats]
    confusions: list[tuple[str | None, str | None, int]]
    threshold: float | None
    thresholds: dict[str, float] = field(default_factory=dict)
    margin: float | None = None

    def __str__(self) -> str:
        lines = [
            f"{self.size} texts: accuracy {self.accuracy:.1%}, "
            f"in-scope accuracy {self.in_scope_accuracy:.1%}, "
            f"out-of-scope recall {self.oos_recall:.1%}, precision {self.oos_precision:.1%}",
        ]
        threshold = "none" if self.threshold is None else f"{self.threshold:.4f}"
        margin = "none" if self.margin is None else f"{self.margin:.4f}"
        lines.append(
            f"threshold {threshold}, {len(self.thresholds)} per-intent thresholds, margin {margin}"
        )
        for expected, predicted, count in self.confusions[:5]:
            lines.append(f"  {count} x {_name(expected)} -> {_name(predicted)}")
        return "\n".join(lines)


class IntentClassifier:
    """Classify texts into intents known by their example utterances, or reject them.

    Build one with `from_examples` (which embeds the examples once, concurrently) or
    `from_vectors`; adjust rejection with `fit`, or set ``threshold`` / ``thresholds`` /
    ``margin`` yourself; `save` it so a service starts without re-embedding.

    Args:
        examples: intent name -> the embeddings of its example utterances.
        client: the client used to embed texts to classify (sync, async, or ``None`` when
            only vectors will be classified).
        model: the model the vectors come from (checked by `load`).
        threshold: the global minimum score; ``None`` accepts every top intent.
        thresholds: per-intent minimum scores, overriding ``threshold``.
        margin: the minimum gap between the top two intents' scores.
        aggregation: how an intent's score comes from its examples' similarities:
            ``"top_k_mean"`` (default), ``"max"`` or ``"centroid"``.
        top_k: how many best examples ``"top_k_mean"`` averages.
        center: remove the examples' mean vector before comparing (default ``True``).
    """

    def __init__(
        self,
        examples: Mapping[str, Sequence[Sequence[float]]],
        *,
        client: Client | None = None,
        model: str = wire.DEFAULT_MODEL,
        threshold: float | None = None,
        thresholds: Mapping[str, float] | None = None,
        margin: float | None = None,
        aggregation: Aggregation = "top_k_mean",
        top_k: int = 5,
        center: bool = True,
    ) -> None:
        if not examples:
            raise ValueError("examples is empty: give at least one intent")
        if aggregation not in ("top_k_mean", "max", "centroid"):
            raise ValueError(
                f"aggregation must be top_k_mean, max or centroid, not {aggregation!r}"
            )
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be an int >= 1, got {top_k!r}")
        self.intents: list[str] = []
        rows: list[Sequence[float]] = []
        labels: list[int] = []
        for position, (name, vectors) in enumerate(examples.items()):
            if not isinstance(name, str) or not name:
                raise TypeError(f"intent names must be non-empty strings, got {name!r}")
            if len(vectors) == 0:
                raise ValueError(f"intent {name!r} has no examples")
            self.intents.append(name)
            rows.extend(vectors)
            labels.extend([position] * len(vectors))
        matrix = np.asarray(rows, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] == 0:
            raise ValueError("example vectors must all have the same, non-zero length")
        self.client = client
        self.model = model
        self.aggregation: Aggregation = aggregation
        self.top_k = top_k
        self.center = center
        self.threshold = threshold
        self.thresholds: dict[str, float] = dict(thresholds or {})
        self.margin = margin
        self._raw = matrix
        self._labels = np.asarray(labels, dtype=np.int64)
        # Examples are contiguous per intent: segment j is rows[starts[j]:starts[j + 1]].
        self._starts = np.searchsorted(self._labels, np.arange(len(self.intents) + 1))
        self._mean = matrix.mean(axis=0) if center else np.zeros(matrix.shape[1], np.float32)
        self._examples = _normalized(matrix - self._mean)
        centroids = np.stack([self._examples[a:b].mean(axis=0) for a, b in pairwise(self._starts)])
        self._centroids = _normalized(centroids)
        unknown = set(self.thresholds) - set(self.intents)
        if unknown:
            raise ValueError(f"thresholds name unknown intents: {sorted(unknown)}")

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_examples(
        cls,
        examples: Mapping[str, Sequence[str]],
        client: PhosphoClient | None = None,
        **options: Any,
    ) -> IntentClassifier:
        """Embed every example once (concurrently, duplicates once) and build a classifier.

        ``client`` defaults to a `PhosphoClient` configured from the environment. Other
        keyword arguments are those of `IntentClassifier`.
        """
        client = client or PhosphoClient()
        vectors = client.embed_many(example_texts(examples))
        return cls.from_embedded_examples(
            examples, vectors, client=client, model=_model_of(client), **options
        )

    @classmethod
    async def afrom_examples(
        cls,
        examples: Mapping[str, Sequence[str]],
        client: AsyncPhosphoClient | None = None,
        **options: Any,
    ) -> IntentClassifier:
        """Async `from_examples`, with an `AsyncPhosphoClient`."""
        client = client or AsyncPhosphoClient()
        vectors = await client.embed_many(example_texts(examples))
        return cls.from_embedded_examples(
            examples, vectors, client=client, model=_model_of(client), **options
        )

    @classmethod
    def from_embedded_examples(
        cls,
        examples: Mapping[str, Sequence[str]],
        vectors: Sequence[Sequence[float]],
        **options: Any,
    ) -> IntentClassifier:
        """Build from examples embedded elsewhere: ``vectors`` in `example_texts` order.

        This is how framework adapters build a classifier with their own embedder.
        """
        grouped: dict[str, Sequence[Sequence[float]]] = {}
        position = 0
        for name, utterances in examples.items():
            grouped[name] = vectors[position : position + len(utterances)]
            position += len(utterances)
        if position != len(vectors):
            raise ValueError(f"got {len(vectors)} vectors for {position} examples")
        return cls(grouped, **options)

    # -- classification -----------------------------------------------------------------------

    def classify(self, text: str) -> IntentMatch:
        """Classify one text (one request)."""
        return self.classify_many([wire.check_text(text)])[0]

    def classify_many(self, texts: Sequence[str]) -> list[IntentMatch]:
        """Classify texts with one concurrent `embed_many` call."""
        return self.classify_vectors(self._sync_client().embed_many(texts))

    async def aclassify(self, text: str) -> IntentMatch:
        """Async `classify`."""
        return (await self.aclassify_many([wire.check_text(text)]))[0]

    async def aclassify_many(self, texts: Sequence[str]) -> list[IntentMatch]:
        """Async `classify_many`: one concurrent embed call (a sync client runs in a thread)."""
        return self.classify_vectors(await self._aembed(texts))

    def classify_vectors(self, vectors: Sequence[Sequence[float]]) -> list[IntentMatch]:
        """Classify texts already embedded (no request)."""
        scores = self.score_vectors(vectors)
        return [self._decide(row) for row in scores]

    def score_vectors(self, vectors: Sequence[Sequence[float]]) -> Matrix:
        """Every intent's score for each vector: an array of shape (texts, intents)."""
        queries = np.asarray(vectors, dtype=np.float32)
        if queries.ndim != 2:
            queries = queries.reshape(len(vectors), -1)
        if queries.shape[1] != self.dimension:
            raise ValueError(
                f"the vectors have {queries.shape[1]} dimensions, but this classifier was "
                f"built from {self.dimension}-dimensional vectors (another model?)"
            )
        queries = _normalized(queries - self._mean)
        if self.aggregation == "centroid":
            centroid_scores: Matrix = queries @ self._centroids.T
            return centroid_scores
        similarities = queries @ self._examples.T
        scores = np.empty((len(queries), len(self.intents)), dtype=np.float32)
        for j, (start, stop) in enumerate(pairwise(self._starts)):
            segment = similarities[:, start:stop]
            k = min(self.top_k, stop - start)
            if self.aggregation == "max" or k == 1:
                scores[:, j] = segment.max(axis=1)
            else:
                scores[:, j] = np.partition(segment, -k, axis=1)[:, -k:].mean(axis=1)
        return scores

    def _decide(self, row: Matrix) -> IntentMatch:
        order = np.argsort(row)[::-1]
        best = int(order[0])
        score = float(row[best])
        margin = score - float(row[order[1]]) if len(order) > 1 else score
        top = self.intents[best]
        limit = self.thresholds.get(top, self.threshold)
        rejected = (limit is not None and score < limit) or (
            self.margin is not None and margin < self.margin
        )
        return IntentMatch(
            intent=None if rejected else top,
            score=score,
            margin=margin,
            scores={name: float(value) for name, value in zip(self.intents, row, strict=True)},
            top=top,
        )

    # -- fitting and evaluation -----------------------------------------------------------------

    def fit(
        self,
        texts: Sequence[str],
        intents: Sequence[str | None],
        *,
        per_intent: bool = True,
        margin: bool = True,
    ) -> IntentReport:
        """Choose the rejection thresholds on labelled texts (``None`` = out of scope).

        The global threshold maximises accuracy (out of scope counted as its own class);
        then, with ``per_intent``, each intent with enough texts landing on it gets its own
        (an exact optimum: a text's fate only depends on its top intent's threshold); then,
        with ``margin``, a top-two margin is kept only if it improves accuracy further.
        Deterministic: the same data gives the same thresholds. Returns `evaluate`'s report
        on the same texts (optimistic: evaluate on other texts for an honest figure).
        """
        vectors = self._sync_client().embed_many(texts)
        return self.fit_vectors(vectors, intents, per_intent=per_intent, margin=margin)

    async def afit(
        self,
        texts: Sequence[str],
        intents: Sequence[str | None],
        *,
        per_intent: bool = True,
        margin: bool = True,
    ) -> IntentReport:
        """Async `fit`."""
        vectors = await self._aembed(texts)
        return self.fit_vectors(vectors, intents, per_intent=per_intent, margin=margin)

    def fit_vectors(
        self,
        vectors: Sequence[Sequence[float]],
        intents: Sequence[str | None],
        *,
        per_intent: bool = True,
        margin: bool = True,
    ) -> IntentReport:
        """`fit` on texts already embedded."""
        expected = self._label_indices(intents, len(vectors))
        scores = self.score_vectors(vectors)
        top = scores.argmax(axis=1)
        ranked = np.sort(scores, axis=1)
        best = ranked[:, -1]
        gaps = ranked[:, -1] - ranked[:, -2] if scores.shape[1] > 1 else best
        threshold = _best_cut(best, expected, top)
        limits = np.full(len(self.intents), threshold, dtype=np.float64)
        thresholds: dict[str, float] = {}
        if per_intent:
            for j, name in enumerate(self.intents):
                landed = top == j
                if landed.sum() >= _MIN_SUPPORT and (expected[landed] < 0).any():
                    limits[j] = _best_cut(best[landed], expected[landed], top[landed])
                    thresholds[name] = float(limits[j])
        accepted = np.where(best >= limits[top], top, -1)
        chosen_margin: float | None = None
        if margin and scores.shape[1] > 1:
            cut = _best_cut(gaps, expected, accepted)
            with_margin = np.where(gaps >= cut, accepted, -1)
            if (with_margin == expected).sum() > (accepted == expected).sum():
                chosen_margin = cut
        self.threshold, self.thresholds, self.margin = threshold, thresholds, chosen_margin
        return self.evaluate_vectors(vectors, intents)

    def evaluate(self, texts: Sequence[str], intents: Sequence[str | None]) -> IntentReport:
        """Measure the classifier on labelled texts without changing anything."""
        return self.evaluate_vectors(self._sync_client().embed_many(texts), intents)

    async def aevaluate(self, texts: Sequence[str], intents: Sequence[str | None]) -> IntentReport:
        """Async `evaluate`."""
        return self.evaluate_vectors(await self._aembed(texts), intents)

    def evaluate_vectors(
        self, vectors: Sequence[Sequence[float]], intents: Sequence[str | None]
    ) -> IntentReport:
        """`evaluate` on texts already embedded."""
        self._label_indices(intents, len(vectors))
        predicted = [match.intent for match in self.classify_vectors(vectors)]
        return _report(list(intents), predicted, self.intents, self)

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: str | PathLike[str]) -> None:
        """Write the example vectors and settings to ``path`` (a numpy ``.npz`` file), so a
        service can `load` the classifier without embedding (or paying for) the examples."""
        meta = {
            "format": _FORMAT,
            "model": self.model,
            "dimension": self.dimension,
            "intents": self.intents,
            "counts": np.diff(self._starts).tolist(),
            "aggregation": self.aggregation,
            "top_k": self.top_k,
            "center": self.center,
            "threshold": self.threshold,
            "thresholds": self.thresholds,
            "margin": self.margin,
        }
        with open(path, "wb") as file:
            np.savez_compressed(file, vectors=self._raw, meta=np.array(json.dumps(meta)))

    @classmethod
    def load(
        cls,
        path: str | PathLike[str],
        client: Client | None = None,
        *,
        model: str | None = None,
    ) -> IntentClassifier:
        """Read a classifier written by `save`.

        Raises:
            ValueError: the file is not a saved classifier, or it was built with another
                model than ``client``'s (or ``model``), or with vectors of another dimension
                than the client has seen.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                vectors = data["vectors"]
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{path} is not a saved IntentClassifier: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a saved IntentClassifier ({_FORMAT})")
        expected_model = model or (_model_of(client) if client is not None else None)
        if expected_model is not None and meta["model"] != expected_model:
            raise ValueError(
                f"{path} was built with model {meta['model']!r}, not {expected_model!r}: "
                "its vectors cannot be compared with this model's"
            )
        known = client.dimension if client is not None else None
        if known is not None and known != meta["dimension"]:
            raise ValueError(
                f"{path} holds {meta['dimension']}-dimensional vectors, but this client's "
                f"model gives {known}-dimensional ones"
            )
        bounds = np.cumsum([0, *meta["counts"]])
        examples = {
            name: vectors[start:stop]
            for name, (start, stop) in zip(meta["intents"], pairwise(bounds), strict=True)
        }
        return cls(
            examples,
            client=client,
            model=meta["model"],
            threshold=meta["threshold"],
            thresholds=meta["thresholds"],
            margin=meta["margin"],
            aggregation=meta["aggregation"],
            top_k=meta["top_k"],
            center=meta["center"],
        )

    # -- helpers ------------------------------------------------------------------------------

    @property
    def dimension(self) -> int:
        """The length of the vectors this classifier compares."""
        return int(self._raw.shape[1])

    def __repr__(self) -> str:
        return (
            f"IntentClassifier({len(self.intents)} intents, {len(self._raw)} examples, "
            f"aggregation={self.aggregation!r}, threshold={self.threshold}, "
            f"{len(self.thresholds)} per-intent thresholds, margin={self.margin})"
        )

    def _sync_client(self) -> PhosphoClient:
        if isinstance(self.client, PhosphoClient):
            return self.client
        raise TypeError(
            "classifying texts needs a PhosphoClient (client=...); with an "
            "AsyncPhosphoClient use the a* methods, or classify_vectors for vectors"
        )

    async def _aembed(self, texts: Sequence[str]) -> list[list[float]]:
        if isinstance(self.client, AsyncPhosphoClient):
            return await self.client.embed_many(texts)
        return await asyncio.to_thread(self._sync_client().embed_many, texts)

    def _label_indices(self, intents: Sequence[str | None], size: int) -> NDArray[np.int64]:
        if len(intents) != size:
            raise ValueError(f"got {size} texts but {len(intents)} intents")
        positions = {name: j for j, name in enumerate(self.intents)}
        indices = np.empty(size, dtype=np.int64)
        for i, name in enumerate(intents):
            if name is not None and name not in positions:
                raise ValueError(f"intents[{i}] is {name!r}, which is not one of the intents")
            indices[i] = -1 if name is None else positions[name]
        return indices


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


def _model_of(client: Client) -> str:
    return client._core.settings.model


def _normalized(matrix: Matrix) -> Matrix:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)


def _best_cut(values: NDArray[Any], expected: NDArray[np.int64], kept: NDArray[Any]) -> float:
    """The cut on ``values`` that maximises accuracy when texts under it are rejected and the
    others keep their prediction ``kept``; ties go to the lowest cut, placed halfway
    between neighbouring values so it generalises rather than sitting on a data point."""
    order = np.argsort(values, kind="stable")
    ordered = values[order].astype(np.float64)
    keep_right = (kept[order] == expected[order]).astype(np.int64)
    reject_right = (expected[order] < 0).astype(np.int64)
    # Cutting before position i rejects texts [0, i) and keeps [i, n).
    kept_correct = np.concatenate([np.cumsum(keep_right[::-1])[::-1], [0]])
    rejected_correct = np.concatenate([[0], np.cumsum(reject_right)])
    i = int(np.argmax(kept_correct + rejected_correct))
    if i == 0:
        return float(ordered[0]) - 1e-6
    if i == len(ordered):
        return float(ordered[-1]) + 1e-6
    return float((ordered[i - 1] + ordered[i]) / 2)


def _report(
    expected: list[str | None],
    predicted: list[str | None],
    intents: list[str],
    classifier: IntentClassifier,
) -> IntentReport:
    pairs = list(zip(expected, predicted, strict=True))
    in_scope = [(e, p) for e, p in pairs if e is not None]
    out_scope = [(e, p) for e, p in pairs if e is None]
    rejected = [(e, p) for e, p in pairs if p is None]
    per_intent: dict[str, IntentStats] = {}
    for name in intents:
        true_positive = sum(1 for e, p in pairs if e == name and p == name)
        predicted_n = sum(1 for _, p in pairs if p == name)
        support = sum(1 for e, _ in pairs if e == name)
        per_intent[name] = IntentStats(
            precision=_ratio(true_positive, predicted_n),
            recall=_ratio(true_positive, support),
            support=support,
        )
    mistakes = Counter((e, p) for e, p in pairs if e != p)
    return IntentReport(
        size=len(pairs),
        accuracy=_ratio(sum(1 for e, p in pairs if e == p), len(pairs)),
        in_scope_accuracy=_ratio(sum(1 for e, p in in_scope if e == p), len(in_scope)),
        oos_recall=_ratio(sum(1 for _, p in out_scope if p is None), len(out_scope)),
        oos_precision=_ratio(sum(1 for e, _ in rejected if e is None), len(rejected)),
        per_intent=per_intent,
        confusions=[(e, p, n) for (e, p), n in mistakes.most_common(10)],
        threshold=classifier.threshold,
        thresholds=dict(classifier.thresholds),
        margin=classifier.margin,
    )


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def _name(intent: str | None) -> str:
    return "(out of scope)" if intent is None else intent
