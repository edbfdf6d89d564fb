"""``phospho-embed embed`` in this process against the emulator: formats, indices, resuming,
refusals, failures and fatal errors."""

from __future__ import annotations

import json
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

TEXTS = [f"customer message {i}: where is order {i * 7 % 13}?" for i in range(30)]
LONG_TEXT = "word " * 16_000  # over the API's 15,000 tokens: a 400, never retried


# -- formats and indices ----------------------------------------------------------------------


def test_txt_every_line_once_with_its_vector(
    tmp_path: Path, embed_cli: RunCLI, emulator: Emulator
) -> None:
    source = write_lines(tmp_path / "in.txt", TEXTS)
    output = tmp_path / "out.jsonl"

    result = embed_cli(str(source), "-o", str(output), "--max-concurrency", "4")

    assert result.code == 0, result.err
    assert_vectors(read_output(output), dict(enumerate(TEXTS)))
    assert emulator.stats.requests == len(TEXTS)
    assert "30 embedded, 0 already present, 0 failed" in result.err


def test_txt_blank_lines_are_skipped_but_keep_their_index(
    tmp_path: Path, embed_cli: RunCLI, emulator: Emulator
) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(b"first text\r\n\r\n   \nfourth text\nfifth text\n\n")

    result = embed_cli(str(source), "-o", str(tmp_path / "out.jsonl"))

    assert result.code == 0, result.err
    records = read_output(tmp_path / "out.jsonl")
    assert_vectors(records, {0: "first text", 3: "fourth text", 4: "fifth text"})
    assert "3 blank skipped" in result.err  # indices 1, 2 and 5 (the last, empty line)
    assert emulator.stats.requests == 3


def test_txt_lines_the_api_cannot_take_are_failures_with_their_index(
    tmp_path: Path, embed_cli: RunCLI, emulator: Emulator
) -> None:
    # Past the first 8 KiB (the binary check), a NUL character is one line's failure.
    head = [f"text number {i} with enough words to fill the head" for i in range(200)]
    source = tmp_path / "in.txt"
    source.write_bytes("".join(f"{line}\n" for line in head).encode() + b"nul \x00 char\nlast\n")

    result = embed_cli(str(source), "-o", str(tmp_path / "out.jsonl"))

    assert result.code == 1
    assert_vectors(
        read_output(tmp_path / "out.jsonl"), {**dict(enumerate(head)), len(head) + 1: "last"}
    )
    assert f"index {len(head)}: not embedded: the line contains a NUL character" in result.err
    assert emulator.stats.requests == len(head) + 1


def test_jsonl_with_a_custom_field(tmp_path: Path, embed_cli: RunCLI) -> None:
    source = tmp_path / "in.jsonl"
    write_lines(source, [json.dumps({"id": i, "body": text}) for i, text in enumerate(TEXTS)])

    result = embed_cli(str(source), "-o", str(tmp_path / "out.jsonl"), "--field", "body")

    assert result.code == 0, result.err
    assert_vectors(read_output(tmp_path / "out.jsonl"), dict(enumerate(TEXTS)))


def test_csv_with_a_column_quotes_and_a_bom(tmp_path: Path, embed_cli: RunCLI) -> None:
    texts = ['he said "cancel it", twice', "line one\nline two", "plain"]
    rows = "".join(
        f'{i},"{text.replace(chr(34), chr(34) * 2)}"\r\n' for i, text in enumerate(texts)
    )
    source = tmp_path / "in.csv"
    source.write_bytes(b"\xef\xbb\xbfid,message\r\n" + rows.encode())  # Excel's UTF-8 BOM

    result = embed_cli(str(source), "-o", str(tmp_path / "out.jsonl"), "--column", "message")

    assert result.code == 0, result.err
    # The multi-line field is one row: indices are data rows, not lines.
    assert_vectors(read_output(tmp_path / "out.jsonl"), dict(enumerate(texts)))


def test_duplicate_texts_keep_one_line_per_index(
    tmp_path: Path, embed_cli: RunCLI, emulator: Emulator
) -> None:
    texts = ["refund please", "hello", "refund please", "refund please"]
    source = write_lines(tmp_path / "in.txt", texts)

    result = embed_cli(str(source), "-o", str(tmp_path / "out.jsonl"))

    assert result.code == 0, result.err
    assert_vectors(read_output(tmp_path / "out.jsonl"), dict(enumerate(texts)))
    assert emulator.stats.inputs == {"refund please": 1, "hello": 1}


