"""Dask scale-out: one process against a cluster, both under one bound K on requests in flight.

The emulator (its own process, the same for both, restarted for each K) serves at most K
requests at once, each after the latency, and answers more with 429: K / latency texts/s is
the best anyone can do. One process embeds with ``PhosphoClient.embed_many`` at
``max_concurrency=K``; the cluster (a ``LocalCluster`` of worker processes, started once)
with ``phospho_embed.dask.embed_to_parquet`` (into a temporary folder) at
``max_concurrency=K``, the bound held for the whole cluster by leases of a
``distributed.Semaphore``. Each side is warmed up on other texts, then
timed on N = K / latency x ``seconds_at_limit`` fresh texts; the emulator counts the peak in
flight and the 429s.

Also measured, on a worker of the same cluster: what one lease of the semaphore costs (an
acquire and a release, each a round trip to the scheduler), and how many leases the run took
per request (a lease is kept while a partition has texts left, so far fewer than one).

The target: where one process holds less than 0.85 of K / latency, the cluster holds at
least 0.85.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from benchmarks._harness import (
    API_KEY,
    emulator_process,
    emulator_stats,
    reset_emulator,
    sample_texts,
)
from benchmarks._page import Goal, Section, lines, percent, render
from phospho_embed import PhosphoClient

#: The cluster's target share of K / latency, where one process falls short of it.
TARGET = 0.85


@dataclass(frozen=True)
class Plan:
    """How big a run is."""

    ks: tuple[int, ...]  # the bounds K measured
    latency: float
    jitter: float
    seconds_at_limit: float  # N = K / latency x this
    workers: int  # worker processes of the cluster
    threads_per_worker: int
    partitions: int
    lease_rounds: int  # acquire/release pairs timed on a worker


# 2 workers on 2 cores: N = 4,800 texts at K = 128 (7.5 s at the limit).
FULL = Plan(
    ks=(16, 64, 128),
    latency=0.2,
    jitter=0.05,
    seconds_at_limit=7.5,
    workers=2,
    threads_per_worker=2,
    partitions=16,
    lease_rounds=200,
)
QUICK = Plan(
    ks=(4, 8),
    latency=0.05,
    jitter=0.0125,
    seconds_at_limit=1.0,
    workers=2,
    threads_per_worker=2,
    partitions=4,
    lease_rounds=20,
)


@dataclass(frozen=True)
class Row:
    """One side (``"process"`` or ``"cluster"``) at one K."""

    id: str  # "process-64", "cluster-64"
    side: str
    k: int
    texts: int
    seconds: float
    limit: float  # K / latency, texts/s
    peak_in_flight: int
    throttled: int  # 429 answers
    leases: int | None  # cluster only: leases of the semaphore taken
    client_cpu: float  # CPU seconds of the client side: this process (and the workers)
    server_cpu: float  # CPU seconds of the emulator's process

    @property
    def rate(self) -> float:
        """Texts embedded per second."""
        return self.texts / self.seconds

    @property
    def share(self) -> float:
        """The rate as a share of K / latency."""
        return self.rate / self.limit

    @property
    def cores_busy(self) -> float:
        """Cores the client side and the emulator kept busy together, on average."""
        return (self.client_cpu + self.server_cpu) / self.seconds

    def ceiling(self, cores: int) -> float:
        """The share of K / latency that ``cores`` fully busy would allow at this CPU per
        text (client side and emulator): the most this machine can show."""
        per_text = (self.client_cpu + self.server_cpu) / self.texts
        return cores / per_text / self.limit


def _one_process(url: str, k: int, texts: list[str], warm_up: list[str]) -> tuple[float, float]:
    """Seconds ``embed_many`` takes on ``texts``, and the CPU seconds it took."""
    with PhosphoClient(api_key=API_KEY, base_url=url, max_concurrency=k) as client:
        client.embed_many(warm_up)  # threads and connections first
        reset_emulator(url)
        cpu, started = time.process_time(), time.perf_counter()
        vectors = client.embed_many(texts)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert len(vectors) == len(texts)
    return seconds, cpu


def _cluster(
    client: Any, url: str, k: int, texts: list[str], warm_up: list[str], plan: Plan
) -> tuple[float, float, int]:
    """Seconds ``embed_to_parquet`` takes on ``texts``, the CPU seconds it took (workers,
    scheduler and this process), and the leases it took."""
    import tempfile

    import dask.dataframe as dd
    import pandas as pd  # type: ignore[import-untyped]

    from phospho_embed.dask import embed_to_parquet

    def frame(chunk: list[str]) -> Any:
        return dd.from_pandas(  # type: ignore[no-untyped-call]
            pd.DataFrame({"text": chunk}), npartitions=plan.partitions
        )

    settings: dict[str, Any] = {"api_key": API_KEY, "base_url": url, "max_concurrency": k}
    with tempfile.TemporaryDirectory(prefix="phospho-dask-bench-") as folder:
        # Each worker's pool and its lease of the semaphore first.
        embed_to_parquet(frame(warm_up), f"{folder}/warm-up", **settings)
        reset_emulator(url)
        cpu = _cluster_cpu(client)
        started = time.perf_counter()
        summary = embed_to_parquet(frame(texts), f"{folder}/run", **settings)
        seconds = time.perf_counter() - started
        cpu = _cluster_cpu(client) - cpu
    if summary.failed or summary.embedded != len(texts):
        raise RuntimeError(f"the cluster run did not embed every text: {summary}")
    return seconds, cpu, summary.leases


def _cluster_cpu(client: Any) -> float:
    """CPU seconds so far of the workers' processes and of this one (the driver, and the
    ``LocalCluster``'s scheduler, which runs in it)."""
    workers: dict[str, float] = client.run(time.process_time)
    return sum(workers.values()) + time.process_time()


