"""`embed_frame` and `embed_bag` on Dask's local threaded scheduler: rows, order, index,
duplicates and per-text failures (the cluster-wide bound is tested in test_cluster.py)."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import orjson
import pytest

pytest.importorskip("distributed")

import dask
import dask.bag as db
import dask.dataframe as dd
import pandas as pd

from phospho_embed.dask import _worker, embed_bag, embed_frame, embed_to_parquet
from phospho_embed.dask._api import Journal, _parquet_partition
from phospho_embed.dask._settings import WorkerSettings
from phospho_embed.dask._worker import MAX_SENDERS
from phospho_embed.emulator import TOKEN_LIMIT, Emulator
from tests.dask.conftest import DIMENSIONS, assert_stored_vectors, assert_vectors, expected

KEY = "local-test-key"


@pytest.fixture
def emulator(phospho_emulator: Emulator) -> Emulator:
    phospho_emulator.configure(vectors="lexical", dimensions=DIMENSIONS, latency=0.01)
    return phospho_emulator


def test_rows_keep_order_and_index_and_duplicates_are_sent_once(emulator: Emulator) -> None:
    texts = [f"order {i % 7} please" for i in range(40)]
    index = pd.Index([f"row-{i}" for i in reversed(range(40))], name="id")
    frame = dd.from_pandas(
        pd.DataFrame({"text": texts, "n": range(40)}, index=index), npartitions=1, sort=False
    )
    out = embed_frame(frame, max_concurrency=4, api_key=KEY, base_url=emulator.base_url)
    assert list(out.columns) == ["text", "n", "embedding", "error"]
    result = out.compute(scheduler="threads")
    assert list(result.index) == list(index)
    assert list(result["n"]) == list(range(40))
    assert_vectors(texts, result["embedding"].tolist())
    assert result["error"].isna().all()
    # One partition: each of the 7 distinct texts was requested once.
    assert emulator.stats.requests == 7
    assert set(emulator.stats.inputs.values()) == {1}


def test_null_empty_and_too_long_texts_fail_alone(emulator: Emulator) -> None:
    too_long = "word " * (TOKEN_LIMIT + 1)
    texts = ["first", None, "   ", too_long, "last"]
    index = pd.Index(["a", "b", "c", "d", "e"], name="id")
    frame = dd.from_pandas(pd.DataFrame({"text": texts}, index=index), npartitions=1)
    result = embed_frame(frame, max_concurrency=2, api_key=KEY, base_url=emulator.base_url)
    result = result.compute(scheduler="threads")
    embeddings, errors = result["embedding"].tolist(), result["error"].tolist()
    assert_vectors(["first", "last"], [embeddings[0], embeddings[4]])
    assert embeddings[1:4] == [None, None, None]
    assert errors[0] is None
    assert errors[4] is None
    # Named by their index label, which the user can look up (a bag has none: its row).
    assert errors[1] == "ValueError: index 'b' is null: no text to embed"
    assert errors[2].startswith("ValueError: index 'c' is empty")
    assert errors[3].startswith("BadRequestError:")
    assert "tokens" in errors[3]
    # The null and the blank text were never sent; the long one was, once (400: no retry).
    assert emulator.stats.requests == 3
    assert emulator.stats.by_status == {200: 2, 400: 1}


def test_nan_and_non_string_texts_are_errors_not_requests(emulator: Emulator) -> None:
    texts = ["a b", math.nan, 3]
    bag = db.from_sequence(texts, npartitions=1)
    records = embed_bag(bag, api_key=KEY, base_url=emulator.base_url).compute(scheduler="sync")
    assert records[1]["error"] == "ValueError: row 1 of its partition is null: no text to embed"
    assert records[2]["error"] == "TypeError: row 2 of its partition must be a str, got int"
    assert emulator.stats.requests == 1


def test_existing_columns_are_not_overwritten(emulator: Emulator) -> None:
    frame = dd.from_pandas(pd.DataFrame({"text": ["a"], "embedding": [1]}), npartitions=1)
    with pytest.raises(ValueError, match="already has a column 'embedding'"):
        embed_frame(frame, base_url=emulator.base_url)
    with pytest.raises(ValueError, match="no column 'body'"):
        embed_frame(frame, "body", base_url=emulator.base_url)
    assert emulator.stats.requests == 0


def test_bag_records_in_order(emulator: Emulator) -> None:
    texts = ["refund", "where is my parcel", "refund", "cancel", "", "hi there"]
    bag = db.from_sequence(texts, npartitions=2)
    records = embed_bag(bag, max_concurrency=3, api_key=KEY, base_url=emulator.base_url).compute(
        scheduler="threads"
    )
    assert [record["text"] for record in records] == texts
    good = [i for i, text in enumerate(texts) if text]
    assert_vectors([texts[i] for i in good], [records[i]["embedding"] for i in good])
    assert records[4]["embedding"] is None
    assert records[4]["error"].startswith("ValueError")
    # "refund" twice in the first partition (3 texts each): requested once.
    assert emulator.stats.inputs["refund"] == 1


def test_a_partition_resumes_from_the_journal_of_a_killed_attempt(
    emulator: Emulator, tmp_path: Path
) -> None:
    # What a worker killed mid-partition leaves: the journal of the vectors it received,
    # its last line torn by the kill.
    texts = [f"journal {i}" for i in range(12)]
    frame = dd.from_pandas(pd.DataFrame({"text": texts}), npartitions=1)
    folder = tmp_path / "embedded"
    folder.mkdir()
    lines = [orjson.dumps({"model": "intent-embed"}), orjson.dumps({"run": "an earlier run"})]
    lines += [orjson.dumps([text, expected(text)]) for text in texts[:5]]
    journal = folder / ".part.00000.parquet.journal"
    journal.write_bytes(b"\n".join(lines) + b'\n["journal 5", [0.1, 0.')
    summary = embed_to_parquet(
        frame, folder, max_concurrency=4, api_key=KEY, base_url=emulator.base_url
    )
    assert set(emulator.stats.inputs) == set(texts[5:])  # the 5 received are not paid twice
    assert (summary.embedded, summary.requested, summary.usage.requests) == (12, 7, 7)
    stored = pd.read_parquet(folder)
    assert_stored_vectors(texts, stored["embedding"].tolist())
    assert not journal.exists()  # its vectors are in the file now


def test_a_journal_is_read_for_its_model_and_counts_its_runs_requests(tmp_path: Path) -> None:
    target = tmp_path / "part.00000.parquet"
    vector = [0.25, -0.5]
    with Journal(target, "model-a", "run-1").appending() as record:
        record("kept", vector)
    assert Journal(target, "model-a", "run-1").read() == ({"kept": vector}, 1)
    assert Journal(target, "model-a", "run-2").read() == ({"kept": vector}, 0)  # reused
    assert Journal(target, "model-b", "run-1").read() == ({}, 0)  # another model's
    path = tmp_path / ".part.00000.parquet.journal"
    path.write_bytes(path.read_bytes() + b'["torn", [0.1')  # killed mid-line
    with Journal(target, "model-a", "run-2").appending() as record:
        record("after", vector)  # not glued to the torn line
        record("too short", [0.5])  # another length than the first: skipped
    vectors, this_run = Journal(target, "model-a", "run-2").read()
    assert (vectors, this_run) == ({"kept": vector, "after": vector}, 1)
    with Journal(target, "model-b", "run-3").appending() as record:  # starts afresh
        record("other", vector)
    assert Journal(target, "model-b", "run-3").read() == ({"other": vector}, 1)
    assert Journal(target, "model-a", "run-3").read() == ({}, 0)


def test_a_journal_keeps_the_length_most_of_its_vectors_have(tmp_path: Path) -> None:
    target = tmp_path / "part.00000.parquet"
    with Journal(target, "model", "run").appending() as record:
        record("rogue", [0.5])  # first, but alone of its length
        record("one", [0.1, 0.2])
        record("two", [0.3, 0.4])
    assert Journal(target, "model", "run").read() == ({"one": [0.1, 0.2], "two": [0.3, 0.4]}, 2)


def test_a_journal_with_nothing_recorded_is_not_left_behind(tmp_path: Path) -> None:
    target = tmp_path / "part.00000.parquet"
    with pytest.raises(RuntimeError), Journal(target, "model", "run").appending():
        raise RuntimeError("the partition failed before any vector")
    assert list(tmp_path.iterdir()) == []


def test_requests_journaled_by_this_runs_dead_attempt_count_as_sent_and_billed(
    emulator: Emulator, tmp_path: Path
) -> None:
    part = pd.DataFrame({"text": ["carried one", "carried two", "sent now"]})
    settings = WorkerSettings.build(2, None, {"api_key": KEY, "base_url": emulator.base_url})
    target = tmp_path / "part.00000.parquet"
    with Journal(target, settings.model, "run-9").appending() as record:  # the dead attempt
        for text in ["carried one", "carried two"]:
            record(text, expected(text))
    report = _parquet_partition(
        part, 0, str(tmp_path), settings, ("text", "embedding", "error"), "run-9"
    )
    assert set(emulator.stats.inputs) == {"sent now"}
    assert (report.requested, report.usage.requests) == (3, 3)


def test_a_partition_written_by_a_lost_attempt_of_this_run_is_reported_not_skipped(
    emulator: Emulator, tmp_path: Path
) -> None:
    # A worker that wrote its file and died before its report reached the scheduler: the
    # retried task finds the file of its own run and reports what it recorded.
    part = pd.DataFrame({"text": ["lost report one", "lost report two"]})
    settings = WorkerSettings.build(2, None, {"api_key": KEY, "base_url": emulator.base_url})
    names = ("text", "embedding", "error")
    first = _parquet_partition(part, 0, str(tmp_path), settings, names, "run-1")
    again = _parquet_partition(part, 0, str(tmp_path), settings, names, "run-1")
    later = _parquet_partition(part, 0, str(tmp_path), settings, names, "run-2")
    assert emulator.stats.requests == 2
    assert (first.skipped, first.usage.requests, first.requested) == (False, 2, 2)
    assert again == first
    assert (later.skipped, later.usage.requests) == (True, 0)


def test_a_rerun_rewrites_a_partition_whose_other_columns_changed_without_sending(
    emulator: Emulator, tmp_path: Path
) -> None:
    texts = [f"columns {i}" for i in range(6)]
    settings = {"max_concurrency": 2, "api_key": KEY, "base_url": emulator.base_url}
    folder = tmp_path / "embedded"

    def frame(labels: range) -> dd.DataFrame:
        # A column of lists too: its values cannot be hashed as they are.
        tags = [[f"tag {label}"] for label in labels]
        table = pd.DataFrame({"text": texts, "label": list(labels), "tags": tags})
        return dd.from_pandas(table, npartitions=2)

    embed_to_parquet(frame(range(6)), folder, **settings)
    emulator.reset_stats()
    changed = embed_to_parquet(frame(range(100, 106)), folder, **settings)
    assert (changed.written, changed.requested) == (2, 0)  # rewritten, vectors reused
    assert pd.read_parquet(folder)["label"].tolist() == list(range(100, 106))
    renamed = embed_to_parquet(
        frame(range(100, 106)), folder, embedding_column="vector", error_column="why", **settings
    )
    assert (renamed.written, renamed.requested) == (2, 0)
    stored = pd.read_parquet(folder)
    assert_stored_vectors(texts, stored["vector"].tolist())
    assert "embedding" not in stored.columns
    assert emulator.stats.requests == 0


def test_a_change_deep_inside_an_array_column_rewrites_the_partition(
    emulator: Emulator, tmp_path: Path
) -> None:
    # Arrays (a list<double> column read from parquet arrives as numpy arrays) are hashed
    # by every byte: their text would round and elide a change this small.
    settings = {"max_concurrency": 2, "api_key": KEY, "base_url": emulator.base_url}
    arrays = [np.linspace(0, 1, 2000) for _ in range(2)]

    source, out = tmp_path / "source.parquet", tmp_path / "embedded"

    def frame() -> dd.DataFrame:
        table = pd.DataFrame({"text": ["array one", "array two"], "features": list(arrays)})
        table.to_parquet(source)
        return dd.read_parquet(source)

    embed_to_parquet(frame(), out, **settings)
    arrays[1] = arrays[1].copy()
    arrays[1][1000] += 1e-9
    again = embed_to_parquet(frame(), out, **settings)
    assert (again.written, again.requested) == (1, 0)
    assert pd.read_parquet(out)["features"][1][1000] == arrays[1][1000]


def test_a_partition_parquet_cannot_store_is_refused_before_any_request(
    emulator: Emulator, tmp_path: Path
) -> None:
    table = pd.DataFrame({"text": ["mixed one", "mixed two"], "code": [1, "one"]})
    with dask.config.set({"dataframe.convert-string": False}):
        frame = dd.from_pandas(table, npartitions=1)
        with pytest.raises(ValueError, match="partition 0 cannot be written to parquet"):
            embed_to_parquet(frame, tmp_path, api_key=KEY, base_url=emulator.base_url)
    assert emulator.stats.requests == 0


def test_a_damaged_file_is_embedded_again(emulator: Emulator, tmp_path: Path) -> None:
    texts = ["damaged one", "damaged two", None]  # a failure: the re-run reads the file
    frame = dd.from_pandas(pd.DataFrame({"text": texts}), npartitions=1)
    settings = {"max_concurrency": 2, "api_key": KEY, "base_url": emulator.base_url}
    folder = tmp_path / "embedded"
    embed_to_parquet(frame, folder, **settings)
    target = folder / "part.00000.parquet"
    content = bytearray(target.read_bytes())
    content[4:68] = b"\xff" * 64  # the first page's header; the footer is intact
    target.write_bytes(bytes(content))
    emulator.reset_stats()
    again = embed_to_parquet(frame, folder, **settings)
    assert (again.embedded, again.failed, again.requested) == (2, 1, 2)
    assert_stored_vectors(texts[:2], pd.read_parquet(folder)["embedding"].tolist()[:2])


def test_a_folder_holding_other_files_is_refused(emulator: Emulator, tmp_path: Path) -> None:
    frame = dd.from_pandas(pd.DataFrame({"text": ["a", "b"]}), npartitions=1)
    (tmp_path / "part.0.parquet").write_bytes(b"Dask's own naming")
    with pytest.raises(ValueError, match=r"holds part\.0\.parquet, which is not the output"):
        embed_to_parquet(frame, tmp_path, api_key=KEY, base_url=emulator.base_url)
    assert emulator.stats.requests == 0


def test_embed_bag_refuses_what_is_not_a_bag() -> None:
    with pytest.raises(TypeError, match=r"bag must be a dask\.bag\.Bag, got list"):
        embed_bag(["a text"], api_key=KEY)  # type: ignore[arg-type]


def test_a_process_keeps_few_senders_and_closes_the_idle_ones(emulator: Emulator) -> None:
    # Each bound name is its own settings, so its own sender (pools and threads).
    frame = dd.from_pandas(pd.DataFrame({"text": ["few senders"]}), npartitions=1)
    while _worker._SENDERS:  # the earlier tests' (all idle)
        _worker._SENDERS.popitem()[1].close()
    names = [f"senders-{n}" for n in range(MAX_SENDERS + 3)]
    for name in names:
        out = embed_frame(
            frame, max_concurrency=2, bound_name=name, api_key=KEY, base_url=emulator.base_url
        )
        out.compute(scheduler="threads")
        if name == names[0]:
            first = next(iter(_worker._SENDERS.values()))
    assert len(_worker._SENDERS) == MAX_SENDERS
    kept = [settings.bound_name for settings, _ in _worker._SENDERS]
    assert kept == names[-MAX_SENDERS:]  # the least recently used went first
    assert all(http.is_closed for http in first.pools)


def test_files_with_and_without_errors_read_back_together(
    emulator: Emulator, tmp_path: Path
) -> None:
    # Partition 0 has no error, partition 1 only errors and null texts: every file's
    # columns are typed the same, so the folder reads as one table (an all-null column
    # would not).
    texts: list[object] = ["fine one", "fine two", None, None]
    frame = dd.from_pandas(pd.DataFrame({"text": texts}), npartitions=2, sort=False)
    assert frame.npartitions == 2
    folder = tmp_path / "embedded"
    summary = embed_to_parquet(
        frame, folder, max_concurrency=2, api_key=KEY, base_url=emulator.base_url
    )
    assert (summary.embedded, summary.failed) == (2, 2)
    for read in (pd.read_parquet, lambda path: dd.read_parquet(path).compute()):
        table = read(folder)
        assert table["text"].tolist()[:2] == texts[:2]
        assert table["text"].isna().tolist() == [False, False, True, True]
        assert table["error"].isna().tolist() == [True, True, False, False]
        assert table["embedding"].isna().tolist() == [False, False, True, True]


def test_a_lease_that_cannot_be_had_fails_the_partition_instead_of_hanging(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = WorkerSettings.build(
        2, "failing-lease", {"api_key": KEY, "base_url": emulator.base_url}
    )

    def lost() -> None:
        raise OSError("the scheduler is gone")

    monkeypatch.setattr(_worker._sender(settings).bound, "acquire", lost)
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(_worker.embed_texts(["lease one", "lease two"], settings))
        except OSError as exc:
            outcome.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    runner.join(timeout=10)
    assert not runner.is_alive()
    assert isinstance(outcome[0], OSError)
    assert str(outcome[0]) == "the scheduler is gone"
    assert emulator.stats.requests == 0
