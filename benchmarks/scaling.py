"""Scaling: time and peak memory of ``PhosphoClient.embed_many`` as N grows.

Each N runs in a fresh client process (``python -m benchmarks.scaling --child ...``), so one
size's memory cannot hide in another's, against one emulator at a fixed latency. The child
warms its client up, then times one ``embed_many`` call on N distinct texts and reads how far
its resident memory rose during the call (Linux's peak-RSS mark, reset just before it). That
is compared with what the returned vectors take in memory: the same growth measured in another
fresh process that only decodes N answers of the emulator with ``json.loads`` and keeps their
vectors (``sys.getsizeof`` undercounts them: CPython stores a 24-byte float in a 32-byte
block).

Time should grow linearly: the marginal time per text between two sizes stays the same.
Memory should be the vectors and little else: no copy of them, nothing kept per request.
After the call the child drops the vectors and counts the Python objects still allocated
(``sys.getallocatedblocks``): what the client keeps per request shows there.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from benchmarks._harness import API_KEY, emulator_process, sample_texts
from benchmarks._page import Goal, Section, goal_lines, lines, render, times

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Plan:
    """How big a run is."""

    sizes: tuple[int, ...]
    latency: float
    jitter: float
    concurrency: int


# 10,000 texts at 0.1 s and 32 in flight: 31 s at the limit, a little more on 2 cores.
FULL = Plan(sizes=(100, 1_000, 10_000), latency=0.1, jitter=0.025, concurrency=32)
QUICK = Plan(sizes=(10, 50, 150), latency=0.02, jitter=0.005, concurrency=32)


# -- the child process --------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else None


def _reset_peak() -> bool:
    """Reset Linux's peak-RSS mark (VmHWM) to the current RSS; False where that is impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


def _deep_size(vectors: list[list[float]]) -> int:
    """Bytes the returned vectors occupy: the outer list, each list, each float object."""
    float_size = sys.getsizeof(0.0)
    return sys.getsizeof(vectors) + sum(
        sys.getsizeof(vector) + float_size * len(vector) for vector in vectors
    )


def child(base_url: str, count: int, concurrency: int) -> dict[str, Any]:
    """Time one ``embed_many`` of ``count`` texts and measure the memory it takes."""
    from phospho_embed import PhosphoClient

    texts = sample_texts(count, tag=f"scaling {count}")
    with PhosphoClient(api_key=API_KEY, base_url=base_url, max_concurrency=concurrency) as client:
        # Threads, connections and lazy imports first: they are not per-text costs.
        client.embed_many(sample_texts(concurrency, tag=f"scaling warm-up {count}"))
        gc.collect()
        blocks_before = sys.getallocatedblocks()
        exact = _reset_peak()
        rss_before = _status_kib("VmRSS") if exact else None
        maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        vectors = client.embed_many(texts)
        seconds = time.perf_counter() - started
        if exact:
            peak_growth = ((_status_kib("VmHWM") or 0) - (rss_before or 0)) * 1024
        else:  # ru_maxrss is the peak since the process started: a rougher baseline
            peak_growth = (
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss_before
            ) * 1024
        size = _deep_size(vectors)
        dimensions = len(vectors[0])
        del vectors
        gc.collect()
        retained = sys.getallocatedblocks() - blocks_before
    return {
        "texts": count,
        "seconds": seconds,
        "dimensions": dimensions,
        "vectors_bytes": size,
        "peak_growth_bytes": peak_growth,
        "exact_peak": exact,
        "retained_blocks": retained,
    }


