"""The entry points: `embed_frame`, `embed_bag` and `embed_to_parquet`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import pickle
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import dask.bag as db
import dask.dataframe as dd
import orjson
import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from dask.base import compute
from dask.delayed import delayed

from phospho_embed._core import Usage
from phospho_embed.dask._settings import WorkerSettings
from phospho_embed.dask._worker import TextsResult, Vector, embed_texts

__all__ = ["EmbedSummary", "PartitionReport", "embed_bag", "embed_frame", "embed_to_parquet"]

#: The key of each output file's schema metadata holding what a re-run checks.
METADATA_KEY = b"phospho_embed"
_PART = re.compile(r"^part\.(\d+)\.parquet$")
_TEMPORARY = re.compile(r"^\.part\.\d+\.parquet\.[0-9a-f]+\.tmp$")


# -- embed_frame and embed_bag -------------------------------------------------------------


def embed_frame(
    frame: dd.DataFrame,
    column: str = "text",
    *,
    max_concurrency: int = 16,
    embedding_column: str = "embedding",
    error_column: str = "error",
    bound_name: str | None = None,
    **settings: Any,
) -> dd.DataFrame:
    """``frame`` with an embedding for each row's ``column`` (lazy: nothing is sent yet).

    Adds two object columns: ``embedding_column``, the vector (a list of ``float``, as the
    API sent it) or ``None`` where the text failed, and ``error_column``, ``None`` or why
    the text failed (``"BadRequestError: ..."``; a null or empty text is an error too, and
    is not sent). Rows keep their order and index; identical texts within a partition are
    requested once.

    Args:
        frame: a Dask DataFrame.
        column: the column holding the texts.
        max_concurrency: requests in flight across the whole cluster (a
            ``distributed.Semaphore``), whatever the number of workers and threads. With
            Dask's local schedulers it bounds this process.
        embedding_column: the name of the new column of vectors (``None`` where a text
            failed).
        error_column: the name of the new column saying why a text failed (``None`` where
            it did not).
        bound_name: the cluster-wide semaphore's name; calls sharing a name share one bound
            (default: ``"phospho-embed/<max_concurrency>"``).
        **settings: any other `ClientOptions` field (``api_key``, ``base_url``,
            ``max_retries``, ``timeout``...). Without ``api_key``, each worker reads
            ``PHOSPHO_API_KEY`` from its own environment; with it, the key travels in a
            wrapper that no repr, log line or dashboard shows.

    Raises:
        TypeError / ValueError: a bad setting, a missing ``column``, or new columns that
            already exist; raised here, before anything is scheduled.
        PhosphoError: at compute time, an error every text would get (no key on a worker,
            401/402/403, a wrong URL) fails the partition that met it.
    """
    worker_settings = WorkerSettings.build(max_concurrency, bound_name, settings)
    _check_columns(frame, column, embedding_column, error_column)
    meta = frame._meta.assign(
        **{
            embedding_column: pd.Series(dtype=object),
            error_column: pd.Series(dtype=object),
        }
    )
    embedded = frame.map_partitions(  # type: ignore[no-untyped-call]
        _frame_partition,
        worker_settings,
        column,
        embedding_column,
        error_column,
        meta=meta,
    )
    return cast(dd.DataFrame, embedded)


def embed_bag(
    bag: db.Bag,
    *,
    max_concurrency: int = 16,
    bound_name: str | None = None,
    **settings: Any,
) -> db.Bag:
    """A bag of ``{"text", "embedding", "error"}`` records, one per text of ``bag``, in order
    (lazy: nothing is sent yet).

    ``embedding`` is the vector (a list of ``float``) or ``None``; ``error`` is ``None`` or
    why the text failed. ``bag.to_dataframe()`` or ``embed_frame`` take it from there.
    The other arguments are `embed_frame`'s.

    Raises:
        TypeError / ValueError: a bad setting, before anything is scheduled.
    """
    if not isinstance(bag, db.Bag):
        raise TypeError(f"bag must be a dask.bag.Bag, got {type(bag).__name__}")
    worker_settings = WorkerSettings.build(max_concurrency, bound_name, settings)
    embedded = bag.map_partitions(_bag_partition, worker_settings)  # type: ignore[no-untyped-call]
    return cast(db.Bag, embedded)


def _check_columns(frame: dd.DataFrame, column: str, *new: str) -> None:
    if not isinstance(frame, dd.DataFrame):
        raise TypeError(f"frame must be a dask.dataframe.DataFrame, got {type(frame).__name__}")
    if column not in frame.columns:
        raise ValueError(f"the frame has no column {column!r}; its columns: {list(frame.columns)}")
    if new[0] == new[1]:
        raise ValueError("embedding_column and error_column must differ")
    for name in new:
        if name in frame.columns:
            raise ValueError(f"the frame already has a column {name!r}: pick another name")


def _frame_partition(
    part: pd.DataFrame,
    settings: WorkerSettings,
    column: str,
    embedding_column: str,
    error_column: str,
) -> pd.DataFrame:
    result = embed_texts(part[column].tolist(), settings, labels=_labels(part))
    return _with_results(part, result, embedding_column, error_column)


def _labels(part: pd.DataFrame) -> list[str]:
    """How an error names each row: by its index label, which the user can look up."""
    return [f"index {label!r}" for label in part.index]


def _with_results(
    part: pd.DataFrame, result: TextsResult, embedding_column: str, error_column: str
) -> pd.DataFrame:
    return part.assign(
        **{
            embedding_column: pd.Series(result.vectors, index=part.index, dtype=object),
            error_column: pd.Series(result.errors, index=part.index, dtype=object),
        }
    )


def _bag_partition(texts: Sequence[object], settings: WorkerSettings) -> list[dict[str, Any]]:
    texts = list(texts)
    result = embed_texts(texts, settings)
    return [
        {"text": text, "embedding": vector, "error": error}
        for text, vector, error in zip(texts, result.vectors, result.errors, strict=True)
    ]


# -- embed_to_parquet ----------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionReport:
    """What one partition of `embed_to_parquet` did.

    Attributes:
        number: the partition's position (its file is ``part.<number>.parquet``).
        rows: rows in the partition.
        embedded: rows with a vector in the file.
        failed: rows with a null vector and an error.
        requested: distinct texts sent by this run (0 for a partition skipped).
        skipped: the file was already complete for this input: nothing was sent.
        leases: leases of the cluster-wide bound taken.
        usage: requests billed, retries and tokens of this run on this partition.
    """

    number: int
    rows: int
    embedded: int
    failed: int
    requested: int
    skipped: bool
    leases: int = 0
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class EmbedSummary:
    """What `embed_to_parquet` did, summed over the partitions (and so over the workers).

    Attributes:
        path: the output folder.
        partitions: one `PartitionReport` per partition, in order.
    """

    path: Path
    partitions: tuple[PartitionReport, ...]

    @property
    def rows(self) -> int:
        """Rows in the output."""
        return sum(part.rows for part in self.partitions)

    @property
    def embedded(self) -> int:
        """Rows with a vector."""
        return sum(part.embedded for part in self.partitions)

    @property
    def failed(self) -> int:
        """Rows with a null vector and an error; a re-run sends these again."""
        return sum(part.failed for part in self.partitions)

    @property
    def requested(self) -> int:
        """Distinct texts this run sent."""
        return sum(part.requested for part in self.partitions)

    @property
    def written(self) -> int:
        """Partition files written by this run."""
        return sum(not part.skipped for part in self.partitions)

    @property
    def skipped(self) -> int:
        """Partitions already complete, left as they were."""
        return sum(part.skipped for part in self.partitions)

    @property
    def leases(self) -> int:
        """Leases of the cluster-wide bound taken (two scheduler messages each)."""
        return sum(part.leases for part in self.partitions)

    @property
    def usage(self) -> Usage:
        """Requests billed, retries and tokens, summed across partitions and workers."""
        total = Usage()
        for part in self.partitions:
            total += part.usage
        return total

    def __str__(self) -> str:
        usage = self.usage
        return (
            f"{self.rows} rows in {len(self.partitions)} partitions ({self.written} written, "
            f"{self.skipped} already complete): {self.embedded} embedded, {self.failed} failed; "
            f"{self.requested} texts sent, {usage.requests} requests billed, "
            f"{usage.retries} retries, {usage.total_tokens} tokens"
        )


def embed_to_parquet(
    frame: dd.DataFrame,
    path: str | os.PathLike[str],
    column: str = "text",
    *,
    max_concurrency: int = 16,
    embedding_column: str = "embedding",
    error_column: str = "error",
    bound_name: str | None = None,
    **settings: Any,
) -> EmbedSummary:
    """Embed ``frame[column]`` into a folder of parquet files, one per partition; resumable.

    Each partition becomes ``part.<n>.parquet`` (``n`` its position, 5 digits) holding its
    rows, its index, ``embedding_column`` (``list<float32>``, null where a text failed) and
    ``error_column``. A file is written under a temporary name starting with a dot (which
    parquet readers skip) and renamed once complete, so a killed worker leaves no partial
    file: Dask runs its partition again elsewhere and the other files stay. Each vector is
    journaled as it arrives (``.part.<n>.parquet.journal``), so that attempt sends only
    the texts the dead worker had no vector for. Run it again
    on the same folder and input: complete partitions are skipped without a request, and a
    partition with failures sends only its failed texts. ``dd.read_parquet(path)`` reads
    the result in order.

    Runs now, on Dask's current scheduler (a ``distributed.Client`` if one is active). The
    arguments are `embed_frame`'s; ``path`` is a local or shared (mounted) folder that every
    worker can write to, created if missing. One run at a time per folder.

    Returns:
        The `EmbedSummary`: rows embedded and failed, texts sent, usage summed across
        workers.

    Raises:
        TypeError / ValueError: a bad setting or column, or a folder holding files of a
            different partitioning (``part.<n>`` beyond this frame's partitions).
        PhosphoError: an error every text would get (no key on a worker, 401/402/403, a
            wrong URL); the partitions written before it are kept.
    """
    worker_settings = WorkerSettings.build(max_concurrency, bound_name, settings)
    _check_columns(frame, column, embedding_column, error_column)
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    count = frame.npartitions
    ours = {f"part.{number:05d}.parquet" for number in range(count)}
    strays = sorted(
        entry.name
        for entry in folder.iterdir()
        if entry.name not in ours and not entry.name.startswith(".")
    )
    if strays:
        raise ValueError(
            f"{folder} holds {strays[0]}, which is not the output of this frame's "
            f"{count} partitions (part.00000.parquet to part.{count - 1:05d}.parquet): "
            "readers of the folder would mix it in; use a new or empty folder"
        )
    names = (column, embedding_column, error_column)
    parts = frame.to_delayed()  # type: ignore[no-untyped-call]
    # A run's id, written into each file and journal: a partition written by an attempt
    # whose worker died before its report arrived is reported from its file, not skipped.
    run = uuid.uuid4().hex
    tasks = [
        delayed(_parquet_partition, pure=False)(
            part, number, str(folder), worker_settings, names, run
        )
        for number, part in enumerate(parts)
    ]
    reports = cast(tuple[PartitionReport, ...], compute(*tasks))  # type: ignore[no-untyped-call]
    # Left by a worker killed while writing (the retried task wrote its own); the run is
    # over, so no one is writing them any more.
    for entry in folder.iterdir():
        if _TEMPORARY.match(entry.name):
            entry.unlink(missing_ok=True)
    return EmbedSummary(folder, tuple(reports))


def partition_digest(part: pd.DataFrame, names: tuple[str, str, str], model: str) -> str:
    """What a partition's output file depends on: every column's values and name, the
    index, the output columns' names and the model."""
    digest = hashlib.sha256(model.encode())
    described = [list(map(str, part.columns)), [str(dtype) for dtype in part.dtypes], names]
    digest.update(json.dumps(described).encode())
    digest.update(len(part).to_bytes(8, "little"))
    digest.update(pd.util.hash_pandas_object(part.index).to_numpy().tobytes())
    for position in range(part.shape[1]):
        values = part.iloc[:, position]
        try:
            digest.update(pd.util.hash_pandas_object(values, index=False).to_numpy().tobytes())
        except TypeError:  # lists, dicts, arrays: by their pickled bytes, every digit kept
            for value in values:
                blob = pickle.dumps(value, protocol=5)
                digest.update(len(blob).to_bytes(8, "little") + blob)
    return digest.hexdigest()


def _parquet_partition(
    part: pd.DataFrame,
    number: int,
    folder: str,
    settings: WorkerSettings,
    names: tuple[str, str, str],
    run: str,
) -> PartitionReport:
    column, embedding_column, error_column = names
    target = Path(folder) / f"part.{number:05d}.parquet"
    digest = partition_digest(part, names, settings.model)
    previous = _read_metadata(target)
    if previous is not None and previous.get("digest") == digest and previous.get("failed") == 0:
        if previous.get("run") == run:  # this run's, its report lost with its worker
            return _report_from(previous, number)
        return PartitionReport(number, len(part), len(part), 0, 0, skipped=True)
    # Vectors depend on the text and the model only: whatever else changed, those already
    # paid for (in the old file, or journaled by an attempt that died) are reused.
    known: dict[str, Vector] = {}
    if previous is not None and previous.get("model") == settings.model:
        known = _known_vectors(target, previous)
    _check_writable(part, number)
    journal = Journal(target, settings.model, run)
    journaled, carried = journal.read()
    known.update(journaled)
    with journal.appending() as record:
        result = embed_texts(part[column].tolist(), settings, known, record, _labels(part))
    # Sent and billed by this run's attempts that died (their retries and tokens are lost).
    result.requested += carried
    result.usage += Usage(requests=carried)
    out = _with_results(part, result, embedding_column, error_column)
    failed = sum(vector is None for vector in result.vectors)
    table = pa.Table.from_pandas(out, preserve_index=True)
    # Typed even when all null: a file whose column pyarrow inferred as null cannot be
    # read with the others (no cast from null's schema to string's).
    typed = [(embedding_column, pa.list_(pa.float32())), (error_column, pa.string())]
    if pa.types.is_null(table.column(column).type):  # a partition of null texts only
        typed.append((column, pa.string()))
    for name, kind in typed:
        position = table.schema.get_field_index(name)
        table = table.set_column(position, name, table.column(name).cast(kind))
    report = PartitionReport(
        number,
        len(part),
        len(part) - failed,
        failed,
        result.requested,
        skipped=False,
        leases=result.leases,
        usage=result.usage,
    )
    ours = {
        "digest": digest,
        "model": settings.model,
        "run": run,
        "columns": {"text": column, "embedding": embedding_column},
        "rows": len(part),
        "failed": failed,
        "requested": report.requested,
        "leases": report.leases,
        "usage": dataclasses.asdict(report.usage),
    }
    metadata = {**(table.schema.metadata or {}), METADATA_KEY: json.dumps(ours).encode()}
    _write_atomically(table.replace_schema_metadata(metadata), target)
    journal.remove()  # its vectors are in the file now
    return report


def _check_writable(part: pd.DataFrame, number: int) -> None:
    """Refuse, before any request, a partition that parquet cannot store (a column of mixed
    types, with Dask's string conversion off): its vectors would be paid for, then lost."""
    try:
        pa.Table.from_pandas(part, preserve_index=True)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise ValueError(
            f"partition {number} cannot be written to parquet ({exc}); nothing was sent: "
            "give each column one type, e.g. ddf[column].astype(str)"
        ) from None


def _report_from(metadata: dict[str, Any], number: int) -> PartitionReport:
    """The report of a partition as its file records it."""
    try:
        rows, failed = int(metadata["rows"]), int(metadata["failed"])
        return PartitionReport(
            number,
            rows,
            rows - failed,
            failed,
            int(metadata["requested"]),
            skipped=False,
            leases=int(metadata["leases"]),
            usage=Usage(**metadata["usage"]),
        )
    except (KeyError, TypeError, ValueError):  # damaged: the rows are there, the report not
        rows = int(metadata.get("rows", 0))
        return PartitionReport(number, rows, rows, 0, 0, skipped=True)


class Journal:
    """The vectors of one partition as they arrive, so that a worker killed mid-partition
    loses none: the partition's next attempt (Dask's, or a re-run's) reads them back
    instead of paying for them again.

    A hidden file beside the partition's (``.part.<n>.parquet.journal``): a header line
    naming the model, then for each attempt a line naming its run followed by one JSON
    line ``[text, vector]`` per vector, each written (to the operating system) as it
    arrives; removed once the partition's file is written. A journal of another model is
    ignored; a torn line, or a vector of another length than the first, is skipped.
    """

    def __init__(self, target: Path, model: str, run: str) -> None:
        self.path = target.with_name(f".{target.name}.journal")
        self._header = orjson.dumps({"model": model}) + b"\n"
        self._run = run

    def read(self) -> tuple[dict[str, Vector], int]:
        """The vectors journaled for this model (``{}`` if none), and how many of them this
        run's attempts journaled (requests billed to this run by attempts that died)."""
        try:
            content = self.path.read_bytes()
        except FileNotFoundError:
            return {}, 0
        if not content.startswith(self._header):
            return {}, 0
        entries: list[tuple[str, Vector, bool]] = []
        run: object = None
        for line in content[len(self._header) :].split(b"\n"):
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # the torn last line of a killed writer
            if isinstance(value, dict):
                run = value.get("run")
            elif isinstance(value, list) and len(value) == 2:
                text, vector = value
                if isinstance(text, str) and _is_vector(vector):
                    entries.append((text, vector, run == self._run))
        if not entries:
            return {}, 0
        # The model's length is the one most lines have (the latest, in a tie).
        lengths = Counter(len(vector) for _, vector, _ in reversed(entries))
        length = lengths.most_common(1)[0][0]
        kept = [entry for entry in entries if len(entry[1]) == length]
        return {text: vector for text, vector, _ in kept}, sum(ours for _, _, ours in kept)

    @contextmanager
    def appending(self) -> Iterator[Callable[[str, Vector], None]]:
        """A function recording one vector of this run, valid for the ``with`` block."""
        try:
            content = self.path.read_bytes()
        except FileNotFoundError:
            content = b""
        ours = content.startswith(self._header)
        recorded = 0
        try:
            # Unbuffered: each line reaches the operating system as it is written, so a
            # killed process loses none (a crash of the machine may lose the last ones).
            with open(self.path, "ab" if ours else "wb", buffering=0) as handle:
                if not ours:
                    handle.write(self._header)
                elif not content.endswith(b"\n"):
                    handle.write(b"\n")  # after a torn line, not glued to it
                handle.write(orjson.dumps({"run": self._run}) + b"\n")

                def record(text: str, vector: Vector) -> None:
                    nonlocal recorded
                    handle.write(orjson.dumps([text, vector]) + b"\n")
                    recorded += 1

                yield record
        finally:
            if not ours and not recorded:  # nothing to keep: leave no empty journal behind
                self.path.unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete the journal (its vectors are in the partition's file)."""
        self.path.unlink(missing_ok=True)


def _is_vector(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(type(item) is float and math.isfinite(item) for item in value)
    )


def _read_metadata(target: Path) -> dict[str, Any] | None:
    if not target.exists():
        return None
    try:
        metadata = pq.read_schema(target).metadata or {}
        value: dict[str, Any] = json.loads(metadata[METADATA_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException):
        return None  # not ours, or damaged: written again
    return value


def _known_vectors(target: Path, metadata: dict[str, Any]) -> dict[str, Vector]:
    """The vectors of an earlier file of this partition, under the column names it was
    written with; ``{}`` if the file is damaged."""
    try:
        names = metadata["columns"]
        column, embedding_column = str(names["text"]), str(names["embedding"])
        table = pq.read_table(target, columns=[column, embedding_column])
        texts = table.column(column).to_pylist()
        vectors = table.column(embedding_column).to_pylist()
    except (OSError, KeyError, TypeError, ValueError, pa.ArrowException):
        return {}  # not ours, or damaged: embedded again
    return {
        text: vector
        for text, vector in zip(texts, vectors, strict=True)
        if isinstance(text, str) and vector is not None
    }


def _write_atomically(table: pa.Table, target: Path) -> None:
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, temporary)
        # On disk before the rename makes it visible: a crash leaves the old file or the
        # whole new one, never a torn one.
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
