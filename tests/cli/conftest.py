"""Helpers for the command line's tests: running it in-process or as a process, reading OUTPUT.

Every test talks to the session's emulator over real HTTP (the ``phospho_emulator`` fixture,
reset per test); processes get its URL through ``PHOSPHO_BASE_URL``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from phospho_embed.cli import main
from phospho_embed.emulator import Emulator, emulator_vector

TEST_KEY = "cli-test-key-not-secret"


@dataclass(frozen=True)
class Result:
    """What one in-process run of the command line returned and printed."""

    code: int
    out: str
    err: str


RunCLI = Callable[..., Result]


@pytest.fixture
def emulator(phospho_emulator: Emulator) -> Emulator:
    """The session's emulator, reset to its defaults for this test."""
    return phospho_emulator


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> RunCLI:
    """Run ``phospho-embed ARGS...`` in this process; returns its status and output."""

    def run(*args: str) -> Result:
        capsys.readouterr()  # start from a clean slate
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def embed_cli(cli: RunCLI, emulator: Emulator) -> RunCLI:
    """Run ``phospho-embed embed ARGS...`` against the emulator, without a progress bar."""

    def run(*args: str) -> Result:
        # The fixed options come first, so that a test's own options override them.
        return cli(
            "embed", "--base-url", emulator.base_url, "--api-key", TEST_KEY, "--no-progress", *args
        )

    return run


def process_env(emulator: Emulator) -> dict[str, str]:
    """The environment of a command-line process aimed at ``emulator``."""
    return {**os.environ, "PHOSPHO_BASE_URL": emulator.base_url, "PHOSPHO_API_KEY": TEST_KEY}


def spawn(args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``python -m phospho_embed.cli ARGS...`` as a process, its output piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "phospho_embed.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 10 ms; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def write_lines(path: Path, lines: Sequence[str]) -> Path:
    """Write ``lines`` to ``path``, each ended by a newline."""
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def read_output(path: Path) -> dict[int, dict[str, Any]]:
    """OUTPUT's records by index; fails unless every line is a complete record and every
    index appears exactly once."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), "OUTPUT must end with a complete line"
    records = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    counts = Counter(record["index"] for record in records)
    assert [index for index, n in counts.items() if n > 1] == []
    for record in records:
        assert set(record) == {"index", "text", "embedding"}
    return {record["index"]: record for record in records}


def assert_vectors(records: dict[int, dict[str, Any]], texts: dict[int, str]) -> None:
    """OUTPUT holds exactly ``texts`` (index -> text), each with the emulator's vector."""
    assert sorted(records) == sorted(texts)
    for index, text in texts.items():
        assert records[index]["text"] == text
        assert records[index]["embedding"] == emulator_vector(text, 1536)


def complete_lines(path: Path) -> list[dict[str, Any]]:
    """The complete lines of an OUTPUT being written (a torn last line is left out)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in data.split(b"\n")[:-1]]
