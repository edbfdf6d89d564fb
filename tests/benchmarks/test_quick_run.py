"""The benchmark suite's quick mode runs end to end, so the suite cannot rot unnoticed."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import clinc150
from benchmarks.__main__ import main


def test_quick_benchmarks_write_a_page(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    assert main(["--quick", "--output", str(output)]) == 0
    page = output.read_text()
    assert page.startswith("# Benchmarks")
    assert "in --quick mode" in page
    # The goals are reported (met or not), never asserted here.
    assert "## Goals" in page
    assert "at most 1.3x the CPU per request" in page

    assert "## Latency-bound throughput" in page
    for entry in (
        "`PhosphoClient.embed_many`",
        "`AsyncPhosphoClient.embed_many`",
        "`PhosphoEmbeddings.embed_documents`",
        "`PhosphoEmbeddings.aembed_documents`",
        "`PhosphoEmbedding.get_text_embedding_batch`",
        "`PhosphoEmbedding.aget_text_embedding_batch`",
        "LangChain `OpenAIEmbeddings.embed_documents`",
        "LangChain `OpenAIEmbeddings.aembed_documents`",
        "LlamaIndex `OpenAIEmbedding.get_text_embedding_batch`",
        "LlamaIndex `OpenAIEmbedding.aget_text_embedding_batch`",
        "plain loop of `httpx` posts",
    ):
        assert entry in page, entry
    assert "Ours against each alternative" in page
    # The plot is written next to the page and linked from it.
    assert "](benchmarks-throughput.png)" in page
    assert (tmp_path / "benchmarks-throughput.png").read_bytes().startswith(b"\x89PNG")

    assert "## Client overhead" in page
    assert "bare `httpx.Client.post` + `json.loads`, one at a time | " in page
    assert "ours (`phospho_embed`)" in page  # the profile's breakdown

    assert "## Scaling with N" in page
    assert "peak / in memory" in page

    assert "## Throttling" in page
    assert "throttled (429)" in page
    assert "concurrency_limit at the end" in page

    assert "## Intent discovery on CLINC150" in page
    assert "| **ours**: `discover_intents`, defaults |" in page
    assert "| KMeans told the true k (an oracle) |" in page
    assert "full run only (`make bench`)" in page  # BERTopic's UMAP + HDBSCAN
    assert "Discovery well under a minute at 100k messages" in page
    assert "| method | NMI (all) | ARI (all) | NMI (placed) |" in page
    assert "## Intent classification on CLINC150" in page
    assert "not phospho's intent model" in page  # the caveat travels with the numbers
    assert "no test split" in page
    # The comparison is made on both kinds of vectors, each with its own table and headline.
    assert "| method | semantic: accuracy |" in page
    assert "| lexical: accuracy |" in page
    for kind in ("semantic vectors (WordLlama l2_supercat)", "lexical vectors (hashed words"):
        assert f"### On {kind}" in page, kind
    assert "word order and negation are ignored" in page
    for kind in ("semantic", "lexical"):
        assert f"On {kind} vectors, ours against the best alternative" in page, kind
    assert page.count("| **ours**: top-5 mean") == 3  # the summary and each kind's table
    assert page.count("| semantic-router: routes' mean over the global top-5 hits") == 3
    assert page.count("| per-intent top-5 mean, not centred, one global threshold") == 3

    assert "## Emulator CPU per vector" in page
    assert "| the vector (`vector_values`: a list of floats) |" in page
    assert "| per text | semantic (CPU µs) | lexical (CPU µs) | semantic / lexical |" in page
    assert "Loading the model, once per emulator process" in page
    goal = "A semantic vector costs no more CPU than a lexical one, on the whole request path"
    assert f"| {goal} | semantic / lexical: " in page


def test_clinc150_without_semantic_vectors_runs_lexical_only_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(clinc150, "semantic_available", lambda: False)
    page = clinc150.markdown(clinc150.run(quick=True))
    assert "**Semantic vectors are not installed on this machine**" in page
    assert "### On lexical vectors" in page
    assert "semantic: accuracy" not in page
    assert "### On semantic" not in page


def _semantic_router_reference(
    index: np.ndarray, routes: list[str], query: np.ndarray, threshold: float
) -> str | None:
    """semantic-router's route choice written as the library writes it (one query, loops):
    LocalIndex.query (cosine, top 5), group_scores_by_class, mean, _pass_threshold."""
    similarities = index @ query / (np.linalg.norm(index, axis=1) * np.linalg.norm(query))
    hits = np.argpartition(similarities, -5)[-5:]
    scores_by_class: dict[str, list[float]] = {}
    for hit in hits:
        scores_by_class.setdefault(routes[hit], []).append(float(similarities[hit]))
    totals = {route: float(np.mean(scores)) for route, scores in scores_by_class.items()}
    top = max(totals, key=lambda route: totals[route])
    return top if max(scores_by_class[top]) > threshold else None


def test_semantic_router_method_matches_the_library_logic() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(12, 16))
    examples = {f"intent{j}": (centres[j] + rng.normal(size=(6, 16))).tolist() for j in range(12)}
    queries = (centres[rng.integers(0, 12, 300)] + 1.5 * rng.normal(size=(300, 16))).tolist()
    router = clinc150.SemanticRouter(examples)
    index = np.array([v for vectors in examples.values() for v in vectors])
    routes = [name for name, vectors in examples.items() for _ in vectors]
    for threshold in (-math.inf, 0.5, 0.7):
        router.threshold = threshold
        expected = _reference_predictions(index, routes, queries, threshold)
        assert router.predict(queries) == expected
    assert 0 < expected.count(None) < len(queries)  # the last threshold bites

    # The grouping matters here: the mean can choose another intent than the nearest example.
    chosen = _reference_predictions(index, routes, queries, -math.inf)
    unit = index / np.linalg.norm(index, axis=1, keepdims=True)
    nearest = [routes[int(np.argmax(unit @ np.array(q)))] for q in queries]
    assert chosen != nearest

    # The fitted threshold maximises accuracy on the texts it was fitted on.
    labels = [None if i % 3 == 0 else route for i, route in enumerate(chosen)]
    router.fit(queries, labels)
    fitted = _accuracy(router.predict(queries), labels)
    for threshold in np.linspace(-1, 1, 201):
        router.threshold = float(threshold)
        assert _accuracy(router.predict(queries), labels) <= fitted


def _reference_predictions(
    index: np.ndarray, routes: list[str], queries: list[list[float]], threshold: float
) -> list[str | None]:
    return [_semantic_router_reference(index, routes, np.array(q), threshold) for q in queries]


def _accuracy(predicted: list[str | None], labels: list[str | None]) -> float:
    return sum(p == e for p, e in zip(predicted, labels, strict=True)) / len(labels)
