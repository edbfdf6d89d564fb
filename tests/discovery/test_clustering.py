"""Clustering properties on synthetic clusters on the sphere: recovery, determinism,
label invariants, `assign`, and the knobs (``n_intents``, ``min_size``,
``outlier_threshold``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phospho_embed.discovery import DiscoveryResult, discover_intents
from tests.discovery.conftest import sphere_clusters, words_for

FAST = settings(max_examples=8, deadline=None)


def found_for(vectors: np.ndarray, labels: np.ndarray, **options: object) -> DiscoveryResult:
    return discover_intents(words_for(labels), vectors=vectors, **options)  # type: ignore[arg-type]


def check_invariants(found: DiscoveryResult, n: int) -> None:
    k = len(found.intents)
    assert found.labels.shape == (n,)
    assert found.labels.dtype == np.int64
    assert found.labels.min() >= -1
    assert found.labels.max() < k
    assert [intent.id for intent in found.intents] == list(range(k))
    sizes = [intent.size for intent in found.intents]
    assert sizes == sorted(sizes, reverse=True)  # largest first
    assert sizes == np.bincount(found.labels[found.labels >= 0], minlength=k).tolist()
    assert sum(sizes) + len(found.outliers) == n
    covered = 1 - len(found.outliers) / n
    assert sum(intent.share for intent in found.intents) == pytest.approx(covered)
    assert found.coverage == pytest.approx(covered)
    assert len({intent.name for intent in found.intents}) == k  # names are unique


@FAST
@given(
    k=st.integers(min_value=2, max_value=8),
    per=st.integers(min_value=12, max_value=30),
    dim=st.sampled_from([16, 48]),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_well_separated_clusters_are_recovered(k: int, per: int, dim: int, seed: int) -> None:
    vectors, labels = sphere_clusters(k, per, dim=dim, seed=seed)
    found = found_for(vectors, labels)
    check_invariants(found, len(labels))
    report = found.evaluate(labels.tolist())
    assert report.nmi > 0.9, (report, found.selection)
    assert report.coverage > 0.9
    assert (found.assign(vectors) == found.labels).all()


@FAST
@given(seed=st.integers(min_value=0, max_value=10_000), noise=st.floats(0.3, 1.5))
def test_labels_keep_their_invariants_on_noisy_data(seed: int, noise: float) -> None:
    vectors, labels = sphere_clusters(5, 20, dim=32, noise=noise, seed=seed)
    found = found_for(vectors, labels)
    check_invariants(found, len(labels))
    assert (found.assign(vectors) == found.labels).all()
    for intent in found.intents:
        assert intent.size >= 5  # the default min_size for 100 messages
        members = set(np.flatnonzero(found.labels == intent.id).tolist())
        assert set(intent.example_indices) <= members


def test_same_inputs_same_result_every_time() -> None:
    vectors, labels = sphere_clusters(6, 40, dim=32, noise=0.6, seed=3)
    first = found_for(vectors, labels, sample_size=120)  # a sample: the seed matters
    second = found_for(vectors, labels, sample_size=120)
    assert (first.labels == second.labels).all()
    assert [i.name for i in first.intents] == [i.name for i in second.intents]
    assert first.selection == second.selection
    assert first.quality == second.quality


def test_examples_are_the_members_nearest_the_centre() -> None:
    vectors, labels = sphere_clusters(3, 30, dim=16, noise=0.5, seed=1)
    found = found_for(vectors, labels, n_examples=4)
    for intent in found.intents:
        members = np.flatnonzero(found.labels == intent.id)
        best = members[np.argsort(-found.similarity[members], kind="stable")][:4]
        assert intent.example_indices == best.tolist()
        assert intent.examples == [found.texts[i] for i in best]
        assert intent.cohesion == pytest.approx(found.similarity[members].mean(), rel=1e-5)


def test_n_intents_is_obeyed() -> None:
    vectors, labels = sphere_clusters(6, 20, dim=24, seed=2)
    found = found_for(vectors, labels, n_intents=3)
    assert len(found.intents) == 3
    assert found.selection.method == "given"
    assert found.selection.k == 3


def test_min_size_dissolves_small_intents() -> None:
    big, big_labels = sphere_clusters(3, 30, dim=24, seed=4)
    small, _ = sphere_clusters(1, 6, dim=24, seed=99)
    vectors = np.vstack([big, small])
    labels = np.concatenate([big_labels, np.full(6, 3)])
    assert len(found_for(vectors, labels, min_size=5).intents) == 4
    strict = found_for(vectors, labels, min_size=10)
    assert len(strict.intents) == 3
    assert min(intent.size for intent in strict.intents) >= 10


def test_outlier_threshold_trades_coverage_for_purity() -> None:
    vectors, labels = sphere_clusters(4, 40, dim=32, noise=1.0, seed=5)
    coverages = [
        found_for(vectors, labels, outlier_threshold=threshold).coverage
        for threshold in (0.5, 1.5, 3.0)
    ]
    assert coverages == sorted(coverages)
    assert coverages[0] < coverages[-1]
    assert found_for(vectors, labels, outlier_threshold=None).coverage == 1.0


def test_an_odd_message_is_left_out_and_assign_rejects_its_like() -> None:
    vectors, labels = sphere_clusters(3, 30, dim=24, noise=0.2, seed=6)
    stray = np.zeros((1, 24), dtype=np.float32)
    stray[0, 0] = 1.0
    stray[0, 1] = -1.0  # far from every cluster (random directions in 24 dimensions)
    found = found_for(np.vstack([vectors, stray]), np.append(labels, 3))
    assert found.labels[-1] == -1
    assert 90 in found.outliers.tolist()
    assert found.assign(stray).tolist() == [-1]
    assert found.assign(vectors[:5]).tolist() == found.labels[:5].tolist()


def test_quality_is_computed_in_cosine_geometry() -> None:
    vectors, labels = sphere_clusters(4, 25, dim=24, noise=0.1, seed=7)
    found = found_for(vectors, labels)
    quality = found.quality
    assert 0.5 < quality.silhouette <= 1
    assert quality.calinski_harabasz > 10
    assert 0 <= quality.davies_bouldin < 1
    assert quality.messages == 100 - len(found.outliers)
    one = found_for(vectors, labels, n_intents=1).quality  # undefined with one intent
    assert np.isnan([one.silhouette, one.calinski_harabasz, one.davies_bouldin]).all()
