"""The benchmarks run end to end on tiny plans, and their page renders from typed rows.

A tiny run measures nothing worth reading; it proves that every entry point still runs,
returns the emulator's vectors, and fills every sentence of the page.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from benchmarks import (
    clinc150,
    dask_scale,
    discovery,
    overhead,
    scaling,
    throttling,
    throughput,
    vectors,
)
from benchmarks.__main__ import page
from benchmarks._page import TEMPLATES, Section, blocks, row_ids

TINY_THROUGHPUT = throughput.Plan(latency=0.01, jitter=0.0, texts=8, texts_per_slot=2, sweep=(1, 4))
TINY_THROTTLING = throttling.Plan(
    cap=2, latency=0.01, jitter=0.0, retry_after=0.05, texts=6, timeout=20.0
)
TINY_CLINC150 = clinc150.Plan(intents=3, examples_per_intent=4, out_of_scope=4)

#: A field left unfilled: ``{name}``, ``{rows[id].rate:.1f}`` (a literal brace pair in the
#: page, ``{'encoding_format': 'float'}``, starts with a quote).
UNFILLED = re.compile(r"\{[A-Za-z_][\w.\[\]-]*(?::[^{}]*)?\}")


@pytest.fixture(scope="module")
def measured() -> dict[str, Section]:
    """The two scenarios whose rows say most about our clients, run for real on tiny plans."""
    return {
        "throughput": throughput.run(TINY_THROUGHPUT),
        "throttling": throttling.run(TINY_THROTTLING),
    }


def _made_up(semantic: bool) -> dict[str, Section]:
    """The other sections from made-up rows: the page is tested, not what they measure (each
    run starts emulators or processes of its own, seconds apiece)."""
    kinds = ["semantic", "lexical"] if semantic else ["lexical"]
    variants = [
        overhead.VariantRow(id, label, 1e-3, 500.0) for id, label in overhead.VARIANTS.items()
    ]
    profile = overhead.Profile(
        "sync-embed", "`PhosphoClient.embed`", dict.fromkeys(overhead.GROUPS, 0.1), []
    )
    parses = [
        overhead.ParseRow(id, label, 30_000, 4e-4, 5e-4) for id, label in overhead.BODIES.items()
    ]
    scaling_rows = [
        scaling.Row(n, n / 100, 1536, n * 49_000, n * 60_000, True, 100, n * 59_000)
        for n in (100, 1_000)
    ]
    scores = clinc150.Scores(0.8, 0.8, 0.5, math.nan)
    runs = [
        clinc150.KindRun(
            kind,
            1.0,
            [
                clinc150.MethodRow(id, label, ours, scores)
                for id, label, ours, _ in clinc150.METHODS
            ],
            [clinc150.MethodRow(id, label, True, scores) for id, label, _ in clinc150.AGGREGATIONS],
        )
        for kind in kinds
    ]
    clustering = discovery.Scores(1.0, 0.8, 0.5, 0.8, 0.5, 0.6, 0.9, 150)
    methods = [
        discovery.MethodRow(id, label, oracle, None if full_only else clustering)
        for id, label, _, oracle, full_only in discovery.METHODS
    ]
    return {
        "overhead": overhead.Overhead(overhead.QUICK, variants, [profile], parses),
        "scaling": scaling.Scaling(scaling.QUICK, scaling_rows),
        "clinc150": clinc150.Clinc150(10, 100, 200, 20, runs),
        "discovery": discovery.Discovery(
            1_000,
            10,
            dict.fromkeys(kinds, methods),
            [discovery.ScalingRow(1_000, 1.0, 10, 0.9, 2.0, 6.0)],
            kinds[0],
        ),
        "dask": dask_scale.DaskScale(
            dask_scale.QUICK,
            [
                dask_scale.Row(f"{side}-{k}", side, k, 100, 2.0, 80.0, k, 0, leases, 0.2, 0.15)
                for k in dask_scale.QUICK.ks
                for side, leases in (("process", None), ("cluster", 40))
            ],
            1.2e-3,
            2,
        ),
        "vectors": vectors.Vectors(
            vectors.QUICK,
            kinds,
            [
                vectors.Row(id, label, dict.fromkeys(kinds, 1e-4), 0.5 if semantic else None)
                for id, label in vectors.WHATS.items()
            ],
            dict.fromkeys(kinds, 8_000.0),
            vectors.Load(0.2, 0.3, 3) if semantic else None,
        ),
    }


def test_every_id_the_template_looks_up_is_measured() -> None:
    template = "\n".join(blocks("throughput").values())
    referenced = row_ids(template)
    assert referenced  # the template does look rows up by id
    for plan in (throughput.FULL, throughput.QUICK, TINY_THROUGHPUT):
        ids = [entry.id for entry in throughput.entries(plan)]
        assert len(ids) == len(set(ids))
        assert referenced | set(throughput.OPENAI_SYNC) <= set(ids), plan
    attempts = [id for id, *_ in throttling._attempts(throttling.FULL)]
    assert set(throttling.JUDGED) <= set(attempts)
    assert len(attempts) == len(set(attempts))


def test_every_template_file_has_named_blocks_only() -> None:
    for path in TEMPLATES.glob("*.md"):
        assert blocks(path.stem), path  # raises on text before the first block


def test_throughput_rows_are_the_entries_measured(measured: dict[str, Section]) -> None:
    result = measured["throughput"]
    assert isinstance(result, throughput.Throughput)
    expected = [entry.id for entry in throughput.entries(TINY_THROUGHPUT)]
    assert [row.id for row in result.rows] == expected
    for row in result.rows:
        assert math.isfinite(row.rate), row
        assert 0 < row.of_limit < 2, row
        # The emulator saw each bounded entry point keep at most what it asked for in flight
        # (its warm-up call included, as wide as that).
        if row.concurrency is not None:
            assert 1 <= row.peak_in_flight <= row.concurrency, row
    by_id = result.by_id
    # Ours run with their default bound; the one-at-a-time paths send one request at a time.
    assert by_id["phospho-async"].concurrency == throughput.default_concurrency()
    assert by_id["phospho-async"].peak_in_flight > 1
    assert by_id["httpx-loop"].peak_in_flight == 1
    assert by_id["phospho-sync-c1"].texts == TINY_THROUGHPUT.texts_per_slot


def test_throttling_rows_count_what_the_emulator_saw(measured: dict[str, Section]) -> None:
    result = measured["throttling"]
    assert isinstance(result, throttling.Throttling)
    by_id = {row.id: row for row in result.rows}
    assert set(by_id) == {id for id, *_ in throttling._attempts(TINY_THROTTLING)}
    for row in result.rows:
        assert row.embedded + row.failed == TINY_THROTTLING.texts
        assert row.requests >= row.embedded
        assert math.isfinite(row.rate)
    # Sized to the cap, our client is never refused; ours report what they did.
    assert by_id["phospho-sync-cap"].throttled == 0
    assert by_id["phospho-sync-cap"].state.concurrency_limit == TINY_THROTTLING.cap
    assert by_id["llama-openai-async-unbounded"].state.retries is None


@pytest.mark.parametrize("semantic", [True, False], ids=["semantic", "lexical-only"])
def test_the_page_renders_every_section_with_every_field_filled(
    measured: dict[str, Section], semantic: bool, tmp_path: Path
) -> None:
    sections = {**measured, **_made_up(semantic)}
    text = page(list(sections.values()), "2026-01-01 00:00 UTC", 1.0, quick=True)
    assert UNFILLED.search(text) is None, UNFILLED.search(text)
    for heading in (
        "# Benchmarks",
        "## Goals",
        "## Latency-bound throughput",
        "## Client overhead",
        "## Scaling with N",
        "## Throttling: a cap on requests in flight",
        "## Intent classification on CLINC150",
        "## Intent discovery on CLINC150",
        "## Emulator CPU per vector",
        "## Dask: one bound for a whole cluster",
    ):
        assert f"\n{heading}\n" in f"\n{text}\n", heading
    assert "in --quick mode" in text
    assert ("**Semantic vectors are not installed" in text) is not semantic
    # Every goal in the summary; most in their section too.
    goals = [goal for section in sections.values() for goal in section.goals()]
    assert len(goals) == (12 if semantic else 11)
    for goal in goals:
        assert text.count(f"| {goal.statement} | {goal.measured} | ") >= 1, goal
    # Every row of a table is on the page under its label (a sweep point is a cell of its
    # series; a scaling row is a size, shown as a number).
    throughput_rows = sections["throughput"].rows  # type: ignore[attr-defined]
    labels = [row.label for row in throughput_rows if row.main]
    labels += [row.label for row in sections["throttling"].rows]  # type: ignore[attr-defined]
    labels += [row.label for row in sections["overhead"].variants]  # type: ignore[attr-defined]
    labels += [row.label for row in sections["vectors"].rows]  # type: ignore[attr-defined]
    for run in sections["clinc150"].runs:  # type: ignore[attr-defined]
        labels += [row.label for row in run.methods + run.aggregations]
    for rows in sections["discovery"].comparison.values():  # type: ignore[attr-defined]
        labels += [row.label for row in rows]
    for label in labels:
        assert label in text, label
    assert "](benchmarks-throughput.png)" in text
    (path,) = sections["throughput"].write_assets(tmp_path)
    assert path.read_bytes().startswith(b"\x89PNG")


def test_clinc150_without_semantic_vectors_runs_lexical_only_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(clinc150, "semantic_available", lambda: False)
    text = clinc150.run(TINY_CLINC150).markdown()
    assert "**Semantic vectors are not installed on this machine**" in text
    assert "### On lexical vectors" in text
    assert "semantic: accuracy" not in text
    assert "### On semantic" not in text


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
