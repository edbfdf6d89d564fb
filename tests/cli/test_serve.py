"""``phospho-embed serve``: the emulator as a process, answering requests until terminated."""

from __future__ import annotations

import os
import queue
import re
import signal
import sys
import threading

import httpx
import pytest

from phospho_embed.emulator import resolve_vectors
from tests.cli.conftest import spawn

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def test_serve_answers_requests_and_stops_on_sigterm() -> None:
    args = ["serve", "--port", "0", "--dimensions", "128", "--api-key", "serve-key"]
    process = spawn(args, dict(os.environ))
    try:
        stdout = process.stdout
        assert stdout is not None
        lines: queue.Queue[str] = queue.Queue()

        # readline() has no timeout: a silent process must fail the test, not hang it.
        def read_two() -> None:
            lines.put(stdout.readline())
            lines.put(stdout.readline())

        threading.Thread(target=read_two, daemon=True).start()
        line = lines.get(timeout=30)
        match = re.fullmatch(r"phospho emulator listening on (http://127\.0\.0\.1:\d+/v2)\n", line)
        assert match, line
        # The second line says which vectors it serves, and where they come from.
        kind = resolve_vectors()
        expected = "semantic vectors from WordLlama" if kind == "semantic" else "lexical vectors"
        assert lines.get(timeout=30).startswith(f"vectors: {expected}")
        body = {"input": "I want to cancel my order", "model": "intent-embed"}

        good = httpx.post(
            f"{match.group(1)}/embeddings",
            json=body,
            headers={"Authorization": "Bearer serve-key"},
            timeout=10,
        )
        bad = httpx.post(
            f"{match.group(1)}/embeddings",
            json=body,
            headers={"Authorization": "Bearer other"},
            timeout=10,
        )

        assert good.status_code == 200
        assert len(good.json()["data"][0]["embedding"]) == 128
        assert bad.status_code == 401
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
        assert process.returncode == 0
        assert "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_serve_rejects_bad_options_like_the_emulator() -> None:
    process = spawn(["serve", "--fault-rate", "0.5"], dict(os.environ))
    _, err = process.communicate(timeout=30)

    assert process.returncode == 2
    assert "--fault-rate and --fault-every need --fault" in err