def test_progress_bar_on_stderr(
    tmp_path: Path, cli: RunCLI, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tqdm")
    monkeypatch.setenv("PHOSPHO_API_KEY", TEST_KEY)
    monkeypatch.setenv("PHOSPHO_BASE_URL", emulator.base_url)
    source = write_lines(tmp_path / "in.txt", TEXTS)

    result = cli("embed", str(source), "-o", str(tmp_path / "out.jsonl"))

    assert result.code == 0, result.err
    assert "30/30" in result.err
    assert result.out == ""  # stdout stays clean for pipes
    assert TEST_KEY not in result.err


# -- resuming ---------------------------------------------------------------------------------


def test_a_second_run_requests_only_what_is_missing(
    tmp_path: Path, embed_cli: RunCLI, emulator: Emulator
) -> None:
    source = write_lines(tmp_path / "in.txt", TEXTS[:20])
    output = tmp_path / "out.jsonl"
    assert embed_cli(str(source), "-o", str(output)).code == 0
    write_lines(source, TEXTS)  # ten more lines

    result = embed_cli(str(source), "-o", str(output))

    assert result.code == 0, result.err
    assert "10 embedded, 20 already present" in result.err
    assert_vectors(read_output(output), dict(enumerate(TEXTS)))
    assert emulator.stats.inputs == dict.fromkeys(TEXTS, 1)


def test_a_torn_last_line_is_cut_off_and_redone(
    tmp_path: Path, embed_cli: RunCLI, emulator: Emulator
) -> None:
    source = write_lines(tmp_path / "in.txt", TEXTS[:10])
    output = tmp_path / "out.jsonl"
    assert embed_cli(str(source), "-o", str(output)).code == 0
    data = output.read_bytes()
    last = json.loads(data.splitlines()[-1])
    output.write_bytes(data[:-200])  # what a kill in the middle of a write leaves
    emulator.reset_stats()

    result = embed_cli(str(source), "-o", str(output))

    assert result.code == 0, result.err
    assert "torn last line" in result.err
    assert_vectors(read_output(output), dict(enumerate(TEXTS[:10])))
    assert emulator.stats.inputs == {last["text"]: 1}


def test_a_complete_last_line_without_newline_is_kept(
    tmp_path: Path, embed_cli: RunCLI, emulator: Emulator
) -> None:
    source = write_lines(tmp_path / "in.txt", TEXTS[:10])
    output = tmp_path / "out.jsonl"
    output.write_bytes(b"")
    assert embed_cli(str(source), "-o", str(output), "--max-concurrency", "1").code == 0
    output.write_bytes(output.read_bytes()[:-1])
    write_lines(source, TEXTS[:12])
    emulator.reset_stats()

    result = embed_cli(str(source), "-o", str(output))

    assert result.code == 0, result.err
    assert_vectors(read_output(output), dict(enumerate(TEXTS[:12])))
    assert emulator.stats.inputs == {TEXTS[10]: 1, TEXTS[11]: 1}


def test_dry_run_sends_and_changes_nothing(
    tmp_path: Path, cli: RunCLI, embed_cli: RunCLI, emulator: Emulator
) -> None:
    source = write_lines(tmp_path / "in.txt", TEXTS[:5])
    output = tmp_path / "out.jsonl"
    assert embed_cli(str(source), "-o", str(output)).code == 0
    write_lines(source, [*TEXTS[:8], ""])
    before = output.read_bytes()
    emulator.reset_stats()

    # No API key is needed to look.
    result = cli("embed", str(source), "-o", str(output), "--dry-run")

    assert result.code == 0, result.err
    assert "3 to embed, 5 already present, 1 blank, 0 invalid" in result.err
    assert output.read_bytes() == before
    assert emulator.stats.requests == 0


# -- refusals: nothing is sent, OUTPUT is left as it was --------------------------------------


def _refused(result_err: str, output: Path, before: bytes, emulator: Emulator) -> None:
    assert output.read_bytes() == before
    assert emulator.stats.requests == 0
    assert "Traceback" not in result_err
    assert len(result_err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        (["other text", *TEXTS[1:10]], "differs from INPUT"),
        (TEXTS[:5], "INPUT has 5 records"),
        (["", *TEXTS[1:10]], "which is blank in INPUT"),
    ],
    ids=["text-differs", "index-beyond-input", "index-blank-in-input"],
)
def test_output_from_another_input_is_refused(
    tmp_path: Path,
    embed_cli: RunCLI,
    emulator: Emulator,
    changed: list[str],
    reason: str,
) -> None:
    source = write_lines(tmp_path / "in.txt", TEXTS[:10])
    output = tmp_path / "out.jsonl"
    assert embed_cli(str(source), "-o", str(output)).code == 0
    before = output.read_bytes()
    write_lines(source, changed)
    emulator.reset_stats()

    result = embed_cli(str(source), "-o", str(output))

    assert result.code == 2
    assert "does not match INPUT" in result.err
    assert reason in result.err
    _refused(result.err, output, before, emulator)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b'{"index": 0, "text": "a", "embedding": [1.0]}\nnot json\n',
            "1 line is not a record of 'phospho-embed embed': line 2 (not valid JSON",
        ),
        (
            b'{"index": 1, "text": "b", "embedding": [1.0]}\n'
            b'{"index": 1, "text": "b", "embedding": [1.0]}\n',
            "holds index 1 twice",
        ),
        (b'{"index": 99999, "text": "a", "embedding": [1.0]}\n', "index 99999"),
    ],
    ids=["garbage-line", "duplicate-index", "huge-index"],
)
def test_an_output_that_is_not_ours_is_refused(
    tmp_path: Path, embed_cli: RunCLI, emulator: Emulator, content: bytes, message: str
) -> None:
    source = write_lines(tmp_path / "in.txt", ["a", "b"])
    output = tmp_path / "out.jsonl"
    output.write_bytes(content)

    result = embed_cli(str(source), "-o", str(output))

    assert result.code == 2
    assert message in result.err
    _refused(result.err, output, content, emulator)


