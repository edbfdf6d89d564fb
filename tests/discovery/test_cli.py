"""``phospho-embed discover`` through the emulator: inputs, outputs, errors, exit statuses."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from phospho_embed.cli import main
from phospho_embed.emulator import Emulator
from tests.discovery.conftest import TEST_KEY

Clinc = tuple[list[str], list[str]]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def client_args(emulator: Emulator) -> list[str]:
    return ["--base-url", emulator.base_url, "--api-key", TEST_KEY, "--no-progress"]


def discover(
    capsys: pytest.CaptureFixture[str],
    source: Path,
    tmp_path: Path,
    emulator: Emulator,
    *options: str,
) -> tuple[int, str, str]:
    """``phospho-embed discover SOURCE -o tmp_path/out.jsonl [options]`` on the emulator."""
    output = str(tmp_path / "out.jsonl")
    return run(capsys, "discover", str(source), "-o", output, *options, *client_args(emulator))


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def messages_csv(tmp_path: Path, clinc: Clinc) -> Path:
    path = tmp_path / "messages.csv"
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "text", "sent_at"])
        for i, text in enumerate(clinc[0]):
            writer.writerow([i, text, f"2024-05-{1 + i % 14:02d}T10:00:00Z"])
    return path


def test_csv_in_jsonl_report_and_map_out(
    capsys: pytest.CaptureFixture[str], phospho_emulator: Emulator, messages_csv: Path, clinc: Clinc
) -> None:
    out = messages_csv.parent
    code, stdout, stderr = run(
        capsys,
        "discover",
        str(messages_csv),
        "-o",
        str(out / "intents.jsonl"),
        "--report",
        str(out / "report.html"),
        "--plot",
        str(out / "map.png"),
        "--timestamp-field",
        "sent_at",
        *client_args(phospho_emulator),
    )
    assert code == 0, stderr
    lines = read_jsonl(out / "intents.jsonl")
    assert [line["index"] for line in lines] == list(range(len(clinc[0])))
    assert [line["text"] for line in lines] == clinc[0]
    assert lines[0]["timestamp"] == "2024-05-01T10:00:00"
    assert set(lines[0]) == {"index", "text", "intent_id", "intent", "timestamp"}
    table = stdout.splitlines()
    assert table[0].split() == ["id", "messages", "share", "name"]
    assert table[-2].endswith("(no intent)")
    named = {line["intent"] for line in lines if line["intent"] is not None}
    assert named == {row.split(None, 3)[3] for row in table[1:-2]}
    assert "finding intents in 200 messages" in stderr
    assert (out / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Intents over time" in (out / "report.html").read_text(encoding="utf-8")
    assert phospho_emulator.stats.requests == len(set(clinc[0]))


def test_embed_output_is_reused_without_any_request(
    capsys: pytest.CaptureFixture[str], phospho_emulator: Emulator, tmp_path: Path, clinc: Clinc
) -> None:
    texts = clinc[0][::4]  # 50 messages, 5 per intent
    source = tmp_path / "messages.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    embedded = tmp_path / "embedded.jsonl"
    args = client_args(phospho_emulator)
    assert run(capsys, "embed", str(source), "-o", str(embedded), *args)[0] == 0
    phospho_emulator.reset_stats()
    result = tmp_path / "intents.jsonl"
    code, _, stderr = run(capsys, "discover", str(embedded), "-o", str(result))  # no API key
    assert code == 0, stderr
    assert phospho_emulator.stats.requests == 0
    lines = read_jsonl(result)
    assert [line["text"] for line in lines] == texts  # input order, not arrival order


def test_bad_records_are_listed_skipped_and_exit_1(
    capsys: pytest.CaptureFixture[str], phospho_emulator: Emulator, tmp_path: Path, clinc: Clinc
) -> None:
    source = tmp_path / "messages.jsonl"
    rows = [json.dumps({"text": text}) for text in clinc[0][:40]]
    rows[3] = "{not json"
    rows[7] = json.dumps({"body": "no text field"})
    rows[9] = json.dumps({"text": "   "})
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, _, stderr = discover(capsys, source, tmp_path, phospho_emulator)
    assert code == 1
    problems = [line for line in stderr.splitlines() if "skipped:" in line]
    assert [line.split(":")[1].strip() for line in problems] == ["index 3", "index 7", "index 9"]
    assert "not valid JSON" in problems[0]
    assert "no 'text' field" in problems[1]
    indices = [line["index"] for line in read_jsonl(tmp_path / "out.jsonl")]
    assert indices == [i for i in range(40) if i not in (3, 7, 9)]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--report", "/no/such/dir/report.html"], "the directory '/no/such/dir' does not exist"),
        (["--timestamp-field", "when"], "--timestamp-field needs jsonl or csv input"),
        (["--column", "body"], "--column applies to csv input"),
    ],
)
def test_usage_errors_exit_2_before_anything_is_sent(
    capsys: pytest.CaptureFixture[str],
    phospho_emulator: Emulator,
    tmp_path: Path,
    extra: list[str],
    message: str,
) -> None:
    source = tmp_path / "messages.txt"
    source.write_text("hello\nrefund please\n", encoding="utf-8")
    args = ["discover", str(source), "-o", str(tmp_path / "out.jsonl"), *extra]
    code, _, stderr = run(capsys, *args, *client_args(phospho_emulator))
    assert code == 2
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert phospho_emulator.stats.requests == 0


def test_no_api_key_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "messages.txt"
    source.write_text("hello\n", encoding="utf-8")
    code, _, stderr = run(capsys, "discover", str(source), "-o", str(tmp_path / "out.jsonl"))
    assert code == 2
    assert "no API key" in stderr


def test_a_refused_key_stops_with_3(
    capsys: pytest.CaptureFixture[str], phospho_emulator: Emulator, tmp_path: Path
) -> None:
    phospho_emulator.configure(api_key="the-right-key")
    source = tmp_path / "messages.txt"
    source.write_text("hello\nrefund please\n", encoding="utf-8")
    code, _, stderr = discover(capsys, source, tmp_path, phospho_emulator)
    assert code == 3
    assert "AuthenticationError" in stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_bad_timestamps_are_skipped_before_anything_is_embedded(
    capsys: pytest.CaptureFixture[str], phospho_emulator: Emulator, tmp_path: Path, clinc: Clinc
) -> None:
    source = tmp_path / "messages.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "ts"])
        for i, text in enumerate(clinc[0][:30]):
            # CSV cells are text: digits are Unix seconds, like the help says.
            writer.writerow([text, "yesterday" if i == 4 else str(1_700_000_000 + 86_400 * i)])
    code, _, stderr = discover(
        capsys, source, tmp_path, phospho_emulator, "--timestamp-field", "ts"
    )
    assert code == 1
    assert "index 4: skipped: its 'ts' is not an ISO 8601 date or time: 'yesterday'" in stderr
    assert phospho_emulator.stats.requests == 29  # the bad record was never paid for
    lines = read_jsonl(tmp_path / "out.jsonl")
    assert [line["index"] for line in lines] == [i for i in range(30) if i != 4]
    assert lines[0]["timestamp"] == "2023-11-14T22:13:20"
