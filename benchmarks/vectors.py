"""The emulator's CPU per text on its request path: semantic against lexical vectors.

What the emulator's process spends (``time.process_time``, every thread) on a text it has not
seen before, in this process, for 1536-dimensional vectors: (a) the vector as the list of
floats the server serialises (what ``vector_values`` returns, its caches bypassed through
``__wrapped__``): semantic is tokenizing, summing the token vectors, normalising and the
exact lift from 256 dimensions; lexical is hashing words, word pairs and character trigrams;
(b) the whole success body (``_success_body.__wrapped__``: the vector and ``orjson.dumps`` of
the response). The four variants take turns on the same CLINC150 messages, fresh ones every
round, in an order rotated each round; the medians over the rounds are reported (these
machines are noisy), and each ratio is the median of the rounds' ratios. Loading the model
is timed on its own, once per fresh process.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks._harness import sample_texts
from benchmarks._page import Goal, Section, goal_lines, render, table, times
from phospho_embed.emulator import semantic_available
from phospho_embed.emulator._app import _success_body
from phospho_embed.emulator._lexical import lexical_vector
from phospho_embed.emulator._semantic import INSTALL_HINT, MODEL_NAME, _cached_vector

DIMENSIONS = 1536

#: What is timed per text: id -> label.
WHATS = {
    "vector": "the vector (`vector_values`: a list of floats)",
    "body": "the whole success body (the vector + `orjson.dumps`)",
}

# In a fresh interpreter: the emulator package is imported first, as the server has it, so
# the time is load_model's own (importing numpy, safetensors and tokenizers, reading files).
_LOAD_SCRIPT = """
import time
from phospho_embed.emulator._semantic import load_model
wall, cpu = time.perf_counter(), time.process_time()
load_model()
print(time.perf_counter() - wall, time.process_time() - cpu)
"""


@dataclass(frozen=True)
class Plan:
    """How big a run is."""

    texts: int  # per variant and round
    rounds: int
    loads: int  # fresh processes timing the model load


FULL = Plan(texts=1000, rounds=7, loads=3)
QUICK = Plan(texts=100, rounds=3, loads=1)
WARM_UP = 50  # texts through every variant first: imports, the lift's constants


def _semantic_vector(text: str) -> list[float]:
    values: list[float] = _cached_vector.__wrapped__(text, DIMENSIONS).tolist()
    return values


def _lexical_vector(text: str) -> list[float]:
    return lexical_vector.__wrapped__(text, DIMENSIONS).tolist()


def _body(kind: str) -> Callable[[str], bytes]:
    def body(text: str) -> bytes:
        # The body's own cache is bypassed; the vector caches it goes through are cleared
        # before each block of distinct texts, so every text is computed.
        computed: bytes = _success_body.__wrapped__(text, DIMENSIONS, kind)
        return computed

    return body


def _variants(kinds: list[str]) -> dict[tuple[str, str], Callable[[str], object]]:
    """(kind, what id) -> the emulator's code for one text, its caches bypassed."""
    vector = {"semantic": _semantic_vector, "lexical": _lexical_vector}
    variants: dict[tuple[str, str], Callable[[str], object]] = {}
    for kind in kinds:
        variants[kind, "vector"] = vector[kind]
        variants[kind, "body"] = _body(kind)
    return variants


@dataclass(frozen=True)
class Load:
    """The one-off model load: wall and CPU seconds, medians over fresh processes."""

    wall: float
    cpu: float
    processes: int


def _load_seconds(plan: Plan) -> Load:
    """The one-off model load, median over fresh processes."""
    runs = []
    for _ in range(plan.loads):
        output = subprocess.run(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", _LOAD_SCRIPT], capture_output=True, text=True, check=True
        ).stdout
        runs.append([float(value) for value in output.split()])
    return Load(
        statistics.median(wall for wall, _ in runs),
        statistics.median(cpu for _, cpu in runs),
        plan.loads,
    )


