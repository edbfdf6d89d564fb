"""Intent classification with out-of-scope rejection on CLINC150, method against method.

The whole comparison runs twice, once per kind of emulator vectors: semantic (WordLlama
``l2_supercat``, a static model, when installed) and lexical (hashed words and character
n-grams). Within a kind every method gets the same vectors: the CLINC150 texts embedded once
through `PhosphoClient.embed_many` from an emulator serving that kind. Examples are the
training split (50 per intent). CLINC150 as shipped here has no test split, so rejection
thresholds are chosen on one half of the validation split and measured on the other half,
both ways round (2-fold cross-fitting), the same folds for every method: no method is scored
on the data it was tuned on.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks._harness import emulator_process
from benchmarks._page import Section, lines, percent, render, table
from phospho_embed import PhosphoClient
from phospho_embed.emulator import semantic_available
from phospho_embed.emulator._semantic import INSTALL_HINT, MODEL_NAME
from phospho_embed.intents import IntentClassifier

if TYPE_CHECKING:
    from numpy.typing import NDArray

DATA = Path(__file__).parent / "data" / "clinc150"

Examples = dict[str, list[list[float]]]
Labels = Sequence[str | None]
#: Classifies embedded texts: an intent, or ``None`` for out of scope.
Predict = Callable[[list[list[float]]], list[str | None]]
#: Builds a method's classifier from the examples and fits it on the tuning fold.
Method = Callable[[Examples, list[list[float]], Labels], Predict]

KINDS = {
    "semantic": f"semantic vectors ({MODEL_NAME})",
    "lexical": "lexical vectors (hashed words and character n-grams)",
}


class SemanticRouter:
    """semantic-router's route choice, on vectors (aurelio-labs/semantic-router).

    As in ``semantic_router/routers/base.py`` with ``BaseRouter``'s defaults (``top_k=5``,
    ``aggregation="mean"``) and its ``LocalIndex`` (``semantic_router/linear.py``): the
    query's 5 most cosine-similar examples across *all* routes are retrieved; these hits are
    grouped by route (``group_scores_by_class``), each route's hits averaged, and the route
    with the highest mean chosen (``_semantic_classify``); it is accepted when its best hit
    among the 5 is strictly above the threshold (``_pass_threshold``:
    ``max(scores) > threshold``), else no route. One global threshold (the library's
    ``score_threshold``), fitted here by maximising accuracy on labelled texts like our
    classifier's, where the library's ``fit`` draws per-route thresholds at random.
    """

    def __init__(self, examples: Examples, top_k: int = 5) -> None:
        self.intents = list(examples)
        index = np.asarray([v for vectors in examples.values() for v in vectors], np.float64)
        self._index = index / np.linalg.norm(index, axis=1, keepdims=True)
        self._routes = np.repeat(np.arange(len(self.intents)), [len(v) for v in examples.values()])
        self.top_k = min(top_k, len(index))
        self.threshold = -math.inf  # accepts every route until fitted

    def choose(self, vectors: list[list[float]]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Each query's chosen route (an index in ``intents``) and that route's best hit."""
        queries = np.asarray(vectors, np.float64)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        similarities = queries @ self._index.T
        hits = np.argpartition(similarities, -self.top_k, axis=1)[:, -self.top_k :]
        scores = np.take_along_axis(similarities, hits, axis=1)
        routes = self._routes[hits]
        # same[q, i, j]: hits i and j of query q belong to the same route.
        same = routes[:, :, None] == routes[:, None, :]
        means = (same * scores[:, None, :]).sum(axis=2) / same.sum(axis=2)
        bests = np.where(same, scores[:, None, :], -np.inf).max(axis=2)
        chosen = means.argmax(axis=1)[:, None]
        route: NDArray[np.int64] = np.take_along_axis(routes, chosen, axis=1)[:, 0]
        best: NDArray[np.float64] = np.take_along_axis(bests, chosen, axis=1)[:, 0]
        return route, best

    def fit(self, vectors: list[list[float]], labels: Labels) -> None:
        """The global threshold maximising accuracy, out of scope counted as a class.

        Ties go to the lowest threshold, placed halfway between neighbouring best hits.
        """
        route, best = self.choose(vectors)
        positions = {name: j for j, name in enumerate(self.intents)}
        expected = np.array([-1 if label is None else positions[label] for label in labels])
        order = np.argsort(best, kind="stable")
        ordered = best[order]
        # A threshold between ordered[i - 1] and ordered[i] rejects texts [0, i), keeps [i, n).
        kept_correct = np.r_[np.cumsum((route == expected)[order][::-1])[::-1], 0]
        rejected_correct = np.r_[0, np.cumsum((expected < 0)[order])]
        # Only between distinct values: equal best hits are accepted or rejected together.
        possible = np.r_[True, ordered[1:] > ordered[:-1], True]
        i = int(np.argmax(np.where(possible, kept_correct + rejected_correct, -1)))
        if i == 0:
            self.threshold = -math.inf
        elif i == len(ordered):
            self.threshold = math.inf
        else:
            self.threshold = float((ordered[i - 1] + ordered[i]) / 2)

    def predict(self, vectors: list[list[float]]) -> list[str | None]:
        """The accepted route of each query, ``None`` when none passes the threshold."""
        route, best = self.choose(vectors)
        return [
            self.intents[r] if b > self.threshold else None
            for r, b in zip(route.tolist(), best.tolist(), strict=True)
        ]


