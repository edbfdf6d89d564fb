"""How good a clustering is: without labels (`ClusterQuality`) and against them (`Evaluation`)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from phospho_embed.discovery._deps import require

if TYPE_CHECKING:
    from numpy.typing import NDArray


@dataclass(frozen=True)
class ClusterQuality:
    """Internal quality of the intents, from the vectors alone (scikit-learn's metrics).

    Computed on the messages in an intent (a fixed random sample of at most
    ``sample_size`` of them: the silhouette is quadratic in their number), in the cosine
    geometry of the clustering (unit vectors after centring, where Euclidean distance is a
    function of cosine). Each figure is ``nan`` with fewer than two intents.

    Attributes:
        silhouette: mean silhouette with cosine distance (Rousseeuw 1987), in [-1, 1],
            higher is better.
        calinski_harabasz: between- to within-intent dispersion ratio (Calinski and
            Harabasz 1974), higher is better.
        davies_bouldin: mean similarity of each intent to its closest one (Davies and
            Bouldin 1979), lower is better (0 is best).
        messages: how many messages the figures were computed on.
    """

    silhouette: float
    calinski_harabasz: float
    davies_bouldin: float
    messages: int


@dataclass(frozen=True)
class Evaluation:
    """The intents found, compared with known labels (`DiscoveryResult.evaluate`).

    Attributes:
        nmi: normalized mutual information (arithmetic mean normalisation, scikit-learn),
            in [0, 1], on the messages placed in an intent.
        ari: adjusted Rand index (Hubert and Arabie 1985), at most 1, 0 for chance, on the
            messages placed in an intent.
        acc: clustering accuracy: intents are matched one-to-one to labels so as to
            maximise agreement (the Hungarian algorithm, scipy's
            ``linear_sum_assignment``); the share of **all** messages whose intent is
            matched to their label (messages left out count as wrong).
        coverage: share of messages placed in an intent.
        intents: number of intents found (with gap analysis, known intents included).
        classes: number of distinct labels.
    """

    nmi: float
    ari: float
    acc: float
    coverage: float
    intents: int
    classes: int

    def __str__(self) -> str:
        return (
            f"NMI {self.nmi:.3f}, ARI {self.ari:.3f}, ACC {self.acc:.1%}, coverage "
            f"{self.coverage:.1%} ({self.intents} intents for {self.classes} labels)"
        )


def quality(
    unit: NDArray[np.float32], labels: NDArray[np.int64], *, sample_size: int, random_state: int
) -> ClusterQuality:
    """`ClusterQuality` of ``labels`` (n,) over the unit rows ``unit`` (n, dim)."""
    members = np.flatnonzero(labels >= 0)
    if members.size > sample_size:
        rng = np.random.default_rng(random_state)
        members = np.sort(rng.choice(members, size=sample_size, replace=False))
    found = len(np.unique(labels[members]))
    if found < 2 or members.size <= found:
        return ClusterQuality(math.nan, math.nan, math.nan, int(members.size))
    metrics = require("sklearn.metrics", "cluster quality")
    rows, assigned = unit[members], labels[members]
    return ClusterQuality(
        silhouette=float(metrics.silhouette_score(rows, assigned, metric="cosine")),
        calinski_harabasz=float(metrics.calinski_harabasz_score(rows, assigned)),
        davies_bouldin=float(metrics.davies_bouldin_score(rows, assigned)),
        messages=int(members.size),
    )


def evaluate(predicted: NDArray[np.int64], gold: Sequence[Hashable]) -> Evaluation:
    """Compare ``predicted`` (n,) intents (-1: none) with ``gold`` labels (any hashable
    values, one per message): `Evaluation`'s figures for any clustering, e.g. to compare
    another method's labels with `DiscoveryResult.evaluate`'s.

    Raises:
        ValueError: ``gold`` has another length than ``predicted``.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"gold_labels has {len(gold)} labels for {len(predicted)} messages")
    n = len(predicted)
    if n == 0:
        return Evaluation(math.nan, math.nan, math.nan, math.nan, 0, 0)
    metrics = require("sklearn.metrics", "evaluate")
    optimize = require("scipy.optimize", "evaluate")
    classes = {label: i for i, label in enumerate(dict.fromkeys(gold))}
    truth = np.fromiter((classes[label] for label in gold), dtype=np.int64, count=n)
    placed = predicted >= 0
    intents = np.unique(predicted[placed])
    if not placed.any():
        return Evaluation(math.nan, math.nan, 0.0, 0.0, 0, len(classes))
    rows = np.searchsorted(intents, predicted[placed])
    agreement = np.zeros((len(intents), len(classes)), dtype=np.int64)
    np.add.at(agreement, (rows, truth[placed]), 1)
    matched_rows, matched_columns = optimize.linear_sum_assignment(agreement, maximize=True)
    return Evaluation(
        nmi=float(metrics.normalized_mutual_info_score(truth[placed], predicted[placed])),
        ari=float(metrics.adjusted_rand_score(truth[placed], predicted[placed])),
        acc=float(agreement[matched_rows, matched_columns].sum() / n),
        coverage=float(placed.mean()),
        intents=len(intents),
        classes=len(classes),
    )
