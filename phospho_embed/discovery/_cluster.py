"""Clustering: from an (n, dim) matrix to intents, outliers and a rule for new messages.

The method and its defaults were chosen by measurement (see the package docstring):

1. Geometry. Rows are L2-normalised, the mean is removed and rows are normalised again
   (centring stops what every message shares from dominating cosines; the same reason as
   in `phospho_embed.intents`). Everything below is cosine geometry on these unit rows.
2. The number of intents, on a sample of at most ``sample_size`` rows projected by PCA to
   at most ``dims`` dimensions: Ward's tree is built once (scipy.cluster.hierarchy, the
   algorithm of scikit-learn's ``AgglomerativeClustering(linkage="ward")``) and cut at a
   geometric grid of k; each cut is scored by its mean cosine silhouette (Rousseeuw 1987,
   ``sklearn.metrics.silhouette_samples``) where the rows of clusters smaller than
   ``min_size`` (scaled to the sample) count 0, as they would end up outliers. The best
   score wins. Without that rule the silhouette of embeddings keeps rising with k, as
   near-duplicate messages form ever tighter pairs.
3. All rows: scikit-learn ``KMeans`` in the projected space, started from the chosen cut's
   centroids, then each intent's centre is its members' mean in the full space and every
   row goes to its nearest centre (cosine), so the labels are exactly what `assign` gives.
4. Outliers: a row is in its nearest intent only if its similarity to the centre is at least
   the intent's median similarity minus ``outlier_threshold`` robust standard deviations
   (1.4826 x the median absolute deviation, see `_cutoffs`); otherwise -1. Intents left
   with fewer than ``min_size`` members are dissolved and their rows reassigned, until
   every intent has ``min_size``.

Memory stays a small multiple of the input: the sample's square distance matrix is bounded
by ``sample_size``, and rows are compared with centres in chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from phospho_embed.discovery._deps import require

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Matrix = NDArray[np.float32]
    Labels = NDArray[np.int64]

#: Rows the number of intents is chosen on (Ward's tree and silhouettes are quadratic).
DEFAULT_SAMPLE_SIZE = 5000
#: Dimensions the vectors are projected to (PCA) to find the intents.
DEFAULT_DIMS = 128
#: Robust standard deviations under an intent's median similarity before a row is left out.
DEFAULT_OUTLIER_THRESHOLD = 3.0
#: An intent needs at least this share of the messages by default (and ``_MIN_SIZE_FLOOR``).
DEFAULT_MIN_SHARE = 0.002
_MIN_SIZE_FLOOR = 5
#: Candidate numbers of intents scored, spread geometrically from 2 to the largest allowed.
_GRID_POINTS = 24
#: Rows compared with the centres at once: bounds the (chunk, k) similarity block.
_CHUNK = 8192
#: Consistency factor of the median absolute deviation for normally distributed values.
_MAD_TO_SD = 1.4826
#: Weight, in rows, of the spread pooled over intents in each intent's own spread.
_PRIOR_ROWS = 10


def default_min_size(n: int) -> int:
    """The default smallest intent for ``n`` messages: 0.2% of them, and at least 5."""
    return max(_MIN_SIZE_FLOOR, math.ceil(DEFAULT_MIN_SHARE * n))


@dataclass(frozen=True)
class Selection:
    """How the number of intents was chosen.

    Attributes:
        method: ``"given"`` (``n_intents`` was set), ``"silhouette"`` (the scan of the
            module's docstring), ``"single"`` (every vector is the same: one intent) or
            ``"none"`` (too few messages for an intent of ``min_size``).
        k: the number of clusters the scan or the caller chose, before intents under
            ``min_size`` were dissolved.
        scores: k -> score of the scan (empty unless ``method == "silhouette"``).
        sample_size: the number of messages the choice was made on.
    """

    method: str
    k: int
    scores: dict[int, float] = field(default_factory=dict)
    sample_size: int = 0


@dataclass(frozen=True)
class Clustering:
    """The outcome of `cluster_vectors`.

    Attributes:
        labels: shape (n,): the intent of each row (0 is the largest), or -1.
        similarity: shape (n,): cosine similarity of each row to its nearest centre.
        centres: shape (k, dim): the intents' centres, unit vectors in the centred space.
        cutoffs: shape (k,): the least similarity to a centre that puts a row in its intent.
        mean: shape (dim,): the mean removed before comparing (zeros when not centred).
        unit: shape (n, dim): the rows in the clustering's geometry (`to_geometry`).
        selection: how the number of intents was chosen.
    """

    labels: Labels
    similarity: Matrix
    centres: Matrix
    cutoffs: Matrix
    mean: Matrix
    unit: Matrix
    selection: Selection


def unit_rows(matrix: Matrix) -> Matrix:
    """``matrix`` (float32) with every row scaled to length 1 (all-zero rows stay zero); a
    new array."""
    unit: Matrix = matrix / _norms(matrix)
    return unit


def _norms(matrix: Matrix) -> Matrix:
    """Row lengths as a column (zeros replaced by ones), without a temporary of the
    matrix's size (``np.linalg.norm`` would square it first)."""
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))[:, None]
    norms[norms == 0] = 1
    result: Matrix = norms
    return result


