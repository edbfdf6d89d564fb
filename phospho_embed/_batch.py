"""What a call over many texts delivered, and the bookkeeping of one ``embed_many`` call.

`BatchResults` is the one definition of a partial result: the vectors in input order, or a
`BatchEmbeddingError` that keeps every vector that arrived and says what stopped the call.
``embed_many`` builds its result with it, and so does any caller that sends one call in
parts (LlamaIndex's batches, the command line's chunks).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypedDict

from phospho_embed import wire
from phospho_embed.errors import BatchEmbeddingError, DeadlineExceededError, PhosphoError

#: Called with the number of input texts that just finished (duplicates included).
ProgressCallback = Callable[[int], None]
#: Called with each input index and its vector as soon as the vector arrives.
ResultCallback = Callable[[int, list[float]], None]

Vector = list[float]


class BatchOptions(TypedDict, total=False):
    """The keywords of ``embed_many`` besides its texts, the same for both clients (see
    `PhosphoClient.embed_many`)."""

    progress: ProgressCallback | None
    on_embedding: ResultCallback | None
    deadline: float | None
    resume_from: BatchEmbeddingError | Sequence[Vector | None] | None


class BatchResults:
    """The outcomes of one call over ``texts``, gathered text by text or part by part.

    ```python
    results = BatchResults(texts)
    for part in parts:                      # e.g. chunks of texts, sent one after the other
        if results.stopped_by:              # a refused key: the other parts would fail too
            break
        try:
            results.add(part, client.embed_many(part))
        except PhosphoError as error:
            results.add(part, error)
    vectors = results.result()              # or the BatchEmbeddingError embed_many raises
    ```

    A text repeated in ``texts`` needs one outcome; its repeats get a copy of the vector.
    Not thread-safe: callers that record from several threads hold a lock.
    """

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = texts
        self.vectors: dict[str, Vector] = {}
        self.errors: dict[str, BaseException] = {}
        #: The error that stopped the call (no key, 401/402/403), if one did.
        self.stopped_by: PhosphoError | None = None

    def record(self, text: str, outcome: Vector | PhosphoError) -> None:
        """Keep one text's vector or error; an error that every text would get stops the call."""
        if isinstance(outcome, PhosphoError):
            self.errors[text] = outcome
            if wire.is_fatal(outcome) and self.stopped_by is None:
                self.stopped_by = outcome
        else:
            self.vectors[text] = outcome

    def add(self, part: Sequence[str], outcome: Sequence[Vector] | PhosphoError) -> None:
        """Keep what a call over ``part`` returned or raised.

        A `BatchEmbeddingError` contributes its vectors and per-text errors (and what stopped
        it); any other error is every text's error.
        """
        if isinstance(outcome, BatchEmbeddingError):
            for index, text in enumerate(part):
                vector = outcome.embeddings[index]
                if vector is not None:
                    self.vectors[text] = vector
                elif text not in self.vectors:
                    self.errors[text] = outcome.errors[index]
            if outcome.stopped_by is not None and self.stopped_by is None:
                self.stopped_by = outcome.stopped_by
        elif isinstance(outcome, PhosphoError):
            for text in part:
                self.record(text, outcome)
        else:
            self.vectors.update(zip(part, outcome, strict=True))

    def result(self, unsent: Callable[[], PhosphoError] | None = None) -> list[Vector]:
        """The vectors in input order.

        Args:
            unsent: the error of a text with no outcome at all (default: the error that
                stopped the call, else "not sent").

        Raises:
            PhosphoError: the error that stopped the call, when no vector arrived at all.
            BatchEmbeddingError: some texts have no vector; it holds all the others.
        """
        embeddings: list[Vector | None] = []
        errors: dict[int, BaseException] = {}
        seen: set[str] = set()
        for index, text in enumerate(self.texts):
            vector = self.vectors.get(text)
            if vector is None:
                error = self.errors.get(text)
                errors[index] = error or (unsent or self._unsent)()
                embeddings.append(None)
            else:
                # Repeats get a copy: callers may mutate vectors in place.
                embeddings.append(list(vector) if text in seen else vector)
                seen.add(text)
        if not errors:
            return embeddings  # type: ignore[return-value]  # no None left
        if self.stopped_by is not None and not self.vectors:
            raise self.stopped_by
        digest = texts_digest(self.texts)
        raise BatchEmbeddingError(embeddings, errors, self.stopped_by, digest) from self.stopped_by

    def _unsent(self) -> PhosphoError:
        return self.stopped_by or PhosphoError("not sent: the call stopped early")


