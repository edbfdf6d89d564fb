"""Choosing the rejection settings on labelled data: the thresholds and margin under which a
text is out of topic. Pure numpy, deterministic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

# Per-intent thresholds need enough validation texts that landed on the intent to be
# trusted; with fewer, the global threshold applies.
MIN_SUPPORT = 8


@dataclass(frozen=True)
class Rejection:
    """Rejection settings chosen by `choose_rejection` (see `IntentClassifier.fit`)."""

    threshold: float
    thresholds: dict[str, float]
    margin: float | None


def label_indices(labels: Sequence[str | None], intents: list[str], size: int) -> NDArray[np.int64]:
    """Each label's intent position, ``-1`` for ``None`` (out of topic): shape ``(size,)``.

    Raises:
        TypeError: ``labels`` is one string.
        ValueError: not ``size`` labels, or a label that is none of ``intents`` (named by
            its index).
    """
    if isinstance(labels, str):
        raise TypeError("intents must be a list of intent names (or None), not one string")
    if len(labels) != size:
        raise ValueError(f"got {size} texts but {len(labels)} intents")
    positions = {name: j for j, name in enumerate(intents)}
    indices = np.empty(size, dtype=np.int64)
    for i, name in enumerate(labels):
        if name is not None and name not in positions:
            raise ValueError(f"intents[{i}] is {name!r}, which is not one of the intents")
        indices[i] = -1 if name is None else positions[name]
    return indices


def choose_rejection(
    scores: NDArray[np.float32],
    expected: NDArray[np.int64],
    intents: list[str],
    *,
    per_intent: bool,
    margin: bool,
) -> Rejection:
    """The rejection settings that classify labelled texts best.

    Args:
        scores: every intent's score for each text, shape ``(n_texts, n_intents)``.
        expected: each text's intent position, ``-1`` when out of topic, shape ``(n_texts,)``.
        intents: the intents' names, in column order.
        per_intent: also choose a threshold per intent (where at least `MIN_SUPPORT` texts
            landed on it, some of them out of topic).
        margin: also choose a top-two margin, kept only when it improves accuracy.
    """
    top = scores.argmax(axis=1)
    ranked = np.sort(scores, axis=1)
    best = ranked[:, -1]
    gaps = ranked[:, -1] - ranked[:, -2] if scores.shape[1] > 1 else best
    threshold = best_cut(best, expected, top)
    limits = np.full(len(intents), threshold, dtype=np.float64)
    thresholds: dict[str, float] = {}
    if per_intent:
        # Exact: a text's fate only depends on its top intent's threshold.
        for j, name in enumerate(intents):
            landed = top == j
            if landed.sum() >= MIN_SUPPORT and (expected[landed] < 0).any():
                limits[j] = best_cut(best[landed], expected[landed], top[landed])
                thresholds[name] = float(limits[j])
    accepted = np.where(best >= limits[top], top, -1)
    chosen_margin: float | None = None
    if margin and scores.shape[1] > 1:
        cut = best_cut(gaps, expected, accepted)
        with_margin = np.where(gaps >= cut, accepted, -1)
        if (with_margin == expected).sum() > (accepted == expected).sum():
            chosen_margin = cut
    return Rejection(threshold, thresholds, chosen_margin)


def best_cut(values: NDArray[Any], expected: NDArray[np.int64], kept: NDArray[Any]) -> float:
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
