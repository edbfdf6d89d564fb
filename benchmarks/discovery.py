"""Intent discovery on CLINC150, method against method, and how discovery scales.

The messages are CLINC150's in-scope training texts (150 intents, 50 each); every method
clusters the very same vectors, exactly those the emulator sends (``emulator_vector``,
computed in this process rather than over HTTP: the clustering is what is measured), once on
semantic vectors and once on lexical ones. The gold intents are used only to score:

- **ours**: `discover_intents` with its defaults, not told the number of intents;
- **KMeans told the true k** (scikit-learn, ``k=150``, on unit vectors): an oracle, since
  users do not know how many intents their messages hold;
- **phospho's platform**: agglomerative clustering (scikit-learn's default Ward linkage)
  into ``max(5, N // 100)`` clusters;
- **BERTopic's default clustering**: UMAP to 5 dimensions (``n_neighbors=15``,
  ``min_dist=0.0``, cosine), then HDBSCAN with ``min_cluster_size=15`` (scikit-learn's
  ``HDBSCAN``, the algorithm of the ``hdbscan`` package BERTopic uses); needs umap-learn, in
  the ``bench`` extra, and runs in the full benchmark only (its numba compilation alone
  outlasts the quick run);
- **HDBSCAN on the raw vectors** (``min_cluster_size=15``).

Scores: NMI and ARI twice, on **all** messages (those a method left out forming one group of
their own, so that leaving hard messages out is not free) and, as
`phospho_embed.discovery.Evaluation` reports them, on the messages placed in a cluster only;
ACC over all messages (clusters matched one-to-one to intents by the Hungarian algorithm; a
message left out counts as wrong), and coverage. The goal is judged on all messages.

The scaling part times `discover_intents` on 10k, 50k and 100k vectors given (CLINC150's
semantic vectors, each repeated with a small random perturbation), with tracemalloc's peak
against the vectors' own size.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score  # type: ignore[import-untyped]

from benchmarks._page import Goal, Section, lines, percent, render
from phospho_embed.discovery import discover_intents, evaluate_labels
from phospho_embed.emulator import emulator_vector, semantic_available
from phospho_embed.emulator._semantic import MODEL_NAME

if TYPE_CHECKING:
    from numpy.typing import NDArray

DATA = Path(__file__).parent / "data" / "clinc150"
DIMENSIONS = 1536


@dataclass(frozen=True)
class Plan:
    """How big a run is."""

    intents: int | None  # of CLINC150's 150, the first in name order; None: all
    sizes: tuple[int, ...]  # messages for the scaling part
    full_only: bool  # run the methods too slow for a smoke run (BERTopic's numba compilation)


FULL = Plan(intents=None, sizes=(10_000, 50_000, 100_000), full_only=True)
QUICK = Plan(intents=10, sizes=(1_000,), full_only=False)

#: Clusters (vectors, texts, the true number of intents) into one label per message.
Cluster = Callable[["NDArray[np.float32]", Sequence[str], int], Any]


def _ours(vectors: NDArray[np.float32], texts: Sequence[str], k: int) -> NDArray[np.int64]:
    return discover_intents(texts, vectors=vectors).labels


def _kmeans_oracle(vectors: NDArray[np.float32], texts: Sequence[str], k: int) -> Any:
    from sklearn.cluster import KMeans  # type: ignore[import-untyped]

    return KMeans(n_clusters=k, n_init=3, random_state=0).fit_predict(vectors)


def _phospho_platform(vectors: NDArray[np.float32], texts: Sequence[str], k: int) -> Any:
    from sklearn.cluster import AgglomerativeClustering

    clusters = max(5, len(vectors) // 100)
    return AgglomerativeClustering(n_clusters=clusters).fit_predict(vectors)


def _bertopic_default(vectors: NDArray[np.float32], texts: Sequence[str], k: int) -> Any:
    from sklearn.cluster import HDBSCAN
    from umap import UMAP  # type: ignore[import-untyped]

    reduced = UMAP(
        n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=0, n_jobs=1
    ).fit_transform(vectors)
    return HDBSCAN(min_cluster_size=15, copy=True).fit_predict(reduced)


def _hdbscan_raw(vectors: NDArray[np.float32], texts: Sequence[str], k: int) -> Any:
    from sklearn.cluster import HDBSCAN

    return HDBSCAN(min_cluster_size=15, copy=True).fit_predict(vectors)


#: (id, label, method, told the true number of intents, full run only)
METHODS: list[tuple[str, str, Cluster, bool, bool]] = [
    ("ours", "**ours**: `discover_intents`, defaults", _ours, False, False),
    ("kmeans-oracle", "KMeans told the true k (an oracle)", _kmeans_oracle, True, False),
    ("phospho-platform", "phospho's platform: agglomerative, `max(5, N // 100)` clusters",
     _phospho_platform, False, False),
    ("bertopic-default",
     "BERTopic's default: UMAP to 5 dims, then HDBSCAN (min_cluster_size=15)",
     _bertopic_default, False, True),
    ("hdbscan-raw", "HDBSCAN on the raw vectors (min_cluster_size=15)", _hdbscan_raw, False,
     False),
]  # fmt: skip


def _load(plan: Plan) -> tuple[list[str], list[str]]:
    train = json.loads((DATA / "train.json").read_text())["in_scope"]
    keep = set(sorted({intent for _, intent in train})[: plan.intents])
    train = [(t, i) for t, i in train if i in keep]
    return [t for t, _ in train], [i for _, i in train]


def _embed(texts: Sequence[str], kind: str) -> NDArray[np.float32]:
    return np.asarray([emulator_vector(t, DIMENSIONS, kind) for t in texts], np.float32)


@dataclass(frozen=True)
class Scores:
    """How one method's clusters match the intents."""

    seconds: float
    nmi_all: float  # on all messages, those left out as one group
    ari_all: float
    nmi: float  # on the messages placed only
    ari: float
    acc: float  # a message left out counts as wrong
    coverage: float
    clusters: int