class Batch:
    """The bookkeeping of one ``embed_many`` call, shared by its workers (threads or tasks).

    It checks every input up front (nothing is sent if one is bad), takes the vectors a
    previous attempt already got (``resume_from``), hands out each remaining distinct text
    once, and gathers the outcomes in a `BatchResults`.
    """

    def __init__(
        self,
        texts: Iterable[object],
        *,
        progress: ProgressCallback | None = None,
        on_embedding: ResultCallback | None = None,
        deadline: float | None = None,
        resume_from: BatchEmbeddingError | Sequence[Vector | None] | None = None,
        dimension: int | None = None,
    ) -> None:
        checked = wire.check_texts(texts)
        self._positions: dict[str, list[int]] = {}
        for index, text in enumerate(checked):
            self._positions.setdefault(text, []).append(index)
        self._results = BatchResults(checked)
        self._results.vectors.update(_resumed(checked, self._positions, resume_from, dimension))
        pending = [text for text in self._positions if text not in self._results.vectors]
        self.distinct = len(pending)
        """How many requests the batch needs (one per distinct text not already resumed)."""
        self._pending = iter(pending)
        self._progress = progress
        self._on_embedding = on_embedding
        self._lock = threading.Lock()
        self._deadline = _check_deadline(deadline)
        self._ends_at = None if deadline is None else time.monotonic() + deadline
        #: Set when the call must end: a fatal error, an interrupt, a bug in a callback.
        self.stop = threading.Event()

    def remaining(self) -> float | None:
        """Seconds left before the call's deadline (``None``: no deadline)."""
        return None if self._ends_at is None else self._ends_at - time.monotonic()

    def deadline_error(self, during_request: bool) -> DeadlineExceededError:
        """The error of a text the deadline cut short."""
        when = "during its request" if during_request else "before it was sent"
        return DeadlineExceededError(f"the call's deadline of {self._deadline:g}s passed {when}")

    def next_text(self) -> str | None:
        """The next text to request, or ``None`` when there is none, the call stopped, or
        its deadline passed."""
        with self._lock:
            remaining = self.remaining()
            if self.stop.is_set() or (remaining is not None and remaining <= 0):
                return None
            return next(self._pending, None)

    def record(self, text: str, outcome: Vector | PhosphoError) -> None:
        """Keep a text's vector or error; a fatal error stops the call for every worker.

        The callbacks run under the batch's lock, so they are never called concurrently.
        """
        with self._lock:
            self._results.record(text, outcome)
            if self._results.stopped_by is not None:
                self.stop.set()
            if self._on_embedding is not None and not isinstance(outcome, PhosphoError):
                for index in self._positions[text]:
                    self._on_embedding(index, outcome)
            if self._progress is not None:
                self._progress(len(self._positions[text]))

    def abort(self, error: PhosphoError) -> None:
        """End the call because of ``error`` (e.g. the client was closed): the texts not
        done get it, the vectors that arrived are kept."""
        with self._lock:
            if self._results.stopped_by is None:
                self._results.stopped_by = error
            self.stop.set()

    def result(self) -> list[Vector]:
        """The vectors in input order, or the error that explains what is missing (see
        `BatchResults.result`)."""
        return self._results.result(self._unsent_error)

    def _unsent_error(self) -> PhosphoError:
        """Why a text has no outcome of its own: the call stopped before sending it."""
        if self._results.stopped_by is not None:
            return self._results.stopped_by
        if self._ends_at is not None and time.monotonic() >= self._ends_at:
            return self.deadline_error(during_request=False)
        return PhosphoError("not sent: the call stopped early")


def texts_digest(texts: Sequence[str]) -> str:
    """A SHA-256 of ``texts`` in order: what ties a `BatchEmbeddingError` to its call."""
    digest = hashlib.sha256()
    for text in texts:
        encoded = text.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "big") + encoded)  # length-prefixed: unambiguous
    return digest.hexdigest()


def _check_deadline(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)):
        raise TypeError(f"deadline must be a number of seconds, got {type(deadline).__name__}")
    if not deadline > 0:
        raise ValueError(f"deadline must be a positive number of seconds, got {deadline!r}")
    return float(deadline)


def _resumed(
    texts: Sequence[str],
    positions: dict[str, list[int]],
    previous: BatchEmbeddingError | Sequence[Vector | None] | None,
    dimension: int | None,
) -> dict[str, Vector]:
    """The vectors an earlier attempt at the same texts already got, by text (as floats).

    Raises:
        ValueError: ``previous`` comes from a call on other texts, or holds an entry that is
            not a vector (a string, NaN, ``[]``, a length unlike the others' or unlike the
            ``dimension`` of the client's vectors).
    """
    if previous is None:
        return {}
    if isinstance(previous, BatchEmbeddingError):
        embeddings = previous.embeddings
        if previous.texts_digest is not None and previous.texts_digest != texts_digest(texts):
            raise ValueError(
                "resume_from is the error of a call on other texts: pass the same texts, in "
                "the same order, as the call that raised it"
            )
    else:
        embeddings = list(previous)
    if len(embeddings) != len(texts):
        raise ValueError(
            f"resume_from holds {len(embeddings)} results for {len(texts)} texts: "
            "pass the same texts as the call that raised it"
        )
    checked: list[Vector | None] = []
    for index, entry in enumerate(embeddings):
        if entry is None:
            checked.append(None)
            continue
        if not _is_vector(entry) or dimension not in (None, len(entry)):
            what = f"{dimension} numbers, as this client's" if dimension else "one length"
            raise ValueError(
                f"resume_from[{index}] is not a vector like the others (a non-empty list of "
                f"finite numbers of {what}): it cannot be returned as an embedding"
            )
        dimension = len(entry)
        checked.append([float(x) for x in entry])
    vectors: dict[str, Vector] = {}
    for text, indices in positions.items():
        vector = next((checked[i] for i in indices if checked[i] is not None), None)
        if vector is not None:
            vectors[text] = vector
    return vectors


def _is_vector(entry: object) -> bool:
    return (
        isinstance(entry, list)
        and len(entry) > 0
        and all(type(x) in (float, int) and math.isfinite(x) for x in entry)  # no bool
    )
