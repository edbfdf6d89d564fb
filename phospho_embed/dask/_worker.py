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
import queue
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
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


#: Connections per httpx pool: httpcore spends CPU per request in proportion to a pool's
#: connections, so one pool of 128 collapses (one process at 128 in flight reached 11% of
#: the limit); pools of 16 keep that cost flat, as the async client's do.
POOL_SIZE = 16


@dataclass
class _ProcessState:
    """What one worker process keeps for one `WorkerSettings`: its connection pools and the
    bound, built at the first partition and reused by every later one.

    ``tickets`` holds one entry per request this process may have in flight (the bound,
    at most): a slot holding a lease takes a ticket, which names the pool it sends through,
    so no pool ever has more than `POOL_SIZE` requests at once."""

    pools: list[httpx.Client]
    bound: _Bound
    tickets: queue.SimpleQueue[int]


# Keyed by the worker too: a process can host several workers (``processes=False``) or
# outlive a cluster, and a semaphore is bound to its worker's event loop.
_STATES: dict[tuple[WorkerSettings, str | None], _ProcessState] = {}
_STATES_LOCK = threading.Lock()


def _worker_id() -> str | None:
    from distributed import get_worker

    try:
        return str(get_worker().id)
    except ValueError:  # not on a distributed worker
        return None


def _state(settings: WorkerSettings) -> _ProcessState:
    key = (settings, _worker_id())
    with _STATES_LOCK:
        state = _STATES.get(key)
        if state is None:
            size = settings.max_concurrency
            count = -(-size // POOL_SIZE)
            # Timeouts are set per attempt by the client.
            limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
            pools = [httpx.Client(limits=limits) for _ in range(count)]
            tickets: queue.SimpleQueue[int] = queue.SimpleQueue()
            for ticket in range(size):
                tickets.put(ticket // POOL_SIZE)
            state = _ProcessState(pools, _Bound(settings.bound_name, size), tickets)
            _STATES[key] = state
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
    waiting = deque(texts)
    stop = threading.Event()
    fatal: list[PhosphoError] = []
    lock = threading.Lock()
    options = settings.client_options()
    # A client per pool and partition over the process's shared pools: building one costs
    # microseconds, and its usage is then exactly this partition's.
    clients: dict[int, PhosphoClient] = {}

    def client_for(pool: int) -> PhosphoClient:
        with lock:
            if pool not in clients:
                clients[pool] = PhosphoClient(options, http_client=state.pools[pool])
            return clients[pool]

    def slot() -> None:
        while waiting and not stop.is_set():
            with state.bound.lease():
                # Never waits: this process holds at most max_concurrency leases.
                pool = state.tickets.get()
                try:
                    with lock:
                        result.leases += 1
                    _drain(client_for(pool))
                finally:
                    state.tickets.put(pool)

    def _drain(client: PhosphoClient) -> None:
        while not stop.is_set():
            try:
                text = waiting.popleft()
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
        with ThreadPoolExecutor(workers, thread_name_prefix="phospho-embed-dask") as executor:
            for future in [executor.submit(slot) for _ in range(workers)]:
                future.result()
    finally:
        stop.set()
        for client in clients.values():
            result.usage += client.usage
            client.close()  # the shared pools stay open
    if fatal:
        raise fatal[0]
