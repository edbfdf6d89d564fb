"""``phospho-embed embed`` as a real process, killed or interrupted half-way, then resumed.

The emulator answers slowly (latency) and the command runs two requests at a time, so the
run is still going when the test stops it; the emulator's ``stats.inputs`` (texts received,
counted on arrival) is kept across both runs to prove what was requested twice.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from phospho_embed.emulator import Emulator
from tests.cli.conftest import (
    assert_vectors,
    complete_lines,
    process_env,
    read_output,
    spawn,
    wait_until,
    write_lines,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

CONCURRENCY = 2
LATENCY = 0.05


def _texts(count: int) -> list[str]:
    return [
        f"line {i}: the customer asks about parcel {i % 17} and order {i}" for i in range(count)
    ]


def _start(source: Path, output: Path, emulator: Emulator) -> subprocess.Popen[str]:
    args = ["embed", str(source), "-o", str(output), "--max-concurrency", str(CONCURRENCY)]
    return spawn([*args, "--no-progress"], process_env(emulator))


def _stop_half_way(
    process: subprocess.Popen[str], output: Path, lines: int, stop: signal.Signals
) -> tuple[int, str]:
    """Send ``stop`` once OUTPUT has ``lines`` complete lines; the exit status and stderr."""
    try:
        wait_until(lambda: len(complete_lines(output)) >= lines, 30, f"{lines} lines in OUTPUT")
        assert process.poll() is None, "the run ended before it could be stopped half-way"
        process.send_signal(stop)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, err


def _finish(source: Path, output: Path, emulator: Emulator) -> str:
    process = _start(source, output, emulator)
    try:
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    return err


def test_killed_run_resumes_without_requesting_written_texts_again(
    tmp_path: Path, emulator: Emulator
) -> None:
    texts = _texts(200)
    source = write_lines(tmp_path / "in.txt", texts)
    output = tmp_path / "out.jsonl"
    emulator.configure(latency=LATENCY)

    status, _ = _stop_half_way(_start(source, output, emulator), output, 20, signal.SIGKILL)
    written_first = {record["index"] for record in complete_lines(output)}
    err = _finish(source, output, emulator)

    assert status == -signal.SIGKILL
    assert 20 <= len(written_first) < len(texts)
    assert_vectors(read_output(output), dict(enumerate(texts)))
    assert "already present" in err
    inputs = emulator.stats.inputs
    assert set(inputs) == set(texts)
    # Nothing written by the killed run was requested again...
    assert all(inputs[texts[index]] == 1 for index in written_first)
    # ...only what was in flight when it died (paid for, never received): at most one
    # request per unit of concurrency, each asked for once more by the second run.
    twice = {text for text, count in inputs.items() if count > 1}
    assert len(twice) <= CONCURRENCY
    assert all(inputs[text] == 2 for text in twice)


def test_ctrl_c_exits_130_keeping_a_valid_file_and_losing_nothing(
    tmp_path: Path, emulator: Emulator
) -> None:
    texts = _texts(120)
    source = write_lines(tmp_path / "in.txt", texts)
    output = tmp_path / "out.jsonl"
    emulator.configure(latency=LATENCY)

    status, err = _stop_half_way(_start(source, output, emulator), output, 10, signal.SIGINT)
    interrupted = read_output(output)  # every line complete, every index once
    _finish(source, output, emulator)

    assert status == 130
    assert "interrupted" in err
    assert "Traceback" not in err
    assert 10 <= len(interrupted) < len(texts)
    assert_vectors(read_output(output), dict(enumerate(texts)))
    # Requests in flight at Ctrl-C were waited for and written: no text was asked twice.
    assert emulator.stats.inputs == dict.fromkeys(texts, 1)


# -- issue 15: pipes, two runs on one OUTPUT, the Ctrl-C summary ----------------------------------


@pytest.mark.parametrize("source_arg", ["-", "/dev/stdin"])
def test_piped_input_is_read_once_and_embedded(
    tmp_path: Path, emulator: Emulator, source_arg: str
) -> None:
    texts = _texts(30)
    output = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "phospho_embed.cli", "embed", source_arg, "--format", "txt"]
    run = subprocess.run(
        [*command, "-o", str(output), "--no-progress"],
        input="".join(f"{text}\n" for text in texts),
        capture_output=True,
        text=True,
        env=process_env(emulator),
        timeout=60,
    )

    assert run.returncode == 0, run.stderr
    assert "30 embedded" in run.stderr
    assert_vectors(read_output(output), dict(enumerate(texts)))


def test_a_second_run_on_the_same_output_is_refused_while_the_first_runs(
    tmp_path: Path, emulator: Emulator
) -> None:
    texts = _texts(200)
    source = write_lines(tmp_path / "in.txt", texts)
    output = tmp_path / "out.jsonl"
    # 200 texts, 2 at a time, 0.5 s each: the first run lasts ~50 s, far longer than the test.
    emulator.configure(latency=0.5)
    first = _start(source, output, emulator)
    try:
        wait_until(lambda: len(complete_lines(output)) >= 1, 30, "a line in OUTPUT")
        requests = emulator.stats.requests
        second = subprocess.run(
            [sys.executable, "-m", "phospho_embed.cli", "embed", str(source), "-o", str(output)],
            capture_output=True,
            text=True,
            env=process_env(emulator),
            timeout=60,
        )
        assert first.poll() is None, "the first run ended before the second started"
        # The first run asked for at most its concurrency more meanwhile; the second nothing.
        assert emulator.stats.requests - requests <= 2 * CONCURRENCY + 2
    finally:
        first.kill()
        first.communicate()

    assert second.returncode == 2
    assert "is in use by another 'phospho-embed embed' run" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1


def test_the_ctrl_c_summary_counts_the_vectors_written_after_it(
    tmp_path: Path, emulator: Emulator
) -> None:
    texts = _texts(40)
    source = write_lines(tmp_path / "in.txt", texts)
    output = tmp_path / "out.jsonl"
    # Slow answers: when Ctrl-C comes, requests are in flight at the emulator for ~0.5 s.
    emulator.configure(latency=0.5)
    process = _start(source, output, emulator)
    try:
        wait_until(lambda: len(complete_lines(output)) >= 2, 30, "2 lines in OUTPUT")
        wait_until(lambda: emulator.stats.in_flight >= 1, 30, "a request in flight")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 130, err
    written = len(read_output(output))
    summary = [line for line in err.splitlines() if "embedded" in line]
    assert summary == [line for line in summary if line.startswith("phospho-embed embed: ")]
    assert len(summary) == 1, err
    assert f"interrupted: {written} embedded, 0 already present" in summary[0]
    # The summary is the last line: printed once the requests in flight were written.
    assert err.strip().splitlines()[-1] == summary[0]
