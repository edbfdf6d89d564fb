"""On a real ``LocalCluster`` (2 worker processes, 2 threads each) against the emulator
serving at most K requests at once (429 beyond): the bound holds for the whole cluster,
vectors come back right and in order, the key shows nowhere, a refused text is a null with
its error, parquet output resumes and survives a killed worker.

One cluster for the module (it starts in ~2 s); each test reconfigures the emulator.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed")

import dask
import dask.dataframe as dd
import pandas as pd
from distributed import Client, LocalCluster

from phospho_embed.dask import EmbedSummary, embed_frame, embed_to_parquet
from phospho_embed.emulator import TOKEN_LIMIT, Emulator
from phospho_embed.errors import AuthenticationError
from tests.dask.conftest import DIMENSIONS, assert_stored_vectors, assert_vectors

K = 4
KEY = "sk-cluster-test-7f3a9c0e51"
#: The key the workers find in their own environment (the driver's has none).
WORKER_ENV_KEY = "sk-worker-env-2b8d41"


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    # A killed worker's leases come back after the lease timeout (30 s by default): short
    # here, so that the kill test does not wait. Nannies pass this config to their workers.
    with (
        dask.config.set(
            {
                "distributed.scheduler.locks.lease-timeout": "2s",
                "distributed.scheduler.locks.lease-validation-interval": "0.2s",
            }
        ),
        LocalCluster(
            n_workers=2,
            threads_per_worker=2,
            processes=True,
            dashboard_address=":0",
            env={"PHOSPHO_API_KEY": WORKER_ENV_KEY},
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture
def emulator(phospho_emulator: Emulator) -> Emulator:
    phospho_emulator.configure(
        vectors="lexical", dimensions=DIMENSIONS, latency=0.05, max_in_flight=K, retry_after=0.1
    )
    return phospho_emulator


def _frame(count: int, partitions: int, tag: str) -> tuple[list[str], dd.DataFrame]:
    texts = [f"message {i} of {tag}" for i in range(count)]
    index = pd.RangeIndex(1000, 1000 + count, name="id")
    return texts, dd.from_pandas(pd.DataFrame({"text": texts}, index=index), npartitions=partitions)


def test_one_bound_for_the_whole_cluster(client: Client, emulator: Emulator) -> None:
    texts, frame = _frame(96, 8, "bound")
    out = embed_frame(frame, max_concurrency=K, api_key=KEY, base_url=emulator.base_url)
    result = out.compute()
    stats = emulator.stats
    # Two workers of two threads each, eight partitions: without one bound for the cluster
    # each worker would keep K in flight and the emulator would answer 429.
    assert stats.peak_in_flight <= K
    assert 429 not in stats.by_status
    assert stats.by_status == {200: 96}
    assert list(result.index) == list(range(1000, 1096))
    assert_vectors(texts, result["embedding"].tolist())
    assert result["error"].isna().all()


def test_a_bound_name_shared_with_another_size_is_a_clear_error(
    client: Client, emulator: Emulator
) -> None:
    _, frame = _frame(8, 2, "mismatch")
    settings = {"api_key": KEY, "base_url": emulator.base_url, "bound_name": "shared-mismatch"}
    assert embed_frame(frame, max_concurrency=2, **settings).compute()["error"].isna().all()
    emulator.reset_stats()
    future = client.compute(embed_frame(frame, max_concurrency=4, **settings))
    with pytest.raises(ValueError, match="exists with another max_concurrency"):
        future.result(timeout=60)  # bounded: a regression here used to hang for ever
    assert emulator.stats.requests == 0


def test_the_key_travels_hidden(client: Client, emulator: Emulator) -> None:
    emulator.configure(api_key=KEY)
    texts, frame = _frame(12, 3, "key")
    out = embed_frame(frame, max_concurrency=K, api_key=KEY, base_url=emulator.base_url)
    assert_vectors(texts, out.compute()["embedding"].tolist())  # the key reached the workers
    shown = [repr(out), repr(out.expr), str(dict(out.__dask_graph__()))]
    # A wrong key fails the call with a 401, logged by the workers as "Compute Failed"
    # with the task's arguments: the key must not be among them.
    wrong = "sk-wrong-key-5e6f7a8b9c"
    with pytest.raises(AuthenticationError) as failure:
        embed_frame(frame, max_concurrency=K, api_key=wrong, base_url=emulator.base_url).compute()
    shown += [str(failure.value), repr(failure.value)]
    shown += [str(client.get_worker_logs()), str(client.get_scheduler_logs())]
    text = "\n".join(shown)
    assert "Compute Failed" in text
    assert "401 Unauthorized" in text
    for key in (KEY, wrong):
        assert key not in text


def test_workers_read_the_key_from_their_own_environment(
    client: Client, emulator: Emulator
) -> None:
    emulator.configure(api_key=WORKER_ENV_KEY)
    assert "PHOSPHO_API_KEY" not in os.environ  # the driver has none to pass on
    texts, frame = _frame(6, 2, "env")
    result = embed_frame(frame, max_concurrency=K, base_url=emulator.base_url).compute()
    assert_vectors(texts, result["embedding"].tolist())


def test_a_refused_text_is_a_null_and_its_partition_is_kept(
    client: Client, emulator: Emulator
) -> None:
    texts, frame = _frame(10, 2, "refused")
    too_long = "word " * (TOKEN_LIMIT + 1)
    frame = dd.from_pandas(
        pd.DataFrame({"text": [*texts[:3], too_long, *texts[3:]]}), npartitions=2, sort=False
    )
    result = embed_frame(frame, max_concurrency=K, api_key=KEY, base_url=emulator.base_url)
    result = result.compute()
    assert result["embedding"].tolist()[3] is None
    error = result["error"].tolist()[3]
    assert error.startswith("BadRequestError: 400")
    assert "limit is 15000" in error
    kept = result.drop(index=3)
    assert_vectors(texts, kept["embedding"].tolist())
    assert kept["error"].isna().all()


def _files(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


def test_parquet_resumes_only_what_is_missing_or_failed(
    client: Client, emulator: Emulator, tmp_path: Path
) -> None:
    texts, frame = _frame(40, 4, "parquet")
    folder = tmp_path / "embedded"
    # Every 7th request answers 500 and max_retries=0: those texts fail, the rest is kept.
    emulator.configure(fault="500", fault_every=7)
    settings = {"max_concurrency": K, "api_key": KEY, "base_url": emulator.base_url}
    first = embed_to_parquet(frame, folder, max_retries=0, **settings)
    assert _files(folder) == [f"part.{n:05d}.parquet" for n in range(4)]
    assert (first.rows, first.embedded + first.failed, first.failed) == (40, 40, 5)
    assert first.usage.requests == 35
    assert first.requested == 40
    failed = {
        text
        for text, error in zip(*_read(folder, "text", "error"), strict=True)
        if isinstance(error, str)
    }
    assert len(failed) == 5

    # Again, with the faults gone: only the 5 failed texts are sent.
    emulator.reset(vectors="lexical", dimensions=DIMENSIONS, latency=0.05, max_in_flight=K)
    second = embed_to_parquet(frame, folder, **settings)
    assert set(emulator.stats.inputs) == failed
    assert (second.failed, second.requested, second.usage.requests) == (0, 5, 5)

    # Complete: nothing is sent. A deleted file: only its partition is sent again.
    emulator.reset_stats()
    assert embed_to_parquet(frame, folder, **settings).skipped == 4
    assert emulator.stats.requests == 0
    (folder / "part.00002.parquet").unlink()
    fourth = embed_to_parquet(frame, folder, **settings)
    assert (fourth.skipped, fourth.written, fourth.requested) == (3, 1, 10)
    assert set(emulator.stats.inputs) == set(texts[20:30])

    stored, vectors, errors = _read(folder, "text", "embedding", "error")
    assert stored == texts
    assert_stored_vectors(texts, vectors)
    assert not any(isinstance(error, str) for error in errors)
    assert list(pd.read_parquet(folder).index) == list(range(1000, 1040))


def _read(folder: Path, *columns: str) -> list[list[object]]:
    # What dd.read_parquet(folder) reads, in the same order (pandas is quicker for a test).
    table = pd.read_parquet(folder)
    return [table[column].tolist() for column in columns]


def test_a_killed_worker_loses_nothing(client: Client, emulator: Emulator, tmp_path: Path) -> None:
    emulator.configure(latency=0.1)
    texts, frame = _frame(80, 8, "killed")
    folder = tmp_path / "embedded"
    settings = {"max_concurrency": K, "api_key": KEY, "base_url": emulator.base_url}
    outcome: list[EmbedSummary | BaseException] = []

    def run() -> None:
        try:
            outcome.append(embed_to_parquet(frame, folder, **settings))
        except BaseException as exc:  # reported by the assertion below
            outcome.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    victim = _busy_worker(client, emulator)
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    runner.join(timeout=60)
    assert not runner.is_alive()
    assert pid not in client.run(os.getpid).values()  # the worker was killed mid-run
    summary = outcome[0]
    assert isinstance(summary, EmbedSummary), summary
    assert (summary.rows, summary.embedded, summary.failed) == (80, 80, 0)
    stored, vectors = _read(folder, "text", "embedding")
    assert stored == texts
    assert_stored_vectors(texts, vectors)
    assert not [name for name in _files(folder) if name.startswith(".")]  # no temporary left
    assert 429 not in emulator.stats.by_status
    assert emulator.stats.peak_in_flight <= K
    # The killed worker's partitions were redone from their journals: only the texts it
    # had in flight (at most K) were sent twice; none of the vectors it had received.
    assert set(emulator.stats.inputs) == set(texts)
    assert sum(count - 1 for count in emulator.stats.inputs.values()) <= K
    # Usage counts what the dead worker was billed for too (from its journal and its
    # files), except the answers it died before recording: at most K.
    billed = emulator.stats.by_status[200]
    assert billed - K <= summary.usage.requests <= billed
    # A re-run sends nothing: every partition is complete.
    emulator.reset_stats()
    again = embed_to_parquet(frame, folder, **settings)
    assert (again.skipped, emulator.stats.requests) == (8, 0)


def _busy_worker(client: Client, emulator: Emulator) -> str:
    """A worker running a partition, once some vectors have arrived (bounded wait)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if emulator.stats.by_status.get(200, 0) >= 12:
            busy = [worker for worker, keys in client.processing().items() if keys]
            if busy:
                return busy[0]
        time.sleep(0.02)
    raise AssertionError("no worker was running a partition")