def _lease_cost(client: Any, rounds: int) -> float:
    """Seconds one acquire + release of a ``distributed.Semaphore`` takes on a worker."""

    def measure(rounds: int) -> float:
        from distributed import Semaphore

        semaphore = Semaphore(max_leases=1, name="benchmark-lease-cost")  # type: ignore[no-untyped-call]
        semaphore.acquire()  # type: ignore[no-untyped-call]
        semaphore.release()  # type: ignore[no-untyped-call]  # registered, connections open
        started = time.perf_counter()
        for _ in range(rounds):
            semaphore.acquire()  # type: ignore[no-untyped-call]
            semaphore.release()  # type: ignore[no-untyped-call]
        return (time.perf_counter() - started) / rounds

    return float(client.submit(measure, rounds, pure=False).result())


def run(plan: Plan) -> DaskScale:
    """One process, then the cluster, at each K; the cluster is started once."""
    from distributed import Client, LocalCluster

    rows: list[Row] = []
    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=plan.workers,
            threads_per_worker=plan.threads_per_worker,
            processes=True,
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        lease_seconds = _lease_cost(client, plan.lease_rounds)
        for k in plan.ks:
            count = round(k / plan.latency * plan.seconds_at_limit)
            limit = k / plan.latency
            with emulator_process(
                latency=plan.latency, jitter=plan.jitter, max_in_flight=k, retry_after=1.0
            ) as url:
                for side in ("process", "cluster"):
                    texts = sample_texts(count, tag=f"dask {side} {k}")
                    warm_up = sample_texts(2 * k, tag=f"dask warm-up {side} {k}")
                    leases: int | None = None
                    if side == "process":
                        seconds, cpu = _one_process(url, k, texts, warm_up)
                    else:
                        seconds, cpu, leases = _cluster(client, url, k, texts, warm_up, plan)
                    stats = emulator_stats(url)
                    by_status = {int(code): n for code, n in stats["by_status"].items()}
                    rows.append(
                        Row(
                            id=f"{side}-{k}",
                            side=side,
                            k=k,
                            texts=count,
                            seconds=seconds,
                            limit=limit,
                            peak_in_flight=int(stats["peak_in_flight"]),
                            throttled=by_status.get(429, 0),
                            leases=leases,
                            client_cpu=cpu,
                            server_cpu=float(stats["cpu_seconds"]),
                        )
                    )
    return DaskScale(plan, rows, lease_seconds, os.cpu_count() or 1)


@dataclass(frozen=True)
class DaskScale(Section):
    """Two rows per K: one process, then the cluster."""

    plan: Plan
    rows: list[Row]
    lease_seconds: float  # one acquire + release on a worker
    cores: int  # the machine's

    @property
    def by_id(self) -> dict[str, Row]:
        return {row.id: row for row in self.rows}

    def markdown(self) -> str:
        table = lines(
            [
                [
                    "one process, `PhosphoClient.embed_many`"
                    if row.side == "process"
                    else f"cluster ({self.plan.workers} workers), `embed_to_parquet`",
                    row.k,
                    row.texts,
                    f"{row.seconds:.1f}",
                    f"{row.rate:.0f}",
                    f"{row.limit:.0f}",
                    percent(row.share),
                    row.peak_in_flight,
                    row.throttled,
                    "n/a" if row.leases is None else f"{row.leases / row.texts:.3f}",
                    f"{row.client_cpu / row.texts * 1000:.2f}",
                    f"{row.server_cpu / row.texts * 1000:.2f}",
                    f"{row.cores_busy:.2f}",
                    percent(row.ceiling(self.cores)),
                ]
                for row in self.rows
            ]
        )
        cluster = [row for row in self.rows if row.leases is not None]
        per_request = max(row.leases / row.texts for row in cluster if row.leases is not None)
        return render(
            "dask_scale",
            "section",
            plan=self.plan,
            rows=table,
            lease_ms=self.lease_seconds * 1000,
            lease_share=self.lease_seconds / self.plan.latency,
            messages=2 * per_request,
            cores=self.cores,
        )

    def goals(self) -> list[Goal]:
        short = [k for k in self.plan.ks if self.by_id[f"process-{k}"].share < TARGET]
        judged = short or list(self.plan.ks)
        worst = min(judged, key=lambda k: self.by_id[f"cluster-{k}"].share)
        row = self.by_id[f"cluster-{worst}"]
        return [
            Goal.from_template(
                "dask_scale",
                "cluster",
                row.share >= TARGET,
                target=TARGET,
                worst=row.share,
                k=worst,
                ceiling=row.ceiling(self.cores),
                cores=self.cores,
                short=", ".join(str(k) for k in short) or "none",
            )
        ]