@dataclass(frozen=True)
class MethodRow:
    """One clustering method on one kind of vectors."""

    id: str
    label: str
    oracle: bool  # told the true number of intents
    scores: Scores | None  # None: not run (full run only)


def _compare(kind: str, texts: list[str], gold: list[str], plan: Plan) -> list[MethodRow]:
    vectors = _embed(texts, kind)
    k = len(set(gold))
    rows = []
    for id, label, method, oracle, full_only in METHODS:
        if full_only and not plan.full_only:
            rows.append(MethodRow(id, label, oracle, None))
            continue
        started = time.perf_counter()
        labels = np.asarray(method(vectors, texts, k), dtype=np.int64)
        seconds = time.perf_counter() - started
        scores = evaluate_labels(labels, gold)
        rows.append(
            MethodRow(
                id,
                label,
                oracle,
                Scores(
                    seconds=seconds,
                    nmi_all=float(normalized_mutual_info_score(gold, labels)),
                    ari_all=float(adjusted_rand_score(gold, labels)),
                    nmi=scores.nmi,
                    ari=scores.ari,
                    acc=scores.acc,
                    coverage=scores.coverage,
                    clusters=scores.intents,
                ),
            )
        )
    return rows


@dataclass(frozen=True)
class ScalingRow:
    """`discover_intents` on many messages."""

    messages: int
    seconds: float
    intents: int
    coverage: float
    peak_ratio: float  # tracemalloc's peak over the vectors' own size
    vectors_mb: float

    @property
    def id(self) -> str:
        return f"n{self.messages}"


def _scaling(plan: Plan, kind: str) -> list[ScalingRow]:
    texts, _ = _load(plan)
    base = _embed(texts, kind)
    generator = np.random.default_rng(0)
    rows = []
    for size in plan.sizes:
        picks = np.arange(size) % len(base)
        # Each repeat a slightly different message: no two vectors alike.
        noise = generator.normal(0.0, 0.01, size=(size, base.shape[1])).astype(np.float32)
        vectors = base[picks] + noise
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        many = [texts[i] for i in picks]
        tracemalloc.start()
        started = time.perf_counter()
        found = discover_intents(many, vectors=vectors)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append(
            ScalingRow(
                messages=size,
                seconds=seconds,
                intents=len(found.intents),
                coverage=found.coverage,
                peak_ratio=peak / vectors.nbytes,
                vectors_mb=vectors.nbytes / 2**20,
            )
        )
        del vectors, noise, found
    return rows


def run(plan: Plan) -> Discovery:
    """Cluster CLINC150 with every method on both kinds of vectors; time the scaling."""
    texts, gold = _load(plan)
    kinds = ["semantic", "lexical"] if semantic_available() else ["lexical"]
    return Discovery(
        messages=len(texts),
        intents=len(set(gold)),
        comparison={kind: _compare(kind, texts, gold, plan) for kind in kinds},
        scaling=_scaling(plan, kinds[0]),
        scaling_kind=kinds[0],
    )


def _cells(scores: Scores | None) -> list[str]:
    if scores is None:
        return [*["-"] * 7, render("discovery", "skipped")]
    return [
        f"{scores.nmi_all:.3f}",
        f"{scores.ari_all:.3f}",
        f"{scores.nmi:.3f}",
        f"{scores.ari:.3f}",
        percent(scores.acc),
        percent(scores.coverage),
        str(scores.clusters),
        f"{scores.seconds:.1f}",
    ]


@dataclass(frozen=True)
class Discovery(Section):
    """Every method on each kind of vectors (kind -> rows), and the scaling rows."""

    messages: int
    intents: int
    comparison: dict[str, list[MethodRow]]
    scaling: list[ScalingRow]
    scaling_kind: str

    def goals(self) -> list[Goal]:
        out = []
        for kind, rows in self.comparison.items():
            ours = next(row.scores for row in rows if row.id == "ours")
            others = [
                row.scores
                for row in rows
                if row.scores is not None and row.id != "ours" and not row.oracle
            ]
            assert ours is not None  # ours always runs
            best_nmi = max(scores.nmi_all for scores in others)
            best_ari = max(scores.ari_all for scores in others)
            out.append(
                Goal.from_template(
                    "discovery",
                    "beats-unsupervised",
                    ours.nmi_all > best_nmi and ours.ari_all > best_ari,
                    kind=kind,
                    ours=ours,
                    best_nmi=best_nmi,
                    best_ari=best_ari,
                )
            )
        largest = self.scaling[-1]
        out.append(
            Goal.from_template(
                "discovery",
                "scaling",
                largest.messages >= 100_000 and largest.seconds < 30 and largest.peak_ratio < 5,
                largest=largest,
            )
        )
        return out

    def markdown(self) -> str:
        kinds = "\n\n".join(
            render(
                "discovery",
                "kind",
                name=render("discovery", f"kind.{kind}", model=MODEL_NAME),
                rows=lines([[row.label, *_cells(row.scores)] for row in rows]),
            )
            for kind, rows in self.comparison.items()
        )
        scaling = lines(
            [
                [
                    f"{row.messages:,}",
                    f"{row.seconds:.1f}",
                    str(row.intents),
                    percent(row.coverage),
                    f"{row.vectors_mb:.0f}",
                    f"{row.peak_ratio:.1f}x",
                ]
                for row in self.scaling
            ]
        )
        return render("discovery", "section", result=self, kinds=kinds, scaling=scaling)
