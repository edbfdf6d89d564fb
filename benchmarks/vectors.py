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
from typing import Any

from benchmarks._harness import sample_texts, table, times, verdict
from phospho_embed.emulator import semantic_available
from phospho_embed.emulator._app import _success_body
from phospho_embed.emulator._lexical import lexical_vector
from phospho_embed.emulator._semantic import INSTALL_HINT, MODEL_NAME, _cached_vector

TITLE = "Emulator CPU per vector"
DIMENSIONS = 1536
GOAL = "A semantic vector costs no more CPU than a lexical one, on the whole request path"

VECTOR = "the vector (`vector_values`: a list of floats)"
BODY = "the whole success body (the vector + `orjson.dumps`)"

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
    """(kind, what) -> the emulator's code for one text, its caches bypassed."""
    vector = {"semantic": _semantic_vector, "lexical": _lexical_vector}
    variants: dict[tuple[str, str], Callable[[str], object]] = {}
    for kind in kinds:
        variants[kind, VECTOR] = vector[kind]
        variants[kind, BODY] = _body(kind)
    return variants


def _load_seconds(plan: Plan) -> dict[str, float]:
    """The one-off model load (wall and CPU seconds), median over fresh processes."""
    runs = []
    for _ in range(plan.loads):
        output = subprocess.run(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", _LOAD_SCRIPT], capture_output=True, text=True, check=True
        ).stdout
        runs.append([float(value) for value in output.split()])
    return {
        "wall": statistics.median(wall for wall, _ in runs),
        "cpu": statistics.median(cpu for _, cpu in runs),
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Time every variant, round after round, on the same fresh texts."""
    plan = QUICK if quick else FULL
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
    ratios: dict[str, float] = {}
    if "semantic" in kinds:
        ratios = {
            what: statistics.median(
                semantic / lexical
                for semantic, lexical in zip(
                    cpu["semantic", what], cpu["lexical", what], strict=True
                )
            )
            for what in (VECTOR, BODY)
        }
    return {
        "kinds": kinds,
        "texts": plan.texts,
        "rounds": plan.rounds,
        "cpu": {name: statistics.median(values) for name, values in cpu.items()},
        "ratios": ratios,
        "sizes": sizes,
        "load": _load_seconds(plan) if "semantic" in kinds else None,
        "loads": plan.loads,
    }


def _processes(count: int) -> str:
    return "in a fresh process" if count == 1 else f"median of {count} fresh processes"


def goals(result: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The issue's goal for this scenario: (goal, what was measured, met)."""
    if not result["ratios"]:
        return [(GOAL, "not measured: semantic vectors are not installed", False)]
    vector, body = result["ratios"][VECTOR], result["ratios"][BODY]
    return [
        (
            GOAL,
            f"semantic / lexical: {times(vector)} for the vector "
            f"({times(body)} for the whole body, JSON included)",
            vector <= 1.0 and body <= 1.0,
        )
    ]


def markdown(result: dict[str, Any]) -> str:
    """The section of docs/benchmarks.md."""
    kinds, cpu, ratios = result["kinds"], result["cpu"], result["ratios"]
    header = ["per text", *(f"{kind} (CPU µs)" for kind in kinds)]
    if ratios:
        header.append("semantic / lexical")
    rows = []
    for what in (VECTOR, BODY):
        row = [what, *(f"{cpu[kind, what] * 1e6:.0f}" for kind in kinds)]
        if ratios:
            row.append(times(ratios[what]))
        rows.append(row)
    sizes = ["body size (bytes, mean)", *(f"{result['sizes'][kind]:,.0f}" for kind in kinds)]
    rows.append(sizes + ([""] if ratios else []))
    parts = [
        f"## {TITLE}",
        f"What the emulator spends per text it has not seen, on its request path, for "
        f"{DIMENSIONS}-dimensional vectors: CPU time of the process, caches bypassed, the "
        f"median of {result['rounds']} rounds of {result['texts']} distinct CLINC150 messages "
        "per variant, the variants taking turns (each ratio is the median of the rounds' "
        "ratios). Semantic: tokenizing, summing the token vectors of "
        f"{MODEL_NAME}, normalising, and the exact lift from 256 dimensions. Lexical: hashing "
        "words, word pairs and character trigrams.",
    ]
    if not ratios:
        parts.append(
            f"**Semantic vectors are not installed on this machine** ({INSTALL_HINT}): "
            "lexical only."
        )
    parts.append(table(header, rows))
    if result["load"] is not None:
        parts.append(
            f"Loading the model, once per emulator process: {result['load']['wall']:.2f} s "
            f"({result['load']['cpu']:.2f} s CPU; importing numpy, safetensors and tokenizers, "
            f"reading the weights and the tokenizer; {_processes(result['loads'])})."
        )
        parts.append(
            "The semantic body is dense, every coordinate a float printed with up to 17 "
            "digits, as a real model's answer would be; the lexical one is mostly zeros. "
            "orjson serialises either in tens of microseconds (`json.dumps` took about 1.3 ms "
            "for a dense body)."
        )
    parts.append(
        table(["goal", "measured", ""], [[g, m, verdict(ok)] for g, m, ok in goals(result)])
    )
    return "\n\n".join(parts)
