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
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from benchmarks._harness import percent, table
from phospho_embed.discovery import discover_intents, evaluate_labels
from phospho_embed.emulator import emulator_vector, semantic_available
from phospho_embed.emulator._semantic import MODEL_NAME

if TYPE_CHECKING:
    from numpy.typing import NDArray

DATA = Path(__file__).parent / "data" / "clinc150"
TITLE = "Intent discovery on CLINC150"
DIMENSIONS = 1536
#: Published unsupervised intent-discovery results on CLINC150 (TEXTOIR's table), on other
#: vectors: for scale only.
PUBLISHED = [
    ("KMeans on TEXTOIR's encoder (TEXTOIR)", 0.71, 0.28, 0.46),
    ("USNID, the best trained method (TEXTOIR)", 0.91, 0.69, 0.76),
]
SIZES = (10_000, 50_000, 100_000)
QUICK_SIZES = (1_000,)

#: Clusters (vectors, texts, the true number of intents) into one label per message.
Cluster = Callable[["NDArray[np.float32]", Sequence[str], int], Any]


def _ours(vectors: NDArray[np.float32], texts: Sequence[str], k: int) -> NDArray[np.int64]:
    return discover_intents(texts, vectors=vectors).labels


def _kmeans_oracle(vectors: NDArray[np.float32], texts: Sequence[str], k: int) -> Any:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=3, random_state=0).fit_predict(vectors)


def _phospho_platform(vectors: NDArray[np.float32], texts: Sequence[str], k: int) -> Any:
    from sklearn.cluster import AgglomerativeClustering

    clusters = max(5, len(vectors) // 100)
    return AgglomerativeClustering(n_clusters=clusters).fit_predict(vectors)


def _bertopic_default(vectors: NDArray[np.float32], texts: Sequence[str], k: int) -> Any:
    from sklearn.cluster import HDBSCAN
    from umap import UMAP

    reduced = UMAP(
        n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=0, n_jobs=1
    ).fit_transform(vectors)
    return HDBSCAN(min_cluster_size=15, copy=True).fit_predict(reduced)


def _hdbscan_raw(vectors: NDArray[np.float32], texts: Sequence[str], k: int) -> Any:
    from sklearn.cluster import HDBSCAN

    return HDBSCAN(min_cluster_size=15, copy=True).fit_predict(vectors)


#: (row label, method, told the true number of intents, full run only)
METHODS: list[tuple[str, Cluster, bool, bool]] = [
    ("**ours**: `discover_intents`, defaults", _ours, False, False),
    ("KMeans told the true k (an oracle)", _kmeans_oracle, True, False),
    ("phospho's platform: agglomerative, `max(5, N // 100)` clusters", _phospho_platform, False,
     False),
    ("BERTopic's default: UMAP to 5 dims, then HDBSCAN (min_cluster_size=15)",
     _bertopic_default, False, True),
    ("HDBSCAN on the raw vectors (min_cluster_size=15)", _hdbscan_raw, False, False),
]  # fmt: skip


def _load(quick: bool) -> tuple[list[str], list[str]]:
    train = json.loads((DATA / "train.json").read_text())["in_scope"]
    if quick:  # 10 intents: a smoke run
        keep = sorted({intent for _, intent in train})[:10]
        train = [(t, i) for t, i in train if i in keep]
    return [t for t, _ in train], [i for _, i in train]


def _embed(texts: Sequence[str], kind: str) -> NDArray[np.float32]:
    return np.asarray([emulator_vector(t, DIMENSIONS, kind) for t in texts], np.float32)


def _compare(kind: str, texts: list[str], gold: list[str], quick: bool) -> list[dict[str, Any]]:
    vectors = _embed(texts, kind)
    k = len(set(gold))
    rows = []
    for name, method, oracle, full_only in METHODS:
        if full_only and quick:
            rows.append({"name": name, "skipped": "full run only (`make bench`)"})
            continue
        started = time.perf_counter()
        labels = np.asarray(method(vectors, texts, k), dtype=np.int64)
        seconds = time.perf_counter() - started
        scores = evaluate_labels(labels, gold)
        rows.append(
            {
                "name": name,
                "oracle": oracle,
                "seconds": seconds,
                "nmi_all": normalized_mutual_info_score(gold, labels),
                "ari_all": adjusted_rand_score(gold, labels),
                **asdict(scores),
            }
        )
    return rows


def _scaling(quick: bool) -> list[dict[str, Any]]:
    texts, _ = _load(quick)
    kind = "semantic" if semantic_available() else "lexical"
    base = _embed(texts, kind)
    generator = np.random.default_rng(0)
    rows = []
    for size in QUICK_SIZES if quick else SIZES:
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
            {
                "messages": size,
                "seconds": seconds,
                "intents": len(found.intents),
                "coverage": found.coverage,
                "peak_ratio": peak / vectors.nbytes,
                "vectors_mb": vectors.nbytes / 2**20,
            }
        )
        del vectors, noise, found
    return rows