def _semantic_router(examples: Examples, vectors: list[list[float]], labels: Labels) -> Predict:
    router = SemanticRouter(examples)
    router.fit(vectors, labels)
    return router.predict


def _classifier(thresholds: str = "all", **options: Any) -> Method:
    """Our `IntentClassifier` with ``options``; ``thresholds`` it fits on the tuning fold:
    ``"all"`` (global, per-intent and margin, the default of ``fit``), ``"global"`` or
    ``"none"``."""

    def method(examples: Examples, vectors: list[list[float]], labels: Labels) -> Predict:
        classifier = IntentClassifier(examples, **options)
        if thresholds != "none":
            everything = thresholds == "all"
            classifier.fit_vectors(vectors, labels, per_intent=everything, margin=everything)
        return lambda queries: [match.intent for match in classifier.classify_vectors(queries)]

    return method


#: (id, label, is ours, method): the comparison.
METHODS: list[tuple[str, str, bool, Method]] = [
    (
        "ours",
        "**ours**: top-5 mean on centred vectors, fitted global + per-intent thresholds",
        True,
        _classifier(),
    ),
    ("ours-global-threshold", "ours, one global threshold only", True, _classifier("global")),
    ("ours-not-centred", "ours, not centred", True, _classifier(center=False)),
    (
        "semantic-router",
        "semantic-router: routes' mean over the global top-5 hits, best hit > one global threshold",
        False,
        _semantic_router,
    ),
    (
        "top5-mean-not-centred",
        "per-intent top-5 mean, not centred, one global threshold",
        False,
        _classifier("global", center=False, aggregation="top_k_mean", top_k=5),
    ),
    (
        "langchain-argmax",
        "LangChain routing how-to: argmax over the examples, no out-of-scope",
        False,
        _classifier("none", center=False, aggregation="max"),
    ),
]

#: How an intent's score comes from its examples (ours otherwise: centred, fitted thresholds).
AGGREGATIONS: list[tuple[str, str, Method]] = [
    ("top5-mean", "mean of the top-5 example scores (default)", _classifier()),
    ("max", "best single example (max)", _classifier(aggregation="max")),
    ("centroid", "intent centroid", _classifier(aggregation="centroid")),
]


@dataclass(frozen=True)
class Plan:
    """How much of CLINC150 a run takes: None, all of it."""

    intents: int | None
    examples_per_intent: int | None
    out_of_scope: int | None


