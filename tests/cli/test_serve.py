"""``phospho-embed serve``: the emulator as a process, answering requests until terminated;
and what ``serve`` and ``demo`` say when their extra is not installed."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
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


# Runs the command line in a fresh interpreter where importing `blocked` fails, as it does
# when its package is not installed (this test's interpreter has it imported already).
_WITHOUT = """
import sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, NotInstalled())
from phospho_embed.cli import main
sys.exit(main({argv!r}))
"""


@pytest.mark.parametrize(
    ("argv", "blocked", "extra"),
    [
        (["serve", "--port", "8770"], "fastapi", "emulator"),
        (["demo"], "langchain_core", "demo"),
        (["demo"], "fastapi", "demo"),  # the demo starts an emulator
    ],
)
def test_a_command_without_its_extra_names_the_extra_to_install(
    argv: list[str], blocked: str, extra: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT.format(blocked=blocked, argv=argv)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    [line] = result.stderr.splitlines()  # one line, no traceback
    assert f'pip install "phospho-embed[{extra}]"' in line
    assert f"No module named '{blocked}'" in line
    assert result.stdout == ""  # nothing started: no emulator, no demo screen


def test_a_module_of_ours_missing_is_a_bug_not_a_missing_extra() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT.format(blocked="langchain_phospho", argv=["demo"])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "extra is missing" not in result.stderr
