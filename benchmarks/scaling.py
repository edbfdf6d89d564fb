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
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from benchmarks._harness import API_KEY, emulator_process, sample_texts, table, times, verdict

TITLE = "Scaling with N"
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
    return {"reference_bytes": growth, "reference_vectors": len(vectors)}


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


def run(quick: bool = False) -> dict[str, Any]:
    """Run two child processes per N (the client, the reference) against one emulator."""
    plan = QUICK if quick else FULL
    rows = []
    with emulator_process(latency=plan.latency, jitter=plan.jitter) as url:
        for count in plan.sizes:
            measured = _run_child("--child", url, str(count), str(plan.concurrency))
            rows.append({**measured, **_run_child("--reference", url, str(count))})
    return {"plan": asdict(plan), "rows": rows}


# -- the page -----------------------------------------------------------------------------


def _marginals(rows: list[dict[str, Any]]) -> list[float]:
    """Seconds per extra text between consecutive sizes."""
    return [(b["seconds"] - a["seconds"]) / (b["texts"] - a["texts"]) for a, b in pairwise(rows)]


def _fit(rows: list[dict[str, Any]]) -> tuple[float, float, float]:
    """Least squares ``seconds = a + b * N``; returns a, b and R²."""
    xs = [float(row["texts"]) for row in rows]
    ys = [row["seconds"] for row in rows]
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = mean_y - slope * mean_x
    residual = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    total = sum((y - mean_y) ** 2 for y in ys) or 1.0
    return intercept, slope, 1.0 - residual / total


def _in_memory(row: dict[str, Any]) -> int:
    """What the vectors take in memory: json.loads's own growth, else their getsizeof."""
    measured: int | None = row.get("reference_bytes")
    return measured if measured else row["vectors_bytes"]


def goals(result: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The issue's goals for this scenario: (goal, what was measured, met)."""
    rows = result["rows"]
    marginals = _marginals(rows)
    growth = marginals[-1] / marginals[0]
    largest = rows[-1]
    memory = largest["peak_growth_bytes"] / _in_memory(largest)
    return [
        (
            "Scaling: time linear in N",
            f"marginal time per text, largest sizes against smallest: {times(growth)}",
            growth <= 1.2,
        ),
        (
            "Scaling: peak memory within 1.2x of the vectors' own size",
            f"N = {largest['texts']:,}: {times(memory)} (of `getsizeof`: "
            f"{times(largest['peak_growth_bytes'] / largest['vectors_bytes'])})",
            memory <= 1.2,
        ),
    ]


def _mib(size: float) -> str:
    return f"{size / 2**20:.1f}"


def markdown(result: dict[str, Any]) -> str:
    """The section of docs/benchmarks.md."""
    plan, rows = result["plan"], result["rows"]
    marginals = _marginals(rows)
    intercept, slope, r2 = _fit(rows)
    limit = plan["concurrency"] / plan["latency"]
    table_rows = [
        [
            f"{row['texts']:,}",
            f"{row['seconds']:.2f}",
            f"{row['texts'] / row['seconds']:.0f}",
            f"{row['seconds'] / row['texts'] * 1000:.2f}",
            "" if index == 0 else f"{marginals[index - 1] * 1000:.2f}",
            _mib(row["vectors_bytes"]),
            _mib(_in_memory(row)),
            _mib(row["peak_growth_bytes"]),
            times(row["peak_growth_bytes"] / _in_memory(row)),
            f"{row['retained_blocks']:,}",
        ]
        for index, row in enumerate(rows)
    ]
    exact = all(row["exact_peak"] for row in rows)
    dimensions = rows[0]["dimensions"]
    per_vector = rows[-1]["vectors_bytes"] / rows[-1]["texts"]
    return "\n\n".join(
        [
            f"## {TITLE}",
            f"`PhosphoClient.embed_many` with `max_concurrency={plan['concurrency']}`, the "
            f"emulator at {plan['latency']:g} s ± {plan['jitter']:g} s (limit "
            f"{limit:.0f} texts/s), one fresh client process per N. *Peak memory* is how far "
            "the process's resident memory rose during the call "
            + (
                "(Linux's peak-RSS mark, reset just before the call)."
                if exact
                else "(from `ru_maxrss`: a rough baseline on this platform)."
            )
            + f" The call returns N lists of {dimensions} Python floats: `sys.getsizeof` "
            f"counts {per_vector / 1024:.0f} KiB per vector (24 bytes a float plus an 8-byte "
            "list slot), but CPython's allocator gives each float a 32-byte block, so *in "
            "memory* is measured instead: how far memory rises in a fresh process that only "
            "decodes N emulator answers with `json.loads` and keeps their vectors. (As "
            f"float64, the same numbers would take {dimensions * 8 / 1024:.0f} KiB a vector.) "
            "*Objects kept* counts the Python objects still allocated once the call returned "
            "and its vectors were dropped: a client keeping anything per request would show "
            "thousands more at every size.",
            table(
                [
                    "N",
                    "seconds",
                    "texts/s",
                    "ms per text",
                    "marginal ms per text",
                    "vectors, getsizeof (MiB)",
                    "vectors in memory (MiB)",
                    "peak memory (MiB)",
                    "peak / in memory",
                    "objects kept",
                ],
                table_rows,
            ),
            f"Least squares: seconds = {intercept:.2f} + {slope * 1000:.2f} ms x N "
            f"(R² = {r2:.4f}).",
            table(["goal", "measured", ""], [[g, m, verdict(ok)] for g, m, ok in goals(result)]),
        ]
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