FULL = Plan(intents=None, examples_per_intent=None, out_of_scope=None)
QUICK = Plan(intents=10, examples_per_intent=10, out_of_scope=20)


def _load(plan: Plan) -> tuple[list[tuple[str, str]], list[tuple[str, str | None]]]:
    """The examples (training split) and the labelled texts (validation split) of the plan."""
    train = json.loads((DATA / "train.json").read_text())["in_scope"]
    val = json.loads((DATA / "val.json").read_text())
    keep = set(sorted({intent for _, intent in train})[: plan.intents])
    counts: dict[str, int] = defaultdict(int)
    examples = []
    for text, intent in train:
        if intent in keep and counts[intent] != plan.examples_per_intent:
            counts[intent] += 1
            examples.append((text, intent))
    labelled: list[tuple[str, str | None]] = [(t, i) for t, i in val["in_scope"] if i in keep]
    labelled += [(t, None) for t, _ in val["out_of_scope"]][: plan.out_of_scope]
    return examples, labelled


@dataclass(frozen=True)
class Scores:
    """`IntentReport`'s figures, for any method, on the texts it was not tuned on."""

    accuracy: float  # out of scope counted as a class
    in_scope_accuracy: float  # a rejection is wrong
    oos_recall: float
    oos_precision: float  # nan without any rejection


@dataclass(frozen=True)
class MethodRow:
    """One method's scores on one kind of vectors."""

    id: str
    label: str
    ours: bool
    scores: Scores


def _cross_fit(
    method: Method, examples: Examples, vectors: list[list[float]], labels: list[str | None]
) -> Scores:
    """The method's scores on each half of the labelled texts, fitted on the other half."""
    folds = [list(range(0, len(vectors), 2)), list(range(1, len(vectors), 2))]
    scores: list[dict[str, float]] = []
    for tune, test in (folds, folds[::-1]):
        predict = method(examples, [vectors[i] for i in tune], [labels[i] for i in tune])
        expected = [labels[i] for i in test]
        scores.append(_scores(expected, predict([vectors[i] for i in test])))
    return Scores(**{name: _mean([s[name] for s in scores]) for name in scores[0]})


def _scores(expected: Labels, predicted: Labels) -> dict[str, float]:
    """`IntentReport`'s figures, for any method: accuracy with out of scope as a class,
    in-scope accuracy (a rejection is wrong), out-of-scope recall and precision."""
    pairs = list(zip(expected, predicted, strict=True))
    in_scope = [e == p for e, p in pairs if e is not None]
    out_scope = [p is None for e, p in pairs if e is None]
    rejections = [e is None for e, p in pairs if p is None]
    return {
        "accuracy": _share([e == p for e, p in pairs]),
        "in_scope_accuracy": _share(in_scope),
        "oos_recall": _share(out_scope),
        "oos_precision": _share(rejections),
    }


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else math.nan


def _mean(values: list[float]) -> float:
    """The mean of the defined values (nan, e.g. precision without any rejection, skipped)."""
    defined = [v for v in values if not math.isnan(v)]
    return sum(defined) / len(defined) if defined else math.nan


@dataclass(frozen=True)
class KindRun:
    """Every method on one kind of vectors."""

    kind: str
    embed_seconds: float
    methods: list[MethodRow]
    aggregations: list[MethodRow]


