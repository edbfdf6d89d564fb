"""The pieces of resuming, without a server: the index bitmap and the reading of OUTPUT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phospho_embed.cli._common import CLIError
from phospho_embed.cli._output import IndexSet, OutputWriter, record_digest, scan_output


def test_index_set_is_a_compact_exact_set() -> None:
    indices = IndexSet()

    assert indices.add(3) is True
    assert indices.add(3) is False
    assert indices.add(10_000_000) is True
    assert 3 in indices
    assert 10_000_000 in indices
    assert 4 not in indices
    assert 10_000_001 not in indices
    assert -1 not in indices
    assert len(indices) == 2
    assert len(indices._bits) <= 2 * 10_000_000 // 8 + 1  # bits, not Python ints


def test_writer_lines_are_read_back_exactly(tmp_path: Path) -> None:
    # Texts that would fool a naive reader of the line's head.
    texts = {
        0: 'quote " and ,"embedding":[1.0]} inside',
        1: "unicode: résumé ✓, newline\nand tab\t",
        7: "back\\slash",
    }
    output = tmp_path / "out.jsonl"
    with OutputWriter(str(output)) as writer:
        for index, text in texts.items():
            writer.write(index, text, [0.5, -1e-7, 3.0])

    state = scan_output(str(output), max_records=100)

    assert sorted(index for index in range(10) if index in state.done) == [0, 1, 7]
    expected = sum(record_digest(index, text) for index, text in texts.items()) % 2**64
    assert state.digest == expected
    assert (state.max_index, state.torn_bytes, state.needs_newline) == (7, 0, False)
    assert state.valid_bytes == output.stat().st_size


def test_records_in_another_layout_are_read_in_full(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    output.write_text(json.dumps({"embedding": [1, 2], "text": "hi", "index": 4}) + "\n")

    state = scan_output(str(output), max_records=10)

    assert 4 in state.done
    assert state.digest == record_digest(4, "hi")


@pytest.mark.parametrize(
    "line",
    [
        b'{"index":0,"text":"a","embedding":[1.0,"x"]}\n',
        b'{"index":0,"text":"a","embedding":[]}\n',
        b'{"index":-1,"text":"a","embedding":[1.0]}\n',
        b'{"index":true,"text":"a","embedding":[1.0]}\n',
        b'{"index":0,"text":5,"embedding":[1.0]}\n',
        b"[1, 2]\n",
    ],
)
def test_complete_lines_that_are_not_records_are_refused(tmp_path: Path, line: bytes) -> None:
    output = tmp_path / "out.jsonl"
    output.write_bytes(line + b'{"index":1,"text":"b","embedding":[1.0]}\n')

    with pytest.raises(CLIError, match=r"1 line is not a record of .phospho-embed embed.: line 1 "):
        scan_output(str(output), max_records=10)


def test_only_the_last_line_may_be_torn(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    good = b'{"index":1,"text":"b","embedding":[1.0]}\n'
    torn = b'{"index":2,"text":"c","embedding":[1.'
    output.write_bytes(good + torn)

    state = scan_output(str(output), max_records=10)

    assert (state.valid_bytes, state.torn_bytes, len(state.done)) == (len(good), len(torn), 1)
