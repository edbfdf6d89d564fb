"""The scoring math, on numpy arrays only: how similar a text is to each intent, and which
intent (if any) it gets. No I/O, no state: the classifier holds the arrays."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from phospho_embed.intents._match import IntentMatch

if TYPE_CHECKING:
    from numpy.typing import NDArray

Aggregation = Literal["top_k_mean", "max", "centroid"]
"""How an intent's score comes from its examples' similarities with the text:
``"top_k_mean"`` (the mean of the ``top_k`` best), ``"max"`` (the best one) or
``"centroid"`` (the similarity with the mean of the intent's examples)."""

AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)


def unit_rows(matrix: NDArray[np.float32], mean: NDArray[np.float32]) -> NDArray[np.float32]:
    """``matrix - mean``, each row scaled to length 1 (an all-zero row stays zero, so it is
    similar to nothing rather than a division by zero): shape ``(n, dim)``."""
    centred = matrix - mean
    norms = np.linalg.norm(centred, axis=-1, keepdims=True)
    return (centred / np.where(norms == 0, 1, norms)).astype(np.float32)


def centroids(examples: NDArray[np.float32], bounds: NDArray[np.int64]) -> NDArray[np.float32]:
    """Each intent's mean example, as a unit row: shape ``(n_intents, dim)``.

    Args:
        examples: the examples' unit rows, shape ``(n_examples, dim)``, intent after intent.
        bounds: intent ``j``'s examples are rows ``bounds[j]`` to ``bounds[j + 1]``.
    """
    means = np.stack([examples[start:stop].mean(axis=0) for start, stop in pairwise(bounds)])
    return unit_rows(means, np.zeros(examples.shape[1], dtype=np.float32))


def intent_scores(
    queries: NDArray[np.float32],
    examples: NDArray[np.float32],
    centres: NDArray[np.float32],
    bounds: NDArray[np.int64],
    aggregation: Aggregation,
    top_k: int,
) -> NDArray[np.float32]:
    """Every intent's score for each query: shape ``(n_queries, n_intents)``.

    Args:
        queries: the queries' unit rows, shape ``(n_queries, dim)``.
        examples: the examples' unit rows, shape ``(n_examples, dim)``, intent after intent.
        centres: the intents' centroids (`centroids`), shape ``(n_intents, dim)``.
        bounds: intent ``j``'s examples are rows ``bounds[j]`` to ``bounds[j + 1]``.
        aggregation: see `Aggregation`.
        top_k: how many best similarities ``"top_k_mean"`` averages (all of an intent's
            examples when it has fewer).
    """
    if aggregation == "centroid":
        by_centroid: NDArray[np.float32] = queries @ centres.T
        return by_centroid
    similarities = queries @ examples.T
    scores = np.empty((len(queries), len(bounds) - 1), dtype=np.float32)
    for j, (start, stop) in enumerate(pairwise(bounds)):
        segment = similarities[:, start:stop]
        k = min(top_k, stop - start)
        if aggregation == "max" or k == 1:
            scores[:, j] = segment.max(axis=1)
        else:
            scores[:, j] = np.partition(segment, -k, axis=1)[:, -k:].mean(axis=1)
    return scores


def decide(
    row: NDArray[np.float32],
    intents: list[str],
    threshold: float | None,
    thresholds: Mapping[str, float],
    margin: float | None,
) -> IntentMatch:
    """The match of one text from its scores (shape ``(n_intents,)``, in ``intents`` order).

    The top intent is rejected (out of topic) when its score is under its threshold (its own
    in ``thresholds``, else ``threshold``) or its lead on the second is under ``margin``.
    A rejected top intent never falls through to the second: a text that almost matches one
    intent is not quietly given another.
    """
    order = np.argsort(row)[::-1]
    best = int(order[0])
    score = float(row[best])
    lead = score - float(row[order[1]]) if len(order) > 1 else score
    top = intents[best]
    limit = thresholds.get(top, threshold)
    rejected = (limit is not None and score < limit) or (margin is not None and lead < margin)
    return IntentMatch(
        intent=None if rejected else top,
        score=score,
        margin=lead,
        scores={name: float(value) for name, value in zip(intents, row, strict=True)},
        top=top,
    )