@dataclass(frozen=True)
class Row:
    """One thing timed per text (the vector, or the whole body), on every kind measured."""

    id: str
    label: str
    cpu: dict[str, float]  # kind -> CPU seconds per text, the median of the rounds
    ratio: float | None  # semantic / lexical, the median of the rounds' ratios; None: lexical only


def run(plan: Plan) -> Vectors:
    """Time every variant, round after round, on the same fresh texts."""
    kinds = ["semantic", "lexical"] if semantic_available() else ["lexical"]
    variants = _variants(kinds)
    texts = sample_texts(WARM_UP + plan.texts * plan.rounds)
    warm_up, rounds = texts[:WARM_UP], texts[WARM_UP:]
    for compute in variants.values():
        for text in warm_up:
            compute(text)
    sizes = {kind: statistics.mean(len(_body(kind)(text)) for text in warm_up) for kind in kinds}
    cpu: dict[tuple[str, str], list[float]] = {name: [] for name in variants}
    order = list(variants)
    for round_number in range(plan.rounds):
        batch = rounds[round_number * plan.texts : (round_number + 1) * plan.texts]
        shift = round_number % len(order)
        for name in order[shift:] + order[:shift]:
            _cached_vector.cache_clear()
            lexical_vector.cache_clear()
            compute = variants[name]
            started = time.process_time()
            for text in batch:
                compute(text)
            cpu[name].append((time.process_time() - started) / len(batch))
    rows = [
        Row(
            id,
            label,
            {kind: statistics.median(cpu[kind, id]) for kind in kinds},
            statistics.median(
                semantic / lexical
                for semantic, lexical in zip(cpu["semantic", id], cpu["lexical", id], strict=True)
            )
            if "semantic" in kinds
            else None,
        )
        for id, label in WHATS.items()
    ]
    load = _load_seconds(plan) if "semantic" in kinds else None
    return Vectors(plan, kinds, rows, sizes, load)


@dataclass(frozen=True)
class Vectors(Section):
    """CPU per text of the vector and of the whole body, per kind of vector."""

    plan: Plan
    kinds: list[str]
    rows: list[Row]
    sizes: dict[str, float]  # kind -> mean bytes of a success body
    load: Load | None  # None: semantic vectors are not installed

    def row(self, id: str) -> Row:
        return next(row for row in self.rows if row.id == id)

    def goals(self) -> list[Goal]:
        vector, body = self.row("vector").ratio, self.row("body").ratio
        if vector is None or body is None:
            return [Goal.from_template("vectors", "not-measured", False)]
        return [
            Goal.from_template(
                "vectors", "cpu", vector <= 1.0 and body <= 1.0, vector=vector, body=body
            )
        ]

    def _load(self) -> str:
        if self.load is None:
            return ""
        count = self.load.processes
        processes = render(
            "vectors", "processes.one" if count == 1 else "processes.many", count=count
        )
        return render("vectors", "load", load=self.load, processes=processes)

    def markdown(self) -> str:
        semantic = self.load is not None
        header = ["per text", *(f"{kind} (CPU µs)" for kind in self.kinds)]
        header += ["semantic / lexical"] if semantic else []
        rows = [
            [
                row.label,
                *(f"{row.cpu[kind] * 1e6:.0f}" for kind in self.kinds),
                *([] if row.ratio is None else [times(row.ratio)]),
            ]
            for row in self.rows
        ]
        sizes = ["body size (bytes, mean)", *(f"{self.sizes[kind]:,.0f}" for kind in self.kinds)]
        rows.append(sizes + ([""] if semantic else []))
        return render(
            "vectors",
            "section",
            plan=self.plan,
            dimensions=DIMENSIONS,
            model=MODEL_NAME,
            missing="" if semantic else render("vectors", "missing", hint=INSTALL_HINT),
            table=table(header, rows),
            load=self._load(),
            goals=goal_lines(self.goals()),
        )
