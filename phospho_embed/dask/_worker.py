"""What runs on a Dask worker: one sender per process, shared by every partition it runs,
under the cluster-wide bound.

The bound. A request is sent only by a thread holding a lease of one
`distributed.Semaphore` with ``max_leases=max_concurrency``, named the same on every worker:
at most ``max_concurrency`` requests are in flight across the cluster, whatever the number
of workers, threads and partitions. Off a distributed worker (Dask's local schedulers) the
bound is a semaphore of this process.

The sender. Each process keeps one queue of texts for all the partitions it is running,
and asks for a lease only while that queue has texts no lease-holder is sending: one
acquire at a time (a round trip to the scheduler, ~2.5 ms with the release), so an idle process
costs the scheduler nothing and a busy one never has more than one request for a lease
waiting. A lease-holder sends texts from the queue, one after the other, and gives the
lease back when the queue is empty or after `LEASE_TURN` seconds, whichever comes first:
the processes then take turns with the leases and share the load (one process alone
cannot keep many requests in flight: it is bound to one core by its interpreter lock).
So a process has at most ``max_concurrency`` sending threads, however many partitions it
runs at once, and a lease costs the scheduler two messages per turn, not per request.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from phospho_embed import wire
from phospho_embed._client import PhosphoClient, open_pools
from phospho_embed._core import Usage, pool_sizes
from phospho_embed.dask._settings import WorkerSettings
from phospho_embed.errors import PhosphoError

Vector = list[float]

#: Seconds a thread keeps a lease while there are texts to send, before it hands it back
#: for any process to take. A lease is dear: its acquire and release cost ~2.7 ms of CPU
#: between the worker and the scheduler (measured: 128 in flight at 0.2 s reached 45% of
#: the limit with turns of 0.2 s, 61% with 1 s and 66% with 5 s, on 2 cores).
LEASE_TURN = 5.0


class _Bound:
    """A cluster-wide semaphore (on a distributed worker) or a process-wide one (elsewhere)."""

    def __init__(self, name: str, max_leases: int) -> None:
        """Raises:
        ValueError: a semaphore of this name exists with another number of leases."""
        from distributed import Semaphore, get_worker

        self._distributed: object | None = None
        self._local: threading.BoundedSemaphore | None = None
        try:
            get_worker()
        except ValueError:  # not on a distributed worker
            self._local = threading.BoundedSemaphore(max_leases)
            return
        semaphore = Semaphore(max_leases=max_leases, name=name)  # type: ignore[no-untyped-call]
        try:
            # Here, in the partition's task, rather than at the first acquire in a sender
            # thread: a refusal then fails the partition with its reason.
            semaphore.register()  # type: ignore[no-untyped-call]
        except ValueError as exc:
            raise ValueError(
                f"the cluster-wide bound {name!r} exists with another max_concurrency "
                f"({exc}): calls sharing a bound_name must use the same max_concurrency; "
                "pass another bound_name"
            ) from None
        self._distributed = semaphore

    def acquire(self) -> None:
        """Take one lease (blocks until one is free)."""
        if self._distributed is not None:
            self._distributed.acquire()  # type: ignore[attr-defined]
        else:
            assert self._local is not None
            self._local.acquire()

    def release(self) -> None:
        """Give one lease back."""
        if self._distributed is not None:
            self._distributed.release()  # type: ignore[attr-defined]
        else:
            assert self._local is not None
            self._local.release()


@dataclass
class TextsResult:
    """The outcome of one partition's texts, aligned with them.

    Attributes:
        vectors: one vector per input text, ``None`` where it failed.
        errors: one message per input text (``"BadRequestError: ..."``), ``None`` where it
            has a vector.
        requested: distinct texts sent in this call (each at least one request).
        leases: leases of the cluster-wide bound this partition's texts opened (each costs
            the scheduler two messages; a lease serves whichever partitions' texts are
            queued, and counts for the partition of its first text).
        usage: requests billed, retries, tokens, counted by this partition's own clients.
    """

    vectors: list[Vector | None]
    errors: list[str | None]
    requested: int = 0
    leases: int = 0
    usage: Usage = field(default_factory=Usage)


class _Partition:
    """One partition's texts as the sender sees them: where outcomes go, and when it is done.

    Its clients (one per connection pool, over the process's shared pools) count this
    partition's usage exactly; building one costs microseconds.
    """

    def __init__(
        self,
        sender: _Sender,
        texts: list[str],
        result: TextsResult,
        on_vector: Callable[[str, Vector], None] | None,
    ) -> None:
        self.outcomes: dict[str, Vector | PhosphoError] = {}
        self.result = result
        self.fatal: PhosphoError | None = None
        self.bug: BaseException | None = None
        self.done = threading.Event()
        self._sender = sender
        self._pending = len(texts)
        self._on_vector = on_vector
        self._clients: dict[int, PhosphoClient] = {}
        self._lock = threading.Lock()

    @property
    def stopped(self) -> bool:
        """Whether the texts still queued are to be dropped (an error every one would get)."""
        return self.fatal is not None or self.bug is not None

    def fail(self, error: BaseException) -> None:
        """One queued text will not be sent: ``error`` stops the partition (raised by its task)."""
        self.bug = self.bug or error
        self._finish_one()

    def send(self, text: str, pool: int) -> None:
        """Request ``text`` through ``pool`` (unless the partition stopped) and record it."""
        try:
            if not self.stopped:
                try:
                    outcome: Vector | PhosphoError = self._client(pool).embed(text)
                except PhosphoError as exc:
                    outcome = exc
                    if wire.is_fatal(exc):
                        self.fatal = self.fatal or exc
                with self._lock:
                    self.outcomes[text] = outcome
                    self.result.requested += 1
                    if self._on_vector is not None and not isinstance(outcome, PhosphoError):
                        self._on_vector(text, outcome)
        except BaseException as exc:  # a bug: raised by the partition's task, not lost here
            self.bug = self.bug or exc
        finally:
            self._finish_one()

    def _finish_one(self) -> None:
        with self._lock:
            self._pending -= 1
            if self._pending == 0:
                self.done.set()

    def close(self) -> None:
        """Add the clients' usage to the result (the shared pools stay open)."""
        for client in self._clients.values():
            self.result.usage += client.usage
            client.close()

    def _client(self, pool: int) -> PhosphoClient:
        with self._lock:
            client = self._clients.get(pool)
            if client is None:
                client = PhosphoClient(self._sender.options, http_client=self._sender.pools[pool])
                self._clients[pool] = client
            return client


class _Sender:
    """One process's sender for one `WorkerSettings`: its connection pools, its queue of
    texts, its lease-holding threads and the bound, built at the first partition and used
    by every later one (see the module's docstring)."""

    def __init__(self, settings: WorkerSettings) -> None:
        size = settings.max_concurrency
        self.options = settings.client_options()
        self.bound = _Bound(settings.bound_name, size)
        self.pools = open_pools(self.options)
        # One ticket per request this process may have in flight, naming the pool it goes
        # through, so that no pool has more connections than it was sized for.
        self._tickets: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index, connections in enumerate(pool_sizes(size)):
            for _ in range(connections):
                self._tickets.put(index)
        self._size = size
        self._queue: deque[tuple[str, _Partition]] = deque()
        self._changed = threading.Condition()
        self._holders = 0
        self._acquiring = False
        self._threads = ThreadPoolExecutor(size, thread_name_prefix="phospho-embed-dask")

    @property
    def idle(self) -> bool:
        """Whether nothing is queued, sent or waiting for a lease."""
        with self._changed:
            return not self._queue and not self._holders and not self._acquiring

    def close(self) -> None:
        """Close the connection pools and let the threads end (call only when `idle`)."""
        self._threads.shutdown(wait=False)
        for http in self.pools:
            http.close()

    def submit(self, partition: _Partition, texts: list[str]) -> None:
        """Queue ``texts``; ``partition.done`` is set once each has its outcome."""
        with self._changed:
            self._queue.extend((text, partition) for text in texts)
            self._want_lease()

    def _want_lease(self) -> None:
        # Called with the condition held: one acquire at a time, and only while some
        # queued text has no lease-holder to send it.
        if self._acquiring or not self._queue or self._holders >= self._size:
            return
        self._acquiring = True
        self._threads.submit(self._acquire)

    def _acquire(self) -> None:
        try:
            self.bound.acquire()
        except BaseException as exc:  # the scheduler lost, say: no queued text can be sent
            with self._changed:
                self._acquiring = False
                queued, self._queue = self._queue, deque()
            for _, partition in queued:
                partition.fail(exc)
            return
        with self._changed:
            self._acquiring = False
            if not self._queue:  # sent meanwhile by the holders already there
                self.bound.release()
                return
            self._holders += 1
            self._queue[0][1].result.leases += 1  # under the condition, like every count
            self._want_lease()
        self._hold()

    def _hold(self) -> None:
        """Send queued texts with the lease just taken, until the queue is empty or the
        turn is over; then give the lease back."""
        pool = self._tickets.get()  # never waits: at most `_size` holders
        turn_ends = time.monotonic() + LEASE_TURN
        try:
            while time.monotonic() < turn_ends:
                with self._changed:
                    if not self._queue:
                        break
                    text, partition = self._queue.popleft()
                partition.send(text, pool)
        finally:
            self._tickets.put(pool)
            self.bound.release()
            with self._changed:
                self._holders -= 1
                self._want_lease()


#: Senders a process keeps; beyond, the least recently used idle ones are closed (a
#: long-lived worker serving calls with many different settings would otherwise keep
#: every one's connections and threads).
MAX_SENDERS = 4

# Keyed by the worker too: a process can host several workers (``processes=False``) or
# outlive a cluster, and a semaphore is bound to its worker's event loop. In order of use.
_SENDERS: OrderedDict[tuple[WorkerSettings, str | None], _Sender] = OrderedDict()
_SENDERS_LOCK = threading.Lock()


def _worker_id() -> str | None:
    from distributed import get_worker

    try:
        return str(get_worker().id)
    except ValueError:  # not on a distributed worker
        return None


def _sender(settings: WorkerSettings) -> _Sender:
    key = (settings, _worker_id())
    with _SENDERS_LOCK:
        sender = _SENDERS.get(key)
        if sender is None:
            sender = _SENDERS[key] = _Sender(settings)
        _SENDERS.move_to_end(key)
        excess = len(_SENDERS) - MAX_SENDERS
        for old_key, old in list(_SENDERS.items())[:-1]:
            if excess <= 0:
                break
            if old.idle:
                del _SENDERS[old_key]
                old.close()
                excess -= 1
        return sender


def describe(error: BaseException) -> str:
    """The ``error`` column's text for one failure: its class and message."""
    return f"{type(error).__name__}: {error}"


def embed_texts(
    texts: Sequence[object],
    settings: WorkerSettings,
    known: dict[str, Vector] | None = None,
    on_vector: Callable[[str, Vector], None] | None = None,
    labels: Sequence[str] | None = None,
) -> TextsResult:
    """Embed one partition's texts under the cluster-wide bound, in order.

    A null (``None``, NaN, ``pd.NA``), a non-string or a blank text gets its error without
    being sent; identical texts are sent once; a text that still fails after its retries
    gets ``None`` and its error. ``known`` vectors (from an earlier run) are reused, not
    sent. ``on_vector(text, vector)`` is called as each vector arrives, one call at a time.
    ``labels`` name each text in its error (``"index 42"``; default: its row in the
    partition).

    Raises:
        PhosphoError: an error every other text would get too (no key, 401/402/403, a wrong
            URL): the partition fails, as the whole call would on one client.
    """
    known = known or {}
    errors: list[str | None] = [None] * len(texts)
    wanted: dict[str, None] = {}
    for index, text in enumerate(texts):
        where = labels[index] if labels is not None else f"row {index} of its partition"
        if _is_null(text):
            errors[index] = f"ValueError: {where} is null: no text to embed"
            continue
        try:
            checked = wire.check_text(text, where)
        except (TypeError, ValueError) as exc:
            errors[index] = describe(exc)
            continue
        if checked not in known:
            wanted[checked] = None
    result = TextsResult([None] * len(texts), errors)
    outcomes: dict[str, Vector | PhosphoError] = dict(known)
    if wanted:
        outcomes.update(_send(list(wanted), settings, result, on_vector))
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
    result: TextsResult,
    on_vector: Callable[[str, Vector], None] | None,
) -> dict[str, Vector | PhosphoError]:
    sender = _sender(settings)
    partition = _Partition(sender, texts, result, on_vector)
    sender.submit(partition, texts)
    try:
        partition.done.wait()
    finally:
        partition.close()
    if partition.bug is not None:
        raise partition.bug
    if partition.fatal is not None:
        raise partition.fatal
    return partition.outcomes