def to_geometry(vectors: Matrix, mean: Matrix) -> Matrix:
    """Rows as compared by the clustering: normalised, ``mean`` removed, normalised again.

    One new array of the input's size; `cluster_vectors` does the same operations in the
    same order, so the labels of `assign` are bit for bit those of the clustering.
    """
    unit = unit_rows(vectors)
    _recentre(unit, mean)
    return unit


def _recentre(unit: Matrix, mean: Matrix) -> None:
    """In place: remove ``mean`` from the unit rows, and normalise them again."""
    unit -= mean
    unit /= _norms(unit)


def nearest(unit: Matrix, centres: Matrix) -> tuple[Labels, Matrix]:
    """For each row of ``unit`` (n, dim), its most similar centre of ``centres`` (k, dim)
    and that cosine similarity, computed in chunks of rows; both of shape (n,)."""
    n = unit.shape[0]
    index = np.zeros(n, dtype=np.int64)
    best = np.zeros(n, dtype=np.float32)
    if centres.shape[0] == 0:
        return index - 1, best
    for start in range(0, n, _CHUNK):
        block = unit[start : start + _CHUNK] @ centres.T
        index[start : start + _CHUNK] = block.argmax(axis=1)
        best[start : start + _CHUNK] = block.max(axis=1)
    return index, best


def assign(unit: Matrix, centres: Matrix, cutoffs: Matrix) -> tuple[Labels, Matrix]:
    """The labels of rows already in the clustering's geometry (see `to_geometry`): the
    nearest centre, or -1 when the similarity is under that centre's cutoff; and the
    similarity to the nearest centre. Both of shape (n,)."""
    index, best = nearest(unit, centres)
    return _within(index, best, cutoffs), best


def _within(index: Labels, similarity: Matrix, cutoffs: Matrix) -> Labels:
    """The nearest centre's index where the similarity reaches its cut-off, else -1."""
    if cutoffs.shape[0] == 0:
        return np.full(index.shape[0], -1, dtype=np.int64)
    labels: Labels = np.where(similarity >= cutoffs[index], index, -1).astype(np.int64)
    return labels