def reference(base_url: str, count: int) -> dict[str, Any]:
    """How far memory rises to hold ``count`` vectors decoded by ``json.loads`` alone."""
    import httpx

    response = httpx.post(
        f"{base_url}/embeddings",
        json={"input": "where is my parcel?", "model": "intent-embed"},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    response.raise_for_status()
    body = response.content
    gc.collect()
    if not _reset_peak():
        return {"reference_bytes": None}
    rss_before = _status_kib("VmRSS") or 0
    vectors = [json.loads(body)["data"][0]["embedding"] for _ in range(count)]
    growth = ((_status_kib("VmHWM") or 0) - rss_before) * 1024
    del vectors  # held until the peak was read
    return {"reference_bytes": growth}


# -- the run ------------------------------------------------------------------------------


def _run_child(*arguments: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.scaling", *arguments]
    done = subprocess.run(  # noqa: S603 - our own module
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments)} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@dataclass(frozen=True)
class Row:
    """One N: the client's call, measured in its own process, and the vectors' reference."""

    texts: int
    seconds: float
    dimensions: int
    vectors_bytes: int  # sys.getsizeof of the vectors, floats included
    peak_growth_bytes: int
    exact_peak: bool  # Linux's resettable peak mark, else ru_maxrss
    retained_blocks: int
    reference_bytes: int | None  # json.loads's own growth for N vectors; None: not measurable

    @property
    def id(self) -> str:
        return f"n{self.texts}"

    @property
    def in_memory(self) -> int:
        """What the vectors take in memory: json.loads's own growth, else their getsizeof."""
        return self.reference_bytes or self.vectors_bytes


def run(plan: Plan) -> Scaling:
    """Run two child processes per N (the client, the reference) against one emulator."""
    rows = []
    with emulator_process(latency=plan.latency, jitter=plan.jitter) as url:
        for count in plan.sizes:
            measured = _run_child("--child", url, str(count), str(plan.concurrency))
            rows.append(Row(**measured, **_run_child("--reference", url, str(count))))
    return Scaling(plan, rows)


# -- the page -----------------------------------------------------------------------------


def _fit(rows: list[Row]) -> tuple[float, float, float]:
    """Least squares ``seconds = a + b * N``; returns a, b and R²."""
    xs = [float(row.texts) for row in rows]
    ys = [row.seconds for row in rows]
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = mean_y - slope * mean_x
    residual = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    total = sum((y - mean_y) ** 2 for y in ys) or 1.0
    return intercept, slope, 1.0 - residual / total


def _mib(size: float) -> str:
    return f"{size / 2**20:.1f}"


@dataclass(frozen=True)
class Scaling(Section):
    """One row per N, smallest first."""

    plan: Plan
    rows: list[Row]

    def marginals(self) -> list[float]:
        """Seconds per extra text between consecutive sizes."""
        return [(b.seconds - a.seconds) / (b.texts - a.texts) for a, b in pairwise(self.rows)]

    def goals(self) -> list[Goal]:
        marginals = self.marginals()
        growth = marginals[-1] / marginals[0]
        largest = self.rows[-1]
        memory = largest.peak_growth_bytes / largest.in_memory
        return [
            Goal.from_template("scaling", "linear", growth <= 1.2, growth=growth),
            Goal.from_template(
                "scaling",
                "memory",
                memory <= 1.2,
                largest=largest,
                memory=memory,
                of_getsizeof=largest.peak_growth_bytes / largest.vectors_bytes,
            ),
        ]

    def markdown(self) -> str:
        marginals = self.marginals()
        intercept, slope, r2 = _fit(self.rows)
        table_lines = [
            [
                f"{row.texts:,}",
                f"{row.seconds:.2f}",
                f"{row.texts / row.seconds:.0f}",
                f"{row.seconds / row.texts * 1000:.2f}",
                "" if index == 0 else f"{marginals[index - 1] * 1000:.2f}",
                _mib(row.vectors_bytes),
                _mib(row.in_memory),
                _mib(row.peak_growth_bytes),
                times(row.peak_growth_bytes / row.in_memory),
                f"{row.retained_blocks:,}",
            ]
            for index, row in enumerate(self.rows)
        ]
        exact = all(row.exact_peak for row in self.rows)
        largest = self.rows[-1]
        return render(
            "scaling",
            "section",
            plan=self.plan,
            limit=self.plan.concurrency / self.plan.latency,
            peak=render("scaling", "peak.exact" if exact else "peak.maxrss"),
            dimensions=self.rows[0].dimensions,
            per_vector_kib=largest.vectors_bytes / largest.texts / 1024,
            float64_kib=self.rows[0].dimensions * 8 / 1024,
            rows=lines(table_lines),
            intercept=intercept,
            slope_ms=slope * 1000,
            r2=r2,
            goals=goal_lines(self.goals()),
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.scaling --child BASE_URL N CONCURRENCY`` (or ``--reference
    BASE_URL N``): one measurement in this fresh process, printed as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling")
    parser.add_argument("--child", nargs=3, metavar=("BASE_URL", "N", "CONCURRENCY"))
    parser.add_argument("--reference", nargs=2, metavar=("BASE_URL", "N"))
    args = parser.parse_args(argv)
    if args.child is not None:
        base_url, count, concurrency = args.child
        print(json.dumps(child(base_url, int(count), int(concurrency))))
    elif args.reference is not None:
        base_url, count = args.reference
        print(json.dumps(reference(base_url, int(count))))
    else:
        parser.error("run the suite with python -m benchmarks; these are its helpers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