def run(quick: bool = False) -> dict[str, Any]:
    """Cluster CLINC150 with every method on both kinds of vectors; time the scaling."""
    texts, gold = _load(quick)
    kinds = ["semantic", "lexical"] if semantic_available() else ["lexical"]
    return {
        "messages": len(texts),
        "intents": len(set(gold)),
        "kinds": kinds,
        "comparison": {kind: _compare(kind, texts, gold, quick) for kind in kinds},
        "scaling": _scaling(quick),
        "scaling_kind": kinds[0],
    }


def goals(result: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The issue's goals: ours ahead of every method not told k; quick at 100k messages."""
    out = []
    for kind in result["kinds"]:
        rows = [r for r in result["comparison"][kind] if "skipped" not in r]
        ours, others = rows[0], [r for r in rows[1:] if not r["oracle"]]
        best_nmi = max(r["nmi_all"] for r in others)
        best_ari = max(r["ari_all"] for r in others)
        out.append(
            (
                f"Discovery ({kind} vectors) beats every method not told k on NMI and ARI "
                "(all messages)",
                f"NMI {ours['nmi_all']:.3f} vs {best_nmi:.3f}, "
                f"ARI {ours['ari_all']:.3f} vs {best_ari:.3f}",
                ours["nmi_all"] > best_nmi and ours["ari_all"] > best_ari,
            )
        )
    largest = result["scaling"][-1]
    out.append(
        (
            "Discovery well under a minute at 100k messages, memory a small multiple of the "
            "vectors",
            f"{largest['messages']:,} messages: {largest['seconds']:.1f} s, peak "
            f"{largest['peak_ratio']:.1f}x the vectors",
            largest["messages"] >= 100_000
            and largest["seconds"] < 30
            and largest["peak_ratio"] < 5,
        )
    )
    return out


def markdown(result: dict[str, Any]) -> str:
    """The section of docs/benchmarks.md."""
    header = [
        "method",
        "NMI (all)",
        "ARI (all)",
        "NMI (placed)",
        "ARI (placed)",
        "ACC",
        "coverage",
        "clusters",
        "seconds",
    ]

    def rows(kind: str) -> list[list[str]]:
        out = []
        for r in result["comparison"][kind]:
            if "skipped" in r:
                out.append([r["name"], *["-"] * 7, r["skipped"]])
                continue
            out.append(
                [
                    r["name"],
                    f"{r['nmi_all']:.3f}",
                    f"{r['ari_all']:.3f}",
                    f"{r['nmi']:.3f}",
                    f"{r['ari']:.3f}",
                    percent(r["acc"]),
                    percent(r["coverage"]),
                    str(r["intents"]),
                    f"{r['seconds']:.1f}",
                ]
            )
        return out

    names = {"semantic": f"semantic vectors ({MODEL_NAME})", "lexical": "lexical vectors"}
    parts = [
        f"## {TITLE}",
        f"{result['messages']:,} messages (CLINC150's in-scope training texts, "
        f"{result['intents']} intents), clustered without being told the number of intents "
        "(but for the oracle row). Every method clusters the same vectors, exactly the ones "
        "the emulator sends, computed in process. **They are the emulator's vectors, not "
        "phospho's model**: the comparison of methods is the point. NMI and ARI are computed "
        "on all messages (those a method left out as one group: leaving the hard ones out "
        "is not free) and on the messages placed only (what `evaluate` reports: it flatters "
        "methods that leave many out, like HDBSCAN's); ACC (clusters matched to intents by "
        "the Hungarian algorithm) counts a message left out as wrong; coverage is the share "
        "placed.",
    ]
    for kind in result["kinds"]:
        parts += [f"### On {names[kind]}", table(header, rows(kind))]
    parts += [
        "For scale, published unsupervised results on CLINC150 (TEXTOIR's table), on other "
        "vectors: "
        + "; ".join(f"{name}: NMI {n:.2f}, ARI {a:.2f}, ACC {c:.0%}" for name, n, a, c in PUBLISHED)
        + ".",
        "### Scaling",
        f"`discover_intents` with its defaults on vectors given ({result['scaling_kind']}, "
        "CLINC150's vectors repeated with a small random perturbation), on this machine; peak "
        "memory is tracemalloc's, against the vectors' own size:",
        table(
            ["messages", "seconds", "intents", "coverage", "vectors (MB)", "peak / vectors"],
            [
                [
                    f"{r['messages']:,}",
                    f"{r['seconds']:.1f}",
                    str(r["intents"]),
                    percent(r["coverage"]),
                    f"{r['vectors_mb']:.0f}",
                    f"{r['peak_ratio']:.1f}x",
                ]
                for r in result["scaling"]
            ],
        ),
    ]
    return "\n\n".join(parts)
