"""What runs on a Dask worker: one connection pool per process, the cluster-wide bound, and
the embedding of one partition's texts.

The bound. Every request is sent by a *slot* (a thread of the partition's task) that holds a
lease of one `distributed.Semaphore` with ``max_leases=max_concurrency``, named the same on
every worker: at most ``max_concurrency`` slots hold a lease across the cluster, so at most
that many requests are in flight, whatever the number of workers, threads and partitions.
A slot keeps its lease for as long as its partition has texts left and hands it back when the
partition's queue is empty, so a lease costs the scheduler two messages (acquire, release)
per slot and partition instead of two per request; a partition that has its texts in flight
already gives its leases back for others to take. Off a distributed worker (Dask's local
schedulers) the bound is a semaphore of this process.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

import httpx

from phospho_embed import wire
from phospho_embed._client import PhosphoClient
from phospho_embed._core import Usage
from phospho_embed.dask._settings import WorkerSettings
from phospho_embed.errors import PhosphoError

Vector = list[float]


class _Bound:
    """A cluster-wide semaphore (on a distributed worker) or a process-wide one (elsewhere)."""

    def __init__(self, name: str, max_leases: int) -> None:
        self._distributed: object | None = None
        self._local: threading.BoundedSemaphore | None = None
        try:
            from distributed import Semaphore, get_worker

            get_worker()  # ValueError outside a distributed worker
            self._distributed = Semaphore(  # type: ignore[no-untyped-call]
                max_leases=max_leases, name=name
            )
        except ValueError:
            self._local = threading.BoundedSemaphore(max_leases)

    @property
    def cluster_wide(self) -> bool:
        """Whether the bound is the cluster's (a distributed semaphore)."""
        return self._distributed is not None

    @contextmanager
    def lease(self) -> Iterator[None]:
        """Hold one lease (blocks until one is free)."""
        if self._distributed is not None:
            self._distributed.acquire()  # type: ignore[attr-defined]
            try:
                yield
            finally:
                self._distributed.release()  # type: ignore[attr-defined]
        else:
            assert self._local is not None
            with self._local:
                yield


@dataclass
class _ProcessState:
    """What one worker process keeps for one `WorkerSettings`: the connection pool and the
    bound, built at the first partition and reused by every later one."""

    http: httpx.Client
    bound: _Bound


_STATES: dict[WorkerSettings, _ProcessState] = {}
_STATES_LOCK = threading.Lock()


def _state(settings: WorkerSettings) -> _ProcessState:
    with _STATES_LOCK:
        state = _STATES.get(settings)
        if state is None:
            size = settings.max_concurrency
            # Timeouts are set per attempt by the client; the pool is as wide as the bound.
            http = httpx.Client(
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size)
            )
            state = _ProcessState(http, _Bound(settings.bound_name, size))
            _STATES[settings] = state
        return state


@dataclass
class TextsResult:
    """The outcome of one partition's texts, aligned with them.

    Attributes:
        vectors: one vector per input text, ``None`` where it failed.
        errors: one message per input text (``"BadRequestError: ..."``), ``None`` where it
            has a vector.
        requested: distinct texts sent in this call (each at least one request).
        leases: leases of the cluster-wide bound taken (each costs the scheduler two
            messages).
        usage: requests billed, retries, tokens, counted by this partition's own client.
    """

    vectors: list[Vector | None]
    errors: list[str | None]
    requested: int = 0
    leases: int = 0
    usage: Usage = field(default_factory=Usage)


def describe(error: BaseException) -> str:
    """The ``error`` column's text for one failure: its class and message."""
    return f"{type(error).__name__}: {error}"


def embed_texts(
    texts: Sequence[object],
    settings: WorkerSettings,
    known: dict[str, Vector] | None = None,
) -> TextsResult:
    """Embed one partition's texts under the cluster-wide bound, in order.

    A null (``None``, NaN, ``pd.NA``), a non-string or a blank text gets its error without
    being sent; identical texts
    are sent once; a text that still fails after its retries gets ``None`` and its error.
    ``known`` vectors (from an earlier run) are reused, not sent.

    Raises:
        PhosphoError: an error every other text would get too (no key, 401/402/403, a wrong
            URL): the partition fails, as the whole call would on one client.
    """
    known = known or {}
    outcomes: dict[str, Vector | PhosphoError] = dict(known)
    errors: list[str | None] = [None] * len(texts)
    wanted: dict[str, None] = {}
    for index, text in enumerate(texts):
        if _is_null(text):
            errors[index] = f"ValueError: row {index} of its partition is null: no text to embed"
            continue
        try:
            checked = wire.check_text(text, f"row {index} of its partition")
        except (TypeError, ValueError) as exc:
            errors[index] = describe(exc)
            continue
        if checked not in outcomes:
            wanted[checked] = None
    result = TextsResult([None] * len(texts), errors)
    if wanted:
        _send(list(wanted), settings, outcomes, result)
    for index, text in enumerate(texts):
        if errors[index] is not None:
            continue
        outcome = outcomes[text]  # type: ignore[index]  # checked: a str
        if isinstance(outcome, PhosphoError):
            errors[index] = describe(outcome)
        else:
            result.vectors[index] = outcome
    return result


def _is_null(value: object) -> bool:
    # None, and the missing values of pandas columns: NaN (object columns) and pd.NA
    # (string columns), without importing pandas here.
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return type(value).__name__ == "NAType"


def _send(
    texts: list[str],
    settings: WorkerSettings,
    outcomes: dict[str, Vector | PhosphoError],
    result: TextsResult,
) -> None:
    state = _state(settings)
    queue = deque(texts)
    stop = threading.Event()
    fatal: list[PhosphoError] = []
    lock = threading.Lock()
    # A client per partition over the process's shared connection pool: building one costs
    # microseconds, and its usage is then exactly this partition's.
    client = PhosphoClient(settings.client_options(), http_client=state.http)

    def slot() -> None:
        while queue and not stop.is_set():
            lease: AbstractContextManager[None] = state.bound.lease()
            with lease:
                with lock:
                    result.leases += 1
                while not stop.is_set():
                    try:
                        text = queue.popleft()
                    except IndexError:
                        return
                    try:
                        outcome: Vector | PhosphoError = client.embed(text)
                    except PhosphoError as exc:
                        outcome = exc
                        if wire.is_fatal(exc):
                            with lock:
                                fatal.append(exc)
                            stop.set()
                    with lock:
                        outcomes[text] = outcome
                        result.requested += 1

    workers = min(len(texts), settings.max_concurrency)
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="phospho-embed-dask") as pool:
            for future in [pool.submit(slot) for _ in range(workers)]:
                future.result()
    finally:
        stop.set()
        result.usage = client.usage
        client.close()  # the shared pool stays open
    if fatal:
        raise fatal[0]