@pytest.mark.parametrize(
    ("name", "content", "extra", "message"),
    [
        ("in.csv", "id,body\n1,hello\n", [], "no column 'text' (its columns: 'id', 'body')"),
        ("in.json", "{}", [], "cannot tell the format"),
        ("in.txt", "hello\n", ["--field", "body"], "--field applies to jsonl input"),
        ("in.jsonl", "{}\n", ["--column", "body"], "--column applies to csv input"),
        ("in.csv", "", [], "a CSV input needs a header row"),
    ],
    ids=["missing-column", "unknown-extension", "field-on-txt", "column-on-jsonl", "empty-csv"],
)
def test_bad_input_options_fail_with_one_line(
    tmp_path: Path,
    embed_cli: RunCLI,
    emulator: Emulator,
    name: str,
    content: str,
    extra: list[str],
    message: str,
) -> None:
    source = tmp_path / name
    source.write_text(content)

    result = embed_cli(str(source), "-o", str(tmp_path / "out.jsonl"), *extra)

    assert result.code == 2
    assert message in result.err
    assert result.err.startswith("phospho-embed: error: ")
    assert not (tmp_path / "out.jsonl").exists()
    assert emulator.stats.requests == 0


def test_missing_files_fail_with_one_line(tmp_path: Path, embed_cli: RunCLI) -> None:
    missing = embed_cli(str(tmp_path / "nope.txt"), "-o", str(tmp_path / "out.jsonl"))
    source = write_lines(tmp_path / "in.txt", ["hello"])
    no_dir = embed_cli(str(source), "-o", str(tmp_path / "no" / "such" / "out.jsonl"))
    same = embed_cli(str(source), "-o", str(source))

    assert (missing.code, no_dir.code, same.code) == (2, 2, 2)
    assert "cannot read INPUT" in missing.err
    assert "No such file or directory" in missing.err
    assert "cannot write OUTPUT" in no_dir.err
    assert "same file" in same.err
    for result in (missing, no_dir, same):
        assert "Traceback" not in result.err
        assert len(result.err.strip().splitlines()) == 1


# -- failures and fatal errors ----------------------------------------------------------------