def cluster_vectors(
    vectors: Matrix,
    *,
    n_intents: int | None,
    min_size: int,
    outlier_threshold: float | None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    dims: int = DEFAULT_DIMS,
    random_state: int = 0,
) -> Clustering:
    """Cluster the rows of ``vectors`` (n, dim), finite and non-zero, as the module says.

    ``outlier_threshold=None`` leaves no row out. Deterministic: the same inputs and
    ``random_state`` give the same result.
    """
    n, dim = vectors.shape
    unit = unit_rows(vectors)
    single = _all_equal(unit)
    # One direction only: centring would leave nothing to compare.
    mean = np.zeros(dim, np.float32) if single else unit.mean(axis=0, dtype=np.float32)
    _recentre(unit, mean)  # as to_geometry(vectors, mean) does
    rng = np.random.default_rng(random_state)
    sample = np.sort(rng.choice(n, size=min(n, sample_size), replace=False))
    if n < min_size:
        selection = Selection("none", 0, sample_size=len(sample))
        return _finish(unit, np.zeros((0, dim), np.float32), mean, selection, 1, None)
    if single:
        selection = Selection("single", 1, sample_size=len(sample))
        return _finish(unit, unit[:1].copy(), mean, selection, min_size, None)
    project = _projection(unit[sample], dims, random_state)
    reduced_sample = project(unit[sample])
    tree = _ward_tree(reduced_sample)
    if n_intents is None:
        selection, sample_labels = _choose_k(reduced_sample, tree, n, min_size)
    else:
        sample_labels = _cut(tree, [min(n_intents, len(sample))])[:, 0]
        selection = Selection("given", n_intents, sample_size=len(sample))
    k = int(sample_labels.max()) + 1
    init: Any = np.stack([reduced_sample[sample_labels == j].mean(axis=0) for j in range(k)])
    if n_intents is not None and n_intents > k:
        # More intents asked for than sampled rows: k-means++ seeds them on all rows.
        init, k = "k-means++", n_intents
    km = require("sklearn.cluster", "discover_intents").KMeans(
        n_clusters=k, init=init, n_init=1, random_state=random_state
    )
    km_labels = np.asarray(km.fit_predict(project(unit)), dtype=np.int64)
    centres = _centres(unit, km_labels, k)
    return _finish(unit, centres, mean, selection, min_size, outlier_threshold)


def _finish(
    unit: Matrix,
    centres: Matrix,
    mean: Matrix,
    selection: Selection,
    min_size: int,
    outlier_threshold: float | None,
) -> Clustering:
    labels, similarity, centres, cutoffs = _settle(unit, centres, min_size, outlier_threshold)
    return Clustering(
        labels=labels,
        similarity=similarity,
        centres=centres,
        cutoffs=cutoffs,
        mean=mean.astype(np.float32),
        unit=unit,
        selection=selection,
    )


def _all_equal(unit: Matrix) -> bool:
    return bool((unit == unit[0]).all())


def _projection(sample: Matrix, dims: int, random_state: int) -> Any:
    """A function projecting unit rows to at most ``dims`` dimensions (PCA fitted on
    ``sample``, rows normalised again), or returning them as they are when there are no
    more sampled rows than dimensions (then Ward's tree is cheap, and the PCA's
    eigendecomposition of the (dim, dim) covariance would cost more than it saves)."""
    if sample.shape[1] <= dims or sample.shape[0] <= sample.shape[1]:
        return lambda rows: rows
    pca = require("sklearn.decomposition", "discover_intents").PCA(
        n_components=dims, svd_solver="covariance_eigh", random_state=random_state
    )
    pca.fit(sample)

    def project(rows: Matrix) -> Matrix:
        out = np.empty((rows.shape[0], dims), dtype=np.float32)
        for start in range(0, rows.shape[0], _CHUNK):
            out[start : start + _CHUNK] = pca.transform(rows[start : start + _CHUNK])
        return unit_rows(out)

    return project


def _ward_tree(rows: Matrix) -> Any:
    hierarchy = require("scipy.cluster.hierarchy", "discover_intents")
    return hierarchy.linkage(rows.astype(np.float64), method="ward")


def _cut(tree: Any, ks: list[int]) -> NDArray[np.int64]:
    """Labels of the sample for each k in ``ks``: shape (sample, len(ks))."""
    hierarchy = require("scipy.cluster.hierarchy", "discover_intents")
    return np.asarray(hierarchy.cut_tree(tree, n_clusters=ks), dtype=np.int64)


