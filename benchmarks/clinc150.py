"""Intent classification with out-of-scope rejection on CLINC150, method against method.

Every method gets the same vectors: the CLINC150 texts embedded once through
`PhosphoClient.embed_many` from the emulator. Examples are the training split (50 per
intent); rejection thresholds are chosen on one half of the validation split and measured on
the other half, both ways round (2-fold cross-fitting), so no method is scored on the data
it was tuned on.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._harness import emulator_process, percent, table
from phospho_embed import PhosphoClient
from phospho_embed.intents import IntentClassifier, IntentReport

DATA = Path(__file__).parent / "data" / "clinc150"
TITLE = "Intent classification on CLINC150"

Method = Callable[[dict[str, list[list[float]]]], IntentClassifier]
Fit = Callable[[IntentClassifier, list[list[float]], list[str | None]], object]


def _ours(examples: dict[str, list[list[float]]]) -> IntentClassifier:
    return IntentClassifier(examples)


def _fit_ours(c: IntentClassifier, vectors: list[list[float]], labels: list[str | None]) -> object:
    return c.fit_vectors(vectors, labels)


def _fit_global(
    c: IntentClassifier, vectors: list[list[float]], labels: list[str | None]
) -> object:
    return c.fit_vectors(vectors, labels, per_intent=False, margin=False)


def _no_fit(c: IntentClassifier, vectors: list[list[float]], labels: list[str | None]) -> object:
    return None


METHODS: list[tuple[str, Method, Fit]] = [
    (
        "**ours**: top-5 mean on centred vectors, fitted global + per-intent thresholds",
        _ours,
        _fit_ours,
    ),
    ("ours, one global threshold only", _ours, _fit_global),
    ("ours, not centred", lambda e: IntentClassifier(e, center=False), _fit_ours),
    (
        "semantic-router method: mean of top-5 example scores, one global threshold",
        lambda e: IntentClassifier(e, center=False, aggregation="top_k_mean", top_k=5),
        _fit_global,
    ),
    (
        "LangChain routing how-to: argmax over the examples, no out-of-scope",
        lambda e: IntentClassifier(e, center=False, aggregation="max"),
        _no_fit,
    ),
]

AGGREGATIONS: list[tuple[str, Method]] = [
    ("mean of the top-5 example scores (default)", lambda e: IntentClassifier(e)),
    ("best single example (max)", lambda e: IntentClassifier(e, aggregation="max")),
    ("intent centroid", lambda e: IntentClassifier(e, aggregation="centroid")),
]


def _load(quick: bool) -> tuple[list[tuple[str, str]], list[tuple[str, str | None]]]:
    train = json.loads((DATA / "train.json").read_text())["in_scope"]
    val = json.loads((DATA / "val.json").read_text())
    labelled = [(t, i) for t, i in val["in_scope"]] + [(t, None) for t, _ in val["out_of_scope"]]
    if quick:  # 15 intents and their share of the out-of-scope texts: a smoke run
        keep = sorted({intent for _, intent in train})[:15]
        train = [(t, i) for t, i in train if i in keep]
        labelled = [(t, i) for t, i in labelled if i in keep] + [
            (t, i) for t, i in labelled if i is None
        ][:20]
    return train, labelled


def _cross_fit(
    method: Method,
    fit: Fit,
    examples: dict[str, list[list[float]]],
    vectors: list[list[float]],
    labels: list[str | None],
) -> dict[str, float]:
    folds = [list(range(0, len(vectors), 2)), list(range(1, len(vectors), 2))]
    reports: list[IntentReport] = []
    for tune, test in (folds, folds[::-1]):
        classifier = method(examples)
        fit(classifier, [vectors[i] for i in tune], [labels[i] for i in tune])
        reports.append(
            classifier.evaluate_vectors([vectors[i] for i in test], [labels[i] for i in test])
        )
    fields = ("accuracy", "in_scope_accuracy", "oos_recall", "oos_precision")
    return {f: _mean([getattr(r, f) for r in reports]) for f in fields}


def _mean(values: list[float]) -> float:
    """The mean of the defined values (nan, e.g. precision without any rejection, skipped)."""
    defined = [v for v in values if not math.isnan(v)]
    return sum(defined) / len(defined) if defined else math.nan


def run(quick: bool = False) -> dict[str, Any]:
    """Embed CLINC150 through the emulator and score every method on the same vectors."""
    train, labelled = _load(quick)
    with (
        emulator_process() as base_url,
        PhosphoClient(api_key="benchmark", base_url=base_url, max_concurrency=32) as client,
    ):
        started = time.perf_counter()
        train_vectors = client.embed_many([t for t, _ in train])
        vectors = client.embed_many([t for t, _ in labelled])
        seconds = time.perf_counter() - started
    examples: dict[str, list[list[float]]] = defaultdict(list)
    for (_, intent), vector in zip(train, train_vectors, strict=True):
        examples[intent].append(vector)
    labels = [intent for _, intent in labelled]
    methods = [(name, _cross_fit(m, f, examples, vectors, labels)) for name, m, f in METHODS]
    aggregations = [
        (name, _cross_fit(m, _fit_ours, examples, vectors, labels)) for name, m in AGGREGATIONS
    ]
    return {
        "intents": len(examples),
        "examples": len(train),
        "labelled": len(labelled),
        "out_of_scope": labels.count(None),
        "embed_seconds": seconds,
        "methods": methods,
        "aggregations": aggregations,
    }


def markdown(result: dict[str, Any]) -> str:
    """The section of docs/benchmarks.md."""

    def rows(results: list[tuple[str, dict[str, float]]]) -> list[list[str]]:
        return [
            [
                name,
                percent(r["accuracy"]),
                percent(r["in_scope_accuracy"]),
                percent(r["oos_recall"]),
                "n/a" if math.isnan(r["oos_precision"]) else percent(r["oos_precision"]),
            ]
            for name, r in results
        ]

    header = ["method", "accuracy (out-of-scope as a class)", "in-scope accuracy",
              "out-of-scope recall", "out-of-scope precision"]  # fmt: skip
    best_other = max(r["accuracy"] for name, r in result["methods"][3:])
    ours = result["methods"][0][1]["accuracy"]
    best_aggregation = max(result["aggregations"], key=lambda item: item[1]["accuracy"])[0]
    return "\n\n".join(
        [
            f"## {TITLE}",
            f"{result['intents']} intents, {result['examples']} examples (the training split), "
            f"{result['labelled']} labelled validation texts of which {result['out_of_scope']} "
            f"out of scope; embedded through `PhosphoClient.embed_many` in "
            f"{result['embed_seconds']:.1f} s. Thresholds are fitted on one half of the "
            "validation split and measured on the other, both ways round (2-fold "
            "cross-fitting): no method is scored on the texts it was tuned on.",
            "**The vectors are the emulator's** (hashed words and character n-grams), not "
            "phospho's intent model: absolute figures say nothing about phospho's quality. "
            "The point is the comparison of methods on identical vectors.",
            table(header, rows(result["methods"])),
            f"Ours against the best alternative: {ours - best_other:+.1%} accuracy.",
            "How an intent's score comes from its examples (all centred, fitted thresholds); "
            f"in this run the best was: {best_aggregation}. The default is the mean of the "
            "top-5 example similarities, the best on the full dataset.",
            table(header, rows(result["aggregations"])),
        ]
    )