def test_failures_are_reported_and_everything_else_is_written(
    tmp_path: Path, embed_cli: RunCLI, emulator: Emulator
) -> None:
    lines = [
        json.dumps({"text": "first"}),
        json.dumps({"text": LONG_TEXT}),
        json.dumps({"text": 42}),
        "",
        json.dumps({"text": ""}),
        "{broken",
        json.dumps({"other": "x"}),
        json.dumps({"text": "last"}),
    ]
    source = write_lines(tmp_path / "in.jsonl", lines)
    output = tmp_path / "out.jsonl"

    result = embed_cli(str(source), "-o", str(output))

    assert result.code == 1
    assert_vectors(read_output(output), {0: "first", 7: "last"})
    summary = result.err.strip().splitlines()[-1]
    assert "2 embedded, 0 already present, 1 blank skipped, 5 failed" in summary
    assert "index 1 (BadRequestError: 400" in summary
    for index in (1, 2, 4, 5, 6):
        assert f"index {index}: not embedded: " in result.err
    assert "must be a str, got int" in result.err
    assert "is not valid JSON" in result.err
    assert "has no 'text' field" in result.err
    # The long text was sent once (a 400 is not retried); the invalid ones never.
    assert emulator.stats.inputs == {"first": 1, LONG_TEXT: 1, "last": 1}


def test_failed_records_are_retried_by_the_next_run(
    tmp_path: Path, embed_cli: RunCLI, emulator: Emulator
) -> None:
    emulator.configure(fault="500")  # every request fails, even after retries
    source = write_lines(tmp_path / "in.txt", TEXTS[:3])
    output = tmp_path / "out.jsonl"

    failed = embed_cli(str(source), "-o", str(output), "--max-retries", "0")
    emulator.configure(fault=None)
    retried = embed_cli(str(source), "-o", str(output))

    assert failed.code == 1
    assert "3 failed" in failed.err
    assert "ServerError: 500" in failed.err
    assert retried.code == 0, retried.err
    assert_vectors(read_output(output), dict(enumerate(TEXTS[:3])))


def test_a_wrong_key_stops_at_once(tmp_path: Path, cli: RunCLI, emulator: Emulator) -> None:
    emulator.configure(api_key="the-right-key")
    source = write_lines(tmp_path / "in.txt", TEXTS)
    output = tmp_path / "out.jsonl"

    result = cli(
        "embed",
        str(source),
        "-o",
        str(output),
        "--base-url",
        emulator.base_url,
        "--api-key",
        "wrong-key-4711",
        "--max-concurrency",
        "2",
        "--no-progress",
    )

    assert result.code == 3
    assert "AuthenticationError: 401" in result.err
    assert "wrong-key-4711" not in result.err
    assert emulator.stats.requests <= 2  # the requests already in flight, nothing after
    assert read_output(output) == {}


def test_no_key_fails_before_anything(tmp_path: Path, cli: RunCLI, emulator: Emulator) -> None:
    source = write_lines(tmp_path / "in.txt", TEXTS)

    result = cli(
        "embed", str(source), "-o", str(tmp_path / "out.jsonl"), "--base-url", emulator.base_url
    )

    assert result.code == 2
    assert result.err.strip() == (
        "phospho-embed: error: no API key: set the PHOSPHO_API_KEY environment variable "
        "or pass --api-key"
    )
    assert not (tmp_path / "out.jsonl").exists()
    assert emulator.stats.requests == 0


def test_the_environment_configures_the_client(
    tmp_path: Path, cli: RunCLI, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.configure(api_key="env-key")
    monkeypatch.setenv("PHOSPHO_API_KEY", "env-key")
    monkeypatch.setenv("PHOSPHO_BASE_URL", emulator.base_url)
    source = write_lines(tmp_path / "in.txt", TEXTS[:3])

    result = cli("embed", str(source), "-o", str(tmp_path / "out.jsonl"), "--no-progress")

    assert result.code == 0, result.err
    assert emulator.stats.by_status == {200: 3}


def test_a_bad_base_url_is_a_usage_error(tmp_path: Path, embed_cli: RunCLI) -> None:
    source = write_lines(tmp_path / "in.txt", TEXTS[:3])

    result = embed_cli(str(source), "-o", str(tmp_path / "out.jsonl"), "--base-url", "ftp://x")

    assert result.code == 2
    assert "base_url must start with http://" in result.err
