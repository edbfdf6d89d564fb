"""Issue 15, items 11-16: the command line refuses what it cannot do right, before any request.

A second run on a locked OUTPUT, ``-o -``, OUTPUT lines whose vector is malformed, an OUTPUT
that is not a regular file, binary or mis-encoded INPUT, a --field no record has, an empty
TEXT, a classifier of another dimension than the API's vectors; and progress on a stderr
that is not a terminal. Each is one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from phospho_embed.emulator import Emulator
from tests.cli.conftest import (
    TEST_KEY,
    RunCLI,
    assert_vectors,
    read_output,
    write_lines,
)

TEXTS = [f"customer message {i}: where is my parcel number {i}?" for i in range(12)]
# The first bytes of a PNG: a signature with a NUL-free start, then an IHDR chunk with NULs.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)) * 8


def _one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("phospho-embed: error: ")]
    assert len(lines) == 1, err
    return lines[0]


# -- item 11: one run at a time on an OUTPUT ---------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl.flock")
def test_a_locked_output_is_refused_before_any_request(
    tmp_path: Path, embed_cli: RunCLI, emulator: Emulator
) -> None:
    import fcntl

    source = write_lines(tmp_path / "in.txt", TEXTS)
    output = tmp_path / "out.jsonl"
    with open(output, "ab") as held:  # what another run holds while it writes
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        refused = embed_cli(str(source), "-o", str(output))
        dry = embed_cli(str(source), "-o", str(output), "--dry-run")

    assert refused.code == 2
    assert "is in use by another 'phospho-embed embed' run" in _one_line_error(refused.err)
    assert dry.code == 2
    assert emulator.stats.requests == 0
    assert output.read_bytes() == b""
    # Released: the same command runs.
    assert embed_cli(str(source), "-o", str(output)).code == 0
    assert_vectors(read_output(output), dict(enumerate(TEXTS)))


# -- item 12: standard input and pipes; no file named '-' ------------------------------------


def test_output_dash_is_refused_and_creates_no_file(
    tmp_path: Path,
    embed_cli: RunCLI,
    cli: RunCLI,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    source = write_lines(tmp_path / "in.txt", TEXTS)

    result = embed_cli(str(source), "-o", "-")
    found = cli("discover", str(source), "-o", "-", "--api-key", TEST_KEY)

    assert result.code == 2
    assert "OUTPUT '-' (standard output) is not supported" in _one_line_error(result.err)
    assert found.code == 2
    assert "-o '-' (standard output) is not supported" in _one_line_error(found.err)
    assert not (tmp_path / "-").exists()
    assert emulator.stats.requests == 0


def test_stdin_without_format_is_refused(embed_cli: RunCLI, tmp_path: Path) -> None:
    result = embed_cli("-", "-o", str(tmp_path / "out.jsonl"))

    assert result.code == 2
    assert "pass --format" in _one_line_error(result.err)


# -- item 13: OUTPUT lines that are not records, OUTPUT that is not a file ---------------------


def _record(index: int, text: str, vector: str) -> bytes:
    return f'{{"index":{index},"text":{json.dumps(text)},"embedding":{vector}}}\n'.encode()


@pytest.mark.parametrize("vector", ["[,]", "[0.1,]", "[1e999]", "[0.1.2]", "[NaN]", "[0.1,,0.2]"])
def test_a_malformed_vector_in_output_is_refused_not_taken_as_done(
    tmp_path: Path, embed_cli: RunCLI, emulator: Emulator, vector: str
) -> None:
    source = write_lines(tmp_path / "in.txt", TEXTS)
    output = tmp_path / "out.jsonl"
    output.write_bytes(_record(0, TEXTS[0], "[0.5,-0.25]") + _record(1, TEXTS[1], vector))
    before = output.read_bytes()

    result = embed_cli(str(source), "-o", str(output))

    assert result.code == 2
    message = _one_line_error(result.err)
    assert "1 line is not a record" in message
    assert "line 2 (" in message
    assert emulator.stats.requests == 0
    assert output.read_bytes() == before


def test_every_bad_output_line_is_counted_and_the_first_named(
    tmp_path: Path, embed_cli: RunCLI, emulator: Emulator
) -> None:
    source = write_lines(tmp_path / "in.txt", TEXTS)
    output = tmp_path / "out.jsonl"
    lines = [_record(i, TEXTS[i], "[0.5,-0.25]" if i % 2 else "[0.5,]") for i in range(10)]
    lines.append(_record(10, TEXTS[10], "[0.5,-0.25,1.0]"))  # another dimension
    output.write_bytes(b"".join(lines))

    result = embed_cli(str(source), "-o", str(output))

    message = _one_line_error(result.err)
    assert result.code == 2
    assert "6 lines are not records" in message
    assert "line 1 (" in message
    assert "line 9 (" in message
    assert "and 1 more" in message
    assert emulator.stats.requests == 0


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_device_as_output_is_refused(tmp_path: Path, embed_cli: RunCLI) -> None:
    source = write_lines(tmp_path / "in.txt", TEXTS)

    result = embed_cli(str(source), "-o", "/dev/full")

    assert result.code == 2
    assert "is not a regular file (it is a character device)" in _one_line_error(result.err)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_output_is_refused_without_blocking(tmp_path: Path, embed_cli: RunCLI) -> None:
    source = write_lines(tmp_path / "in.txt", TEXTS)
    fifo = tmp_path / "out.jsonl"
    os.mkfifo(fifo)

    result = embed_cli(str(source), "-o", str(fifo))

    assert result.code == 2
    assert "is not a regular file (it is a pipe)" in _one_line_error(result.err)


@pytest.mark.parametrize(
    "content",
    [b"x" * (9 * 1024 * 1024), PNG],
    ids=["9 MiB without a newline", "a PNG"],
)
def test_output_that_is_no_jsonl_is_refused_and_not_cut_off(
    tmp_path: Path, embed_cli: RunCLI, emulator: Emulator, content: bytes
) -> None:
    source = write_lines(tmp_path / "in.txt", TEXTS)
    output = tmp_path / "out.jsonl"
    output.write_bytes(content)

    result = embed_cli(str(source), "-o", str(output))

    assert result.code == 2
    _one_line_error(result.err)
    assert output.read_bytes() == content  # not taken for a torn line and truncated
    assert emulator.stats.requests == 0


def test_vectors_of_another_dimension_than_output_stop_the_run(
    tmp_path: Path, embed_cli: RunCLI, emulator: Emulator
) -> None:
    source = write_lines(tmp_path / "in.txt", TEXTS[:4])
    output = tmp_path / "out.jsonl"
    assert embed_cli(str(source), "-o", str(output)).code == 0
    before = output.read_bytes()
    write_lines(source, TEXTS[:8])
    emulator.configure(dimensions=768)

    result = embed_cli(str(source), "-o", str(output), "--max-concurrency", "1")

    assert result.code == 3
    message = _one_line_error(result.err)
    assert "768-dimensional" in message
    assert "1536-dimensional" in message
    assert output.read_bytes() == before


# -- item 14: binary and mis-encoded INPUT -----------------------------------------------------


@pytest.mark.parametrize("command", ["embed", "discover"])
def test_binary_input_is_refused_before_any_request(
    tmp_path: Path, cli: RunCLI, emulator: Emulator, command: str
) -> None:
    source = tmp_path / "photo.txt"
    source.write_bytes(PNG)
    output = tmp_path / "out.jsonl"

    result = cli(
        command, str(source), "-o", str(output), "--base-url", emulator.base_url,
        "--api-key", TEST_KEY, "--no-progress",
    )  # fmt: skip

    assert result.code == 2
    assert "looks binary, not text: byte 9 is a NUL" in _one_line_error(result.err)
    assert emulator.stats.requests == 0


def test_latin1_input_is_refused_naming_line_and_byte_then_read_with_encoding(
    tmp_path: Path, embed_cli: RunCLI, emulator: Emulator
) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes("first line\nun café noir\nthird\n".encode("latin-1"))
    output = tmp_path / "out.jsonl"

    refused = embed_cli(str(source), "-o", str(output))
    emulator_requests = emulator.stats.requests
    read = embed_cli(str(source), "-o", str(output), "--encoding", "latin-1")

    assert refused.code == 2
    message = _one_line_error(refused.err)
    assert "is not UTF-8: line 2, byte 7 is 0xE9" in message
    assert "--encoding" in message
    assert "surrogate" not in message
    assert emulator_requests == 0
    assert read.code == 0, read.err
    assert_vectors(read_output(output), {0: "first line", 1: "un café noir", 2: "third"})


def test_an_unknown_encoding_is_a_usage_error(tmp_path: Path, embed_cli: RunCLI) -> None:
    source = write_lines(tmp_path / "in.txt", TEXTS)

    result = embed_cli(str(source), "-o", str(tmp_path / "o.jsonl"), "--encoding", "klingon")

    assert result.code == 2
    assert "unknown --encoding 'klingon'" in _one_line_error(result.err)


# -- item 15: one line, never a traceback --------------------------------------------------------


@pytest.mark.parametrize("command", ["embed", "discover"])
def test_a_jsonl_field_no_record_has_is_refused_up_front(
    tmp_path: Path, cli: RunCLI, emulator: Emulator, command: str
) -> None:
    source = tmp_path / "in.jsonl"
    write_lines(source, [json.dumps({"id": i, "body": text}) for i, text in enumerate(TEXTS)])

    result = cli(
        command, str(source), "-o", str(tmp_path / "out.jsonl"), "--field", "message",
        "--base-url", emulator.base_url, "--api-key", TEST_KEY, "--no-progress",
    )  # fmt: skip

    assert result.code == 2
    message = _one_line_error(result.err)
    assert "no record has the field 'message'" in message
    assert "'id', 'body'" in message
    assert "index 0" not in result.err  # not 12 failures, one refusal
    assert emulator.stats.requests == 0


def test_classify_an_empty_text_is_one_line_before_any_request(
    tmp_path: Path, cli: RunCLI, emulator: Emulator
) -> None:
    examples = tmp_path / "examples.json"
    examples.write_text(json.dumps({"refund": ["I want a refund"], "track": ["where is it"]}))

    result = cli(
        "classify", "--examples", str(examples), "fine text", "  ",
        "--base-url", emulator.base_url, "--api-key", TEST_KEY,
    )  # fmt: skip

    assert result.code == 2
    assert "TEXT 2 is empty or whitespace only" in _one_line_error(result.err)
    assert emulator.stats.requests == 0


def test_classify_with_a_classifier_of_another_dimension_names_both(
    tmp_path: Path, cli: RunCLI, emulator: Emulator
) -> None:
    examples = tmp_path / "examples.json"
    examples.write_text(json.dumps({"refund": ["I want a refund"], "track": ["where is it"]}))
    saved = tmp_path / "intents.npz"
    args = ["--base-url", emulator.base_url, "--api-key", TEST_KEY]
    assert cli("classify", "--examples", str(examples), "--save", str(saved), "hi", *args).code == 0
    emulator.configure(dimensions=768)
    emulator.reset_stats()

    result = cli("classify", "--examples", str(saved), "refund me", "where is my order", *args)

    assert result.code == 2
    message = _one_line_error(result.err)
    assert "1536-dimensional" in message
    assert "768-dimensional" in message
    assert emulator.stats.requests == 1  # the first text, not every text


# -- item 16: progress on a stderr that is not a terminal ----------------------------------------


def test_progress_to_a_log_is_a_few_plain_lines(
    tmp_path: Path, cli: RunCLI, emulator: Emulator
) -> None:
    texts = [f"message {i} about order {i}" for i in range(300)]
    source = write_lines(tmp_path / "in.txt", texts)

    # No --no-progress: stderr (captured) is not a terminal.
    result = cli(
        "embed", str(source), "-o", str(tmp_path / "out.jsonl"),
        "--base-url", emulator.base_url, "--api-key", TEST_KEY, "--chunk-size", "7",
    )  # fmt: skip

    assert result.code == 0, result.err
    assert "\r" not in result.err
    progress = [line for line in result.err.splitlines() if line.startswith("embedding: ")]
    assert 1 <= len(progress) <= 10
    assert progress[-1] == "embedding: 300/300 (100%)"