def _choose_k(
    rows: Matrix, tree: Any, n: int, min_size: int
) -> tuple[Selection, NDArray[np.int64]]:
    """Score cuts of Ward's tree on the sample ``rows``; the best one and its labels."""
    metrics = require("sklearn.metrics", "discover_intents")
    size = rows.shape[0]
    sample_min = max(2, round(min_size * size / n))
    distinct = len(np.unique(rows, axis=0))
    largest = max(2, min(size // sample_min, distinct))
    ks = sorted({round(k) for k in np.geomspace(2, largest, _GRID_POINTS)})
    ks = [k for k in ks if 2 <= k < size]
    if not ks:
        return Selection("single", 1, sample_size=size), np.zeros(size, dtype=np.int64)
    cuts = _cut(tree, ks)
    distances = np.clip(1.0 - rows @ rows.T, 0.0, 2.0)
    np.fill_diagonal(distances, 0.0)
    scores: dict[int, float] = {}
    for column, k in enumerate(ks):
        labels = cuts[:, column]
        silhouettes = metrics.silhouette_samples(distances, labels, metric="precomputed")
        sizes = np.bincount(labels)
        scores[k] = float(np.where(sizes[labels] < sample_min, 0.0, silhouettes).mean())
    best = max(ks, key=lambda k: (scores[k], -k))
    if scores[best] <= 0:
        # No cut separates anything better than chance: one intent.
        return Selection("silhouette", 1, scores, size), np.zeros(size, dtype=np.int64)
    return Selection("silhouette", best, scores, size), cuts[:, ks.index(best)]


def _centres(unit: Matrix, labels: Labels, k: int) -> Matrix:
    """Unit mean of each cluster's rows in the full space; empty clusters are dropped.

    The sums are one sparse (k, n) one-hot product: ``np.add.at`` takes seconds per 100,000
    rows of 1536 values."""
    sparse = require("scipy.sparse", "discover_intents")
    n = unit.shape[0]
    onehot = sparse.csr_matrix((np.ones(n, dtype=np.float32), (labels, np.arange(n))), (k, n))
    sums = np.asarray(onehot @ unit, dtype=np.float32)
    counts = np.bincount(labels, minlength=k)
    return unit_rows(sums[counts > 0])


def _settle(
    unit: Matrix, centres: Matrix, min_size: int, outlier_threshold: float | None
) -> tuple[Labels, Matrix, Matrix, Matrix]:
    """Assign rows with outlier cut-offs, dissolving intents under ``min_size`` until none
    is left; return labels (largest intent first), similarities, centres and cut-offs."""
    while True:
        index, similarity = nearest(unit, centres)
        cutoffs = _cutoffs(index, similarity, centres.shape[0], outlier_threshold)
        labels = _within(index, similarity, cutoffs)
        sizes = np.bincount(labels[labels >= 0], minlength=centres.shape[0])
        keep = sizes >= min_size
        if keep.all():
            break
        centres = centres[keep]
    if centres.shape[0] == 0:
        return labels, similarity, centres, cutoffs
    # Ids by size, largest first (ties: the earlier centre), as users read them.
    order = np.lexsort((np.arange(len(sizes)), -sizes))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    labels = np.where(labels >= 0, rank[np.maximum(labels, 0)], -1).astype(np.int64)
    return labels, similarity, centres[order], cutoffs[order]


def _cutoffs(index: Labels, similarity: Matrix, k: int, threshold: float | None) -> Matrix:
    """Each centre's cut-off: the median similarity of its nearest rows minus ``threshold``
    robust standard deviations.

    An intent's spread is 1.4826 x the median absolute deviation of its similarities,
    blended with the spread pooled over all intents as if that were `_PRIOR_ROWS` more
    rows (so a small intent borrows strength, a large one speaks for itself). Repeated
    messages count once (rows with the same centre and the same similarity): a message sent
    a thousand times cannot shrink the spread and push its neighbours out. A spread of 0
    (identical rows) or no threshold: no cut-off.
    """
    if threshold is None or k == 0:
        return np.full(k, -np.inf, dtype=np.float32)
    order = np.lexsort((similarity, index))
    group, value = index[order], similarity[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (group[1:] != group[:-1]) | (value[1:] != value[:-1])
    group, value = group[first], value[first].astype(np.float64)
    bounds = np.searchsorted(group, np.arange(k + 1))
    medians = np.ones(k)
    mads = np.zeros(k)
    for j, (start, stop) in enumerate(pairwise(bounds)):
        if stop > start:
            medians[j] = np.median(value[start:stop])
            mads[j] = np.median(np.abs(value[start:stop] - medians[j]))
    counts = np.diff(bounds)
    pooled = float(np.median(np.abs(value - medians[group]))) if value.size else 0.0
    spread = _MAD_TO_SD * np.sqrt(
        (counts * mads**2 + _PRIOR_ROWS * pooled**2) / (counts + _PRIOR_ROWS)
    )
    cutoffs: Matrix = np.where(spread > 0, medians - threshold * spread, -np.inf).astype(np.float32)
    return cutoffs