def _compare(
    kind: str, train: list[tuple[str, str]], labelled: list[tuple[str, str | None]]
) -> KindRun:
    """Embed the texts through an emulator serving ``kind`` vectors; score every method."""
    with (
        emulator_process(vectors=kind) as base_url,
        PhosphoClient(api_key="benchmark", base_url=base_url, max_concurrency=32) as client,
    ):
        started = time.perf_counter()
        train_vectors = client.embed_many([t for t, _ in train])
        vectors = client.embed_many([t for t, _ in labelled])
        seconds = time.perf_counter() - started
    examples: Examples = defaultdict(list)
    for (_, intent), vector in zip(train, train_vectors, strict=True):
        examples[intent].append(vector)
    labels = [intent for _, intent in labelled]
    return KindRun(
        kind,
        seconds,
        [
            MethodRow(id, label, ours, _cross_fit(method, examples, vectors, labels))
            for id, label, ours, method in METHODS
        ],
        [
            MethodRow(id, label, True, _cross_fit(method, examples, vectors, labels))
            for id, label, method in AGGREGATIONS
        ],
    )


def run(plan: Plan) -> Clinc150:
    """Score every method on semantic vectors (when installed), then on lexical ones."""
    train, labelled = _load(plan)
    kinds = ["semantic", "lexical"] if semantic_available() else ["lexical"]
    return Clinc150(
        intents=len({intent for _, intent in train}),
        examples=len(train),
        labelled=len(labelled),
        out_of_scope=sum(1 for _, intent in labelled if intent is None),
        runs=[_compare(kind, train, labelled) for kind in kinds],
    )


def _lines(rows: list[MethodRow]) -> str:
    return lines(
        [
            [
                row.label,
                percent(row.scores.accuracy),
                percent(row.scores.in_scope_accuracy),
                percent(row.scores.oos_recall),
                "n/a"
                if math.isnan(row.scores.oos_precision)
                else percent(row.scores.oos_precision),
            ]
            for row in rows
        ]
    )


#: The summary's columns: (field of Scores, column title).
SUMMARY = (
    ("accuracy", "accuracy"),
    ("in_scope_accuracy", "in-scope accuracy"),
    ("oos_recall", "out-of-scope recall"),
)


@dataclass(frozen=True)
class Clinc150(Section):
    """The data's size, and every method's scores on each kind of vectors."""

    intents: int
    examples: int
    labelled: int
    out_of_scope: int
    runs: list[KindRun]

    def _headline(self, run: KindRun) -> str:
        """Ours against the best alternative, on one kind of vectors."""
        ours = next(row for row in run.methods if row.id == "ours")
        best = max((row for row in run.methods if not row.ours), key=lambda r: r.scores.accuracy)
        return render(
            "clinc150",
            "headline",
            kind=run.kind,
            best=best,
            accuracy=ours.scores.accuracy - best.scores.accuracy,
            in_scope=ours.scores.in_scope_accuracy - best.scores.in_scope_accuracy,
            oos_recall=ours.scores.oos_recall - best.scores.oos_recall,
        )

    def _kind_section(self, run: KindRun) -> str:
        best = max(run.aggregations, key=lambda row: row.scores.accuracy)
        return render(
            "clinc150",
            "kind",
            name=KINDS[run.kind],
            vectors=render("clinc150", f"vectors.{run.kind}", model=MODEL_NAME),
            embedded=self.examples + self.labelled,
            run=run,
            methods=_lines(run.methods),
            best=best,
            aggregations=_lines(run.aggregations),
        )

    def markdown(self) -> str:
        kinds = [run.kind for run in self.runs]
        summary = [
            [row.label]
            + [
                percent(getattr(run.methods[i].scores, field))
                for run in self.runs
                for field, _ in SUMMARY
            ]
            for i, row in enumerate(self.runs[0].methods)
        ]
        header = ["method"] + [f"{kind}: {title}" for kind in kinds for _, title in SUMMARY]
        semantic = "semantic" in kinds
        return render(
            "clinc150",
            "section",
            result=self,
            kinds=" and on ".join(KINDS[kind] for kind in kinds),
            missing="" if semantic else render("clinc150", "missing", hint=INSTALL_HINT),
            summary=table(header, summary),
            headlines="\n\n".join(self._headline(run) for run in self.runs),
            sections="\n\n".join(self._kind_section(run) for run in self.runs),
        )
