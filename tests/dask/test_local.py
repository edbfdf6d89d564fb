"""`embed_frame` and `embed_bag` on Dask's local threaded scheduler: rows, order, index,
duplicates and per-text failures (the cluster-wide bound is tested in test_cluster.py)."""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest

pytest.importorskip("distributed")

import dask.bag as db
import dask.dataframe as dd
import pandas as pd

from phospho_embed.dask import _worker, embed_bag, embed_frame, embed_to_parquet
from phospho_embed.dask._api import Journal, partition_digest
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
    frame = dd.from_pandas(pd.DataFrame({"text": texts}), npartitions=1)
    result = embed_frame(frame, max_concurrency=2, api_key=KEY, base_url=emulator.base_url)
    result = result.compute(scheduler="threads")
    embeddings, errors = result["embedding"].tolist(), result["error"].tolist()
    assert_vectors(["first", "last"], [embeddings[0], embeddings[4]])
    assert embeddings[1:4] == [None, None, None]
    assert errors[0] is None
    assert errors[4] is None
    assert errors[1] == "ValueError: row 1 of its partition is null: no text to embed"
    assert errors[2].startswith("ValueError: row 2 of its partition is empty")
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
    target = folder / "part.00000.parquet"
    digest = partition_digest(frame.compute(), "text", "intent-embed")
    lines = [orjson.dumps({"digest": digest})]
    lines += [orjson.dumps([text, expected(text)]) for text in texts[:5]]
    (folder / ".part.00000.parquet.journal").write_bytes(
        b"\n".join(lines) + b'\n["journal 5", [0.1, 0.'
    )
    summary = embed_to_parquet(
        frame, folder, max_concurrency=4, api_key=KEY, base_url=emulator.base_url
    )
    assert set(emulator.stats.inputs) == set(texts[5:])  # the 5 received are not paid twice
    assert (summary.embedded, summary.requested) == (12, 7)
    stored = pd.read_parquet(folder)
    assert_stored_vectors(texts, stored["embedding"].tolist())
    assert not (folder / ".part.00000.parquet.journal").exists()  # in the file now
    assert Journal(target, digest).read() == {}


def test_a_journal_of_other_input_is_ignored_and_a_torn_one_is_not_glued(
    tmp_path: Path,
) -> None:
    target = tmp_path / "part.00000.parquet"
    vector = [0.25, -0.5]
    with Journal(target, "digest-a").appending() as record:
        record("kept", vector)
    assert Journal(target, "digest-a").read() == {"kept": vector}
    assert Journal(target, "digest-b").read() == {}  # another input's: not reused
    path = tmp_path / ".part.00000.parquet.journal"
    path.write_bytes(path.read_bytes() + b'["torn", [0.1')  # killed mid-line
    with Journal(target, "digest-a").appending() as record:
        record("after", vector)
    assert Journal(target, "digest-a").read() == {"kept": vector, "after": vector}
    with Journal(target, "digest-b").appending() as record:  # starts afresh
        record("other", vector)
    assert Journal(target, "digest-b").read() == {"other": vector}
    assert Journal(target, "digest-a").read() == {}


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
